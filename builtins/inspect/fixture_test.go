package inspect

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sxb-build/sxb/builtins/tree"
)

// capability is a security.capability value (VFS_CAP_REVISION_2,
// effective, cap_net_raw permitted).
var capability = []byte{0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

// bigSize spans several erofs blocks and squashfs blocks (128 KiB, and
// 4 KiB in the small-block cases) plus a tail in a fragment or inline.
const bigSize = 3*128<<10 + 5*4096 + 1234

// fixture writes a tree holding every kind of object the images carry
// into a new directory, the way a rootless extraction leaves it (devices,
// FIFOs and sockets are placeholders; owners, setuid bits and xattrs are
// in the returned metadata): directories with setgid and sticky bits,
// read-only and owned by others; a setuid file; a file with a capability;
// hard links across directories; an empty file; a file of several blocks
// with an all-zero block and a tail; symlinks relative, absolute and
// pointing out of the tree; every device kind; a directory whose listing
// spans several blocks; owners beyond 16 bits; distinct mtimes.
func fixture(t testing.TB) (string, *tree.Meta) {
	dir := filepath.Join(t.TempDir(), "src")
	// The read-only directory must become writable again for removal.
	t.Cleanup(func() { os.Chmod(filepath.Join(dir, "usr/ro"), 0o755) })
	meta := tree.NewMeta()
	mtime := int64(1700000000)
	stamp := func(p string) {
		mtime += 7
		tm := time.Unix(mtime, 0)
		if err := os.Chtimes(p, tm, tm); err != nil {
			t.Fatal(err)
		}
	}
	file := func(rel string, content []byte, perm os.FileMode) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, perm)
		stamp(p)
	}
	rng := rand.New(rand.NewSource(1))
	big := make([]byte, bigSize)
	rng.Read(big)
	clear(big[128<<10 : 256<<10]) // a sparse block in squashfs
	file("usr/lib/big.bin", big, 0o644)
	file("usr/lib/empty", nil, 0o644)
	file("usr/lib/secret", []byte("nobody may read this\n"), 0)
	file("usr/bin/tool", []byte("#!/bin/sh\necho tool\n"), 0o755)
	meta.Set("usr/bin/tool", tree.Override{Mode: tree.Ptr(uint32(0o4755))})
	file("usr/bin/ping", bytes.Repeat([]byte("ping"), 3000), 0o755)
	meta.Set("usr/bin/ping", tree.Override{Xattrs: map[string][]byte{"security.capability": capability}})
	file("usr/lib/hard1", bytes.Repeat([]byte("hard link\n"), 500), 0o640)
	if err := os.MkdirAll(filepath.Join(dir, "usr/share"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "usr/lib/hard1"), filepath.Join(dir, "usr/share/hard2")); err != nil {
		t.Fatal(err)
	}
	owned := tree.Override{UID: tree.Ptr(uint32(1000)), GID: tree.Ptr(uint32(100)), Xattrs: map[string][]byte{"user.note": []byte("shared")}}
	meta.Set("usr/lib/hard1", owned)
	meta.Set("usr/share/hard2", owned)
	for target, name := range map[string]string{"big.bin": "usr/lib/link", "/etc/passwd": "usr/lib/abs", "../../../../outside": "usr/lib/up"} {
		p := filepath.Join(dir, name)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		mtime += 3
		lchtimes(t, p, mtime)
	}
	meta.Set("usr/lib/link", tree.Override{UID: tree.Ptr(uint32(7)), Xattrs: map[string][]byte{"trusted.sym": []byte("x")}})
	specials := []struct {
		rel  string
		kind tree.Kind
		mode uint32
		rdev uint64
		gid  uint32
	}{
		{"usr/dev/null", tree.CharDev, 0o666, tree.Mkdev(1, 3), 0},
		{"usr/dev/sda", tree.BlockDev, 0o660, tree.Mkdev(8, 0), 6},
		{"usr/dev/big", tree.BlockDev, 0o600, tree.Mkdev(259, 70000), 0},
		{"usr/dev/fifo", tree.FIFO, 0o644, 0, 0},
		{"usr/dev/sock", tree.Socket, 0o755, 0, 0},
	}
	for _, s := range specials {
		file(s.rel, nil, 0o600)
		o := tree.Override{Kind: tree.Ptr(s.kind), Mode: tree.Ptr(s.mode)}
		if s.rdev != 0 {
			o.Rdev = tree.Ptr(s.rdev)
		}
		if s.gid != 0 {
			o.GID = tree.Ptr(s.gid)
		}
		meta.Set(s.rel, o)
	}
	for i := 0; i < 400; i++ {
		content := bytes.Repeat([]byte{byte('a' + i%26)}, i*7%300)
		file(fmt.Sprintf("usr/share/many/entry-with-a-rather-long-name-%03d.txt", i), content, 0o644)
	}
	file("usr/owned/data", []byte("owned by someone else\n"), 0o640)
	// The same xattr on three inodes: mkfs.erofs shares it.
	meta.Set("usr/owned/data", tree.Override{UID: tree.Ptr(uint32(70000)), GID: tree.Ptr(uint32(70001)), Xattrs: owned.Xattrs})
	meta.Set("usr/owned", tree.Override{UID: tree.Ptr(uint32(70000)), GID: tree.Ptr(uint32(70001))})
	file("usr/tmp/.keep", nil, 0o644)
	file("usr/sgid/x", []byte("x"), 0o644)
	file("usr/ro/inside", []byte("in a read-only directory\n"), 0o444)
	file("usr/lib/extension-release.d/extension-release.fixture", []byte("ID=_any\n"), 0o644)
	file("opt/vendor/bin/run", []byte("#!/bin/sh\n"), 0o755)
	meta.Set("opt/vendor/bin/run", tree.Override{Xattrs: owned.Xattrs})
	dirModes := map[string]os.FileMode{"usr/owned": 0o750, "usr/tmp": 0o777 | os.ModeSticky, "usr/sgid": 0o755 | os.ModeSetgid, "usr/ro": 0o555}
	// Directory modes and times last, deepest first.
	var dirs []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		rel, _ := filepath.Rel(dir, dirs[i])
		if m, ok := dirModes[rel]; ok {
			if err := os.Chmod(dirs[i], m); err != nil {
				t.Fatal(err)
			}
		}
		stamp(dirs[i])
	}
	meta.Set("usr/share", tree.Override{Xattrs: map[string][]byte{"user.dir": []byte("a directory attribute")}})
	return dir, meta
}

// lchtimes sets the time of a symlink itself (os.Chtimes follows it).
func lchtimes(t testing.TB, p string, sec int64) {
	t.Helper()
	ts := []unix.Timespec{{Sec: sec}, {Sec: sec}}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatal(err)
	}
}

// loadTree loads a tree with its metadata and its own times.
func loadTree(t testing.TB, dir string, meta *tree.Meta) *tree.Node {
	t.Helper()
	root, err := tree.Load(dir, tree.Options{Meta: meta, Epoch: -1})
	if err != nil {
		t.Fatal(err)
	}
	return root
}
