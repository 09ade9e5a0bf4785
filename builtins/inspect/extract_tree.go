package inspect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sxb-build/sxb/builtins/tree"
)

// extractor writes a file system's tree below a directory. Every object
// is created relative to the descriptor of its (just created) parent with
// O_EXCL/O_NOFOLLOW semantics, and later reopened with openat2
// RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, so no symlink of the image — they
// are written, never followed — can redirect a write out of the tree.
type extractor struct {
	ctx    context.Context
	fs     fsReader
	res    *Extracted
	meta   *tree.Meta
	rootFD int
	// links maps the key of every non-directory inode written to its
	// first path; dirs holds the keys of directories entered.
	links map[uint64]string
	dirs  map[uint64]bool
	// tails are squashfs fragment tails, written once the tree is done
	// in fragment order so each fragment block is read once.
	tails []pendingTail
	// Budgets; negative means unlimited.
	bytesLeft, entriesLeft, xattrsLeft int64
}

type pendingTail struct {
	rel   string
	t     *fragTail
	mtime int64
}

var (
	errBomb    = errors.New("the image expands beyond the content limit (a decompression bomb?)")
	errEntries = errors.New("the image holds more directory entries than its size allows (shared listings?)")
)

// run extracts into dest (the file system's root at dest/prefix) and
// removes what it wrote when it fails.
func (x *extractor) run(dest, prefix string) (err error) {
	created := false
	if err := os.Mkdir(dest, 0o755); err == nil {
		created = true
	} else if !errors.Is(err, os.ErrExist) {
		return err
	}
	fd, err := unix.Open(dest, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", dest, err)
	}
	defer unix.Close(fd)
	if names, err := os.ReadDir(dest); err != nil || len(names) > 0 {
		if err == nil {
			err = fmt.Errorf("%s is not empty", dest)
		}
		return err
	}
	if created {
		unix.Fchmod(fd, 0o755)
	}
	x.rootFD = fd
	defer func() {
		if err != nil {
			x.cleanup(dest, created)
		}
	}()
	root, err := x.fs.root()
	if err != nil {
		return err
	}
	if root.kind != tree.Dir {
		return fmt.Errorf("the root of the file system is a %v", root.kind)
	}
	x.dirs[root.key] = true
	dirFD := fd
	if prefix != "" {
		if dirFD, err = x.mkdir(fd, prefix, prefix, root); err != nil {
			return err
		}
		defer unix.Close(dirFD)
	}
	if err := x.dir(dirFD, prefix, root, root.key, 0); err != nil {
		return err
	}
	if err := x.finishDir(dirFD, prefix, root); err != nil {
		return err
	}
	if prefix != "" {
		unix.Futimes(fd, []unix.Timeval{{Sec: root.mtime}, {Sec: root.mtime}})
	}
	return x.writeTails()
}

// cleanup removes everything below dest, and dest when Extract made it.
func (x *extractor) cleanup(dest string, created bool) {
	if created {
		os.RemoveAll(dest)
		return
	}
	ents, _ := os.ReadDir(dest)
	for _, e := range ents {
		os.RemoveAll(filepath.Join(dest, e.Name()))
	}
}

// checkName refuses names a directory entry cannot have.
func checkName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("invalid file name %q", name)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("file name %q contains '/' or NUL", name)
	case len(name) > 255:
		return fmt.Errorf("file name %.40q... is longer than 255 bytes", name)
	}
	return nil
}

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

func display(rel string) string { return "/" + rel }

// dir writes the entries of directory d (already created at dirFD, path
// rel) and everything below them.
func (x *extractor) dir(dirFD int, rel string, d *object, parent uint64, depth int) error {
	if depth >= maxDepth {
		return fmt.Errorf("%s: directories nested deeper than %d levels", display(rel), maxDepth)
	}
	// inner is an error of an entry, which names its path already.
	var inner error
	var dots [2]bool
	err := x.fs.entries(d, func(name string, key uint64) error {
		if err := x.ctx.Err(); err != nil {
			inner = err
			return err
		}
		if x.entriesLeft == 0 {
			return errEntries
		}
		x.entriesLeft--
		// erofs lists "." and "..": once each, for this directory and
		// its parent.
		switch {
		case name == "." && !dots[0] && key == d.key:
			dots[0] = true
			return nil
		case name == ".." && !dots[1] && key == parent:
			dots[1] = true
			return nil
		}
		if err := checkName(name); err != nil {
			return err
		}
		crel := join(rel, name)
		inner = x.entry(dirFD, name, crel, key, d.key, depth)
		if errors.Is(inner, unix.EEXIST) {
			inner = fmt.Errorf("%s: duplicate directory entry", display(crel))
		}
		return inner
	})
	if err != nil && err != inner {
		err = fmt.Errorf("%s: %w", display(rel), err)
	}
	return err
}

// entry writes one directory entry.
func (x *extractor) entry(dirFD int, name, rel string, key, dirKey uint64, depth int) error {
	if first, ok := x.links[key]; ok {
		return x.hardLink(dirFD, name, rel, first)
	}
	if x.dirs[key] {
		return fmt.Errorf("%s: directory loop (an enclosing or earlier directory appears again)", display(rel))
	}
	o, err := x.fs.object(key)
	if err != nil {
		return fmt.Errorf("%s: %w", display(rel), err)
	}
	if len(o.xattrs) > 0 {
		for k, v := range o.xattrs {
			x.xattrsLeft -= int64(len(k) + len(v))
		}
		if x.xattrsLeft < 0 {
			return fmt.Errorf("%s: the image's xattrs add up to more than its size allows", display(rel))
		}
	}
	switch o.kind {
	case tree.Dir:
		x.dirs[key] = true
		fd, err := x.mkdir(dirFD, name, rel, o)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := x.dir(fd, rel, o, dirKey, depth+1); err != nil {
			return err
		}
		return x.finishDir(fd, rel, o)
	case tree.Symlink:
		if strings.IndexByte(o.target, 0) >= 0 {
			return fmt.Errorf("%s: symlink target contains NUL", display(rel))
		}
		if err := unix.Symlinkat(o.target, dirFD, name); err != nil {
			return fmt.Errorf("%s: %w", display(rel), err)
		}
		ts := []unix.Timespec{{Sec: o.mtime}, {Sec: o.mtime}}
		if err := unix.UtimesNanoAt(dirFD, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("%s: %w", display(rel), err)
		}
		x.record(rel, o, 0o777)
		x.res.Symlinks++
	default:
		if err := x.file(dirFD, name, rel, o); err != nil {
			return fmt.Errorf("%s: %w", display(rel), err)
		}
	}
	x.links[key] = rel
	return nil
}

// mkdir creates the directory name with the permissions of o (and owner
// access, which the extraction needs) and opens it.
func (x *extractor) mkdir(dirFD int, name, rel string, o *object) (int, error) {
	if err := unix.Mkdirat(dirFD, name, 0o700); err != nil {
		return -1, fmt.Errorf("%s: %w", display(rel), err)
	}
	fd, err := unix.Openat(dirFD, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("%s: %w", display(rel), err)
	}
	// Fchmod sets the bits the umask took from Mkdirat.
	if err := unix.Fchmod(fd, o.mode&0o777|0o700); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("%s: %w", display(rel), err)
	}
	x.res.Dirs++
	return fd, nil
}

// finishDir records a directory's metadata and sets its time, once
// everything inside it is written.
func (x *extractor) finishDir(fd int, rel string, o *object) error {
	x.record(rel, o, o.mode&0o777|0o700)
	if err := unix.Futimes(fd, []unix.Timeval{{Sec: o.mtime}, {Sec: o.mtime}}); err != nil {
		return fmt.Errorf("%s: %w", display(rel), err)
	}
	return nil
}

// file writes a regular file, or the empty placeholder of a device,
// FIFO or socket.
func (x *extractor) file(dirFD int, name, rel string, o *object) error {
	fd, err := unix.Openat(dirFD, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	perm := o.mode&0o777 | 0o600
	var tail *fragTail
	if o.kind == tree.Regular {
		if tail, err = x.fs.content(o, limited{f, x}, true); err != nil {
			return err
		}
		if err := f.Truncate(o.size); err != nil {
			return err
		}
		x.res.Files++
	} else {
		x.res.Special++
	}
	if err := f.Chmod(os.FileMode(perm)); err != nil {
		return err
	}
	if tail != nil {
		x.tails = append(x.tails, pendingTail{rel: rel, t: tail, mtime: o.mtime})
	} else if err := unix.Futimes(fd, []unix.Timeval{{Sec: o.mtime}, {Sec: o.mtime}}); err != nil {
		return err
	}
	x.record(rel, o, perm)
	return f.Close()
}

// limited is a file that counts the content written against the limit.
type limited struct {
	f *os.File
	x *extractor
}

func (l limited) WriteAt(p []byte, off int64) (int, error) {
	if l.x.bytesLeft >= 0 {
		if int64(len(p)) > l.x.bytesLeft {
			return 0, errBomb
		}
		l.x.bytesLeft -= int64(len(p))
	}
	l.x.res.Bytes += int64(len(p))
	return l.f.WriteAt(p, off)
}

// openBeneath opens rel below the root without following any symlink.
func (x *extractor) openBeneath(rel string, flags uint64) (int, error) {
	for {
		fd, err := unix.Openat2(x.rootFD, rel, &unix.OpenHow{Flags: flags | unix.O_CLOEXEC | unix.O_NOFOLLOW,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS})
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}

// hardLink makes rel another name of the inode first was written as.
func (x *extractor) hardLink(dirFD int, name, rel, first string) error {
	parent := path.Dir(first)
	pfd, err := x.openBeneath(parent, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("%s: hard link to %s: %w", display(rel), display(first), err)
	}
	defer unix.Close(pfd)
	if err := unix.Linkat(pfd, path.Base(first), dirFD, name, 0); err != nil {
		return fmt.Errorf("%s: hard link to %s: %w", display(rel), display(first), err)
	}
	if o, ok := x.meta.Get(first); ok {
		x.meta.Set(rel, o)
	}
	x.res.HardLinks++
	return nil
}

// record keeps in the metadata what the object on disk (with permission
// bits perm, owned by whoever extracts) does not say.
func (x *extractor) record(rel string, o *object, perm uint32) {
	var ov tree.Override
	if o.mode != perm {
		ov.Mode = tree.Ptr(o.mode)
	}
	if o.uid != 0 {
		ov.UID = tree.Ptr(o.uid)
	}
	if o.gid != 0 {
		ov.GID = tree.Ptr(o.gid)
	}
	if len(o.xattrs) > 0 {
		ov.Xattrs = o.xattrs
	}
	switch o.kind {
	case tree.CharDev, tree.BlockDev:
		ov.Rdev = tree.Ptr(o.rdev)
		fallthrough
	case tree.FIFO, tree.Socket:
		ov.Kind, ov.Mode = tree.Ptr(o.kind), tree.Ptr(o.mode)
	}
	if ov.Kind != nil || ov.Mode != nil || ov.UID != nil || ov.GID != nil || ov.Xattrs != nil || ov.Rdev != nil {
		x.meta.Set(rel, ov)
	}
}

// writeTails writes the squashfs fragment tails, grouped by fragment
// block, and then the times of their files.
func (x *extractor) writeTails() error {
	sort.SliceStable(x.tails, func(i, j int) bool {
		a, b := x.tails[i].t, x.tails[j].t
		return a.index < b.index || a.index == b.index && a.off < b.off
	})
	for _, p := range x.tails {
		if err := x.ctx.Err(); err != nil {
			return err
		}
		fd, err := x.openBeneath(p.rel, unix.O_WRONLY)
		if err != nil {
			return fmt.Errorf("%s: %w", display(p.rel), err)
		}
		f := os.NewFile(uintptr(fd), p.rel)
		err = x.fs.writeTail(p.t, limited{f, x})
		if err == nil {
			err = unix.Futimes(fd, []unix.Timeval{{Sec: p.mtime}, {Sec: p.mtime}})
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%s: %w", display(p.rel), err)
		}
	}
	return nil
}

var _ io.WriterAt = limited{}
