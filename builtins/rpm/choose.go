// Choosing among candidates that satisfy one requirement, as libsolv's
// policy does.

package rpm

import (
	"fmt"
	"sort"
	"strings"
)

// choose selects the best installable package among cs.
func (s *solver) choose(cs []*cand, what string, who *cand) error {
	for _, c := range cs {
		if s.sel[c.Name] == c {
			return nil
		}
	}
	// Group by name; the name closest to the request first, then by name.
	names := map[string][]*cand{}
	var order []string
	for _, c := range cs {
		if _, ok := names[c.Name]; !ok {
			order = append(order, c.Name)
		}
		names[c.Name] = append(names[c.Name], c)
	}
	s.rankNames(order, names)
	var reasons []string
	for _, n := range order {
		if _, inBase := s.base[n]; inBase {
			reasons = append(reasons, n+" is in the base with another version")
			continue
		}
		if cur, ok := s.sel[n]; ok {
			reasons = append(reasons, fmt.Sprintf("%s is already selected", cur.nevra()))
			continue
		}
		l := names[n]
		sortBest(l)
		for _, c := range l {
			if why := s.blocked(c, who == nil); why != "" {
				reasons = append(reasons, why)
				continue
			}
			s.sel[c.Name] = c
			if who == nil {
				s.why[c] = "requested"
			} else {
				s.why[c] = who.Name
			}
			s.queue = append(s.queue, c)
			return nil
		}
	}
	by := "requested"
	if who != nil {
		by = s.chain(who)
	}
	return fmt.Errorf("cannot install a provider of %q needed by %s: %s", what, by, strings.Join(reasons, "; "))
}

// rankNames orders competing package names as libsolv's policy does:
// names whose best version another candidate obsoletes go last; names
// recommended by a selected package (or supplementing the selection) go
// first, then suggested (or enhancing) ones; otherwise alphabetical (it
// does not prefer a package named like the capability).
func (s *solver) rankNames(order []string, names map[string][]*cand) {
	sort.Strings(order)
	if len(order) < 2 {
		return
	}
	best := map[string]*cand{}
	for _, n := range order {
		l := names[n]
		sortBest(l)
		best[n] = l[0]
	}
	rank := map[string]int{}
	for _, n := range order {
		c := best[n]
		r := 2
		switch {
		case s.weakly(c, func(o *cand) []Dep { return o.Recommends }, c.Supplements):
			r = 0
		case s.weakly(c, func(o *cand) []Dep { return o.Suggests }, c.Enhances):
			r = 1
		}
		for _, m := range order {
			if m != n && s.obsoletes(best[m], c) {
				r = 3
			}
		}
		rank[n] = r
	}
	sort.SliceStable(order, func(i, j int) bool { return rank[order[i]] < rank[order[j]] })
}

// weakly reports whether a selected package names c in its weak
// dependencies (deps), or c's reverse weak dependencies (rev) hold for
// the selection.
func (s *solver) weakly(c *cand, deps func(*cand) []Dep, rev []Dep) bool {
	for _, o := range s.sel {
		for _, d := range deps(o) {
			r, err := depToRich(d)
			if err != nil {
				continue
			}
			for _, leaf := range richLeaves(r) {
				if s.candMatches(c, &richDep{Dep: leaf}) {
					return true
				}
			}
		}
	}
	for _, d := range rev {
		r, err := depToRich(d)
		if err != nil {
			continue
		}
		if ok, _ := s.satisfied(r); ok {
			return true
		}
	}
	return false
}

// richLeaves returns every capability a dependency names.
func richLeaves(r *richDep) []Dep {
	if r.Op == "" {
		return []Dep{r.Dep}
	}
	var out []Dep
	for _, a := range r.Args {
		out = append(out, richLeaves(a)...)
	}
	return out
}
