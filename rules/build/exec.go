package build

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sxb-build/sxb/builtins/fetch"
	"github.com/sxb-build/sxb/builtins/remotecache"
	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/atomicfile"
	"github.com/sxb-build/sxb/rules"
)

// builtinVersion enters every action key. It is the digest of the running
// sxb executable, so a binary with different builtins never reuses results
// of another: nobody has to remember to bump a version when a builtin
// changes what it produces (the cost is hashing the binary once per run).
var builtinVersion = sync.OnceValue(func() string {
	if exe, err := os.Executable(); err == nil {
		if o, err := digestOutput(exe, false); err == nil {
			return "sxb/" + o.Digest
		}
	}
	return "sxb/unknown-binary"
})

// Options control a build.
type Options struct {
	// OutputDir receives published outputs, one subdirectory per package
	// (default <workspace>/sxb-out).
	OutputDir string
	// CacheDir is the sxb cache root (default $XDG_CACHE_HOME/sxb).
	CacheDir string
	// Jobs bounds the targets built at once (default: number of cores).
	Jobs      int
	KeepGoing bool
	// Explain writes why each target was rebuilt to Log.
	Explain bool
	// Epoch is SOURCE_DATE_EPOCH: every time stamp in images is clamped to
	// it and it enters action keys.
	Epoch    int64
	Progress Progress
	// Refresh is how long a resolved package set is reused without asking
	// the repositories again; 0 resolves on every build.
	Refresh time.Duration
	// Locks are the lock files' pins by label ("//pkg:name"); see
	// ReadLocks.
	Locks map[string][]byte
	// RecordLocks resolves afresh (ignoring Locks and remembered pins) and
	// writes what was resolved into each package's lock file.
	RecordLocks bool
	// Log receives --explain output and warnings (default io.Discard).
	Log io.Writer
	// Installers install packages, by distribution name (default
	// NativeInstallers()).
	Installers map[string]Installer
	// ImageWriter writes extension images (default NativeImage).
	ImageWriter ImageWriter
	// RunTests runs the image_test targets among the targets (sxb test);
	// otherwise only what they need is built.
	RunTests bool
	// RerunTests runs tests even when a passing result of the same inputs
	// is cached.
	RerunTests bool
	// TestRunner runs image tests (default NativeTestRunner).
	TestRunner TestRunner
	// SignKey is an OpenPGP secret key file that signs the SHA256SUMS of
	// every output directory (SHA256SUMS.gpg), overriding the targets'
	// sysupdate sign_key; SignPassphrase unlocks it (and theirs).
	SignKey        string
	SignPassphrase []byte
	// Remote, when not nil, is a shared cache consulted when the local
	// one misses (see remote.go).
	Remote *remotecache.Client
	// RemoteUpload stores results built here, or found only in the local
	// cache, in Remote.
	RemoteUpload bool
	// Summary, when not nil, receives the counts of the whole build.
	Summary *Summary
}

// installerFor returns the installer of distribution dist.
func (x *executor) installerFor(dist string) (Installer, error) {
	if in, ok := x.opts.Installers[dist]; ok {
		return in, nil
	}
	known := slices.Sorted(maps.Keys(x.opts.Installers))
	return nil, fmt.Errorf("distribution %q is not supported (known: %v)", dist, known)
}

// Result is what one target produced.
type Result struct {
	Label  string `json:"label"`
	Kind   string `json:"kind"`
	Cached bool   `json:"cached"`
	// Remote says the outputs came from the remote cache; Uploaded that
	// this build stored them there.
	Remote   bool `json:"remote,omitempty"`
	Uploaded bool `json:"uploaded,omitempty"`
	// Outputs are the published paths, main output first.
	Outputs []string `json:"outputs"`
	Size    int64    `json:"size"`
	// Image is an extension's image as built (uncompressed), Tree and
	// TreeMeta a base's tree and its metadata sidecar ("" when it has
	// none), in the action cache: for running them (sxb run, sxb test),
	// never to be written to.
	Image    string `json:"-"`
	Tree     string `json:"-"`
	TreeMeta string `json:"-"`
}

type executor struct {
	g       *rules.Graph
	opts    Options
	cache   *Cache
	mu      sync.Mutex
	entries map[string]*Entry // label -> cache entry of a finished target
	results map[string]*Result
	pins    map[string][]byte // label -> pin resolved in this build
	pubMu   sync.Mutex
	pubDirs map[string]bool
	// pubSums maps each file this build published to its digest when it
	// is a cached output placed as is, or "" when it must be hashed
	// (renamed, rewritten or derived files).
	pubSums map[string]string
	// signKeys maps output directories to the OpenPGP key file their
	// SHA256SUMS is signed with (an extension's sysupdate sign_key).
	signKeys map[string]string
	remote   remoteState
	// baseMu serializes extracting archives used as bases (treeBase).
	baseMu sync.Mutex
}

// Build builds targets and everything they depend on.
func Build(ctx context.Context, g *rules.Graph, targets []*rules.Target, opts Options) ([]*Result, error) {
	if opts.OutputDir == "" {
		opts.OutputDir = filepath.Join(g.Workspace, "sxb-out")
	}
	if opts.CacheDir == "" {
		opts.CacheDir = fetch.DefaultCacheDir()
	}
	if opts.Jobs <= 0 {
		opts.Jobs = runtime.NumCPU()
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.Installers == nil {
		opts.Installers = NativeInstallers()
	}
	if opts.ImageWriter == nil {
		opts.ImageWriter = NativeImage
	}
	if opts.TestRunner == nil {
		opts.TestRunner = NativeTestRunner
	}
	// Targets build in parallel and all of them may explain or warn.
	opts.Log = &syncWriter{w: opts.Log}
	labels := make([]rules.Label, len(targets))
	for i, t := range targets {
		labels[i] = t.Label
	}
	order := g.Closure(labels)
	if !opts.RunTests {
		order = slices.DeleteFunc(order, func(t *rules.Target) bool { return t.Kind == rules.KindImageTest })
	}
	// What sxb cannot build is refused before anything runs (callers
	// choose the buildable targets; see rules.Graph.BuildError).
	for _, t := range targets {
		if err := g.BuildError(t.Label); err != nil {
			return nil, err
		}
	}
	if opts.Progress == nil {
		opts.Progress = NewProgress(io.Discard, false, false, len(order))
	}
	if err := os.MkdirAll(opts.OutputDir, 0o755); err != nil {
		return nil, err
	}
	unlock, err := lockDir(ctx, opts.OutputDir, opts.Log)
	if err != nil {
		return nil, err
	}
	defer unlock()
	x := &executor{
		g: g, opts: opts,
		cache:   &Cache{Dir: filepath.Join(opts.CacheDir, "actions"), MaxBytes: 50 << 30, MaxAge: 30 * 24 * time.Hour},
		entries: map[string]*Entry{}, results: map[string]*Result{}, pins: map[string][]byte{}, pubDirs: map[string]bool{}, pubSums: map[string]string{}, signKeys: map[string]string{},
	}
	jobs := map[string]*job{}
	var list []*job
	for _, t := range order {
		t := t
		j := &job{label: t.Label.String()}
		for _, d := range t.Deps {
			if dj := jobs[d.String()]; dj != nil {
				j.deps = append(j.deps, dj)
			}
		}
		j.run = func(ctx context.Context) error {
			err := x.buildTarget(ctx, t)
			how := "built"
			if r := x.result(t.Label.String()); r != nil && r.Remote {
				how = fmt.Sprintf("from remote cache (%s MB)", mb(r.Size))
			} else if r != nil && r.Cached {
				how = "up to date"
			}
			if r := x.result(t.Label.String()); r != nil && r.Uploaded {
				how += fmt.Sprintf(", uploaded (%s MB)", mb(r.Size))
			}
			opts.Progress.Finish(t.Label.String(), how, err)
			if err != nil {
				return fmt.Errorf("%s: %w", t.Label, err)
			}
			return nil
		}
		jobs[j.label] = j
		list = append(list, j)
	}
	err = schedule(ctx, list, opts.Jobs, opts.KeepGoing)
	if perr := x.writeChecksums(); perr != nil && err == nil {
		err = perr
	}
	if opts.RecordLocks && err == nil {
		err = writeLocks(g, x.pins)
	}
	opts.Progress.Close()
	x.summarize(opts.Summary)
	trimCache(x.cache, opts.CacheDir)
	var out []*Result
	for _, t := range targets {
		if r := x.result(t.Label.String()); r != nil {
			out = append(out, r)
		}
	}
	return out, err
}

func (x *executor) result(label string) *Result {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.results[label]
}

func (x *executor) entry(label string) *Entry {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.entries[label]
}

func (x *executor) finish(t *rules.Target, e *Entry, cached bool, outputs []string) {
	var size int64
	for _, o := range e.Outputs {
		size += o.Size
	}
	r := &Result{Label: t.Label.String(), Kind: t.Kind, Cached: cached, Outputs: outputs, Size: size}
	switch {
	case t.Ext != nil:
		r.Image = e.Path(outputName(t.Ext) + ".raw")
	case t.Base != nil:
		r.Tree = e.Path("tree")
		if _, err := os.Stat(e.Path("tree.meta.json")); err == nil {
			r.TreeMeta = e.Path("tree.meta.json")
		}
	}
	x.mu.Lock()
	x.entries[t.Label.String()] = e
	x.results[t.Label.String()] = r
	x.mu.Unlock()
}

func (x *executor) buildTarget(ctx context.Context, t *rules.Target) error {
	if err := x.resolveTreeLabels(t); err != nil {
		return err
	}
	switch t.Kind {
	case rules.KindTree:
		return x.buildTree(ctx, t)
	case rules.KindBaseImage:
		return x.buildBase(ctx, t)
	case rules.KindSysext, rules.KindConfext:
		return x.buildExtension(ctx, t)
	case rules.KindImageTest:
		return x.runTest(ctx, t)
	}
	return fmt.Errorf("unknown rule kind %q", t.Kind)
}

func (x *executor) reporter(t *rules.Target) func(step, detail string) {
	l := t.Label.String()
	return func(step, detail string) { x.opts.Progress.Step(l, step, detail) }
}

// lookup returns the local cache entry for key, or nil (inputs are for
// lookups that need them; this one does not).
func (x *executor) lookup(t *rules.Target, key string, _ any) (*Entry, error) {
	e, err := x.cache.Get(key)
	if errors.Is(err, ErrCorrupt) {
		fmt.Fprintf(x.opts.Log, "sxb: %s: %v; rebuilding\n", t.Label, err)
		err = nil
	}
	if err != nil {
		return nil, err
	}
	return e, nil
}

// lastInputsFile remembers, per label, the inputs of its last build so that
// --explain can say what changed.
func (x *executor) lastInputsFile(t *rules.Target) string {
	sum := sha256.Sum256([]byte(t.Label.String()))
	return filepath.Join(x.opts.CacheDir, "labels", fmt.Sprintf("%x.json", sum[:12]))
}

func (x *executor) remember(t *rules.Target, inputs any) {
	b, err := json.Marshal(inputs)
	if err != nil {
		return
	}
	f := x.lastInputsFile(t)
	os.MkdirAll(filepath.Dir(f), 0o755)
	atomicfile.Write(f, b, 0o644)
}

func (x *executor) explain(t *rules.Target, inputs any) {
	old, err := os.ReadFile(x.lastInputsFile(t))
	if err != nil {
		fmt.Fprintf(x.opts.Log, "explain: %s: building: no earlier build recorded\n", t.Label)
		return
	}
	var was, now map[string]json.RawMessage
	b, _ := json.Marshal(inputs)
	json.Unmarshal(old, &was)
	json.Unmarshal(b, &now)
	var changed []string
	for k, v := range now {
		if string(was[k]) != string(v) {
			changed = append(changed, k)
		}
	}
	for k := range was {
		if _, ok := now[k]; !ok {
			changed = append(changed, k)
		}
	}
	sort.Strings(changed)
	if len(changed) == 0 {
		fmt.Fprintf(x.opts.Log, "explain: %s: rebuilding: cached result missing or evicted\n", t.Label)
		return
	}
	fmt.Fprintf(x.opts.Log, "explain: %s: rebuilding: %s changed\n", t.Label, strings.Join(changed, ", "))
}

// treeDigest hashes the listing and contents of host trees given as
// inputs (extra and skeleton trees, repart files, keys).
func treeDigest(paths ...string) (string, error) {
	h := sha256.New()
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		if !fi.IsDir() {
			o, err := digestOutput(p, false)
			if err != nil {
				return "", err
			}
			// The base name only: the attributes name the file, and the
			// workspace's location must not change keys.
			fmt.Fprintf(h, "%s\x00%s\n", filepath.Base(p), o.Digest)
			continue
		}
		err = filepath.WalkDir(p, func(q string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(p, q)
			info, err := d.Info()
			if err != nil {
				return err
			}
			switch {
			case info.Mode().IsRegular():
				o, err := digestOutput(q, false)
				if err != nil {
					return err
				}
				fmt.Fprintf(h, "f\x00%s\x00%o\x00%s\n", rel, info.Mode().Perm(), o.Digest)
			case info.Mode()&os.ModeSymlink != 0:
				t, _ := os.Readlink(q)
				fmt.Fprintf(h, "l\x00%s\x00%s\n", rel, t)
			case info.IsDir():
				fmt.Fprintf(h, "d\x00%s\x00%o\n", rel, info.Mode().Perm())
			default:
				fmt.Fprintf(h, "o\x00%s\x00%v\n", rel, info.Mode())
			}
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}

func treeSources(ts []rules.Tree) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Source)
	}
	return out
}

func packagesOf(r Resolved) []Package {
	if r == nil {
		return nil
	}
	ps := append([]Package(nil), r.Packages()...)
	sort.Slice(ps, func(i, j int) bool {
		return ps[i].Name < ps[j].Name || ps[i].Name == ps[j].Name && ps[i].Arch < ps[j].Arch
	})
	return ps
}

// applyTrees copies trees into root. A file goes to its target, or, as cp
// (and so mkosi) puts it, inside the target when that is a directory of
// the image: in root or, for an extension, in the base below it (baseRoot,
// "" for none).
func applyTrees(root, baseRoot string, ts []rules.Tree, meta *tree.Meta) error {
	for _, t := range ts {
		fi, err := os.Stat(t.Source)
		if err != nil {
			return fmt.Errorf("tree %s: %w", t.Source, err)
		}
		if !fi.IsDir() {
			if t.Target == "/" {
				return fmt.Errorf("tree %s is a file: say where it goes in the image (\"SRC:/path/in/image\")", t.Source)
			}
			target := t.Target
			if dir, ok := imageDir(root, baseRoot, target); ok {
				target = path.Join(dir, filepath.Base(t.Source))
			}
			dst, err := tree.Resolve(root, target)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			b, err := os.ReadFile(t.Source)
			if err != nil {
				return err
			}
			// Replace, never write through, what the tree has there: a
			// symlink (from a package) may point at a host file, a hard
			// link may share its inode with a cache.
			if st, err := os.Lstat(dst); err == nil && !st.IsDir() {
				if err := os.Remove(dst); err != nil {
					return err
				}
			}
			f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, fi.Mode().Perm())
			if err != nil {
				return fmt.Errorf("tree %s: %w", t.Source, err)
			}
			_, err = f.Write(b)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("tree %s: %w", t.Source, err)
			}
			if meta != nil {
				if rel, err := filepath.Rel(root, dst); err == nil {
					meta.Delete(filepath.ToSlash(rel))
				}
			}
			continue
		}
		if err := tree.CopyInto(root, t.Source, t.Target, meta); err != nil {
			return err
		}
	}
	return nil
}

// imageDir reports whether p (absolute in the image) is a directory in
// root or in baseRoot, and returns it with the symlinks on the way
// resolved (in the tree that has it).
func imageDir(root, baseRoot, p string) (string, bool) {
	for _, r := range []string{root, baseRoot} {
		if r == "" {
			continue
		}
		if rel, err := tree.ResolveRel(r, p); err == nil {
			if fi, err := os.Stat(filepath.Join(r, rel)); err == nil && fi.IsDir() {
				return "/" + rel, true
			}
		}
	}
	return "", false
}

// syncWriter serializes writes to w: one line written by one target is
// never interleaved with another's (and a bytes.Buffer given as Log is
// not raced on).
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// epoch is the SOURCE_DATE_EPOCH of t's build: the image's own when it
// sets one (mkosi's SourceDateEpoch=), else the build's.
func (x *executor) epoch(t *rules.Target) int64 {
	switch {
	case t.Base != nil && t.Base.SourceDateEpoch != nil:
		return *t.Base.SourceDateEpoch
	case t.Ext != nil && t.Ext.SourceDateEpoch != nil:
		return *t.Ext.SourceDateEpoch
	}
	return x.opts.Epoch
}
