// The solver's state and its lookups: which candidates provide a
// capability or a file, and whether a (rich) dependency holds.

package rpm

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/sxb-build/sxb/builtins/tree"
)

// cand is a package a solver may choose.
type cand struct {
	*repoPackage
	repo  *repository
	order int
}

// solver holds the state of one resolution.
type solver struct {
	ctx     context.Context
	arch    string
	repos   []*repository
	all     []*cand
	byName  map[string][]*cand // best first
	byProv  map[string][]provider
	byFile  map[string][]*cand
	fullFL  bool // filelists loaded into byFile
	base    map[string]InstalledPackage
	baseDep map[string][]provider // capability -> base providers
	root    *tree.Root            // base tree for file dependencies
	// standIns holds stand-ins of the files of extensions below (see
	// Request.InstalledRoot), also for file dependencies.
	standIns *tree.Root
	sel      map[string]*cand // selected, by name
	why      map[*cand]string // reason chain
	queue    []*cand
	cond     []pendingRich // rich requirements whose condition may change
	ors      []pendingRich // "or" requirements not decided yet
	recomm   bool
	// requests are the requested package strings.
	requests []string
}

type provider struct {
	c   *cand
	ip  *InstalledPackage
	dep Dep
}

type pendingRich struct {
	r   *richDep
	who *cand
}

// index builds the lookup tables over every package of a compatible arch.
func (s *solver) index() {
	n := 0
	for _, r := range s.repos {
		for _, p := range r.Packages {
			if !compatibleArch(s.arch, p.Arch) {
				continue
			}
			c := &cand{repoPackage: p, repo: r, order: n}
			n++
			s.all = append(s.all, c)
		}
	}
	for _, c := range s.all {
		s.byName[c.Name] = append(s.byName[c.Name], c)
		self := false
		for _, d := range c.Provides {
			s.byProv[d.Name] = append(s.byProv[d.Name], provider{c: c, dep: d})
			self = self || d.Name == c.Name
		}
		if !self {
			s.byProv[c.Name] = append(s.byProv[c.Name], provider{c: c, dep: Dep{Name: c.Name, Flags: senseEqual, EVR: c.EVR}})
		}
		for _, f := range c.Files {
			s.byFile[f] = append(s.byFile[f], c)
		}
	}
	for _, l := range s.byName {
		sortBest(l)
	}
}

// sortBest orders candidates best first: highest EVR, then the first
// repository.
func sortBest(l []*cand) {
	sort.SliceStable(l, func(i, j int) bool {
		if c := compareFull(l[i].EVR, l[j].EVR); c != 0 {
			return c > 0
		}
		return l[i].order < l[j].order
	})
}

// loadFilelists adds every repository's full file lists to byFile.
func (s *solver) loadFilelists() error {
	if s.fullFL {
		return nil
	}
	s.fullFL = true
	want := s.fileDeps()
	for _, r := range s.repos {
		fl, err := r.fileLists(s.ctx, want)
		if err != nil {
			return err
		}
		for _, c := range s.all {
			if c.repo != r {
				continue
			}
			for _, f := range fl[c.Sum] {
				if !containsCand(s.byFile[f], c) {
					s.byFile[f] = append(s.byFile[f], c)
				}
			}
		}
	}
	return nil
}

// fileDeps collects every path named by a dependency of any candidate
// (and by the request), the only paths needed from filelists.xml.
func (s *solver) fileDeps() map[string]bool {
	want := map[string]bool{}
	add := func(ds []Dep) {
		for _, d := range ds {
			if strings.HasPrefix(d.Name, "/") {
				want[d.Name] = true
			} else if strings.HasPrefix(d.Name, "(") {
				for _, tok := range tokenizeRich(d.Name) {
					if strings.HasPrefix(tok, "/") {
						want[tok] = true
					}
				}
			}
		}
	}
	for _, c := range s.all {
		add(c.Requires)
		add(c.Conflicts)
		add(c.Recommends)
	}
	for _, r := range s.requests {
		if strings.HasPrefix(r, "/") {
			want[strings.Fields(r)[0]] = true
		}
	}
	return want
}

func containsCand(l []*cand, c *cand) bool {
	for _, x := range l {
		if x == c {
			return true
		}
	}
	return false
}

// providers returns the repository packages providing d.
func (s *solver) providers(d Dep) ([]*cand, error) {
	var out []*cand
	seen := map[*cand]bool{}
	add := func(c *cand) {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	for _, p := range s.byProv[d.Name] {
		if overlaps(p.dep.Flags, p.dep.EVR, d.Flags, d.EVR) {
			add(p.c)
		}
	}
	if strings.HasPrefix(d.Name, "/") {
		for _, c := range s.byFile[d.Name] {
			add(c)
		}
		if len(out) == 0 && !s.fullFL {
			if err := s.loadFilelists(); err != nil {
				return nil, err
			}
			for _, c := range s.byFile[d.Name] {
				add(c)
			}
		}
	}
	return out, nil
}

// rpmlibCaps are the rpmlib() capabilities the installer satisfies, with
// the versions rpm 4.18 provides: sxb unpacks payloads itself and handles
// the package format features they announce (the others only concern
// rpm's own database or scriptlets). A package needing an rpmlib feature
// not listed here cannot be installed.
var rpmlibCaps = map[string]string{
	"rpmlib(BuiltinLuaScripts)":        "4.2.2-1",
	"rpmlib(CaretInVersions)":          "4.15.0-1",
	"rpmlib(CompressedFileNames)":      "3.0.4-1",
	"rpmlib(ConcurrentAccess)":         "4.1-1",
	"rpmlib(DynamicBuildRequires)":     "4.15.0-1",
	"rpmlib(ExplicitPackageProvide)":   "4.0-1",
	"rpmlib(FileCaps)":                 "4.6.1-1",
	"rpmlib(FileDigests)":              "4.6.0-1",
	"rpmlib(HeaderLoadSortsTags)":      "4.0.1-1",
	"rpmlib(LargeFiles)":               "4.12.0-1",
	"rpmlib(PartialHardlinkSets)":      "4.0.4-1",
	"rpmlib(PayloadFilesHavePrefix)":   "4.0-1",
	"rpmlib(PayloadIsBzip2)":           "3.0.5-1",
	"rpmlib(PayloadIsLzma)":            "4.4.2-1",
	"rpmlib(PayloadIsXz)":              "5.2-1",
	"rpmlib(PayloadIsZstd)":            "5.4.18-1",
	"rpmlib(RichDependencies)":         "4.12.0-1",
	"rpmlib(ScriptletExpansion)":       "4.9.0-1",
	"rpmlib(ScriptletInterpreterArgs)": "4.0.3-1",
	"rpmlib(SysUsers)":                 "4.19.0-1",
	"rpmlib(TildeInVersions)":          "4.10.0-1",
	"rpmlib(VersionedDependencies)":    "3.0.3-1",
}

// satisfiedLeaf reports whether d is provided by a selected package or by
// the base.
func (s *solver) satisfiedLeaf(d Dep) (bool, error) {
	if strings.HasPrefix(d.Name, "rpmlib(") {
		v, ok := rpmlibCaps[d.Name]
		return ok && overlaps(senseEqual, ParseEVR(v), d.Flags, d.EVR), nil
	}
	if s.baseHas(d) {
		return true, nil
	}
	ps, err := s.providers(d)
	if err != nil {
		return false, err
	}
	for _, c := range ps {
		if s.sel[c.Name] == c {
			return true, nil
		}
	}
	return false, nil
}

func (s *solver) baseHas(d Dep) bool {
	for _, p := range s.baseDep[d.Name] {
		if overlaps(p.dep.Flags, p.dep.EVR, d.Flags, d.EVR) {
			return true
		}
	}
	if ip, ok := s.base[d.Name]; ok && len(ip.Provides) == 0 {
		if overlaps(senseEqual, ParseEVR(ip.EVR), d.Flags, d.EVR) {
			return true
		}
	}
	if strings.HasPrefix(d.Name, "/") {
		if rel, err := tree.CleanRel(d.Name); err == nil && rel != "" {
			for _, r := range []*tree.Root{s.root, s.standIns} {
				if r == nil {
					continue
				}
				if _, err := r.Lstat(rel); err == nil {
					return true
				}
			}
		}
	}
	return false
}

// satisfied evaluates a (rich) dependency against the selected set and base.
func (s *solver) satisfied(r *richDep) (bool, error) { return s.eval(r, false) }

// holds evaluates a rich Conflicts expression: there an if or unless
// whose condition does not select its branch (and that has no else) is
// false, so "(A if B)" conflicts with A only when B is installed and
// "(A unless B)" only when B is not.
func (s *solver) holds(r *richDep) (bool, error) { return s.eval(r, true) }

func (s *solver) eval(r *richDep, conflict bool) (bool, error) {
	switch r.Op {
	case "":
		return s.satisfiedLeaf(r.Dep)
	case opAnd:
		for _, a := range r.Args {
			if ok, err := s.eval(a, conflict); !ok || err != nil {
				return false, err
			}
		}
		return true, nil
	case opOr:
		for _, a := range r.Args {
			if ok, err := s.eval(a, conflict); ok || err != nil {
				return ok, err
			}
		}
		return false, nil
	case opIf, opUnless:
		c, err := s.eval(r.Args[1], conflict)
		if err != nil {
			return false, err
		}
		if r.Op == opUnless {
			c = !c
		}
		if c {
			return s.eval(r.Args[0], conflict)
		}
		if len(r.Args) == 3 {
			return s.eval(r.Args[2], conflict)
		}
		// As a requirement, nothing is needed; as a conflict, none holds.
		return !conflict, nil
	case opWith, opWithout:
		for _, c := range s.sel {
			if s.candMatches(c, r) {
				return true, nil
			}
		}
		return false, nil
	}
	return false, fmt.Errorf("unknown operator %q", r.Op)
}

// candMatches reports whether the single package c satisfies a "with" or
// "without" expression (or a leaf).
func (s *solver) candMatches(c *cand, r *richDep) bool {
	switch r.Op {
	case "":
		ps, _ := s.providers(r.Dep)
		return containsCand(ps, c)
	case opWith:
		for _, a := range r.Args {
			if !s.candMatches(c, a) {
				return false
			}
		}
		return true
	case opWithout:
		return s.candMatches(c, r.Args[0]) && !s.candMatches(c, r.Args[1])
	case opOr:
		for _, a := range r.Args {
			if s.candMatches(c, a) {
				return true
			}
		}
		return false
	case opAnd:
		for _, a := range r.Args {
			if !s.candMatches(c, a) {
				return false
			}
		}
		return true
	}
	return false
}

// chain explains why c is being installed.
func (s *solver) chain(c *cand) string {
	var parts []string
	seen := map[*cand]bool{}
	for c != nil && !seen[c] {
		seen[c] = true
		parts = append(parts, c.nevra())
		why := s.why[c]
		if why == "" || why == "requested" || why == "supplements" {
			parts = append(parts, map[string]string{"": "requested", "requested": "requested", "supplements": "supplementing the selection"}[why])
			break
		}
		c = s.sel[why]
	}
	return strings.Join(parts, " <- ")
}
