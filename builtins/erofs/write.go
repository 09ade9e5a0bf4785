package erofs

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// copyRangeMin is the data size from which a file is copied with
// copy_file_range instead of through the write buffer.
var copyRangeMin int64 = 256 << 10

// seqWriter writes a region of the image front to back through a buffer,
// filling gaps with zeros.
type seqWriter struct {
	w    io.WriterAt
	base int64 // image offset of buf[0]
	buf  []byte
}

func newSeqWriter(w io.WriterAt, at int64, size int) *seqWriter {
	return &seqWriter{w: w, base: at, buf: make([]byte, 0, size)}
}

func (s *seqWriter) pos() int64 { return s.base + int64(len(s.buf)) }

func (s *seqWriter) flush() error {
	if len(s.buf) == 0 {
		return nil
	}
	if _, err := s.w.WriteAt(s.buf, s.base); err != nil {
		return fmt.Errorf("erofs: writing image: %w", err)
	}
	s.base += int64(len(s.buf))
	s.buf = s.buf[:0]
	return nil
}

func (s *seqWriter) write(p []byte) error {
	for len(p) > 0 {
		if len(s.buf) == cap(s.buf) {
			if err := s.flush(); err != nil {
				return err
			}
		}
		n := min(len(p), cap(s.buf)-len(s.buf))
		s.buf = append(s.buf, p[:n]...)
		p = p[n:]
	}
	return nil
}

// zeros pads with zero bytes up to the image offset to.
func (s *seqWriter) zeros(to int64) error {
	for s.pos() < to {
		if len(s.buf) == cap(s.buf) {
			if err := s.flush(); err != nil {
				return err
			}
		}
		n := int(min(to-s.pos(), int64(cap(s.buf)-len(s.buf))))
		l := len(s.buf)
		s.buf = s.buf[:l+n]
		clear(s.buf[l:])
	}
	return nil
}

// readFrom appends exactly n bytes read from r.
func (s *seqWriter) readFrom(r io.Reader, n int64) error {
	for n > 0 {
		if len(s.buf) == cap(s.buf) {
			if err := s.flush(); err != nil {
				return err
			}
		}
		k := int(min(n, int64(cap(s.buf)-len(s.buf))))
		l := len(s.buf)
		got, err := io.ReadFull(r, s.buf[l:l+k])
		s.buf = s.buf[:l+got]
		if err != nil {
			return err
		}
		n -= int64(k)
	}
	return nil
}

// metaWriter writes the metadata area. Block 0 (superblock and the first
// inodes) is kept until the end because its checksum covers the inodes.
type metaWriter struct {
	block0 [BlockSize]byte
	rest   *seqWriter
}

func (m *metaWriter) writeAt(off int64, p []byte) error {
	if off < BlockSize {
		n := copy(m.block0[off:], p)
		p, off = p[n:], off+int64(n)
		if len(p) == 0 {
			return nil
		}
	}
	if err := m.rest.zeros(off); err != nil {
		return err
	}
	return m.rest.write(p)
}

var errChanged = errors.New("file changed while the image was written")

func (img *image) write(w io.WriterAt) error {
	meta := &metaWriter{rest: newSeqWriter(w, max(BlockSize, int64(img.metaBlk)*BlockSize), 256<<10)}
	data := newSeqWriter(w, int64(img.dataStart)*BlockSize, 1<<20)
	dst, _ := w.(*os.File)
	hdr := make([]byte, extendedSize)
	tail := make([]byte, BlockSize)
	var small []*inode
	for _, ino := range img.order {
		if img.readsWhole(ino) {
			small = append(small, ino)
		}
	}
	pf := startPrefetch(small)
	defer pf.close()
	for _, ino := range img.order {
		at := img.offset(ino)
		h := ino.header(hdr)
		if err := meta.writeAt(at, h); err != nil {
			return err
		}
		tailAt := at + int64(len(h))
		var err error
		switch {
		case ino.ftype == ftDir:
			err = img.writeBytes(meta, data, ino, tailAt, ino.dir.bytes(ino.size))
		case ino.ftype == ftSymlink:
			err = img.writeBytes(meta, data, ino, tailAt, []byte(ino.node.Target))
		case ino.zmeta != nil:
			err = meta.writeAt(at+int64(alignUp8(len(h))), ino.zmeta)
		case ino.prewritten:
			if ino.inline > 0 {
				err = meta.writeAt(tailAt, ino.tail)
			}
		case img.readsWhole(ino):
			var b []byte
			if b, err = pf.take(ino); err == nil {
				err = img.writeBytes(meta, data, ino, tailAt, b)
				putBuf(b)
			}
		case ino.ftype == ftReg:
			err = img.writeFile(meta, data, dst, ino, tailAt, tail)
		}
		if err != nil {
			return err
		}
	}
	// Uncompressed: metadata, then data to the end. Compressed: data,
	// then metadata to the end.
	metaEnd, dataEnd := int64(img.dataStart), int64(img.blocks)
	if img.codec != nil {
		metaEnd, dataEnd = int64(img.blocks), int64(img.metaBlk)
	}
	if err := meta.rest.zeros(metaEnd * BlockSize); err != nil {
		return err
	}
	if err := meta.rest.flush(); err != nil {
		return err
	}
	if err := data.flush(); err != nil {
		return err
	}
	if data.pos() != dataEnd*BlockSize {
		return fmt.Errorf("erofs: internal error: data ends at %d, expected block %d", data.pos(), dataEnd)
	}
	img.superblock(meta.block0[:])
	if _, err := w.WriteAt(meta.block0[:], 0); err != nil {
		return fmt.Errorf("erofs: writing superblock: %w", err)
	}
	return nil
}

// prefetchMax is the largest file write reads ahead: past a few blocks the
// system calls no longer dominate, and larger files are read straight into
// the write buffer.
var prefetchMax uint64 = 16 << 10

// readsWhole reports whether write reads a regular file ahead, in
// parallel, rather than streaming or copying it in the kernel.
func (img *image) readsWhole(ino *inode) bool {
	return ino.ftype == ftReg && !ino.prewritten && ino.zmeta == nil && ino.size > 0 && ino.size <= prefetchMax
}

// writeBytes stores generated content (directory blocks, symlink target)
// or a file read whole.
func (img *image) writeBytes(meta *metaWriter, data *seqWriter, ino *inode, tailAt int64, b []byte) error {
	full := len(b) - ino.inline
	if err := data.write(b[:full]); err != nil {
		return err
	}
	if err := data.zeros(int64(ino.blkaddr+uint32(ino.dataBlocks)) * BlockSize); err != nil {
		return err
	}
	if ino.inline > 0 {
		return meta.writeAt(tailAt, b[full:])
	}
	return nil
}

// writeFile streams a regular file: whole blocks into the data area, the
// tail into the metadata area when it is inline.
func (img *image) writeFile(meta *metaWriter, data *seqWriter, dst *os.File, ino *inode, tailAt int64, tail []byte) (err error) {
	if ino.size == 0 {
		return nil
	}
	n := ino.node
	rc, err := n.Open()
	if err != nil {
		return fmt.Errorf("erofs: %s: %w", displayPath(n), err)
	}
	defer func() {
		if cerr := rc.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("erofs: %s: %w", displayPath(n), cerr)
		}
	}()
	full := int64(ino.size) - int64(ino.inline)
	if ino.dataBlocks > 0 && data.pos() != int64(ino.blkaddr)*BlockSize {
		return fmt.Errorf("erofs: internal error: %s data at %d, expected block %d", displayPath(n), data.pos(), ino.blkaddr)
	}
	src, _ := rc.(*os.File)
	if dst != nil && src != nil && full >= copyRangeMin {
		if err := data.flush(); err != nil {
			return err
		}
		done, err := copyRange(dst, src, data.base, full)
		if err != nil {
			return fmt.Errorf("erofs: %s: %w", displayPath(n), err)
		}
		data.base += done
		full -= done
	}
	if err := data.readFrom(rc, full); err != nil {
		return fmt.Errorf("erofs: %s: reading %d bytes: %w (%w)", displayPath(n), ino.size, err, errChanged)
	}
	if err := data.zeros(int64(ino.blkaddr+uint32(ino.dataBlocks)) * BlockSize); err != nil {
		return err
	}
	if ino.inline > 0 {
		t := tail[:ino.inline]
		if _, err := io.ReadFull(rc, t); err != nil {
			return fmt.Errorf("erofs: %s: reading %d bytes: %w (%w)", displayPath(n), ino.size, err, errChanged)
		}
		if err := meta.writeAt(tailAt, t); err != nil {
			return err
		}
	}
	return atEOF(rc, ino)
}

// copyRange copies n bytes from the current offset of src to offset off of
// dst in the kernel. It returns how much it copied; a file system that
// cannot do it copies 0 bytes without error and the caller reads instead.
func copyRange(dst, src *os.File, off, n int64) (int64, error) {
	var done int64
	sfd, dfd := int(src.Fd()), int(dst.Fd())
	for done < n {
		doff := off + done
		k, err := unix.CopyFileRange(sfd, nil, dfd, &doff, int(min(n-done, 1<<30)), 0)
		if err != nil {
			if done == 0 && (errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EINVAL) ||
				errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EBADF)) {
				return 0, nil
			}
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return done, fmt.Errorf("copy_file_range: %w", err)
		}
		if k == 0 {
			return done, fmt.Errorf("shorter than %d bytes: %w", n, errChanged)
		}
		done += int64(k)
	}
	return done, nil
}
