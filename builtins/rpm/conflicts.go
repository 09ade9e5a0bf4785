// Conflicts and Obsoletes between candidates, and the final check of a
// selection.

package rpm

import (
	"fmt"
	"sort"
	"strings"
)

// blocked says why c cannot join the selection ("" when it can).
func (s *solver) blocked(c *cand, requested bool) string {
	for _, o := range s.sel {
		if s.obsoletes(o, c) {
			return fmt.Sprintf("%s is obsoleted by %s", c.nevra(), o.nevra())
		}
		if s.obsoletes(c, o) {
			return fmt.Sprintf("%s obsoletes %s", c.nevra(), o.nevra())
		}
		if s.conflicts(o, c) || s.conflicts(c, o) {
			return fmt.Sprintf("%s conflicts with %s", c.nevra(), o.nevra())
		}
	}
	// Rich conflicts of requested packages are judged on the final
	// selection (check): a later request may still satisfy them.
	if !requested {
		if why, _ := s.richConflict(c); why != "" {
			return why
		}
	}
	for _, d := range c.Conflicts {
		if !strings.HasPrefix(d.Name, "(") && s.baseHas(d) {
			return fmt.Sprintf("%s conflicts with %q in the base", c.nevra(), d.String())
		}
	}
	for _, d := range c.Obsoletes {
		if ip, ok := s.base[d.Name]; ok && overlaps(senseEqual, ParseEVR(ip.EVR), d.Flags, d.EVR) {
			return fmt.Sprintf("%s obsoletes %s in the base", c.nevra(), ip.Name)
		}
	}
	for _, ip := range s.base {
		for _, d := range ip.Conflicts {
			if s.candMatches(c, &richDep{Dep: d}) {
				return fmt.Sprintf("%s conflicts with base package %s", c.nevra(), ip.Name)
			}
		}
	}
	return ""
}

// obsoletes reports whether a obsoletes b (by name, as libsolv does by
// default).
func (s *solver) obsoletes(a, b *cand) bool {
	if a.Name == b.Name {
		return false
	}
	for _, d := range a.Obsoletes {
		if d.Name == b.Name && overlaps(senseEqual, b.EVR, d.Flags, d.EVR) {
			return true
		}
	}
	return false
}

// conflicts reports whether a conflicts with something b provides.
func (s *solver) conflicts(a, b *cand) bool {
	if a == b {
		return false
	}
	for _, d := range a.Conflicts {
		if strings.HasPrefix(d.Name, "(") {
			continue // see richConflict
		}
		if s.candMatches(b, &richDep{Dep: d}) {
			return true
		}
	}
	return false
}

// richConflict evaluates the rich Conflicts of c, and of the selection,
// as if c were selected; it says which one holds ("" when none) and
// returns the expression.
func (s *solver) richConflict(c *cand) (string, *richDep) {
	prev, had := s.sel[c.Name]
	s.sel[c.Name] = c
	defer func() {
		if had {
			s.sel[c.Name] = prev
		} else {
			delete(s.sel, c.Name)
		}
	}()
	names := make([]string, 0, len(s.sel))
	for n := range s.sel {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		o := s.sel[n]
		for _, d := range o.Conflicts {
			if !strings.HasPrefix(d.Name, "(") {
				continue
			}
			r, err := parseRich(d.Name)
			if err != nil {
				continue
			}
			if ok, _ := s.holds(r); ok {
				return fmt.Sprintf("%s conflicts with %s", o.nevra(), r.String()), r
			}
		}
	}
	return "", nil
}

// check verifies the final selection: every requirement holds and nothing
// conflicts.
func (s *solver) check() error {
	names := make([]string, 0, len(s.sel))
	for n := range s.sel {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := s.sel[n]
		for _, d := range c.Requires {
			r, err := depToRich(d)
			if err != nil {
				return fmt.Errorf("%s: %w", c.nevra(), err)
			}
			ok, err := s.satisfied(r)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%q needed by %s is not satisfied by the selection", d.String(), s.chain(c))
			}
		}
		for _, m := range names {
			o := s.sel[m]
			if s.conflicts(c, o) {
				return fmt.Errorf("%s conflicts with %s", s.chain(c), s.chain(o))
			}
		}
		if why, _ := s.richConflict(c); why != "" {
			return fmt.Errorf("%s (installing %s)", why, s.chain(c))
		}
	}
	return nil
}
