package inspect

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
)

// squashFS reads squashfs 4.0 images (gzip, xz, lz4, zstd), enough to list
// directories and read small files.
type squashFS struct {
	r                               io.ReaderAt
	zstd                            *zstd.Decoder
	comp                            uint16
	blockSize                       uint32
	rootRef                         uint64
	inodeTable, dirTable, fragTable int64
	fragCount                       uint32
}

// OpenSquashfs reads the superblock of a squashfs image.
func OpenSquashfs(r io.ReaderAt) (FS, error) {
	sb := make([]byte, 96)
	if _, err := r.ReadAt(sb, 0); err != nil {
		return nil, fmt.Errorf("reading squashfs superblock: %w", err)
	}
	le := binary.LittleEndian
	if le.Uint32(sb) != squashfsMagic || le.Uint16(sb[28:]) != 4 {
		return nil, errors.New("not a squashfs 4.0 file system")
	}
	// Block sizes are powers of two from 4 KiB to 1 MiB; every buffer the
	// reader allocates is bounded by the block size.
	if bs := le.Uint32(sb[12:]); bs < 4096 || bs > 1<<20 || bs&(bs-1) != 0 {
		return nil, fmt.Errorf("squashfs: block size %d invalid", bs)
	}
	return &squashFS{r: r, comp: le.Uint16(sb[20:]), blockSize: le.Uint32(sb[12:]), fragCount: le.Uint32(sb[16:]),
		rootRef: le.Uint64(sb[32:]), inodeTable: int64(le.Uint64(sb[64:])), dirTable: int64(le.Uint64(sb[72:])),
		fragTable: int64(le.Uint64(sb[80:]))}, nil
}

// decompress inflates one block of at most max uncompressed bytes; a block
// that inflates to more is corrupt (and would be a decompression bomb).
func (s *squashFS) decompress(b []byte, max int) ([]byte, error) {
	var rd io.Reader
	var err error
	switch s.comp {
	case 1:
		rd, err = zlib.NewReader(bytes.NewReader(b))
	case 4:
		rd, err = xz.ReaderConfig{DictCap: 1 << 20}.NewReader(bytes.NewReader(b))
	case 5:
		out := make([]byte, max)
		n, err := lz4.UncompressBlock(b, out)
		if err != nil {
			return nil, fmt.Errorf("squashfs: lz4: %w", err)
		}
		return out[:n], nil
	case 6:
		if s.zstd == nil {
			// One decoder per image, its window and output bounded by
			// the largest block squashfs allows.
			if s.zstd, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxWindow(1<<20), zstd.WithDecoderMaxMemory(1<<20)); err != nil {
				return nil, err
			}
		}
		out, err := s.zstd.DecodeAll(b, nil)
		if err != nil {
			return nil, fmt.Errorf("squashfs: zstd: %w", err)
		}
		if len(out) > max {
			return nil, fmt.Errorf("squashfs: block inflates beyond %d bytes", max)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("squashfs: compression %d not supported by the inspector", s.comp)
	}
	if err != nil {
		return nil, fmt.Errorf("squashfs: %w", err)
	}
	out, err := io.ReadAll(io.LimitReader(rd, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("squashfs: %w", err)
	}
	if len(out) > max {
		return nil, fmt.Errorf("squashfs: block inflates beyond %d bytes", max)
	}
	return out, nil
}

// meta returns the uncompressed metadata block at pos and the position of
// the next one.
func (s *squashFS) meta(pos int64) ([]byte, int64, error) {
	h := make([]byte, 2)
	if _, err := s.r.ReadAt(h, pos); err != nil {
		return nil, 0, fmt.Errorf("squashfs: reading metadata: %w", err)
	}
	n := binary.LittleEndian.Uint16(h)
	size := int64(n & 0x7fff)
	b := make([]byte, size)
	if _, err := s.r.ReadAt(b, pos+2); err != nil {
		return nil, 0, fmt.Errorf("squashfs: reading metadata: %w", err)
	}
	if n&0x8000 == 0 {
		var err error
		if b, err = s.decompress(b, 8192); err != nil {
			return nil, 0, err
		}
	}
	return b, pos + 2 + size, nil
}

// metaRead reads n bytes of a metadata stream starting at block pos,
// offset off.
func (s *squashFS) metaRead(pos int64, off int, n int) ([]byte, error) {
	if n < 0 || n > maxMetaRead || off < 0 || off > 8192 {
		return nil, fmt.Errorf("squashfs: metadata read of %d bytes at offset %d out of range", n, off)
	}
	var out []byte
	for len(out) < off+n {
		b, next, err := s.meta(pos)
		if err != nil {
			return nil, err
		}
		if len(b) == 0 {
			return nil, errors.New("squashfs: empty metadata block")
		}
		out = append(out, b...)
		pos = next
	}
	return out[off : off+n], nil
}

// maxMetaRead bounds one read of a metadata stream (a directory listing or
// a file's block list), so a hostile size cannot make the reader allocate
// or decompress without end.
const maxMetaRead = 16 << 20

// maxFileRead is the largest file ReadFile returns.
const maxFileRead = 64 << 20

type sqInode struct {
	typ                uint16
	startBlock         uint64
	size               uint64
	offset             uint16
	fragIndex, fragOff uint32
	blockSizes         []uint32
}

func (s *squashFS) inode(ref uint64) (*sqInode, error) {
	pos, off := s.inodeTable+int64(ref>>16), int(ref&0xffff)
	b, err := s.metaRead(pos, off, 56)
	if err != nil {
		// The inode may be shorter than 56 bytes at the end of the table.
		if b, err = s.metaRead(pos, off, 32); err != nil {
			return nil, err
		}
	}
	le := binary.LittleEndian
	in := &sqInode{typ: le.Uint16(b)}
	// An inode near the end of the table may only have the 32 bytes read
	// above: the extended types need more.
	if need := map[uint16]int{8: 40, 9: 56}[in.typ]; len(b) < need {
		if b, err = s.metaRead(pos, off, need); err != nil {
			return nil, err
		}
	}
	var nblocks uint64
	switch in.typ {
	case 1: // basic dir
		in.startBlock, in.size, in.offset = uint64(le.Uint32(b[16:])), uint64(le.Uint16(b[24:])), le.Uint16(b[26:])
	case 8: // extended dir
		in.size, in.startBlock, in.offset = uint64(le.Uint32(b[20:])), uint64(le.Uint32(b[24:])), le.Uint16(b[34:])
	case 2: // basic file
		in.startBlock, in.fragIndex, in.fragOff, in.size = uint64(le.Uint32(b[16:])), le.Uint32(b[20:]), le.Uint32(b[24:]), uint64(le.Uint32(b[28:]))
		if in.size > maxFileRead {
			break // ReadFile refuses it; its block list is not needed
		}
		nblocks = s.blocks(in)
		bs, err := s.metaRead(pos, off+32, int(4*nblocks))
		if err != nil {
			return nil, err
		}
		for i := uint64(0); i < nblocks; i++ {
			in.blockSizes = append(in.blockSizes, le.Uint32(bs[4*i:]))
		}
	case 9: // extended file
		in.startBlock, in.size, in.fragIndex, in.fragOff = le.Uint64(b[16:]), le.Uint64(b[24:]), le.Uint32(b[44:]), le.Uint32(b[48:])
		if in.size > maxFileRead {
			break
		}
		nblocks = s.blocks(in)
		bs, err := s.metaRead(pos, off+56, int(4*nblocks))
		if err != nil {
			return nil, err
		}
		for i := uint64(0); i < nblocks; i++ {
			in.blockSizes = append(in.blockSizes, le.Uint32(bs[4*i:]))
		}
	}
	return in, nil
}

func (s *squashFS) blocks(in *sqInode) uint64 {
	if in.fragIndex == 0xffffffff {
		return (in.size + uint64(s.blockSize) - 1) / uint64(s.blockSize)
	}
	return in.size / uint64(s.blockSize)
}

func (s *squashFS) entries(in *sqInode) (map[string]uint64, []string, error) {
	if in.typ != 1 && in.typ != 8 {
		return nil, nil, errors.New("not a directory")
	}
	if in.size <= 3 {
		return map[string]uint64{}, nil, nil
	}
	d, err := s.metaRead(s.dirTable+int64(in.startBlock), int(in.offset), int(in.size-3))
	if err != nil {
		return nil, nil, err
	}
	le := binary.LittleEndian
	refs := map[string]uint64{}
	var names []string
	for len(d) >= 12 {
		count, start := le.Uint32(d)+1, le.Uint32(d[4:])
		d = d[12:]
		for i := uint32(0); i < count; i++ {
			if len(d) < 8 {
				return nil, nil, errors.New("squashfs: corrupt directory")
			}
			off, nlen := le.Uint16(d), int(le.Uint16(d[6:]))+1
			if len(d) < 8+nlen {
				return nil, nil, errors.New("squashfs: corrupt directory")
			}
			name := string(d[8 : 8+nlen])
			refs[name] = uint64(start)<<16 | uint64(off)
			names = append(names, name)
			d = d[8+nlen:]
		}
	}
	return refs, names, nil
}

func (s *squashFS) lookup(p string) (*sqInode, error) {
	in, err := s.inode(s.rootRef)
	if err != nil {
		return nil, err
	}
	for _, part := range strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/") {
		if part == "" {
			continue
		}
		refs, _, err := s.entries(in)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		ref, ok := refs[part]
		if !ok {
			return nil, fmt.Errorf("%s: %w", p, fs.ErrNotExist)
		}
		if in, err = s.inode(ref); err != nil {
			return nil, err
		}
	}
	return in, nil
}

func (s *squashFS) ReadDir(p string) ([]string, error) {
	in, err := s.lookup(p)
	if err != nil {
		return nil, err
	}
	_, names, err := s.entries(in)
	return names, err
}

func (s *squashFS) ReadFile(p string) ([]byte, error) {
	in, err := s.lookup(p)
	if err != nil {
		return nil, err
	}
	if in.typ != 2 && in.typ != 9 {
		return nil, fmt.Errorf("%s: not a regular file", p)
	}
	if in.size > maxFileRead {
		return nil, fmt.Errorf("%s: too large to read", p)
	}
	var out []byte
	pos := int64(in.startBlock)
	for _, bsz := range in.blockSizes {
		n := int64(bsz & 0xffffff)
		if n > int64(s.blockSize) {
			return nil, fmt.Errorf("%s: corrupt block size %d", p, n)
		}
		if n == 0 { // sparse block
			out = append(out, make([]byte, s.blockSize)...)
			continue
		}
		b := make([]byte, n)
		if _, err := s.r.ReadAt(b, pos); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		pos += n
		if bsz&(1<<24) == 0 {
			if b, err = s.decompress(b, int(s.blockSize)); err != nil {
				return nil, err
			}
		}
		out = append(out, b...)
	}
	if in.fragIndex != 0xffffffff {
		le := binary.LittleEndian
		ptr := make([]byte, 8)
		if _, err := s.r.ReadAt(ptr, s.fragTable+int64(in.fragIndex/512)*8); err != nil {
			return nil, fmt.Errorf("%s: fragment table: %w", p, err)
		}
		e, err := s.metaRead(int64(le.Uint64(ptr)), int(in.fragIndex%512)*16, 16)
		if err != nil {
			return nil, err
		}
		start, size := int64(le.Uint64(e)), le.Uint32(e[8:])
		if size&0xffffff > s.blockSize {
			return nil, fmt.Errorf("%s: corrupt fragment size %d", p, size&0xffffff)
		}
		b := make([]byte, size&0xffffff)
		if _, err := s.r.ReadAt(b, start); err != nil {
			return nil, fmt.Errorf("%s: fragment: %w", p, err)
		}
		if size&(1<<24) == 0 {
			if b, err = s.decompress(b, int(s.blockSize)); err != nil {
				return nil, err
			}
		}
		rest := int(in.size) - len(out)
		if int(in.fragOff)+rest > len(b) || rest < 0 {
			return nil, fmt.Errorf("%s: fragment out of range", p)
		}
		out = append(out, b[in.fragOff:int(in.fragOff)+rest]...)
	}
	if uint64(len(out)) < in.size {
		return nil, fmt.Errorf("%s: short file data", p)
	}
	return out[:in.size], nil
}
