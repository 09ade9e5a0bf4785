package tree

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestResolveConfinesSymlinks(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755)
	os.Symlink("usr/bin", filepath.Join(root, "bin"))
	os.Symlink("/../../../etc", filepath.Join(root, "evil"))
	os.Symlink("../../..", filepath.Join(root, "usr/up"))
	for _, tc := range []struct{ in, want string }{
		{"bin/sh", "usr/bin/sh"},
		{"./bin/sh", "usr/bin/sh"},
		{"evil/passwd", "etc/passwd"},
		{"usr/up/x", "x"},
		{"bin", "bin"},
	} {
		got, err := ResolveRel(root, tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ResolveRel(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	os.Symlink("loop2", filepath.Join(root, "loop1"))
	os.Symlink("loop1", filepath.Join(root, "loop2"))
	if _, err := ResolveRel(root, "loop1/x"); err == nil {
		t.Error("symlink loop resolved")
	}
}

func TestCleanRel(t *testing.T) {
	for in, want := range map[string]string{"./usr/bin/jq": "usr/bin/jq", "/etc/x": "etc/x", "./": "", "a//b/./c": "a/b/c"} {
		if got, err := CleanRel(in); err != nil || got != want {
			t.Errorf("CleanRel(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"../etc/passwd", "usr/../../x", "./.."} {
		if _, err := CleanRel(in); err == nil {
			t.Errorf("CleanRel(%q) accepted", in)
		}
	}
}

func TestLoadAppliesMetaAndHardLinks(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755)
	os.WriteFile(filepath.Join(root, "usr/bin/a"), []byte("hello"), 0o755)
	os.Link(filepath.Join(root, "usr/bin/a"), filepath.Join(root, "usr/bin/b"))
	os.WriteFile(filepath.Join(root, "null"), nil, 0o644)
	os.Symlink("nowhere", filepath.Join(root, "dangling"))
	m := NewMeta()
	m.Set("usr/bin/a", Override{Mode: Ptr(uint32(04755)), Xattrs: map[string][]byte{"security.capability": {1, 2}}})
	m.Set("null", Override{Kind: Ptr(CharDev), Rdev: Ptr(Mkdev(1, 3)), Mode: Ptr(uint32(0o666))})
	mf := filepath.Join(t.TempDir(), "m.json")
	if err := m.Save(mf); err != nil {
		t.Fatal(err)
	}
	m2, err := LoadMeta(mf)
	if err != nil {
		t.Fatal(err)
	}
	n, err := Load(root, Options{Meta: m2, Epoch: 100})
	if err != nil {
		t.Fatal(err)
	}
	a, b := n.Lookup("usr/bin/a"), n.Lookup("usr/bin/b")
	if a.Mode != 04755 || string(a.Xattrs["security.capability"]) != "\x01\x02" || a.UID != 0 {
		t.Errorf("a = %+v", a)
	}
	if b.Link != a || a.LinkCount() != 2 || b.LinkCount() != 2 {
		t.Errorf("hard link not detected: b.Link=%v nlink=%d", b.Link, a.Nlink)
	}
	if d := n.Lookup("null"); d.Kind != CharDev || Major(d.Rdev) != 1 || Minor(d.Rdev) != 3 {
		t.Errorf("null = %+v", d)
	}
	if s := n.Lookup("dangling"); s.Kind != Symlink || s.Target != "nowhere" || s.Mtime > 100 {
		t.Errorf("dangling = %+v", s)
	}
	var order []string
	n.Walk(func(x *Node) error { order = append(order, x.Path); return nil })
	want := []string{"", "dangling", "null", "usr", "usr/bin", "usr/bin/a", "usr/bin/b"}
	if len(order) != len(want) {
		t.Fatalf("order %v", order)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("order %v, want %v", order, want)
		}
	}
}

func TestCopyIntoMergesAndStaysInside(t *testing.T) {
	root, src := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755)
	os.Symlink("usr/bin", filepath.Join(root, "bin"))
	os.Symlink("/", filepath.Join(root, "escape"))
	os.WriteFile(filepath.Join(root, "usr/bin/old"), []byte("old"), 0o755)
	os.MkdirAll(filepath.Join(src, "bin"), 0o755)
	os.MkdirAll(filepath.Join(src, "escape/tmp"), 0o755)
	os.WriteFile(filepath.Join(src, "bin/tool"), []byte("tool"), 0o755)
	os.Chmod(filepath.Join(src, "bin/tool"), 0o755|os.ModeSetuid)
	os.WriteFile(filepath.Join(src, "escape/tmp/x"), []byte("x"), 0o644)
	m := NewMeta()
	if err := CopyInto(root, src, "/", m); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(root, "usr/bin/tool"))
	if err != nil || fi.Mode()&os.ModeSetuid == 0 {
		t.Fatalf("tool not copied through bin symlink with setuid: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(root, "usr/bin/old")); err != nil {
		t.Error("merge removed an existing file")
	}
	if _, err := os.Stat(filepath.Join(root, "tmp/x")); err != nil {
		t.Errorf("copy through an absolute symlink did not stay in the tree: %v", err)
	}
	removed, err := RemoveGlobs(root, []string{"/usr/bin/t*", "../../etc/*"}, m)
	if err != nil || len(removed) != 1 || removed[0] != "usr/bin/tool" {
		t.Errorf("RemoveGlobs = %v, %v", removed, err)
	}
}

func TestRemoveGlobsNeverFollowsSymlinks(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(outside, "precious"), []byte("x"), 0o644)
	os.MkdirAll(filepath.Join(root, "usr/share/doc/a"), 0o755)
	os.MkdirAll(filepath.Join(root, "usr/share/doc/b"), 0o755)
	os.WriteFile(filepath.Join(root, "usr/share/doc/a/README"), []byte("x"), 0o644)
	os.Symlink(outside, filepath.Join(root, "usr/share/evil"))
	os.Symlink("/", filepath.Join(root, "escape"))
	removed, err := RemoveGlobs(root, []string{"/usr/share/evil/*", "escape/*", "usr/share/doc/*/README", "usr/nothing/*"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(removed, ",") != "usr/share/doc/a/README" {
		t.Errorf("removed %v", removed)
	}
	if _, err := os.Stat(filepath.Join(outside, "precious")); err != nil {
		t.Fatal("a file outside the tree was removed")
	}
	if _, err := RemoveGlobs(root, []string{"usr/["}, nil); err == nil {
		t.Error("bad pattern accepted")
	}
}

func TestResolveFollowStaysInside(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "usr/lib"), 0o755)
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "usr/lib/os-release"), []byte("ID=x\n"), 0o644)
	os.Symlink("../usr/lib/os-release", filepath.Join(root, "etc/os-release"))
	os.Symlink("/etc/passwd", filepath.Join(root, "etc/abs"))
	for in, want := range map[string]string{"etc/os-release": "usr/lib/os-release", "etc/abs": "etc/passwd", "usr/lib": "usr/lib"} {
		got, err := ResolveFollow(root, in)
		if err != nil || got != filepath.Join(root, want) {
			t.Errorf("ResolveFollow(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// TestCopyIntoUmask checks that copied directories keep their modes and
// created parents get 0755, whatever the builder's umask.
func TestCopyIntoUmask(t *testing.T) {
	src := t.TempDir()
	if err := os.Mkdir(filepath.Join(src, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(src, "d"), 0o775|os.ModeSetgid)
	if err := os.WriteFile(filepath.Join(src, "d", "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(src, "d", "f"), 0o644)
	root := filepath.Join(t.TempDir(), "root")
	old := syscall.Umask(0o077)
	err := CopyInto(root, src, "/usr/share/x", nil)
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string]os.FileMode{
		"": 0o755, "usr": 0o755, "usr/share/x": 0o755,
		"usr/share/x/d":   0o775 | os.ModeSetgid,
		"usr/share/x/d/f": 0o644,
	} {
		fi, err := os.Stat(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode() & (os.ModePerm | os.ModeSetgid); got != want {
			t.Errorf("%q: mode %v, want %v", rel, got, want)
		}
	}
}
