package squashfs

import (
	"encoding/binary"
	"fmt"
	"io"
)

// metaSize is the uncompressed size of a metadata block.
const metaSize = 8192

// metaUncompressed marks a metadata block stored without compression.
const metaUncompressed = 0x8000

// appendMetaBlock appends one metadata block (16-bit length header, then the
// compressed or, when compression does not help, the raw bytes) to out.
func appendMetaBlock(out []byte, c compressor, src []byte, scratch *[]byte) ([]byte, error) {
	z, err := c.compress((*scratch)[:0], src)
	if err != nil {
		return nil, fmt.Errorf("compressing metadata: %w", err)
	}
	*scratch = z
	if len(z) >= len(src) {
		out = binary.LittleEndian.AppendUint16(out, uint16(len(src))|metaUncompressed)
		return append(out, src...), nil
	}
	out = binary.LittleEndian.AppendUint16(out, uint16(len(z)))
	return append(out, z...), nil
}

// metaWriter accumulates a stream of records (inodes, directory listings,
// xattrs) as compressed metadata blocks in memory. Records may cross block
// boundaries. A block is compressed as soon as it is full, so the on-disk
// offset of the block being filled is always len(out).
type metaWriter struct {
	c       compressor
	out     []byte
	cur     []byte
	total   int64 // uncompressed bytes written so far
	scratch []byte
	err     error
}

func newMetaWriter(c compressor) *metaWriter {
	return &metaWriter{c: c, cur: make([]byte, 0, metaSize)}
}

// ref returns the reference of the next byte to be written: the block's
// offset in this table shifted left by 16, or'ed with the offset inside the
// uncompressed block.
func (m *metaWriter) ref() uint64 { return uint64(len(m.out))<<16 | uint64(len(m.cur)) }

func (m *metaWriter) write(p []byte) {
	for len(p) > 0 {
		n := min(metaSize-len(m.cur), len(p))
		m.cur = append(m.cur, p[:n]...)
		p = p[n:]
		m.total += int64(n)
		if len(m.cur) == metaSize {
			m.flush()
		}
	}
}

func (m *metaWriter) flush() {
	if len(m.cur) == 0 || m.err != nil {
		m.cur = m.cur[:0]
		return
	}
	m.out, m.err = appendMetaBlock(m.out, m.c, m.cur, &m.scratch)
	m.cur = m.cur[:0]
}

// finish flushes the last partial block and returns the table's bytes.
func (m *metaWriter) finish() ([]byte, error) {
	m.flush()
	return m.out, m.err
}

// output writes sequentially through an io.WriterAt.
type output struct {
	w   io.WriterAt
	pos int64
}

func (o *output) write(p []byte) error {
	if _, err := o.w.WriteAt(p, o.pos); err != nil {
		return fmt.Errorf("writing image: %w", err)
	}
	o.pos += int64(len(p))
	return nil
}

// writeTable stores a lookup table (fragment, export, id or xattr id table):
// its bytes split into metadata blocks, followed by the uncompressed list of
// the blocks' absolute positions. It returns the position of that list.
func (o *output) writeTable(data []byte, c compressor, header []byte) (int64, error) {
	var locs []uint64
	var scratch []byte
	var buf []byte
	for i := 0; i < len(data); i += metaSize {
		chunk := data[i:min(i+metaSize, len(data))]
		var err error
		buf, err = appendMetaBlock(buf[:0], c, chunk, &scratch)
		if err != nil {
			return 0, err
		}
		locs = append(locs, uint64(o.pos))
		if err := o.write(buf); err != nil {
			return 0, err
		}
	}
	start := o.pos
	idx := append([]byte(nil), header...)
	for _, l := range locs {
		idx = binary.LittleEndian.AppendUint64(idx, l)
	}
	if err := o.write(idx); err != nil {
		return 0, err
	}
	return start, nil
}
