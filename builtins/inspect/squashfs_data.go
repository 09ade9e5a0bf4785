package inspect

import (
	"encoding/binary"
	"fmt"
	"io"
)

// fragTail is the part of a file stored in a fragment block.
type fragTail struct {
	index, off uint32
	n          int64 // length
	at         int64 // file offset
}

// content writes the data of a regular file to w, block by block; sparse
// blocks are skipped (they read as zeros). With deferTail the part in a
// fragment block is returned instead of written, so that a caller
// extracting many files can read each fragment block once.
func (s *squashFS) content(o *object, w io.WriterAt, deferTail bool) (*fragTail, error) {
	in := o.handle.(*sqInode)
	bs := int64(s.blockSize)
	nblocks := (o.size + bs - 1) / bs
	hasFrag := in.fragIndex != sqNoFragment
	if hasFrag {
		nblocks = o.size / bs
	}
	// The block list (4 bytes a block) lives in the image: a size that
	// needs a longer list is corrupt, whatever the blocks say.
	if nblocks > s.size/4 {
		return nil, fmt.Errorf("squashfs: file size %d needs a block list longer than the image", o.size)
	}
	pos := int64(in.startBlock)
	var sizes [4 * 256]byte
	for i := int64(0); i < nblocks; i += 256 {
		k := min(256, nblocks-i)
		if err := in.list.read(sizes[:4*k]); err != nil {
			return nil, err
		}
		for j := int64(0); j < k; j++ {
			bsz := binary.LittleEndian.Uint32(sizes[4*j:])
			want := min(bs, o.size-(i+j)*bs)
			if bsz == 0 { // sparse
				continue
			}
			b, err := s.dataBlock(pos, bsz, want)
			if err != nil {
				return nil, fmt.Errorf("block %d: %w", i+j, err)
			}
			pos += int64(bsz &^ sqUncompBlock)
			if _, err := w.WriteAt(b, (i+j)*bs); err != nil {
				return nil, err
			}
		}
	}
	if !hasFrag {
		return nil, nil
	}
	t := &fragTail{index: in.fragIndex, off: in.fragOff, n: o.size - nblocks*bs, at: nblocks * bs}
	if deferTail {
		return t, nil
	}
	return nil, s.writeTail(t, w)
}

// dataBlock reads the data block of on-disk size word bsz at pos, which
// must hold want bytes (any number when want is negative). The result is
// valid until the next call.
func (s *squashFS) dataBlock(pos int64, bsz uint32, want int64) ([]byte, error) {
	n := int64(bsz &^ sqUncompBlock)
	if n > int64(s.blockSize) || bsz&^(sqUncompBlock|0xffffff) != 0 {
		return nil, fmt.Errorf("squashfs: corrupt block size %#x", bsz)
	}
	if err := s.check(pos, n, "data block"); err != nil {
		return nil, err
	}
	if cap(s.raw) < int(n) {
		s.raw = make([]byte, s.blockSize)
	}
	raw := s.raw[:n]
	if _, err := s.r.ReadAt(raw, pos); err != nil {
		return nil, fmt.Errorf("squashfs: reading data: %w", err)
	}
	b := raw
	if bsz&sqUncompBlock == 0 {
		var err error
		if s.block, err = s.dec.decompress(s.block[:0], raw, int(s.blockSize)); err != nil {
			return nil, fmt.Errorf("squashfs: %w", err)
		}
		b = s.block
	}
	if want < 0 {
		return b, nil
	}
	if int64(len(b)) < want {
		return nil, fmt.Errorf("squashfs: data block holds %d bytes, the file needs %d", len(b), want)
	}
	return b[:want], nil
}

// fragment returns the uncompressed fragment block with the given index.
func (s *squashFS) fragment(idx uint32) ([]byte, error) {
	if idx == s.fragIndex {
		return s.frag, nil
	}
	if idx >= s.fragCount {
		return nil, fmt.Errorf("squashfs: fragment %d beyond the %d fragments", idx, s.fragCount)
	}
	le := binary.LittleEndian
	ptr := make([]byte, 8)
	at := s.fragTable + int64(idx/512)*8
	if err := s.check(at, 8, "fragment table"); err != nil {
		return nil, err
	}
	if _, err := s.r.ReadAt(ptr, at); err != nil {
		return nil, fmt.Errorf("squashfs: fragment table: %w", err)
	}
	e, err := s.metaRead(int64(le.Uint64(ptr)), int(idx%512)*16, 16)
	if err != nil {
		return nil, err
	}
	start, size := int64(le.Uint64(e)), le.Uint32(e[8:])
	b, err := s.dataBlock(start, size, -1)
	if err != nil {
		return nil, fmt.Errorf("fragment %d: %w", idx, err)
	}
	// b is one of the reused buffers: keep a copy.
	s.frag, s.fragIndex = append(s.frag[:0], b...), idx
	return s.frag, nil
}

// writeTail writes the fragment part of a file.
func (s *squashFS) writeTail(t *fragTail, w io.WriterAt) error {
	b, err := s.fragment(t.index)
	if err != nil {
		return err
	}
	if int64(t.off) > int64(len(b)) || t.n > int64(len(b))-int64(t.off) || t.n >= int64(s.blockSize) {
		return fmt.Errorf("squashfs: fragment %d: %d bytes at %d out of range", t.index, t.n, t.off)
	}
	_, err = w.WriteAt(b[t.off:int64(t.off)+t.n], t.at)
	return err
}
