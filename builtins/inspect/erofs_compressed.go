package inspect

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz/lzma"
)

// ErrCompressedErofs is returned (wrapped) for the content of an erofs
// inode stored with a compressed layout the reader does not decode: tail
// packing, fragments, interlaced raw clusters, deduplicated (partial)
// extents, or an unknown algorithm.
var ErrCompressedErofs = errors.New("compressed erofs layout not supported")

// Compressed erofs files (facts from linux fs/erofs/erofs_fs.h and zmap.c):
// every logical cluster (lcluster) of the file has an index entry; HEAD and
// PLAIN entries start an extent at clusterofs within their lcluster whose
// data is in the physical cluster at their block address (compressed, or
// for PLAIN stored as is), NONHEAD entries continue the extent of an
// earlier head. An extent ends where the next one starts. Decoded: full and
// compact indexes, big physical clusters, both head types and the LZ4, LZMA
// (MicroLZMA), DEFLATE and zstd algorithms, with the zero padding before
// the data or (old LZ4 images) without.
const (
	zTypePlain   = 0
	zTypeHead1   = 1
	zTypeNonhead = 2
	zTypeHead2   = 3

	zAdviseCompacted2B  = 0x01
	zAdviseBigPcluster1 = 0x02
	zAdviseBigPcluster2 = 0x04
	zAdviseUnsupported  = 0x08 | 0x10 | 0x20 // inline, interlaced, fragment
	zD0Cblkcnt          = 1 << 11
	zPartialRef         = 1 << 15

	zAlgLZ4     = 0
	zAlgLZMA    = 1
	zAlgDeflate = 2
	zAlgZstd    = 3

	// zMaxExtent is the kernel's limit on what one physical cluster
	// decompresses to (Z_EROFS_PCLUSTER_MAX_DSIZE).
	zMaxExtent = 12 << 20
)

// zentry is one decoded lcluster index entry.
type zentry struct {
	typ  uint8
	lo   uint16 // clusterofs (heads) or distance/block count (NONHEAD)
	pblk uint32 // heads only
	// partial is set for deduplicated heads that use part of their data.
	partial bool
}

// zextent is one extent: the bytes [start, end) of the file come from
// blocks blocks at pblk.
type zextent struct {
	start, end int64
	pblk       uint32
	blocks     int64
	typ        uint8
	alg        int
}

// zData is the content of a compressed inode. It decodes one extent at a
// time and keeps the last one.
type zData struct {
	e    *erofsFS
	nid  uint64
	size int64
	exts []zextent
	cfgs map[int][]byte
	cur  int // index of the extent in buf, -1 for none
	buf  []byte
}

// compressedData maps a compressed inode (layout 1: full indexes, 3:
// compact indexes) to its extents.
func (e *erofsFS) compressedData(in *erofsInode) (erofsData, error) {
	fail := func(format string, a ...any) (erofsData, error) {
		return nil, fmt.Errorf("erofs: inode %d: %s", in.nid, fmt.Sprintf(format, a...))
	}
	hdrAt := (in.end() + 7) &^ 7
	var h [8]byte
	if err := e.readAt(h[:], hdrAt, "map header"); err != nil {
		return nil, err
	}
	advise := binary.LittleEndian.Uint16(h[4:])
	algs := [2]int{int(h[6] & 15), int(h[6] >> 4)}
	lbits := int(e.bits) + int(h[7]&7)
	if h[7]&0x80 != 0 || advise&zAdviseUnsupported != 0 {
		return nil, fmt.Errorf("erofs: inode %d (advise %#x): %w", in.nid, advise, ErrCompressedErofs)
	}
	size := in.o.size
	total := (size + 1<<lbits - 1) >> lbits
	if total > e.size/2 {
		return fail("%d lclusters cannot be indexed in the image", total)
	}
	var ents []zentry
	var err error
	if in.layout == 1 {
		ents, err = e.fullIndexes(hdrAt+16, total)
	} else {
		ents, err = e.compactIndexes(hdrAt+8, total, lbits, advise)
	}
	if err != nil {
		return nil, fmt.Errorf("erofs: inode %d: %w", in.nid, err)
	}
	d := &zData{e: e, nid: in.nid, size: size, cur: -1}
	for i, z := range ents {
		if z.typ == zTypeNonhead {
			continue
		}
		start := int64(i)<<lbits | int64(z.lo)
		if start >= size {
			break
		}
		if z.partial {
			return nil, fmt.Errorf("erofs: inode %d (deduplicated extent): %w", in.nid, ErrCompressedErofs)
		}
		blocks := int64(1)
		big := advise&zAdviseBigPcluster1 != 0 && z.typ == zTypeHead1 ||
			advise&zAdviseBigPcluster2 != 0 && z.typ != zTypeHead1
		if big && i+1 < len(ents) && ents[i+1].typ == zTypeNonhead && ents[i+1].lo&zD0Cblkcnt != 0 {
			blocks = int64(ents[i+1].lo &^ zD0Cblkcnt)
		}
		alg := algs[0]
		if z.typ == zTypeHead2 {
			alg = algs[1]
		}
		if n := len(d.exts); n > 0 {
			d.exts[n-1].end = start
		}
		d.exts = append(d.exts, zextent{start: start, end: size, pblk: z.pblk, blocks: blocks, typ: z.typ, alg: alg})
	}
	if size > 0 && (len(d.exts) == 0 || d.exts[0].start != 0) {
		return fail("compressed content does not start with an extent")
	}
	for _, x := range d.exts {
		switch {
		case x.end <= x.start || x.blocks < 1 || x.blocks > 256:
			return fail("corrupt extent at %d", x.start)
		case x.typ == zTypePlain && x.end-x.start > x.blocks*e.bs:
			return fail("raw extent at %d longer than its cluster", x.start)
		case x.end-x.start > zMaxExtent:
			return fail("extent at %d decompresses to %d bytes", x.start, x.end-x.start)
		}
		if err := e.check(int64(x.pblk)*e.bs, x.blocks*e.bs, fmt.Sprintf("cluster of inode %d", in.nid)); err != nil {
			return nil, err
		}
	}
	if d.cfgs, err = e.comprCfgs(); err != nil {
		return nil, err
	}
	return d, nil
}

// comprCfgs reads the per-algorithm records that follow the superblock
// (lzma dictionary size, zstd window).
func (e *erofsFS) comprCfgs() (map[int][]byte, error) {
	cfgs := map[int][]byte{}
	if e.incompat&erofsComprCfgs == 0 {
		return cfgs, nil
	}
	algs := binary.LittleEndian.Uint16(e.sb[84:])
	off := int64(1024 + 128 + int(e.sb[13])*16)
	for alg := range 16 {
		if algs&(1<<alg) == 0 {
			continue
		}
		off = (off + 3) &^ 3
		var l [2]byte
		if err := e.readAt(l[:], off, "compression settings"); err != nil {
			return nil, err
		}
		n := int64(binary.LittleEndian.Uint16(l[:]))
		if n > 256 {
			return nil, fmt.Errorf("erofs: compression settings of %d bytes", n)
		}
		cfg := make([]byte, n)
		if err := e.readAt(cfg, off+2, "compression settings"); err != nil {
			return nil, err
		}
		cfgs[alg] = cfg
		off += 2 + n
	}
	return cfgs, nil
}

// find returns the index of the extent holding off.
func (d *zData) find(off int64) int {
	lo, hi := 0, len(d.exts)
	for lo < hi {
		m := (lo + hi) / 2
		if d.exts[m].end <= off {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

func (d *zData) extent(off int64) (int64, bool, error) {
	i := d.find(off)
	if off < 0 || i >= len(d.exts) {
		return 0, false, io.EOF
	}
	return d.exts[i].end - off, false, nil
}

func (d *zData) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) && off < d.size {
		i := d.find(off)
		if off < 0 || i >= len(d.exts) {
			break
		}
		if err := d.decode(i); err != nil {
			return n, err
		}
		x := d.exts[i]
		k := copy(p[n:], d.buf[off-x.start:])
		n += k
		off += int64(k)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// decode makes buf hold extent i.
func (d *zData) decode(i int) error {
	if d.cur == i {
		return nil
	}
	d.cur = -1
	x := d.exts[i]
	e := d.e
	pc := make([]byte, x.blocks*e.bs)
	if err := e.readAt(pc, int64(x.pblk)*e.bs, "compressed cluster"); err != nil {
		return err
	}
	length := int(x.end - x.start)
	if cap(d.buf) < length {
		d.buf = make([]byte, length)
	}
	d.buf = d.buf[:length]
	if x.typ == zTypePlain {
		copy(d.buf, pc)
		d.cur = i
		return nil
	}
	if e.incompat&erofsZeroPadding != 0 {
		pc = bytes.TrimLeft(pc, "\x00")
	} else if x.alg == zAlgLZ4 {
		// Without zero padding the data starts the cluster and
		// zeros follow it: find where it ends.
		pc = pc[:lz4End(pc, length)]
	}
	if err := decompressErofs(x.alg, d.cfgs, pc, d.buf); err != nil {
		return fmt.Errorf("erofs: inode %d, extent at %d: %w", d.nid, x.start, err)
	}
	d.cur = i
	return nil
}

// fullIndexes reads the 8-byte index entries of the non-compact layout.
func (e *erofsFS) fullIndexes(at, total int64) ([]zentry, error) {
	b := make([]byte, total*8)
	if err := e.readAt(b, at, "indexes"); err != nil {
		return nil, err
	}
	ents := make([]zentry, total)
	for i := range ents {
		d := b[i*8:]
		adv := binary.LittleEndian.Uint16(d)
		z := zentry{typ: uint8(adv & 3), partial: adv&zPartialRef != 0}
		if z.typ == zTypeNonhead {
			z.lo = binary.LittleEndian.Uint16(d[4:])
		} else {
			z.lo = binary.LittleEndian.Uint16(d[2:])
			z.pblk = binary.LittleEndian.Uint32(d[4:])
		}
		ents[i] = z
	}
	return ents, nil
}

// compactIndexes reads the compact layout: entries packed 2 to 8 bytes or
// 16 to 32 bytes, each pack ending with a block address from which its
// heads count.
func (e *erofsFS) compactIndexes(at, total int64, lbits int, advise uint16) ([]zentry, error) {
	initial := int64((32-at%32)/4) & 7
	var twoB int64
	if advise&zAdviseCompacted2B != 0 && initial < total {
		twoB = (total - initial) / 16 * 16
	}
	initial = min(initial, total)
	rest := total - initial - twoB
	size := (initial+1)/2*8 + twoB*2 + (rest+1)/2*8
	b := make([]byte, size+4)
	if err := e.readAt(b[:size], at, "indexes"); err != nil {
		return nil, err
	}
	big := advise&zAdviseBigPcluster1 != 0
	lobits := max(lbits, 12)
	ents := make([]zentry, 0, total)
	decodePacks := func(b []byte, n int64, vcnt, bytes int) ([]byte, error) {
		bits := (bytes*8 - 32) / vcnt
		for done := int64(0); done < n; done += int64(vcnt) {
			p := b[:bytes]
			b = b[bytes:]
			typs := make([]uint8, vcnt)
			los := make([]int, vcnt)
			for i := range vcnt {
				pos := i * bits
				var v uint32
				for k := min(pos/8+3, bytes-1); k >= pos/8; k-- {
					v = v<<8 | uint32(p[k])
				}
				v >>= pos % 8
				los[i] = int(v & (1<<lobits - 1))
				typs[i] = uint8(v>>lobits) & 3
			}
			base := binary.LittleEndian.Uint32(p[bytes-4:])
			for i := range vcnt {
				if done+int64(i) >= n {
					break
				}
				z := zentry{typ: typs[i], lo: uint16(los[i])}
				if z.typ != zTypeNonhead {
					nblk, err := packBlocks(typs, los, i, big)
					if err != nil {
						return nil, err
					}
					z.pblk = base + uint32(nblk)
				}
				ents = append(ents, z)
			}
		}
		return b, nil
	}
	var err error
	if b, err = decodePacks(b, initial, 2, 8); err != nil {
		return nil, err
	}
	if b, err = decodePacks(b, twoB, 16, 32); err != nil {
		return nil, err
	}
	if _, err = decodePacks(b, rest, 2, 8); err != nil {
		return nil, err
	}
	return ents, nil
}

// packBlocks counts, as the kernel does, how many blocks the pclusters
// before entry i of a pack take, to add to the pack's base address.
func packBlocks(typs []uint8, los []int, i int, big bool) (int, error) {
	nblk := 0
	if !big {
		nblk = 1
	}
	for i > 0 {
		i--
		if typs[i] != zTypeNonhead {
			nblk++
			continue
		}
		lo := los[i]
		switch {
		case !big:
			i -= lo
			if i >= 0 {
				nblk++
			}
		case lo&zD0Cblkcnt != 0:
			i--
			nblk += lo &^ zD0Cblkcnt
		case lo <= 1:
			return 0, errors.New("erofs: corrupt compact index")
		default:
			i -= lo - 2
		}
	}
	return nblk, nil
}

// lz4End returns the length of the LZ4 block at the start of b that
// decodes to n bytes (or len(b) if it cannot tell).
func lz4End(b []byte, n int) int {
	ip, op := 0, 0
	ext := func(v int) int {
		if v != 15 {
			return v
		}
		for ip < len(b) {
			c := b[ip]
			ip++
			v += int(c)
			if c != 255 {
				break
			}
		}
		return v
	}
	for ip < len(b) {
		tok := b[ip]
		ip++
		lit := ext(int(tok >> 4))
		ip += lit
		op += lit
		if op >= n {
			return min(ip, len(b))
		}
		ip += 2
		op += ext(int(tok&15)) + 4
	}
	return len(b)
}

// decompress decodes src into exactly len(dst) bytes.
func decompressErofs(alg int, cfgs map[int][]byte, src, dst []byte) error {
	switch alg {
	case zAlgLZ4:
		n, err := lz4.UncompressBlock(src, dst)
		if err != nil {
			return fmt.Errorf("lz4: %w", err)
		}
		if n != len(dst) {
			return fmt.Errorf("lz4: %d bytes, want %d", n, len(dst))
		}
		return nil
	case zAlgLZMA:
		if len(src) < 2 {
			return errors.New("lzma: truncated")
		}
		dict := uint32(8 << 20)
		if cfg := cfgs[zAlgLZMA]; len(cfg) >= 4 {
			dict = max(binary.LittleEndian.Uint32(cfg), 4096)
		}
		// MicroLZMA: the first byte is the complement of the properties
		// byte and stands in for the range coder's first byte, always 0;
		// rebuild the classic .lzma header around it.
		h := binary.LittleEndian.AppendUint32([]byte{^src[0]}, dict)
		h = binary.LittleEndian.AppendUint64(h, uint64(len(dst)))
		h = append(h, 0)
		r, err := lzma.NewReader(io.MultiReader(bytes.NewReader(h), bytes.NewReader(src[1:])))
		if err != nil {
			return fmt.Errorf("lzma: %w", err)
		}
		return readExactly("lzma", r, dst)
	case zAlgDeflate:
		return readExactly("deflate", flate.NewReader(bytes.NewReader(src)), dst)
	case zAlgZstd:
		window := uint64(1 << 20)
		if cfg := cfgs[zAlgZstd]; len(cfg) >= 2 {
			window = 1 << (uint(cfg[1]&15) + 10)
		}
		d, err := zstd.NewReader(bytes.NewReader(src), zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxWindow(window), zstd.WithDecoderMaxMemory(uint64(len(dst))+window))
		if err != nil {
			return fmt.Errorf("zstd: %w", err)
		}
		defer d.Close()
		return readExactly("zstd", d, dst)
	}
	return fmt.Errorf("algorithm %d: %w", alg, ErrCompressedErofs)
}

// readExactly fills dst from r; r must hold at least that much.
func readExactly(alg string, r io.Reader, dst []byte) error {
	if _, err := io.ReadFull(r, dst); err != nil {
		return fmt.Errorf("%s: %w", alg, err)
	}
	return nil
}
