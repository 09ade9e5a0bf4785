package deb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/sxb-build/sxb/builtins/fetch"
	"github.com/sxb-build/sxb/builtins/installer"
)

// source is one suite of one repository to read indexes from.
type source struct {
	base     string // mirror URL without trailing slash
	suite    string
	optional bool // a missing suite (no -updates for sid) is skipped
	// comps and keyring, when set, replace the request's components and
	// keyring (a Source's).
	comps   []string
	keyring string
}

// defaultMirror returns the default mirror and security mirror for a
// distribution and Debian architecture.
func defaultMirror(distribution, arch string) (mirror, security string) {
	switch distribution {
	case "ubuntu":
		if arch == "amd64" || arch == "i386" {
			return "http://archive.ubuntu.com/ubuntu", "http://security.ubuntu.com/ubuntu"
		}
		return "http://ports.ubuntu.com/ubuntu-ports", "http://ports.ubuntu.com/ubuntu-ports"
	default:
		return "http://deb.debian.org/debian", "http://deb.debian.org/debian-security"
	}
}

// sources lists the suites a request reads: <release>, <release>-updates
// and <release>-security (the latter on the security mirror). Suites other
// than <release> are optional: a mirror that does not carry them (a local
// test mirror, sid) is read without them.
func (r *Request) sources(arch string) []source {
	var extra []source
	for _, s := range r.Sources {
		if len(s.Architectures) > 0 && !slices.Contains(s.Architectures, arch) {
			continue
		}
		for _, suite := range s.Suites {
			extra = append(extra, source{base: strings.TrimRight(s.URI, "/"), suite: suite, comps: s.Components, keyring: s.Keyring})
		}
	}
	if r.NoDefaultSources {
		return extra
	}
	return append(r.defaultSources(arch), extra...)
}

// defaultSources are the suites read without Sources.
func (r *Request) defaultSources(arch string) []source {
	if len(r.Suites) > 0 {
		var out []source
		for _, s := range r.Suites {
			out = append(out, source{base: strings.TrimRight(r.mirror(arch), "/"), suite: s})
		}
		return out
	}
	mirror := r.mirror(arch)
	_, sec := defaultMirror(r.Distribution, arch)
	if r.SecurityMirror != "" {
		sec = r.SecurityMirror
	} else if strings.HasPrefix(r.Mirror, "file:") {
		// A local mirror is self-contained (and may be used offline).
		sec = r.Mirror
	}
	mirror = strings.TrimRight(mirror, "/")
	sec = strings.TrimRight(sec, "/")
	out := []source{{base: mirror, suite: r.Release}}
	if r.Release == "sid" || r.Release == "unstable" || r.Release == "experimental" {
		return out
	}
	return append(out,
		source{base: mirror, suite: r.Release + "-updates", optional: true},
		source{base: sec, suite: r.Release + "-security", optional: true})
}

func (r *Request) mirror(arch string) string {
	if r.Mirror != "" {
		return r.Mirror
	}
	m, _ := defaultMirror(r.Distribution, arch)
	return m
}

// keyring loads the keyring named by the request or the distribution's
// default.
func (r *Request) keyring() (openpgp.EntityList, error) {
	if r.Keyring != "" {
		return loadKeyring(r.Keyring)
	}
	for _, p := range defaultKeyrings(r.Distribution) {
		if _, err := os.Stat(p); err == nil {
			return loadKeyring(p)
		}
	}
	return nil, fmt.Errorf("no keyring for %s: install its archive keyring (%s) or set keyring",
		r.Distribution, strings.Join(defaultKeyrings(r.Distribution), ", "))
}

// fetchRelease downloads and verifies dists/<suite>/InRelease, falling back
// to Release + Release.gpg. It returns (nil, nil) for an optional suite
// that does not exist.
// get reads a file whose digest is not known in advance (fetch.Fetcher.Get).
func fetchRelease(src source, get func(string) ([]byte, error), kr openpgp.EntityList, insecure bool, now time.Time) (*release, error) {
	dist := src.base + "/dists/" + src.suite + "/"
	var text []byte
	in, err := get(dist + "InRelease")
	switch {
	case err == nil:
		if insecure {
			text = in
			if t, err := verifyInRelease(in, kr, now); err == nil {
				text = t
			} else if t := stripClearsign(in); t != nil {
				text = t
			}
		} else {
			t, err := verifyInRelease(in, kr, now)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", dist+"InRelease", err)
			}
			text = t
		}
	case errors.Is(err, fetch.ErrNotFound):
		rel, err := get(dist + "Release")
		if errors.Is(err, fetch.ErrNotFound) && src.optional {
			return nil, nil
		}
		if errors.Is(err, fetch.ErrNotFound) {
			return nil, fmt.Errorf("suite %q not found at %s (neither dists/%s/InRelease nor Release exists): check the release name and the mirror: %w",
				src.suite, src.base, src.suite, err)
		}
		if err != nil {
			return nil, err
		}
		if !insecure {
			sig, err := get(dist + "Release.gpg")
			if errors.Is(err, fetch.ErrNotFound) {
				return nil, fmt.Errorf("%s: unsigned repository (no InRelease, no Release.gpg): %w", dist, ErrSignature)
			}
			if err != nil {
				return nil, err
			}
			if err := verifyDetached(rel, sig, kr, now); err != nil {
				return nil, fmt.Errorf("%s: %w", dist+"Release", err)
			}
		}
		text = rel
	default:
		return nil, err
	}
	r, err := parseRelease(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dist+"Release", err)
	}
	if !insecure && !r.ValidUntil.IsZero() && now.After(r.ValidUntil) {
		return nil, fmt.Errorf("%s: Release expired on %s (stale or replayed mirror)", dist, r.ValidUntil.Format(time.RFC1123))
	}
	return r, nil
}

// stripClearsign returns the text of a clearsigned message without checking
// it, for insecure mode.
func stripClearsign(b []byte) []byte {
	s := string(b)
	i := strings.Index(s, "\n\n")
	j := strings.Index(s, "\n-----BEGIN PGP SIGNATURE-----")
	if !strings.HasPrefix(s, "-----BEGIN PGP SIGNED MESSAGE-----") || i < 0 || j < i {
		return nil
	}
	return []byte(s[i+2 : j+1])
}

// indexFile picks the best Packages index a Release lists for comp/arch.
func indexFile(r *release, comp, arch string) (string, fileSum, bool) {
	exts := []string{".gz", ".xz", ".zst", ""}
	if hasXZ() != "" {
		// The host's xz decodes faster than Go's gzip; .xz is smaller.
		exts = []string{".xz", ".gz", ".zst", ""}
	}
	for _, ext := range exts {
		name := comp + "/binary-" + arch + "/Packages" + ext
		if fs, ok := r.files[name]; ok {
			return name, fs, true
		}
	}
	return "", fileSum{}, false
}

// index is one Packages index a Release lists.
type index struct {
	// url is where it is fetched (by hash when the Release says so),
	// canonical its name in the suite; name is the Release's
	// ("main/binary-amd64/Packages.xz"); origin "<suite>/<component>".
	url, canonical, name, origin, base string
	sum                                fileSum
}

// universe is every package version the request's suites offer.
type universe struct {
	arch    string
	pkgs    []Pkg
	byName  map[string][]int // package name -> versions (indexes into pkgs)
	provide map[string][]int // virtual name -> providing versions
	// where lists the suites/components read, for error messages.
	where string
	// id numbers package names in the order apt's cache would (first
	// mention in the indexes); the last tie-breaker among providers.
	id map[string]int
	// rels holds what pins match of each release read, by base URL and
	// suite (relKey).
	rels map[string]relAttrs
}

func relKey(base, suite string) string { return base + "\x00" + suite }

// priority is the pin priority of version i (see pinPriority).
func (u *universe) priority(pins []Pin, i int) int {
	p := &u.pkgs[i]
	suite, comp, _ := strings.Cut(p.Origin, "/")
	return pinPriority(pins, p.Name, p.Version, comp, u.rels[relKey(p.Base, suite)])
}

// loadUniverse fetches, verifies and parses every index of the request.
func loadUniverse(ctx context.Context, req *Request, arch string, f *fetch.Fetcher, progress func(installer.Event)) (*universe, error) {
	comps := req.Components
	if len(comps) == 0 {
		comps = []string{"main"}
	}
	srcs := req.sources(arch)
	if len(srcs) == 0 {
		return nil, fmt.Errorf("no repositories to read")
	}
	var kr openpgp.EntityList
	if !req.Insecure && slices.ContainsFunc(srcs, func(s source) bool { return s.keyring == "" }) {
		var err error
		if kr, err = req.keyring(); err != nil {
			return nil, err
		}
	}
	// Keyrings of sources that name their own (Signed-By=).
	keyrings := map[string]openpgp.EntityList{}
	for _, s := range srcs {
		if s.keyring == "" || req.Insecure || keyrings[s.keyring] != nil {
			continue
		}
		k, err := loadKeyring(s.keyring)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.base, err)
		}
		keyrings[s.keyring] = k
	}
	now := req.now()
	get := func(u string) ([]byte, error) { return f.Get(ctx, u, 0) }
	// The signed Release of every source first: its index digests name
	// the universe, which a shared Indexes may hold already.
	type result struct {
		indexes  []index
		pkgs     [][]Pkg
		mentions [][]string
		err      error
		rel      relAttrs
		key      string
	}
	results := make([]result, len(srcs))
	var wg sync.WaitGroup
	for i, src := range srcs {
		wg.Add(1)
		go func(i int, src source) {
			defer wg.Done()
			skr, scomps := kr, comps
			if src.keyring != "" {
				skr = keyrings[src.keyring]
			}
			if len(src.comps) > 0 {
				scomps = src.comps
			}
			// The same file verified against the same keyring gives the
			// same answer within a build.
			who := src.keyring
			if who == "" {
				who = req.Keyring
			}
			rkey := fmt.Sprintf("%s\x00%s\x00%s\x00%v", src.base, src.suite, who, req.Insecure)
			rel, err := req.Indexes.release(rkey, func() (*release, error) {
				return fetchRelease(src, get, skr, req.Insecure, now)
			})
			if err != nil || rel == nil {
				results[i].err = err
				return
			}
			results[i].key = relKey(src.base, src.suite)
			results[i].rel = relAttrs{archive: rel.Suite, codename: rel.Codename, origin: rel.Origin, label: rel.Label, host: hostOf(src.base),
				priority: defaultPriority}
			if rel.NotAutomatic {
				results[i].rel.priority = 1
				if rel.ButAutomaticUpgrades {
					results[i].rel.priority = 100
				}
			}
			for _, comp := range scomps {
				name, sum, ok := indexFile(rel, comp, arch)
				if !ok {
					if src.optional {
						continue
					}
					results[i].err = fmt.Errorf("%s/dists/%s: no Packages index for %s/binary-%s", src.base, src.suite, comp, arch)
					return
				}
				dir := src.base + "/dists/" + src.suite + "/"
				ix := index{url: dir + name, canonical: dir + name, name: name, origin: src.suite + "/" + comp, base: src.base, sum: sum}
				if rel.ByHash {
					ix.url = dir + name[:strings.LastIndexByte(name, '/')+1] + "by-hash/SHA256/" + sum.sha
				}
				results[i].indexes = append(results[i].indexes, ix)
			}
		}(i, src)
	}
	wg.Wait()
	var key strings.Builder
	key.WriteString(arch)
	for _, r := range results {
		if r.err != nil {
			return nil, r.err
		}
		// What pins match belongs to the universe as much as its indexes.
		fmt.Fprintf(&key, "\x00%q\x00%v", r.key, r.rel)
		for _, ix := range r.indexes {
			fmt.Fprintf(&key, "\x00%s\x00%s\x00%s", ix.origin, ix.base, ix.sum.sha)
		}
	}
	return req.Indexes.universe(key.String(), func() (*universe, error) {
		for i := range results {
			results[i].pkgs = make([][]Pkg, len(results[i].indexes))
			results[i].mentions = make([][]string, len(results[i].indexes))
		}
		errs := make([][]error, len(srcs))
		for i := range results {
			errs[i] = make([]error, len(results[i].indexes))
			for j, ix := range results[i].indexes {
				wg.Add(1)
				go func(i, j int, ix index) {
					defer wg.Done()
					pi, err := readIndex(ctx, f, req.CacheDir, ix)
					if err != nil {
						errs[i][j] = err
						return
					}
					if progress != nil {
						progress(installer.Event{Kind: installer.Index, Package: ix.origin})
					}
					results[i].pkgs[j], results[i].mentions[j] = pi.Pkgs, pi.Mentions
				}(i, j, ix)
			}
		}
		wg.Wait()
		for _, l := range errs {
			for _, err := range l {
				if err != nil {
					return nil, err
				}
			}
		}
		var read []string
		total := 0
		for _, r := range results {
			for _, p := range r.pkgs {
				total += len(p)
			}
			for _, ix := range r.indexes {
				read = append(read, ix.origin)
			}
		}
		u := &universe{arch: arch, byName: map[string][]int{}, provide: map[string][]int{}, id: map[string]int{}, rels: map[string]relAttrs{}}
		u.pkgs = make([]Pkg, 0, total)
		for _, r := range results {
			if r.key != "" {
				u.rels[r.key] = r.rel
			}
			for j := range r.indexes {
				for _, m := range r.mentions[j] {
					if _, ok := u.id[m]; !ok {
						u.id[m] = len(u.id)
					}
				}
				for _, p := range r.pkgs[j] {
					if p.Arch != arch && p.Arch != "all" {
						continue
					}
					u.pkgs = append(u.pkgs, p)
				}
				r.pkgs[j] = nil // copied: the collector may take it
			}
		}
		return u.index(read), nil
	})
}

// index fills the lookup tables of u from u.pkgs; read lists the
// suites/components the packages come from.
func (u *universe) index(read []string) *universe {
	u.where = strings.Join(read, ", ") + " " + u.arch
	if len(read) == 1 {
		u.where = read[0] + " " + u.arch
	} else if len(read) > 1 {
		u.where = strings.Join(read, ", ") + " " + u.arch
	}
	for i := range u.pkgs {
		p := &u.pkgs[i]
		u.byName[p.Name] = append(u.byName[p.Name], i)
	}
	// Provides are indexed lazily per virtual name by the resolver; build
	// the table once here (it is small next to the package list).
	for i := range u.pkgs {
		p := &u.pkgs[i]
		if p.Provides == "" {
			continue
		}
		for _, part := range strings.Split(p.Provides, ",") {
			name := strings.TrimSpace(part)
			if j := strings.IndexAny(name, " (:"); j >= 0 {
				name = name[:j]
			}
			if name != "" {
				u.provide[name] = append(u.provide[name], i)
			}
		}
	}
	for _, l := range u.byName {
		sort.Ints(l)
	}
	return u
}
