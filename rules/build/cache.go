// Package build executes a target graph: it computes each target's action
// key, reuses cached results, runs the builtins for the rest (independent
// targets in parallel) and publishes outputs atomically.
package build

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Cache is the content-addressed action cache: a directory of entries, one
// per action key, each holding the outputs of one action and a record of
// their digests. Entries appear atomically (written under a temporary name,
// then renamed), so a crash or a concurrent build never leaves a torn entry;
// an entry whose outputs no longer match their record is treated as missing.
type Cache struct {
	Dir string // .../sxb/actions
	// MaxBytes bounds the total size; Trim removes least recently used
	// entries beyond it. 0 means no bound.
	MaxBytes int64
	// MaxAge removes entries not used for this long. 0 means no bound.
	MaxAge time.Duration
}

// Output describes one file or directory of an entry.
type Output struct {
	Name string `json:"name"`
	Dir  bool   `json:"dir,omitempty"`
	Size int64  `json:"size"`
	// Digest is the sha256 of a file's content, or of a directory's
	// listing (paths, types, modes, sizes, link targets).
	Digest string `json:"digest"`
}

// Entry is a cached action result.
type Entry struct {
	Key     string          `json:"key"`
	Label   string          `json:"label"`
	Outputs []Output        `json:"outputs"`
	Info    json.RawMessage `json:"info,omitempty"`
	// Inputs is the readable form of what went into the key, kept for
	// --explain.
	Inputs json.RawMessage `json:"inputs,omitempty"`
	dir    string
}

// Path returns the absolute path of an output of the entry.
func (e *Entry) Path(name string) string { return filepath.Join(e.dir, "out", name) }

// Dir returns the entry's directory.
func (e *Entry) Dir() string { return e.dir }

func (c *Cache) entryDir(key string) string { return filepath.Join(c.Dir, key[:2], key) }

// ErrCorrupt marks an entry whose outputs do not match their record.
var ErrCorrupt = errors.New("cache entry is corrupt")

// Get returns the entry for key, verifying its outputs. A missing entry is
// (nil, nil); a corrupt one is removed and reported with ErrCorrupt.
func (c *Cache) Get(key string) (*Entry, error) {
	dir := c.entryDir(key)
	b, err := os.ReadFile(filepath.Join(dir, "entry.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var e Entry
	if err := json.Unmarshal(b, &e); err != nil || e.Key != key {
		c.discard(dir)
		return nil, fmt.Errorf("%s: %w (unreadable record)", key[:12], ErrCorrupt)
	}
	e.dir = dir
	for _, o := range e.Outputs {
		// An output is a plain name in out/, a regular file or a real
		// directory: a tampered record must not point sxb at host files
		// (through ".." or a symlink) nor at a FIFO it would block on.
		if o.Name == "" || o.Name == "." || o.Name == ".." || strings.ContainsAny(o.Name, "/\x00") {
			c.discard(dir)
			return nil, fmt.Errorf("%s: %w (output name %q)", key[:12], ErrCorrupt, o.Name)
		}
		if fi, err := os.Lstat(e.Path(o.Name)); err != nil || o.Dir != fi.IsDir() || !o.Dir && !fi.Mode().IsRegular() {
			c.discard(dir)
			return nil, fmt.Errorf("%s: %w (%s is not a plain %s)", key[:12], ErrCorrupt, o.Name, map[bool]string{true: "directory", false: "file"}[o.Dir])
		}
		got, err := digestOutput(e.Path(o.Name), o.Dir)
		if err != nil || got.Digest != o.Digest || got.Size != o.Size {
			c.discard(dir)
			return nil, fmt.Errorf("%s: %w (%s changed)", key[:12], ErrCorrupt, o.Name)
		}
	}
	now := time.Now()
	os.Chtimes(filepath.Join(dir, "entry.json"), now, now) // LRU mark; best effort
	return &e, nil
}

func (c *Cache) discard(dir string) {
	trash := dir + ".trash-" + randHex()
	if os.Rename(dir, trash) == nil {
		os.RemoveAll(trash)
	}
}

// Staging is an entry being built. Write outputs under Out(), then Commit.
type Staging struct {
	c   *Cache
	key string
	dir string
}

// Stage starts a new entry for key in a private temporary directory.
func (c *Cache) Stage(key string) (*Staging, error) {
	if err := os.MkdirAll(filepath.Join(c.Dir, "tmp"), 0o755); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(filepath.Join(c.Dir, "tmp"), key[:12]+"-")
	if err != nil {
		return nil, err
	}
	if err := os.Mkdir(filepath.Join(dir, "out"), 0o755); err != nil {
		return nil, err
	}
	return &Staging{c: c, key: key, dir: dir}, nil
}

// Out is the directory outputs are written into.
func (s *Staging) Out() string { return filepath.Join(s.dir, "out") }

// Work is a scratch directory inside the staging area, removed on Commit.
func (s *Staging) Work() (string, error) {
	return os.MkdirTemp(s.dir, "work-")
}

// Abort removes the staging area.
func (s *Staging) Abort() { os.RemoveAll(s.dir) }

// Commit records the digests of every top-level item of Out() and moves the
// entry into place. When another process committed the same key first,
// that entry wins and this one is dropped.
func (s *Staging) Commit(label string, info, inputs any) (*Entry, error) {
	ents, err := os.ReadDir(s.Out())
	if err != nil {
		return nil, err
	}
	e := &Entry{Key: s.key, Label: label}
	for _, d := range ents {
		if strings.HasPrefix(d.Name(), "work-") {
			continue
		}
		o, err := digestOutput(filepath.Join(s.Out(), d.Name()), d.IsDir())
		if err != nil {
			return nil, err
		}
		o.Name = d.Name()
		e.Outputs = append(e.Outputs, o)
	}
	if info != nil {
		if e.Info, err = json.Marshal(info); err != nil {
			return nil, err
		}
	}
	if inputs != nil {
		if e.Inputs, err = json.Marshal(inputs); err != nil {
			return nil, err
		}
	}
	// Scratch directories never enter the cache.
	if scratch, _ := filepath.Glob(filepath.Join(s.dir, "work-*")); len(scratch) > 0 {
		for _, w := range scratch {
			os.RemoveAll(w)
		}
	}
	b, _ := json.MarshalIndent(e, "", "  ")
	if err := os.WriteFile(filepath.Join(s.dir, "entry.json"), b, 0o644); err != nil {
		return nil, err
	}
	final := s.c.entryDir(s.key)
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return nil, err
	}
	if err := os.Rename(s.dir, final); err != nil {
		if existing, gerr := s.c.Get(s.key); gerr == nil && existing != nil {
			s.Abort()
			return existing, nil
		}
		// A corrupt entry was in the way and has been discarded: retry once.
		if err2 := os.Rename(s.dir, final); err2 != nil {
			s.Abort()
			return nil, fmt.Errorf("committing cache entry: %w", err)
		}
	}
	e.dir = final
	return e, nil
}

// digestOutput hashes a file's content or a directory's listing.
func digestOutput(p string, dir bool) (Output, error) {
	if !dir {
		f, err := os.Open(p)
		if err != nil {
			return Output{}, err
		}
		defer f.Close()
		h := sha256.New()
		n, err := io.Copy(h, f)
		if err != nil {
			return Output{}, err
		}
		return Output{Size: n, Digest: hex.EncodeToString(h.Sum(nil))}, nil
	}
	h := sha256.New()
	var total int64
	err := filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(p, q)
		target := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, _ = os.Readlink(q)
		}
		size := int64(0)
		if fi.Mode().IsRegular() {
			size = fi.Size()
			total += size
		}
		fmt.Fprintf(h, "%s\x00%o\x00%d\x00%d\x00%s\n", rel, fi.Mode(), size, fi.ModTime().UnixNano(), target)
		return nil
	})
	if err != nil {
		return Output{}, err
	}
	return Output{Dir: true, Size: total, Digest: hex.EncodeToString(h.Sum(nil))}, nil
}

// Trim removes entries beyond MaxAge and, least recently used first, beyond
// MaxBytes, and leftovers of interrupted builds older than an hour.
func (c *Cache) Trim() error {
	type ent struct {
		dir  string
		used time.Time
		size int64
	}
	var ents []ent
	var total int64
	tops, err := os.ReadDir(c.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	now := time.Now()
	for _, t := range tops {
		if !t.IsDir() {
			continue
		}
		sub := filepath.Join(c.Dir, t.Name())
		items, _ := os.ReadDir(sub)
		for _, it := range items {
			p := filepath.Join(sub, it.Name())
			if t.Name() == "tmp" || strings.Contains(it.Name(), ".trash-") {
				if fi, err := it.Info(); err == nil && now.Sub(fi.ModTime()) > time.Hour {
					os.RemoveAll(p)
				}
				continue
			}
			fi, err := os.Stat(filepath.Join(p, "entry.json"))
			if err != nil {
				continue
			}
			size := dirSize(p)
			ents = append(ents, ent{p, fi.ModTime(), size})
			total += size
		}
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].used.Before(ents[j].used) })
	for _, e := range ents {
		old := c.MaxAge > 0 && now.Sub(e.used) > c.MaxAge
		big := c.MaxBytes > 0 && total > c.MaxBytes
		if !old && !big {
			continue
		}
		c.discard(e.dir)
		total -= e.size
	}
	return nil
}

func dirSize(p string) int64 {
	var n int64
	filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

func randHex() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// trimFiles removes regular files below dir (downloads, parsed indexes)
// whose modification time is older than maxAge. Those caches never modify a
// file after writing it, so the time is when it was fetched; a removed file
// is fetched again when next needed.
func trimFiles(dir string, maxAge time.Duration) {
	if maxAge <= 0 {
		return
	}
	cutoff := time.Now().Add(-maxAge)
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err == nil && fi.ModTime().Before(cutoff) {
			os.Remove(p)
		}
		return nil
	})
}

// trimDirs removes the trees directly below dir that were not used for
// maxAge (their users mark a use with touchDir).
func trimDirs(dir string, maxAge time.Duration) {
	ents, err := os.ReadDir(dir)
	if err != nil || maxAge <= 0 {
		return
	}
	cutoff := time.Now().Add(-maxAge)
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && e.IsDir() && fi.ModTime().Before(cutoff) {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

// touchDir marks a use of the tree dir, for trimDirs.
func touchDir(dir string) {
	now := time.Now()
	os.Chtimes(dir, now, now)
}

// trimInterval is how often a build trims the cache: trimming walks every
// file of it, which must not make every no-op build slow.
const trimInterval = time.Hour

// trimCache trims the action cache and the download, index and pin caches
// below cacheDir, at most once per trimInterval (a stamp file remembers
// the last time).
func trimCache(c *Cache, cacheDir string) {
	stamp := filepath.Join(cacheDir, ".trimmed")
	if fi, err := os.Stat(stamp); err == nil && time.Since(fi.ModTime()) < trimInterval {
		return
	}
	c.Trim()
	for _, sub := range []string{"sha256", "deb-index", "deb-data", "rpm-md", "pins"} {
		trimFiles(filepath.Join(cacheDir, sub), c.MaxAge)
	}
	for _, sub := range []string{"tree-bases", "extension-bases"} {
		trimDirs(filepath.Join(cacheDir, sub), c.MaxAge)
	}
	os.MkdirAll(cacheDir, 0o755)
	os.WriteFile(stamp, nil, 0o644)
	now := time.Now()
	os.Chtimes(stamp, now, now)
}
