package erofs

import "encoding/binary"

// Compressed files map logical clusters (lclusters, one block of the
// decompressed file each) to physical clusters (pclusters, one block of
// compressed data each here). Every lcluster has an index entry: a HEAD
// entry where a pcluster's decompressed data starts (at clusterofs within
// the lcluster), a NONHEAD entry for lclusters wholly inside the data of a
// pcluster that started earlier (with the distances back to its head and on
// to the next head), and PLAIN for a head whose pcluster is stored
// uncompressed. Entries are stored in the compact form mkfs.erofs writes
// by default (EROFS_INODE_COMPRESSED_COMPACT): packs of 2 entries in 8
// bytes or 16 entries in 32 bytes, each pack ending with a block address
// from which the heads in it count up. Facts from linux
// fs/erofs/erofs_fs.h and zmap.c.

// Index entry types (Z_EROFS_LCLUSTER_TYPE_*) and header fields.
const (
	lclusterPlain   = 0
	lclusterHead1   = 1
	lclusterNonhead = 2

	adviseCompacted2B = 0x0001
	mapHeaderSize     = 8
	// d0CblkCnt marks a NONHEAD delta as a block count (big pclusters),
	// so plain distances stay below it.
	d0CblkCnt = 1 << 11
)

// zext is one extent of a compressed file: length bytes of the file that
// decompress from (or, raw, are stored in) one physical block.
type zext struct {
	length uint32
	raw    bool
}

// lcluster is one decoded index entry.
type lcluster struct {
	typ uint8
	// lo is clusterofs for heads, the distance back to the head for
	// NONHEAD entries.
	lo uint16
	// next is the distance to the next head (NONHEAD only).
	next uint16
}

// lclusters lays the extents of a file of size bytes over its lclusters.
func lclusters(exts []zext, size uint64) []lcluster {
	out := make([]lcluster, 0, (size+BlockSize-1)/BlockSize)
	clusterofs := uint32(0)
	for _, e := range exts {
		typ := uint8(lclusterHead1)
		if e.raw {
			typ = lclusterPlain
		}
		count := e.length
		d1 := (clusterofs + count) / BlockSize
		if d1 == 0 {
			// Ends inside this lcluster: only the file's last extent.
			out = append(out, lcluster{typ: typ, lo: uint16(clusterofs)})
			clusterofs = 0
			continue
		}
		for d0 := uint32(0); ; d0++ {
			if d0 == 0 {
				out = append(out, lcluster{typ: typ, lo: uint16(clusterofs)})
			} else {
				out = append(out, lcluster{typ: lclusterNonhead, lo: uint16(min(d0, d0CblkCnt-1)), next: uint16(min(d1, 0xffff))})
			}
			count -= BlockSize - clusterofs
			clusterofs = 0
			d1--
			if count < BlockSize {
				break
			}
		}
		clusterofs = count
	}
	if clusterofs != 0 {
		// The last extent ends inside an lcluster: that lcluster still
		// gets an entry, a head that starts beyond the end of the file.
		out = append(out, lcluster{typ: lclusterPlain, lo: uint16(clusterofs)})
	}
	return out
}

// compactLayout is how many entries open in 4-byte form (to reach 32-byte
// alignment), then in 2-byte form, then close in 4-byte form.
func compactLayout(total, mpos int) (initial, twoB, end int) {
	initial = (32 - mpos%32) / 4 & 7
	if initial > total {
		return 0, 0, total
	}
	twoB = (total - initial) / 16 * 16
	return initial, twoB, total - initial - twoB
}

// zmetaSize is the size of the map header and compact indexes of a file of
// size bytes whose inode and xattrs take isize bytes.
func zmetaSize(isize int, size uint64) int {
	total := int((size + BlockSize - 1) / BlockSize)
	initial, twoB, end := compactLayout(total, alignUp8(isize)+mapHeaderSize)
	return mapHeaderSize + initial*4 + twoB*2 + (end+1)/2*8
}

func alignUp8(n int) int { return (n + 7) &^ 7 }

// zmeta encodes the map header and compact indexes of a compressed file
// whose first pcluster is at block pstart.
func zmeta(isize int, size uint64, exts []zext, alg uint8, pstart uint32) []byte {
	le := binary.LittleEndian
	lcs := lclusters(exts, size)
	b := make([]byte, mapHeaderSize, zmetaSize(isize, size))
	le.PutUint16(b[4:], adviseCompacted2B)
	b[6] = alg
	// b[7], the lcluster size minus the block size in bits, is 0.
	initial, twoB, end := compactLayout(len(lcs), alignUp8(isize)+mapHeaderSize)
	blk := pstart - 1 // each head counts up by one block
	pack := func(entries []lcluster, vcnt, bytes int) {
		bits := (bytes*8 - 32) / vcnt
		p := make([]byte, bytes+2) // room for the last shifted writes
		base := blk
		for i := range vcnt {
			var v uint32
			if i < len(entries) {
				e := entries[i]
				lo := uint32(e.lo)
				if e.typ == lclusterNonhead && i == vcnt-1 {
					// The last entry of a pack keeps the distance
					// forward instead.
					lo = uint32(min(e.next, d0CblkCnt-1))
				}
				if e.typ != lclusterNonhead {
					blk++
				}
				v = uint32(e.typ)<<12 | lo
			} else {
				blk++ // padding entries read as PLAIN heads
			}
			pos := i * bits
			cur := uint32(p[pos/8]) | v<<(pos%8)
			p[pos/8] = byte(cur)
			p[pos/8+1] = byte(cur >> 8)
			p[pos/8+2] = byte(cur >> 16)
		}
		le.PutUint32(p[bytes-4:], base)
		b = append(b, p[:bytes]...)
	}
	for i := 0; i < initial; i += 2 {
		pack(lcs[i:min(i+2, len(lcs))], 2, 8)
	}
	lcs = lcs[initial:]
	for i := 0; i < twoB; i += 16 {
		pack(lcs[i:i+16], 16, 32)
	}
	lcs = lcs[twoB:]
	for i := 0; i < end; i += 2 {
		pack(lcs[i:min(i+2, len(lcs))], 2, 8)
	}
	return b
}
