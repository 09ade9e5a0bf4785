package remotecache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sync/errgroup"
)

// Stream is a byte stream (a file, or a directory's archive) as it lies in
// the CAS: its length and SHA-256 as a whole, and the blobs it is cut into,
// in order. Chunks let one large output move over several connections at
// once, and let a retry or a concurrent upload from another machine share
// every chunk that is already there.
type Stream struct {
	Digest
	Chunks []Digest `json:"chunks"`
}

// check verifies the form of s: valid digests whose sizes add up.
func (s Stream) check() error {
	if !s.Digest.Valid() {
		return fmt.Errorf("malformed stream digest %v", s.Digest)
	}
	var n int64
	for _, c := range s.Chunks {
		if !c.Valid() {
			return fmt.Errorf("malformed chunk digest %v", c)
		}
		n += c.Size
	}
	if n != s.Size || len(s.Chunks) == 0 && s.Size != 0 {
		return fmt.Errorf("chunks add up to %d bytes, the stream has %d", n, s.Size)
	}
	return nil
}

// UploadFile uploads the file at path as a Stream: it hashes the file
// once, cut into ChunkSize pieces, then sends the chunks the server does
// not have yet (every chunk with force, to repair damaged blobs), Parallel
// at a time, each read straight from the file. progress, when not nil,
// receives the bytes of every chunk sent or found.
func (c *Client) UploadFile(ctx context.Context, path string, force bool, progress func(int64)) (Stream, error) {
	f, err := os.Open(path)
	if err != nil {
		return Stream{}, err
	}
	defer f.Close()
	s := Stream{}
	whole := sha256.New()
	buf := make([]byte, 1<<20)
	for {
		h := sha256.New()
		n, err := io.CopyBuffer(io.MultiWriter(h, whole), io.LimitReader(f, c.opts.ChunkSize), buf)
		if err != nil {
			return Stream{}, fmt.Errorf("reading %s: %w", path, err)
		}
		if n == 0 && len(s.Chunks) > 0 {
			break
		}
		s.Chunks = append(s.Chunks, Digest{Hash: hex.EncodeToString(h.Sum(nil)), Size: n})
		s.Size += n
		if n < c.opts.ChunkSize {
			break
		}
	}
	s.Hash = hex.EncodeToString(whole.Sum(nil))
	if s.Size == 0 {
		s.Chunks = nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opts.Parallel)
	var off int64
	seen := map[string]bool{}
	for _, ch := range s.Chunks {
		ch, at := ch, off
		off += ch.Size
		if seen[ch.Hash] {
			continue
		}
		seen[ch.Hash] = true
		g.Go(func() error {
			has, err := false, error(nil)
			if !force {
				if has, err = c.Has(gctx, ch); err != nil {
					return err
				}
			}
			if !has {
				err = c.Put(gctx, ch, func() (io.ReadCloser, error) {
					return io.NopCloser(io.NewSectionReader(f, at, ch.Size)), nil
				})
			}
			if err == nil && progress != nil {
				progress(ch.Size)
			}
			return err
		})
	}
	return s, g.Wait()
}

// DownloadFile writes the Stream s to a new file at path (mode 0644),
// fetching its chunks Parallel at a time, each verified, and checks the
// whole. On error the file is removed.
func (c *Client) DownloadFile(ctx context.Context, s Stream, path string, progress func(int64)) (err error) {
	if err := s.check(); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	if err := c.fetchChunks(ctx, s, f, progress, nil); err != nil {
		return err
	}
	return c.checkWhole(s, io.NewSectionReader(f, 0, s.Size))
}

// checkWhole re-reads what was written and compares it with the stream's
// digest: the chunks were verified one by one, this proves the chunk list
// belongs to the stream.
func (c *Client) checkWhole(s Stream, r io.Reader) error {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != s.Size || got != s.Hash {
		return fmt.Errorf("%w: stream %v: its chunks make %d bytes with sha256 %.12s…", ErrCorrupt, s.Digest, n, got)
	}
	return nil
}

// fetchChunks downloads the chunks of s into w at their offsets, Parallel
// at a time; done, when not nil, is called with each chunk's index once it
// is written and verified.
func (c *Client) fetchChunks(ctx context.Context, s Stream, w io.WriterAt, progress func(int64), done func(int)) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opts.Parallel)
	var off int64
	for i, ch := range s.Chunks {
		i, ch, at := i, ch, off
		off += ch.Size
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if err := c.Get(gctx, ch, w, at); err != nil {
				return err
			}
			if progress != nil {
				progress(ch.Size)
			}
			if done != nil {
				done(i)
			}
			return nil
		})
	}
	return g.Wait()
}

// streamMemory bounds the chunks OpenStream holds in memory at once.
const streamMemory = 64 << 20

// OpenStream returns a reader of the Stream s while its next chunks
// download in parallel into memory (at most streamMemory bytes, and no
// more than Parallel chunks, ahead of the reader): Read hands out only
// bytes of chunks already verified, in order, and at the end checks the
// whole stream. Nothing touches the disk. Close stops the downloads.
func (c *Client) OpenStream(ctx context.Context, s Stream, progress func(int64)) (io.ReadCloser, error) {
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	window := int(streamMemory / c.opts.ChunkSize)
	if window > c.opts.Parallel {
		window = c.opts.Parallel
	}
	if window < 1 {
		window = 1
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &streamReader{s: s, cancel: cancel, whole: sha256.New(), bufs: make([][]byte, len(s.Chunks)),
		ready: make([]bool, len(s.Chunks)), slots: make(chan struct{}, window)}
	r.cond = sync.NewCond(&r.mu)
	go func() {
		g, gctx := errgroup.WithContext(ctx)
	chunks:
		for i, ch := range s.Chunks {
			select {
			case r.slots <- struct{}{}: // freed when the reader is done with a chunk
			case <-gctx.Done():
				break chunks
			}
			g.Go(func() error {
				buf := &memWriterAt{b: make([]byte, 0, ch.Size)}
				if err := c.Get(gctx, ch, buf, 0); err != nil {
					return err
				}
				if progress != nil {
					progress(ch.Size)
				}
				r.mu.Lock()
				r.bufs[i], r.ready[i] = buf.b, true
				r.cond.Broadcast()
				r.mu.Unlock()
				return nil
			})
		}
		err := g.Wait()
		r.mu.Lock()
		r.finished, r.err = true, err
		r.cond.Broadcast()
		r.mu.Unlock()
	}()
	return r, nil
}

type streamReader struct {
	s        Stream
	cancel   context.CancelFunc
	slots    chan struct{}
	mu       sync.Mutex
	cond     *sync.Cond
	bufs     [][]byte
	ready    []bool
	finished bool
	err      error
	chunk    int   // chunk being read
	off      int64 // offset in the stream
	inChunk  int   // bytes of chunk read so far
	whole    interface {
		io.Writer
		Sum([]byte) []byte
	}
}

func (r *streamReader) Read(p []byte) (int, error) {
	if r.chunk >= len(r.s.Chunks) {
		if got := hex.EncodeToString(r.whole.Sum(nil)); got != r.s.Hash || r.off != r.s.Size {
			return 0, fmt.Errorf("%w: stream %v: its chunks make sha256 %.12s…", ErrCorrupt, r.s.Digest, got)
		}
		return 0, io.EOF
	}
	r.mu.Lock()
	for !r.ready[r.chunk] && !r.finished {
		r.cond.Wait()
	}
	ok, err, buf := r.ready[r.chunk], r.err, r.bufs[r.chunk]
	r.mu.Unlock()
	if !ok {
		if err == nil {
			err = fmt.Errorf("remote stream ended early")
		}
		return 0, err
	}
	n := copy(p, buf[r.inChunk:])
	r.whole.Write(p[:n])
	r.off += int64(n)
	r.inChunk += n
	if r.inChunk == len(buf) {
		r.mu.Lock()
		r.bufs[r.chunk] = nil
		r.mu.Unlock()
		r.chunk++
		r.inChunk = 0
		<-r.slots
	}
	return n, nil
}

func (r *streamReader) Close() error {
	r.cancel()
	r.mu.Lock()
	for !r.finished {
		r.cond.Wait()
	}
	r.mu.Unlock()
	return nil
}
