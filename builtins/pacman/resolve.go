package pacman

import (
	"cmp"
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/sxb-build/sxb/builtins/fetch"
	"github.com/sxb-build/sxb/builtins/installer"
	"github.com/sxb-build/sxb/internal/suggest"
)

// assumeInstalled are dependencies taken as satisfied, as mkosi passes
// "--assume-installed initramfs" to pacman: the kernel package depends on
// an initramfs generator an image does not need.
var assumeInstalled = []Dep{{Name: "initramfs"}}

// UnsatisfiableError says why a request cannot be resolved, naming the
// dependency chain: "fx-tool -> fx-lib>=9 -> no package satisfies it".
type UnsatisfiableError struct {
	// Chain starts at the requested target and lists each dependency as
	// the package writes it.
	Chain  []string
	Reason string
}

// Error formats the chain and the reason.
func (e *UnsatisfiableError) Error() string {
	return strings.Join(append(append([]string{}, e.Chain...), e.Reason), " -> ")
}

// cand is a sync package taking part in the transaction.
type cand struct {
	ref      ref
	p        *Pkg
	explicit bool
}

// solver resolves like pacman -S --needed --noconfirm: targets in order,
// then the dependencies of each target depth first, then conflicts.
type solver struct {
	u      *universe
	base   []*installed
	baseBy map[string]*installed
	list   []*cand // the transaction, in the order pacman adds packages
	byName map[string]*cand
	// preferred are the targets: a dependency they satisfy is not looked
	// up in the repositories.
	preferred []*cand

	// for file targets
	ctx   context.Context
	fetch *fetch.Fetcher
	kr    *Keyring
	files map[string]bool
	// the base's files, read for file targets
	baseDB    string
	baseFiles map[string]string
}

func newSolver(u *universe, base []*installed) *solver {
	s := &solver{u: u, base: base, baseBy: map[string]*installed{}, byName: map[string]*cand{}}
	for _, b := range base {
		s.baseBy[b.Name] = b
	}
	return s
}

// Resolve computes the Plan for req.
func Resolve(ctx context.Context, req Request) (*Plan, error) {
	arch, err := req.validate()
	if err != nil {
		return nil, fmt.Errorf("resolving packages: %w", err)
	}
	req.Progress = serialize(req.Progress)
	plan := &Plan{Distribution: "arch", Release: "rolling", Arch: arch, keyringDir: req.KeyringDir,
		keyring: req.Keyring, insecure: req.Insecure, cacheDir: req.CacheDir, baseRoot: req.BaseRoot, now: req.Now}
	plan.baseDB = cmp.Or(req.BaseDB, req.BaseRoot)
	var base []*installed
	if req.BaseRoot != "" && !req.BaseImage {
		if base, err = readLocalDB(plan.baseDB); err != nil {
			return nil, err
		}
		for _, b := range base {
			plan.Base = append(plan.Base, b.Name+" "+b.Version)
		}
	}
	targets := req.targets()
	if req.Lock != nil && len(req.Lock.Packages) > 0 {
		p, err := planFromLock(plan, &req, base)
		if err != nil {
			return nil, err
		}
		req.Progress(installer.Event{Kind: installer.Resolved, Count: len(p.Packages)})
		return p, nil
	}
	var kr *Keyring
	if !req.Insecure {
		if kr, err = LoadKeyring(req.KeyringDir, req.Keyring, req.now()); err != nil {
			return nil, fmt.Errorf("resolving packages: %w", err)
		}
	}
	f := &fetch.Fetcher{CacheDir: req.CacheDir}
	u, err := loadUniverse(ctx, &req, arch, kr, f)
	if err != nil {
		return nil, fmt.Errorf("reading repositories: %w", err)
	}
	s := newSolver(u, base)
	s.ctx, s.fetch, s.kr, s.baseDB = ctx, f, kr, plan.baseDB
	s.files = map[string]bool{}
	for _, t := range targets {
		if strings.HasPrefix(t, "/") {
			s.files[strings.TrimPrefix(path.Clean(t), "/")] = true
		}
	}
	if err := s.solve(targets); err != nil {
		return nil, err
	}
	for _, c := range s.list {
		db := u.dbs[c.ref.db]
		p := c.p
		if p.Filename == "" || strings.ContainsAny(p.Filename, "/\\") || p.Filename == "." || p.Filename == ".." {
			return nil, fmt.Errorf("repository %s: package %s has a bad %%FILENAME%% %q", db.name, p.Name, p.Filename)
		}
		if len(p.SHA256) != 64 {
			return nil, fmt.Errorf("repository %s: package %s has no %%SHA256SUM%% (sxb checks every package against it)", db.name, p.Name)
		}
		plan.Packages = append(plan.Packages, Package{Name: p.Name, Version: p.Version, Arch: p.Arch, Repo: db.name,
			URL: db.server + "/" + p.Filename, Size: p.CSize, SHA256: p.SHA256, Signature: p.PGPSig, Explicit: c.explicit})
	}
	sort.Slice(plan.Packages, func(a, b int) bool { return plan.Packages[a].Name < plan.Packages[b].Name })
	plan.Requested = append([]string{}, targets...)
	sort.Strings(plan.Requested)
	req.Progress(installer.Event{Kind: installer.Resolved, Count: len(plan.Packages)})
	return plan, nil
}

func (r *Request) validate() (string, error) {
	if r.Release != "" && r.Release != "rolling" {
		return "", fmt.Errorf("release %q: Arch Linux has one release, \"rolling\"", r.Release)
	}
	if r.CacheDir == "" {
		return "", fmt.Errorf("no cache directory given")
	}
	return PacmanArch(r.Arch)
}

// targets returns the request's targets, trimmed and without duplicates,
// "filesystem" first for a base image.
func (r *Request) targets() []string {
	var out []string
	seen := map[string]bool{}
	add := func(t string) {
		t = strings.TrimSpace(t)
		if t != "" && !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	if r.BaseImage {
		add("filesystem")
	}
	for _, t := range r.Packages {
		add(t)
	}
	return out
}

// solve runs the resolution of targets into s.list.
func (s *solver) solve(targets []string) error {
	for _, t := range targets {
		cs, err := s.target(t)
		if err != nil {
			return err
		}
		for _, c := range cs {
			if o := s.preferredByName(c.p.Name); o == nil {
				s.preferred = append(s.preferred, c)
			}
		}
	}
	for _, c := range s.preferred {
		if err := s.resolveDeps(c, []string{c.p.Name}); err != nil {
			return err
		}
	}
	if err := s.innerConflicts(); err != nil {
		return err
	}
	return s.check()
}

func (s *solver) preferredByName(name string) *cand {
	for _, c := range s.preferred {
		if c.p.Name == name {
			return c
		}
	}
	return nil
}

// target resolves one command-line target as pacman's process_targname:
// a package satisfying it (by name first, in repository order, then the
// first provider), else a group. Targets the base has are skipped, as
// --needed does.
func (s *solver) target(t string) ([]*cand, error) {
	if strings.HasPrefix(t, "/") {
		return s.fileTarget(t)
	}
	dbs := make([]int, len(s.u.dbs))
	for i := range dbs {
		dbs[i] = i
	}
	if repo, name, ok := strings.Cut(t, "/"); ok {
		dbs = nil
		for i, db := range s.u.dbs {
			if db.name == repo {
				dbs = []int{i}
			}
		}
		if dbs == nil {
			return nil, &UnsatisfiableError{Chain: []string{t}, Reason: fmt.Sprintf("no repository %q (read: %s)", repo, s.u.where())}
		}
		t = name
	}
	d, err := ParseDep(t)
	if err != nil {
		return nil, &UnsatisfiableError{Chain: []string{t}, Reason: err.Error()}
	}
	if r, ok := s.satisfier(d, dbs, nil); ok {
		p := s.u.pkg(r)
		if s.baseBy[p.Name] != nil {
			return nil, nil
		}
		return []*cand{{ref: r, p: p, explicit: true}}, nil
	}
	for _, b := range s.base {
		if d.satisfiedBy(b.Name, b.Version, b.Provides) {
			return nil, nil
		}
	}
	if d.Op == Any {
		var out []*cand
		seen := map[string]bool{}
		for _, r := range s.u.groups[d.Name] {
			if !contains(dbs, r.db) {
				continue
			}
			p := s.u.pkg(r)
			if seen[p.Name] || s.baseBy[p.Name] != nil {
				seen[p.Name] = true
				continue
			}
			seen[p.Name] = true
			out = append(out, &cand{ref: r, p: p, explicit: true})
		}
		if len(seen) > 0 {
			return out, nil
		}
	}
	return nil, &UnsatisfiableError{Chain: []string{t}, Reason: "target not found in " + s.u.where() + s.hint(d.Name)}
}

func contains(l []int, v int) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

// fileTarget resolves an absolute path to the package shipping it (first
// repository, then first name), from the files databases.
func (s *solver) fileTarget(t string) ([]*cand, error) {
	rel := strings.TrimPrefix(path.Clean(t), "/")
	if s.baseFiles == nil && len(s.base) > 0 {
		var err error
		if s.baseFiles, err = installedFiles(s.baseDB, s.base); err != nil {
			return nil, err
		}
	}
	if s.baseFiles[rel] != "" {
		return nil, nil
	}
	for i, db := range s.u.dbs {
		owners, err := db.fileOwners(s.ctx, s.fetch, s.kr, rel, s.files)
		if err != nil {
			return nil, err
		}
		sort.Strings(owners)
		for _, o := range owners {
			if j, ok := db.byName[o]; ok {
				p := &db.pkgs[j]
				if s.baseBy[p.Name] != nil {
					return nil, nil
				}
				return []*cand{{ref: ref{i, j}, p: p, explicit: true}}, nil
			}
		}
	}
	return nil, &UnsatisfiableError{Chain: []string{t}, Reason: "no package in " + s.u.where() + " ships this file"}
}

// satisfier finds the package pacman's resolvedep picks for d among the
// repositories dbs: the first with d's name and a fitting version, else
// the first provider (repository order, then name), or a provider the
// base has installed. Names in excluding are skipped.
func (s *solver) satisfier(d Dep, dbs []int, excluding map[string]bool) (ref, bool) {
	for _, i := range dbs {
		db := s.u.dbs[i]
		if j, ok := db.byName[d.Name]; ok && d.versionOK(db.pkgs[j].Version) && !excluding[d.Name] {
			return ref{i, j}, true
		}
	}
	var first *ref
	for _, r := range s.u.provides[d.Name] {
		if !contains(dbs, r.db) {
			continue
		}
		p := s.u.pkg(r)
		if p.Name == d.Name || excluding[p.Name] || !d.providedBy(p.Provides) {
			continue
		}
		if s.baseBy[p.Name] != nil {
			return r, true
		}
		if first == nil {
			r := r
			first = &r
		}
	}
	if first != nil {
		return *first, true
	}
	return ref{}, false
}

// satisfiedInstalled reports whether the base or an assumed package meets d.
func (s *solver) satisfiedInstalled(d Dep) bool {
	for _, b := range s.base {
		if s.byName[b.Name] == nil && d.satisfiedBy(b.Name, b.Version, b.Provides) {
			return true
		}
	}
	return d.providedBy(assumeInstalled)
}

// inList returns the package of the transaction meeting d.
func inList(list []*cand, d Dep) *cand {
	for _, c := range list {
		if d.satisfiedBy(c.p.Name, c.p.Version, c.p.Provides) {
			return c
		}
	}
	return nil
}

// resolveDeps adds c to the transaction, then what its dependencies need,
// depth first, as _alpm_resolvedeps: a dependency is met by the
// package itself, the base, the transaction so far, another target, or
// else the first satisfier in the repositories.
func (s *solver) resolveDeps(c *cand, chain []string) error {
	if s.byName[c.p.Name] != nil {
		return nil
	}
	s.list = append(s.list, c)
	s.byName[c.p.Name] = c
	for _, d := range c.p.Depends {
		if d.satisfiedBy(c.p.Name, c.p.Version, c.p.Provides) || s.satisfiedInstalled(d) || inList(s.list, d) != nil {
			continue
		}
		next := inList(s.preferred, d)
		if next == nil {
			excl := make(map[string]bool, len(s.list))
			for _, l := range s.list {
				excl[l.p.Name] = true
			}
			all := make([]int, len(s.u.dbs))
			for i := range all {
				all[i] = i
			}
			r, ok := s.satisfier(d, all, excl)
			if !ok {
				return &UnsatisfiableError{Chain: append(append([]string{}, chain...), d.String()), Reason: s.why(d)}
			}
			next = &cand{ref: r, p: s.u.pkg(r)}
		}
		if err := s.resolveDeps(next, append(append([]string{}, chain...), d.String())); err != nil {
			return err
		}
	}
	return nil
}

// why explains an unmet dependency: the versions there are, or that
// nothing has the name.
func (s *solver) why(d Dep) string {
	var have []string
	for _, db := range s.u.dbs {
		if j, ok := db.byName[d.Name]; ok {
			have = append(have, fmt.Sprintf("%s has %s %s", db.name, d.Name, db.pkgs[j].Version))
		}
	}
	for _, r := range s.u.provides[d.Name] {
		p := s.u.pkg(r)
		for _, pv := range p.Provides {
			if pv.Name == d.Name {
				have = append(have, fmt.Sprintf("%s provides %s", p.Name, pv))
			}
		}
	}
	if b := s.baseBy[d.Name]; b != nil {
		have = append(have, fmt.Sprintf("the base has %s %s", b.Name, b.Version))
	}
	if len(have) == 0 {
		return "no package satisfies it in " + s.u.where() + s.hint(d.Name)
	}
	return "no package satisfies it (" + strings.Join(have, "; ") + ")"
}

// hint suggests a near package name, or the package that replaces name.
func (s *solver) hint(name string) string {
	for _, db := range s.u.dbs {
		for _, p := range db.pkgs {
			for _, r := range p.Replaces {
				if r.Name == name {
					return fmt.Sprintf(" (%s/%s replaces it)", db.name, p.Name)
				}
			}
		}
	}
	best, bestD := "", 3
	for _, db := range s.u.dbs {
		for n := range db.byName {
			if d := suggest.Levenshtein(name, n); d < bestD || d == bestD && n < best {
				best, bestD = n, d
			}
		}
		for g := range s.u.groups {
			if d := suggest.Levenshtein(name, g); d < bestD || d == bestD && g < best {
				best, bestD = g, d
			}
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// conflict is one package of the transaction conflicting with another
// (or with a base package).
type conflict struct {
	a, b string
	dep  Dep
}

// innerConflicts settles conflicts between packages of the transaction as
// alpm_sync_prepare does: when one of the two is (or provides) the other's
// name, the other is dropped; otherwise the request cannot be installed.
func (s *solver) innerConflicts() error {
	var found []conflict
	seen := map[[2]string]bool{}
	for _, a := range s.list {
		for _, d := range a.p.Conflicts {
			for _, b := range s.list {
				if a.p.Name == b.p.Name || !d.satisfiedBy(b.p.Name, b.p.Version, b.p.Provides) {
					continue
				}
				k := [2]string{min(a.p.Name, b.p.Name), max(a.p.Name, b.p.Name)}
				if seen[k] {
					continue
				}
				seen[k] = true
				found = append(found, conflict{a.p.Name, b.p.Name, d})
			}
		}
	}
	for _, c := range found {
		a, b := s.byName[c.a], s.byName[c.b]
		if a == nil || b == nil {
			continue
		}
		var drop *cand
		switch {
		case Dep{Name: b.p.Name}.satisfiedBy(a.p.Name, a.p.Version, a.p.Provides):
			drop = b
		case Dep{Name: a.p.Name}.satisfiedBy(b.p.Name, b.p.Version, b.p.Provides):
			drop = a
		default:
			return &UnsatisfiableError{Chain: []string{a.p.Name}, Reason: fmt.Sprintf("conflicts with %s %s (%s), which the request also needs: unresolvable package conflict", b.p.Name, b.p.Version, c.dep)}
		}
		delete(s.byName, drop.p.Name)
		for i, l := range s.list {
			if l == drop {
				s.list = append(s.list[:i], s.list[i+1:]...)
				break
			}
		}
	}
	return nil
}

// check refuses what pacman --noconfirm refuses after resolution:
// packages of another architecture, conflicts with the base (pacman would
// ask to remove the base's package; an extension cannot), and
// dependencies the transaction leaves unmet, its own or the base's.
func (s *solver) check() error {
	for _, c := range s.list {
		if c.p.Arch != "any" && c.p.Arch != s.u.arch {
			return &UnsatisfiableError{Chain: []string{c.p.Name}, Reason: fmt.Sprintf("architecture %s is not %s", c.p.Arch, s.u.arch)}
		}
		for _, b := range s.base {
			if s.byName[b.Name] != nil {
				continue // upgraded by the transaction
			}
			for _, d := range c.p.Conflicts {
				if d.satisfiedBy(b.Name, b.Version, b.Provides) {
					return &UnsatisfiableError{Chain: []string{c.p.Name}, Reason: fmt.Sprintf("conflicts with %s %s (%s) of the base: an extension cannot remove a base package", b.Name, b.Version, d)}
				}
			}
			for _, d := range b.Conflicts {
				if d.satisfiedBy(c.p.Name, c.p.Version, c.p.Provides) {
					return &UnsatisfiableError{Chain: []string{c.p.Name}, Reason: fmt.Sprintf("the base's %s %s conflicts with it (%s)", b.Name, b.Version, d)}
				}
			}
		}
	}
	met := func(d Dep) bool { return s.satisfiedInstalled(d) || inList(s.list, d) != nil }
	for _, c := range s.list {
		for _, d := range c.p.Depends {
			if !met(d) {
				return &UnsatisfiableError{Chain: []string{c.p.Name, d.String()}, Reason: "unmet once conflicting packages were dropped"}
			}
		}
	}
	for _, b := range s.base {
		if s.byName[b.Name] != nil {
			continue
		}
		for _, d := range b.Depends {
			if !met(d) {
				return &UnsatisfiableError{Chain: []string{b.Name + " (base)", d.String()}, Reason: "the transaction would break this dependency of the base"}
			}
		}
	}
	return nil
}

// serialize returns fn wrapped so calls never overlap (a no-op for nil).
func serialize(fn func(installer.Event)) func(installer.Event) {
	if fn == nil {
		return func(installer.Event) {}
	}
	var mu sync.Mutex
	return func(e installer.Event) {
		mu.Lock()
		defer mu.Unlock()
		fn(e)
	}
}
