// Package fetch downloads files over http(s):// and file:// into a
// content-addressed cache shared by every build on the machine.
//
// A cached file is named by the SHA-256 of its content:
//
//	<CacheDir>/sha256/<first two hex digits>/<64 hex digits>
//
// so a second build that asks for the same content downloads nothing,
// whatever URL it names. Files are written to a temporary file in the same
// directory, checked against the expected size and SHA-256, and renamed into
// place; rename is atomic, so two processes filling the same cache at once
// at worst both download a file and one rename wins with identical bytes. A
// file in the cache is never modified after the rename, and a reader never
// sees a partial file.
//
// Downloads run in parallel (Fetcher.Parallel), failed attempts are retried
// with back-off (network errors, HTTP errors other than 404/410, short
// reads and checksum mismatches; a 404 is final and reported as
// ErrNotFound). Files of 4 MiB and more are fetched over http(s) as four
// parallel byte ranges when the server honours Range (one connection to a
// CDN is often much slower than the link).
//
// Typical use:
//
//	f := &fetch.Fetcher{CacheDir: dir}
//	paths, err := f.FetchAll(ctx, []fetch.Item{{URL: u, Size: n, SHA256: h}})
package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sxb-build/sxb/internal/atomicfile"
)

// ErrNotFound is returned (wrapped) when the server says the file does not
// exist (HTTP 404/410, or a missing file:// path). It is not retried.
var ErrNotFound = errors.New("not found")

// ErrChecksum is returned (wrapped) when downloaded content does not match
// the expected size or SHA-256.
var ErrChecksum = errors.New("checksum mismatch")

// Item is one file to fetch.
type Item struct {
	// URL is an http://, https:// or file:// URL.
	URL string
	// Size is the expected length in bytes, or -1 when unknown.
	Size int64
	// SHA256 is the expected content hash in lower-case hex. It is
	// required: it is the cache key and the integrity check.
	SHA256 string
}

// Progress reports the state of a FetchAll call. Bytes counts bytes
// received so far over all items (cache hits count in full), Total is the
// sum of the known sizes; Done and Count are finished and total items.
type Progress struct {
	Done, Count  int
	Bytes, Total int64
	// Cached counts the items that were already in the cache.
	Cached int
}

// DefaultCacheDir is where sxb caches downloads, parsed indexes and build
// results unless told otherwise: $XDG_CACHE_HOME/sxb, else ~/.cache/sxb.
func DefaultCacheDir() string {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "sxb")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".cache", "sxb")
	}
	return filepath.Join(os.TempDir(), "sxb-cache")
}

// Fetcher downloads Items into a cache directory. The zero value is not
// usable: CacheDir must be set. A Fetcher is safe for concurrent use.
type Fetcher struct {
	// CacheDir is the root of the content-addressed cache. It is created
	// when missing.
	CacheDir string
	// Parallel bounds simultaneous downloads in FetchAll; 0 means 8.
	Parallel int
	// Retries is how many times a failed download is tried again; 0 means 3,
	// a negative value disables retries.
	Retries int
	// Client is the HTTP client; nil means a client with sane timeouts.
	Client *http.Client
	// Progress, when set, is called (from any goroutine, serialized) as
	// FetchAll makes progress.
	Progress func(Progress)
	// UserAgent is sent with HTTP requests; "" means "sxb".
	UserAgent string
}

var defaultClient = &http.Client{
	Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ForceAttemptHTTP2:     true,
	},
}

func (f *Fetcher) client() *http.Client {
	if f.Client != nil {
		return f.Client
	}
	return defaultClient
}

func (f *Fetcher) retries() int {
	switch {
	case f.Retries < 0:
		return 0
	case f.Retries == 0:
		return 3
	}
	return f.Retries
}

// CachePath returns where content with the given SHA-256 lives in the cache
// (whether or not it is there yet).
func (f *Fetcher) CachePath(sha string) string {
	sha = strings.ToLower(sha)
	if len(sha) < 2 {
		return filepath.Join(f.CacheDir, "sha256", "_", sha)
	}
	return filepath.Join(f.CacheDir, "sha256", sha[:2], sha)
}

// Cached reports the cache path of it when the cache already holds it.
func (f *Fetcher) Cached(it Item) (string, bool) {
	if !validSHA(it.SHA256) {
		return "", false
	}
	p := f.CachePath(it.SHA256)
	// Lstat: a symlink planted in the cache is not content sxb fetched
	// (it would make sxb read any host file); it is fetched again.
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() || (it.Size >= 0 && fi.Size() != it.Size) {
		return "", false
	}
	return p, true
}

func validSHA(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// Fetch returns the cache path of it, downloading it first when the cache
// does not hold it. The content at the returned path has been checked.
func (f *Fetcher) Fetch(ctx context.Context, it Item) (string, error) {
	return f.fetch(ctx, it, nil)
}

// FetchCounting is Fetch calling count with the number of bytes received
// as they arrive (the full size at once for a cache hit; a negative count
// takes back the bytes of a failed attempt). count may be called from
// several goroutines for one large file.
func (f *Fetcher) FetchCounting(ctx context.Context, it Item, count func(int64)) (string, error) {
	return f.fetch(ctx, it, count)
}

func (f *Fetcher) fetch(ctx context.Context, it Item, count func(int64)) (string, error) {
	if f.CacheDir == "" {
		return "", fmt.Errorf("fetching %s: no cache directory set", it.URL)
	}
	it.SHA256 = strings.ToLower(it.SHA256)
	if !validSHA(it.SHA256) {
		return "", fmt.Errorf("fetching %s: invalid or missing SHA256 %q", it.URL, it.SHA256)
	}
	if p, ok := f.Cached(it); ok {
		// A cache hit is hashed again before it is used: a file damaged
		// or altered after it was fetched is fetched afresh, never
		// installed.
		if ok, err := hasSHA256(p, it.SHA256); err == nil && ok {
			if count != nil {
				count(it.Size)
			}
			return p, nil
		}
		os.Remove(p)
	}
	dst := f.CachePath(it.SHA256)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", fmt.Errorf("fetching %s: %w", it.URL, err)
	}
	var last error
	for attempt := 0; attempt <= f.retries(); attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(time.Duration(attempt*attempt) * 500 * time.Millisecond):
			}
		}
		var got int64
		err := f.download(ctx, it, dst, func(n int64) {
			got += n
			if count != nil {
				count(n)
			}
		})
		if err == nil {
			return dst, nil
		}
		if count != nil && got > 0 {
			count(-got)
		}
		last = err
		if errors.Is(err, ErrNotFound) || ctx.Err() != nil {
			break
		}
	}
	return "", last
}

// Stream is Fetch that also hands the content to consume as it arrives,
// so that reading it (decompressing, parsing) overlaps the download rather
// than following it. consume runs on its own goroutine and sees the bytes
// before they are verified: its result counts only when Stream returns no
// error, and then the content is checked and in the cache at the returned
// path. A cache hit is read from the cache. A download is tried once, in
// one piece (no ranges, no retries): when it fails, Stream returns the
// error and the caller falls back to Fetch. An error of consume is
// returned after the download completed (the file is cached all the same).
func (f *Fetcher) Stream(ctx context.Context, it Item, consume func(io.Reader) error) (string, error) {
	if f.CacheDir == "" {
		return "", fmt.Errorf("fetching %s: no cache directory set", it.URL)
	}
	if _, ok := f.Cached(it); ok {
		// Fetch checks the hit's digest (and fetches a damaged one again).
		p, err := f.Fetch(ctx, it)
		if err != nil {
			return "", err
		}
		fh, err := os.Open(p)
		if err != nil {
			return "", fmt.Errorf("fetching %s: %w", it.URL, err)
		}
		defer fh.Close()
		return p, consume(fh)
	}
	it.SHA256 = strings.ToLower(it.SHA256)
	if !validSHA(it.SHA256) {
		return "", fmt.Errorf("fetching %s: invalid or missing SHA256 %q", it.URL, it.SHA256)
	}
	dst := f.CachePath(it.SHA256)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", fmt.Errorf("fetching %s: %w", it.URL, err)
	}
	body, err := f.open(ctx, it.URL)
	if err != nil {
		return "", err
	}
	defer body.Close()
	tmp, err := atomicfile.Create(dst, 0o644)
	if err != nil {
		return "", fmt.Errorf("fetching %s: %w", it.URL, err)
	}
	defer tmp.Abort()
	pr, pw := io.Pipe()
	consumed := make(chan error, 1)
	go func() {
		err := consume(pr)
		// Whatever consume left unread is drained, so the download
		// never blocks on it.
		io.Copy(io.Discard, pr)
		consumed <- err
	}()
	h := sha256.New()
	var r io.Reader = body
	if it.Size >= 0 {
		r = io.LimitReader(body, it.Size+1)
	}
	n, err := io.Copy(io.MultiWriter(tmp, h, pw), r)
	if err != nil {
		err = fmt.Errorf("fetching %s: %w", it.URL, err)
	} else {
		err = verify(it, n, h)
	}
	pw.CloseWithError(err)
	cerr := <-consumed
	if err != nil {
		return "", err
	}
	if err := tmp.Commit(); err != nil {
		return "", fmt.Errorf("fetching %s: %w", it.URL, err)
	}
	return dst, cerr
}

// rangedMin is the size from which an http(s) file of known size is
// fetched as several parallel byte ranges: one connection to a CDN is often
// much slower than the link.
const rangedMin = 4 << 20

// rangedParts is how many ranges a large file is split into.
const rangedParts = 4

// download writes it to a temporary file beside dst, verifies it and
// renames it to dst.
func (f *Fetcher) download(ctx context.Context, it Item, dst string, count func(int64)) error {
	if it.Size >= rangedMin && (strings.HasPrefix(it.URL, "http://") || strings.HasPrefix(it.URL, "https://")) {
		err := f.downloadRanged(ctx, it, dst, count)
		if !errors.Is(err, errNoRanges) {
			return err
		}
	}
	body, err := f.open(ctx, it.URL)
	if err != nil {
		return err
	}
	defer body.Close()
	tmp, err := atomicfile.Create(dst, 0o644)
	if err != nil {
		return fmt.Errorf("fetching %s: %w", it.URL, err)
	}
	defer tmp.Abort()
	h := sha256.New()
	var r io.Reader = body
	if it.Size >= 0 {
		// One byte more than expected exposes an oversized answer.
		r = io.LimitReader(body, it.Size+1)
	}
	n, err := io.Copy(io.MultiWriter(tmp, h, countWriter(count)), r)
	if err != nil {
		return fmt.Errorf("fetching %s: %w", it.URL, err)
	}
	if err := verify(it, n, h); err != nil {
		return err
	}
	if err := tmp.Commit(); err != nil {
		return fmt.Errorf("fetching %s: %w", it.URL, err)
	}
	return nil
}

// verify checks the size n and the digest in h of the download of it.
func verify(it Item, n int64, h hash.Hash) error {
	if it.Size >= 0 && n != it.Size {
		return fmt.Errorf("fetching %s: got %d bytes, want %d: %w", it.URL, n, it.Size, ErrChecksum)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != it.SHA256 {
		return fmt.Errorf("fetching %s: SHA256 is %s, want %s: %w", it.URL, sum, it.SHA256, ErrChecksum)
	}
	return nil
}

var errNoRanges = errors.New("server does not serve byte ranges")

// downloadRanged fetches it as rangedParts parallel byte ranges into a
// temporary file, then verifies and renames it like download. It returns
// errNoRanges (before writing anything) when the server ignores Range.
func (f *Fetcher) downloadRanged(ctx context.Context, it Item, dst string, count func(int64)) error {
	tmp, err := atomicfile.Create(dst, 0o644)
	if err != nil {
		return fmt.Errorf("fetching %s: %w", it.URL, err)
	}
	defer tmp.Abort()
	part := (it.Size + rangedParts - 1) / rangedParts
	errs := make([]error, rangedParts)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < rangedParts; i++ {
		start := int64(i) * part
		end := min(start+part, it.Size) - 1
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = f.fetchRange(ctx, it.URL, tmp, start, end, func(n int64) {
				mu.Lock()
				count(n)
				mu.Unlock()
			})
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("fetching %s: %w", it.URL, err)
	}
	h := sha256.New()
	n, err := io.Copy(h, tmp)
	if err != nil {
		return fmt.Errorf("fetching %s: %w", it.URL, err)
	}
	if err := verify(it, n, h); err != nil {
		return err
	}
	if err := tmp.Commit(); err != nil {
		return fmt.Errorf("fetching %s: %w", it.URL, err)
	}
	return nil
}

// fetchRange writes bytes start..end (inclusive) of rawURL at their offset
// in w.
func (f *Fetcher) fetchRange(ctx context.Context, rawURL string, w io.WriterAt, start, end int64, count func(int64)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fmt.Errorf("fetching %s: %w", rawURL, err)
	}
	ua := f.UserAgent
	if ua == "" {
		ua = "sxb"
	}
	req.Header.Set("User-Agent", ua)
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", start, end))
	resp, err := f.client().Do(req)
	if err != nil {
		return fmt.Errorf("fetching %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
	case http.StatusOK:
		return errNoRanges
	case http.StatusNotFound, http.StatusGone:
		return fmt.Errorf("fetching %s: HTTP %s: %w", rawURL, resp.Status, ErrNotFound)
	default:
		return fmt.Errorf("fetching %s: HTTP %s", rawURL, resp.Status)
	}
	want := end - start + 1
	buf := make([]byte, 256<<10)
	off := start
	for off <= end {
		n, err := resp.Body.Read(buf[:min(int64(len(buf)), end-off+1)])
		if n > 0 {
			if _, werr := w.WriteAt(buf[:n], off); werr != nil {
				return fmt.Errorf("fetching %s: %w", rawURL, werr)
			}
			off += int64(n)
			count(int64(n))
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("fetching %s: %w", rawURL, err)
		}
	}
	if off-start != want {
		return fmt.Errorf("fetching %s: range %d-%d: got %d bytes: %w", rawURL, start, end, off-start, ErrChecksum)
	}
	return nil
}

type countWriter func(int64)

// Write counts p and discards it.
func (c countWriter) Write(p []byte) (int, error) {
	if c != nil {
		c(int64(len(p)))
	}
	return len(p), nil
}

// open starts reading rawURL.
func (f *Fetcher) open(ctx context.Context, rawURL string) (io.ReadCloser, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", rawURL, err)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("fetching %s: file URL with a host", rawURL)
		}
		fh, err := os.Open(u.Path)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("fetching %s: %w", rawURL, ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("fetching %s: %w", rawURL, err)
		}
		return fh, nil
	case "http", "https":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
		if err != nil {
			return nil, fmt.Errorf("fetching %s: %w", rawURL, err)
		}
		ua := f.UserAgent
		if ua == "" {
			ua = "sxb"
		}
		req.Header.Set("User-Agent", ua)
		resp, err := f.client().Do(req)
		if err != nil {
			return nil, fmt.Errorf("fetching %s: %w", rawURL, err)
		}
		switch {
		case resp.StatusCode == http.StatusOK:
			return resp.Body, nil
		case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
			resp.Body.Close()
			return nil, fmt.Errorf("fetching %s: HTTP %s: %w", rawURL, resp.Status, ErrNotFound)
		default:
			resp.Body.Close()
			return nil, fmt.Errorf("fetching %s: HTTP %s", rawURL, resp.Status)
		}
	}
	return nil, fmt.Errorf("fetching %s: unsupported URL scheme %q", rawURL, u.Scheme)
}

// Get downloads a small file whose hash is not known in advance (for
// example a signed Release file), with retries, and returns its content. It
// does not use the cache. Files larger than limit bytes are refused (0
// means 64 MiB).
func (f *Fetcher) Get(ctx context.Context, rawURL string, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = 64 << 20
	}
	var last error
	for attempt := 0; attempt <= f.retries(); attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(attempt*attempt) * 500 * time.Millisecond):
			}
		}
		body, err := f.open(ctx, rawURL)
		if err == nil {
			var b []byte
			b, err = io.ReadAll(io.LimitReader(body, limit+1))
			body.Close()
			if err == nil && int64(len(b)) > limit {
				return nil, fmt.Errorf("fetching %s: larger than %d bytes", rawURL, limit)
			}
			if err == nil {
				return b, nil
			}
			err = fmt.Errorf("fetching %s: %w", rawURL, err)
		}
		last = err
		if errors.Is(err, ErrNotFound) || ctx.Err() != nil {
			break
		}
	}
	return nil, last
}

// FetchAll fetches every item, Parallel at a time, and returns the cache
// paths in the order of items. Items with the same SHA256 are fetched once.
// On failure it returns the error of the first failing item (in item
// order) after the running downloads stopped.
func (f *Fetcher) FetchAll(ctx context.Context, items []Item) ([]string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	par := f.Parallel
	if par <= 0 {
		par = 8
	}
	// Deduplicate by content; fetch the largest first so the tail of the
	// download is not one big file on a single connection.
	first := map[string]int{}
	var order []int
	var p Progress
	for i, it := range items {
		key := strings.ToLower(it.SHA256)
		if _, ok := first[key]; ok {
			continue
		}
		first[key] = i
		order = append(order, i)
		if it.Size > 0 {
			p.Total += it.Size
		}
	}
	p.Count = len(order)
	sort.SliceStable(order, func(a, b int) bool { return items[order[a]].Size > items[order[b]].Size })

	var mu sync.Mutex
	var bytes atomic.Int64
	report := func(done, cached int) {
		if f.Progress == nil {
			return
		}
		mu.Lock()
		p.Done += done
		p.Cached += cached
		p.Bytes = bytes.Load()
		q := p
		f.Progress(q)
		mu.Unlock()
	}
	paths := make([]string, len(items))
	errs := make([]error, len(items))
	var last time.Time
	var lastMu sync.Mutex
	count := func(n int64) {
		bytes.Add(n)
		lastMu.Lock()
		now := time.Now()
		tick := now.Sub(last) > 100*time.Millisecond
		if tick {
			last = now
		}
		lastMu.Unlock()
		if tick {
			report(0, 0)
		}
	}
	work := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < par && w < len(order); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				_, hit := f.Cached(items[i])
				paths[i], errs[i] = f.fetch(ctx, items[i], count)
				if errs[i] != nil {
					cancel()
				}
				c := 0
				if hit {
					c = 1
				}
				report(1, c)
			}
		}()
	}
	for _, i := range order {
		if ctx.Err() != nil {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
	var firstErr error
	for i, it := range items {
		j := first[strings.ToLower(it.SHA256)]
		if errs[j] != nil && !errors.Is(errs[j], context.Canceled) {
			return nil, errs[j]
		}
		if errs[j] != nil && firstErr == nil {
			firstErr = errs[j]
		}
		paths[i] = paths[j]
	}
	if firstErr != nil {
		return nil, firstErr
	}
	for i, pth := range paths {
		if pth == "" {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("fetching %s: not fetched", items[i].URL)
		}
	}
	return paths, nil
}

// hasSHA256 reports whether the file at p has the given SHA-256 (hex).
func hasSHA256(p, want string) (bool, error) {
	fh, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		return false, err
	}
	return hex.EncodeToString(h.Sum(nil)) == want, nil
}
