package deb

import (
	"fmt"
	"sort"
	"strings"

	"pault.ag/go/debian/version"
)

// UnsatisfiableError says why a request cannot be resolved, naming the
// dependency chain: "jq -> libjq1 (>= 1.6) -> not found in bookworm/main amd64".
type UnsatisfiableError struct {
	// Chain starts at the requested package and lists each dependency as
	// written in the control file.
	Chain  []string
	Reason string
}

// Error formats the chain: "jq -> libjq1 (>= 1.6) -> not found in ...".
func (e *UnsatisfiableError) Error() string {
	return strings.Join(append(append([]string{}, e.Chain...), e.Reason), " -> ")
}

// provide is one entry of a Provides field.
type provide struct {
	name, version string // version "" for an unversioned provide
}

// pinfo is the parsed relationship data of one package version.
type pinfo struct {
	pre, dep, rec []Alt
	conf          []Alt // Conflicts and Breaks
	prov          []provide
}

// node is a package taking part in resolution: a candidate from the
// universe or an installed package of the base.
type node struct {
	name, version, arch string
	multiArch           string
	essential           bool
	priority            string
	info                *pinfo
	idx                 int // index into universe.pkgs, -1 for base packages
}

type solver struct {
	u          *universe
	arch       string
	recommends bool
	infos      map[int]*pinfo
	cand       map[string]int // name -> candidate index
	base       map[string]*node
	sel        map[string]*node
	log        []string           // selection order, for rollback
	provided   map[string][]*node // virtual name -> selected/base providers
	conflicts  map[string][]confEntry
	preferred  map[string]bool // names preferred among alternatives
}

type confEntry struct {
	owner *node
	dep   Dep
}

func newSolver(u *universe, arch string, recommends bool, pins []Pin) *solver {
	s := &solver{u: u, arch: arch, recommends: recommends, infos: map[int]*pinfo{},
		cand: map[string]int{}, base: map[string]*node{}, sel: map[string]*node{},
		provided: map[string][]*node{}, conflicts: map[string][]confEntry{},
		preferred: map[string]bool{"usr-is-merged": true}}
	// apt's candidate: the version of highest pin priority, the highest
	// of those; a negative priority keeps a version out.
	for name, l := range u.byName {
		best, bestPrio := -1, 0
		for _, i := range l {
			prio := u.priority(pins, i)
			if prio < 0 {
				continue
			}
			if best < 0 || prio > bestPrio || prio == bestPrio && cmpVersion(u.pkgs[i].Version, u.pkgs[best].Version) > 0 {
				best, bestPrio = i, prio
			}
		}
		if best >= 0 {
			s.cand[name] = best
		}
	}
	return s
}

// cmpVersion compares Debian versions; unparsable versions compare as
// strings (they never occur in a valid archive).
func cmpVersion(a, b string) int {
	va, err1 := version.Parse(a)
	vb, err2 := version.Parse(b)
	if err1 != nil || err2 != nil {
		return strings.Compare(a, b)
	}
	return version.Compare(va, vb)
}

func relationHolds(have, op, want string) bool {
	if op == "" {
		return true
	}
	c := cmpVersion(have, want)
	switch op {
	case "<<":
		return c < 0
	case "<=":
		return c <= 0
	case "=":
		return c == 0
	case ">=":
		return c >= 0
	case ">>":
		return c > 0
	}
	return false
}

func parseInfo(depends, pre, rec, conflicts, breaks, provides, arch string) (*pinfo, error) {
	var in pinfo
	var err error
	if in.pre, err = parseDeps(pre, arch); err != nil {
		return nil, fmt.Errorf("Pre-Depends: %w", err)
	}
	if in.dep, err = parseDeps(depends, arch); err != nil {
		//lint:ignore ST1005 Depends is the control field's name
		return nil, fmt.Errorf("Depends: %w", err)
	}
	if in.rec, err = parseDeps(rec, arch); err != nil {
		//lint:ignore ST1005 Recommends is the control field's name
		return nil, fmt.Errorf("Recommends: %w", err)
	}
	c, err := parseDeps(conflicts, arch)
	if err != nil {
		//lint:ignore ST1005 Conflicts is the control field's name
		return nil, fmt.Errorf("Conflicts: %w", err)
	}
	b, err := parseDeps(breaks, arch)
	if err != nil {
		//lint:ignore ST1005 Breaks is the control field's name
		return nil, fmt.Errorf("Breaks: %w", err)
	}
	in.conf = append(c, b...)
	pv, err := parseDeps(provides, arch)
	if err != nil {
		//lint:ignore ST1005 Provides is the control field's name
		return nil, fmt.Errorf("Provides: %w", err)
	}
	for _, a := range pv {
		for _, d := range a {
			v := ""
			if d.Op == "=" {
				v = d.Version
			}
			in.prov = append(in.prov, provide{name: d.Name, version: v})
		}
	}
	return &in, nil
}

func (s *solver) node(i int) (*node, error) {
	p := &s.u.pkgs[i]
	in, ok := s.infos[i]
	if !ok {
		var err error
		in, err = parseInfo(p.Depends, p.PreDepends, p.Recommends, p.Conflicts, p.Breaks, p.Provides, s.arch)
		if err != nil {
			return nil, fmt.Errorf("package %s %s: %w", p.Name, p.Version, err)
		}
		s.infos[i] = in
	}
	return &node{name: p.Name, version: p.Version, arch: p.Arch, multiArch: p.MultiArch,
		essential: p.Essential, priority: p.Priority, info: in, idx: i}, nil
}

// addBase records an installed package of the base tree.
func (s *solver) addBase(n *node) {
	s.base[n.name] = n
	s.register(n)
}

func (s *solver) register(n *node) {
	for _, pv := range n.info.prov {
		s.provided[pv.name] = append(s.provided[pv.name], n)
	}
	for _, a := range n.info.conf {
		for _, d := range a {
			s.conflicts[d.Name] = append(s.conflicts[d.Name], confEntry{owner: n, dep: d})
		}
	}
}

func (s *solver) unregister(n *node) {
	for _, pv := range n.info.prov {
		l := s.provided[pv.name]
		for i := range l {
			if l[i] == n {
				s.provided[pv.name] = append(l[:i:i], l[i+1:]...)
				break
			}
		}
	}
	for _, a := range n.info.conf {
		for _, d := range a {
			l := s.conflicts[d.Name]
			for i := range l {
				if l[i].owner == n {
					s.conflicts[d.Name] = append(l[:i:i], l[i+1:]...)
					break
				}
			}
		}
	}
}

// installed returns the selected or base package called name.
func (s *solver) installed(name string) *node {
	if n := s.sel[name]; n != nil {
		return n
	}
	return s.base[name]
}

// satisfied reports whether a selected or base package satisfies d.
func (s *solver) satisfied(d Dep) bool {
	if n := s.installed(d.Name); n != nil && relationHolds(n.version, d.Op, d.Version) {
		return true
	}
	for _, n := range s.provided[d.Name] {
		if providesMatch(n, d) {
			return true
		}
	}
	return false
}

func providesMatch(n *node, d Dep) bool {
	for _, pv := range n.info.prov {
		if pv.name != d.Name {
			continue
		}
		if d.Op == "" {
			return true
		}
		if pv.version != "" && relationHolds(pv.version, d.Op, d.Version) {
			return true
		}
	}
	return false
}

var priorityRank = map[string]int{"required": 1, "important": 2, "standard": 3, "optional": 4, "extra": 5}

func rank(p string) int {
	if r, ok := priorityRank[p]; ok {
		return r
	}
	return 6
}

// candidates lists the candidate versions that can satisfy d, best first,
// ordered the way apt orders providers: the package itself, then
// Essential ones, then by Priority.
func (s *solver) candidates(d Dep) []int {
	var out []int
	if i, ok := s.cand[d.Name]; ok && relationHolds(s.u.pkgs[i].Version, d.Op, d.Version) {
		out = append(out, i)
	}
	var provs []int
	for _, i := range s.u.provide[d.Name] {
		p := &s.u.pkgs[i]
		if s.cand[p.Name] != i || p.Name == d.Name {
			continue
		}
		n, err := s.node(i)
		if err != nil || !providesMatch(n, d) {
			continue
		}
		provs = append(provs, i)
	}
	sort.SliceStable(provs, func(a, b int) bool {
		pa, pb := &s.u.pkgs[provs[a]], &s.u.pkgs[provs[b]]
		if s.preferred[pa.Name] != s.preferred[pb.Name] {
			return s.preferred[pa.Name]
		}
		if pa.Essential != pb.Essential {
			return pa.Essential
		}
		if ra, rb := rank(pa.Priority), rank(pb.Priority); ra != rb {
			return ra < rb
		}
		// apt's last resort: the package it numbered last.
		if ia, ib := s.u.id[pa.Name], s.u.id[pb.Name]; ia != ib {
			return ia > ib
		}
		return pa.Name > pb.Name
	})
	return append(out, provs...)
}

// conflictWith returns a selected or base package that n conflicts with
// (or that conflicts with n), or nil.
func (s *solver) conflictWith(n *node) (*node, string) {
	matches := func(target *node, d Dep) bool {
		if target.name == d.Name && relationHolds(target.version, d.Op, d.Version) {
			return true
		}
		return providesMatch(target, d)
	}
	for _, a := range n.info.conf {
		for _, d := range a {
			if m := s.installed(d.Name); m != nil && m.name != n.name && matches(m, d) {
				return m, d.String()
			}
			for _, m := range s.provided[d.Name] {
				if m.name != n.name && matches(m, d) {
					return m, d.String()
				}
			}
		}
	}
	names := []string{n.name}
	for _, pv := range n.info.prov {
		names = append(names, pv.name)
	}
	for _, name := range names {
		for _, c := range s.conflicts[name] {
			if c.owner.name != n.name && matches(n, c.dep) {
				return c.owner, c.dep.String()
			}
		}
	}
	return nil, ""
}

func (s *solver) selectNode(n *node) {
	s.sel[n.name] = n
	s.log = append(s.log, n.name)
	s.register(n)
}

func (s *solver) rollback(to int) {
	for len(s.log) > to {
		name := s.log[len(s.log)-1]
		s.log = s.log[:len(s.log)-1]
		s.unregister(s.sel[name])
		delete(s.sel, name)
		if b := s.base[name]; b != nil {
			s.register(b)
		}
	}
}

// mark selects n and, depth-first, what it depends on.
//
// A package of the base in another version is upgraded, as apt would: the
// layer then carries the candidate version.
func (s *solver) mark(n *node, chain []string) error {
	if s.sel[n.name] != nil {
		return nil
	}
	b := s.base[n.name]
	if b != nil {
		if b.version == n.version {
			return nil
		}
		s.unregister(b)
	}
	if m, d := s.conflictWith(n); m != nil {
		if b != nil {
			s.register(b)
		}
		return &UnsatisfiableError{Chain: chain, Reason: fmt.Sprintf("conflicts with %s %s (%s)", m.name, m.version, d)}
	}
	s.selectNode(n)
	return s.expand(n, chain)
}

// expand satisfies the dependencies of the selected package n.
func (s *solver) expand(n *node, chain []string) error {
	groups := append(append([]Alt{}, n.info.pre...), n.info.dep...)
	critical := len(groups)
	if s.recommends {
		groups = append(groups, n.info.rec...)
	}
	for gi, g := range groups {
		if s.groupSatisfied(g) {
			continue
		}
		err := s.satisfy(g, append(chain[:len(chain):len(chain)], g.String()))
		if err != nil && gi < critical {
			return err
		}
	}
	return nil
}

func (s *solver) groupSatisfied(g Alt) bool {
	for _, d := range g {
		if s.satisfied(d) {
			return true
		}
	}
	return false
}

// satisfy installs the first alternative of g that can be installed
// with its dependencies.
func (s *solver) satisfy(g Alt, chain []string) error {
	var firstErr error
	if len(g) > 1 {
		// sxb lays out merged /usr itself: prefer usr-is-merged where apt
		// would take usrmerge.
		sorted := append(Alt{}, g...)
		sort.SliceStable(sorted, func(a, b int) bool { return s.preferred[sorted[a].Name] && !s.preferred[sorted[b].Name] })
		g = sorted
	}
	for _, d := range g {
		cands := s.candidates(d)
		if len(cands) == 0 && firstErr == nil {
			firstErr = &UnsatisfiableError{Chain: chain, Reason: s.missing(d)}
		}
		for _, i := range cands {
			n, err := s.node(i)
			if err != nil {
				return err
			}
			mark := len(s.log)
			err = s.mark(n, chain)
			if err == nil {
				return nil
			}
			s.rollback(mark)
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	return firstErr
}

// missing explains why no candidate satisfies d.
func (s *solver) missing(d Dep) string {
	if i, ok := s.cand[d.Name]; ok {
		return fmt.Sprintf("only version %s available in %s", s.u.pkgs[i].Version, s.u.where)
	}
	if len(s.u.provide[d.Name]) > 0 {
		return fmt.Sprintf("no provider of the required version in %s", s.u.where)
	}
	return "not found in " + s.u.where
}

// verify checks that every dependency of the selection holds and no two
// selected packages conflict.
func (s *solver) verify() error {
	names := make([]string, 0, len(s.sel))
	for name := range s.sel {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		n := s.sel[name]
		for _, g := range append(append([]Alt{}, n.info.pre...), n.info.dep...) {
			if !s.groupSatisfied(g) {
				return &UnsatisfiableError{Chain: []string{name, g.String()}, Reason: "left unsatisfied"}
			}
		}
		s.unregister(n)
		delete(s.sel, name)
		m, d := s.conflictWith(n)
		s.sel[name] = n
		s.register(n)
		if m != nil {
			return &UnsatisfiableError{Chain: []string{name}, Reason: fmt.Sprintf("conflicts with %s %s (%s)", m.name, m.version, d)}
		}
	}
	return nil
}
