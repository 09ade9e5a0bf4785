package sandbox

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sxb-build/sxb/builtins/tree"
)

// The sandbox's root is an overlay mounted with the new mount API, detached
// at first: as root the keeper mounts it (its layers are idmapped mounts,
// which only a mount made in the initial user namespace may use) and hands
// it to the init; otherwise the init mounts it inside the user namespace.

// mountPoint is a place in the sandbox's root something is mounted on.
type mountPoint struct {
	Rel string `json:"rel"`
	Dir bool   `json:"dir"`
}

// standardPoints are mounted on in every sandbox, in this order, before the
// binds.
var standardPoints = []mountPoint{{"proc", true}, {"dev", true}, {"tmp", true}, {"run", true}}

// layerSet is the open layers of an overlay.
type layerSet struct {
	lower        []int // top-most first
	upper, work  int
	scaffold     int
	scaffoldPath string // where the scaffold directory can be written
	// userxattr keeps overlay metadata in user.overlay.* attributes, as a
	// mount inside a user namespace must.
	userxattr bool
	names     []string // the lower trees, for messages
}

// prepareRoot mounts the overlay of layers, detached, and resolves every
// mount point inside it (symlinks are followed within the tree). What is
// missing is created in the scaffold layer, never in the tree, and the
// overlay mounted again. It returns the mount and the resolved points,
// relative to the root.
func prepareRoot(ls *layerSet, points []mountPoint) (int, []string, error) {
	for pass := 0; ; pass++ {
		mfd, err := mountOverlay(ls)
		if err != nil {
			return -1, nil, err
		}
		root := fmt.Sprintf("/proc/self/fd/%d", mfd)
		rels := make([]string, len(points))
		missing := false
		for i, p := range points {
			host, err := tree.ResolveFollow(root, p.Rel)
			if err != nil {
				unix.Close(mfd)
				return -1, nil, fmt.Errorf("mount point /%s: %w", p.Rel, err)
			}
			rel, _ := filepath.Rel(root, host)
			rels[i] = filepath.ToSlash(rel)
			st, err := os.Lstat(host)
			if err == nil {
				if st.IsDir() != p.Dir {
					unix.Close(mfd)
					return -1, nil, fmt.Errorf("mount point /%s: the tree has a %s there", p.Rel, kindName(!p.Dir))
				}
				continue
			}
			if pass > 0 {
				unix.Close(mfd)
				return -1, nil, fmt.Errorf("mount point /%s: cannot be made: %w", p.Rel, err)
			}
			missing = true
			if err := addToScaffold(ls.scaffoldPath, rel, p.Dir); err != nil {
				unix.Close(mfd)
				return -1, nil, fmt.Errorf("mount point /%s: %w", p.Rel, err)
			}
		}
		if !missing {
			return mfd, rels, nil
		}
		unix.Close(mfd)
	}
}

func kindName(dir bool) string {
	if dir {
		return "directory"
	}
	return "file"
}

// addToScaffold creates rel (a directory or an empty file) and its parents in
// the scaffold directory.
func addToScaffold(scaffold, rel string, dir bool) error {
	p := filepath.Join(scaffold, filepath.FromSlash(rel))
	if err := tree.MkdirAll(filepath.Dir(p)); err != nil {
		return err
	}
	if dir {
		return tree.MkdirAll(p)
	}
	return os.WriteFile(p, nil, 0o644)
}

// mountOverlay mounts the overlay of ls, detached, with the scaffold as the
// bottom-most layer. Layers are given to the kernel as open directories
// (Linux 6.13 and later), so no path needs escaping or looking up.
func mountOverlay(ls *layerSet) (int, error) {
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("overlayfs: %w", err)
	}
	defer unix.Close(fsfd)
	fail := func(what string, err error) (int, error) {
		return -1, fmt.Errorf("mounting the overlay: %s: %w%s", what, err, fsLog(fsfd))
	}
	if ls.userxattr {
		if err := unix.FsconfigSetFlag(fsfd, "userxattr"); err != nil {
			return fail("userxattr", err)
		}
	}
	for i, fd := range ls.lower {
		if err := unix.FsconfigSetFd(fsfd, "lowerdir+", fd); err != nil {
			return fail("lower tree "+ls.names[i], err)
		}
	}
	if err := unix.FsconfigSetFd(fsfd, "lowerdir+", ls.scaffold); err != nil {
		return fail("scaffold layer", err)
	}
	if err := unix.FsconfigSetFd(fsfd, "upperdir", ls.upper); err != nil {
		return fail("tree", err)
	}
	if err := unix.FsconfigSetFd(fsfd, "workdir", ls.work); err != nil {
		return fail("work directory", err)
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fail("create", err)
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return fail("fsmount", err)
	}
	return mfd, nil
}

// fsLog returns what the kernel logged for a file system context (it
// explains most mount failures), as " (message; message)".
func fsLog(fsfd int) string {
	var msgs []string
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(fsfd, buf)
		if err != nil || n <= 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	if len(msgs) == 0 {
		return ""
	}
	return " (" + strings.Join(msgs, "; ") + ")"
}

// cloneMount returns a detached copy of the mounts at and below src (only
// the one at src when idmapping), read-only if asked, idmapped with the
// user namespace userns unless it is -1.
func cloneMount(src string, readOnly bool, userns int) (int, error) {
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
	if userns < 0 {
		flags |= unix.AT_RECURSIVE
	}
	t, err := unix.OpenTree(unix.AT_FDCWD, src, flags)
	if err != nil {
		return -1, fmt.Errorf("cloning the mount of %s: %w", src, err)
	}
	var attr unix.MountAttr
	if readOnly {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
	}
	if userns >= 0 {
		attr.Attr_set |= unix.MOUNT_ATTR_IDMAP
		attr.Userns_fd = uint64(userns)
	}
	if attr.Attr_set != 0 {
		at := uint(unix.AT_EMPTY_PATH)
		if userns < 0 {
			at |= unix.AT_RECURSIVE
		}
		if err := unix.MountSetattr(t, "", at, &attr); err != nil {
			unix.Close(t)
			if userns >= 0 {
				return -1, fmt.Errorf("idmapping %s (its file system must support idmapped mounts): %w", src, err)
			}
			return -1, fmt.Errorf("making %s read-only: %w", src, err)
		}
	}
	return t, nil
}

// openDir opens the directory rel below dirfd for use as a layer.
func openDir(dirfd int, rel string) (int, error) {
	fd, err := unix.Openat(dirfd, rel, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("opening a layer: %w", err)
	}
	return fd, nil
}

// closeAll closes fds.
func closeAll(fds ...int) {
	for _, fd := range fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// pointsFor lists the mount points of c: the standard ones, then the binds.
func pointsFor(c *containerConfig, bindDirs []bool) []mountPoint {
	if c.TreeAt != "" {
		return nil // mounted on the sandbox's own root, not in the tree
	}
	points := append([]mountPoint(nil), standardPoints...)
	for i, b := range c.Binds {
		points = append(points, mountPoint{Rel: strings.TrimPrefix(path.Clean(b.Target), "/"), Dir: bindDirs[i]})
	}
	return points
}
