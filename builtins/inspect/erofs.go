package inspect

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/sxb-build/sxb/builtins/erofs"
	"github.com/sxb-build/sxb/builtins/tree"
)

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

// erofsFS reads erofs images: compact and extended inodes; the flat plain,
// flat inline and chunk-based data layouts; inline and shared xattrs with
// short and long name prefixes. Compressed layouts go through
// compressedData (erofs_compressed.go). Every offset is checked against the
// readable size before it is read, and every buffer is bounded by the block
// size or a format limit.
type erofsFS struct {
	r         io.ReaderAt
	size      int64 // readable bytes
	bits      uint
	bs        int64
	metaAddr  int64
	xattrAddr int64
	rootNid   uint64
	buildTime int64
	packedNid uint64
	incompat  uint32
	prefixes  []string // long xattr name prefixes
	sb        []byte
}

// Superblock feature bits (linux fs/erofs/erofs_fs.h).
const (
	erofsZeroPadding   = 0x01
	erofsComprCfgs     = 0x02
	erofsChunkedFile   = 0x04
	erofsDeviceTable   = 0x08
	erofsZTailPacking  = 0x10
	erofsFragments     = 0x20
	erofsXattrPrefixes = 0x40
	erofsKnownIncompat = 0x7f

	erofsNullAddr = 0xffffffff
)

// OpenErofs reads the superblock of an erofs image.
func OpenErofs(r io.ReaderAt) (FS, error) {
	e, err := openErofs(r, readerSize(r))
	if err != nil {
		return nil, err
	}
	return fsView{e}, nil
}

func openErofs(r io.ReaderAt, size int64) (*erofsFS, error) {
	sb := make([]byte, 128)
	if _, err := r.ReadAt(sb, 1024); err != nil {
		return nil, fmt.Errorf("reading erofs superblock: %w", err)
	}
	le := binary.LittleEndian
	if le.Uint32(sb) != erofsMagic {
		return nil, errors.New("not an erofs file system")
	}
	bits := uint(sb[12])
	if bits < 9 || bits > 16 {
		return nil, fmt.Errorf("erofs: block size 2^%d unsupported", bits)
	}
	e := &erofsFS{r: r, size: size, bits: bits, bs: 1 << bits, sb: sb,
		metaAddr: int64(le.Uint32(sb[40:])) << bits, xattrAddr: int64(le.Uint32(sb[44:])) << bits,
		rootNid: uint64(le.Uint16(sb[14:])), buildTime: int64(le.Uint64(sb[24:])),
		incompat: le.Uint32(sb[80:]), packedNid: le.Uint64(sb[96:])}
	if unknown := e.incompat &^ erofsKnownIncompat; unknown != 0 {
		return nil, fmt.Errorf("erofs: incompatible features %#x unsupported", unknown)
	}
	if e.incompat&erofsDeviceTable != 0 && le.Uint16(sb[86:]) > 0 {
		return nil, fmt.Errorf("erofs: images spanning %d extra devices are not supported", le.Uint16(sb[86:]))
	}
	if sb[90] != 0 {
		return nil, fmt.Errorf("erofs: directory block bits %d unsupported", sb[90])
	}
	if e.incompat&erofsXattrPrefixes != 0 && sb[91] > 0 {
		if err := e.readPrefixes(int(sb[91]), int64(le.Uint32(sb[92:]))*4); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// options returns the writer options that reproduce the superblock.
func (e *erofsFS) options() *erofs.Options {
	o := &erofs.Options{Epoch: e.buildTime}
	copy(o.UUID[:], e.sb[48:64])
	name := e.sb[64:80]
	for i, c := range name {
		if c == 0 {
			name = name[:i]
			break
		}
	}
	o.VolumeName = string(name)
	return o
}

// check reports an error unless n bytes at off lie within the image.
func (e *erofsFS) check(off, n int64, what string) error {
	if off < 0 || n < 0 || off > e.size || n > e.size-off {
		return fmt.Errorf("erofs: %s (%d bytes at %d) lies outside the %d-byte file system", what, n, off, e.size)
	}
	return nil
}

func (e *erofsFS) readAt(b []byte, off int64, what string) error {
	if err := e.check(off, int64(len(b)), what); err != nil {
		return err
	}
	if _, err := e.r.ReadAt(b, off); err != nil {
		return fmt.Errorf("erofs: reading %s: %w", what, err)
	}
	return nil
}

// erofsInode is one on-disk inode.
type erofsInode struct {
	nid    uint64
	layout int
	iu     uint32
	off    int64 // byte offset of the inode
	isize  int64 // 32 or 64
	xsize  int64 // inline xattr area
	o      object
}

func (in *erofsInode) end() int64 { return in.off + in.isize + in.xsize }

var erofsKinds = map[uint16]tree.Kind{0o100000: tree.Regular, 0o040000: tree.Dir, 0o120000: tree.Symlink,
	0o020000: tree.CharDev, 0o060000: tree.BlockDev, 0o010000: tree.FIFO, 0o140000: tree.Socket}

func (e *erofsFS) inode(nid uint64) (*erofsInode, error) {
	if nid > uint64(math.MaxInt64-e.metaAddr)/32 {
		return nil, fmt.Errorf("erofs: inode number %d out of range", nid)
	}
	in := &erofsInode{nid: nid, off: e.metaAddr + int64(nid)*32, isize: 32}
	b := make([]byte, 64)
	if err := e.readAt(b[:32], in.off, "inode"); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	format := le.Uint16(b)
	if format&^0xf != 0 {
		return nil, fmt.Errorf("erofs: inode %d: format %#x unsupported", nid, format)
	}
	in.layout = int(format>>1) & 7
	mode := le.Uint16(b[4:])
	kind, ok := erofsKinds[mode&0o170000]
	if !ok {
		return nil, fmt.Errorf("erofs: inode %d: file type %#o unknown", nid, mode&0o170000)
	}
	o := &in.o
	o.key, o.kind, o.mode, o.handle = nid, kind, uint32(mode&0o7777), in
	if format&1 == 0 {
		in.iu = le.Uint32(b[16:])
		o.size = int64(le.Uint32(b[8:]))
		o.uid, o.gid = uint32(le.Uint16(b[24:])), uint32(le.Uint16(b[26:]))
		// Compact inodes take the build time, plus the offset newer
		// formats keep in the otherwise reserved word at 12.
		o.mtime = e.buildTime + int64(le.Uint32(b[12:]))
	} else {
		in.isize = 64
		if err := e.readAt(b[32:], in.off+32, "inode"); err != nil {
			return nil, err
		}
		size := le.Uint64(b[8:])
		if size > math.MaxInt64 {
			return nil, fmt.Errorf("erofs: inode %d: size %d invalid", nid, size)
		}
		in.iu, o.size = le.Uint32(b[16:]), int64(size)
		o.uid, o.gid, o.mtime = le.Uint32(b[24:]), le.Uint32(b[28:]), int64(le.Uint64(b[32:]))
	}
	if ic := le.Uint16(b[2:]); ic > 0 {
		in.xsize = 12 + int64(ic-1)*4
	}
	if err := e.check(in.off, in.isize+in.xsize, "inode"); err != nil {
		return nil, err
	}
	switch kind {
	case tree.CharDev, tree.BlockDev:
		o.rdev, o.size = decodeDev(in.iu), 0
	case tree.FIFO, tree.Socket:
		o.size = 0
	case tree.Symlink:
		if o.size == 0 || o.size > maxSymlinkTarget {
			return nil, fmt.Errorf("erofs: inode %d: symlink target of %d bytes", nid, o.size)
		}
		d, err := e.data(in)
		if err != nil {
			return nil, err
		}
		t := make([]byte, o.size)
		if _, err := d.ReadAt(t, 0); err != nil {
			return nil, fmt.Errorf("erofs: inode %d: symlink target: %w", nid, err)
		}
		o.target = string(t)
	}
	if in.xsize > 0 {
		var err error
		if o.xattrs, err = e.xattrs(in); err != nil {
			return nil, fmt.Errorf("erofs: inode %d: %w", nid, err)
		}
	}
	return in, nil
}

// erofsData is the content of an inode as a reader of its logical bytes.
type erofsData interface {
	io.ReaderAt
	// extent returns the length of the run of content starting at off
	// (off < size) that is stored alike, and whether it is a hole that
	// reads as zeros and need not be written.
	extent(off int64) (n int64, hole bool, err error)
}

// data returns the content of an inode by its data layout.
func (e *erofsFS) data(in *erofsInode) (erofsData, error) {
	size := in.o.size
	switch in.layout {
	case 0, 2: // flat plain; flat inline: blocks, then the last one after the inode
		d := &flatData{size: size, blk: int64(in.iu) << e.bits, full: size, e: e}
		if in.layout == 2 && size > 0 {
			d.full = (size - 1) >> e.bits << e.bits
			d.tail = in.end()
			if d.tail%e.bs+size-d.full > e.bs {
				return nil, fmt.Errorf("erofs: inode %d: inline data of %d bytes crosses a block boundary", in.nid, size-d.full)
			}
			if err := e.check(d.tail, size-d.full, "inline data"); err != nil {
				return nil, err
			}
		}
		if d.full > 0 {
			if err := e.check(d.blk, d.full, fmt.Sprintf("data of inode %d", in.nid)); err != nil {
				return nil, err
			}
		}
		return d, nil
	case 4:
		return e.chunked(in)
	case 1, 3:
		return e.compressedData(in)
	}
	return nil, fmt.Errorf("erofs: inode %d: data layout %d unknown", in.nid, in.layout)
}

// flatData is content stored uncompressed: full bytes in consecutive
// blocks from blk, the rest (if any) at tail.
type flatData struct {
	e                     *erofsFS
	size, blk, full, tail int64
}

func (d *flatData) extent(off int64) (int64, bool, error) { return d.size - off, false, nil }

func (d *flatData) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= d.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && off < d.size {
		k := min(int64(len(p)-n), d.size-off)
		at := d.blk + off
		if off >= d.full {
			at = d.tail + off - d.full
		} else {
			k = min(k, d.full-off)
		}
		if _, err := d.e.r.ReadAt(p[n:n+int(k)], at); err != nil {
			return n, fmt.Errorf("erofs: reading data: %w", err)
		}
		n += int(k)
		off += k
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// chunkData is chunk-based content: a table of block addresses, one per
// chunk of 2^bits bytes, after the inode and its xattrs.
type chunkData struct {
	e           *erofsFS
	nid         uint64
	size, table int64
	bits, unit  int64
	lastChunk   int64
}

func (e *erofsFS) chunked(in *erofsInode) (erofsData, error) {
	format := int64(in.iu & 0xffff)
	if format&^0x3f != 0 {
		return nil, fmt.Errorf("erofs: inode %d: chunk format %#x unsupported", in.nid, format)
	}
	d := &chunkData{e: e, nid: in.nid, size: in.o.size, bits: int64(e.bits) + format&0x1f, unit: 4, lastChunk: -1}
	if format&0x20 != 0 {
		d.unit = 8
	}
	if d.bits > 40 {
		return nil, fmt.Errorf("erofs: inode %d: chunks of 2^%d bytes unsupported", in.nid, d.bits)
	}
	d.table = (in.end() + d.unit - 1) / d.unit * d.unit
	chunks := (d.size + 1<<d.bits - 1) >> d.bits
	if chunks > e.size/d.unit {
		return nil, fmt.Errorf("erofs: inode %d: %d chunks do not fit the image", in.nid, chunks)
	}
	if err := e.check(d.table, chunks*d.unit, "chunk table"); err != nil {
		return nil, err
	}
	return d, nil
}

// chunk returns the image offset of chunk i (-1 for a hole) and its length.
func (d *chunkData) chunk(i int64) (int64, int64, error) {
	b := make([]byte, d.unit)
	if err := d.e.readAt(b, d.table+i*d.unit, "chunk table"); err != nil {
		return 0, 0, err
	}
	addr := binary.LittleEndian.Uint32(b)
	if d.unit == 8 {
		addr = binary.LittleEndian.Uint32(b[4:])
	}
	n := min(int64(1)<<d.bits, d.size-i<<d.bits)
	if addr == erofsNullAddr {
		return -1, n, nil
	}
	at := int64(addr) << d.e.bits
	if err := d.e.check(at, n, fmt.Sprintf("chunk %d of inode %d", i, d.nid)); err != nil {
		return 0, 0, err
	}
	return at, n, nil
}

func (d *chunkData) extent(off int64) (int64, bool, error) {
	i := off >> d.bits
	at, n, err := d.chunk(i)
	return n - (off - i<<d.bits), at < 0, err
}

func (d *chunkData) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) && off < d.size {
		i := off >> d.bits
		at, clen, err := d.chunk(i)
		if err != nil {
			return n, err
		}
		in := off - i<<d.bits
		k := int(min(int64(len(p)-n), clen-in))
		if at < 0 {
			clear(p[n : n+k])
		} else if _, err := d.e.r.ReadAt(p[n:n+k], at+in); err != nil {
			return n, fmt.Errorf("erofs: reading data: %w", err)
		}
		n += k
		off += int64(k)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (e *erofsFS) object(key uint64) (*object, error) {
	in, err := e.inode(key)
	if err != nil {
		return nil, err
	}
	return &in.o, nil
}

func (e *erofsFS) root() (*object, error) { return e.object(e.rootNid) }

// entries lists a directory block by block, "." and ".." included.
func (e *erofsFS) entries(dir *object, fn func(name string, key uint64) error) error {
	in := dir.handle.(*erofsInode)
	d, err := e.data(in)
	if err != nil {
		return err
	}
	le := binary.LittleEndian
	buf := make([]byte, e.bs)
	for blk := int64(0); blk < dir.size; blk += e.bs {
		b := buf[:min(e.bs, dir.size-blk)]
		if _, err := d.ReadAt(b, blk); err != nil {
			return err
		}
		if len(b) < 12 {
			return errors.New("erofs: corrupt directory")
		}
		first := int(le.Uint16(b[8:]))
		if first < 12 || first%12 != 0 || first > len(b) {
			return fmt.Errorf("erofs: corrupt directory block (first name at %d)", first)
		}
		n := first / 12
		for i := 0; i < n; i++ {
			ent := b[i*12:]
			start, end := int(le.Uint16(ent[8:])), len(b)
			if i+1 < n {
				end = int(le.Uint16(b[(i+1)*12+8:]))
			}
			if start < first || start > end || end > len(b) {
				return errors.New("erofs: corrupt directory block (name offsets)")
			}
			name := b[start:end]
			if i+1 == n {
				for j, c := range name {
					if c == 0 {
						name = name[:j]
						break
					}
				}
			}
			if err := fn(string(name), le.Uint64(ent)); err != nil {
				return err
			}
		}
	}
	return nil
}

// content writes the data of a regular file to w, skipping holes.
func (e *erofsFS) content(o *object, w io.WriterAt, _ bool) (*fragTail, error) {
	d, err := e.data(o.handle.(*erofsInode))
	if err != nil {
		return nil, err
	}
	return nil, copyData(d, o.size, w)
}

// copyData copies the content of d to w, run by run, skipping holes.
func copyData(d erofsData, size int64, w io.WriterAt) error {
	var buf []byte
	for off := int64(0); off < size; {
		n, hole, err := d.extent(off)
		if err != nil {
			return err
		}
		if n <= 0 || n > size-off {
			return fmt.Errorf("erofs: extent of %d bytes at %d", n, off)
		}
		if hole {
			off += n
			continue
		}
		if buf == nil {
			buf = make([]byte, min(size, 1<<20))
		}
		for end := off + n; off < end; {
			b := buf[:min(int64(len(buf)), end-off)]
			if _, err := d.ReadAt(b, off); err != nil && !(errors.Is(err, io.EOF) && off+int64(len(b)) == size) {
				return err
			}
			if _, err := w.WriteAt(b, off); err != nil {
				return err
			}
			off += int64(len(b))
		}
	}
	return nil
}

func (e *erofsFS) writeTail(*fragTail, io.WriterAt) error { return errors.New("erofs: no fragments") }
