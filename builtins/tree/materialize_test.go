package tree

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sxb-build/sxb/internal/testenv"
)

// TestMaterialize checks that a tree published as root carries what the
// sidecar records — owners, setuid bits, device nodes, capabilities —
// without touching the inodes another tree shares with it.
func TestMaterialize(t *testing.T) {
	testenv.NeedRoot(t)
	dir := t.TempDir()
	tr := filepath.Join(dir, "tree")
	for p, c := range map[string]string{"usr/bin/su": "su", "usr/bin/tool": "tool", "usr/bin/ping": "ping", "usr/bin/a": "ab", "dev/null": ""} {
		os.MkdirAll(filepath.Join(tr, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(tr, p), []byte(c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Link(filepath.Join(tr, "usr/bin/a"), filepath.Join(tr, "usr/bin/b"))
	// The cache's name for the same inode.
	os.Link(filepath.Join(tr, "usr/bin/su"), filepath.Join(dir, "cached-su"))
	os.Chown(filepath.Join(tr, "usr/bin/tool"), 4242, 4242) // a rootless builder's owner
	capNetRaw := []byte{1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	m := NewMeta()
	m.Set("usr/bin/su", Override{Mode: Ptr[uint32](04755)})
	m.Set("usr/bin/a", Override{Mode: Ptr[uint32](02755), GID: Ptr[uint32](5)})
	m.Set("usr/bin/tool", Override{UID: Ptr[uint32](1000), GID: Ptr[uint32](1000)})
	m.Set("usr/bin/ping", Override{Xattrs: map[string][]byte{"security.capability": capNetRaw}})
	m.Set("dev/null", Override{Kind: Ptr(CharDev), Mode: Ptr[uint32](0o666), Rdev: Ptr(Mkdev(1, 3))})
	m.Set("usr", Override{Mode: Ptr[uint32](0o750)})
	if err := Materialize(tr, m); err != nil {
		t.Fatal(err)
	}
	st := func(p string) *unix.Stat_t {
		var s unix.Stat_t
		if err := unix.Lstat(filepath.Join(tr, p), &s); err != nil {
			t.Fatal(err)
		}
		return &s
	}
	if s := st("usr/bin/su"); s.Mode&0o7777 != 04755 || s.Uid != 0 {
		t.Errorf("su: mode %o uid %d", s.Mode&0o7777, s.Uid)
	}
	var c unix.Stat_t
	unix.Lstat(filepath.Join(dir, "cached-su"), &c)
	if c.Mode&0o7777 != 0o755 || c.Ino == st("usr/bin/su").Ino {
		t.Errorf("the cache's inode changed: mode %o", c.Mode&0o7777)
	}
	if s := st("usr/bin/tool"); s.Uid != 1000 || s.Gid != 1000 {
		t.Errorf("tool owned %d:%d", s.Uid, s.Gid)
	}
	if a, b := st("usr/bin/a"), st("usr/bin/b"); a.Ino != b.Ino || a.Mode&0o7777 != 02755 || a.Gid != 5 {
		t.Errorf("hard links: %d %d mode %o gid %d", a.Ino, b.Ino, a.Mode&0o7777, a.Gid)
	}
	if s := st("dev/null"); s.Mode&unix.S_IFMT != unix.S_IFCHR || s.Rdev != unix.Mkdev(1, 3) || s.Mode&0o777 != 0o666 {
		t.Errorf("dev/null: mode %o rdev %x", s.Mode, s.Rdev)
	}
	buf := make([]byte, 64)
	if n, err := unix.Lgetxattr(filepath.Join(tr, "usr/bin/ping"), "security.capability", buf); err != nil || string(buf[:n]) != string(capNetRaw) {
		t.Errorf("ping capability: %x %v", buf[:n], err)
	}
	if s := st("usr"); s.Mode&0o777 != 0o750 {
		t.Errorf("usr mode %o", s.Mode&0o777)
	}
	// Once more changes nothing.
	before := st("usr/bin/su").Ino
	if err := Materialize(tr, m); err != nil || st("usr/bin/su").Ino != before {
		t.Errorf("second run: %v, inode changed %v", err, st("usr/bin/su").Ino != before)
	}
}
