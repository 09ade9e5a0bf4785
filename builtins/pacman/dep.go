package pacman

import (
	"fmt"
	"strings"
)

// Op is the comparison of a versioned dependency.
type Op uint8

// The comparisons a dependency string can carry.
const (
	Any Op = iota // no version
	EQ            // =
	GE            // >=
	LE            // <=
	GT            // >
	LT            // <
)

var opText = [...]string{Any: "", EQ: "=", GE: ">=", LE: "<=", GT: ">", LT: "<"}

// Dep is a dependency, provision or conflict as pacman writes them:
// "name", "name=1.0-1", "name>=2", with an optional ": description"
// (optional dependencies).
type Dep struct {
	Name    string `json:"name"`
	Op      Op     `json:"op,omitempty"`
	Version string `json:"version,omitempty"`
}

// String writes d back as pacman does.
func (d Dep) String() string {
	if d.Op == Any {
		return d.Name
	}
	return d.Name + opText[d.Op] + d.Version
}

// ParseDep reads a dependency string as alpm_dep_from_string does: a
// description follows ": ", and the first "<", else ">", else "=" starts
// the comparison.
func ParseDep(s string) (Dep, error) {
	if i := strings.Index(s, ": "); i >= 0 {
		s = s[:i]
	}
	var d Dep
	rest := ""
	if i := strings.IndexByte(s, '<'); i >= 0 {
		d.Name, rest, d.Op = s[:i], s[i+1:], LT
		if strings.HasPrefix(rest, "=") {
			d.Op, rest = LE, rest[1:]
		}
	} else if i := strings.IndexByte(s, '>'); i >= 0 {
		d.Name, rest, d.Op = s[:i], s[i+1:], GT
		if strings.HasPrefix(rest, "=") {
			d.Op, rest = GE, rest[1:]
		}
	} else if i := strings.IndexByte(s, '='); i >= 0 {
		d.Name, rest, d.Op = s[:i], s[i+1:], EQ
	} else {
		d.Name = s
	}
	d.Version = rest
	if d.Name == "" || strings.ContainsAny(d.Name, " \t\n") {
		return Dep{}, fmt.Errorf("malformed dependency %q", s)
	}
	return d, nil
}

// versionOK reports whether version v meets d's comparison.
func (d Dep) versionOK(v string) bool {
	if d.Op == Any {
		return true
	}
	c := Vercmp(v, d.Version)
	switch d.Op {
	case EQ:
		return c == 0
	case GE:
		return c >= 0
	case LE:
		return c <= 0
	case GT:
		return c > 0
	case LT:
		return c < 0
	}
	return true
}

// satisfiedBy reports whether a package named name at version, providing
// provides, meets d, as alpm's _alpm_depcmp: by name and version, or by a
// provision of the same name, which meets a versioned dependency only
// when it carries "=version" itself.
func (d Dep) satisfiedBy(name, version string, provides []Dep) bool {
	if name == d.Name && d.versionOK(version) {
		return true
	}
	return d.providedBy(provides)
}

// providedBy is the provision half of satisfiedBy.
func (d Dep) providedBy(provides []Dep) bool {
	for _, p := range provides {
		if p.Name != d.Name {
			continue
		}
		if d.Op == Any || (p.Op == EQ && d.versionOK(p.Version)) {
			return true
		}
	}
	return false
}

// parseDeps parses a list of dependency strings; what names the list in
// errors.
func parseDeps(list []string, what string) ([]Dep, error) {
	if len(list) == 0 {
		return nil, nil
	}
	out := make([]Dep, 0, len(list))
	for _, s := range list {
		d, err := ParseDep(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, d)
	}
	return out, nil
}
