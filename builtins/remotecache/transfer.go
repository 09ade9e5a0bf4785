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

// OpenStream returns a reader of the Stream s while its chunks download in
// parallel into a spool file in TempDir: Read hands out only bytes of
// chunks already verified, in order, and at the end checks the whole
// stream. Close stops the downloads and removes the spool.
func (c *Client) OpenStream(ctx context.Context, s Stream, progress func(int64)) (io.ReadCloser, error) {
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	spool, err := os.CreateTemp(c.opts.TempDir, "sxb-remote-*")
	if err != nil {
		return nil, err
	}
	os.Remove(spool.Name()) // unnamed: nothing to clean after a crash
	ctx, cancel := context.WithCancel(ctx)
	r := &streamReader{s: s, f: spool, cancel: cancel, whole: sha256.New(), ready: make([]bool, len(s.Chunks)), c: c}
	r.cond = sync.NewCond(&r.mu)
	go func() {
		err := c.fetchChunks(ctx, s, spool, progress, func(i int) {
			r.mu.Lock()
			r.ready[i] = true
			r.cond.Broadcast()
			r.mu.Unlock()
		})
		r.mu.Lock()
		r.finished, r.err = true, err
		r.cond.Broadcast()
		r.mu.Unlock()
	}()
	return r, nil
}

type streamReader struct {
	c        *Client
	s        Stream
	f        *os.File
	cancel   context.CancelFunc
	mu       sync.Mutex
	cond     *sync.Cond
	ready    []bool
	finished bool
	err      error
	chunk    int   // chunk being read
	off      int64 // offset in the stream
	inChunk  int64 // bytes of chunk read so far
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
	ok, err := r.ready[r.chunk], r.err
	r.mu.Unlock()
	if !ok {
		if err == nil {
			err = fmt.Errorf("remote stream ended early")
		}
		return 0, err
	}
	ch := r.s.Chunks[r.chunk]
	if rest := ch.Size - r.inChunk; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := r.f.ReadAt(p, r.off)
	if n > 0 {
		r.whole.Write(p[:n])
		r.off += int64(n)
		r.inChunk += int64(n)
		if r.inChunk == ch.Size {
			r.chunk++
			r.inChunk = 0
		}
		return n, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return 0, err
}

func (r *streamReader) Close() error {
	r.cancel()
	r.mu.Lock()
	for !r.finished {
		r.cond.Wait()
	}
	r.mu.Unlock()
	return r.f.Close()
}
