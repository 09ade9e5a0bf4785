package tree

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/sxb-build/sxb/internal/atomicfile"
)

// Override is what Meta records about one path. Fields left nil keep what the
// directory says.
type Override struct {
	Kind   *Kind             `json:"kind,omitempty"`
	Mode   *uint32           `json:"mode,omitempty"`
	UID    *uint32           `json:"uid,omitempty"`
	GID    *uint32           `json:"gid,omitempty"`
	Mtime  *int64            `json:"mtime,omitempty"`
	Rdev   *uint64           `json:"rdev,omitempty"`
	Xattrs map[string][]byte `json:"xattrs,omitempty"`
}

func (o Override) apply(n *Node) error {
	if o.Kind != nil && *o.Kind != n.Kind {
		// Only a placeholder regular file may stand in for a device, fifo
		// or socket that could not be created without privileges.
		if n.Kind != Regular || n.Size != 0 || (*o.Kind != CharDev && *o.Kind != BlockDev && *o.Kind != FIFO && *o.Kind != Socket) {
			return fmt.Errorf("metadata says %v but the tree holds a %v", *o.Kind, n.Kind)
		}
		n.Kind, n.HostPath = *o.Kind, ""
	}
	if o.Mode != nil {
		n.Mode = *o.Mode & 07777
	}
	if o.UID != nil {
		n.UID = *o.UID
	}
	if o.GID != nil {
		n.GID = *o.GID
	}
	if o.Mtime != nil {
		n.Mtime = *o.Mtime
	}
	if o.Rdev != nil {
		n.Rdev = *o.Rdev
	}
	if len(o.Xattrs) > 0 {
		n.Xattrs = map[string][]byte{}
		for k, v := range o.Xattrs {
			n.Xattrs[k] = v
		}
	}
	return nil
}

// Meta holds per-path overrides for a tree directory. It is safe for
// concurrent use.
type Meta struct {
	mu sync.Mutex
	m  map[string]Override
}

// NewMeta returns an empty Meta.
func NewMeta() *Meta { return &Meta{m: map[string]Override{}} }

// Set records o for the relative path rel, replacing what was there.
func (m *Meta) Set(rel string, o Override) {
	m.mu.Lock()
	m.m[rel] = o
	m.mu.Unlock()
}

// Get returns the override for rel.
func (m *Meta) Get(rel string) (Override, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.m[rel]
	return o, ok
}

// Delete forgets rel.
func (m *Meta) Delete(rel string) {
	m.mu.Lock()
	delete(m.m, rel)
	m.mu.Unlock()
}

// Paths returns the recorded paths, sorted.
func (m *Meta) Paths() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	ps := make([]string, 0, len(m.m))
	for p := range m.m {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// Merge copies every override of other into m (other wins).
func (m *Meta) Merge(other *Meta) {
	if other == nil {
		return
	}
	for _, p := range other.Paths() {
		o, _ := other.Get(p)
		m.Set(p, o)
	}
}

// MetaPath is where the sidecar of the tree directory dir lives:
// "<dir>.meta.json", beside the directory so it never ends up inside an image.
func MetaPath(dir string) string {
	return filepath.Clean(dir) + ".meta.json"
}

type metaLine struct {
	Path string `json:"path"`
	Override
}

// Save writes m as JSON lines sorted by path, atomically.
func (m *Meta) Save(file string) error {
	// The sidecar is readable by the builder only (0600).
	tmp, err := atomicfile.Create(file, 0o600)
	if err != nil {
		return fmt.Errorf("saving tree metadata: %w", err)
	}
	defer tmp.Abort()
	w := bufio.NewWriter(tmp)
	enc := json.NewEncoder(w)
	for _, p := range m.Paths() {
		o, _ := m.Get(p)
		if err := enc.Encode(metaLine{Path: p, Override: o}); err != nil {
			return fmt.Errorf("saving tree metadata: %w", err)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("saving tree metadata: %w", err)
	}
	if err := tmp.Commit(); err != nil {
		return fmt.Errorf("saving tree metadata: %w", err)
	}
	return nil
}

// LoadMeta reads a file written by Save. A missing file yields an empty Meta.
func LoadMeta(file string) (*Meta, error) {
	m := NewMeta()
	f, err := os.Open(file)
	if os.IsNotExist(err) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading tree metadata: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(bufio.NewReader(f))
	for line := 1; dec.More(); line++ {
		var ml metaLine
		if err := dec.Decode(&ml); err != nil {
			return nil, fmt.Errorf("reading tree metadata %s: record %d: %w", file, line, err)
		}
		m.m[ml.Path] = ml.Override
	}
	return m, nil
}

// LoadDir is Load with the sidecar metadata of dir (MetaPath) applied.
func LoadDir(dir string, opts Options) (*Node, error) {
	if opts.Meta == nil {
		m, err := LoadMeta(MetaPath(dir))
		if err != nil {
			return nil, err
		}
		opts.Meta = m
	}
	return Load(dir, opts)
}

// Ptr returns a pointer to v, for filling Overrides.
func Ptr[T any](v T) *T { return &v }
