// The search: requested packages first, then the closure over Requires
// (plain, rich, conditional and "or"), Recommends and Supplements.

package rpm

import (
	"fmt"
	"sort"
	"strings"
)

// solve selects packages for the requested names, then closes over
// dependencies until nothing changes.
func (s *solver) solve(requests []string) error {
	s.requests = requests
	for _, req := range requests {
		d, err := parseRequest(req)
		if err != nil {
			return err
		}
		if s.baseHas(d) {
			continue
		}
		// A package name wins over other packages' provides.
		var cs []*cand
		for _, c := range s.byName[d.Name] {
			if overlaps(senseEqual, c.EVR, d.Flags, d.EVR) {
				cs = append(cs, c)
			}
		}
		if len(cs) == 0 {
			if cs, err = s.providers(d); err != nil {
				return err
			}
		}
		if len(cs) == 0 {
			return fmt.Errorf("no package provides %q (requested)", req)
		}
		if err := s.choose(cs, d.String(), nil); err != nil {
			return err
		}
	}
	if err := s.close(); err != nil {
		return err
	}
	if s.recomm {
		if err := s.supplements(); err != nil {
			return err
		}
	}
	// A conflict "(A unless B)" that holds is lifted by installing B, as
	// libsolv does; other rich conflicts are errors (check).
	for tries := 0; tries < 16; tries++ {
		var fix *richDep
		var who *cand
		names := make([]string, 0, len(s.sel))
		for n := range s.sel {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if _, r := s.richConflict(s.sel[n]); r != nil && r.Op == opUnless && len(r.Args) == 2 {
				fix, who = r, s.sel[n]
				break
			}
		}
		if fix == nil {
			break
		}
		saved := s.snapshot()
		if err := s.require(fix.Args[1], who); err != nil {
			s.restore(saved)
			break
		}
		if err := s.drain(); err != nil {
			return err
		}
	}
	return s.check()
}

// close selects packages until every pending requirement is decided.
func (s *solver) close() error {
	// Close over plain requirements first; conditional ones (if/unless)
	// wait until nothing else is pending, then those whose condition
	// holds go before else-branches, one at a time, so that an early
	// else-branch does not win over a condition that becomes true later.
	for {
		if err := s.drain(); err != nil {
			return err
		}
		pend := s.cond
		s.cond = nil
		progressed := false
		var rest []pendingRich
		for _, p := range pend {
			if s.sel[p.who.Name] != p.who {
				continue
			}
			ok, err := s.satisfied(p.r.Args[1])
			if err != nil {
				return err
			}
			if p.r.Op == opUnless {
				ok = !ok
			}
			if !ok {
				rest = append(rest, p)
				continue
			}
			before := len(s.sel)
			if err := s.require(p.r.Args[0], p.who); err != nil {
				return err
			}
			progressed = progressed || len(s.sel) != before
		}
		if progressed {
			s.cond = append(s.cond, pend...)
			continue
		}
		// Then one pending alternative that is still open.
		for len(s.ors) > 0 && !progressed {
			p := s.ors[0]
			s.ors = s.ors[1:]
			if s.sel[p.who.Name] != p.who {
				continue
			}
			ok, err := s.satisfied(p.r)
			if err != nil {
				return err
			}
			if ok {
				continue
			}
			if err := s.require(p.r, p.who); err != nil {
				return err
			}
			progressed = true
		}
		if progressed {
			s.cond = append(s.cond, pend...)
			continue
		}
		// Conditions that hold are met; take one else-branch.
		for k, p := range rest {
			if len(p.r.Args) < 3 {
				continue
			}
			ok, err := s.satisfied(p.r.Args[2])
			if err != nil {
				return err
			}
			if ok {
				continue
			}
			if err := s.require(p.r.Args[2], p.who); err != nil {
				return err
			}
			s.cond = append(s.cond, rest[k+1:]...)
			progressed = true
			break
		}
		if !progressed {
			break
		}
		s.cond = append(s.cond, pend...)
	}
	return nil
}

// supplements adds, with weak dependencies on, the packages whose
// Supplements hold for the selection (as libsolv does with weak
// dependencies), until nothing more is added. Packages that cannot be
// installed are left out.
func (s *solver) supplements() error {
	for round := 0; round < 32; round++ {
		added := false
		names := make([]string, 0, len(s.byName))
		for n := range s.byName {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if _, ok := s.sel[n]; ok {
				continue
			}
			if _, ok := s.base[n]; ok {
				continue
			}
			c := s.byName[n][0]
			if len(c.Supplements) == 0 || !s.weakly(c, func(*cand) []Dep { return nil }, c.Supplements) {
				continue
			}
			saved := s.snapshot()
			if err := s.choose([]*cand{c}, c.Name, nil); err != nil {
				s.restore(saved)
				continue
			}
			s.why[c] = "supplements"
			if err := s.close(); err != nil {
				s.restore(saved)
				continue
			}
			if err := s.check(); err != nil {
				s.restore(saved)
				continue
			}
			added = true
		}
		if !added {
			return nil
		}
	}
	return nil
}

// drain processes the requirements of newly selected packages.
func (s *solver) drain() error {
	for len(s.queue) > 0 {
		c := s.queue[0]
		s.queue = s.queue[1:]
		if s.sel[c.Name] != c {
			continue // replaced meanwhile
		}
		if err := s.requires(c); err != nil {
			return err
		}
	}
	return nil
}

// parseRequest parses "name", "name >= 1.0" or a rich expression.
func parseRequest(s string) (Dep, error) {
	f := strings.Fields(s)
	switch len(f) {
	case 1:
		return Dep{Name: f[0]}, nil
	case 3:
		if fl, ok := parseOp(f[1]); ok {
			return Dep{Name: f[0], Flags: fl, EVR: ParseEVR(f[2])}, nil
		}
	}
	return Dep{}, fmt.Errorf("package request %q: want \"name\" or \"name OP version\"", s)
}

// requires handles every Requires (and, optionally, Recommends) of c.
func (s *solver) requires(c *cand) error {
	for _, d := range c.Requires {
		r, err := depToRich(d)
		if err != nil {
			return fmt.Errorf("%s: %w", c.nevra(), err)
		}
		if err := s.requireAt(r, c, true); err != nil {
			return err
		}
	}
	if s.recomm {
		for _, d := range c.Recommends {
			r, err := depToRich(d)
			if err != nil {
				continue
			}
			// Recommends are best effort: failures leave them out.
			saved := s.snapshot()
			if err := s.require(r, c); err != nil {
				s.restore(saved)
			}
		}
	}
	return nil
}

type snap struct {
	sel   map[string]*cand
	queue []*cand
	cond  []pendingRich
	ors   []pendingRich
}

func (s *solver) snapshot() snap {
	m := make(map[string]*cand, len(s.sel))
	for k, v := range s.sel {
		m[k] = v
	}
	return snap{sel: m, queue: append([]*cand(nil), s.queue...), cond: append([]pendingRich(nil), s.cond...),
		ors: append([]pendingRich(nil), s.ors...)}
}

func (s *solver) restore(x snap) { s.sel, s.queue, s.cond, s.ors = x.sel, x.queue, x.cond, x.ors }

// ambiguous reports whether packages of several names provide d.
func (s *solver) ambiguous(d Dep) bool {
	if strings.HasPrefix(d.Name, "rpmlib(") {
		return false
	}
	ps, err := s.providers(d)
	if err != nil || len(ps) < 2 {
		return false
	}
	for _, c := range ps[1:] {
		if c.Name != ps[0].Name {
			return true
		}
	}
	return false
}

// orLeaves returns the capabilities of an "or" of plain capabilities
// (nested "or"s flattened), or nil when an alternative is more complex.
func orLeaves(r *richDep) []Dep {
	switch r.Op {
	case "":
		return []Dep{r.Dep}
	case opOr:
		var out []Dep
		for _, a := range r.Args {
			l := orLeaves(a)
			if l == nil {
				return nil
			}
			out = append(out, l...)
		}
		return out
	}
	return nil
}

func depToRich(d Dep) (*richDep, error) {
	if strings.HasPrefix(d.Name, "(") {
		return parseRich(d.Name)
	}
	return &richDep{Dep: d}, nil
}

// require makes r true, selecting packages as needed, on behalf of who.
func (s *solver) require(r *richDep, who *cand) error {
	return s.requireAt(r, who, false)
}

// requireAt is require; top marks a package's own requirement, whose
// if/unless parts are deferred to the solver's conditional phase.
func (s *solver) requireAt(r *richDep, who *cand, top bool) error {
	if top && (r.Op == opIf || r.Op == opUnless) {
		s.cond = append(s.cond, pendingRich{r, who})
		return nil
	}
	if top && (r.Op == opOr || (r.Op == "" && s.ambiguous(r.Dep))) {
		// Alternatives (an "or", or several packages providing the
		// capability) wait until the plain requirements are closed: one
		// may be installed anyway by then, and the choice policy sees
		// the recommends and supplements of everything selected, as
		// libsolv decides after unit propagation.
		if ok, err := s.satisfied(r); ok || err != nil {
			return err
		}
		s.ors = append(s.ors, pendingRich{r, who})
		return nil
	}
	if ok, err := s.satisfied(r); ok || err != nil {
		return err
	}
	switch r.Op {
	case "":
		ps, err := s.providers(r.Dep)
		if err != nil {
			return err
		}
		if len(ps) == 0 {
			return fmt.Errorf("nothing provides %q needed by %s", r.Dep.String(), s.chain(who))
		}
		return s.choose(ps, r.Dep.String(), who)
	case opAnd:
		for _, a := range r.Args {
			if err := s.require(a, who); err != nil {
				return err
			}
		}
		return nil
	case opOr:
		// Alternatives that are all plain capabilities: their providers
		// compete together, as in libsolv.
		if leaves := orLeaves(r); leaves != nil {
			var cs []*cand
			seen := map[*cand]bool{}
			for _, d := range leaves {
				ps, err := s.providers(d)
				if err != nil {
					return err
				}
				for _, c := range ps {
					if !seen[c] {
						seen[c] = true
						cs = append(cs, c)
					}
				}
			}
			if len(cs) > 0 {
				if err := s.choose(cs, r.String(), who); err == nil {
					return nil
				}
			}
		}
		// Otherwise the first alternative that can be installed wins.
		var firstErr error
		for _, a := range r.Args {
			saved := s.snapshot()
			err := s.require(a, who)
			if err == nil {
				return nil
			}
			s.restore(saved)
			if firstErr == nil {
				firstErr = err
			}
		}
		return fmt.Errorf("no alternative of %s can be installed: %w", r.String(), firstErr)
	case opIf, opUnless:
		if top {
			// Decided later, once plain requirements are closed.
			s.cond = append(s.cond, pendingRich{r, who})
			return nil
		}
		c, err := s.satisfied(r.Args[1])
		if err != nil {
			return err
		}
		if r.Op == opUnless {
			c = !c
		}
		if c {
			return s.require(r.Args[0], who)
		}
		if len(r.Args) == 3 {
			return s.require(r.Args[2], who)
		}
		return nil
	case opWith, opWithout:
		var cs []*cand
		for _, c := range s.all {
			if s.candMatches(c, r) {
				cs = append(cs, c)
			}
		}
		if len(cs) == 0 {
			return fmt.Errorf("nothing provides %s needed by %s", r.String(), s.chain(who))
		}
		return s.choose(cs, r.String(), who)
	}
	return fmt.Errorf("unknown operator %q", r.Op)
}
