package erofs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
)

// Compressed images are written data first: the compressed size of a file
// is known only once it is compressed, and its inode (which holds the
// cluster indexes) only then, so the file data goes right after the
// superblock, the blocks of directories and other uncompressed data after
// it, and the metadata area last (meta_blkaddr points at it).
//
// Files are compressed as mkfs.erofs does by default: 4 KiB physical
// clusters, each filled with as much input as fits (fixed-output
// compression), a cluster that saves nothing stored raw, and a file that
// saves nothing stored uncompressed. Files larger than segmentSize are
// split into segments compressed independently, so large files use every
// core too; segments start at fixed offsets, so the image does not depend
// on how many workers ran.

// segmentSize is the input of one compression job at most. A multiple of
// the block size, so segments start at lcluster boundaries. (A variable so
// that tests can cross segment boundaries with small files.)
var segmentSize int64 = 4 << 20

// zjob is one segment of one file to compress.
type zjob struct {
	ino      *inode
	off, len int64
	first    bool
	last     bool
	done     chan zresult
}

// zresult is what a worker made of a job: whole blocks to write in order
// and the extents they hold, or (single-segment files that do not gain)
// the file stored flat.
type zresult struct {
	data []byte
	exts []zext
	flat bool
	tail []byte // the file's last partial block, for a flat file
	err  error
}

// compressFiles compresses every regular file larger than a block into the
// data area starting at block start, and returns the block after the last
// one written. Each file it handles gets its final layout: compressed with
// its index metadata, or flat with its full blocks written and its tail kept
// for the metadata area.
func (img *image) compressFiles(w io.WriterAt, start uint32) (uint32, error) {
	var jobs []*zjob
	for _, ino := range img.inodes {
		if ino.ftype != ftReg || ino.size <= BlockSize {
			continue
		}
		size := int64(ino.size)
		for off := int64(0); off < size; off += segmentSize {
			jobs = append(jobs, &zjob{ino: ino, off: off, len: min(segmentSize, size-off),
				first: off == 0, last: off+segmentSize >= size, done: make(chan zresult, 1)})
		}
	}
	if len(jobs) == 0 {
		return start, nil
	}
	workers := min(runtime.GOMAXPROCS(0), len(jobs))
	// At most this many jobs are in flight (compressed but not yet
	// written), which bounds memory to a few segments per worker.
	window := make(chan struct{}, 2*workers+2)
	queue := make(chan *zjob)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			zw := &zworker{codec: img.codec}
			for j := range queue {
				j.done <- zw.run(j)
			}
		}()
	}
	go func() {
		defer close(queue)
		for _, j := range jobs {
			select {
			case window <- struct{}{}:
			case <-stop:
				return
			}
			select {
			case queue <- j:
			case <-stop:
				return
			}
		}
	}()
	defer func() {
		close(stop)
		wg.Wait()
	}()

	next := start
	var exts []zext
	for _, j := range jobs {
		r := <-j.done
		<-window
		if r.err != nil {
			return 0, r.err
		}
		ino := j.ino
		if j.first {
			ino.blkaddr = next
			exts = exts[:0]
		}
		if len(r.data) > 0 {
			if _, err := w.WriteAt(r.data, int64(next)*BlockSize); err != nil {
				return 0, fmt.Errorf("erofs: writing image: %w", err)
			}
			next += uint32(len(r.data) / BlockSize)
		}
		putBuf(r.data)
		if r.flat {
			img.setFlat(ino, next-ino.blkaddr, r.tail)
			continue
		}
		exts = append(exts, r.exts...)
		if !j.last {
			continue
		}
		blocks := next - ino.blkaddr
		if !gains(ino.size, blocks) {
			// A large file that does not compress: rewrite it flat.
			var err error
			if next, err = img.writeFlat(w, ino); err != nil {
				return 0, err
			}
			continue
		}
		ino.layout = layoutCompressedCompact
		ino.zblocks = blocks
		ino.zmeta = zmeta(ino.baseSize(), ino.size, exts, img.codec.alg, ino.blkaddr)
	}
	return next, nil
}

// gains reports whether blocks of compressed data and the indexes save
// space over storing size bytes flat (mkfs.erofs's rule).
func gains(size uint64, blocks uint32) bool {
	lclusters := (size + BlockSize - 1) / BlockSize
	return uint64(blocks)*BlockSize+16+8*lclusters < size
}

// setFlat records that ino is stored uncompressed: blocks full blocks at
// its blkaddr, then tail inline behind its inode when it fits there, in a
// final block otherwise (then included in blocks).
func (img *image) setFlat(ino *inode, blocks uint32, tail []byte) {
	ino.layout = layoutFlatPlain
	ino.dataBlocks = uint64(blocks)
	ino.prewritten = true
	if len(tail) > 0 && tailInline(ino, len(tail)) {
		ino.layout = layoutFlatInline
		ino.inline = len(tail)
		ino.tail = tail
	}
	if blocks == 0 {
		ino.blkaddr = 0
	}
}

// tailInline reports whether an n-byte tail fits behind the inode.
func tailInline(ino *inode, n int) bool {
	return int64(ino.metaSize())+int64(n) <= BlockSize
}

// writeFlat writes ino uncompressed at its blkaddr and returns the block
// after it.
func (img *image) writeFlat(w io.WriterAt, ino *inode) (uint32, error) {
	rc, err := ino.node.Open()
	if err != nil {
		return 0, fmt.Errorf("erofs: %s: %w", displayPath(ino.node), err)
	}
	defer rc.Close()
	full := int64(ino.size / BlockSize * BlockSize)
	tailLen := int(ino.size % BlockSize)
	inline := tailLen > 0 && tailInline(ino, tailLen)
	if !inline {
		full = int64(ino.size)
	}
	data := newSeqWriter(w, int64(ino.blkaddr)*BlockSize, 1<<20)
	dst, _ := w.(*os.File)
	if src, ok := rc.(*os.File); ok && dst != nil && full >= copyRangeMin {
		done, err := copyRange(dst, src, data.base, full)
		if err != nil {
			return 0, fmt.Errorf("erofs: %s: %w", displayPath(ino.node), err)
		}
		data.base += done
		full -= done
	}
	if err := data.readFrom(rc, full); err != nil {
		return 0, fmt.Errorf("erofs: %s: reading %d bytes: %w (%w)", displayPath(ino.node), ino.size, err, errChanged)
	}
	if err := data.zeros(alignUp(data.pos(), BlockSize)); err != nil {
		return 0, err
	}
	if err := data.flush(); err != nil {
		return 0, err
	}
	var tail []byte
	if inline {
		tail = make([]byte, tailLen)
		if _, err := io.ReadFull(rc, tail); err != nil {
			return 0, fmt.Errorf("erofs: %s: reading %d bytes: %w (%w)", displayPath(ino.node), ino.size, err, errChanged)
		}
	}
	if err := atEOF(rc, ino); err != nil {
		return 0, err
	}
	next := uint32(data.pos() / BlockSize)
	img.setFlat(ino, next-ino.blkaddr, tail)
	return next, nil
}

// atEOF fails when r has more to read: the file grew.
func atEOF(r io.Reader, ino *inode) error {
	var one [1]byte
	if k, _ := r.Read(one[:]); k > 0 {
		return fmt.Errorf("erofs: %s: longer than %d bytes: %w", displayPath(ino.node), ino.size, errChanged)
	}
	return nil
}

// zworker compresses jobs; it owns its compressor and input buffer.
type zworker struct {
	codec *codec
	f     fitter
	in    []byte
}

var bufPool = sync.Pool{New: func() any { return []byte(nil) }}

func getBuf(n int) []byte {
	b := bufPool.Get().([]byte)
	if cap(b) < n {
		return make([]byte, 0, n)
	}
	return b[:0]
}

func putBuf(b []byte) {
	if cap(b) > 0 {
		//lint:ignore SA6002 a slice header per put is fine
		bufPool.Put(b[:0])
	}
}

func (zw *zworker) run(j *zjob) zresult {
	if zw.f == nil {
		f, err := zw.codec.new()
		if err != nil {
			return zresult{err: fmt.Errorf("erofs: %s: %w", zw.codec.name, err)}
		}
		zw.f = f
	}
	in, err := zw.read(j)
	if err != nil {
		return zresult{err: err}
	}
	// A fresh estimate per job keeps the output independent of which
	// worker ran which jobs before.
	zw.f.reset()
	out := getBuf(len(in) + BlockSize)
	var exts []zext
	for pos := 0; pos < len(in); {
		rest := in[pos:]
		if len(rest) <= BlockSize {
			// The segment's last piece: it cannot gain, store it raw.
			out = appendRaw(out, rest)
			exts = append(exts, zext{length: uint32(len(rest)), raw: true})
			break
		}
		n, z, err := zw.f.fit(rest, BlockSize)
		if err != nil {
			return zresult{err: fmt.Errorf("erofs: %s: %s: %w", displayPath(j.ino.node), zw.codec.name, err)}
		}
		if n <= BlockSize {
			out = appendRaw(out, rest[:BlockSize])
			exts = append(exts, zext{length: BlockSize, raw: true})
			pos += BlockSize
			continue
		}
		// Zero padding first: the data ends at the end of its block.
		out = append(out, zeroBlock[:BlockSize-len(z)]...)
		out = append(out, z...)
		exts = append(exts, zext{length: uint32(n)})
		pos += n
	}
	if j.first && j.last && !gains(j.ino.size, uint32(len(out)/BlockSize)) {
		// Stored flat: the full blocks as they are, and the tail.
		full := len(in) / BlockSize * BlockSize
		tail := in[full:]
		if len(tail) > 0 && !tailInline(j.ino, len(tail)) {
			full, tail = len(in), nil
		}
		out = appendRaw(out[:0], in[:full])
		return zresult{data: out, flat: true, tail: append([]byte(nil), tail...)}
	}
	return zresult{data: out, exts: exts}
}

var zeroBlock [BlockSize]byte

// appendRaw appends p padded with zeros to whole blocks.
func appendRaw(out, p []byte) []byte {
	out = append(out, p...)
	if r := len(p) % BlockSize; r != 0 {
		out = append(out, zeroBlock[:BlockSize-r]...)
	}
	return out
}

// read returns the job's segment of its file, and fails if the file is
// shorter than the tree says or, for its last segment, longer.
func (zw *zworker) read(j *zjob) (_ []byte, err error) {
	n := j.ino.node
	rc, err := n.Open()
	if err != nil {
		return nil, fmt.Errorf("erofs: %s: %w", displayPath(n), err)
	}
	defer func() {
		if cerr := rc.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("erofs: %s: %w", displayPath(n), cerr)
		}
	}()
	if cap(zw.in) < int(j.len) {
		zw.in = make([]byte, j.len)
	}
	in := zw.in[:j.len]
	var r io.Reader
	if ra, ok := rc.(io.ReaderAt); ok {
		r = io.NewSectionReader(ra, j.off, j.len+1)
	} else if _, err = io.CopyN(io.Discard, rc, j.off); err == nil {
		r = rc
	}
	if err == nil {
		_, err = io.ReadFull(r, in)
	}
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = errChanged
		}
		return nil, fmt.Errorf("erofs: %s: reading %d bytes at %d: %w", displayPath(n), j.len, j.off, err)
	}
	if j.last {
		if err := atEOF(r, j.ino); err != nil {
			return nil, err
		}
	}
	return in, nil
}
