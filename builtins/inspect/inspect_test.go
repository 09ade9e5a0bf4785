package inspect

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/builtins/disk"
	"github.com/sxb-build/sxb/builtins/erofs"
	"github.com/sxb-build/sxb/builtins/repart"
	"github.com/sxb-build/sxb/builtins/squashfs"
	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/builtins/verity"
	"github.com/sxb-build/sxb/internal/testenv"
)

const refDir = "../disk/testdata/repart257"

func gunzip(t *testing.T, src, dst string) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(zr)
	os.WriteFile(dst, b, 0o644)
}

// TestRepartImage inspects the image systemd-repart 257 wrote (with
// mkfs.erofs 1.8 inside): partitions, release file, verity, signature.
func TestRepartImage(t *testing.T) {
	img := filepath.Join(t.TempDir(), "test.raw")
	gunzip(t, filepath.Join(refDir, "sysext.raw.gz"), img)
	cert, err := verity.ParseCertificate(mustRead(t, filepath.Join(refDir, "cert.pem")))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Inspect(img, Options{Certificate: cert})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Partitions) != 3 || rep.Partitions[0].Type != "root-x86-64" || rep.Partitions[0].Content != "erofs" ||
		rep.Partitions[1].Content != "verity" || rep.Partitions[2].Content != "verity-signature" {
		t.Fatalf("partitions %+v", rep.Partitions)
	}
	if rep.DiskUUID != "3f200c87-6598-4b5b-8d76-e3fdee615e0b" || strings.Join(rep.Partitions[0].Flags, ",") != "read-only" {
		t.Errorf("disk %s flags %v", rep.DiskUUID, rep.Partitions[0].Flags)
	}
	if len(rep.Releases) != 1 || rep.Releases[0].Fields["ID"] != "_any" || rep.Releases[0].Path != "/usr/lib/extension-release.d/extension-release.test" {
		t.Errorf("releases %+v", rep.Releases)
	}
	if len(rep.Verity) != 1 {
		t.Fatalf("verity %+v", rep.Verity)
	}
	v := rep.Verity[0]
	if !v.Verified || !v.Signed || !v.SignatureValid || v.Trusted == nil || !*v.Trusted || v.Signer != "CN=test" ||
		v.RootHash != "830984f26cc6e39f0d5b232aa56b02b5319ac4fef5c3d5727037ecdccc6274b5" {
		t.Errorf("verity %+v", v)
	}
	// Tamper with the file system: verity must fail.
	b := mustRead(t, img)
	b[rep.Partitions[0].Offset+2000] ^= 0xff
	os.WriteFile(img, b, 0o644)
	rep, err = Inspect(img, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Verity[0].Verified || rep.Verity[0].Error == "" || !rep.Verity[0].SignatureValid || rep.Verity[0].Trusted != nil {
		t.Errorf("tampered data: %+v", rep.Verity[0])
	}
	// Tamper with the signature.
	b[rep.Partitions[0].Offset+2000] ^= 0xff
	sig := rep.Partitions[2].Offset
	i := bytes.Index(b[sig:sig+16384], []byte(`"signature":"`)) + 13 + 300
	b[sig+int64(i)] ^= 0x01
	os.WriteFile(img, b, 0o644)
	rep, _ = Inspect(img, Options{})
	if !rep.Verity[0].Verified || rep.Verity[0].SignatureValid || rep.Verity[0].SignatureError == "" {
		t.Errorf("tampered signature: %+v", rep.Verity[0])
	}
}

func sampleDir(t *testing.T) string {
	dir := t.TempDir()
	files := map[string]string{
		"usr/lib/extension-release.d/extension-release.x": "ID=debian\nVERSION_ID=\"12\"\n# comment\nSYSEXT_LEVEL=1.0\n",
		"usr/bin/tool":      "tool",
		"usr/share/big.bin": strings.Repeat("0123456789abcdef", 20000),
		"usr/share/mixed":   mixedContent(),
		"etc/extension-release.d/extension-release.x": "ID=_any\n",
	}
	for p, c := range files {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644)
	}
	for i := 0; i < 300; i++ { // a directory spanning several blocks
		os.WriteFile(filepath.Join(dir, "usr/bin", "file-with-a-long-name-"+strings.Repeat("x", i%40)+string(rune('a'+i%26))+string(rune('a'+i/26))), nil, 0o644)
	}
	return dir
}

// TestReadersOnReferenceTools reads files from images made by mkfs.erofs
// and mksquashfs (every compressor).
func TestReadersOnReferenceTools(t *testing.T) {
	testenv.NeedTool(t, "mkfs.erofs", "mksquashfs")
	src := sampleDir(t)
	dir := t.TempDir()
	type img struct{ name, kind string }
	var imgs []img
	e := filepath.Join(dir, "e.erofs")
	if out, err := exec.Command("mkfs.erofs", "-T0", e, src).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.erofs: %v\n%s", err, out)
	}
	imgs = append(imgs, img{e, "erofs"})
	for _, c := range []string{"gzip", "xz", "zstd", "lz4"} {
		s := filepath.Join(dir, c+".sqfs")
		if out, err := exec.Command("mksquashfs", src, s, "-comp", c, "-noappend", "-quiet").CombinedOutput(); err != nil {
			t.Fatalf("mksquashfs %s: %v\n%s", c, err, out)
		}
		imgs = append(imgs, img{s, "squashfs"})
	}
	for _, im := range imgs {
		t.Run(filepath.Base(im.name), func(t *testing.T) { checkReader(t, im.name, im.kind, src) })
	}
}

// mixedContent is 300 KB of text, pseudo-random bytes and zeros: clusters
// of every kind in a compressed image.
func mixedContent() string {
	var b strings.Builder
	x := uint32(1)
	for i := 0; b.Len() < 300000; i++ {
		switch i % 3 {
		case 0:
			for range 5000 {
				fmt.Fprintf(&b, "line %d of the text\n", x%1000)
				x = x*1664525 + 1013904223
			}
		case 1:
			for range 30000 {
				b.WriteByte(byte(x >> 24))
				x = x*1664525 + 1013904223
			}
		default:
			b.WriteString(strings.Repeat("\x00", 20000))
		}
	}
	return b.String()
}

// TestReadersOnCompressedErofs reads compressed erofs images: sxb's, with
// every algorithm, and mkfs.erofs 1.8's, also with big physical clusters
// (-C) and the non-compact index layout.
func TestReadersOnCompressedErofs(t *testing.T) {
	src := sampleDir(t)
	root, err := tree.Load(src, tree.Options{Epoch: 0})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, c := range erofs.Compressions {
		e := filepath.Join(dir, c+".erofs")
		f, _ := os.Create(e)
		if _, err := erofs.Write(f, root, erofs.Options{Compression: c}); err != nil {
			t.Fatal(err)
		}
		f.Close()
		t.Run("sxb-"+c, func(t *testing.T) { checkReader(t, e, "erofs", src) })
	}
	mkfs := testenv.ErofsTool(t, "mkfs.erofs")
	for i, args := range [][]string{{"-zlz4"}, {"-zlz4hc", "-C65536"}, {"-zlz4hc,12", "-Elegacy-compress"},
		{"-zlzma"}, {"-zlzma", "-C32768"}, {"-zdeflate"}, {"-zzstd"}, {"-zzstd", "-C16384", "-Elegacy-compress"}} {
		e := filepath.Join(dir, fmt.Sprintf("mkfs%d.erofs", i))
		argv := append(append(append([]string(nil), mkfs...), "-T0"), args...)
		argv = append(argv, e, src)
		if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("mkfs.erofs %v: %v\n%s", args, err, out)
		}
		t.Run("mkfs"+strings.Join(args, ""), func(t *testing.T) { checkReader(t, e, "erofs", src) })
	}
}

// TestReadersOnOurWriters reads images made by the sxb writers.
func TestReadersOnOurWriters(t *testing.T) {
	src := sampleDir(t)
	root, err := tree.Load(src, tree.Options{Epoch: 0})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	e := filepath.Join(dir, "e.erofs")
	f, _ := os.Create(e)
	if _, err := erofs.Write(f, root, erofs.Options{}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	checkReader(t, e, "erofs", src)
	for _, c := range []string{"gzip", "xz", "zstd", "lz4"} {
		s := filepath.Join(dir, c+".sqfs")
		f, _ := os.Create(s)
		if _, err := squashfs.Write(f, root, squashfs.Options{Compression: c}); err != nil {
			t.Fatal(err)
		}
		f.Close()
		checkReader(t, s, "squashfs", src)
	}
}

func checkReader(t *testing.T, image, kind, src string) {
	t.Helper()
	f, err := os.Open(image)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := DetectFS(f); got != kind {
		t.Fatalf("%s: detected %q", image, got)
	}
	var fsys FS
	if kind == "erofs" {
		fsys, err = OpenErofs(f)
	} else {
		fsys, err = OpenSquashfs(f)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"usr/lib/extension-release.d/extension-release.x", "usr/share/big.bin", "usr/bin/tool", "usr/share/mixed"} {
		got, err := fsys.ReadFile(p)
		if err != nil {
			t.Fatalf("%s: %s: %v", image, p, err)
		}
		if want := mustRead(t, filepath.Join(src, p)); !bytes.Equal(got, want) {
			t.Errorf("%s: %s: %d bytes differ from the %d of the source", image, p, len(got), len(want))
		}
	}
	names, err := fsys.ReadDir("usr/bin")
	if err != nil || len(names) != 301 {
		t.Errorf("%s: usr/bin has %d entries (%v), want 301", image, len(names), err)
	}
	if _, err := fsys.ReadFile("usr/nope"); err == nil {
		t.Errorf("%s: missing file read", image)
	}
	rel, err := findRelease(f, kind)
	if err != nil || len(rel) != 2 || rel[0].Fields["VERSION_ID"] != "12" || rel[1].Path != "/etc/extension-release.d/extension-release.x" {
		t.Errorf("%s: releases %+v %v", image, rel, err)
	}
}

// TestBuiltImages inspects images built by disk.Build with both writers.
func TestBuiltImages(t *testing.T) {
	root, err := tree.Load(sampleDir(t), tree.Options{Epoch: 0})
	if err != nil {
		t.Fatal(err)
	}
	writers := map[string]disk.FSWriter{
		"erofs": func(w io.WriterAt, r *tree.Node, p disk.FSParams) (int64, error) {
			return erofs.Write(w, r, erofs.Options{UUID: p.UUID})
		},
		"squashfs": func(w io.WriterAt, r *tree.Node, p disk.FSParams) (int64, error) {
			return squashfs.Write(w, r, squashfs.Options{Compression: p.Compression})
		},
	}
	for _, format := range []string{"erofs", "squashfs"} {
		parts, err := disk.DefaultLayout("sysext", format, "hash")
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "x.raw")
		res, err := disk.Build(context.Background(), out, root, parts, disk.Options{Seed: repart.ID128{9}, FSWriters: writers})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Inspect(out, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Partitions[0].Content != format || len(rep.Releases) != 1 || rep.Releases[0].Fields["SYSEXT_LEVEL"] != "1.0" {
			t.Errorf("%s: %+v %+v", format, rep.Partitions, rep.Releases)
		}
		if len(rep.Verity) != 1 || !rep.Verity[0].Verified || rep.Verity[0].Signed || rep.Verity[0].RootHash != hexs(res.RootHash) {
			t.Errorf("%s: verity %+v", format, rep.Verity)
		}
	}
}

func hexs(b []byte) string {
	const d = "0123456789abcdef"
	var s strings.Builder
	for _, c := range b {
		s.WriteByte(d[c>>4])
		s.WriteByte(d[c&15])
	}
	return s.String()
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
