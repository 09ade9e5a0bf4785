package tree

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// TarSuffixes are the file name endings of tar archives sxb reads (as
// bases): plain or compressed with zstd, xz, gzip or bzip2.
var TarSuffixes = []string{".tar", ".tar.zst", ".tar.xz", ".tar.gz", ".tgz", ".tar.bz2"}

// IsTarName reports whether the file name p ends like a tar archive.
func IsTarName(p string) bool {
	for _, s := range TarSuffixes {
		if strings.HasSuffix(p, s) {
			return true
		}
	}
	return false
}

// ImageSuffix ends the name of an image usable as a base: a GPT disk image
// with an erofs or squashfs root or usr partition, or such a file system
// alone (builtins/inspect extracts it).
const ImageSuffix = ".raw"

// IsBaseFile reports whether the file name p is one sxb builds on: a tar
// archive or an image.
func IsBaseFile(p string) bool { return IsTarName(p) || strings.HasSuffix(p, ImageSuffix) }

// Decompress returns r decompressed as its first bytes say (zstd, xz,
// gzip or bzip2; anything else is returned as it is) and the function
// releasing the decompressor.
func Decompress(r io.Reader) (io.Reader, func(), error) {
	br := bufio.NewReaderSize(r, 256<<10)
	magic, _ := br.Peek(6)
	switch {
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<31))
		if err != nil {
			return nil, nil, err
		}
		return zr, zr.Close, nil
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		xr, err := xz.NewReader(br)
		return xr, func() {}, err
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		gr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, err
		}
		return gr, func() { gr.Close() }, nil
	case bytes.HasPrefix(magic, []byte("BZh")):
		return bzip2.NewReader(br), func() {}, nil
	}
	return br, func() {}, nil
}

// ExtractTar writes the entries of the tar stream r into the existing
// directory dir through a Root: no entry, link or symlink leads outside
// it. What the builder may be unable to put on disk is recorded in meta:
// owners, modes, modification times and xattrs of every entry, and device
// nodes and fifos (which become empty placeholder files). A later entry
// replaces an earlier one of the same name, as tar does; a directory stays
// a directory. On disk, files stay readable and directories writable by
// the builder. File content beyond maxBytes in all (when not negative) is
// refused, so that a small compressed archive cannot fill the disk.
func ExtractTar(r io.Reader, dir string, meta *Meta, maxBytes int64) error {
	rt, err := OpenRoot(dir)
	if err != nil {
		return err
	}
	defer rt.Close()
	tr := tar.NewReader(r)
	type dirEntry struct {
		rel  string
		mode uint32
	}
	var dirs []dirEntry
	left := maxBytes
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading tar: %w", err)
		}
		if h.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		rel, err := CleanRel(h.Name)
		if err != nil {
			return fmt.Errorf("tar entry %q: %w", h.Name, err)
		}
		o := Override{Mode: Ptr(uint32(h.Mode) & 07777), Mtime: Ptr(h.ModTime.Unix())}
		if h.Uid != 0 || h.Gid != 0 {
			o.UID, o.GID = Ptr(uint32(h.Uid)), Ptr(uint32(h.Gid))
		}
		for k, v := range h.PAXRecords {
			if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				if o.Xattrs == nil {
					o.Xattrs = map[string][]byte{}
				}
				o.Xattrs[name] = []byte(v)
			}
		}
		if rel == "" {
			if h.Typeflag != tar.TypeDir {
				return fmt.Errorf("tar entry %q: the root is not a directory", h.Name)
			}
			meta.Set(rel, o)
			continue
		}
		if maxBytes >= 0 && (h.Typeflag == tar.TypeReg || h.Typeflag == 0) {
			if left -= h.Size; left < 0 {
				return fmt.Errorf("tar entry %q: the archive expands beyond %d bytes", h.Name, maxBytes)
			}
		}
		if err := extractEntry(rt, tr, h, rel, &o, meta); err != nil {
			return fmt.Errorf("tar entry %q: %w", h.Name, err)
		}
		if h.Typeflag == tar.TypeDir {
			dirs = append(dirs, dirEntry{rel, *o.Mode})
		}
		meta.Set(rel, o)
	}
	// Directories last, their children being written: the modes (with
	// the builder's access) the archive gives.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := rt.Chmod(dirs[i].rel, fs.FileMode(dirs[i].mode&0o777|0o700)); err != nil {
			return fmt.Errorf("tar entry %q: %w", dirs[i].rel, err)
		}
	}
	return nil
}

// extractEntry writes the tar entry h at rel.
func extractEntry(rt *Root, tr io.Reader, h *tar.Header, rel string, o *Override, meta *Meta) error {
	parent, base := split(rel)
	d, err := rt.MkdirAll(parent)
	if err != nil {
		return err
	}
	defer d.Close()
	fi, err := d.Lstat(base)
	exists := err == nil
	if exists && !(h.Typeflag == tar.TypeDir && fi.IsDir()) {
		if err := d.Remove(base); err != nil {
			return err
		}
	}
	perm := fs.FileMode(h.Mode&0o777 | 0o600)
	switch h.Typeflag {
	case tar.TypeDir:
		if !exists || !fi.IsDir() {
			return d.Mkdir(base, 0o755)
		}
	case tar.TypeReg, 0: // 0: old archives' regular files (TypeRegA)
		f, err := d.Create(base, perm)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		return d.Chtimes(base, h.ModTime)
	case tar.TypeSymlink:
		o.Mode = nil
		return d.Symlink(h.Linkname, base)
	case tar.TypeLink:
		target, err := CleanRel(h.Linkname)
		if err != nil {
			return fmt.Errorf("hard link: %w", err)
		}
		if target == "" {
			return fmt.Errorf("hard link to the root")
		}
		tp, tb := split(target)
		src, err := rt.OpenDir(tp)
		if err != nil {
			return fmt.Errorf("hard link to %q: %w", h.Linkname, err)
		}
		defer src.Close()
		if err := d.Link(src, tb, base); err != nil {
			return fmt.Errorf("hard link to %q: %w", h.Linkname, err)
		}
		// One inode: what the archive said of the first name holds.
		if to, ok := meta.Get(target); ok {
			*o = to
		}
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		k := FIFO
		switch h.Typeflag {
		case tar.TypeChar:
			k = CharDev
		case tar.TypeBlock:
			k = BlockDev
		}
		o.Kind = Ptr(k)
		if k != FIFO {
			o.Rdev = Ptr(Mkdev(uint32(h.Devmajor), uint32(h.Devminor)))
		}
		f, err := d.Create(base, 0o644)
		if err != nil {
			return err
		}
		return f.Close()
	default:
		return fmt.Errorf("unsupported entry type %q", h.Typeflag)
	}
	return nil
}
