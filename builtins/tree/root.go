package tree

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Root is a directory that untrusted content, such as package payloads, is
// written into. The kernel resolves every path given to it as if the
// directory were "/" (openat2 with RESOLVE_IN_ROOT and
// RESOLVE_NO_MAGICLINKS): ".." stops at the root, absolute symlinks start
// again at it, and no symlink, whoever made it and however chained, leads
// outside. Where an object is created, replaced, removed or has its
// metadata changed, the last component of the path is never followed: a
// symlink there is acted on itself, never written through.
//
// A Root is safe for concurrent use, and so are distinct DirHandles.
//
// The standard library's os.Root is not used: it refuses to follow a
// symlink with an absolute target or one climbing above the root, where
// installing a package must follow it inside the tree ("bin" ->
// "/usr/bin"), as dpkg and rpm do in a chroot. The same goes for
// github.com/cyphar/filepath-securejoin's handles, which cover opening
// and creating directories only; what remains is a few *at system calls.
type Root struct {
	dir string
	fd  int
}

// OpenRoot opens the existing directory dir as a Root.
func OpenRoot(dir string) (*Root, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Open(abs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: abs, Err: err}
	}
	return &Root{dir: abs, fd: fd}, nil
}

// ReadFile reads the file rel of the tree at dir through a Root: symlinks
// are followed inside the tree only. Errors name the file on the host.
func ReadFile(dir, rel string) ([]byte, error) {
	r, err := OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := r.ReadFile(rel)
	return b, r.hostError(err, rel)
}

// ReadDir lists the directory rel of the tree at dir through a Root,
// sorted by name. Errors name the directory on the host.
func ReadDir(dir, rel string) ([]fs.DirEntry, error) {
	r, err := OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	ents, err := r.ReadDir(rel)
	return ents, r.hostError(err, rel)
}

// hostError makes a *fs.PathError about rel name it on the host.
func (r *Root) hostError(err error, rel string) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &fs.PathError{Op: pe.Op, Path: filepath.Join(r.dir, rel), Err: pe.Err}
	}
	return err
}

// Close releases the root's directory descriptor.
func (r *Root) Close() error { return unix.Close(r.fd) }

// Path is the root's absolute host path.
func (r *Root) Path() string { return r.dir }

// Resolve names where rel lands in the tree: every component but the last
// is followed as the kernel follows it for the other methods (see
// ResolveRel). The name is what to record, for instance in Meta; it
// confines nothing by itself: opening it through the Root does, whatever
// the tree has become meanwhile.
func (r *Root) Resolve(rel string) (string, error) {
	return ResolveRel(r.dir, rel)
}

// openat2 opens rel below the directory fd, resolved inside the root.
func (r *Root) openat2(rel string, flags uint64) (int, error) {
	if rel == "" {
		rel = "."
	}
	for {
		fd, err := unix.Openat2(r.fd, rel, &unix.OpenHow{
			Flags:   flags | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
		})
		// The kernel asks for a retry when a rename raced the lookup.
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err != nil {
			return -1, &fs.PathError{Op: "open", Path: rel, Err: err}
		}
		return fd, nil
	}
}

// OpenDir opens the directory rel of the tree.
func (r *Root) OpenDir(rel string) (*DirHandle, error) {
	fd, err := r.openat2(rel, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	return &DirHandle{fd: fd}, nil
}

// MkdirAll opens the directory rel of the tree, creating it and missing
// parents with mode 0755 whatever the process's umask. A symlink on the
// way is followed inside the root, also when it dangles: MkdirAll then
// fails rather than creating its target.
func (r *Root) MkdirAll(rel string) (*DirHandle, error) {
	return r.MkdirAllFunc(rel, nil)
}

// MkdirAllFunc is MkdirAll calling made (when not nil) with the path of
// every directory it creates, parents first, as found in rel.
func (r *Root) MkdirAllFunc(rel string, made func(rel string)) (*DirHandle, error) {
	d, err := r.OpenDir(rel)
	if !errors.Is(err, unix.ENOENT) {
		return d, err
	}
	parent, base := split(rel)
	if base == "" {
		return nil, err
	}
	p, err := r.MkdirAllFunc(parent, made)
	if err != nil {
		return nil, err
	}
	err = p.Mkdir(base, 0o755)
	p.Close()
	switch {
	case err == nil && made != nil:
		made(rel)
	case err != nil && !errors.Is(err, fs.ErrExist):
		return nil, err
	}
	return r.OpenDir(rel)
}

// ReadFile reads the file rel of the tree, following a symlink in its last
// component too (inside the root).
func (r *Root) ReadFile(rel string) ([]byte, error) {
	fd, err := r.openat2(rel, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	return io.ReadAll(f)
}

// Open opens the file rel of the tree for reading, following a symlink in
// its last component too (inside the root). A fifo is opened without
// waiting for a writer.
func (r *Root) Open(rel string) (*os.File, error) {
	fd, err := r.openat2(rel, unix.O_RDONLY|unix.O_NONBLOCK)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), rel), nil
}

// OpenFile opens the existing file rel of the tree with flag (os.O_RDONLY,
// os.O_WRONLY or os.O_RDWR, with os.O_APPEND or os.O_TRUNC), never
// following a symlink in its last component and never creating it
// (Create does).
func (r *Root) OpenFile(rel string, flag int) (*os.File, error) {
	d, base, err := r.parent(rel)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	if err := checkName(base); err != nil {
		return nil, err
	}
	flag &^= os.O_CREATE | os.O_EXCL
	fd, err := unix.Openat(d.fd, base, flag|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: rel, Err: err}
	}
	return os.NewFile(uintptr(fd), rel), nil
}

// Readlink returns the target of the symlink rel.
func (r *Root) Readlink(rel string) (string, error) {
	d, base, err := r.parent(rel)
	if err != nil {
		return "", err
	}
	defer d.Close()
	if err := checkName(base); err != nil {
		return "", err
	}
	for size := 256; ; size *= 2 {
		b := make([]byte, size)
		n, err := unix.Readlinkat(d.fd, base, b)
		if err != nil {
			return "", &fs.PathError{Op: "readlink", Path: rel, Err: err}
		}
		if n < size {
			return string(b[:n]), nil
		}
	}
}

// Remove removes rel (a file, a symlink itself or an empty directory).
func (r *Root) Remove(rel string) error {
	d, base, err := r.parent(rel)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Remove(base)
}

// ReadDir lists the directory rel of the tree, sorted by name.
func (r *Root) ReadDir(rel string) ([]fs.DirEntry, error) {
	fd, err := r.openat2(rel, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	ents, err := f.ReadDir(-1)
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return ents, err
}

// WriteFile replaces rel with a file holding b with permission bits perm,
// atomically, creating missing parent directories (see MkdirAll).
func (r *Root) WriteFile(rel string, b []byte, perm fs.FileMode) error {
	parent, base := split(rel)
	if base == "" {
		return fmt.Errorf("writing %q: %w", rel, errNotAName)
	}
	d, err := r.MkdirAll(parent)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.WriteFile(base, b, perm)
}

// Lstat describes rel without following a symlink in its last component.
func (r *Root) Lstat(rel string) (fs.FileInfo, error) {
	d, base, err := r.parent(rel)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.lstat(base)
}

// Chmod sets the permission bits of rel, never following a symlink in
// its last component.
func (r *Root) Chmod(rel string, perm fs.FileMode) error {
	d, base, err := r.parent(rel)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.chmod(base, perm)
}

// Chtimes sets the access and modification times of rel to mtime, never
// following a symlink in its last component.
func (r *Root) Chtimes(rel string, mtime time.Time) error {
	d, base, err := r.parent(rel)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.chtimes(base, mtime)
}

// parent opens the directory holding rel and returns rel's last component
// ("." for the root itself).
func (r *Root) parent(rel string) (*DirHandle, string, error) {
	parent, base := split(rel)
	if base == "" {
		parent, base = ".", "."
	}
	d, err := r.OpenDir(parent)
	return d, base, err
}

// split cuts rel into the path of its parent and its last component,
// without resolving or cleaning anything ("" base: rel names the root).
func split(rel string) (parent, base string) {
	rel = strings.TrimRight(rel, "/")
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		if rel == "." {
			return ".", ""
		}
		return ".", rel
	}
	return rel[:i], rel[i+1:]
}

// DirHandle is an open directory of a Root. Its methods take names of entries
// in it, a single path component each, and never follow a symlink named.
type DirHandle struct {
	fd int
}

// errNotAName is returned for a name that is not a single path component.
var errNotAName = fmt.Errorf("not a name in a directory: %w", ErrUnsafePath)

// checkName refuses names that are not one component of a path: with a
// directory descriptor, "../x" or "a/b" would be resolved by the kernel
// without the root's confinement.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("%q: %w", name, errNotAName)
	}
	return nil
}

// Close releases the directory descriptor.
func (d *DirHandle) Close() error { return unix.Close(d.fd) }

// Create creates the file name, which must not exist, for writing, with
// exactly the permission bits perm.
func (d *DirHandle) Create(name string, perm fs.FileMode) (*os.File, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	fd, err := unix.Openat(d.fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		return nil, &fs.PathError{Op: "create", Path: name, Err: err}
	}
	// The umask must not decide the mode.
	if err := unix.Fchmod(fd, uint32(perm.Perm())); err != nil {
		unix.Close(fd)
		unix.Unlinkat(d.fd, name, 0)
		return nil, &fs.PathError{Op: "chmod", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

// WriteFile replaces name with a file holding b with permission bits
// perm, atomically (written under a temporary name, then renamed).
func (d *DirHandle) WriteFile(name string, b []byte, perm fs.FileMode) error {
	if err := checkName(name); err != nil {
		return err
	}
	tmp := TempName()
	f, err := d.Create(tmp, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = d.Rename(tmp, name)
	}
	if err != nil {
		unix.Unlinkat(d.fd, tmp, 0)
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

// TempName returns a fresh name for a temporary entry that is to be
// renamed over another in the same directory.
func TempName() string {
	return ".sxb-tmp-" + strconv.FormatUint(rand.Uint64(), 36)
}

// Mkdir creates the directory name with exactly the permission bits perm.
func (d *DirHandle) Mkdir(name string, perm fs.FileMode) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := unix.Mkdirat(d.fd, name, uint32(perm.Perm())); err != nil {
		return &fs.PathError{Op: "mkdir", Path: name, Err: err}
	}
	return d.chmod(name, perm)
}

// Symlink creates the symlink name pointing at target, verbatim.
func (d *DirHandle) Symlink(target, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := unix.Symlinkat(target, d.fd, name); err != nil {
		return &fs.PathError{Op: "symlink", Path: name, Err: err}
	}
	return nil
}

// Link creates name as a hard link to the entry srcName of src (a symlink
// is linked itself, not followed).
func (d *DirHandle) Link(src *DirHandle, srcName, name string) error {
	if err := checkName(srcName); err != nil {
		return err
	}
	if err := checkName(name); err != nil {
		return err
	}
	if err := unix.Linkat(src.fd, srcName, d.fd, name, 0); err != nil {
		return &fs.PathError{Op: "link", Path: name, Err: err}
	}
	return nil
}

// Rename renames from to to within the directory, replacing to.
func (d *DirHandle) Rename(from, to string) error {
	if err := checkName(from); err != nil {
		return err
	}
	if err := checkName(to); err != nil {
		return err
	}
	if err := unix.Renameat(d.fd, from, d.fd, to); err != nil {
		return &fs.PathError{Op: "rename", Path: to, Err: err}
	}
	return nil
}

// Remove removes the entry name: a file, a symlink or an empty directory.
func (d *DirHandle) Remove(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	err := unix.Unlinkat(d.fd, name, 0)
	if err == unix.EISDIR {
		err = unix.Unlinkat(d.fd, name, unix.AT_REMOVEDIR)
	}
	if err != nil {
		return &fs.PathError{Op: "remove", Path: name, Err: err}
	}
	return nil
}

// Lstat describes the entry name (a symlink itself, not its target).
func (d *DirHandle) Lstat(name string) (fs.FileInfo, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	return d.lstat(name)
}

func (d *DirHandle) lstat(name string) (fs.FileInfo, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: err}
	}
	return &fileInfo{name: name, st: st}, nil
}

// Chmod sets the permission bits of the entry name; a symlink is refused.
func (d *DirHandle) Chmod(name string, perm fs.FileMode) error {
	if err := checkName(name); err != nil {
		return err
	}
	return d.chmod(name, perm)
}

func (d *DirHandle) chmod(name string, perm fs.FileMode) error {
	err := unix.Fchmodat(d.fd, name, uint32(perm.Perm()), unix.AT_SYMLINK_NOFOLLOW)
	if err == unix.EOPNOTSUPP {
		// A symlink (whose mode cannot change), or a kernel before 6.6
		// without fchmodat2: there, check the entry is no symlink and
		// change it following links, which is what fchmodat offers.
		var st unix.Stat_t
		if err = unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
			err = unix.ELOOP
			if st.Mode&unix.S_IFMT != unix.S_IFLNK {
				err = unix.Fchmodat(d.fd, name, uint32(perm.Perm()), 0)
			}
		}
	}
	if err != nil {
		return &fs.PathError{Op: "chmod", Path: name, Err: err}
	}
	return nil
}

// Chtimes sets the access and modification times of the entry name (a
// symlink itself) to mtime.
func (d *DirHandle) Chtimes(name string, mtime time.Time) error {
	if err := checkName(name); err != nil {
		return err
	}
	return d.chtimes(name, mtime)
}

func (d *DirHandle) chtimes(name string, mtime time.Time) error {
	ts := unix.NsecToTimespec(mtime.UnixNano())
	if err := unix.UtimesNanoAt(d.fd, name, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "chtimes", Path: name, Err: err}
	}
	return nil
}

// DirCache keeps open the directory an extractor last wrote to: archive
// entries come directory by directory, and opening the parent of each
// entry anew would resolve the same path again and again.
type DirCache struct {
	// Root is the tree; Made, when set, is told about every directory
	// Get creates (see MkdirAllFunc).
	Root *Root
	Made func(rel string)

	rel string
	d   *DirHandle
}

// Get opens the directory rel, creating it as MkdirAll does. The handle
// stays valid until the next Get or Close.
func (c *DirCache) Get(rel string) (*DirHandle, error) {
	if c.d != nil && c.rel == rel {
		return c.d, nil
	}
	c.Close()
	d, err := c.Root.MkdirAllFunc(rel, c.Made)
	if err != nil {
		return nil, err
	}
	c.rel, c.d = rel, d
	return d, nil
}

// Close releases the open directory.
func (c *DirCache) Close() {
	if c.d != nil {
		c.d.Close()
	}
	c.d, c.rel = nil, ""
}

// fileInfo is the fs.FileInfo of an fstatat result.
type fileInfo struct {
	name string
	st   unix.Stat_t
}

func (fi *fileInfo) Name() string       { return fi.name }
func (fi *fileInfo) Size() int64        { return fi.st.Size }
func (fi *fileInfo) ModTime() time.Time { return time.Unix(fi.st.Mtim.Unix()) }
func (fi *fileInfo) IsDir() bool        { return fi.Mode().IsDir() }
func (fi *fileInfo) Sys() any           { return &fi.st }

// Mode converts the kernel's st_mode as os.Lstat does.
func (fi *fileInfo) Mode() fs.FileMode {
	m := fs.FileMode(fi.st.Mode & 0o777)
	switch fi.st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		m |= fs.ModeDir
	case unix.S_IFLNK:
		m |= fs.ModeSymlink
	case unix.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		m |= fs.ModeDevice
	case unix.S_IFIFO:
		m |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		m |= fs.ModeSocket
	}
	if fi.st.Mode&unix.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if fi.st.Mode&unix.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if fi.st.Mode&unix.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}
