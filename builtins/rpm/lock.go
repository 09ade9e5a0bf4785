package rpm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
)

// Lock pins the packages of a plan: exact EVRs, URLs, sizes and SHA-256.
// A Request with a Lock reads no repository metadata and installs exactly
// these files; when the mirror no longer serves a locked file the install
// fails and names it.
//
// On disk a lock is JSON (Marshal/ParseLock):
//
//	{
//	  "version": 1,
//	  "distribution": "opensuse", "release": "tumbleweed", "arch": "x86_64",
//	  "packages": [
//	    {"name": "helm", "evr": "3.16.2-1.1", "arch": "x86_64",
//	     "url": "https://download.opensuse.org/tumbleweed/repo/oss/x86_64/helm-3.16.2-1.1.x86_64.rpm",
//	     "size": 16011936, "sha256": "…"}
//	  ]
//	}
//
// with packages sorted by name.
type Lock struct {
	Version      int       `json:"version"`
	Distribution string    `json:"distribution"`
	Release      string    `json:"release"`
	Arch         string    `json:"arch"`
	Packages     []Package `json:"packages"`
}

// LockOf returns the lock pinning plan.
func LockOf(plan *Plan) *Lock {
	l := &Lock{Version: 1, Distribution: plan.Distribution, Release: plan.Release, Arch: plan.Arch,
		Packages: append([]Package{}, plan.Packages...)}
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

// ParseLock reads the on-disk form; name is used in errors.
func ParseLock(b []byte, name string) (*Lock, error) {
	var l Lock
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if l.Version != 1 {
		return nil, fmt.Errorf("%s: unknown lock version %d", name, l.Version)
	}
	for i, p := range l.Packages {
		if p.Name == "" || p.URL == "" || len(p.SHA256) != 64 {
			return nil, fmt.Errorf("%s: package %d: name, url and a sha256 are required", name, i+1)
		}
		if i > 0 && l.Packages[i-1].Name >= p.Name {
			return nil, fmt.Errorf("%s: packages not sorted by name or duplicated at %q", name, p.Name)
		}
	}
	return &l, nil
}

// planFromLock checks that the lock covers the request and turns it into a
// plan.
func planFromLock(req Request, arch string, l *Lock) (*Plan, error) {
	if l.Distribution != req.Distribution || l.Arch != arch || (req.Release != "" && l.Release != req.Release) {
		return nil, fmt.Errorf("lock is for %s %s %s, not %s %s %s", l.Distribution, l.Release, l.Arch, req.Distribution, req.Release, arch)
	}
	byName := map[string]Package{}
	for _, p := range l.Packages {
		byName[p.Name] = p
	}
	for _, r := range req.Packages {
		d, err := parseRequest(r)
		if err != nil {
			return nil, err
		}
		p, ok := byName[d.Name]
		if !ok {
			return nil, fmt.Errorf("requested package %q is not in the lock", r)
		}
		if !overlaps(senseEqual, ParseEVR(p.EVR), d.Flags, d.EVR) {
			return nil, fmt.Errorf("requested %q but the lock pins %s", r, p.NEVRA())
		}
	}
	return &Plan{Distribution: l.Distribution, Release: l.Release, Arch: l.Arch,
		Packages: append([]Package{}, l.Packages...)}, nil
}
