// Package atomicfile makes files and directories appear whole: their
// content goes to a temporary name in the directory of the final one,
// which is then renamed over it, so a reader sees the old content or the
// new, never a part. Whatever was at the final name (a file, a symlink) is
// replaced, never written through.
//
// Temporary names are ".<name>.tmp-<random>", hidden from globs and
// listings that skip dot files; a writer that fails removes its own.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// Write replaces file with b, with permission bits mode.
func Write(file string, b []byte, mode os.FileMode) error {
	return WriteFunc(file, mode, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

// WriteFunc replaces file with what write writes, with permission bits
// mode, for content too large to hold in memory. When write fails, file is
// left as it was.
func WriteFunc(file string, mode os.FileMode, write func(w io.Writer) error) error {
	f, err := Create(file, mode)
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := write(f); err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	return f.Commit()
}

// File is a file being written under a temporary name. Write to it through
// the embedded *os.File (it may be read, seeked and written at offsets
// too), then Commit to make it appear under its final name, or Abort to
// drop it. Do not Close it directly.
type File struct {
	*os.File
	name string
	mode os.FileMode
	done bool
}

// Create starts writing file: it creates an empty temporary file beside it.
// The file gets the permission bits mode when it is committed.
func Create(file string, mode os.FileMode) (*File, error) {
	f, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", file, err)
	}
	return &File{File: f, name: file, mode: mode}, nil
}

// Name is the final name of the file (the embedded File's Name is the
// temporary one).
func (f *File) Name() string { return f.name }

// Commit sets the file's mode, closes it and renames it over its final
// name. On error the temporary file is removed.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("writing %s: already committed or aborted", f.name)
	}
	f.done = true
	tmp := f.File.Name()
	err := f.File.Chmod(f.mode)
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, f.name)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", f.name, err)
	}
	return nil
}

// Abort closes and removes the temporary file, leaving the final name as
// it was. It does nothing after Commit, so it can be deferred.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.File.Close()
	os.Remove(f.File.Name())
}

// Symlink replaces file with a symbolic link to target.
func Symlink(target, file string) error {
	return viaTemp(file, func(tmp string) error { return os.Symlink(target, tmp) })
}

// LinkOrCopy replaces file with a hard link to src when they share a file
// system (and src may be linked), else with a copy of src's content with
// the permission bits mode.
func LinkOrCopy(src, file string, mode os.FileMode) error {
	err := viaTemp(file, func(tmp string) error { return link(src, tmp) })
	var le *linkError
	if !errors.As(err, &le) {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	defer in.Close()
	out, err := Create(file, mode)
	if err != nil {
		return err
	}
	defer out.Abort()
	if _, err := io.Copy(out, in); err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	return out.Commit()
}

// link and exchange are the system calls LinkOrCopy and Dir.Commit try
// first; tests replace them to reach the fallbacks.
var (
	link     = os.Link
	exchange = func(a, b string) error {
		return unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
	}
)

// linkError is a failure to make the temporary name, as opposed to
// renaming it.
type linkError struct{ err error }

func (e *linkError) Error() string { return e.err.Error() }
func (e *linkError) Unwrap() error { return e.err }

// viaTemp makes a new object at a free temporary name beside file with
// mk, then renames it over file.
func viaTemp(file string, mk func(tmp string) error) error {
	var tmp string
	for {
		tmp = tempName(file)
		err := mk(tmp)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("writing %s: %w", file, &linkError{err})
		}
	}
	err := os.Rename(tmp, file)
	// When file already is a hard link to the same inode, rename succeeds
	// without doing anything and leaves tmp.
	os.Remove(tmp)
	if err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	return nil
}

func tempName(file string) string {
	return filepath.Join(filepath.Dir(file), "."+filepath.Base(file)+".tmp-"+strconv.FormatUint(rand.Uint64(), 36))
}

// Dir is a directory being filled under a temporary name beside its final
// one. Fill Path(), then Commit to put it in place, or Abort to drop it.
type Dir struct {
	tmp, name string
	done      bool
}

// CreateDir starts a directory that is to replace dir, with the
// permission bits mode.
func CreateDir(dir string, mode os.FileMode) (*Dir, error) {
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", dir, err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("writing %s: %w", dir, err)
	}
	return &Dir{tmp: tmp, name: dir}, nil
}

// Path is the temporary directory to fill.
func (d *Dir) Path() string { return d.tmp }

// Commit puts the directory in place of whatever is at its final name (a
// reader sees the old tree or the new one, exchanged in one step where the
// file system can), then removes the old tree.
func (d *Dir) Commit() error {
	if d.done {
		return fmt.Errorf("writing %s: already committed or aborted", d.name)
	}
	d.done = true
	err := exchange(d.tmp, d.name)
	switch {
	case err == nil:
		// The temporary name now holds the old tree.
		os.RemoveAll(d.tmp)
		return nil
	case errors.Is(err, unix.ENOENT):
		err = os.Rename(d.tmp, d.name)
	case errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP):
		// No exchange here: move the old tree aside first.
		old := tempName(d.name)
		switch err = os.Rename(d.name, old); {
		case errors.Is(err, os.ErrNotExist):
			err = os.Rename(d.tmp, d.name)
		case err == nil:
			if err = os.Rename(d.tmp, d.name); err == nil {
				os.RemoveAll(old)
			} else {
				os.Rename(old, d.name)
			}
		}
	}
	if err != nil {
		os.RemoveAll(d.tmp)
		return fmt.Errorf("writing %s: %w", d.name, err)
	}
	return nil
}

// Abort removes the temporary directory. It does nothing after Commit, so
// it can be deferred.
func (d *Dir) Abort() {
	if d.done {
		return
	}
	d.done = true
	os.RemoveAll(d.tmp)
}
