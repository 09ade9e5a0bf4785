package squashfs

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/sxb-build/sxb/builtins/tree"
)

// blockUncompressed marks a data or fragment block stored without
// compression in block lists and the fragment table.
const blockUncompressed = 1 << 24

// noFrag is the fragment index of a file without a tail in a fragment block.
const noFrag = 0xffffffff

// fileData is where the content of a regular file ended up. Its fields are
// filled by the writer goroutine and read only after the data phase.
type fileData struct {
	size    int64
	start   uint64
	blocks  []uint32
	frag    uint32
	fragOff uint32
	sparse  int64
}

// fragEntry is one entry of the fragment table.
type fragEntry struct {
	start uint64
	size  uint32
}

// job is one block on its way from the reader through a compressing worker
// to the writer. Jobs reach the writer in the order they were created, so
// the image layout does not depend on the number of workers.
type job struct {
	in     *[]byte
	out    []byte
	outBuf *[]byte
	size   uint32 // on-disk size word; 0 with zero set means a sparse block
	zero   bool
	err    error
	done   chan struct{}

	file *fileData // data block idx of file, or
	idx  int
	frag *fragEntry // a fragment block
}

// dataWriter reads file contents in tree order, cuts them into blocks and
// tail fragments, and has them compressed in parallel and written in order.
type dataWriter struct {
	out        *output
	bs         int
	noFrags    bool
	newComp    func() (compressor, error)
	workers    int
	sizeCount  map[int64]int
	seen       map[[sha256.Size]byte]*fileData
	zeroBlock  []byte
	bufs       sync.Pool
	outs       sync.Pool
	work       chan *job
	ordered    chan *job
	slots      chan struct{}
	wg         sync.WaitGroup
	writerDone chan struct{}
	werr       error // set by the writer goroutine, read after writerDone
	werrMu     sync.Mutex

	frags   []*fragEntry
	fragBuf *[]byte
	fragCur *fragEntry
	hashBuf []byte
}

func newDataWriter(out *output, bs int, noFrags bool, newComp func() (compressor, error), workers int) *dataWriter {
	d := &dataWriter{
		out: out, bs: bs, noFrags: noFrags, newComp: newComp, workers: workers,
		sizeCount: map[int64]int{},
		seen:      map[[sha256.Size]byte]*fileData{},
		zeroBlock: make([]byte, bs),
	}
	d.bufs.New = func() any {
		b := make([]byte, bs+1)
		return &b
	}
	d.outs.New = func() any {
		b := make([]byte, 0, bs+bs/8+1024)
		return &b
	}
	return d
}

func (d *dataWriter) getBuf() *[]byte { return d.bufs.Get().(*[]byte) }

func (d *dataWriter) start() error {
	inflight := 4 * d.workers
	d.work = make(chan *job, inflight)
	d.ordered = make(chan *job, inflight)
	d.slots = make(chan struct{}, inflight)
	d.writerDone = make(chan struct{})
	comps := make([]compressor, d.workers)
	for i := range comps {
		c, err := d.newComp()
		if err != nil {
			return fmt.Errorf("setting up compressor: %w", err)
		}
		comps[i] = c
	}
	for i := 0; i < d.workers; i++ {
		d.wg.Add(1)
		go func(c compressor) {
			defer d.wg.Done()
			for j := range d.work {
				d.compress(c, j)
				close(j.done)
			}
		}(comps[i])
	}
	go d.writer()
	return nil
}

func (d *dataWriter) compress(c compressor, j *job) {
	in := *j.in
	j.outBuf = d.outs.Get().(*[]byte)
	out, err := c.compress((*j.outBuf)[:0], in)
	if err != nil {
		j.err = fmt.Errorf("compressing data: %w", err)
		return
	}
	if len(out) >= len(in) {
		j.out = append(out[:0], in...)
		j.size = uint32(len(in)) | blockUncompressed
		return
	}
	j.out = out
	j.size = uint32(len(out))
}

func (d *dataWriter) writerErr() error {
	d.werrMu.Lock()
	defer d.werrMu.Unlock()
	return d.werr
}

func (d *dataWriter) writer() {
	defer close(d.writerDone)
	for j := range d.ordered {
		<-j.done
		err := d.writerErr()
		if err == nil {
			err = j.err
		}
		if err == nil {
			pos := uint64(d.out.pos)
			switch {
			case j.frag != nil:
				j.frag.start, j.frag.size = pos, j.size
				err = d.out.write(j.out)
			default:
				if j.idx == 0 {
					j.file.start = pos
				}
				j.file.blocks[j.idx] = j.size
				if !j.zero {
					err = d.out.write(j.out)
				}
			}
		}
		if err != nil {
			d.werrMu.Lock()
			if d.werr == nil {
				d.werr = err
			}
			d.werrMu.Unlock()
		}
		if j.in != nil {
			d.bufs.Put(j.in)
		}
		if j.outBuf != nil {
			*j.outBuf = j.out[:0]
			d.outs.Put(j.outBuf)
		}
		<-d.slots
	}
}

// submit queues a block. in is owned by the pipeline afterwards.
func (d *dataWriter) submit(j *job) error {
	if err := d.writerErr(); err != nil {
		return err
	}
	j.done = make(chan struct{})
	d.slots <- struct{}{}
	d.ordered <- j
	if j.zero {
		close(j.done)
		return nil
	}
	d.work <- j
	return nil
}

// finish flushes the last fragment block and waits for everything to be
// written. It must be called exactly once after start, even after an error.
func (d *dataWriter) finish(failed bool) error {
	var err error
	if !failed && d.fragBuf != nil && len(*d.fragBuf) > 0 {
		err = d.flushFrag()
	}
	close(d.ordered)
	close(d.work)
	d.wg.Wait()
	<-d.writerDone
	if err != nil {
		return err
	}
	return d.writerErr()
}

func (d *dataWriter) flushFrag() error {
	j := &job{in: d.fragBuf, frag: d.fragCur}
	d.fragBuf, d.fragCur = nil, nil
	return d.submit(j)
}

// addFragment appends a tail to the current fragment block and returns its
// fragment index and offset.
func (d *dataWriter) addFragment(tail []byte) (uint32, uint32, error) {
	if d.fragBuf != nil && len(*d.fragBuf)+len(tail) > d.bs {
		if err := d.flushFrag(); err != nil {
			return 0, 0, err
		}
	}
	if d.fragBuf == nil {
		d.fragBuf = d.getBuf()
		*d.fragBuf = (*d.fragBuf)[:0]
		d.fragCur = &fragEntry{}
		d.frags = append(d.frags, d.fragCur)
	}
	off := len(*d.fragBuf)
	*d.fragBuf = append(*d.fragBuf, tail...)
	return uint32(len(d.frags) - 1), uint32(off), nil
}

var errSizeChanged = errors.New("file changed size while the image was written")

// readBlock reads exactly len(buf)-1 bytes when more follow, or the rest of
// the file when last is true (then the file must end there).
func readExact(r io.Reader, buf []byte, n int, last bool) error {
	if !last {
		_, err := io.ReadFull(r, buf[:n])
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			return errSizeChanged
		}
		return err
	}
	// Read one byte more than expected to see the end of the file.
	m, err := io.ReadFull(r, buf[:n+1])
	switch {
	case err == nil:
		return errSizeChanged // longer than recorded
	case err == io.ErrUnexpectedEOF || err == io.EOF:
		if m != n {
			return errSizeChanged
		}
		return nil
	}
	return err
}

// hashFile returns the SHA-256 of a file's content, checking its size.
func (d *dataWriter) hashFile(n *tree.Node) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	f, err := n.Open()
	if err != nil {
		return sum, err
	}
	defer f.Close()
	h := sha256.New()
	if d.hashBuf == nil {
		d.hashBuf = make([]byte, 1<<20)
	}
	m, err := io.CopyBuffer(h, f, d.hashBuf)
	if err != nil {
		return sum, err
	}
	if m != n.Size {
		return sum, errSizeChanged
	}
	h.Sum(sum[:0])
	return sum, nil
}

// addFile writes the content of a regular file and returns where it went.
// Files with identical content share their data (and the returned record).
func (d *dataWriter) addFile(n *tree.Node) (*fileData, error) {
	size := n.Size
	fd := &fileData{size: size, frag: noFrag}
	if size == 0 {
		return fd, nil
	}
	bs := int64(d.bs)
	nblocks := size / bs
	tail := int(size % bs)
	if d.noFrags && tail > 0 {
		nblocks++
		tail = 0
	}
	candidate := d.sizeCount[size] > 1
	var key [sha256.Size]byte
	if candidate && size > bs {
		var err error
		if key, err = d.hashFile(n); err != nil {
			return nil, err
		}
		if dup := d.seen[key]; dup != nil {
			return dup, nil
		}
	}
	f, err := n.Open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if size <= bs {
		// Whole file in one buffer: hash it here for deduplication.
		buf := d.getBuf()
		if err := readExact(f, *buf, int(size), true); err != nil {
			d.bufs.Put(buf)
			return nil, err
		}
		*buf = (*buf)[:size]
		if candidate {
			key = sha256.Sum256(*buf)
			if dup := d.seen[key]; dup != nil {
				d.bufs.Put(buf)
				return dup, nil
			}
			d.seen[key] = fd
		}
		if nblocks == 0 {
			fd.frag, fd.fragOff, err = d.addFragment(*buf)
			d.bufs.Put(buf)
			return fd, err
		}
		fd.blocks = make([]uint32, 1)
		return fd, d.submit(&job{in: buf, file: fd, idx: 0})
	}
	fd.blocks = make([]uint32, nblocks)
	holes := newHoleFinder(f, size, bs)
	for i := int64(0); i < nblocks; i++ {
		n := d.bs
		last := i == nblocks-1 && tail == 0
		if last {
			n = int(size - i*bs)
		}
		if !last && holes.hole(i*bs) {
			// A block inside a hole of the host file: sparse without
			// reading it, exactly as an all-zero block read would be.
			fd.sparse += bs
			if err := d.submit(&job{file: fd, idx: int(i), zero: true}); err != nil {
				return nil, err
			}
			continue
		}
		buf := d.getBuf()
		if err := readExact(f, *buf, n, last); err != nil {
			d.bufs.Put(buf)
			return nil, err
		}
		*buf = (*buf)[:n]
		j := &job{in: buf, file: fd, idx: int(i)}
		if n == d.bs && bytes.Equal(*buf, d.zeroBlock) {
			j.zero = true
			fd.sparse += bs
		}
		if err := d.submit(j); err != nil {
			return nil, err
		}
	}
	if tail > 0 {
		buf := d.getBuf()
		defer d.bufs.Put(buf)
		if err := readExact(f, *buf, tail, true); err != nil {
			return nil, err
		}
		if fd.frag, fd.fragOff, err = d.addFragment((*buf)[:tail]); err != nil {
			return nil, err
		}
	}
	if candidate {
		d.seen[key] = fd
	}
	return fd, nil
}

// holeFinder asks the host file system where the holes of a large sparse
// file are (SEEK_DATA), so that blocks inside them need not be read.
type holeFinder struct {
	f        *os.File
	bs       int64
	nextData int64 // no data before this offset (from the last query)
}

func newHoleFinder(r io.Reader, size, bs int64) *holeFinder {
	f, ok := r.(*os.File)
	if !ok || size < 8*bs {
		return nil
	}
	return &holeFinder{f: f, bs: bs}
}

// hole reports whether the block at off lies entirely in a hole. It leaves
// the file offset at the end of the block when it does, and at off when it
// does not.
func (h *holeFinder) hole(off int64) bool {
	if h == nil {
		return false
	}
	if off >= h.nextData {
		d, err := unix.Seek(int(h.f.Fd()), off, unix.SEEK_DATA)
		switch {
		case err == unix.ENXIO: // only a hole up to the end
			d = math.MaxInt64
		case err != nil:
			h.f.Seek(off, io.SeekStart)
			h.f = nil
			h.nextData = math.MaxInt64
			return false
		}
		h.nextData = d
		if _, err := h.f.Seek(off, io.SeekStart); err != nil {
			h.nextData = 0
			return false
		}
	}
	if h.f == nil || off+h.bs > h.nextData {
		return false
	}
	if _, err := h.f.Seek(off+h.bs, io.SeekStart); err != nil {
		return false
	}
	return true
}
