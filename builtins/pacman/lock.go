package pacman

import (
	"fmt"
	"sort"
	"strings"

	"github.com/sxb-build/sxb/builtins/installer"
)

// Lock pins the packages of a plan (see installer.Lock): exact versions,
// URLs, sizes, SHA-256 and the signatures the databases carried, and
// what the request asked for. A Request with a Lock reads no database
// and installs exactly these files; a file the mirror no longer serves
// fails the install, named. On disk:
//
//	{
//	  "version": 1,
//	  "distribution": "arch", "release": "rolling", "arch": "x86_64",
//	  "packages": [
//	    {"name": "jq", "version": "1.7.1-2", "arch": "x86_64", "repo": "extra",
//	     "url": "https://fastly.mirror.pkgbuild.com/extra/os/x86_64/jq-1.7.1-2-x86_64.pkg.tar.zst",
//	     "size": 190043, "sha256": "…", "explicit": true}
//	  ],
//	  "requested": ["jq"]
//	}
type Lock = installer.Lock[Package]

// LockOf returns the lock pinning plan.
func LockOf(plan *Plan) *Lock {
	l := installer.NewLock(plan.Distribution, plan.Release, plan.Arch, plan.Packages)
	l.Requested = append([]string{}, plan.Requested...)
	sort.Strings(l.Requested)
	return l
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
