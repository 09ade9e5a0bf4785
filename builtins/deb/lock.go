package deb

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Lock pins the packages of a plan: exact versions, URLs, sizes and
// SHA256. A build given a Lock installs exactly these files and reads no
// index; when the archive no longer serves a locked file the build fails
// and names it.
//
// On disk a lock is JSON (Marshal/ParseLock):
//
//	{
//	  "version": 1,
//	  "distribution": "debian", "release": "bookworm", "arch": "amd64",
//	  "packages": [
//	    {"name": "jq", "version": "1.6-2.1", "arch": "amd64",
//	     "source": "jq", "url": "http://deb.debian.org/debian/pool/main/j/jq/jq_1.6-2.1_amd64.deb",
//	     "size": 64816, "sha256": "…"}
//	  ]
//	}
//
// with packages sorted by name. Several locks (one per image) can be kept
// by the caller under its own keys.
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
	seen := map[string]bool{}
	for i, p := range l.Packages {
		if p.Name == "" || p.Version == "" || p.URL == "" || len(p.SHA256) != 64 || p.Size <= 0 {
			return nil, fmt.Errorf("%s: package %d (%q): name, version, url, size and sha256 are required", name, i+1, p.Name)
		}
		if seen[p.Name] {
			return nil, fmt.Errorf("%s: package %q listed twice", name, p.Name)
		}
		seen[p.Name] = true
	}
	return &l, nil
}

// planFromLock builds the plan a lock pins, after checking it covers the
// request.
func planFromLock(plan *Plan, req *Request, base []*node) (*Plan, error) {
	l := req.Lock
	if l.Arch != plan.Arch || (l.Release != "" && l.Release != plan.Release) || (l.Distribution != "" && l.Distribution != plan.Distribution) {
		return nil, fmt.Errorf("lock is for %s %s %s, the request for %s %s %s: update the lock",
			l.Distribution, l.Release, l.Arch, plan.Distribution, plan.Release, plan.Arch)
	}
	have := map[string]bool{}
	for _, p := range l.Packages {
		have[p.Name] = true
	}
	for _, n := range base {
		have[n.name] = true
	}
	var missing []string
	for _, name := range req.Packages {
		if !have[strings.TrimSpace(name)] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("packages %s are not in the lock: update the lock", strings.Join(missing, ", "))
	}
	plan.Packages = append([]Package{}, l.Packages...)
	sort.Slice(plan.Packages, func(a, b int) bool { return plan.Packages[a].Name < plan.Packages[b].Name })
	return plan, nil
}
