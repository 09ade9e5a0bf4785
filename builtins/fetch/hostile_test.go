package fetch

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestCachedRefusesSymlinks: a cache entry that is a symlink (a tampered
// or shared cache) must not be handed out: that made sxb read whatever
// host file it points to as the package of that hash. The entry is fetched
// again and the symlink replaced.
func TestCachedRefusesSymlinks(t *testing.T) {
	content := []byte("package payload")
	src := filepath.Join(t.TempDir(), "p.deb")
	os.WriteFile(src, content, 0o644)
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, content, 0o600) // same size, other file
	f := &Fetcher{CacheDir: t.TempDir(), Retries: -1}
	it := Item{URL: "file://" + src, Size: int64(len(content)), SHA256: sum(content)}
	p := f.CachePath(it.SHA256)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.Symlink(victim, p); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Cached(it); ok {
		t.Error("Cached accepted a symlink")
	}
	got, err := f.Fetch(context.Background(), it)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(got); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("fetched path %s is not a regular file: %v", got, err)
	}
	if l, err := os.Readlink(p); err == nil {
		t.Errorf("cache entry still links to %s", l)
	}
}

func TestDamagedCacheEntryIsFetchedAgain(t *testing.T) {
	dir := t.TempDir()
	content := []byte("the real package")
	src := filepath.Join(dir, "pkg.deb")
	os.WriteFile(src, content, 0o644)
	f := &Fetcher{CacheDir: filepath.Join(dir, "cache")}
	it := Item{URL: "file://" + src, Size: int64(len(content)), SHA256: sum(content)}
	p, err := f.Fetch(context.Background(), it)
	if err != nil {
		t.Fatal(err)
	}
	// Same size, other bytes: a size check alone would accept it.
	os.WriteFile(p, []byte("the evil package"), 0o644)
	p2, err := f.Fetch(context.Background(), it)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p2); string(b) != string(content) {
		t.Errorf("damaged cache entry used: %q", b)
	}
}
