package inspect

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// FS is the little a file-system reader offers: listing a directory and
// reading a regular file, by slash-separated path from the root.
type FS interface {
	ReadDir(p string) ([]string, error)
	ReadFile(p string) ([]byte, error)
}

const (
	erofsMagic    = 0xE0F5E1E2
	squashfsMagic = 0x73717368
)

// DetectFS names the file system at offset 0 of r: "erofs", "squashfs" or "".
func DetectFS(r io.ReaderAt) string {
	b := make([]byte, 1028)
	if n, _ := r.ReadAt(b, 0); n >= 4 && binary.LittleEndian.Uint32(b) == squashfsMagic {
		return "squashfs"
	} else if n == 1028 && binary.LittleEndian.Uint32(b[1024:]) == erofsMagic {
		return "erofs"
	}
	return ""
}

// erofsFS reads uncompressed erofs images (the layouts sxb and mkfs.erofs
// write by default), enough to find and read small files.
type erofsFS struct {
	r        io.ReaderAt
	bs       int64
	metaAddr int64
	rootNid  uint64
}

// OpenErofs reads the superblock of an erofs image.
func OpenErofs(r io.ReaderAt) (FS, error) {
	sb := make([]byte, 128)
	if _, err := r.ReadAt(sb, 1024); err != nil {
		return nil, fmt.Errorf("reading erofs superblock: %w", err)
	}
	if binary.LittleEndian.Uint32(sb) != erofsMagic {
		return nil, errors.New("not an erofs file system")
	}
	bits := sb[12]
	if bits < 9 || bits > 16 {
		return nil, fmt.Errorf("erofs: block size 2^%d unsupported", bits)
	}
	return &erofsFS{r: r, bs: 1 << bits, metaAddr: int64(binary.LittleEndian.Uint32(sb[40:])) << bits,
		rootNid: uint64(binary.LittleEndian.Uint16(sb[14:]))}, nil
}

type erofsInode struct {
	mode   uint16
	size   int64
	layout int
	raw    uint32
	off    int64 // byte offset of the inode
	isize  int64 // inode plus xattr area
}

func (e *erofsFS) inode(nid uint64) (*erofsInode, error) {
	off := e.metaAddr + int64(nid)*32
	b := make([]byte, 64)
	if _, err := e.r.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("erofs: reading inode %d: %w", nid, err)
	}
	f := binary.LittleEndian.Uint16(b)
	in := &erofsInode{mode: binary.LittleEndian.Uint16(b[4:]), layout: int(f>>1) & 7, off: off,
		raw: binary.LittleEndian.Uint32(b[16:])}
	if f&1 == 0 {
		in.size, in.isize = int64(binary.LittleEndian.Uint32(b[8:])), 32
	} else {
		in.size, in.isize = int64(binary.LittleEndian.Uint64(b[8:])), 64
	}
	if ic := binary.LittleEndian.Uint16(b[2:]); ic > 0 {
		in.isize += 12 + int64(ic-1)*4
	}
	return in, nil
}

func (e *erofsFS) data(in *erofsInode) ([]byte, error) {
	if in.size < 0 || in.size > 64<<20 {
		return nil, fmt.Errorf("erofs: %d-byte file too large to read", in.size)
	}
	out := make([]byte, in.size)
	switch in.layout {
	case 0: // flat plain
		if _, err := e.r.ReadAt(out, int64(in.raw)*e.bs); err != nil {
			return nil, fmt.Errorf("erofs: reading data: %w", err)
		}
	case 2: // flat inline: full blocks, then the tail after the inode
		full := in.size / e.bs * e.bs
		if full > 0 {
			if _, err := e.r.ReadAt(out[:full], int64(in.raw)*e.bs); err != nil {
				return nil, fmt.Errorf("erofs: reading data: %w", err)
			}
		}
		if _, err := e.r.ReadAt(out[full:], in.off+in.isize); err != nil {
			return nil, fmt.Errorf("erofs: reading inline data: %w", err)
		}
	default:
		return nil, fmt.Errorf("erofs: data layout %d (compressed or chunked) is not supported by the inspector", in.layout)
	}
	return out, nil
}

type dirent struct {
	name string
	nid  uint64
}

func (e *erofsFS) entries(in *erofsInode) ([]dirent, error) {
	if in.mode&0o170000 != 0o040000 {
		return nil, errors.New("not a directory")
	}
	d, err := e.data(in)
	if err != nil {
		return nil, err
	}
	var out []dirent
	for blk := int64(0); blk < int64(len(d)); blk += e.bs {
		b := d[blk:min(blk+e.bs, int64(len(d)))]
		if len(b) < 12 {
			break
		}
		n := int(binary.LittleEndian.Uint16(b[8:])) / 12
		if n*12 > len(b) {
			return nil, errors.New("erofs: corrupt directory")
		}
		for i := 0; i < n; i++ {
			ent := b[i*12:]
			nameoff := int(binary.LittleEndian.Uint16(ent[8:]))
			end := len(b)
			if i+1 < n {
				end = int(binary.LittleEndian.Uint16(b[(i+1)*12+8:]))
			}
			if nameoff > end || end > len(b) {
				return nil, errors.New("erofs: corrupt directory")
			}
			name := string(b[nameoff:end])
			if i+1 == n {
				if j := strings.IndexByte(name, 0); j >= 0 {
					name = name[:j]
				}
			}
			out = append(out, dirent{name, binary.LittleEndian.Uint64(ent)})
		}
	}
	return out, nil
}

func (e *erofsFS) lookup(p string) (*erofsInode, error) {
	in, err := e.inode(e.rootNid)
	if err != nil {
		return nil, err
	}
	for _, part := range strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/") {
		if part == "" {
			continue
		}
		ents, err := e.entries(in)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		found := false
		for _, d := range ents {
			if d.name == part {
				if in, err = e.inode(d.nid); err != nil {
					return nil, err
				}
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("%s: %w", p, fs.ErrNotExist)
		}
	}
	return in, nil
}

func (e *erofsFS) ReadDir(p string) ([]string, error) {
	in, err := e.lookup(p)
	if err != nil {
		return nil, err
	}
	ents, err := e.entries(in)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	var names []string
	for _, d := range ents {
		if d.name != "." && d.name != ".." {
			names = append(names, d.name)
		}
	}
	return names, nil
}

func (e *erofsFS) ReadFile(p string) ([]byte, error) {
	in, err := e.lookup(p)
	if err != nil {
		return nil, err
	}
	if in.mode&0o170000 != 0o100000 {
		return nil, fmt.Errorf("%s: not a regular file", p)
	}
	return e.data(in)
}
