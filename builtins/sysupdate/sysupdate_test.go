package sysupdate

import (
	"bytes"
	"crypto/rand"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/internal/testenv"
)

func TestTransferRender(t *testing.T) {
	tr := &Transfer{Name: "jq", Kind: "sysext", URL: "https://example.org/ext", Verify: true}
	b, err := tr.Render()
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{
		"[Transfer]\n",
		"[Source]\nType=url-file\nPath=https://example.org/ext/\nMatchPattern=jq_@v.raw jq_@v.raw.xz\n",
		"[Target]\nType=regular-file\nPath=/var/lib/extensions/\nMatchPattern=jq_@v.raw\nCurrentSymlink=jq.raw\nInstancesMax=3\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("transfer lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "Verify=") {
		t.Errorf("Verify= written although verification is on (the default):\n%s", s)
	}

	tr = &Transfer{Name: "etc-tweaks", Kind: "confext", URL: "http://127.0.0.1:8080/", InstancesMax: 2,
		CurrentSymlink: "-", Features: []string{"tweaks"}, Mode: "0444", MinVersion: "1.0"}
	b, err = tr.Render()
	if err != nil {
		t.Fatal(err)
	}
	s = string(b)
	for _, want := range []string{"Verify=no\n", "Features=tweaks\n", "MinVersion=1.0\n", "Path=/var/lib/confexts/\n", "Mode=0444\n", "InstancesMax=2\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("confext transfer lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "CurrentSymlink") {
		t.Errorf("CurrentSymlink written although \"-\" asked for none:\n%s", s)
	}
}

func TestTransferRefusesBadValues(t *testing.T) {
	for _, tr := range []Transfer{
		{Name: "j_q", Kind: "sysext", URL: "https://x/"},
		{Name: "jq", Kind: "portable", URL: "https://x/"},
		{Name: "jq", Kind: "sysext", URL: "ftp://x/"},
		{Name: "jq", Kind: "sysext", URL: "https://x/%A/"},
		{Name: "jq", Kind: "sysext", URL: "https://x/\n[Source]"},
		{Name: "jq", Kind: "sysext", URL: "https://x/", TargetPath: "var/lib"},
		{Name: "jq", Kind: "sysext", URL: "https://x/", InstancesMax: 1},
		{Name: "jq", Kind: "sysext", URL: "https://x/", Features: []string{"a b"}},
		{Name: "jq", Kind: "sysext", URL: "https://x/", Mode: "rw"},
	} {
		if _, err := tr.Render(); err == nil {
			t.Errorf("%+v: no error", tr)
		}
	}
}

func TestFeatureRender(t *testing.T) {
	b, err := (&Feature{Name: "devel", Description: "Development tools", Enabled: true}).Render()
	if err != nil {
		t.Fatal(err)
	}
	if want := "[Feature]\nDescription=Development tools\nEnabled=true\n"; string(b) != want {
		t.Errorf("feature = %q, want %q", b, want)
	}
	if _, err := (&Feature{Name: "x", Description: "a\nEnabled=true"}).Render(); err == nil {
		t.Error("a newline in the description was accepted")
	}
}

// TestSignVerifiesWithGpgv signs a SHA256SUMS as sxb does and checks the
// detached signature with gpgv, the way systemd-pull checks
// SHA256SUMS.gpg; a changed manifest must fail.
func TestSignVerifiesWithGpgv(t *testing.T) {
	gpgv := testenv.NeedTool(t, "gpgv")
	dir := t.TempDir()
	secret, pubring, err := testenv.PGPKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	k, err := LoadSigningKey(secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	sums := []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef  jq_1.0.raw\n")
	sig, err := k.Sign(sums, 0)
	if err != nil {
		t.Fatal(err)
	}
	again, err := k.Sign(sums, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sig, again) {
		t.Error("two signatures of the same manifest differ")
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sumsFile, sigFile := write("SHA256SUMS", sums), write("SHA256SUMS.gpg", sig)
	if out, err := exec.Command(gpgv, "--keyring", pubring, sigFile, sumsFile).CombinedOutput(); err != nil {
		t.Fatalf("gpgv rejects the signature: %v\n%s", err, out)
	}
	write("SHA256SUMS", append([]byte("f"), sums[1:]...))
	if out, err := exec.Command(gpgv, "--keyring", pubring, sigFile, sumsFile).CombinedOutput(); err == nil {
		t.Fatalf("gpgv accepts the signature of a tampered manifest:\n%s", out)
	}
}

func TestLoadSigningKeyErrors(t *testing.T) {
	dir := t.TempDir()
	_, pubring, err := testenv.PGPKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSigningKey(pubring, nil); err == nil || !strings.Contains(err.Error(), "no secret key") {
		t.Errorf("public key accepted as signing key: %v", err)
	}
	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, []byte("not a key"), 0o644)
	if _, err := LoadSigningKey(junk, nil); err == nil {
		t.Error("junk accepted as signing key")
	}
}

// TestCompressRoundTrip compresses with sxb and decompresses with the zstd
// and xz programs; the same input must give the same bytes twice.
func TestCompressRoundTrip(t *testing.T) {
	data := make([]byte, 3<<20)
	rand.Read(data[:1<<20]) // some incompressible, the rest zeros
	for _, c := range []struct{ alg, tool string }{{"zstd", "zstd"}, {"xz", "xz"}} {
		tool := testenv.NeedTool(t, c.tool)
		dir := t.TempDir()
		src := filepath.Join(dir, "img.raw")
		os.WriteFile(src, data, 0o644)
		sfx, err := Suffix(c.alg)
		if err != nil {
			t.Fatal(err)
		}
		dst := src + "." + sfx
		if err := CompressFile(src, dst, c.alg); err != nil {
			t.Fatal(err)
		}
		first, _ := os.ReadFile(dst)
		if err := CompressFile(src, dst, c.alg); err != nil {
			t.Fatal(err)
		}
		second, _ := os.ReadFile(dst)
		if !bytes.Equal(first, second) {
			t.Errorf("%s: two compressions differ", c.alg)
		}
		out, err := exec.Command(tool, "-d", "-c", dst).Output()
		if err != nil {
			t.Fatalf("%s -d: %v", c.tool, err)
		}
		if !bytes.Equal(out, data) {
			t.Errorf("%s -d gives %d bytes, not the original %d", c.tool, len(out), len(data))
		}
	}
	if err := Compress(io.Discard, bytes.NewReader(nil), "lz4"); err == nil {
		t.Error("lz4 accepted")
	}
}
