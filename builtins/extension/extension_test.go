package extension

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/builtins/tree"
)

func TestReleaseAddsMissingKeysInMkosiOrder(t *testing.T) {
	base, err := ParseEnv(strings.NewReader("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n"), "os-release")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Release(ReleaseInput{Kind: Sysext, Base: base, ImageID: "jq", Version: "1.6", Architecture: "x86-64"})
	if err != nil {
		t.Fatal(err)
	}
	want := "ID=debian\nVERSION_ID=12\nSYSEXT_ID=jq\nSYSEXT_VERSION_ID=1.6\nSYSEXT_SCOPE=initrd system portable\nARCHITECTURE=x86-64\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// User keys stay first and win; confext uses the CONFEXT_ prefix.
	got, _ = Release(ReleaseInput{Kind: Confext, Given: Env{{"ARCHITECTURE", "x86-64"}, {"ID", "_any"}},
		Base: Env{{"ID", "debian"}, {"CONFEXT_LEVEL", "3"}}, Scope: "system", Architecture: "arm64"})
	want = "ARCHITECTURE=x86-64\nID=_any\nCONFEXT_LEVEL=3\nCONFEXT_SCOPE=system\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// No base: ID=_any.
	got, _ = Release(ReleaseInput{Kind: Sysext, Architecture: "x86-64"})
	if !strings.HasPrefix(got, "ID=_any\n") {
		t.Errorf("no-base release %q", got)
	}
}

func TestParseEnvErrorsNameLine(t *testing.T) {
	_, err := ParseEnv(strings.NewReader("ID=x\nthis is bad\n"), "f")
	if err == nil || !strings.HasPrefix(err.Error(), "f:2:") {
		t.Errorf("err = %v", err)
	}
	e, err := ParseEnv(strings.NewReader("A='x y'\nB=\"a\\\"b\"\n# c\n"), "f")
	if err != nil || len(e) != 2 || e[0].Value != "x y" || e[1].Value != `a"b` {
		t.Errorf("env %v %v", e, err)
	}
}

func write(t *testing.T, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, rel)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDeltaAndPrune(t *testing.T) {
	base, ext := t.TempDir(), t.TempDir()
	write(t, base, "usr/lib/x86_64-linux-gnu/libc.so.6", "libc")
	write(t, base, "usr/lib/os-release", "ID=debian\n")
	os.Symlink("usr/lib", filepath.Join(base, "lib"))
	os.Symlink("/etc", filepath.Join(base, "usr/hostetc"))
	write(t, ext, "usr/lib/x86_64-linux-gnu/libc.so.6", "libc")
	write(t, ext, "usr/lib/x86_64-linux-gnu/libjq.so.1", "jq")
	write(t, ext, "usr/bin/jq", "jq")
	write(t, ext, "usr/share/empty/.keep", "")
	write(t, ext, "usr/hostetc/passwd", "not from the host")
	write(t, ext, "var/lib/dpkg/status", "Package: jq\n")
	write(t, ext, "etc/default/jq", "x")
	os.Symlink("usr/lib", filepath.Join(ext, "lib"))
	meta := tree.NewMeta()
	meta.Set("usr/lib/x86_64-linux-gnu/libc.so.6", tree.Override{UID: tree.Ptr(uint32(0))})
	removed, err := DropExisting(ext, meta, base)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(removed, ",") != "lib,usr/lib/x86_64-linux-gnu/libc.so.6" {
		t.Errorf("removed %v", removed)
	}
	if _, ok := meta.Get("usr/lib/x86_64-linux-gnu/libc.so.6"); ok {
		t.Error("meta of removed path kept")
	}
	os.Remove(filepath.Join(ext, "usr/share/empty/.keep"))
	if err := Prune(ext, meta, Sysext); err != nil {
		t.Fatal(err)
	}
	var got []string
	filepath.WalkDir(ext, func(p string, d os.DirEntry, err error) error {
		rel, _ := filepath.Rel(ext, p)
		got = append(got, rel)
		return nil
	})
	want := ".,usr,usr/bin,usr/bin/jq,usr/hostetc,usr/hostetc/passwd,usr/lib,usr/lib/x86_64-linux-gnu,usr/lib/x86_64-linux-gnu/libjq.so.1"
	if strings.Join(got, ",") != want {
		t.Errorf("tree after prune:\n%s\nwant\n%s", strings.Join(got, ","), want)
	}
}

func TestPruneAndOSReleaseStayInsideTheTree(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	write(t, outside, "os-release", "ID=host\n")
	write(t, root, "usr/bin/tool", "x")
	// A hostile package made usr/lib an absolute symlink out of the tree.
	if err := os.Symlink(outside, filepath.Join(root, "usr/lib")); err != nil {
		t.Fatal(err)
	}
	osr, err := OSRelease(root)
	if err != nil || osr != nil {
		t.Errorf("OSRelease read through a symlink out of the tree: %v %v", osr, err)
	}
	if err := Prune(root, tree.NewMeta(), Sysext); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(outside, "os-release")); err != nil {
		t.Fatal("Prune removed a file outside the tree")
	}
}

func TestDropExistingKeepsWhatThePackagesChanged(t *testing.T) {
	base, ext := t.TempDir(), t.TempDir()
	write(t, base, "usr/lib/libfoo.so.1", "version 1")
	write(t, base, "usr/share/foo/same", "same")
	write(t, ext, "usr/lib/libfoo.so.1", "version 2")
	write(t, ext, "usr/share/foo/same", "same")
	os.Symlink("a", filepath.Join(base, "usr/lib/link"))
	os.Symlink("b", filepath.Join(ext, "usr/lib/link"))
	removed, err := DropExisting(ext, nil, base)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(removed, ",") != "usr/share/foo/same" {
		t.Errorf("removed %v; want only the identical file", removed)
	}
	if b, _ := os.ReadFile(filepath.Join(ext, "usr/lib/libfoo.so.1")); string(b) != "version 2" {
		t.Error("upgraded library dropped")
	}
}
