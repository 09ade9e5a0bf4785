package deb

import (
	"fmt"
	"strings"

	"github.com/sxb-build/sxb/builtins/installer"
)

// Lock pins the packages of a plan (see installer.Lock). A Debian lock
// looks like this on disk:
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
// Several locks (one per image) can be kept by the caller under its own
// keys.
type Lock = installer.Lock[Package]

// LockOf returns the lock pinning plan.
func LockOf(plan *Plan) *Lock {
	return installer.NewLock(plan.Distribution, plan.Release, plan.Arch, plan.Packages)
}

// ParseLock reads the on-disk form of a lock; name is used in errors.
func ParseLock(b []byte, name string) (*Lock, error) {
	return installer.ParseLock[Package](b, name)
}

// LockName is the package name, which orders a lock.
func (p Package) LockName() string { return p.Name }

// CheckPinned requires what installing exactly this file takes.
func (p Package) CheckPinned() error {
	if p.Name == "" || p.Version == "" || p.URL == "" || len(p.SHA256) != 64 || p.Size <= 0 {
		return fmt.Errorf("name, version, url, size and sha256 are required")
	}
	return nil
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
	installer.SortPinned(plan.Packages)
	return plan, nil
}
