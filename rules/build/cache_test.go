package build

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func put(t *testing.T, c *Cache, key string, size int, used time.Time) {
	t.Helper()
	st, err := c.Stage(key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(st.Out(), "x.raw"), []byte(strings.Repeat("x", size)), 0o644)
	e, err := st.Commit("//p:"+key[:4], nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	os.Chtimes(filepath.Join(e.Dir(), "entry.json"), used, used)
}

func TestTrimEvictsOldAndLeastRecentlyUsed(t *testing.T) {
	c := &Cache{Dir: t.TempDir(), MaxBytes: 2900, MaxAge: 48 * time.Hour}
	now := time.Now()
	keys := []string{Key("a"), Key("b"), Key("c"), Key("d")}
	put(t, c, keys[0], 1000, now.Add(-72*time.Hour)) // too old
	put(t, c, keys[1], 1000, now.Add(-3*time.Hour))  // least recently used
	put(t, c, keys[2], 1000, now.Add(-2*time.Hour))
	put(t, c, keys[3], 1000, now.Add(-1*time.Hour))
	if err := c.Trim(); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{false, false, true, true} {
		e, err := c.Get(keys[i])
		if err != nil {
			t.Fatal(err)
		}
		if (e != nil) != want {
			t.Errorf("entry %d present=%v, want %v", i, e != nil, want)
		}
	}
}

func TestGetDetectsCorruptionAndCommitIsAtomic(t *testing.T) {
	c := &Cache{Dir: t.TempDir()}
	k := Key("k")
	put(t, c, k, 10, time.Now())
	e, err := c.Get(k)
	if err != nil || e == nil {
		t.Fatalf("Get = %v, %v", e, err)
	}
	os.WriteFile(e.Path("x.raw"), []byte("tampered!!"), 0o644) // same size
	if e, err := c.Get(k); e != nil || err == nil {
		t.Errorf("tampered entry returned: %v %v", e, err)
	}
	if e, err := c.Get(k); e != nil || err != nil {
		t.Errorf("corrupt entry not discarded: %v %v", e, err)
	}
	// An aborted staging leaves nothing behind.
	st, _ := c.Stage(k)
	os.WriteFile(filepath.Join(st.Out(), "half"), []byte("x"), 0o644)
	st.Abort()
	if e, _ := c.Get(k); e != nil {
		t.Error("aborted staging became an entry")
	}
	if ents, _ := os.ReadDir(filepath.Join(c.Dir, "tmp")); len(ents) != 0 {
		t.Errorf("staging leftovers: %v", ents)
	}
}

func TestTrimFilesByAge(t *testing.T) {
	d := t.TempDir()
	old, fresh := filepath.Join(d, "ab", "old"), filepath.Join(d, "ab", "fresh")
	os.MkdirAll(filepath.Dir(old), 0o755)
	os.WriteFile(old, []byte("x"), 0o644)
	os.WriteFile(fresh, []byte("x"), 0o644)
	long := time.Now().Add(-100 * time.Hour)
	os.Chtimes(old, long, long)
	trimFiles(d, 48*time.Hour)
	if _, err := os.Stat(old); err == nil {
		t.Error("old file kept")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Error("fresh file removed")
	}
}

func TestTrimCacheRunsAtMostOncePerInterval(t *testing.T) {
	dir := t.TempDir()
	c := &Cache{Dir: filepath.Join(dir, "actions"), MaxAge: 48 * time.Hour}
	old := filepath.Join(dir, "sha256", "ab", "old")
	write := func() {
		os.MkdirAll(filepath.Dir(old), 0o755)
		os.WriteFile(old, []byte("x"), 0o644)
		long := time.Now().Add(-100 * time.Hour)
		os.Chtimes(old, long, long)
	}
	write()
	trimCache(c, dir)
	if _, err := os.Stat(old); err == nil {
		t.Fatal("first trim kept an old download")
	}
	write()
	trimCache(c, dir) // within the interval: nothing is walked
	if _, err := os.Stat(old); err != nil {
		t.Fatal("second trim within the interval ran")
	}
	long := time.Now().Add(-2 * trimInterval)
	os.Chtimes(filepath.Join(dir, ".trimmed"), long, long)
	trimCache(c, dir)
	if _, err := os.Stat(old); err == nil {
		t.Fatal("trim after the interval did not run")
	}
}
