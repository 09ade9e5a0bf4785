// Package remotecache is a client for the remote cache protocol Bazel
// speaks over HTTP/1.1, as bazel-remote, BuildBuddy, Buildbarn's HTTP
// frontends, nginx with WebDAV or a cloud bucket serve it:
//
//	GET|PUT|HEAD <base>[/<instance>]/ac/<key>      action results (REAPI ActionResult protobuf)
//	GET|PUT|HEAD <base>[/<instance>]/cas/<sha256>  blobs, named by the SHA-256 of their content
//
// Every blob read is hashed while it streams and refused (ErrCorrupt) when
// it does not match the digest asked for; nothing is ever held whole in
// memory except action results, which are small and bounded.
//
// Compression: a GET says "Accept-Encoding: zstd" and a response with
// "Content-Encoding: zstd" is decoded (bazel-remote answers so). An upload
// is zstd-compressed, with "Content-Encoding: zstd" and
// "X-Digest-SizeBytes: <uncompressed size>" as bazel-remote expects, only
// when Options.Compression is "zstd", or when it is "auto" (the default) and
// the server has already answered a GET of this client with zstd: that is
// the server advertising it. Servers that ignore Accept-Encoding (nginx,
// buckets) therefore never receive compressed uploads they would store
// as is.
//
// Faults: requests have bounded time (connect, response headers, and no
// body progress for StallTimeout); transient failures (network errors,
// HTTP 5xx and 429) are retried with back-off, a timeout is not. An error
// wrapping ErrUnavailable means the server cannot serve this build; callers
// stop using it. ErrDenied means it refuses uploads (read-only).
package remotecache

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Errors the client wraps; test with errors.Is.
var (
	// ErrUnavailable: the server could not be reached, timed out or kept
	// failing.
	ErrUnavailable = errors.New("remote cache unavailable")
	// ErrDenied: the server refused a request (401, 403, 405, 413, ...).
	ErrDenied = errors.New("remote cache refused the request")
	// ErrCorrupt: a blob did not match its digest.
	ErrCorrupt = errors.New("remote blob does not match its digest")
	// ErrNotFound: the blob or action result is not in the cache.
	ErrNotFound = errors.New("not in the remote cache")
)

// Options configure a Client. Only URL is required.
type Options struct {
	// URL is the cache's base URL, http:// or https://, with an optional
	// path prefix.
	URL string
	// InstanceName is inserted before ac/ and cas/ (as Bazel's
	// --remote_instance_name does on HTTP caches).
	InstanceName string
	// Header is sent with every request (for example Authorization).
	Header http.Header
	// CAFile is a PEM file of certificates trusted in addition to the
	// system roots.
	CAFile string
	// NetrcFile gives login and password for the cache's host when Header
	// has no Authorization; "" means $NETRC, else ~/.netrc (a missing file
	// is no error).
	NetrcFile string
	// Compression is "auto" (default), "zstd" or "off"; see the package
	// documentation.
	Compression string
	// DialTimeout bounds connecting and the TLS handshake (default 5s).
	DialTimeout time.Duration
	// Timeout bounds the wait for response headers and any stretch
	// without body progress (default 30s).
	Timeout time.Duration
	// Retries is how often a transient failure is retried (default 2).
	Retries int
	// Parallel bounds the blob transfers one call runs at once (default 8).
	Parallel int
	// ChunkSize is the largest blob an upload creates; longer files are
	// cut into chunks of this size (default 16 MiB).
	ChunkSize int64
	// TempDir holds spool files of streams being sent or received
	// (default os.TempDir()).
	TempDir string
}

// Client talks to one remote cache. It is safe for concurrent use.
type Client struct {
	opts  Options
	base  string // URL up to and including the instance name, no trailing slash
	http  *http.Client
	auth  string // Authorization header from netrc, "" if none
	zstd  atomic.Bool
	stats Stats
	bad   sync.Map // digest hash -> true: seen corrupt, re-upload without asking
}

// Stats count the bytes a client moved, as they crossed the wire.
type Stats struct {
	Downloaded, Uploaded atomic.Int64
}

// New checks o and returns a client; it does not contact the server.
func New(o Options) (*Client, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("remote cache URL %q: want http:// or https:// and a host", o.URL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("remote cache URL %q: no query or fragment allowed", o.URL)
	}
	switch o.Compression {
	case "":
		o.Compression = "auto"
	case "auto", "zstd", "off":
	default:
		return nil, fmt.Errorf("remote cache compression %q: want auto, zstd or off", o.Compression)
	}
	if strings.Contains(o.InstanceName, "..") || strings.HasPrefix(o.InstanceName, "/") || strings.ContainsAny(o.InstanceName, "?#") {
		return nil, fmt.Errorf("remote instance name %q: want a relative path such as \"team/main\"", o.InstanceName)
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 5 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Retries < 0 {
		o.Retries = 0
	} else if o.Retries == 0 {
		o.Retries = 2
	}
	if o.Parallel <= 0 {
		o.Parallel = 8
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = 16 << 20
	}
	if o.TempDir == "" {
		o.TempDir = os.TempDir()
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading remote cache CA: %w", err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("reading remote cache CA %s: no PEM certificate in it", o.CAFile)
		}
	}
	dialer := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   o.DialTimeout,
		ResponseHeaderTimeout: o.Timeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConnsPerHost:   o.Parallel * 2,
		IdleConnTimeout:       90 * time.Second,
		// Compression is negotiated by hand (zstd); the transport must not
		// add gzip and decode behind our back.
		DisableCompression: true,
	}
	c := &Client{opts: o, http: &http.Client{Transport: tr}}
	c.base = strings.TrimRight(u.String(), "/")
	if o.InstanceName != "" {
		c.base += "/" + strings.Trim(o.InstanceName, "/")
	}
	if o.Header.Get("Authorization") == "" && u.User == nil {
		file := o.NetrcFile
		if file == "" {
			file = defaultNetrc()
		}
		if file != "" {
			login, pass, err := netrcLookup(file, u.Hostname())
			if err != nil {
				return nil, err
			}
			if login != "" || pass != "" {
				req := &http.Request{Header: http.Header{}}
				req.SetBasicAuth(login, pass)
				c.auth = req.Header.Get("Authorization")
			}
		}
	}
	return c, nil
}

// URL returns the base URL the client talks to, without credentials.
func (c *Client) URL() string {
	u, err := url.Parse(c.base)
	if err != nil {
		return c.base
	}
	u.User = nil
	return u.String()
}

// Stats returns the client's byte counters.
func (c *Client) Stats() *Stats { return &c.stats }

// request is one HTTP exchange the client retries as a whole.
type request struct {
	method, path string
	// body opens the request body afresh for every attempt; nil for none.
	body func() (io.ReadCloser, error)
	size int64 // body length, -1 when unknown (chunked)
	hdr  http.Header
	// handle consumes a response with an accepted status; its error is
	// returned as is (wrapped in nothing), unless it is retryable.
	handle func(*http.Response, *watchdog) error
}

// retryable marks an error that another attempt may cure.
type retryable struct{ err error }

func (r retryable) Error() string { return r.err.Error() }
func (r retryable) Unwrap() error { return r.err }

// do runs r with retries. Network errors and 5xx/429 answers are retried;
// timeouts and other statuses are not.
func (c *Client) do(ctx context.Context, r request) error {
	var last error
	for attempt := 0; attempt <= c.opts.Retries; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(100<<attempt) * time.Millisecond):
			}
		}
		err := c.once(ctx, r)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var rt retryable
		if !errors.As(err, &rt) {
			return err
		}
		last = rt.err
	}
	return last
}

func (c *Client) once(ctx context.Context, r request) error {
	wd := newWatchdog(ctx, c.opts.Timeout)
	defer wd.stop()
	var body io.Reader
	if r.body != nil {
		rc, err := r.body()
		if err != nil {
			return err
		}
		defer rc.Close()
		body = wd.reader(rc, &c.stats.Uploaded)
	}
	req, err := http.NewRequestWithContext(wd.ctx, r.method, c.base+r.path, body)
	if err != nil {
		return err
	}
	if r.body != nil {
		req.ContentLength = r.size
		if r.size == 0 {
			req.Body = http.NoBody
		}
	}
	for k, vs := range c.opts.Header {
		req.Header[k] = append([]string(nil), vs...)
	}
	for k, vs := range r.hdr {
		req.Header[k] = vs
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	req.Header.Set("User-Agent", "sxb-remote-cache")
	resp, err := c.http.Do(req)
	if err != nil {
		if wd.fired() {
			return fmt.Errorf("%w: %s %s: no answer for %v", ErrUnavailable, r.method, c.shortPath(r.path), c.opts.Timeout)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fmt.Errorf("%w: %s %s: %v", ErrUnavailable, r.method, c.shortPath(r.path), err)
		}
		return retryable{fmt.Errorf("%w: %s %s: %v", ErrUnavailable, r.method, c.shortPath(r.path), err)}
	}
	defer func() {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // keep the connection reusable
		resp.Body.Close()
	}()
	if resp.Header.Get("Content-Encoding") == "zstd" {
		c.zstd.Store(true)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return ErrNotFound
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return retryable{fmt.Errorf("%w: %s %s: %s", ErrUnavailable, r.method, c.shortPath(r.path), resp.Status)}
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden ||
		resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusRequestEntityTooLarge ||
		resp.StatusCode == http.StatusNotImplemented || resp.StatusCode == http.StatusConflict && r.method == http.MethodPut:
		return fmt.Errorf("%w: %s %s: %s", ErrDenied, r.method, c.shortPath(r.path), resp.Status)
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return fmt.Errorf("remote cache: %s %s: unexpected %s", r.method, c.shortPath(r.path), resp.Status)
	}
	if r.handle == nil {
		return nil
	}
	if err := r.handle(resp, wd); err != nil {
		if wd.fired() {
			return fmt.Errorf("%w: %s %s: no progress for %v", ErrUnavailable, r.method, c.shortPath(r.path), c.opts.Timeout)
		}
		return err
	}
	return nil
}

func (c *Client) shortPath(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 && len(p)-i > 13 {
		return p[:i+13] + "…"
	}
	return p
}

// decodedBody returns the response body, zstd-decoded when the server
// sent it so; any other content coding is an error.
func decodedBody(resp *http.Response, r io.Reader) (io.ReadCloser, error) {
	switch enc := resp.Header.Get("Content-Encoding"); enc {
	case "", "identity":
		return io.NopCloser(r), nil
	case "zstd":
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	default:
		return nil, fmt.Errorf("remote cache answered with content coding %q", enc)
	}
}

func (c *Client) acceptHeader() http.Header {
	if c.opts.Compression == "off" {
		return nil
	}
	return http.Header{"Accept-Encoding": {"zstd"}}
}

// compressUploads reports whether blob uploads are zstd-compressed.
func (c *Client) compressUploads() bool {
	return c.opts.Compression == "zstd" || c.opts.Compression == "auto" && c.zstd.Load()
}

// watchdog cancels a request when it makes no progress for d: no
// response headers, or no body bytes read or sent.
type watchdog struct {
	ctx    context.Context
	cancel context.CancelFunc
	t      *time.Timer
	d      time.Duration
	gone   atomic.Bool
}

func newWatchdog(parent context.Context, d time.Duration) *watchdog {
	ctx, cancel := context.WithCancel(parent)
	w := &watchdog{ctx: ctx, cancel: cancel, d: d}
	w.t = time.AfterFunc(d, func() { w.gone.Store(true); cancel() })
	return w
}

func (w *watchdog) kick()       { w.t.Reset(w.d) }
func (w *watchdog) fired() bool { return w.gone.Load() }
func (w *watchdog) stop()       { w.t.Stop(); w.cancel() }

// reader kicks the watchdog on every read and counts bytes into n.
func (w *watchdog) reader(r io.Reader, n *atomic.Int64) io.Reader {
	return &progressReader{r: r, w: w, n: n}
}

type progressReader struct {
	r io.Reader
	w *watchdog
	n *atomic.Int64
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.w.kick()
		p.n.Add(int64(n))
	}
	return n, err
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
