package squashfs

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/testenv"
)

var compressions = []string{"gzip", "xz", "zstd", "lz4"}

func TestUnsquashfsListing(t *testing.T) {
	testenv.NeedTool(t, "unsquashfs")
	root := makeTree(t)
	wantLL, wantPF := expectedListing(root), expectedPseudo(root)
	for _, c := range compressions {
		t.Run(c, func(t *testing.T) {
			img := writeImage(t, root, Options{Compression: c, Epoch: 1700000000})
			diffLines(t, "unsquashfs -lln", wantLL, actualListing(t, img))
			diffLines(t, "unsquashfs -pf", wantPF, actualPseudo(t, img))
			stat := run(t, "unsquashfs", "-s", img)
			for _, want := range []string{"Compression " + c, "Block size 131072", "Filesystem is exportable via NFS",
				"Duplicates are removed", "Number of inodes " + strconv.Itoa(countInodes(root)), "Number of xattr ids 7"} {
				if !strings.Contains(stat, want) {
					t.Errorf("unsquashfs -s lacks %q:\n%s", want, stat)
				}
			}
		})
	}
}

func countInodes(root *tree.Node) int {
	n := 0
	root.Walk(func(x *tree.Node) error {
		if x.Link == nil {
			n++
		}
		return nil
	})
	return n
}

// checkTree compares a directory on disk (an extraction or a mount) with the
// tree: every path and no more, kinds, modes, owners, sizes, mtimes, device
// numbers, symlink targets, contents, xattrs and, when inodes is set,
// hard-link identity and link counts.
func checkTree(t *testing.T, dir string, root *tree.Node, inodes bool) {
	t.Helper()
	seen := map[*tree.Node]uint64{}
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	root.Walk(func(n *tree.Node) error {
		p := filepath.Join(dir, n.Path)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			fail("%s: %v", n.Path, err)
			return nil
		}
		tn := n
		if n.Link != nil {
			tn = n.Link
		}
		kinds := map[uint32]tree.Kind{unix.S_IFREG: tree.Regular, unix.S_IFDIR: tree.Dir, unix.S_IFLNK: tree.Symlink,
			unix.S_IFCHR: tree.CharDev, unix.S_IFBLK: tree.BlockDev, unix.S_IFIFO: tree.FIFO, unix.S_IFSOCK: tree.Socket}
		if k := kinds[st.Mode&unix.S_IFMT]; k != tn.Kind {
			fail("%s: kind %v, want %v", n.Path, k, tn.Kind)
			return nil
		}
		if tn.Kind != tree.Symlink && st.Mode&07777 != tn.Mode {
			fail("%s: mode %o, want %o", n.Path, st.Mode&07777, tn.Mode)
		}
		if st.Uid != tn.UID || st.Gid != tn.GID {
			fail("%s: owner %d:%d, want %d:%d", n.Path, st.Uid, st.Gid, tn.UID, tn.GID)
		}
		if tn.Kind != tree.Dir && st.Mtim.Sec != tn.Mtime {
			fail("%s: mtime %d, want %d", n.Path, st.Mtim.Sec, tn.Mtime)
		}
		switch tn.Kind {
		case tree.Regular:
			if st.Size != tn.Size {
				fail("%s: size %d, want %d", n.Path, st.Size, tn.Size)
			} else if fileSum(t, p) != fileSum(t, tn.HostPath) {
				fail("%s: content differs", n.Path)
			}
		case tree.Symlink:
			if target, err := os.Readlink(p); err != nil || target != tn.Target {
				fail("%s: target %q (%v), want %q", n.Path, target, err, tn.Target)
			}
		case tree.CharDev, tree.BlockDev:
			if unix.Major(st.Rdev) != tree.Major(tn.Rdev) || unix.Minor(st.Rdev) != tree.Minor(tn.Rdev) {
				fail("%s: device %d:%d, want %d:%d", n.Path, unix.Major(st.Rdev), unix.Minor(st.Rdev), tree.Major(tn.Rdev), tree.Minor(tn.Rdev))
			}
		case tree.Dir:
			ents, err := os.ReadDir(p)
			if err != nil {
				fail("%s: %v", n.Path, err)
				break
			}
			var got, want []string
			for _, e := range ents {
				got = append(got, e.Name())
			}
			for _, c := range n.Children {
				want = append(want, c.Name)
			}
			if strings.Join(got, "/") != strings.Join(want, "/") {
				fail("%s: entries %d, want %d", n.Path, len(got), len(want))
			}
			if inodes && uint32(st.Nlink) != nlinkOf(n) {
				fail("%s: nlink %d, want %d", n.Path, st.Nlink, nlinkOf(n))
			}
		}
		if got, want := readXattrs(t, p), tn.Xattrs; !sameXattrs(got, want) {
			fail("%s: xattrs %q, want %q", n.Path, got, want)
		}
		if inodes {
			if n.Link != nil {
				if seen[n.Link] != st.Ino {
					fail("%s: inode %d, want that of %s (%d)", n.Path, st.Ino, n.Link.Path, seen[n.Link])
				}
			} else {
				seen[n] = st.Ino
			}
			if tn.Kind != tree.Dir && uint32(st.Nlink) != tn.LinkCount() {
				fail("%s: nlink %d, want %d", n.Path, st.Nlink, tn.LinkCount())
			}
		}
		return nil
	})
	if len(errs) > 0 {
		if len(errs) > 30 {
			errs = append(errs[:30], "...")
		}
		t.Fatalf("%s differs from the tree:\n  %s", dir, strings.Join(errs, "\n  "))
	}
}

func readXattrs(t *testing.T, p string) map[string][]byte {
	t.Helper()
	buf := make([]byte, 1<<16)
	n, err := unix.Llistxattr(p, buf)
	if err == unix.EOPNOTSUPP {
		return map[string][]byte{} // an image without any xattrs
	}
	if err != nil {
		t.Fatalf("listxattr %s: %v", p, err)
	}
	out := map[string][]byte{}
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		v := make([]byte, 1<<16)
		m, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			t.Fatalf("getxattr %s %s: %v", p, name, err)
		}
		out[name] = v[:m]
	}
	return out
}

func sameXattrs(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

func TestUnsquashfsExtract(t *testing.T) {
	testenv.NeedTool(t, "unsquashfs")
	testenv.NeedRoot(t) // devices, owners and trusted./security. xattrs
	root := makeTree(t)
	for _, c := range compressions {
		t.Run(c, func(t *testing.T) {
			img := writeImage(t, root, Options{Compression: c})
			dest := filepath.Join(t.TempDir(), "x")
			run(t, "unsquashfs", "-n", "-d", dest, img)
			checkTree(t, dest, root, false)
		})
	}
}

func TestKernelMount(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "mount", "umount")
	root := makeTree(t)
	for _, c := range compressions {
		t.Run(c, func(t *testing.T) {
			img := writeImage(t, root, Options{Compression: c})
			mnt := mountImage(t, img)
			checkTree(t, mnt, root, true)
		})
	}
}

func mountImage(t *testing.T, img string) string {
	t.Helper()
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "mount", "-t", "squashfs", "-o", "loop,ro", img, mnt)
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount: %v: %s", err, out)
		}
	})
	return mnt
}
