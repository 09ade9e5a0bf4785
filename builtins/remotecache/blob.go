package remotecache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"

	"github.com/klauspost/compress/zstd"
)

// Digest names a blob: the lower-case hex SHA-256 of its content and its
// length, as REAPI digests do.
type Digest struct {
	Hash string `json:"sha256"`
	Size int64  `json:"size"`
}

// String is "sha256:<hash>/<size>".
func (d Digest) String() string { return fmt.Sprintf("sha256:%s/%d", d.Hash, d.Size) }

// Valid reports whether d has a well-formed hash and a non-negative size.
func (d Digest) Valid() bool { return ValidKey(d.Hash) && d.Size >= 0 }

// DigestOf returns the digest of b.
func DigestOf(b []byte) Digest {
	s := sha256.Sum256(b)
	return Digest{Hash: hex.EncodeToString(s[:]), Size: int64(len(b))}
}

// ValidKey reports whether s is 64 lower-case hex digits, the form of CAS
// and AC keys.
func ValidKey(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Has reports whether the CAS holds d. A blob seen corrupt in this run is
// reported missing, so that it is uploaded again.
func (c *Client) Has(ctx context.Context, d Digest) (bool, error) {
	if _, bad := c.bad.Load(d.Hash); bad {
		return false, nil
	}
	err := c.do(ctx, request{method: http.MethodHead, path: "/cas/" + d.Hash})
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Put uploads a blob of digest d; open returns its content afresh for
// every attempt. The content is streamed, zstd-compressed when uploads are
// (see the package documentation).
func (c *Client) Put(ctx context.Context, d Digest, open func() (io.ReadCloser, error)) error {
	if !d.Valid() {
		return fmt.Errorf("uploading: malformed digest %v", d)
	}
	r := request{method: http.MethodPut, path: "/cas/" + d.Hash, body: open, size: d.Size,
		hdr: http.Header{"Content-Type": {"application/octet-stream"}}}
	if c.compressUploads() && d.Size > 0 {
		r.size = -1
		r.hdr.Set("Content-Encoding", "zstd")
		r.hdr.Set("X-Digest-SizeBytes", itoa(d.Size))
		r.body = func() (io.ReadCloser, error) { return zstdPipe(open) }
	}
	if err := c.do(ctx, r); err != nil {
		return err
	}
	c.bad.Delete(d.Hash)
	return nil
}

// zstdPipe compresses what open returns as it is read.
func zstdPipe(open func() (io.ReadCloser, error)) (io.ReadCloser, error) {
	src, err := open()
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		zw, err := zstd.NewWriter(pw, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		if err == nil {
			_, err = io.Copy(zw, src)
			if cerr := zw.Close(); err == nil {
				err = cerr
			}
		}
		src.Close()
		pw.CloseWithError(err)
	}()
	return pr, nil
}

// PutBytes uploads b as a blob and returns its digest.
func (c *Client) PutBytes(ctx context.Context, b []byte) (Digest, error) {
	d := DigestOf(b)
	return d, c.Put(ctx, d, func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}

// Get downloads the blob d into w at offset off, verifying its length and
// SHA-256 as it streams. On ErrCorrupt the bytes written are garbage and
// the blob is remembered as bad (Has reports it missing from then on).
func (c *Client) Get(ctx context.Context, d Digest, w io.WriterAt, off int64) error {
	if !d.Valid() {
		return fmt.Errorf("downloading: malformed digest %v", d)
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/cas/" + d.Hash, hdr: c.acceptHeader(),
		handle: func(resp *http.Response, wd *watchdog) error {
			body, err := decodedBody(resp, wd.reader(resp.Body, &c.stats.Downloaded))
			if err != nil {
				return err
			}
			defer body.Close()
			h := sha256.New()
			n, err := io.Copy(io.MultiWriter(io.NewOffsetWriter(w, off), h), io.LimitReader(body, d.Size+1))
			if err != nil {
				if wd.fired() {
					return err
				}
				// A connection cut short: another attempt may succeed.
				return retryable{fmt.Errorf("%w: reading %v: %v", ErrUnavailable, d, err)}
			}
			return c.check(d, n, h)
		}})
	return err
}

func (c *Client) check(d Digest, n int64, h hash.Hash) error {
	if got := hex.EncodeToString(h.Sum(nil)); n != d.Size || got != d.Hash {
		c.bad.Store(d.Hash, true)
		return fmt.Errorf("%w: %v: got %d bytes with sha256 %.12s…", ErrCorrupt, d, n, got)
	}
	return nil
}

// GetBytes downloads a small blob (at most max bytes) into memory,
// verified.
func (c *Client) GetBytes(ctx context.Context, d Digest, max int64) ([]byte, error) {
	if d.Size > max {
		return nil, fmt.Errorf("remote blob %v is larger than the %d bytes allowed", d, max)
	}
	buf := &memWriterAt{b: make([]byte, 0, d.Size)}
	if err := c.Get(ctx, d, buf, 0); err != nil {
		return nil, err
	}
	return buf.b, nil
}

// memWriterAt is a growing in-memory io.WriterAt.
type memWriterAt struct{ b []byte }

func (m *memWriterAt) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(m.b) {
		m.b = append(m.b, make([]byte, end-len(m.b))...)
	}
	copy(m.b[off:], p)
	return len(p), nil
}

// maxActionResult bounds the size of an action result read from the cache.
const maxActionResult = 4 << 20

// GetAC returns the action cache entry stored under key, or nil when
// there is none.
func (c *Client) GetAC(ctx context.Context, key string) ([]byte, error) {
	if !ValidKey(key) {
		return nil, fmt.Errorf("malformed action key %q", key)
	}
	var b []byte
	err := c.do(ctx, request{method: http.MethodGet, path: "/ac/" + key, hdr: c.acceptHeader(),
		handle: func(resp *http.Response, wd *watchdog) error {
			body, err := decodedBody(resp, wd.reader(resp.Body, &c.stats.Downloaded))
			if err != nil {
				return err
			}
			defer body.Close()
			if b, err = io.ReadAll(io.LimitReader(body, maxActionResult+1)); err != nil {
				return retryable{fmt.Errorf("%w: reading action result: %v", ErrUnavailable, err)}
			}
			if len(b) > maxActionResult {
				return fmt.Errorf("%w: action result %.12s… is larger than %d bytes", ErrCorrupt, key, maxActionResult)
			}
			return nil
		}})
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return b, err
}

// PutAC stores b under key in the action cache.
func (c *Client) PutAC(ctx context.Context, key string, b []byte) error {
	if !ValidKey(key) {
		return fmt.Errorf("malformed action key %q", key)
	}
	return c.do(ctx, request{method: http.MethodPut, path: "/ac/" + key, size: int64(len(b)),
		body: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		hdr:  http.Header{"Content-Type": {"application/octet-stream"}}})
}

// GetActionResult returns the action result stored under key, or nil
// when there is none.
func (c *Client) GetActionResult(ctx context.Context, key string) (*ActionResult, error) {
	b, err := c.GetAC(ctx, key)
	if err != nil || b == nil {
		return nil, err
	}
	ar, err := ParseActionResult(b)
	if err != nil {
		return nil, fmt.Errorf("%w: action result %.12s…: %v", ErrCorrupt, key, err)
	}
	return ar, nil
}

// PutActionResult stores ar under key. Every blob it names must be in the
// CAS already: servers that validate action results refuse it otherwise.
func (c *Client) PutActionResult(ctx context.Context, key string, ar *ActionResult) error {
	return c.PutAC(ctx, key, ar.Marshal())
}
