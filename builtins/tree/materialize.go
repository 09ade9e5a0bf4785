package tree

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"golang.org/x/sys/unix"
)

// Materialize makes the directory dir carry on disk what meta records
// about it: every object owned as the tree says (root unless meta names
// another owner), with its mode including setuid and setgid bits, its
// extended attributes (file capabilities), and device nodes, FIFOs and
// sockets in place of their placeholders. It needs root (CAP_CHOWN,
// CAP_MKNOD, CAP_SETFCAP), which is what the rootless sidecar stands in
// for.
//
// dir may share inodes with other trees (a tree published by hard links
// from the cache): a regular file whose on-disk metadata must change is
// replaced by a copy first, so that the other names keep theirs. Hard
// links inside dir stay hard links.
func Materialize(dir string, meta *Meta) error {
	root, err := Load(dir, Options{Meta: meta, Epoch: -1})
	if err != nil {
		return err
	}
	var dirs []*Node
	times := map[*Node]unix.Timespec{} // directories' times before changes
	copied := map[*Node]string{}       // primary nodes replaced, by path
	err = root.Walk(func(n *Node) error {
		p := filepath.Join(dir, filepath.FromSlash(n.Path))
		if n.Kind == Dir {
			var st unix.Stat_t
			if err := unix.Lstat(p, &st); err != nil {
				return err
			}
			dirs = append(dirs, n)
			times[n] = st.Mtim
			return nil
		}
		return materialize(p, n, copied)
	})
	if err != nil {
		return err
	}
	// Directories last, deepest first: a directory made read-only or
	// owned by another user would refuse the changes below it.
	sort.SliceStable(dirs, func(i, j int) bool { return len(dirs[i].Path) > len(dirs[j].Path) })
	for _, n := range dirs {
		p := filepath.Join(dir, filepath.FromSlash(n.Path))
		if err := setAttrs(p, n); err != nil {
			return err
		}
		// Replacing placeholders changed the directory's time.
		t := times[n]
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{t, t}, 0); err != nil {
			return fmt.Errorf("materializing %s: %w", n.Path, err)
		}
	}
	return nil
}

// materialize gives the non-directory object at p the attributes of n.
func materialize(p string, n *Node, copied map[*Node]string) error {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return fmt.Errorf("materializing %s: %w", n.Path, err)
	}
	switch n.Kind {
	case Symlink:
		if err := os.Lchown(p, int(n.UID), int(n.GID)); err != nil {
			return fmt.Errorf("materializing %s: %w", n.Path, err)
		}
		return nil
	case CharDev, BlockDev, FIFO, Socket:
		if st.Mode&unix.S_IFMT == unix.S_IFREG {
			// A placeholder file: the object rootless extraction could
			// not create.
			typ := map[Kind]uint32{CharDev: unix.S_IFCHR, BlockDev: unix.S_IFBLK, FIFO: unix.S_IFIFO, Socket: unix.S_IFSOCK}[n.Kind]
			if err := os.Remove(p); err != nil {
				return err
			}
			if err := unix.Mknod(p, typ|n.Mode&0o7777, int(n.Rdev)); err != nil {
				return fmt.Errorf("materializing %s: %w", n.Path, err)
			}
		}
		return setAttrs(p, n)
	}
	if n.Link != nil {
		// A second name of an inode: follow what happened to the first.
		if first, ok := copied[n.Link]; ok {
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.Link(first, p)
		}
		return nil
	}
	if regularMatches(&st, n, p) {
		return nil
	}
	if err := replaceWithCopy(p, &st); err != nil {
		return fmt.Errorf("materializing %s: %w", n.Path, err)
	}
	copied[n] = p
	return setAttrs(p, n)
}

// regularMatches reports whether the file at p already has n's owner,
// mode and extended attributes.
func regularMatches(st *unix.Stat_t, n *Node, p string) bool {
	if st.Uid != n.UID || st.Gid != n.GID || st.Mode&0o7777 != n.Mode {
		return false
	}
	for k, v := range n.Xattrs {
		buf := make([]byte, len(v)+1)
		m, err := unix.Lgetxattr(p, k, buf)
		if err != nil || string(buf[:m]) != string(v) {
			return false
		}
	}
	return len(n.Xattrs) > 0 || !hasCapability(p)
}

func hasCapability(p string) bool {
	_, err := unix.Lgetxattr(p, "security.capability", nil)
	return err == nil
}

// replaceWithCopy gives p an inode of its own with the same content and
// modification time.
func replaceWithCopy(p string, st *unix.Stat_t) error {
	in, err := os.Open(p)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := p + ".sxb-copy"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, tmp, []unix.Timespec{st.Mtim, st.Mtim}, 0); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, p)
}

// setAttrs applies owner, then mode (chown clears setuid bits), then
// extended attributes (chown also clears file capabilities).
func setAttrs(p string, n *Node) error {
	if err := os.Lchown(p, int(n.UID), int(n.GID)); err != nil {
		return fmt.Errorf("materializing %s: %w", n.Path, err)
	}
	if err := unix.Fchmodat(unix.AT_FDCWD, p, n.Mode&0o7777, 0); err != nil {
		return fmt.Errorf("materializing %s: %w", n.Path, err)
	}
	for _, k := range sortedKeys(n.Xattrs) {
		if err := unix.Lsetxattr(p, k, n.Xattrs[k], 0); err != nil {
			return fmt.Errorf("materializing %s: setting %s: %w", n.Path, k, err)
		}
	}
	return nil
}

func sortedKeys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
