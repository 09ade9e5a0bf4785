package pacman

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sxb-build/sxb/builtins/fetch"
	"github.com/sxb-build/sxb/builtins/installer"
	"github.com/sxb-build/sxb/internal/arch"
)

// Default mirrors, as mkosi uses them: Arch Linux for x86-64, Arch Linux
// ARM for arm64 and arm.
const (
	DefaultMirror    = "https://fastly.mirror.pkgbuild.com"
	DefaultARMMirror = "http://mirror.archlinuxarm.org"
)

// OptionalRepositories are the repositories Request.Repositories can
// enable by name, in the order they are read (before core and extra, so
// that testing repositories take precedence, as mkosi orders them).
var OptionalRepositories = []string{"core-testing", "core-testing-debug", "extra-testing", "extra-testing-debug",
	"core-debug", "extra-debug", "multilib-testing", "multilib"}

// Request says what to resolve.
type Request struct {
	// Release is "rolling" (Arch has no other); "" means rolling.
	Release string
	// Arch is a systemd architecture name ("x86-64", "arm64", "arm") or
	// pacman's ("x86_64", "aarch64", "armv7h"); "" means x86_64.
	Arch string
	// Mirror replaces the default mirror: the repositories are read from
	// <mirror>/$repo/os/$arch (x86_64) or <mirror>/$arch/$repo (ARM).
	// file:// URLs and absolute paths name local copies.
	Mirror string
	// Repositories enables optional repositories by name
	// (OptionalRepositories) and adds others as "NAME=URL", the URL a
	// pacman.conf Server line ($repo and $arch are expanded). A NAME=URL
	// entry naming a default or optional repository changes where it is
	// read from; other NAME=URL repositories are read first, in the order
	// given. core and extra (and alarm on ARM) are always read.
	Repositories []string
	// NoDefaultRepos reads only the NAME=URL entries of Repositories, in
	// their order (a pacman.conf of its own, as mkosi's sandbox trees
	// give one).
	NoDefaultRepos bool
	// Packages are what pacman -S takes: package names, "name>=version"
	// and other constraints, virtual names (the first provider wins),
	// group names (every member), "repo/name", and absolute file paths
	// (the package shipping the file, from the files database).
	Packages []string
	// BaseImage adds "filesystem", which mkosi installs first into every
	// Arch image.
	BaseImage bool
	// BaseRoot is the tree of the base an extension is built on: the
	// packages of its local database (var/lib/pacman/local) count as
	// installed.
	BaseRoot string
	// BaseDB, when set, is read instead of BaseRoot for the local
	// database: for an extension on an extension, a tree whose
	// var/lib/pacman/local holds the entries of the base and of every
	// extension in between. BaseRoot still provides the hooks.
	BaseDB string
	// Keyring names key files or directories trusted as if locally signed
	// (pacman-key --lsign-key), in addition to KeyringDir's keys.
	Keyring []string
	// KeyringDir is a pacman keyring directory (<name>.gpg, -trusted,
	// -revoked); "" means the host's Arch keyring (DefaultKeyringDirs),
	// "none" none.
	KeyringDir string
	// Insecure accepts unsigned and badly signed packages and databases.
	// SHA-256 sums from the databases are still checked.
	Insecure bool
	// CacheDir holds downloads and parsed databases. Required.
	CacheDir string
	// Lock, when not nil and not empty, pins the result: the plan is the
	// lock's packages (no database is read), and every requested package
	// must be in it.
	Lock *Lock
	// Progress, when set, receives events (installer.Index names each
	// sync database read); calls are serialized.
	Progress func(installer.Event)
	// Now is the time signatures are checked at; zero means now.
	Now time.Time
}

// Package is one package of a Plan.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
	// Repo is the sync database the package came from.
	Repo string `json:"repo"`
	// URL is where the package file is downloaded from.
	URL    string `json:"url"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Signature is the detached signature (base64) from the database,
	// when it carries one; otherwise URL + ".sig" is downloaded.
	Signature string `json:"signature,omitempty"`
	// Explicit marks packages the request named (directly or by group);
	// the others were pulled in as dependencies.
	Explicit bool `json:"explicit,omitempty"`
}

// Plan is the resolved set of packages, sorted by name. Same repository
// state, same plan: its Key can enter a build action key before anything
// is downloaded.
type Plan struct {
	Distribution string    `json:"distribution"`
	Release      string    `json:"release"`
	Arch         string    `json:"arch"`
	Packages     []Package `json:"packages"`
	// Base lists "name version" of the base's installed packages the plan
	// was resolved against.
	Base []string `json:"base,omitempty"`
	// Requested lists what the request asked for, for the lock.
	Requested []string `json:"requested,omitempty"`

	keyringDir string
	keyring    []string
	insecure   bool
	cacheDir   string
	baseRoot   string
	baseDB     string // the local database's tree: BaseDB, else baseRoot
	now        time.Time
}

// Key returns a stable hash of what the plan installs.
func (p *Plan) Key() string {
	b, _ := json.Marshal(p)
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

// Distributions are the distributions Resolve installs from.
var Distributions = []string{"arch"}

// arches are the architectures mkosi builds Arch images for: Arch Linux's
// x86_64, Arch Linux ARM's aarch64 and armv7h.
var arches = []arch.Arch{arch.X86_64, arch.ARM64, arch.ARM}

// SupportsArch reports whether Resolve installs packages of a.
func SupportsArch(a arch.Arch) bool { return slices.Contains(arches, a) }

// PacmanArch returns pacman's name for an architecture in any spelling
// package arch reads ("x86-64", "aarch64", ...); "" is x86_64.
func PacmanArch(name string) (string, error) {
	if name == "" {
		return arch.X86_64.Pacman(), nil
	}
	a, err := arch.Parse(name)
	if err == nil && !SupportsArch(a) {
		err = fmt.Errorf("architecture %s is not built by Arch Linux (x86-64, arm64 and arm are)", a)
	}
	if err != nil {
		return "", err
	}
	return a.Pacman(), nil
}

func (r *Request) now() time.Time {
	if r.Now.IsZero() {
		return time.Now()
	}
	return r.Now
}

// repository is one sync database to read.
type repository struct {
	name   string
	server string // URL of the directory holding <name>.db, without trailing "/"
}

var repoName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)

// expandServer expands a pacman.conf Server URL for a repository; a plain
// absolute path becomes a file:// URL.
func expandServer(u, repo, arch string) string {
	u = strings.ReplaceAll(strings.ReplaceAll(u, "$repo", repo), "$arch", arch)
	if strings.HasPrefix(u, "/") {
		u = "file://" + u
	}
	return strings.TrimRight(u, "/")
}

// repositories lists the sync databases a request reads, in pacman.conf
// order (the first that has a package wins).
func (r *Request) repositories(arch string) ([]repository, error) {
	arm := arch != "x86_64"
	mirror := r.Mirror
	if mirror == "" {
		mirror = DefaultMirror
		if arm {
			mirror = DefaultARMMirror
		}
	}
	layout := strings.TrimRight(mirror, "/") + "/$repo/os/$arch"
	if arm {
		layout = strings.TrimRight(mirror, "/") + "/$arch/$repo"
	}
	urls := map[string]string{}
	enabled := map[string]bool{}
	var custom []string
	defaults := []string{"core", "extra"}
	if arm {
		defaults = append(defaults, "alarm")
	}
	for _, e := range r.Repositories {
		name, u, isURL := strings.Cut(strings.TrimSpace(e), "=")
		name = strings.TrimSpace(name)
		if !repoName.MatchString(name) || name == "local" {
			return nil, fmt.Errorf("repository %q: not a repository name (pacman's \"local\" is reserved)", e)
		}
		known := slices.Contains(defaults, name) || slices.Contains(OptionalRepositories, name)
		if isURL {
			if _, dup := urls[name]; dup {
				return nil, fmt.Errorf("repository %q given twice", name)
			}
			urls[name] = strings.TrimSpace(u)
			if !known {
				custom = append(custom, name)
			}
		} else if !known {
			return nil, fmt.Errorf("unknown repository %q: name one of %s, or add it as %s=URL",
				name, strings.Join(append(append([]string{}, defaults...), OptionalRepositories...), ", "), name)
		}
		enabled[name] = true
	}
	if r.NoDefaultRepos {
		var out []repository
		for _, e := range r.Repositories {
			name, u, isURL := strings.Cut(strings.TrimSpace(e), "=")
			if !isURL {
				return nil, fmt.Errorf("repository %q: without the default repositories, every repository needs its URL (NAME=URL)", e)
			}
			name = strings.TrimSpace(name)
			out = append(out, repository{name: name, server: expandServer(strings.TrimSpace(u), name, arch)})
		}
		if len(out) == 0 {
			return nil, errors.New("no repositories: the default ones are off and none is given")
		}
		return out, nil
	}
	var names []string
	names = append(names, custom...)
	for _, n := range OptionalRepositories {
		if enabled[n] {
			names = append(names, n)
		}
	}
	names = append(names, defaults...)
	out := make([]repository, 0, len(names))
	for _, n := range names {
		u, ok := urls[n]
		if !ok {
			u = layout
		}
		out = append(out, repository{name: n, server: expandServer(u, n, arch)})
	}
	return out, nil
}

// syncDB is one loaded sync database.
type syncDB struct {
	repository
	pkgs   []Pkg
	byName map[string]int
	// The files database, read when a file is asked for, and the owners
	// of the paths looked up so far.
	filesMu  sync.Mutex
	filesRaw []byte
	files    map[string][]string
}

// universe is every package the request's repositories offer.
type universe struct {
	dbs []*syncDB
	// provides maps a provided name to its providers in pacman's order
	// (repository, then package name).
	provides map[string][]ref
	groups   map[string][]ref
	arch     string
}

// ref names one package of the universe.
type ref struct{ db, idx int }

func (u *universe) pkg(r ref) *Pkg { return &u.dbs[r.db].pkgs[r.idx] }

// fetchDB downloads a database file and its signature (optional, as
// DatabaseOptional), checking the signature when there is one.
func fetchDB(ctx context.Context, f *fetch.Fetcher, url string, kr *Keyring, limit int64) ([]byte, error) {
	raw, err := f.Get(ctx, url, limit)
	if err != nil {
		return nil, err
	}
	if kr == nil {
		return raw, nil
	}
	sig, err := f.Get(ctx, url+".sig", 1<<20)
	if errors.Is(err, fetch.ErrNotFound) {
		return raw, nil
	}
	if err != nil {
		return nil, err
	}
	if _, err := kr.Verify(bytes.NewReader(raw), sig); err != nil {
		return nil, fmt.Errorf("%s: database signature: %w", url, err)
	}
	return raw, nil
}

// loadUniverse reads every sync database of the request, in parallel.
func loadUniverse(ctx context.Context, req *Request, arch string, kr *Keyring, f *fetch.Fetcher) (*universe, error) {
	repos, err := req.repositories(arch)
	if err != nil {
		return nil, err
	}
	u := &universe{dbs: make([]*syncDB, len(repos)), provides: map[string][]ref{}, groups: map[string][]ref{}, arch: arch}
	errs := make([]error, len(repos))
	var wg sync.WaitGroup
	for i, rp := range repos {
		wg.Add(1)
		go func() {
			defer wg.Done()
			url := rp.server + "/" + rp.name + ".db"
			raw, err := fetchDB(ctx, f, url, kr, 1<<30)
			if errors.Is(err, fetch.ErrNotFound) {
				errs[i] = fmt.Errorf("repository %s: %s does not exist (check the mirror and the repository name): %w", rp.name, url, errNoDB)
				return
			}
			if err != nil {
				errs[i] = fmt.Errorf("repository %s: %w", rp.name, err)
				return
			}
			pkgs, err := cachedDB(req.CacheDir, raw, sha256hex(raw))
			if err != nil {
				errs[i] = fmt.Errorf("repository %s: reading %s: %w", rp.name, url, err)
				return
			}
			db := &syncDB{repository: rp, pkgs: pkgs, byName: make(map[string]int, len(pkgs))}
			for j, p := range pkgs {
				db.byName[p.Name] = j
			}
			u.dbs[i] = db
			if req.Progress != nil {
				req.Progress(installer.Event{Kind: installer.Index, Package: rp.name})
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for i, db := range u.dbs {
		for j, p := range db.pkgs {
			for _, pv := range p.Provides {
				u.provides[pv.Name] = append(u.provides[pv.Name], ref{i, j})
			}
			for _, g := range p.Groups {
				u.groups[g] = append(u.groups[g], ref{i, j})
			}
		}
	}
	return u, nil
}

// fileOwners returns the packages of db shipping path (relative, no
// leading "/"), from <repo>.files, downloaded once. want lists paths to
// remember from the same pass over the files database.
func (db *syncDB) fileOwners(ctx context.Context, f *fetch.Fetcher, kr *Keyring, path string, want map[string]bool) ([]string, error) {
	db.filesMu.Lock()
	defer db.filesMu.Unlock()
	if owners, ok := db.files[path]; ok {
		return owners, nil
	}
	url := db.server + "/" + db.name + ".files"
	if db.filesRaw == nil {
		raw, err := fetchDB(ctx, f, url, kr, 4<<30)
		if err != nil {
			return nil, fmt.Errorf("repository %s: %w", db.name, err)
		}
		db.filesRaw = raw
	}
	all := map[string]bool{path: true}
	for p := range want {
		all[p] = true
	}
	found, err := parseFilesDB(db.filesRaw, all)
	if err != nil {
		return nil, fmt.Errorf("repository %s: reading %s: %w", db.name, url, err)
	}
	if db.files == nil {
		db.files = map[string][]string{}
	}
	for p := range all {
		db.files[p] = found[p]
	}
	return found[path], nil
}

// where names the repositories read, for error messages.
func (u *universe) where() string {
	var names []string
	for _, db := range u.dbs {
		names = append(names, db.name)
	}
	return strings.Join(names, ", ") + " (" + u.arch + ")"
}

// sortedKeys returns the keys of m, sorted.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
