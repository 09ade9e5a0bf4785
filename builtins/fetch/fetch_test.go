package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func TestFetchAllHTTPAndCache(t *testing.T) {
	files := map[string][]byte{}
	for i := 0; i < 20; i++ {
		files[fmt.Sprintf("/f%d", i)] = bytes.Repeat([]byte{byte(i)}, 1000*(i+1))
	}
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		hits.Add(1)
		w.Write(b)
	}))
	defer srv.Close()
	var items []Item
	for i := 0; i < 20; i++ {
		b := files[fmt.Sprintf("/f%d", i)]
		items = append(items, Item{URL: srv.URL + fmt.Sprintf("/f%d", i), Size: int64(len(b)), SHA256: sum(b)})
	}
	items = append(items, items[3]) // duplicate content is fetched once
	cache := t.TempDir()
	var last Progress
	f := &Fetcher{CacheDir: cache, Parallel: 4, Progress: func(p Progress) { last = p }}
	paths, err := f.FetchAll(context.Background(), items)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range paths {
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if sum(got) != items[i].SHA256 {
			t.Fatalf("item %d: wrong content", i)
		}
	}
	if hits.Load() != 20 {
		t.Fatalf("server hits = %d, want 20", hits.Load())
	}
	if last.Done != 20 || last.Count != 20 || last.Bytes != last.Total {
		t.Fatalf("final progress %+v", last)
	}
	// Second run: everything from the cache, the server is not asked.
	if _, err := f.FetchAll(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 20 {
		t.Fatalf("second run hit the server: %d", hits.Load())
	}
	if last.Cached != 20 {
		t.Fatalf("cached = %d, want 20", last.Cached)
	}
	// No temporary files are left behind.
	filepath.Walk(cache, func(p string, fi os.FileInfo, err error) error {
		if err == nil && filepath.Base(p)[0] == '.' {
			t.Errorf("left over %s", p)
		}
		return nil
	})
}

func TestChecksumMismatchAndNotFound(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/gone" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("tampered"))
	}))
	defer srv.Close()
	f := &Fetcher{CacheDir: t.TempDir(), Retries: 1}
	_, err := f.Fetch(context.Background(), Item{URL: srv.URL + "/x", Size: 8, SHA256: sum([]byte("original"))})
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("err = %v, want checksum mismatch", err)
	}
	_, err = f.Fetch(context.Background(), Item{URL: srv.URL + "/x", Size: 5, SHA256: sum([]byte("tampe"))})
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("oversized answer: err = %v, want checksum mismatch", err)
	}
	_, err = f.Fetch(context.Background(), Item{URL: srv.URL + "/gone", Size: -1, SHA256: sum(nil)})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want not found", err)
	}
	_, err = f.FetchAll(context.Background(), []Item{
		{URL: srv.URL + "/x", Size: 8, SHA256: sum([]byte("tampered"))},
		{URL: srv.URL + "/gone", Size: 1, SHA256: sum([]byte("y"))},
	})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("FetchAll err = %v, want not found", err)
	}
	if _, err := f.Fetch(context.Background(), Item{URL: srv.URL + "/x", Size: 8}); err == nil {
		t.Fatal("missing SHA256 accepted")
	}
}

func TestRetry(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) < 3 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	f := &Fetcher{CacheDir: t.TempDir()}
	if _, err := f.Fetch(context.Background(), Item{URL: srv.URL, Size: 2, SHA256: sum([]byte("ok"))}); err != nil {
		t.Fatal(err)
	}
	n.Store(0)
	b, err := f.Get(context.Background(), srv.URL, 0)
	if err != nil || string(b) != "ok" {
		t.Fatalf("Get = %q, %v", b, err)
	}
	f.Retries = -1
	n.Store(0)
	if _, err := f.Get(context.Background(), srv.URL, 0); err == nil {
		t.Fatal("no retry wanted, but succeeded")
	}
}

func TestFileURLAndConcurrentCaches(t *testing.T) {
	dir := t.TempDir()
	content := bytes.Repeat([]byte("data"), 1<<16)
	src := filepath.Join(dir, "blob")
	if err := os.WriteFile(src, content, 0o600); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "cache")
	it := Item{URL: "file://" + src, Size: int64(len(content)), SHA256: sum(content)}
	// Several independent fetchers (as separate processes would) fill the
	// same cache at once.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			f := &Fetcher{CacheDir: cache}
			p, err := f.Fetch(context.Background(), it)
			if err == nil {
				b, rerr := os.ReadFile(p)
				if rerr != nil || !bytes.Equal(b, content) {
					err = fmt.Errorf("bad cache content: %v", rerr)
				}
			}
			errs[i] = err
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	f := &Fetcher{CacheDir: cache}
	if _, ok := f.Cached(it); !ok {
		t.Fatal("not cached")
	}
	if _, err := f.Fetch(context.Background(), Item{URL: "file://" + dir + "/nope", Size: 1, SHA256: sum([]byte("z"))}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
	b, err := f.Get(context.Background(), "file://"+src, 0)
	if err != nil || !bytes.Equal(b, content) {
		t.Fatalf("Get file: %v", err)
	}
	if _, err := f.Get(context.Background(), "file://"+src, 10); err == nil {
		t.Fatal("limit not enforced")
	}
}

func TestRangedDownload(t *testing.T) {
	content := make([]byte, rangedMin+12345)
	for i := range content {
		content[i] = byte(i * 7)
	}
	var ranged, plain atomic.Int64
	noRanges := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" && !noRanges {
			ranged.Add(1)
			http.ServeContent(w, r, "blob", time.Time{}, bytes.NewReader(content))
			return
		}
		plain.Add(1)
		w.Write(content)
	}))
	defer srv.Close()
	it := Item{URL: srv.URL + "/blob", Size: int64(len(content)), SHA256: sum(content)}
	var got atomic.Int64
	f := &Fetcher{CacheDir: t.TempDir()}
	p, err := f.FetchCounting(context.Background(), it, func(n int64) { got.Add(n) })
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); !bytes.Equal(b, content) {
		t.Fatal("ranged download corrupted the file")
	}
	if ranged.Load() != rangedParts || plain.Load() != 0 || got.Load() != int64(len(content)) {
		t.Fatalf("ranged=%d plain=%d counted=%d", ranged.Load(), plain.Load(), got.Load())
	}
	// A server that ignores Range gets one plain request.
	noRanges = true
	ranged.Store(0)
	f = &Fetcher{CacheDir: t.TempDir()}
	if _, err := f.Fetch(context.Background(), it); err != nil {
		t.Fatal(err)
	}
	if plain.Load() < 1 {
		t.Fatal("no fallback to a plain download")
	}
	// A tampered large file is refused.
	noRanges = false
	content[100] ^= 1
	f = &Fetcher{CacheDir: t.TempDir(), Retries: -1}
	if _, err := f.Fetch(context.Background(), it); !errors.Is(err, ErrChecksum) {
		t.Fatalf("tampered ranged download: %v", err)
	}
}

func TestStream(t *testing.T) {
	content := bytes.Repeat([]byte("stream me "), 100000)
	var gets atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		w.Write(content)
	}))
	defer srv.Close()
	f := &Fetcher{CacheDir: t.TempDir()}
	ctx := context.Background()
	it := Item{URL: srv.URL + "/x", Size: int64(len(content)), SHA256: sum(content)}
	var seen []byte
	read := func(r io.Reader) error {
		b, err := io.ReadAll(r)
		seen = b
		return err
	}
	p, err := f.Stream(ctx, it, read)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(seen, content) {
		t.Fatalf("consumer saw %d bytes, want %d", len(seen), len(content))
	}
	if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, content) {
		t.Fatalf("cached file: %v, %d bytes", err, len(b))
	}
	// A hit is read from the cache, not the network.
	seen = nil
	if _, err := f.Stream(ctx, it, read); err != nil || !bytes.Equal(seen, content) || gets.Load() != 1 {
		t.Fatalf("cache hit: err %v, %d bytes seen, %d GETs", err, len(seen), gets.Load())
	}
	// A consumer that stops early and fails: its error, the file cached
	// all the same.
	it2 := it
	it2.URL += "?2"
	os.Remove(p)
	boom := errors.New("boom")
	_, err = f.Stream(ctx, it2, func(r io.Reader) error {
		r.Read(make([]byte, 10))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("consumer error: got %v", err)
	}
	if _, ok := f.Cached(it2); !ok {
		t.Fatal("file not cached after a consumer error")
	}
	// Wrong content: the consumer sees an error, nothing is cached.
	bad := Item{URL: srv.URL + "/y", Size: int64(len(content)), SHA256: sum([]byte("other"))}
	var cerr error
	if _, err := f.Stream(ctx, bad, func(r io.Reader) error { _, cerr = io.ReadAll(r); return cerr }); !errors.Is(err, ErrChecksum) {
		t.Fatalf("bad digest: got %v", err)
	}
	if !errors.Is(cerr, ErrChecksum) {
		t.Errorf("consumer of bad content read %v, want the checksum error", cerr)
	}
	if _, ok := f.Cached(bad); ok {
		t.Error("bad content cached")
	}
}
