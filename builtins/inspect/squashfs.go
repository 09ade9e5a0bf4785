package inspect

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/sxb-build/sxb/builtins/squashfs"
	"github.com/sxb-build/sxb/builtins/tree"
)

// squashFS reads squashfs 4.0 images (gzip, xz, lz4, zstd): every inode
// type, owners through the id table, xattrs through the xattr table, and
// file contents streamed block by block. Metadata is read through a small
// cache of decompressed 8 KiB blocks; every buffer is bounded by the block
// size or the metadata block size, and every offset is checked against
// the readable size before it is read.
type squashFS struct {
	r                                                    io.ReaderAt
	size                                                 int64 // readable bytes
	dec                                                  decompressor
	comp                                                 uint16
	blockSize                                            uint32
	flags                                                uint16
	mkfsTime                                             uint32
	rootRef                                              uint64
	inodeTable, dirTable, fragTable, idTable, xattrTable int64
	fragCount                                            uint32
	idCount                                              uint16
	compOpts                                             []byte

	ids   []uint32 // the id table, read on first use
	cache metaCache
	// frag caches the last fragment block read.
	fragIndex uint32
	frag      []byte
	// block and raw are reused for data blocks.
	block, raw []byte
}

const (
	sqMetaSize    = 8192
	sqNoFragment  = 0xffffffff
	sqNoXattr     = 0xffffffff
	sqUncompBlock = 1 << 24
	sqFlagNoFrags = 0x0010
	sqFlagOptions = 0x0400
)

var sqCompressions = map[uint16]string{1: "gzip", 2: "lzma", 3: "lzo", 4: "xz", 5: "lz4", 6: "zstd"}

// OpenSquashfs reads the superblock of a squashfs image.
func OpenSquashfs(r io.ReaderAt) (FS, error) {
	s, err := openSquashfs(r, readerSize(r))
	if err != nil {
		return nil, err
	}
	return fsView{s}, nil
}

func openSquashfs(r io.ReaderAt, size int64) (*squashFS, error) {
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
	bs := le.Uint32(sb[12:])
	if bs < 4096 || bs > 1<<20 || bs&(bs-1) != 0 {
		return nil, fmt.Errorf("squashfs: block size %d invalid", bs)
	}
	s := &squashFS{r: r, size: size, comp: le.Uint16(sb[20:]), blockSize: bs, fragCount: le.Uint32(sb[16:]),
		mkfsTime: le.Uint32(sb[8:]), flags: le.Uint16(sb[24:]), idCount: le.Uint16(sb[26:]),
		rootRef: le.Uint64(sb[32:]), idTable: int64(le.Uint64(sb[48:])), xattrTable: int64(le.Uint64(sb[56:])),
		inodeTable: int64(le.Uint64(sb[64:])), dirTable: int64(le.Uint64(sb[72:])), fragTable: int64(le.Uint64(sb[80:])),
		fragIndex: sqNoFragment}
	name, ok := sqCompressions[s.comp]
	if !ok {
		return nil, fmt.Errorf("squashfs: unknown compression %d", s.comp)
	}
	var err error
	if s.dec, err = newDecompressor(name); err != nil {
		return nil, err
	}
	if s.flags&sqFlagOptions != 0 {
		b, _, err := s.meta(96)
		if err != nil {
			return nil, fmt.Errorf("squashfs: compressor options: %w", err)
		}
		s.compOpts = b
	}
	return s, nil
}

// options returns the writer options that reproduce the superblock: the
// compression, its level where the compressor options record one, the
// block size, the creation time and whether fragments are used. (An lz4
// image records only whether high compression was used, not its depth.)
func (s *squashFS) options() *squashfs.Options {
	o := &squashfs.Options{Compression: sqCompressions[s.comp], BlockSize: int(s.blockSize),
		Epoch: int64(s.mkfsTime), NoFragments: s.flags&sqFlagNoFrags != 0}
	if len(s.compOpts) >= 4 && (s.comp == 1 || s.comp == 6) {
		o.Level = int(binary.LittleEndian.Uint32(s.compOpts))
	}
	return o
}

// check reports an error unless n bytes at off lie within the image.
func (s *squashFS) check(off, n int64, what string) error {
	if off < 0 || n < 0 || off > s.size || n > s.size-off {
		return fmt.Errorf("squashfs: %s (%d bytes at %d) lies outside the %d-byte file system", what, n, off, s.size)
	}
	return nil
}

// metaCache keeps recently decompressed metadata blocks by position.
type metaCache struct {
	blocks map[int64]metaBlock
	order  []int64
}

type metaBlock struct {
	data []byte
	next int64
}

const metaCacheSize = 128

// meta returns the uncompressed metadata block at pos and the position of
// the next one.
func (s *squashFS) meta(pos int64) ([]byte, int64, error) {
	if b, ok := s.cache.blocks[pos]; ok {
		return b.data, b.next, nil
	}
	if err := s.check(pos, 2, "metadata block"); err != nil {
		return nil, 0, err
	}
	h := make([]byte, 2)
	if _, err := s.r.ReadAt(h, pos); err != nil {
		return nil, 0, fmt.Errorf("squashfs: reading metadata: %w", err)
	}
	n := binary.LittleEndian.Uint16(h)
	size := int64(n & 0x7fff)
	if size > sqMetaSize {
		return nil, 0, fmt.Errorf("squashfs: metadata block at %d claims %d bytes", pos, size)
	}
	if err := s.check(pos+2, size, "metadata block"); err != nil {
		return nil, 0, err
	}
	b := make([]byte, size)
	if _, err := s.r.ReadAt(b, pos+2); err != nil {
		return nil, 0, fmt.Errorf("squashfs: reading metadata: %w", err)
	}
	if n&0x8000 == 0 {
		var err error
		if b, err = s.dec.decompress(nil, b, sqMetaSize); err != nil {
			return nil, 0, fmt.Errorf("squashfs: %w", err)
		}
	}
	if s.cache.blocks == nil {
		s.cache.blocks = map[int64]metaBlock{}
	}
	if len(s.cache.order) == metaCacheSize {
		delete(s.cache.blocks, s.cache.order[0])
		s.cache.order = s.cache.order[1:]
	}
	s.cache.blocks[pos] = metaBlock{b, pos + 2 + size}
	s.cache.order = append(s.cache.order, pos)
	return b, pos + 2 + size, nil
}

// metaReader reads a metadata stream sequentially across blocks.
type metaReader struct {
	s    *squashFS
	data []byte
	off  int
	next int64
}

func (s *squashFS) metaAt(pos int64, off int) (*metaReader, error) {
	b, next, err := s.meta(pos)
	if err != nil {
		return nil, err
	}
	if off > len(b) {
		return nil, fmt.Errorf("squashfs: offset %d beyond the %d-byte metadata block at %d", off, len(b), pos)
	}
	return &metaReader{s: s, data: b, off: off, next: next}, nil
}

// read fills p from the stream.
func (m *metaReader) read(p []byte) error {
	for len(p) > 0 {
		if m.off == len(m.data) {
			b, next, err := m.s.meta(m.next)
			if err != nil {
				return err
			}
			if len(b) == 0 {
				return errors.New("squashfs: empty metadata block")
			}
			m.data, m.off, m.next = b, 0, next
		}
		n := copy(p, m.data[m.off:])
		m.off += n
		p = p[n:]
	}
	return nil
}

func (m *metaReader) u32() (uint32, error) {
	var b [4]byte
	err := m.read(b[:])
	return binary.LittleEndian.Uint32(b[:]), err
}

// metaRead reads n bytes of a metadata stream starting at block pos,
// offset off.
func (s *squashFS) metaRead(pos int64, off int, n int) ([]byte, error) {
	m, err := s.metaAt(pos, off)
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	return b, m.read(b)
}

// sqInode is one inode; file inodes keep where their block list starts.
type sqInode struct {
	typ        uint16
	o          object
	startBlock uint64
	offset     uint16 // directories: offset of the listing in its block
	fragIndex  uint32
	fragOff    uint32
	xattr      uint32
	list       *metaReader // regular files: positioned at the block list
}

var sqKinds = [...]tree.Kind{1: tree.Dir, 2: tree.Regular, 3: tree.Symlink, 4: tree.BlockDev, 5: tree.CharDev, 6: tree.FIFO, 7: tree.Socket}

// sqInodeRest is the size of each inode type after the common header,
// before its variable part (block list, symlink target, directory index).
var sqInodeRest = [...]int{1: 16, 2: 16, 3: 8, 4: 8, 5: 8, 6: 4, 7: 4, 8: 24, 9: 40, 10: 8, 11: 12, 12: 12, 13: 8, 14: 8}

func (s *squashFS) inode(ref uint64) (*sqInode, error) {
	m, err := s.metaAt(s.inodeTable+int64(ref>>16), int(ref&0xffff))
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	h := make([]byte, 16)
	if err := m.read(h); err != nil {
		return nil, err
	}
	in := &sqInode{typ: le.Uint16(h), fragIndex: sqNoFragment, xattr: sqNoXattr}
	basic := in.typ
	if basic > 7 {
		basic -= 7
	}
	if basic < 1 || basic > 7 {
		return nil, fmt.Errorf("squashfs: inode type %d unknown", in.typ)
	}
	o := &in.o
	o.key, o.kind, o.mode, o.mtime = ref, sqKinds[basic], uint32(le.Uint16(h[2:])&07777), int64(le.Uint32(h[8:]))
	if o.uid, err = s.id(le.Uint16(h[4:])); err != nil {
		return nil, err
	}
	if o.gid, err = s.id(le.Uint16(h[6:])); err != nil {
		return nil, err
	}
	b := make([]byte, sqInodeRest[in.typ])
	if err := m.read(b); err != nil {
		return nil, err
	}
	switch in.typ {
	case 1:
		in.startBlock, o.size, in.offset = uint64(le.Uint32(b)), int64(le.Uint16(b[8:])), le.Uint16(b[10:])
	case 8:
		o.size, in.startBlock, in.offset, in.xattr = int64(le.Uint32(b[4:])), uint64(le.Uint32(b[8:])), le.Uint16(b[18:]), le.Uint32(b[20:])
	case 2:
		in.startBlock, in.fragIndex, in.fragOff, o.size = uint64(le.Uint32(b)), le.Uint32(b[4:]), le.Uint32(b[8:]), int64(le.Uint32(b[12:]))
		in.list = m
	case 9:
		size := le.Uint64(b[8:])
		if size > math.MaxInt64 {
			return nil, fmt.Errorf("squashfs: file size %d invalid", size)
		}
		in.startBlock, o.size, in.fragIndex, in.fragOff, in.xattr = le.Uint64(b), int64(size), le.Uint32(b[28:]), le.Uint32(b[32:]), le.Uint32(b[36:])
		in.list = m
	case 3, 10:
		n := le.Uint32(b[4:])
		if n == 0 || n > maxSymlinkTarget {
			return nil, fmt.Errorf("squashfs: symlink target of %d bytes", n)
		}
		t := make([]byte, n)
		if err := m.read(t); err != nil {
			return nil, err
		}
		o.target, o.size = string(t), int64(n)
		if in.typ == 10 {
			if in.xattr, err = m.u32(); err != nil {
				return nil, err
			}
		}
	case 4, 5, 11, 12:
		o.rdev = decodeDev(le.Uint32(b[4:]))
		if in.typ > 7 {
			in.xattr = le.Uint32(b[8:])
		}
	case 13, 14:
		in.xattr = le.Uint32(b[4:])
	}
	if in.xattr != sqNoXattr {
		if o.xattrs, err = s.xattrs(in.xattr); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// decodeDev turns the 32-bit device encoding squashfs and erofs share
// (the kernel's new_encode_dev) into the tree's device number.
func decodeDev(d uint32) uint64 {
	return tree.Mkdev((d>>8)&0xfff, d&0xff|(d>>12)&0xfff00)
}

// id resolves an index of the id table.
func (s *squashFS) id(i uint16) (uint32, error) {
	if s.ids == nil {
		if s.idCount == 0 {
			return 0, errors.New("squashfs: the id table is empty")
		}
		n := int(s.idCount)
		blocks := (n*4 + sqMetaSize - 1) / sqMetaSize
		if err := s.check(s.idTable, int64(8*blocks), "id table"); err != nil {
			return 0, err
		}
		ptrs := make([]byte, 8*blocks)
		if _, err := s.r.ReadAt(ptrs, s.idTable); err != nil {
			return 0, fmt.Errorf("squashfs: id table: %w", err)
		}
		ids := make([]uint32, 0, n)
		for b := 0; b < blocks; b++ {
			d, err := s.metaRead(int64(binary.LittleEndian.Uint64(ptrs[8*b:])), 0, min(sqMetaSize, 4*(n-len(ids))))
			if err != nil {
				return 0, fmt.Errorf("squashfs: id table: %w", err)
			}
			for j := 0; j+4 <= len(d); j += 4 {
				ids = append(ids, binary.LittleEndian.Uint32(d[j:]))
			}
		}
		s.ids = ids
	}
	if int(i) >= len(s.ids) {
		return 0, fmt.Errorf("squashfs: id index %d beyond the %d-entry id table", i, len(s.ids))
	}
	return s.ids[i], nil
}

var sqXattrPrefixes = []string{"user.", "trusted.", "security."}

// xattrs reads the set of extended attributes with the given index.
func (s *squashFS) xattrs(idx uint32) (map[string][]byte, error) {
	le := binary.LittleEndian
	if err := s.check(s.xattrTable, 16, "xattr table"); err != nil {
		return nil, err
	}
	hdr := make([]byte, 16)
	if _, err := s.r.ReadAt(hdr, s.xattrTable); err != nil {
		return nil, fmt.Errorf("squashfs: xattr table: %w", err)
	}
	kv, count := int64(le.Uint64(hdr)), le.Uint32(hdr[8:])
	if idx >= count {
		return nil, fmt.Errorf("squashfs: xattr index %d beyond the %d-entry table", idx, count)
	}
	ptr := make([]byte, 8)
	at := s.xattrTable + 16 + int64(idx/512)*8
	if err := s.check(at, 8, "xattr table"); err != nil {
		return nil, err
	}
	if _, err := s.r.ReadAt(ptr, at); err != nil {
		return nil, fmt.Errorf("squashfs: xattr table: %w", err)
	}
	e, err := s.metaRead(int64(le.Uint64(ptr)), int(idx%512)*16, 16)
	if err != nil {
		return nil, err
	}
	ref, n := le.Uint64(e), le.Uint32(e[8:])
	m, err := s.metaAt(kv+int64(ref>>16), int(ref&0xffff))
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	total := 0
	for i := uint32(0); i < n; i++ {
		h := make([]byte, 4)
		if err := m.read(h); err != nil {
			return nil, err
		}
		typ, nameLen := le.Uint16(h), int(le.Uint16(h[2:]))
		if int(typ&0xff) >= len(sqXattrPrefixes) || typ&^0x1ff != 0 {
			return nil, fmt.Errorf("squashfs: xattr type %#x unknown", typ)
		}
		name := make([]byte, nameLen)
		if err := m.read(name); err != nil {
			return nil, err
		}
		vm := m
		vlen, err := m.u32()
		if err != nil {
			return nil, err
		}
		if typ&0x100 != 0 { // stored out of line: a reference to the value
			if vlen != 8 {
				return nil, fmt.Errorf("squashfs: out-of-line xattr reference of %d bytes", vlen)
			}
			var r [8]byte
			if err := m.read(r[:]); err != nil {
				return nil, err
			}
			vref := le.Uint64(r[:])
			if vm, err = s.metaAt(kv+int64(vref>>16), int(vref&0xffff)); err != nil {
				return nil, err
			}
			if vlen, err = vm.u32(); err != nil {
				return nil, err
			}
		}
		if total += nameLen + int(vlen); vlen > maxXattrValue || total > maxXattrsPerInode {
			return nil, fmt.Errorf("squashfs: xattrs of more than %d bytes (value of %d)", maxXattrsPerInode, vlen)
		}
		v := make([]byte, vlen)
		if err := vm.read(v); err != nil {
			return nil, err
		}
		out[sqXattrPrefixes[typ&0xff]+string(name)] = v
	}
	return out, nil
}

// object reads the inode with the given reference.
func (s *squashFS) object(key uint64) (*object, error) {
	in, err := s.inode(key)
	if err != nil {
		return nil, err
	}
	in.o.handle = in
	return &in.o, nil
}

func (s *squashFS) root() (*object, error) { return s.object(s.rootRef) }

// entries lists a directory, calling fn with each name and the inode
// reference of the entry, streaming the listing.
func (s *squashFS) entries(d *object, fn func(name string, key uint64) error) error {
	in := d.handle.(*sqInode)
	if d.size <= 3 {
		return nil
	}
	m, err := s.metaAt(s.dirTable+int64(in.startBlock), int(in.offset))
	if err != nil {
		return err
	}
	le := binary.LittleEndian
	left := d.size - 3
	h := make([]byte, 12)
	name := make([]byte, 256)
	for left > 0 {
		if left < 12 {
			return errors.New("squashfs: corrupt directory listing")
		}
		if err := m.read(h); err != nil {
			return err
		}
		left -= 12
		count, start := le.Uint32(h)+1, le.Uint32(h[4:])
		if count > 256 {
			return fmt.Errorf("squashfs: directory header of %d entries", count)
		}
		for i := uint32(0); i < count; i++ {
			if err := m.read(h[:8]); err != nil {
				return err
			}
			off, n := le.Uint16(h), int(le.Uint16(h[6:]))+1
			if left -= int64(8 + n); left < 0 || n > len(name) {
				return errors.New("squashfs: corrupt directory listing")
			}
			if err := m.read(name[:n]); err != nil {
				return err
			}
			if err := fn(string(name[:n]), uint64(start)<<16|uint64(off)); err != nil {
				return err
			}
		}
	}
	return nil
}
