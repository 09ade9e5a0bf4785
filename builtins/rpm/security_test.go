package rpm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/builtins/rpm/rpmtest"

	"github.com/sxb-build/sxb/builtins/fetch"
	"github.com/sxb-build/sxb/builtins/tree"
)

// copyTree copies a fixture directory so a test can damage its copy.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		d := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(d, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(d, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func ossRequest(fx *seedFixture, mirror string, t *testing.T, pkgs ...string) Request {
	return Request{Distribution: "opensuse", Release: "tumbleweed", Mirror: "file://" + mirror,
		Repositories: []string{"oss"}, Packages: pkgs, Keyring: fx.keyring, CacheDir: t.TempDir()}
}

func TestTamperedRepomd(t *testing.T) {
	fx := seedRepo(t)
	m := filepath.Join(t.TempDir(), "m")
	copyTree(t, fx.mirror, m)
	md := filepath.Join(m, "tumbleweed/repo/oss/repodata/repomd.xml")
	b, _ := os.ReadFile(md)
	os.WriteFile(md, bytes.Replace(b, []byte("<revision>1</revision>"), []byte("<revision>2</revision>"), 1), 0o644)
	_, err := Resolve(context.Background(), ossRequest(fx, m, t, "bash"))
	if err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("tampered repomd.xml: err = %v, want a signature error", err)
	}
	// Insecure skips the signature but still checks metadata checksums.
	req := ossRequest(fx, m, t, "bash")
	req.Insecure = true
	if _, err := Resolve(context.Background(), req); err != nil {
		t.Fatalf("insecure: %v", err)
	}
	// Missing signature.
	os.Remove(md + ".asc")
	if _, err := Resolve(context.Background(), ossRequest(fx, m, t, "bash")); err == nil || !strings.Contains(err.Error(), "not signed") {
		t.Fatalf("unsigned repomd.xml: err = %v", err)
	}
}

func TestTamperedPrimary(t *testing.T) {
	fx := seedRepo(t)
	m := filepath.Join(t.TempDir(), "m")
	copyTree(t, fx.mirror, m)
	p := filepath.Join(m, "tumbleweed/repo/oss/repodata/primary.xml.zst")
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 0xff
	os.WriteFile(p, b, 0o644)
	_, err := Resolve(context.Background(), ossRequest(fx, m, t, "bash"))
	if err == nil || !errors.Is(err, fetch.ErrChecksum) {
		t.Fatalf("tampered primary: err = %v, want a checksum error", err)
	}
}

func TestWrongKey(t *testing.T) {
	fx := seedRepo(t)
	other := rpmtest.NewEnv(t, t.TempDir(), "other@example.invalid")
	req := ossRequest(fx, fx.mirror, t, "bash")
	req.Keyring = other.Keyring
	_, err := Resolve(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("wrong key: err = %v", err)
	}
}

func TestBadPackageDigest(t *testing.T) {
	fx := seedRepo(t)
	m := filepath.Join(t.TempDir(), "m")
	copyTree(t, fx.mirror, m)
	req := ossRequest(fx, m, t, "glibc")
	plan, err := Resolve(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	// Same size, one byte changed.
	rp := filepath.Join(m, "tumbleweed/repo/oss/x86_64/glibc-2.40-2.1.x86_64.rpm")
	b, _ := os.ReadFile(rp)
	b[len(b)-10] ^= 1
	os.WriteFile(rp, b, 0o644)
	err = Install(context.Background(), plan, t.TempDir(), tree.NewMeta(), InstallOptions{})
	if err == nil || !errors.Is(err, fetch.ErrChecksum) {
		t.Fatalf("damaged package: err = %v, want a checksum error", err)
	}
}

// TestFedoraPackageSignatures: Fedora repositories have no repomd.xml.asc;
// trust comes from the header signatures of the packages.
func TestFedoraPackageSignatures(t *testing.T) {
	fx := seedRepo(t)
	dir := t.TempDir()
	env := fx.env
	repo := filepath.Join(dir, "fedora/linux/releases/41/Everything/x86_64/os")
	env.Build(t, filepath.Join(repo, "Packages"), []rpmtest.Pkg{
		{Name: "good", Version: "1.0", Arch: "x86_64", Install: "mkdir -p %{buildroot}/usr/bin\necho good > %{buildroot}/usr/bin/good", Files: "/usr/bin/good"},
		{Name: "unsigned", Version: "1.0", Arch: "x86_64", Unsigned: true, Install: "mkdir -p %{buildroot}/usr/bin\necho u > %{buildroot}/usr/bin/unsigned", Files: "/usr/bin/unsigned"},
	})
	env.CreateRepo(t, repo, false, false)
	ctx := context.Background()
	req := Request{Distribution: "fedora", Release: "41", Arch: "x86-64", Mirror: dir, Repositories: []string{"release"},
		Packages: []string{"good"}, Keyring: fx.keyring, CacheDir: t.TempDir()}
	plan, err := Resolve(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !plan.CheckSignatures {
		t.Fatal("Fedora plan does not check package signatures")
	}
	root := t.TempDir()
	if err := Install(ctx, plan, root, tree.NewMeta(), InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	checkFile(t, root, "usr/bin/good", "good\n")

	req.Packages = []string{"unsigned"}
	if plan, err = Resolve(ctx, req); err != nil {
		t.Fatal(err)
	}
	if err := Install(ctx, plan, t.TempDir(), tree.NewMeta(), InstallOptions{}); err == nil || !strings.Contains(err.Error(), "not signed") {
		t.Fatalf("unsigned package: err = %v", err)
	}
	// Signed by a key outside the keyring.
	other := rpmtest.NewEnv(t, t.TempDir(), "other@example.invalid")
	req.Packages, req.Keyring = []string{"good"}, other.Keyring
	if plan, err = Resolve(ctx, req); err != nil {
		t.Fatal(err)
	}
	if err := Install(ctx, plan, t.TempDir(), tree.NewMeta(), InstallOptions{}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("package signed by an unknown key: err = %v", err)
	}
	// Opting out.
	req.Packages, req.Insecure = []string{"unsigned"}, true
	if plan, err = Resolve(ctx, req); err != nil {
		t.Fatal(err)
	}
	if err := Install(ctx, plan, t.TempDir(), tree.NewMeta(), InstallOptions{}); err != nil {
		t.Fatalf("insecure: %v", err)
	}
}

// TestHostilePaths patches a package so that its file list climbs out of
// the root ("/../../x"), fixes the header digest so only the path is wrong,
// and checks Install refuses it.
func TestHostilePaths(t *testing.T) {
	fx := seedRepo(t)
	dir := t.TempDir()
	env := fx.env
	repo := filepath.Join(dir, "repo")
	env.Build(t, repo, []rpmtest.Pkg{{Name: "evil", Version: "1", Unsigned: true,
		Install: "mkdir -p %{buildroot}/opt/evil\necho x > %{buildroot}/opt/evil/f", Files: "/opt/evil"}})
	rp, _ := filepath.Glob(filepath.Join(repo, "evil-*.rpm"))
	b, _ := os.ReadFile(rp[0])
	// The dirnames are stored as "/opt/evil/" in the header.
	if bytes.Count(b, []byte("/opt/evil/\x00")) != 1 {
		t.Fatalf("header dirnames not found once")
	}
	// Recompute the header SHA-256 (hex, in the signature header).
	oldHdr := headerBytes(t, b)
	b = bytes.Replace(b, []byte("/opt/evil/\x00"), []byte("/../../ev/\x00"), 1)
	newHdr := headerBytes(t, b)
	os1, ns := sha256.Sum256(oldHdr), sha256.Sum256(newHdr)
	b = bytes.Replace(b, []byte(hex.EncodeToString(os1[:])), []byte(hex.EncodeToString(ns[:])), 1)
	os.WriteFile(rp[0], b, 0o644)
	env.CreateRepo(t, repo, false, false)
	ctx := context.Background()
	req := Request{Distribution: "opensuse", Release: "tumbleweed", Repositories: []string{repo},
		Packages: []string{"evil"}, Insecure: true, CacheDir: t.TempDir()}
	plan, err := Resolve(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "a", "b", "root")
	err = Install(ctx, plan, root, tree.NewMeta(), InstallOptions{})
	if err == nil || !errors.Is(err, tree.ErrUnsafePath) {
		t.Fatalf("hostile path: err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "../../ev")); err == nil {
		t.Fatal("a file was written outside the root")
	}
}

// headerBytes returns the main header of an rpm file (after the lead and
// the padded signature header).
func headerBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	be := func(x []byte) int { return int(x[0])<<24 | int(x[1])<<16 | int(x[2])<<8 | int(x[3]) }
	off := 96
	il, dl := be(b[off+8:]), be(b[off+12:])
	off += 16 + il*16 + dl
	off = (off + 7) &^ 7
	il, dl = be(b[off+8:]), be(b[off+12:])
	return b[off : off+16+il*16+dl]
}

// TestMetadataBomb: with signatures off, a repomd.xml that lies about the
// decompressed size of primary.xml is refused before parsing.
func TestMetadataBomb(t *testing.T) {
	fx := seedRepo(t)
	m := filepath.Join(t.TempDir(), "m")
	copyTree(t, fx.mirror, m)
	md := filepath.Join(m, "tumbleweed/repo/oss/repodata/repomd.xml")
	b, _ := os.ReadFile(md)
	re := regexp.MustCompile(`(<data type="primary">(?s:.*?)<open-size>)(\d+)(</open-size>)`)
	if !re.Match(b) {
		t.Fatal("no open-size for primary in repomd.xml")
	}
	os.WriteFile(md, re.ReplaceAll(b, []byte("${1}100${3}")), 0o644)
	req := ossRequest(fx, m, t, "bash")
	req.Insecure = true
	_, err := Resolve(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "more than 100 bytes") {
		t.Fatalf("err = %v", err)
	}
}

// TestHostileCpioNames patches only the payload (uncompressed cpio) so an
// entry is named "../../evil/f": the entry matches no file of the header
// and Install refuses the package without writing outside the root.
func TestHostileCpioNames(t *testing.T) {
	fx := seedRepo(t)
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	fx.env.Build(t, repo, []rpmtest.Pkg{{Name: "evilcpio", Version: "1", Unsigned: true, Payload: "w.ufdio",
		Install: "mkdir -p %{buildroot}/opt/evil\necho x > %{buildroot}/opt/evil/f", Files: "/opt/evil"}})
	rp, _ := filepath.Glob(filepath.Join(repo, "evilcpio-*.rpm"))
	b, _ := os.ReadFile(rp[0])
	if bytes.Count(b, []byte("./opt/evil/f\x00")) != 1 {
		t.Fatal("cpio entry name not found once")
	}
	os.WriteFile(rp[0], bytes.Replace(b, []byte("./opt/evil/f\x00"), []byte("../../evil/f\x00"), 1), 0o644)
	fx.env.CreateRepo(t, repo, false, false)
	ctx := context.Background()
	plan, err := Resolve(ctx, Request{Distribution: "opensuse", Repositories: []string{repo},
		Packages: []string{"evilcpio"}, Insecure: true, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "a", "b", "root")
	err = Install(ctx, plan, root, tree.NewMeta(), InstallOptions{})
	if err == nil || !strings.Contains(err.Error(), "payload") {
		t.Fatalf("hostile cpio name: err = %v", err)
	}
	t.Logf("refused: %v", err)
	if _, err := os.Stat(filepath.Join(root, "../../evil")); err == nil {
		t.Fatal("a file was written outside the root")
	}
}

// TestRSAPackageSignatures: header signatures made with an RSA key (as
// Fedora's) verify as the EdDSA ones do.
func TestRSAPackageSignatures(t *testing.T) {
	dir := t.TempDir()
	env := rpmtest.NewEnvAlgo(t, filepath.Join(dir, "env"), "rsa@example.invalid", "rsa3072")
	repo := filepath.Join(dir, "fedora/linux/releases/41/Everything/x86_64/os")
	env.Build(t, filepath.Join(repo, "Packages"), []rpmtest.Pkg{
		{Name: "rsasigned", Version: "1.0", Arch: "x86_64", Install: "mkdir -p %{buildroot}/usr/bin\necho r > %{buildroot}/usr/bin/rsasigned", Files: "/usr/bin/rsasigned"},
	})
	env.CreateRepo(t, repo, true, false)
	ctx := context.Background()
	req := Request{Distribution: "fedora", Release: "41", Mirror: dir, Repositories: []string{"release"},
		Packages: []string{"rsasigned"}, Keyring: env.Keyring, CacheDir: t.TempDir()}
	plan, err := Resolve(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := Install(ctx, plan, root, tree.NewMeta(), InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	checkFile(t, root, "usr/bin/rsasigned", "r\n")
	// The EdDSA fixture key does not verify it.
	req.Keyring = seedRepo(t).keyring
	if plan, err = Resolve(ctx, req); err != nil {
		t.Fatal(err)
	}
	if err := Install(ctx, plan, t.TempDir(), tree.NewMeta(), InstallOptions{}); err == nil {
		t.Fatal("RSA-signed package verified with another key")
	}
}
