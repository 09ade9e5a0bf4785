// Package eval is sxb's loading phase: it finds the workspace, evaluates the
// BUILD.star files the target patterns need (in parallel, with go.starlark.net),
// collects the declared targets and links them into a rules.Graph.
//
// Dialect: def, top-level for/if, global reassignment and set are allowed;
// while and recursion are not. Each file runs with a step limit. load() of
// "//pkg:file.star" or ":file.star" executes each file once per Load (cached
// by canonical label), reports cycles with the whole chain and freezes the
// loaded module.
package eval

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"go.starlark.net/lib/json"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"

	"github.com/sxb-build/sxb/internal/label"
	"github.com/sxb-build/sxb/internal/suggest"
	"github.com/sxb-build/sxb/rules"
	"github.com/sxb-build/sxb/starlark/mkosiproject"
	"github.com/sxb-build/sxb/starlark/workspace"
)

// DefaultMaxSteps is the per-file execution step limit.
const DefaultMaxSteps = 10_000_000

// Options configure Load.
type Options struct {
	// Dir is the current directory: the workspace is found from it and
	// relative patterns are relative to it. "" means the process's.
	Dir string
	// Patterns are the target patterns (see label.ParsePattern).
	Patterns []string
	// Stderr receives print() output; nil means os.Stderr.
	Stderr io.Writer
	// MaxSteps is the per-file step limit; 0 means DefaultMaxSteps.
	MaxSteps uint64
	// Jobs bounds parallel BUILD.star evaluations; 0 means GOMAXPROCS.
	Jobs int
	// MkosiProject reads an mkosi project into targets (for
	// mkosi_project() and packages that are mkosi project directories);
	// nil means mkosiproject.Targets.
	MkosiProject func(mkosiproject.Request) ([]*rules.Target, error)
	// Profiles are mkosi profiles enabled in every mkosi project loaded,
	// in addition to the configured ones (mkosi --profile).
	Profiles []string
}

// fileOptions is the sxb Starlark dialect.
var fileOptions = &syntax.FileOptions{
	Set:             true,
	While:           false,
	TopLevelControl: true,
	GlobalReassign:  true,
	Recursion:       false,
}

// Load evaluates the packages opts.Patterns need and returns the target
// graph. Malformed patterns are *label.Error; problems in files are
// *diag.Diagnostic, or diag.ErrorList when there are several; an interrupted
// evaluation returns an error wrapping ctx.Err().
func Load(ctx context.Context, opts Options) (*rules.Graph, error) {
	dir := opts.Dir
	if dir == "" {
		var err error
		if dir, err = os.Getwd(); err != nil {
			return nil, err
		}
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	root, err := workspace.FindRoot(dir)
	if err != nil {
		return nil, err
	}
	cwdPkg, err := workspace.RelPackage(root, dir)
	if err != nil {
		return nil, err
	}
	pats := make([]label.Pattern, 0, len(opts.Patterns))
	implied := map[int]bool{}
	for i, s := range opts.Patterns {
		p, err := label.ParsePattern(s, cwdPkg)
		if err != nil {
			return nil, err
		}
		if !p.Recursive && !p.All && !strings.Contains(s, ":") {
			implied[i] = true
		}
		pats = append(pats, p)
	}
	l := newLoader(ctx, opts, root, dir)
	l.impliedName = implied
	return l.run(pats)
}

// loader is the state of one Load.
type loader struct {
	ctx      context.Context
	root     string
	cwd      string
	stderr   io.Writer
	maxSteps uint64
	jobs     int
	mkosi    func(mkosiproject.Request) ([]*rules.Target, error)
	profiles []string

	printMu sync.Mutex

	mu      sync.Mutex
	modules map[string]*module      // by canonical label
	files   map[string]*syntax.File // parsed files, by display name
	srcs    map[string][]byte       // sources, by display name
	pkgs    map[string]*pkgState    // evaluated packages
	// impliedName marks the patterns (by index) written without a target
	// name ("//pkg"): for an mkosi package they name all its images.
	impliedName map[int]bool
	calls       map[string]map[posKey]*syntax.CallExpr
}

// module is one load()ed file, or (not cached) one BUILD.star evaluation;
// waitingOn links form the load chain used for cycle detection.
type module struct {
	label     label.Label
	done      chan struct{}
	globals   starlark.StringDict
	err       error
	waitingOn *module
}

// pkgState is an evaluated (or evaluating) package.
type pkgState struct {
	name    string // package path
	dir     string // absolute directory
	file    string // display name of its BUILD.star
	decls   []*decl
	byName  map[string]*decl
	outputs map[string]*decl // published file name -> the extension writing it
	err     error
	missing bool // no BUILD.star
}

// decl is a declared target with what is needed to point at its source.
type decl struct {
	t *rules.Target
	// call is the innermost user frame of the rule call (for attribute
	// positions); stack are all user frames, outermost first.
	call  syntax.Position
	stack []starlark.CallFrame
	// base is the label written in `base`, as written.
	baseText string
}

func newLoader(ctx context.Context, opts Options, root, cwd string) *loader {
	l := &loader{
		ctx:      ctx,
		root:     root,
		cwd:      cwd,
		stderr:   opts.Stderr,
		maxSteps: opts.MaxSteps,
		jobs:     opts.Jobs,
		mkosi:    opts.MkosiProject,
		profiles: opts.Profiles,
		modules:  map[string]*module{},
		files:    map[string]*syntax.File{},
		srcs:     map[string][]byte{},
		pkgs:     map[string]*pkgState{},
		calls:    map[string]map[posKey]*syntax.CallExpr{},
	}
	if l.stderr == nil {
		l.stderr = os.Stderr
	}
	if l.mkosi == nil {
		l.mkosi = mkosiproject.Targets
	}
	if l.maxSteps == 0 {
		l.maxSteps = DefaultMaxSteps
	}
	if l.jobs <= 0 {
		l.jobs = runtime.GOMAXPROCS(0)
	}
	return l
}

// display returns the name files are shown with: relative to the current
// directory.
func (l *loader) display(abs string) string {
	if rel, err := filepath.Rel(l.cwd, abs); err == nil {
		return rel
	}
	return abs
}

func (l *loader) pkgDir(pkg string) string {
	return filepath.Join(l.root, filepath.FromSlash(pkg))
}

// run evaluates what the patterns need and builds the graph.
func (l *loader) run(pats []label.Pattern) (*rules.Graph, error) {
	// Which packages the patterns name.
	var want []string
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			want = append(want, p)
		}
	}
	for _, p := range pats {
		if p.Recursive {
			ps, err := workspace.Packages(l.root, p.Pkg)
			if err != nil {
				return nil, fmt.Errorf("pattern %s: %w", p, err)
			}
			if len(ps) == 0 {
				return nil, fmt.Errorf("pattern %s matches no packages", p)
			}
			for _, q := range ps {
				add(q)
			}
			continue
		}
		if !workspace.IsPackage(l.root, p.Pkg) {
			return nil, fmt.Errorf("pattern %s: no such package //%s (no %s or mkosi project in %s)", p, p.Pkg, workspace.BuildFile, l.display(l.pkgDir(p.Pkg)))
		}
		add(p.Pkg)
	}
	if err := l.evalPackages(want); err != nil {
		return nil, err
	}
	// "//dir" of an mkosi package is all its images (as "mkosi build" in
	// dir), unless an image is called like the directory.
	for i, p := range pats {
		if ps := l.pkgs[p.Pkg]; l.impliedName[i] && ps != nil && ps.byName[p.Name] == nil && workspace.IsMkosiPackage(l.root, p.Pkg) {
			pats[i].Name, pats[i].All = "", true
		}
	}
	// Roots.
	var roots []label.Label
	rootSeen := map[string]bool{}
	named := map[string]bool{}
	for _, p := range pats {
		matched := false
		pkgs := []string{p.Pkg}
		if p.Recursive {
			pkgs, _ = workspace.Packages(l.root, p.Pkg)
		}
		for _, pk := range pkgs {
			ps := l.pkgs[pk]
			for _, d := range ps.decls {
				if p.Matches(d.t.Label) {
					matched = true
					if !p.Recursive && !p.All {
						named[d.t.Label.String()] = true
					}
					if k := d.t.Label.String(); !rootSeen[k] {
						rootSeen[k] = true
						roots = append(roots, d.t.Label)
					}
				}
			}
		}
		if !matched && !p.Recursive && !p.All {
			ps := l.pkgs[p.Pkg]
			msg := fmt.Sprintf("pattern %s: no target %q in package //%s", p, p.Name, p.Pkg)
			if s := suggest.Nearest(p.Name, ps.names()); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			return nil, errors.New(msg)
		}
	}
	sort.Slice(roots, func(i, j int) bool { return roots[i].Less(roots[j]) })
	g, err := l.link()
	if err != nil {
		return nil, err
	}
	g.Roots, g.Named = roots, named
	return g, nil
}

func (ps *pkgState) names() []string {
	out := make([]string, 0, len(ps.decls))
	for _, d := range ps.decls {
		out = append(out, d.t.Label.Name)
	}
	return out
}

// evalPackages evaluates the packages not yet evaluated, in parallel, and
// returns their errors (sorted by package) as one error.
func (l *loader) evalPackages(pkgs []string) error {
	var todo []*pkgState
	l.mu.Lock()
	for _, p := range pkgs {
		if _, ok := l.pkgs[p]; ok {
			continue
		}
		ps := &pkgState{name: p, dir: l.pkgDir(p), byName: map[string]*decl{}}
		ps.file = l.display(workspace.PackageFile(l.root, p))
		l.pkgs[p] = ps
		todo = append(todo, ps)
	}
	l.mu.Unlock()
	work := make(chan *pkgState)
	var wg sync.WaitGroup
	n := min(l.jobs, len(todo))
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ps := range work {
				ps.err = l.evalPackage(ps)
			}
		}()
	}
	for _, ps := range todo {
		work <- ps
	}
	close(work)
	wg.Wait()
	if err := l.ctx.Err(); err != nil {
		return fmt.Errorf("evaluation interrupted: %w", err)
	}
	var errs []error
	sort.Slice(todo, func(i, j int) bool { return todo[i].name < todo[j].name })
	for _, ps := range todo {
		if ps.err != nil {
			errs = append(errs, ps.err)
		}
	}
	return joinErrors(errs)
}

// Thread-local keys.
const (
	localModule = "sxb.module"
	localPkg    = "sxb.pkg"
	localLoader = "sxb.loader"
)

// newThread makes a thread for one file, cancelled with l.ctx.
func (l *loader) newThread(name string, m *module, ps *pkgState) (*starlark.Thread, func() bool) {
	th := &starlark.Thread{
		Name:  name,
		Load:  l.load,
		Print: l.print,
	}
	th.SetMaxExecutionSteps(l.maxSteps)
	th.SetLocal(localModule, m)
	th.SetLocal(localLoader, l)
	if ps != nil {
		th.SetLocal(localPkg, ps)
	}
	stop := context.AfterFunc(l.ctx, func() { th.Cancel("interrupted") })
	return th, stop
}

func (l *loader) print(th *starlark.Thread, msg string) {
	pos := ""
	if th.CallStackDepth() > 1 {
		p := th.CallFrame(1).Pos
		pos = fmt.Sprintf("%s:%d: ", p.Filename(), p.Line)
	}
	l.printMu.Lock()
	defer l.printMu.Unlock()
	fmt.Fprintf(l.stderr, "%s%s\n", pos, msg)
}

// parse reads, parses and compiles a file, remembering its syntax tree and
// source for diagnostics.
func (l *loader) parse(abs string) (*starlark.Program, string, error) {
	name := l.display(abs)
	src, err := os.ReadFile(abs)
	if err != nil {
		return nil, name, err
	}
	f, err := fileOptions.Parse(name, src, 0)
	l.mu.Lock()
	l.srcs[name] = src
	if f != nil {
		l.files[name] = f
	}
	l.mu.Unlock()
	if err != nil {
		return nil, name, l.convert(err)
	}
	prog, err := starlark.FileProgram(f, predeclared.Has)
	if err != nil {
		return nil, name, l.convert(err)
	}
	return prog, name, nil
}

// evalPackage executes one BUILD.star.
func (l *loader) evalPackage(ps *pkgState) error {
	if l.ctx.Err() != nil {
		return nil
	}
	if workspace.IsMkosiPackage(l.root, ps.name) {
		return l.evalMkosiPackage(ps)
	}
	abs := filepath.Join(ps.dir, workspace.BuildFile)
	if err := l.insideWorkspace(abs); err != nil {
		return fmt.Errorf("%s: %w", l.display(abs), err)
	}
	prog, _, err := l.parse(abs)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			ps.missing = true
			return fmt.Errorf("reading //%s: %w", ps.name, err)
		}
		return err
	}
	m := &module{label: label.Label{Pkg: ps.name, Name: workspace.BuildFile}}
	th, stop := l.newThread(ps.file, m, ps)
	defer stop()
	_, err = prog.Init(th, predeclared)
	if err != nil {
		return l.convert(err)
	}
	return nil
}

// cycleError is a load cycle.
type cycleError struct{ chain []string }

// Error returns the chain.
func (e *cycleError) Error() string { return "load cycle: " + strings.Join(e.chain, " -> ") }

// load implements load() for thread th.
func (l *loader) load(th *starlark.Thread, spec string) (starlark.StringDict, error) {
	from, _ := th.Local(localModule).(*module)
	lb, err := label.ParseFile(spec, from.label.Pkg)
	if err != nil {
		return nil, err
	}
	if !strings.HasSuffix(lb.Name, ".star") {
		return nil, fmt.Errorf("%s: only .star files can be loaded", lb)
	}
	if path.Base(lb.Name) == workspace.BuildFile {
		return nil, fmt.Errorf("%s: a BUILD.star file cannot be loaded", lb)
	}
	key := lb.String()
	l.mu.Lock()
	m, ok := l.modules[key]
	if ok {
		// Does waiting for m close a chain back to us?
		for e := m; e != nil; e = e.waitingOn {
			if e == from {
				chain := []string{m.label.String()}
				for c := m.waitingOn; c != nil && c != m; c = c.waitingOn {
					chain = append(chain, c.label.String())
				}
				chain = append(chain, m.label.String())
				l.mu.Unlock()
				return nil, &cycleError{chain: chain}
			}
		}
		from.waitingOn = m
		l.mu.Unlock()
		<-m.done
	} else {
		m = &module{label: lb, done: make(chan struct{})}
		l.modules[key] = m
		from.waitingOn = m
		l.mu.Unlock()
		m.globals, m.err = l.execModule(m)
		close(m.done)
	}
	l.mu.Lock()
	from.waitingOn = nil
	l.mu.Unlock()
	return m.globals, m.err
}

// insideWorkspace refuses a file that symbolic links place outside the
// workspace (a missing file is left to the caller to report).
func (l *loader) insideWorkspace(abs string) error {
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil
	}
	rootReal, err := filepath.EvalSymlinks(l.root)
	if err != nil {
		return err
	}
	if rel, err := filepath.Rel(rootReal, real); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("a symbolic link leading out of the workspace")
	}
	return nil
}

// execModule executes a load()ed file in its own thread.
func (l *loader) execModule(m *module) (starlark.StringDict, error) {
	abs := filepath.Join(l.pkgDir(m.label.Pkg), filepath.FromSlash(m.label.Name))
	if err := l.insideWorkspace(abs); err != nil {
		return nil, fmt.Errorf("%s: %w", m.label, err)
	}
	prog, name, err := l.parse(abs)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("no such file %s", name)
		}
		return nil, err
	}
	th, stop := l.newThread(name, m, nil)
	defer stop()
	g, err := prog.Init(th, predeclared)
	g.Freeze()
	if err != nil {
		return nil, l.convert(err)
	}
	return g, nil
}

// predeclared are the names every BUILD.star and .star file sees.
var predeclared = starlark.StringDict{
	"struct":        starlark.NewBuiltin("struct", starlarkstruct.Make),
	"json":          json.Module,
	"glob":          starlark.NewBuiltin("glob", globBuiltin),
	"package_name":  starlark.NewBuiltin("package_name", packageName),
	"base_image":    starlark.NewBuiltin(rules.KindBaseImage, ruleBuiltin),
	"sysext":        starlark.NewBuiltin(rules.KindSysext, ruleBuiltin),
	"image_test":    starlark.NewBuiltin(rules.KindImageTest, imageTestBuiltin),
	"tree":          starlark.NewBuiltin(rules.KindTree, treeBuiltin),
	"confext":       starlark.NewBuiltin(rules.KindConfext, ruleBuiltin),
	"partition":     starlark.NewBuiltin("partition", partitionBuiltin),
	"mkosi_project": starlark.NewBuiltin("mkosi_project", mkosiBuiltin),
}

// currentPkg returns the package a BUILD-time builtin runs for.
func currentPkg(th *starlark.Thread, fn string) (*pkgState, error) {
	ps, _ := th.Local(localPkg).(*pkgState)
	if ps == nil {
		return nil, fmt.Errorf("%s() can only be called while a BUILD.star is evaluated (a .star file's top level runs when it is loaded; call it from a function instead)", fn)
	}
	return ps, nil
}

func loaderOf(th *starlark.Thread) *loader {
	return th.Local(localLoader).(*loader)
}

func packageName(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackArgs(b.Name(), args, kwargs); err != nil {
		return nil, err
	}
	ps, err := currentPkg(th, b.Name())
	if err != nil {
		return nil, err
	}
	return starlark.String(ps.name), nil
}
