package rpm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/sxb-build/sxb/builtins/fetch"
	"github.com/sxb-build/sxb/builtins/installer"
	"github.com/sxb-build/sxb/builtins/tree"
)

// Request says what to resolve.
type Request struct {
	// Distribution is "opensuse" or "fedora".
	Distribution string
	// Release is "tumbleweed", "leap-15.6" (or "15.6"), a Fedora release
	// number such as "41", or "rawhide".
	Release string
	// Arch is a systemd architecture name ("x86-64", "arm64", ...) or an
	// rpm one; empty means x86_64. noarch packages always qualify.
	Arch string
	// Mirror replaces the distribution's default mirror (DefaultOpenSUSEMirror,
	// DefaultFedoraMirror); file:// URLs and absolute paths name local
	// copies laid out like the mirror.
	Mirror string
	// Repositories selects repositories: names of the distribution's
	// default ones ("oss", "update", "sle", "backports"; "release",
	// "updates") and/or repository URLs (http(s)://, file:// or absolute
	// paths, each the directory holding repodata/). Empty means every
	// default repository. When only URLs are given, no default is used.
	Repositories []string
	// Packages are package names or capabilities, optionally versioned
	// ("helm", "helm >= 3.14", "/usr/bin/helm", "pkgconfig(zlib)").
	Packages []string
	// WithRecommends also installs the Recommends of every package, when
	// they can be satisfied.
	WithRecommends bool
	// BaseImage marks a base image build: BaseRoot is ignored and
	// everything is resolved from scratch.
	BaseImage bool
	// BaseRoot is the tree of the base an extension is built on. Packages
	// recorded there (InstalledDBPath) and files present there satisfy
	// dependencies and are not installed again.
	BaseRoot string
	// Keyring is a file or directory of OpenPGP public keys; empty means
	// the distribution's keys in the usual host places.
	Keyring string
	// Insecure skips every signature check (repomd.xml and packages). The
	// checksums from the metadata are still verified.
	Insecure bool
	// CacheDir holds downloads and parsed metadata; it may be shared by
	// concurrent builds. Empty means fetch.DefaultCacheDir().
	CacheDir string
	// Lock, when not nil and not empty, pins the result: the plan is the
	// lock's packages (no metadata is read), and every requested package
	// must be in it.
	Lock *Lock
	// Progress, when set, is told about each repository read (Index,
	// Package the repository URL) and the result (Resolved).
	Progress func(installer.Event)
}

// Package is one package to install.
type Package struct {
	Name string `json:"name"`
	// EVR is [epoch:]version-release.
	EVR  string `json:"evr"`
	Arch string `json:"arch"`
	// URL is where the rpm is downloaded from.
	URL    string `json:"url"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// NEVRA formats the package as name-[epoch:]version-release.arch.
func (p Package) NEVRA() string { return p.Name + "-" + p.EVR + "." + p.Arch }

// Plan is the result of Resolve: what Install downloads and unpacks.
type Plan struct {
	Distribution string `json:"distribution"`
	Release      string `json:"release"`
	Arch         string `json:"arch"`
	// Packages are sorted by name.
	Packages []Package `json:"packages"`
	// Base lists "name evr.arch" of the base packages the plan was
	// resolved against (they are not installed).
	Base []string `json:"base,omitempty"`
	// CheckSignatures makes Install refuse packages whose header signature
	// does not verify against Keyring (repositories without a signed
	// repomd.xml, as Fedora's).
	CheckSignatures bool `json:"check_signatures,omitempty"`
	// Keyring lists the key files and directories used.
	Keyring []string `json:"keyring,omitempty"`
	// CacheDir is the download cache Install uses.
	CacheDir string `json:"-"`
}

// Key returns a stable hash of what the plan installs (hex SHA-256 over
// distribution, release, arch, packages, base and the signature policy;
// not the keyring's location nor the cache).
func (p *Plan) Key() string {
	b, _ := json.Marshal(struct {
		D, R, A string
		P       []Package
		B       []string
		S       bool
	}{p.Distribution, p.Release, p.Arch, p.Packages, p.Base, p.CheckSignatures})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Names returns the package names of the plan, sorted.
func (p *Plan) Names() []string {
	out := make([]string, 0, len(p.Packages))
	for _, pk := range p.Packages {
		out = append(out, pk.Name)
	}
	return out
}

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
	sel     map[string]*cand      // selected, by name
	why     map[*cand]string      // reason chain
	queue   []*cand
	cond    []pendingRich // rich requirements whose condition may change
	ors     []pendingRich // "or" requirements not decided yet
	recomm  bool
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

// Resolve loads the repositories of req and computes the packages to
// install.
func Resolve(ctx context.Context, req Request) (*Plan, error) {
	if req.Distribution != "opensuse" && req.Distribution != "fedora" {
		return nil, fmt.Errorf("resolving rpm packages: distribution %q: want \"opensuse\" or \"fedora\"", req.Distribution)
	}
	arch, err := rpmArch(req.Arch)
	if err != nil {
		return nil, fmt.Errorf("resolving rpm packages: %w", err)
	}
	if len(req.Packages) == 0 {
		return nil, errors.New("resolving rpm packages: no packages requested")
	}
	cacheDir := req.CacheDir
	if cacheDir == "" {
		cacheDir = fetch.DefaultCacheDir()
	}
	urls, err := repoURLs(req, arch)
	if err != nil {
		return nil, fmt.Errorf("resolving rpm packages: %w", err)
	}
	var keyPaths []string
	if req.Keyring != "" {
		keyPaths = []string{req.Keyring}
	} else {
		keyPaths = defaultKeyring(req.Distribution, req.Release, arch)
	}
	keys, err := loadKeyring(keyPaths)
	if err != nil {
		return nil, fmt.Errorf("resolving rpm packages: %w", err)
	}
	// openSUSE signs repomd.xml; Fedora does not and signs packages.
	requireRepoSig := req.Distribution != "fedora"
	if req.Lock != nil && len(req.Lock.Packages) > 0 {
		plan, err := planFromLock(req, arch, req.Lock)
		if err != nil {
			return nil, fmt.Errorf("resolving rpm packages: %w", err)
		}
		plan.Keyring, plan.CacheDir = keyPaths, cacheDir
		plan.CheckSignatures = !req.Insecure && !requireRepoSig
		if plan.CheckSignatures && len(keys) == 0 {
			return nil, fmt.Errorf("resolving rpm packages: %s packages must be signature-checked but no keys were found (set a keyring, or opt out with insecure)", req.Distribution)
		}
		return plan, nil
	}
	f := &fetch.Fetcher{CacheDir: cacheDir}
	s := &solver{ctx: ctx, arch: arch, byName: map[string][]*cand{}, byProv: map[string][]provider{},
		byFile: map[string][]*cand{}, base: map[string]InstalledPackage{}, baseDep: map[string][]provider{},
		sel: map[string]*cand{}, why: map[*cand]string{}, recomm: req.WithRecommends}
	for i, u := range urls {
		if req.Progress != nil {
			req.Progress(installer.Event{Kind: installer.Index, Package: u, Done: i, Count: len(urls)})
		}
		r, err := openRepo(ctx, f, cacheDir, u, keys, requireRepoSig, req.Insecure)
		if err != nil {
			return nil, fmt.Errorf("resolving rpm packages: %w", err)
		}
		s.repos = append(s.repos, r)
	}
	if !req.BaseImage && req.BaseRoot != "" {
		// A base that cannot be opened provides no files.
		if s.root, err = tree.OpenRoot(req.BaseRoot); err == nil {
			defer s.root.Close()
		}
		inst, err := ReadInstalled(req.BaseRoot)
		if err != nil {
			return nil, err
		}
		for i := range inst {
			ip := &inst[i]
			s.base[ip.Name] = *ip
			for _, d := range ip.Provides {
				s.baseDep[d.Name] = append(s.baseDep[d.Name], provider{ip: ip, dep: d})
			}
		}
	}
	s.index()
	if err := s.solve(req.Packages); err != nil {
		return nil, fmt.Errorf("resolving rpm packages: %w", err)
	}
	plan := &Plan{Distribution: req.Distribution, Release: req.Release, Arch: arch, Keyring: keyPaths,
		CheckSignatures: !req.Insecure && !requireRepoSig, CacheDir: cacheDir}
	for _, c := range s.sel {
		u, err := joinURL(c.repo.URL, c.Location)
		if c.Base != "" {
			var b string
			if b, err = normalizeBase(c.Base); err == nil {
				u, err = joinURL(b, c.Location)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("resolving rpm packages: %s: %w", c.nevra(), err)
		}
		if c.SumType != "sha256" || len(c.Sum) != 64 {
			return nil, fmt.Errorf("resolving rpm packages: %s: unsupported package checksum type %q (want sha256)", c.nevra(), c.SumType)
		}
		p := Package{Name: c.Name, EVR: c.EVR.String(), Arch: c.Arch, URL: u, Size: c.Size, SHA256: c.Sum}
		plan.Packages = append(plan.Packages, p)
	}
	sort.Slice(plan.Packages, func(i, j int) bool { return plan.Packages[i].Name < plan.Packages[j].Name })
	for _, ip := range s.base {
		plan.Base = append(plan.Base, ip.Name+" "+ip.EVR+"."+ip.Arch)
	}
	sort.Strings(plan.Base)
	if plan.CheckSignatures && len(keys) == 0 {
		return nil, fmt.Errorf("resolving rpm packages: %s packages must be signature-checked but no keys were found (set a keyring, or opt out with insecure)", req.Distribution)
	}
	if req.Progress != nil {
		req.Progress(installer.Event{Kind: installer.Resolved, Count: len(plan.Packages)})
	}
	return plan, nil
}

// repoURLs picks the repositories of req.
func repoURLs(req Request, arch string) ([]string, error) {
	var names, urls []string
	for _, r := range req.Repositories {
		if strings.Contains(r, "://") || strings.HasPrefix(r, "/") {
			u, err := normalizeBase(r)
			if err != nil {
				return nil, err
			}
			urls = append(urls, u)
		} else {
			names = append(names, r)
		}
	}
	if len(urls) > 0 && len(names) == 0 {
		return urls, nil
	}
	specs, err := defaultRepos(req.Distribution, req.Release, arch)
	if err != nil {
		return nil, err
	}
	mirror := req.Mirror
	if mirror == "" {
		mirror = DefaultOpenSUSEMirror
		if req.Distribution == "fedora" {
			mirror = DefaultFedoraMirror
		}
	}
	mirror, err = normalizeBase(mirror)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, sp := range specs {
		if len(names) > 0 && !contains(names, sp.Name) {
			continue
		}
		out = append(out, mirror+sp.Path)
	}
	for _, n := range names {
		found := false
		for _, sp := range specs {
			found = found || sp.Name == n
		}
		if !found {
			return nil, fmt.Errorf("unknown repository %q for %s %s", n, req.Distribution, req.Release)
		}
	}
	return append(out, urls...), nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
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
	if s.root != nil && strings.HasPrefix(d.Name, "/") {
		if rel, err := tree.CleanRel(d.Name); err == nil && rel != "" {
			if _, err := s.root.Lstat(rel); err == nil {
				return true
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

// solve selects packages for the requested names, then closes over
// dependencies until nothing changes.
func (s *solver) solve(requests []string) error {
	s.requests = requests
	for _, req := range requests {
		d, err := parseRequest(req)
		if err != nil {
			return err
		}
		if s.baseHas(d) {
			continue
		}
		// A package name wins over other packages' provides.
		var cs []*cand
		for _, c := range s.byName[d.Name] {
			if overlaps(senseEqual, c.EVR, d.Flags, d.EVR) {
				cs = append(cs, c)
			}
		}
		if len(cs) == 0 {
			if cs, err = s.providers(d); err != nil {
				return err
			}
		}
		if len(cs) == 0 {
			return fmt.Errorf("no package provides %q (requested)", req)
		}
		if err := s.choose(cs, d.String(), nil); err != nil {
			return err
		}
	}
	if err := s.close(); err != nil {
		return err
	}
	if s.recomm {
		if err := s.supplements(); err != nil {
			return err
		}
	}
	// A conflict "(A unless B)" that holds is lifted by installing B, as
	// libsolv does; other rich conflicts are errors (check).
	for tries := 0; tries < 16; tries++ {
		var fix *richDep
		var who *cand
		names := make([]string, 0, len(s.sel))
		for n := range s.sel {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if _, r := s.richConflict(s.sel[n]); r != nil && r.Op == opUnless && len(r.Args) == 2 {
				fix, who = r, s.sel[n]
				break
			}
		}
		if fix == nil {
			break
		}
		saved := s.snapshot()
		if err := s.require(fix.Args[1], who); err != nil {
			s.restore(saved)
			break
		}
		if err := s.drain(); err != nil {
			return err
		}
	}
	return s.check()
}

// close selects packages until every pending requirement is decided.
func (s *solver) close() error {
	// Close over plain requirements first; conditional ones (if/unless)
	// wait until nothing else is pending, then those whose condition
	// holds go before else-branches, one at a time, so that an early
	// else-branch does not win over a condition that becomes true later.
	for {
		if err := s.drain(); err != nil {
			return err
		}
		pend := s.cond
		s.cond = nil
		progressed := false
		var rest []pendingRich
		for _, p := range pend {
			if s.sel[p.who.Name] != p.who {
				continue
			}
			ok, err := s.satisfied(p.r.Args[1])
			if err != nil {
				return err
			}
			if p.r.Op == opUnless {
				ok = !ok
			}
			if !ok {
				rest = append(rest, p)
				continue
			}
			before := len(s.sel)
			if err := s.require(p.r.Args[0], p.who); err != nil {
				return err
			}
			progressed = progressed || len(s.sel) != before
		}
		if progressed {
			s.cond = append(s.cond, pend...)
			continue
		}
		// Then one pending alternative that is still open.
		for len(s.ors) > 0 && !progressed {
			p := s.ors[0]
			s.ors = s.ors[1:]
			if s.sel[p.who.Name] != p.who {
				continue
			}
			ok, err := s.satisfied(p.r)
			if err != nil {
				return err
			}
			if ok {
				continue
			}
			if err := s.require(p.r, p.who); err != nil {
				return err
			}
			progressed = true
		}
		if progressed {
			s.cond = append(s.cond, pend...)
			continue
		}
		// Conditions that hold are met; take one else-branch.
		for k, p := range rest {
			if len(p.r.Args) < 3 {
				continue
			}
			ok, err := s.satisfied(p.r.Args[2])
			if err != nil {
				return err
			}
			if ok {
				continue
			}
			if err := s.require(p.r.Args[2], p.who); err != nil {
				return err
			}
			s.cond = append(s.cond, rest[k+1:]...)
			progressed = true
			break
		}
		if !progressed {
			break
		}
		s.cond = append(s.cond, pend...)
	}
	return nil
}

// supplements adds, with weak dependencies on, the packages whose
// Supplements hold for the selection (as libsolv does with weak
// dependencies), until nothing more is added. Packages that cannot be
// installed are left out.
func (s *solver) supplements() error {
	for round := 0; round < 32; round++ {
		added := false
		names := make([]string, 0, len(s.byName))
		for n := range s.byName {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if _, ok := s.sel[n]; ok {
				continue
			}
			if _, ok := s.base[n]; ok {
				continue
			}
			c := s.byName[n][0]
			if len(c.Supplements) == 0 || !s.weakly(c, func(*cand) []Dep { return nil }, c.Supplements) {
				continue
			}
			saved := s.snapshot()
			if err := s.choose([]*cand{c}, c.Name, nil); err != nil {
				s.restore(saved)
				continue
			}
			s.why[c] = "supplements"
			if err := s.close(); err != nil {
				s.restore(saved)
				continue
			}
			if err := s.check(); err != nil {
				s.restore(saved)
				continue
			}
			added = true
		}
		if !added {
			return nil
		}
	}
	return nil
}

// drain processes the requirements of newly selected packages.
func (s *solver) drain() error {
	for len(s.queue) > 0 {
		c := s.queue[0]
		s.queue = s.queue[1:]
		if s.sel[c.Name] != c {
			continue // replaced meanwhile
		}
		if err := s.requires(c); err != nil {
			return err
		}
	}
	return nil
}

// parseRequest parses "name", "name >= 1.0" or a rich expression.
func parseRequest(s string) (Dep, error) {
	f := strings.Fields(s)
	switch len(f) {
	case 1:
		return Dep{Name: f[0]}, nil
	case 3:
		if fl, ok := parseOp(f[1]); ok {
			return Dep{Name: f[0], Flags: fl, EVR: ParseEVR(f[2])}, nil
		}
	}
	return Dep{}, fmt.Errorf("package request %q: want \"name\" or \"name OP version\"", s)
}

// requires handles every Requires (and, optionally, Recommends) of c.
func (s *solver) requires(c *cand) error {
	for _, d := range c.Requires {
		r, err := depToRich(d)
		if err != nil {
			return fmt.Errorf("%s: %w", c.nevra(), err)
		}
		if err := s.requireAt(r, c, true); err != nil {
			return err
		}
	}
	if s.recomm {
		for _, d := range c.Recommends {
			r, err := depToRich(d)
			if err != nil {
				continue
			}
			// Recommends are best effort: failures leave them out.
			saved := s.snapshot()
			if err := s.require(r, c); err != nil {
				s.restore(saved)
			}
		}
	}
	return nil
}

type snap struct {
	sel   map[string]*cand
	queue []*cand
	cond  []pendingRich
	ors   []pendingRich
}

func (s *solver) snapshot() snap {
	m := make(map[string]*cand, len(s.sel))
	for k, v := range s.sel {
		m[k] = v
	}
	return snap{sel: m, queue: append([]*cand(nil), s.queue...), cond: append([]pendingRich(nil), s.cond...),
		ors: append([]pendingRich(nil), s.ors...)}
}

func (s *solver) restore(x snap) { s.sel, s.queue, s.cond, s.ors = x.sel, x.queue, x.cond, x.ors }

// ambiguous reports whether packages of several names provide d.
func (s *solver) ambiguous(d Dep) bool {
	if strings.HasPrefix(d.Name, "rpmlib(") {
		return false
	}
	ps, err := s.providers(d)
	if err != nil || len(ps) < 2 {
		return false
	}
	for _, c := range ps[1:] {
		if c.Name != ps[0].Name {
			return true
		}
	}
	return false
}

// orLeaves returns the capabilities of an "or" of plain capabilities
// (nested "or"s flattened), or nil when an alternative is more complex.
func orLeaves(r *richDep) []Dep {
	switch r.Op {
	case "":
		return []Dep{r.Dep}
	case opOr:
		var out []Dep
		for _, a := range r.Args {
			l := orLeaves(a)
			if l == nil {
				return nil
			}
			out = append(out, l...)
		}
		return out
	}
	return nil
}

func depToRich(d Dep) (*richDep, error) {
	if strings.HasPrefix(d.Name, "(") {
		return parseRich(d.Name)
	}
	return &richDep{Dep: d}, nil
}

// require makes r true, selecting packages as needed, on behalf of who.
func (s *solver) require(r *richDep, who *cand) error {
	return s.requireAt(r, who, false)
}

// requireAt is require; top marks a package's own requirement, whose
// if/unless parts are deferred to the solver's conditional phase.
func (s *solver) requireAt(r *richDep, who *cand, top bool) error {
	if top && (r.Op == opIf || r.Op == opUnless) {
		s.cond = append(s.cond, pendingRich{r, who})
		return nil
	}
	if top && (r.Op == opOr || (r.Op == "" && s.ambiguous(r.Dep))) {
		// Alternatives (an "or", or several packages providing the
		// capability) wait until the plain requirements are closed: one
		// may be installed anyway by then, and the choice policy sees
		// the recommends and supplements of everything selected, as
		// libsolv decides after unit propagation.
		if ok, err := s.satisfied(r); ok || err != nil {
			return err
		}
		s.ors = append(s.ors, pendingRich{r, who})
		return nil
	}
	if ok, err := s.satisfied(r); ok || err != nil {
		return err
	}
	switch r.Op {
	case "":
		ps, err := s.providers(r.Dep)
		if err != nil {
			return err
		}
		if len(ps) == 0 {
			return fmt.Errorf("nothing provides %q needed by %s", r.Dep.String(), s.chain(who))
		}
		return s.choose(ps, r.Dep.String(), who)
	case opAnd:
		for _, a := range r.Args {
			if err := s.require(a, who); err != nil {
				return err
			}
		}
		return nil
	case opOr:
		// Alternatives that are all plain capabilities: their providers
		// compete together, as in libsolv.
		if leaves := orLeaves(r); leaves != nil {
			var cs []*cand
			seen := map[*cand]bool{}
			for _, d := range leaves {
				ps, err := s.providers(d)
				if err != nil {
					return err
				}
				for _, c := range ps {
					if !seen[c] {
						seen[c] = true
						cs = append(cs, c)
					}
				}
			}
			if len(cs) > 0 {
				if err := s.choose(cs, r.String(), who); err == nil {
					return nil
				}
			}
		}
		// Otherwise the first alternative that can be installed wins.
		var firstErr error
		for _, a := range r.Args {
			saved := s.snapshot()
			err := s.require(a, who)
			if err == nil {
				return nil
			}
			s.restore(saved)
			if firstErr == nil {
				firstErr = err
			}
		}
		return fmt.Errorf("no alternative of %s can be installed: %w", r.String(), firstErr)
	case opIf, opUnless:
		if top {
			// Decided later, once plain requirements are closed.
			s.cond = append(s.cond, pendingRich{r, who})
			return nil
		}
		c, err := s.satisfied(r.Args[1])
		if err != nil {
			return err
		}
		if r.Op == opUnless {
			c = !c
		}
		if c {
			return s.require(r.Args[0], who)
		}
		if len(r.Args) == 3 {
			return s.require(r.Args[2], who)
		}
		return nil
	case opWith, opWithout:
		var cs []*cand
		for _, c := range s.all {
			if s.candMatches(c, r) {
				cs = append(cs, c)
			}
		}
		if len(cs) == 0 {
			return fmt.Errorf("nothing provides %s needed by %s", r.String(), s.chain(who))
		}
		return s.choose(cs, r.String(), who)
	}
	return fmt.Errorf("unknown operator %q", r.Op)
}

// choose selects the best installable package among cs.
func (s *solver) choose(cs []*cand, what string, who *cand) error {
	for _, c := range cs {
		if s.sel[c.Name] == c {
			return nil
		}
	}
	// Group by name; the name closest to the request first, then by name.
	names := map[string][]*cand{}
	var order []string
	for _, c := range cs {
		if _, ok := names[c.Name]; !ok {
			order = append(order, c.Name)
		}
		names[c.Name] = append(names[c.Name], c)
	}
	s.rankNames(order, names)
	var reasons []string
	for _, n := range order {
		if _, inBase := s.base[n]; inBase {
			reasons = append(reasons, n+" is in the base with another version")
			continue
		}
		if cur, ok := s.sel[n]; ok {
			reasons = append(reasons, fmt.Sprintf("%s is already selected", cur.nevra()))
			continue
		}
		l := names[n]
		sortBest(l)
		for _, c := range l {
			if why := s.blocked(c, who == nil); why != "" {
				reasons = append(reasons, why)
				continue
			}
			s.sel[c.Name] = c
			if who == nil {
				s.why[c] = "requested"
			} else {
				s.why[c] = who.Name
			}
			s.queue = append(s.queue, c)
			return nil
		}
	}
	by := "requested"
	if who != nil {
		by = s.chain(who)
	}
	return fmt.Errorf("cannot install a provider of %q needed by %s: %s", what, by, strings.Join(reasons, "; "))
}

// rankNames orders competing package names as libsolv's policy does:
// names whose best version another candidate obsoletes go last; names
// recommended by a selected package (or supplementing the selection) go
// first, then suggested (or enhancing) ones; otherwise alphabetical (it
// does not prefer a package named like the capability).
func (s *solver) rankNames(order []string, names map[string][]*cand) {
	sort.Strings(order)
	if len(order) < 2 {
		return
	}
	best := map[string]*cand{}
	for _, n := range order {
		l := names[n]
		sortBest(l)
		best[n] = l[0]
	}
	rank := map[string]int{}
	for _, n := range order {
		c := best[n]
		r := 2
		switch {
		case s.weakly(c, func(o *cand) []Dep { return o.Recommends }, c.Supplements):
			r = 0
		case s.weakly(c, func(o *cand) []Dep { return o.Suggests }, c.Enhances):
			r = 1
		}
		for _, m := range order {
			if m != n && s.obsoletes(best[m], c) {
				r = 3
			}
		}
		rank[n] = r
	}
	sort.SliceStable(order, func(i, j int) bool { return rank[order[i]] < rank[order[j]] })
}

// weakly reports whether a selected package names c in its weak
// dependencies (deps), or c's reverse weak dependencies (rev) hold for
// the selection.
func (s *solver) weakly(c *cand, deps func(*cand) []Dep, rev []Dep) bool {
	for _, o := range s.sel {
		for _, d := range deps(o) {
			r, err := depToRich(d)
			if err != nil {
				continue
			}
			for _, leaf := range richLeaves(r) {
				if s.candMatches(c, &richDep{Dep: leaf}) {
					return true
				}
			}
		}
	}
	for _, d := range rev {
		r, err := depToRich(d)
		if err != nil {
			continue
		}
		if ok, _ := s.satisfied(r); ok {
			return true
		}
	}
	return false
}

// richLeaves returns every capability a dependency names.
func richLeaves(r *richDep) []Dep {
	if r.Op == "" {
		return []Dep{r.Dep}
	}
	var out []Dep
	for _, a := range r.Args {
		out = append(out, richLeaves(a)...)
	}
	return out
}

// blocked says why c cannot join the selection ("" when it can).
func (s *solver) blocked(c *cand, requested bool) string {
	for _, o := range s.sel {
		if s.obsoletes(o, c) {
			return fmt.Sprintf("%s is obsoleted by %s", c.nevra(), o.nevra())
		}
		if s.obsoletes(c, o) {
			return fmt.Sprintf("%s obsoletes %s", c.nevra(), o.nevra())
		}
		if s.conflicts(o, c) || s.conflicts(c, o) {
			return fmt.Sprintf("%s conflicts with %s", c.nevra(), o.nevra())
		}
	}
	// Rich conflicts of requested packages are judged on the final
	// selection (check): a later request may still satisfy them.
	if !requested {
		if why, _ := s.richConflict(c); why != "" {
			return why
		}
	}
	for _, d := range c.Conflicts {
		if !strings.HasPrefix(d.Name, "(") && s.baseHas(d) {
			return fmt.Sprintf("%s conflicts with %q in the base", c.nevra(), d.String())
		}
	}
	for _, d := range c.Obsoletes {
		if ip, ok := s.base[d.Name]; ok && overlaps(senseEqual, ParseEVR(ip.EVR), d.Flags, d.EVR) {
			return fmt.Sprintf("%s obsoletes %s in the base", c.nevra(), ip.Name)
		}
	}
	for _, ip := range s.base {
		for _, d := range ip.Conflicts {
			if s.candMatches(c, &richDep{Dep: d}) {
				return fmt.Sprintf("%s conflicts with base package %s", c.nevra(), ip.Name)
			}
		}
	}
	return ""
}

// obsoletes reports whether a obsoletes b (by name, as libsolv does by
// default).
func (s *solver) obsoletes(a, b *cand) bool {
	if a.Name == b.Name {
		return false
	}
	for _, d := range a.Obsoletes {
		if d.Name == b.Name && overlaps(senseEqual, b.EVR, d.Flags, d.EVR) {
			return true
		}
	}
	return false
}

// conflicts reports whether a conflicts with something b provides.
func (s *solver) conflicts(a, b *cand) bool {
	if a == b {
		return false
	}
	for _, d := range a.Conflicts {
		if strings.HasPrefix(d.Name, "(") {
			continue // see richConflict
		}
		if s.candMatches(b, &richDep{Dep: d}) {
			return true
		}
	}
	return false
}

// richConflict evaluates the rich Conflicts of c, and of the selection,
// as if c were selected; it says which one holds ("" when none) and
// returns the expression.
func (s *solver) richConflict(c *cand) (string, *richDep) {
	prev, had := s.sel[c.Name]
	s.sel[c.Name] = c
	defer func() {
		if had {
			s.sel[c.Name] = prev
		} else {
			delete(s.sel, c.Name)
		}
	}()
	names := make([]string, 0, len(s.sel))
	for n := range s.sel {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		o := s.sel[n]
		for _, d := range o.Conflicts {
			if !strings.HasPrefix(d.Name, "(") {
				continue
			}
			r, err := parseRich(d.Name)
			if err != nil {
				continue
			}
			if ok, _ := s.holds(r); ok {
				return fmt.Sprintf("%s conflicts with %s", o.nevra(), r.String()), r
			}
		}
	}
	return "", nil
}

// check verifies the final selection: every requirement holds and nothing
// conflicts.
func (s *solver) check() error {
	names := make([]string, 0, len(s.sel))
	for n := range s.sel {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := s.sel[n]
		for _, d := range c.Requires {
			r, err := depToRich(d)
			if err != nil {
				return fmt.Errorf("%s: %w", c.nevra(), err)
			}
			ok, err := s.satisfied(r)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%q needed by %s is not satisfied by the selection", d.String(), s.chain(c))
			}
		}
		for _, m := range names {
			o := s.sel[m]
			if s.conflicts(c, o) {
				return fmt.Errorf("%s conflicts with %s", s.chain(c), s.chain(o))
			}
		}
		if why, _ := s.richConflict(c); why != "" {
			return fmt.Errorf("%s (installing %s)", why, s.chain(c))
		}
	}
	return nil
}
