package inspect

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"strings"

	"github.com/sxb-build/sxb/builtins/tree"
)

// FS is the little a file-system reader offers: listing a directory and
// reading a regular file, by slash-separated path from the root.
type FS interface {
	ReadDir(p string) ([]string, error)
	ReadFile(p string) ([]byte, error)
}

// object is one inode as a file-system reader reports it.
type object struct {
	// key identifies the inode within its file system (erofs: the nid;
	// squashfs: the inode reference), for hard links and loops.
	key      uint64
	kind     tree.Kind
	mode     uint32 // permission bits with setuid, setgid, sticky
	uid, gid uint32
	mtime    int64
	// size of regular files and symlink targets; for directories, what
	// the format records.
	size   int64
	rdev   uint64
	target string
	xattrs map[string][]byte
	handle any // the reader's inode
}

// fsReader is what erofsFS and squashFS offer Extract and fsView.
type fsReader interface {
	root() (*object, error)
	// entries calls fn with each entry of the directory d and the key of
	// its inode, in on-disk order. erofs lists "." and ".." too.
	entries(d *object, fn func(name string, key uint64) error) error
	object(key uint64) (*object, error)
	// content writes the content of the regular file o to w, leaving
	// holes unwritten. With deferTail, a squashfs fragment tail is
	// returned for writeTail instead of being written.
	content(o *object, w io.WriterAt, deferTail bool) (*fragTail, error)
	writeTail(t *fragTail, w io.WriterAt) error
}

// Format limits that bound what a hostile image can make the readers
// allocate.
const (
	// maxSymlinkTarget is PATH_MAX less the terminating NUL.
	maxSymlinkTarget = 4095
	// maxXattrValue is the largest value Linux stores (XATTR_SIZE_MAX).
	maxXattrValue = 65536
	// maxXattrsPerInode bounds the names and values of one inode.
	maxXattrsPerInode = 1 << 20
	// maxFileRead is the largest file ReadFile returns.
	maxFileRead = 64 << 20
)

// readerSize returns how many bytes r holds, when it can tell.
func readerSize(r io.ReaderAt) int64 {
	switch v := r.(type) {
	case interface{ Size() int64 }:
		return v.Size()
	case *os.File:
		if fi, err := v.Stat(); err == nil {
			return fi.Size()
		}
	}
	return math.MaxInt64
}

// fsView implements FS on a reader.
type fsView struct{ r fsReader }

// maxLookupEntries bounds the entries a path lookup scans per directory.
const maxLookupEntries = 1 << 20

func (v fsView) lookup(p string) (*object, error) {
	o, err := v.r.root()
	if err != nil {
		return nil, err
	}
	for _, part := range strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/") {
		if part == "" {
			continue
		}
		if o.kind != tree.Dir {
			return nil, fmt.Errorf("%s: not a directory", p)
		}
		var found *uint64
		seen := 0
		errFound := errors.New("found")
		err := v.r.entries(o, func(name string, key uint64) error {
			if seen++; seen > maxLookupEntries {
				return fmt.Errorf("more than %d entries", maxLookupEntries)
			}
			if name == part {
				found = &key
				return errFound
			}
			return nil
		})
		if err != nil && err != errFound {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if found == nil {
			return nil, fmt.Errorf("%s: %w", p, fs.ErrNotExist)
		}
		if o, err = v.r.object(*found); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// ReadDir lists the names in directory p.
func (v fsView) ReadDir(p string) ([]string, error) {
	o, err := v.lookup(p)
	if err != nil {
		return nil, err
	}
	if o.kind != tree.Dir {
		return nil, fmt.Errorf("%s: not a directory", p)
	}
	var names []string
	err = v.r.entries(o, func(name string, _ uint64) error {
		if len(names) >= maxLookupEntries {
			return fmt.Errorf("more than %d entries", maxLookupEntries)
		}
		if name != "." && name != ".." {
			names = append(names, name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return names, nil
}

// ReadFile returns the content of the regular file p.
func (v fsView) ReadFile(p string) ([]byte, error) {
	o, err := v.lookup(p)
	if err != nil {
		return nil, err
	}
	if o.kind != tree.Regular {
		return nil, fmt.Errorf("%s: not a regular file", p)
	}
	if o.size > maxFileRead {
		return nil, fmt.Errorf("%s: %d bytes, too large to read", p, o.size)
	}
	w := &memFile{b: make([]byte, o.size)}
	if _, err := v.r.content(o, w, false); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return w.b, nil
}

// memFile is a fixed-size in-memory io.WriterAt.
type memFile struct{ b []byte }

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(m.b)) || int64(len(p)) > int64(len(m.b))-off {
		return 0, fmt.Errorf("write of %d bytes at %d beyond the %d-byte file", len(p), off, len(m.b))
	}
	return copy(m.b[off:], p), nil
}
