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
	// InstalledRoot, when set, is read instead of BaseRoot for the
	// installed packages: for an extension on an extension, a tree holding
	// the record of the base and of every extension in between
	// (RecordInstalled) and stand-ins of those extensions' files. Files
	// present in either tree satisfy file dependencies.
	InstalledRoot string
	// Keyring is a file or directory of OpenPGP public keys; empty means
	// the distribution's keys in the usual host places.
	Keyring string
	// Keys are more key files trusted besides Keyring's (or the
	// distribution's) keys: the gpgkey= files of .repo files.
	Keys []string
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
	keyPaths = append(keyPaths, req.Keys...)
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
		dbRoot := req.BaseRoot
		if req.InstalledRoot != "" {
			dbRoot = req.InstalledRoot
			if s.standIns, err = tree.OpenRoot(req.InstalledRoot); err != nil {
				return nil, fmt.Errorf("reading installed packages: %w", err)
			}
			defer s.standIns.Close()
		}
		inst, err := ReadInstalled(dbRoot)
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
