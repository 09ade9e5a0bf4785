// Package deb installs Debian and Ubuntu packages into a directory tree
// natively: no apt, no dpkg, no root.
//
// Resolve reads a repository (signed InRelease verified against a keyring,
// Packages indexes checked against the Release hashes), resolves the
// request the way apt does and returns a Plan: the exact package files to
// install. Install downloads them into a shared cache and unpacks them into
// a root directory, recording ownership, modes and device nodes in a
// tree.Meta, and writes a dpkg database (var/lib/dpkg/status and
// info/<pkg>.list) so later layers can resolve against the result.
//
// Maintainer scripts are never run. What that leaves out, and what Install
// produces natively instead, is described on Install.
package deb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sxb-build/sxb/builtins/fetch"
	"github.com/sxb-build/sxb/builtins/installer"
	"github.com/sxb-build/sxb/builtins/tree"
)

// Request says what to install.
type Request struct {
	// Distribution is "debian" (default) or "ubuntu".
	Distribution string
	// Release is the codename, for example "bookworm" or "noble".
	Release string
	// Arch is the architecture, as systemd names it ("x86-64", "arm64")
	// or as Debian does ("amd64").
	Arch string
	// Mirror overrides the distribution's default mirror; file:// works.
	Mirror string
	// SecurityMirror overrides where <release>-security is read from;
	// "" means the distribution's security mirror (also when Mirror is an
	// http(s) mirror, as most mirrors do not carry security updates), or
	// Mirror itself when Mirror is a file:// URL.
	SecurityMirror string
	// Suites, when set, replaces the default <release>, <release>-updates,
	// <release>-security (all read from Mirror).
	Suites []string
	// Components default to ["main"].
	Components []string
	// Sources are more repositories to read, each with its own URI,
	// suites, components and keyring, as apt's sources.list entries
	// (see ParseSources); NoDefaultSources reads only them.
	Sources          []Source
	NoDefaultSources bool
	// Pins are apt preferences (ParsePreferences): they choose each
	// package's candidate version as apt's policy does.
	Pins []Pin
	// Packages are the package names to install.
	Packages []string
	// WithRecommends also installs Recommends.
	WithRecommends bool
	// BaseImage adds every Essential: yes package, as mmdebstrap's
	// "essential" variant and mkosi do for a base image.
	BaseImage bool
	// WithRequired adds the Priority: required packages too (mmdebstrap's
	// "required"/minbase).
	WithRequired bool
	// BaseRoot, when set, is a tree whose var/lib/dpkg/status lists
	// installed packages: they satisfy dependencies and are not installed
	// again.
	BaseRoot string
	// Keyring is a keyring file (binary or armored) or directory; "" uses
	// the distribution's archive keyring from the usual host locations.
	Keyring string
	// Insecure accepts unsigned or badly signed repositories. Index and
	// package hashes are still checked against the (untrusted) Release.
	Insecure bool
	// CacheDir holds downloads and parsed indexes; it may be shared by
	// concurrent builds. Empty means fetch.DefaultCacheDir().
	CacheDir string
	// Lock, when not nil and not empty, pins the result: the plan is the
	// lock's packages, and every requested package must be in it.
	Lock *Lock
	// Progress, when set, receives resolution events; calls are
	// serialized.
	Progress func(installer.Event)
	// Indexes, when set, is shared by the Requests of one build: what
	// one read of the repositories the others reuse (see Indexes).
	Indexes *Indexes
	// Now is the time signatures and Valid-Until are checked at; zero
	// means the current time.
	Now time.Time
}

func (r *Request) now() time.Time {
	if r.Now.IsZero() {
		return time.Now()
	}
	return r.Now
}

// Package is one package file of a Plan.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
	Source  string `json:"source,omitempty"`
	// URL is where the .deb is downloaded from.
	URL    string `json:"url"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Plan is the resolved set of packages to install, sorted by name. It is
// deterministic for the same archive state, so its Key can go into a build
// action key before anything is downloaded.
type Plan struct {
	Distribution string    `json:"distribution"`
	Release      string    `json:"release"`
	Arch         string    `json:"arch"`
	Packages     []Package `json:"packages"`
	// Base lists "name version" of the base packages the plan was
	// resolved against (they are not installed).
	Base []string `json:"base,omitempty"`
	// CacheDir is the download cache Install uses.
	CacheDir string `json:"-"`

	baseStatus []byte
	baseRoot   string
}

// Key returns a stable hash of the plan (hex SHA256 of its JSON form).
func (p *Plan) Key() string {
	b, _ := json.Marshal(p)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Names returns the package names of the plan, sorted.
func (p *Plan) Names() []string {
	var out []string
	for _, pk := range p.Packages {
		out = append(out, pk.Name)
	}
	return out
}

func (r *Request) validate() (string, error) {
	if r.Distribution == "" {
		r.Distribution = "debian"
	}
	if r.Distribution != "debian" && r.Distribution != "ubuntu" {
		return "", fmt.Errorf("distribution %q: want \"debian\" or \"ubuntu\"", r.Distribution)
	}
	if r.Release == "" && len(r.Suites) == 0 {
		return "", fmt.Errorf("no release given")
	}
	if r.CacheDir == "" {
		r.CacheDir = fetch.DefaultCacheDir()
	}
	a := r.Arch
	if a == "" {
		a = "x86-64"
	}
	return DebianArch(a)
}

// Resolve computes the Plan for req.
func Resolve(ctx context.Context, req Request) (*Plan, error) {
	arch, err := req.validate()
	if err != nil {
		return nil, fmt.Errorf("resolving packages: %w", err)
	}
	plan := &Plan{Distribution: req.Distribution, Release: req.Release, Arch: arch, CacheDir: req.CacheDir}
	var base []*node
	if req.BaseRoot != "" {
		b, err := tree.ReadFile(req.BaseRoot, "var/lib/dpkg/status")
		if err != nil {
			return nil, fmt.Errorf("reading base packages: %w", err)
		}
		plan.baseStatus, plan.baseRoot = b, req.BaseRoot
		if base, err = parseStatus(b, arch); err != nil {
			return nil, fmt.Errorf("reading base packages: %s: %w", filepath.Join(req.BaseRoot, "var/lib/dpkg/status"), err)
		}
		for _, n := range base {
			plan.Base = append(plan.Base, n.name+" "+n.version)
		}
		sort.Strings(plan.Base)
	}
	if req.Lock != nil && len(req.Lock.Packages) > 0 {
		p, err := planFromLock(plan, &req, base)
		if err == nil && req.Progress != nil {
			req.Progress(installer.Event{Kind: installer.Resolved, Count: len(p.Packages)})
		}
		return p, err
	}
	f := &fetch.Fetcher{CacheDir: req.CacheDir}
	req.Progress = serialize(req.Progress)
	u, err := loadUniverse(ctx, &req, arch, f, req.Progress)
	if err != nil {
		return nil, fmt.Errorf("reading repository: %w", err)
	}
	s := newSolver(u, arch, req.WithRecommends, req.Pins)
	for _, n := range base {
		s.addBase(n)
	}
	want := append([]string{}, req.Packages...)
	if req.BaseImage || req.WithRequired {
		want = append(want, s.basePackages(req.BaseImage, req.WithRequired)...)
	}
	var roots []*node
	seen := map[string]bool{}
	for _, name := range want {
		name = strings.TrimSpace(name)
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		if s.installed(name) != nil {
			continue
		}
		i, ok := s.cand[name]
		if !ok {
			cands := s.candidates(Dep{Name: name})
			if len(cands) == 0 {
				return nil, &UnsatisfiableError{Chain: []string{name}, Reason: "not found in " + u.where + u.suggest(name)}
			}
			if len(cands) > 1 {
				var names []string
				for _, c := range cands {
					names = append(names, u.pkgs[c].Name)
				}
				return nil, &UnsatisfiableError{Chain: []string{name}, Reason: "virtual package provided by " + strings.Join(names, ", ") + ": name one"}
			}
			i = cands[0]
		}
		n, err := s.node(i)
		if err != nil {
			return nil, err
		}
		if m, d := s.conflictWith(n); m != nil {
			return nil, &UnsatisfiableError{Chain: []string{name}, Reason: fmt.Sprintf("conflicts with %s %s (%s)", m.name, m.version, d)}
		}
		s.selectNode(n)
		roots = append(roots, n)
	}
	for _, n := range roots {
		if err := s.expand(n, []string{n.name}); err != nil {
			return nil, err
		}
	}
	if err := s.verify(); err != nil {
		return nil, err
	}
	for _, n := range s.sel {
		p := &u.pkgs[n.idx]
		plan.Packages = append(plan.Packages, Package{Name: p.Name, Version: p.Version, Arch: p.Arch,
			Source: p.Source, URL: p.Base + "/" + p.Filename, Size: p.Size, SHA256: p.SHA256})
	}
	sort.Slice(plan.Packages, func(a, b int) bool { return plan.Packages[a].Name < plan.Packages[b].Name })
	req.Progress(installer.Event{Kind: installer.Resolved, Count: len(plan.Packages)})
	return plan, nil
}

// basePackages lists the Essential (and Priority: required) package
// names, sorted.
func (s *solver) basePackages(essential, required bool) []string {
	var out []string
	for name, i := range s.cand {
		p := &s.u.pkgs[i]
		if (essential && p.Essential) || (required && p.Priority == "required") {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// parseStatus reads the installed packages of a dpkg status file.
func parseStatus(b []byte, arch string) ([]*node, error) {
	var out []*node
	err := parseParagraphs(b, func(line int, p *Paragraph) error {
		st := strings.Fields(p.Get("Status"))
		if len(st) != 3 || st[2] != "installed" {
			return nil
		}
		a := p.Get("Architecture")
		if a != arch && a != "all" && a != "" {
			return nil
		}
		in, err := parseInfo(p.Get("Depends"), p.Get("Pre-Depends"), "", p.Get("Conflicts"), p.Get("Breaks"), p.Get("Provides"), arch)
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		out = append(out, &node{name: p.Get("Package"), version: p.Get("Version"), arch: a,
			multiArch: p.Get("Multi-Arch"), essential: p.Get("Essential") == "yes", info: in, idx: -1})
		return nil
	})
	return out, err
}
