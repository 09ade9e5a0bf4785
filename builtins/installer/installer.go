// Package installer holds what the native package installers
// (builtins/deb, builtins/rpm, builtins/pacman) share, so that they have one shape: the
// progress events they report and the lock files that pin their plans.
package installer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
)

// Kind says what an Event reports.
type Kind string

// The events Resolve and Install report.
const (
	// Index: a repository index was read; Package names it (Debian:
	// suite/component, rpm: the repository URL), Done of Count when known.
	Index Kind = "index"
	// Resolved: the plan holds Count packages.
	Resolved Kind = "resolved"
	// Download: Done of Count package files are there, Bytes of Total.
	Download Kind = "download"
	// Extract: Package was unpacked (Debian) or is being unpacked (rpm);
	// Done of Count.
	Extract Kind = "extract"
	// Scripts: the packages are unpacked and their maintainer scripts
	// (and the triggers they set off) start running; Count packages.
	Scripts Kind = "scripts"
	// Done: all Count packages are installed.
	Done Kind = "done"
)

// Event is a progress report of Resolve or Install.
type Event struct {
	Kind        Kind
	Package     string
	Done, Count int
	// Bytes and Total count downloaded and expected bytes.
	Bytes, Total int64
}

// LockVersion is the version of the lock format Lock reads and writes.
const LockVersion = 1

// Pinned is a package as a lock records it.
type Pinned interface {
	// LockName is the package's name: it orders a lock and is unique in
	// it.
	LockName() string
	// CheckPinned says what the entry lacks to be installed exactly
	// (nil when complete).
	CheckPinned() error
}

// Lock pins the packages of a plan: exact versions, URLs, sizes and
// SHA-256 digests. An installer given a Lock reads no index and installs
// exactly these files; when the mirror no longer serves one, the install
// fails and names it.
//
// On disk a lock is JSON (Marshal, ParseLock), with the packages sorted by
// name:
//
//	{
//	  "version": 1,
//	  "distribution": "debian", "release": "bookworm", "arch": "amd64",
//	  "packages": [ {"name": "jq", ...}, ... ]
//	}
type Lock[P Pinned] struct {
	Version      int    `json:"version"`
	Distribution string `json:"distribution"`
	Release      string `json:"release"`
	Arch         string `json:"arch"`
	Packages     []P    `json:"packages"`
	// Requested lists what the request asked for, when the installer
	// needs it to check a request against the lock without indexes
	// (pacman: names, virtual names, groups), sorted.
	Requested []string `json:"requested,omitempty"`
}

// NewLock returns the lock of packages, sorted by name.
func NewLock[P Pinned](distribution, release, arch string, packages []P) *Lock[P] {
	l := &Lock[P]{Version: LockVersion, Distribution: distribution, Release: release, Arch: arch,
		Packages: append([]P{}, packages...)}
	SortPinned(l.Packages)
	return l
}

// SortPinned sorts packages by name.
func SortPinned[P Pinned](packages []P) {
	sort.Slice(packages, func(a, b int) bool { return packages[a].LockName() < packages[b].LockName() })
}

// Marshal returns the on-disk form of l.
func (l *Lock[P]) Marshal() ([]byte, error) {
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
// Unknown fields, another version, incomplete packages and a name listed
// twice are errors.
func ParseLock[P Pinned](b []byte, name string) (*Lock[P], error) {
	var l Lock[P]
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if l.Version != LockVersion {
		return nil, fmt.Errorf("%s: unsupported lock version %d", name, l.Version)
	}
	seen := map[string]bool{}
	for i, p := range l.Packages {
		if err := p.CheckPinned(); err != nil {
			return nil, fmt.Errorf("%s: package %d (%q): %w", name, i+1, p.LockName(), err)
		}
		if seen[p.LockName()] {
			return nil, fmt.Errorf("%s: package %q listed twice", name, p.LockName())
		}
		seen[p.LockName()] = true
	}
	return &l, nil
}
