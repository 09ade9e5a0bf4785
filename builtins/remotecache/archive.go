package remotecache

import (
	"archive/tar"
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A directory output travels as one tar stream (PAX format), not as an
// REAPI Tree of one blob per file: bench/remotecache.sh measured the
// archive several times faster for a base tree of 10,000 files, and tar
// keeps what a Tree cannot (hard links, FIFOs, setuid/setgid/sticky bits,
// nanosecond times of every entry). The stream is deterministic: the same
// tree gives the same bytes, so machines uploading it share its chunks.

// WriteTree writes the directory dir as a tar stream to w: the directory
// itself as "./", then every entry in lexical walk order with its mode
// bits, modification time (to the nanosecond), symlink target and hard
// links; owners are always 0 (sxb trees keep owners in their sidecar).
// Sockets and device nodes are refused: sxb trees never hold them.
func WriteTree(w io.Writer, dir string) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	tw := tar.NewWriter(bw)
	type inode struct{ dev, ino uint64 }
	links := map[inode]string{}
	buf := make([]byte, 1<<20)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		h := &tar.Header{Name: name, Mode: tarMode(fi.Mode()), ModTime: fi.ModTime(), Format: tar.FormatPAX}
		st, _ := fi.Sys().(*syscall.Stat_t)
		switch m := fi.Mode(); {
		case m.IsDir():
			h.Typeflag, h.Name = tar.TypeDir, name+"/"
		case m&fs.ModeSymlink != 0:
			h.Typeflag = tar.TypeSymlink
			if h.Linkname, err = os.Readlink(p); err != nil {
				return err
			}
		case m.IsRegular():
			h.Typeflag, h.Size = tar.TypeReg, fi.Size()
			if st != nil && st.Nlink > 1 {
				id := inode{uint64(st.Dev), st.Ino}
				if first, ok := links[id]; ok {
					h.Typeflag, h.Linkname, h.Size = tar.TypeLink, first, 0
				} else {
					links[id] = name
				}
			}
		case m&fs.ModeNamedPipe != 0:
			h.Typeflag = tar.TypeFifo
		default:
			return fmt.Errorf("%s: a %v cannot be stored in the remote cache", name, m.Type())
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg || h.Size == 0 {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		n, err := io.CopyBuffer(tw, io.LimitReader(f, h.Size), buf)
		if err == nil && n != h.Size {
			err = fmt.Errorf("%s changed while being archived", name)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("archiving %s: %w", dir, err)
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// tarMode is the permission and setuid/setgid/sticky bits of m in tar's
// encoding.
func tarMode(m fs.FileMode) int64 {
	v := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return v
}

// ReadTree extracts a stream WriteTree wrote into dir, which must not
// exist yet. The stream is untrusted: every name must be a clean relative
// path whose parent is a directory this stream created earlier (so nothing
// is written through a symlink or outside dir), no name may appear twice,
// and a hard link must name a regular file extracted before it.
func ReadTree(r io.Reader, dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	tr := tar.NewReader(bufio.NewReaderSize(r, 1<<20))
	dirs := map[string]bool{".": true}
	files := map[string]bool{}   // every non-directory
	regular := map[string]bool{} // regular files, which hard links may name
	type dirMeta struct {
		path string
		mode uint32
		t    time.Time
	}
	var dirTimes []dirMeta
	buf := make([]byte, 1<<20)
	first := true
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading tree archive: %w", err)
		}
		name := path.Clean(strings.TrimSuffix(h.Name, "/"))
		if first {
			if name != "." || h.Typeflag != tar.TypeDir {
				return fmt.Errorf("tree archive does not start with its root directory")
			}
			first = false
			dirTimes = append(dirTimes, dirMeta{dir, uint32(h.Mode & 0o7777), h.ModTime})
			continue
		}
		if name == "." || path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") || strings.ContainsRune(name, 0) {
			return fmt.Errorf("tree archive: refusing entry %q", h.Name)
		}
		if !dirs[path.Dir(name)] {
			return fmt.Errorf("tree archive: %q comes before its directory, or its parent is not a directory", h.Name)
		}
		if dirs[name] || files[name] {
			return fmt.Errorf("tree archive: %q appears twice", h.Name)
		}
		full := filepath.Join(dir, filepath.FromSlash(name))
		mode := uint32(h.Mode & 0o7777)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.Mkdir(full, 0o700); err != nil {
				return err
			}
			dirs[name] = true
			dirTimes = append(dirTimes, dirMeta{full, mode, h.ModTime})
			continue // mode and time once its children are in
		case tar.TypeReg:
			f, err := os.OpenFile(full, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			n, err := io.CopyBuffer(f, tr, buf)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err == nil && n != h.Size {
				err = fmt.Errorf("tree archive: %q is short", h.Name)
			}
			if err != nil {
				return err
			}
			files[name], regular[name] = true, true
		case tar.TypeLink:
			target := path.Clean(h.Linkname)
			if !regular[target] {
				return fmt.Errorf("tree archive: hard link %q to %q, which is not a file extracted before it", h.Name, h.Linkname)
			}
			if err := os.Link(filepath.Join(dir, filepath.FromSlash(target)), full); err != nil {
				return err
			}
			files[name] = true
			continue // shares mode and time with its target
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, full); err != nil {
				return err
			}
			files[name] = true
			if err := setTime(full, h.ModTime); err != nil {
				return err
			}
			continue
		case tar.TypeFifo:
			if err := unix.Mkfifo(full, 0o600); err != nil {
				return err
			}
			files[name] = true
		default:
			return fmt.Errorf("tree archive: %q has unsupported type %q", h.Name, h.Typeflag)
		}
		if err := syscall.Chmod(full, mode); err != nil {
			return err
		}
		if err := setTime(full, h.ModTime); err != nil {
			return err
		}
	}
	if first {
		return fmt.Errorf("tree archive is empty")
	}
	// Children first: creating an entry changes its directory's time, and
	// a read-only directory must stay writable until its entries are in.
	for i := len(dirTimes) - 1; i >= 0; i-- {
		d := dirTimes[i]
		if err := syscall.Chmod(d.path, d.mode); err != nil {
			return err
		}
		if err := setTime(d.path, d.t); err != nil {
			return err
		}
	}
	return nil
}

// setTime sets the access and modification time of p (not following a
// symlink) to t.
func setTime(p string, t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}
