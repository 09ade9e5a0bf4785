package rpm

import (
	"fmt"

	"github.com/sxb-build/sxb/builtins/installer"
)

// Lock pins the packages of a plan (see installer.Lock). An rpm lock
// looks like this on disk:
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
type Lock = installer.Lock[Package]

// LockOf returns the lock pinning plan.
func LockOf(plan *Plan) *Lock {
	return installer.NewLock(plan.Distribution, plan.Release, plan.Arch, plan.Packages)
}

// ParseLock reads the on-disk form; name is used in errors.
func ParseLock(b []byte, name string) (*Lock, error) {
	return installer.ParseLock[Package](b, name)
}

// LockName is the package name, which orders a lock.
func (p Package) LockName() string { return p.Name }

// CheckPinned requires what installing exactly this file takes.
func (p Package) CheckPinned() error {
	if p.Name == "" || p.URL == "" || len(p.SHA256) != 64 {
		return fmt.Errorf("name, url and a sha256 are required")
	}
	return nil
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
	plan := &Plan{Distribution: l.Distribution, Release: l.Release, Arch: l.Arch,
		Packages: append([]Package{}, l.Packages...)}
	installer.SortPinned(plan.Packages)
	return plan, nil
}
