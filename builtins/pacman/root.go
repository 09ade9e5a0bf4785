package pacman

import (
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/sxb-build/sxb/builtins/tree"
)

// root is a tree being filled. Every write goes through a directory
// descriptor opened with openat2(RESOLVE_IN_ROOT) and a last component
// created with O_EXCL/O_NOFOLLOW (or *at calls that do not follow it), so
// no symlink, whoever made it, sends a write outside the tree. This is the
// approach of builtins/deb's extractor.
//
// TODO(sxb): move to builtins/tree's shared confinement primitive once it
// lands; this type only needs openDir, mkdirAll and readFile from it.
type root struct {
	dir string
	fd  int
	// resolved caches where a payload directory is in the tree after
	// following symlinks (merged-/usr links): directories are created
	// right after they are resolved and never replaced by symlinks, so
	// the answer does not change.
	resolved map[string]string
	// created is called with every directory mkdirAll makes.
	created func(rel string)
}

func openRoot(dir string) (*root, error) {
	if err := tree.MkdirAll(dir); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", dir, err)
	}
	return &root{dir: dir, fd: fd, resolved: map[string]string{}}, nil
}

func (r *root) close() { unix.Close(r.fd) }

func orDot(s string) string {
	if s == "" {
		return "."
	}
	return s
}

// openat2 opens rel (resolved inside the root) with flags.
func (r *root) openat2(rel string, flags uint64) (int, error) {
	for {
		fd, err := unix.Openat2(r.fd, orDot(rel), &unix.OpenHow{
			Flags:   flags | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
		})
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}

// openDir opens the directory rel as an O_PATH descriptor.
func (r *root) openDir(rel string) (int, error) {
	return r.openat2(rel, unix.O_PATH|unix.O_DIRECTORY)
}

// mkdirAll creates the directory rel and its missing parents (mode 0755,
// whatever the umask) and returns an O_PATH descriptor of it.
func (r *root) mkdirAll(rel string) (int, error) {
	fd, err := r.openDir(rel)
	if err != unix.ENOENT {
		if err != nil {
			return -1, fmt.Errorf("%s: %w", orDot(rel), err)
		}
		return fd, nil
	}
	parent := path.Dir(rel)
	if parent == "." {
		parent = ""
	}
	pfd, err := r.mkdirAll(parent)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	base := path.Base(rel)
	switch err := unix.Mkdirat(pfd, base, 0o755); err {
	case nil:
		if err := unix.Fchmodat(pfd, base, 0o755, 0); err != nil {
			return -1, fmt.Errorf("%s: %w", rel, err)
		}
		if r.created != nil {
			r.created(rel)
		}
	case unix.EEXIST:
	default:
		return -1, fmt.Errorf("%s: %w", rel, err)
	}
	if fd, err = r.openDir(rel); err != nil {
		return -1, fmt.Errorf("%s: %w", rel, err)
	}
	return fd, nil
}

// resolveDir maps the payload directory rel to where it is in the tree,
// following symlinks inside the root.
func (r *root) resolveDir(rel string) (string, error) {
	if rel == "" {
		return "", nil
	}
	if res, ok := r.resolved[rel]; ok {
		return res, nil
	}
	p, err := tree.ResolveRel(r.dir, rel+"/x")
	if err != nil {
		return "", err
	}
	res := path.Dir(p)
	if res == "." {
		res = ""
	}
	r.resolved[rel] = res
	return res, nil
}

// readFile reads a file of the tree, every symlink resolved inside it.
func (r *root) readFile(rel string) ([]byte, error) {
	fd, err := r.openat2(rel, unix.O_RDONLY)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: rel, Err: err}
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	return io.ReadAll(f)
}

// writeFile creates rel with content and mode perm (replacing a file
// there), parents created as needed.
func (r *root) writeFile(rel string, content []byte, perm uint32) error {
	pfd, err := r.mkdirAll(path.Dir(rel))
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	tmp := ".sxb-tmp-" + path.Base(rel)
	unix.Unlinkat(pfd, tmp, 0)
	fd, err := unix.Openat(pfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
	if err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	f := os.NewFile(uintptr(fd), rel)
	_, err = f.Write(content)
	if err == nil {
		err = unix.Fchmod(fd, perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(pfd, tmp, pfd, path.Base(rel))
	}
	if err != nil {
		unix.Unlinkat(pfd, tmp, 0)
		return fmt.Errorf("%s: %w", rel, err)
	}
	return nil
}

// setTime sets the modification (and access) time of rel, not following
// a symlink in its last component.
func (r *root) setTime(rel string, sec int64) error {
	pfd, err := r.openDir(path.Dir(rel))
	if err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	defer unix.Close(pfd)
	ts := unix.NsecToTimespec(sec * 1e9)
	if err := unix.UtimesNanoAt(pfd, path.Base(rel), []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	return nil
}
