package deb

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// Pin is one record of an apt preferences file (apt_preferences(5)):
// the package versions it matches get its priority.
type Pin struct {
	// Packages are the names, globs or /regular expressions/ of the
	// Package: line; empty for "*" (a general record).
	Packages []string `json:"packages,omitempty"`
	// Release holds the "Pin: release" conditions by key: a (archive,
	// the suite), n (codename), c (component), o (origin), l (label).
	Release map[string]string `json:"release,omitempty"`
	// Version is the glob of "Pin: version".
	Version string `json:"version,omitempty"`
	// Origin is the host of "Pin: origin" ("" for local repositories),
	// set when HasOrigin.
	Origin    string `json:"origin,omitempty"`
	HasOrigin bool   `json:"has_origin,omitempty"`
	Priority  int    `json:"priority"`
	// Pos is "file:line" of the record, for messages.
	Pos string `json:"pos,omitempty"`
}

// ParsePreferences reads an apt preferences file (name is for errors).
// What sxb does not implement is an error naming the line: a "Pin:
// release" key other than a, n, c, o and l (v, b), a record without
// Pin-Priority.
func ParsePreferences(name string, data []byte) ([]Pin, error) {
	var out []Pin
	err := parseParagraphs(data, func(line int, p *Paragraph) error {
		pos := fmt.Sprintf("%s:%d", name, line)
		pin := Pin{Pos: pos}
		pkgs := strings.Fields(p.Get("Package"))
		if len(pkgs) == 0 {
			return fmt.Errorf("%s: record without a Package field", pos)
		}
		if !(len(pkgs) == 1 && pkgs[0] == "*") {
			for _, n := range pkgs {
				if strings.HasPrefix(n, "/") {
					if len(n) < 2 || !strings.HasSuffix(n, "/") {
						return fmt.Errorf("%s: Package: %s: unterminated regular expression", pos, n)
					}
					if _, err := regexp.Compile(n[1 : len(n)-1]); err != nil {
						return fmt.Errorf("%s: Package: %s: %w", pos, n, err)
					}
				}
			}
			pin.Packages = pkgs
		}
		kind, arg, _ := strings.Cut(strings.TrimSpace(p.Get("Pin")), " ")
		arg = strings.TrimSpace(arg)
		switch kind {
		case "release":
			pin.Release = map[string]string{}
			for _, kv := range strings.Split(arg, ",") {
				k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
				if !ok {
					return fmt.Errorf("%s: Pin: release %s: want key=value conditions", pos, arg)
				}
				switch k {
				case "a", "n", "c", "o", "l":
					pin.Release[k] = v
				default:
					return fmt.Errorf("%s: Pin: release %s=: not supported by sxb (a, n, c, o and l are)", pos, k)
				}
			}
		case "version":
			if len(pin.Packages) == 0 {
				return fmt.Errorf("%s: Pin: version needs named packages, not \"*\"", pos)
			}
			pin.Version = arg
		case "origin":
			pin.Origin, pin.HasOrigin = strings.Trim(arg, `"`), true
		case "":
			return fmt.Errorf("%s: record without a Pin field", pos)
		default:
			return fmt.Errorf("%s: Pin: %s: want release, version or origin", pos, kind)
		}
		prio := strings.TrimSpace(p.Get("Pin-Priority"))
		n, err := strconv.Atoi(prio)
		if err != nil {
			return fmt.Errorf("%s: Pin-Priority: %q is not an integer", pos, prio)
		}
		pin.Priority = n
		out = append(out, pin)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// aptMatch matches s against an apt pattern: a /regular expression/, a
// glob, or a plain string.
func aptMatch(pattern, s string) bool {
	if len(pattern) >= 2 && strings.HasPrefix(pattern, "/") && strings.HasSuffix(pattern, "/") {
		re, err := regexp.Compile(pattern[1 : len(pattern)-1])
		return err == nil && re.MatchString(s)
	}
	ok, err := path.Match(pattern, s)
	return err == nil && ok || pattern == s
}

// relAttrs are what a pin can match of the Release file a package
// version comes from.
type relAttrs struct {
	archive, codename, origin, label string
	host                             string
	// priority is the release's own: defaultPriority, or lower for a
	// NotAutomatic release.
	priority int
}

// matches reports whether the pin applies to version v of package name
// from component comp of a release with attributes r.
func (p *Pin) matches(name, v, comp string, r relAttrs) bool {
	if len(p.Packages) > 0 {
		found := false
		for _, n := range p.Packages {
			found = found || aptMatch(n, name)
		}
		if !found {
			return false
		}
	}
	switch {
	case p.Version != "":
		return aptMatch(p.Version, v)
	case p.HasOrigin:
		return p.Origin == r.host
	}
	for k, want := range p.Release {
		var got string
		switch k {
		case "a":
			got = r.archive
		case "n":
			got = r.codename
		case "c":
			got = comp
		case "o":
			got = r.origin
		case "l":
			got = r.label
		}
		if !aptMatch(want, got) {
			return false
		}
	}
	return true
}

// hostOf is the host apt's "Pin: origin" compares with: the repository
// URL's host, "" for a local one.
func hostOf(base string) string {
	u, err := url.Parse(base)
	if err != nil || u.Scheme == "file" {
		return ""
	}
	return u.Hostname()
}

// defaultPriority is what apt gives a version no pin matches, from a
// release without NotAutomatic (which gets 1, or 100 with
// ButAutomaticUpgrades).
const defaultPriority = 500

// pinPriority is the priority of version v of package name as apt's
// policy computes it: the first record naming the package that matches,
// else the first general record that matches, else the release's own.
func pinPriority(pins []Pin, name, v, comp string, r relAttrs) int {
	for _, specific := range []bool{true, false} {
		for i := range pins {
			if (len(pins[i].Packages) > 0) == specific && pins[i].matches(name, v, comp, r) {
				return pins[i].Priority
			}
		}
	}
	if r.priority == 0 {
		return defaultPriority // no release known
	}
	return r.priority
}
