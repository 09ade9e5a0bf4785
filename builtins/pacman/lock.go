package pacman

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Lock pins the packages of a plan: exact versions, URLs, sizes, SHA-256
// and the signatures the databases carried. A Request with a Lock reads
// no database and installs exactly these files; a file the mirror no
// longer serves fails the install, named.
//
// On disk a lock is JSON (Marshal/ParseLock), packages sorted by name:
//
//	{
//	  "version": 1,
//	  "distribution": "arch", "release": "rolling", "arch": "x86_64",
//	  "packages": [
//	    {"name": "jq", "version": "1.7.1-2", "arch": "x86_64", "repo": "extra",
//	     "url": "https://fastly.mirror.pkgbuild.com/extra/os/x86_64/jq-1.7.1-2-x86_64.pkg.tar.zst",
//	     "size": 190043, "sha256": "…", "explicit": true}
//	  ]
//	}
type Lock struct {
	Version      int       `json:"version"`
	Distribution string    `json:"distribution"`
	Release      string    `json:"release"`
	Arch         string    `json:"arch"`
	Packages     []Package `json:"packages"`
	// Requested lists what the request asked for (names, virtual names,
	// groups, ...), so that the lock can be checked against a request
	// without the databases.
	Requested []string `json:"requested,omitempty"`
}

// LockOf returns the lock pinning plan.
func LockOf(plan *Plan) *Lock {
	l := &Lock{Version: 1, Distribution: plan.Distribution, Release: plan.Release, Arch: plan.Arch,
		Packages: append([]Package{}, plan.Packages...), Requested: append([]string{}, plan.Requested...)}
	sort.Strings(l.Requested)
	sort.Slice(l.Packages, func(a, b int) bool { return l.Packages[a].Name < l.Packages[b].Name })
	return l
}

// Marshal returns the on-disk form of l.
func (l *Lock) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(l); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ParseLock reads the on-disk form of a lock; name is used in errors.
func ParseLock(b []byte, name string) (*Lock, error) {
	var l Lock
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if l.Version != 1 {
		return nil, fmt.Errorf("%s: unsupported lock version %d", name, l.Version)
	}
	for i, p := range l.Packages {
		if p.Name == "" || p.Version == "" || p.URL == "" || len(p.SHA256) != 64 || p.Size <= 0 {
			return nil, fmt.Errorf("%s: package %d (%q): name, version, url, size and sha256 are required", name, i+1, p.Name)
		}
		if i > 0 && l.Packages[i-1].Name >= p.Name {
			return nil, fmt.Errorf("%s: packages not sorted by name or listed twice at %q", name, p.Name)
		}
	}
	return &l, nil
}

// planFromLock checks that the lock covers the request and turns it into
// the plan.
func planFromLock(plan *Plan, req *Request, base []*installed) (*Plan, error) {
	l := req.Lock
	if l.Arch != plan.Arch || (l.Distribution != "" && l.Distribution != plan.Distribution) {
		return nil, fmt.Errorf("lock is for %s %s, the request for %s %s: update the lock", l.Distribution, l.Arch, plan.Distribution, plan.Arch)
	}
	asked := map[string]bool{}
	for _, t := range l.Requested {
		asked[t] = true
	}
	var missing []string
	for _, t := range req.Packages {
		t = strings.TrimSpace(t)
		if t == "" || asked[t] {
			continue
		}
		d, err := ParseDep(t)
		if err != nil {
			return nil, err
		}
		found := false
		for _, p := range l.Packages {
			found = found || d.satisfiedBy(p.Name, p.Version, nil)
		}
		for _, b := range base {
			found = found || d.satisfiedBy(b.Name, b.Version, b.Provides)
		}
		if !found {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("packages %s are not in the lock: update the lock", strings.Join(missing, ", "))
	}
	plan.Packages = append([]Package{}, l.Packages...)
	plan.Requested = append([]string{}, l.Requested...)
	return plan, nil
}
