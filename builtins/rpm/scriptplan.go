package rpm

import (
	"fmt"
	"sort"
	"strings"

	rpmutils "github.com/sassoftware/go-rpmutils"
)

// Scriptlets and triggers, as rpm runs them when it installs packages.
//
// A package header carries its scriptlets (%pretrans, %pre, %post,
// %posttrans: an interpreter with its arguments and a body), its triggers
// on other packages (%triggerprein, %triggerin: conditions on package
// names and versions) and its file triggers (%filetriggerin and
// %transfiletriggerin: path prefixes, a priority). planScripts turns the
// headers of the packages being installed, and the triggers and file lists
// of the packages already in the tree (the base), into the sequence rpm's
// transaction would run:
//
//  1. every new package's %pretrans;
//  2. per package, in install order: the %triggerprein of installed
//     packages naming it and its own naming installed packages, its %pre,
//     (unpacking), the %filetriggerin with a priority of 10000 or more
//     that its files set off (installed packages' own, the package's
//     itself included, with its matching files on stdin) and its own
//     such triggers matching files of the other installed packages, its
//     %post, the %triggerin as for %triggerprein, then the
//     %filetriggerin below priority 10000 as above;
//  3. every new package's %posttrans;
//  4. the %transfiletriggerin of packages that were installed before
//     (the base) that the new files set off, with the new matching files
//     on stdin, then each new package's own with matching files of every
//     installed package.
//
// File triggers run in descending priority, then in install order. A
// prefix matches a path that starts with it (as strings). Since sxb never
// upgrades or removes packages, every count rpm passes as $1 and $2 is 1,
// and the un/postun variants never fire. Lua scriptlets (interpreter
// "<lua>") and scriptlets rpm expands as macros or query formats first
// cannot run without rpm: they are reported, never run.

// Scriptlet is one program a package gives rpm to run.
type Scriptlet struct {
	// Prog is the interpreter and its arguments ("/bin/sh"), "<lua>" for
	// rpm's embedded Lua.
	Prog []string `json:"prog,omitempty"`
	// Body is the script, written to a file and passed to Prog with the
	// arguments; empty for "-p /sbin/ldconfig", which runs Prog alone.
	Body string `json:"body,omitempty"`
	// Flags are rpm's RPMSCRIPT_FLAG bits (1 expand macros, 2 query
	// format, 4 critical).
	Flags uint32 `json:"flags,omitempty"`
}

// Script flags sxb cannot honour: the body is expanded by rpm first.
const scriptFlagExpand, scriptFlagQformat = 1, 2

// why says why s cannot run outside rpm ("" when it can).
func (s Scriptlet) why() string {
	switch {
	case len(s.Prog) > 0 && s.Prog[0] == "<lua>":
		return "lua"
	case s.Flags&scriptFlagExpand != 0:
		return "macro expansion"
	case s.Flags&scriptFlagQformat != 0:
		return "query format expansion"
	case len(s.Prog) == 0 || !strings.HasPrefix(s.Prog[0], "/"):
		return "no interpreter"
	}
	return ""
}

// Trigger is a %trigger scriptlet: it runs when a package matching one of
// Conds is installed (or, when its own package is installed, if one is
// already there).
type Trigger struct {
	// Sense is "prein", "in", "un" or "postun".
	Sense  string    `json:"sense"`
	Conds  []Dep     `json:"conds"`
	Script Scriptlet `json:"script"`
}

// FileTrigger is a %filetriggerin (or %transfiletriggerin with Trans, ...)
// scriptlet: it runs when files under one of Prefixes are installed, with
// their paths on stdin.
type FileTrigger struct {
	Sense    string    `json:"sense"`
	Trans    bool      `json:"trans,omitempty"`
	Prefixes []string  `json:"prefixes"`
	Priority uint32    `json:"priority"`
	Script   Scriptlet `json:"script"`
}

// Header tags of scriptlets and triggers (rpmtag.h).
const (
	tagPrein, tagPostin               = 1023, 1024
	tagPreinProg, tagPostinProg       = 1085, 1086
	tagPretrans, tagPosttrans         = 1151, 1152
	tagPretransProg, tagPosttransProg = 1153, 1154
	tagPreinFlags, tagPostinFlags     = 5020, 5021
	tagPretransFlags, tagPosttransFlg = 5024, 5025

	tagTriggerScripts, tagTriggerName, tagTriggerVersion = 1065, 1066, 1067
	tagTriggerFlags, tagTriggerIndex, tagTriggerProg     = 1068, 1069, 1092
	tagTriggerScriptFlags                                = 5027

	tagFileTriggerScripts, tagFileTriggerProg, tagFileTriggerScriptFlags = 5066, 5067, 5068
	tagFileTriggerName, tagFileTriggerIndex, tagFileTriggerFlags         = 5069, 5070, 5072
	tagTransFileTriggerScripts                                           = 5076 // the others follow at the same offsets
	tagFileTriggerPriorities, tagTransFileTriggerPriorities              = 5084, 5085
)

// Trigger senses (RPMSENSE_TRIGGER* in rpmds.h).
var triggerSenses = []struct {
	bit  uint32
	name string
}{{1 << 25, "prein"}, {1 << 16, "in"}, {1 << 17, "un"}, {1 << 18, "postun"}}

func senseName(flags uint32) string {
	for _, s := range triggerSenses {
		if flags&s.bit != 0 {
			return s.name
		}
	}
	return ""
}

// defaultTriggerPriority is rpm's priority of a file trigger without one;
// triggers at or above triggerPriorityBound run before %post.
const (
	defaultTriggerPriority = 1000000
	triggerPriorityBound   = 10000
)

// headerScripts is what a header says about scripts.
type headerScripts struct {
	pretrans, pre, post, posttrans *Scriptlet
	triggers                       []Trigger
	fileTriggers                   []FileTrigger
}

// readScripts reads the scriptlets and triggers of hdr.
func readScripts(hdr *rpmutils.RpmHeader) (*headerScripts, error) {
	hs := &headerScripts{}
	one := func(body, prog, flags int) (*Scriptlet, error) {
		if !hdr.HasTag(body) && !hdr.HasTag(prog) {
			return nil, nil
		}
		s := &Scriptlet{}
		if hdr.HasTag(body) {
			b, err := hdr.GetStrings(body)
			if err != nil {
				return nil, err
			}
			s.Body = strings.Join(b, "")
		}
		if hdr.HasTag(prog) {
			p, err := hdr.GetStrings(prog)
			if err != nil {
				return nil, err
			}
			s.Prog = p
		}
		if len(s.Prog) == 0 {
			s.Prog = []string{"/bin/sh"}
		}
		if hdr.HasTag(flags) {
			f, err := hdr.GetUint32s(flags)
			if err == nil && len(f) > 0 {
				s.Flags = f[0]
			}
		}
		return s, nil
	}
	var err error
	for _, x := range []struct {
		dst               **Scriptlet
		body, prog, flags int
	}{
		{&hs.pretrans, tagPretrans, tagPretransProg, tagPretransFlags},
		{&hs.pre, tagPrein, tagPreinProg, tagPreinFlags},
		{&hs.post, tagPostin, tagPostinProg, tagPostinFlags},
		{&hs.posttrans, tagPosttrans, tagPosttransProg, tagPosttransFlg},
	} {
		if *x.dst, err = one(x.body, x.prog, x.flags); err != nil {
			return nil, fmt.Errorf("reading scriptlets: %w", err)
		}
	}
	if hs.triggers, err = readTriggers(hdr); err != nil {
		return nil, fmt.Errorf("reading triggers: %w", err)
	}
	for _, trans := range []bool{false, true} {
		fts, err := readFileTriggers(hdr, trans)
		if err != nil {
			return nil, fmt.Errorf("reading file triggers: %w", err)
		}
		hs.fileTriggers = append(hs.fileTriggers, fts...)
	}
	return hs, nil
}

// scriptTable reads the per-script arrays of a trigger table: bodies,
// interpreters and flags, one entry per script index.
func scriptTable(hdr *rpmutils.RpmHeader, body, prog, flags int) ([]Scriptlet, error) {
	if !hdr.HasTag(body) && !hdr.HasTag(prog) {
		return nil, nil
	}
	var bodies, progs []string
	var err error
	if hdr.HasTag(body) {
		if bodies, err = hdr.GetStrings(body); err != nil {
			return nil, err
		}
	}
	if hdr.HasTag(prog) {
		if progs, err = hdr.GetStrings(prog); err != nil {
			return nil, err
		}
	}
	var fl []uint32
	if hdr.HasTag(flags) {
		fl, _ = hdr.GetUint32s(flags)
	}
	n := max(len(bodies), len(progs))
	out := make([]Scriptlet, n)
	for i := range out {
		if i < len(bodies) {
			out[i].Body = bodies[i]
		}
		out[i].Prog = []string{"/bin/sh"}
		if i < len(progs) && progs[i] != "" {
			out[i].Prog = []string{progs[i]}
		}
		if i < len(fl) {
			out[i].Flags = fl[i]
		}
	}
	return out, nil
}

// readTriggers reads the %trigger table: one condition per entry, grouped
// into scripts by TRIGGERINDEX.
func readTriggers(hdr *rpmutils.RpmHeader) ([]Trigger, error) {
	if !hdr.HasTag(tagTriggerName) {
		return nil, nil
	}
	scripts, err := scriptTable(hdr, tagTriggerScripts, tagTriggerProg, tagTriggerScriptFlags)
	if err != nil {
		return nil, err
	}
	names, err := hdr.GetStrings(tagTriggerName)
	if err != nil {
		return nil, err
	}
	vers, _ := hdr.GetStrings(tagTriggerVersion)
	flags, _ := hdr.GetUint32s(tagTriggerFlags)
	idx, err := hdr.GetUint32s(tagTriggerIndex)
	if err != nil {
		return nil, err
	}
	if len(idx) != len(names) || len(flags) != len(names) {
		return nil, fmt.Errorf("%d trigger names but %d indexes and %d flags", len(names), len(idx), len(flags))
	}
	out := make([]Trigger, len(scripts))
	for i, n := range names {
		ix := int(idx[i])
		if ix >= len(scripts) {
			return nil, fmt.Errorf("trigger index %d out of range", ix)
		}
		d := Dep{Name: n, Flags: uint8(flags[i]) & senseMask}
		if i < len(vers) && vers[i] != "" && d.Flags != 0 {
			d.EVR = ParseEVR(vers[i])
		}
		out[ix].Sense = senseName(flags[i])
		out[ix].Conds = append(out[ix].Conds, d)
	}
	for i := range out {
		out[i].Script = scripts[i]
	}
	return out, nil
}

// readFileTriggers reads the %filetrigger (or, with trans, the
// %transfiletrigger) table.
func readFileTriggers(hdr *rpmutils.RpmHeader, trans bool) ([]FileTrigger, error) {
	off, prio := 0, tagFileTriggerPriorities
	if trans {
		off, prio = tagTransFileTriggerScripts-tagFileTriggerScripts, tagTransFileTriggerPriorities
	}
	if !hdr.HasTag(tagFileTriggerName + off) {
		return nil, nil
	}
	scripts, err := scriptTable(hdr, tagFileTriggerScripts+off, tagFileTriggerProg+off, tagFileTriggerScriptFlags+off)
	if err != nil {
		return nil, err
	}
	names, err := hdr.GetStrings(tagFileTriggerName + off)
	if err != nil {
		return nil, err
	}
	flags, _ := hdr.GetUint32s(tagFileTriggerFlags + off)
	idx, err := hdr.GetUint32s(tagFileTriggerIndex + off)
	if err != nil {
		return nil, err
	}
	if len(idx) != len(names) || len(flags) != len(names) {
		return nil, fmt.Errorf("%d file trigger prefixes but %d indexes and %d flags", len(names), len(idx), len(flags))
	}
	var prios []uint32
	if hdr.HasTag(prio) {
		prios, _ = hdr.GetUint32s(prio)
	}
	out := make([]FileTrigger, len(scripts))
	for i, n := range names {
		ix := int(idx[i])
		if ix >= len(scripts) {
			return nil, fmt.Errorf("file trigger index %d out of range", ix)
		}
		out[ix].Sense = senseName(flags[i])
		out[ix].Prefixes = append(out[ix].Prefixes, n)
	}
	for i := range out {
		out[i].Trans, out[i].Script, out[i].Priority = trans, scripts[i], defaultTriggerPriority
		if i < len(prios) {
			out[i].Priority = prios[i]
		}
	}
	return out, nil
}

// scriptPkg is a package as planScripts sees it: one being installed
// (with its scriptlets) or one already installed.
type scriptPkg struct {
	name    string
	evr     EVR
	scripts headerScripts
	// files are the package's paths ("/usr/bin/x"), sorted as in the
	// header, without the files sxb left out (documentation).
	files []string
	// requires and provides order the installation.
	requires []Dep
	provides []Dep
	isNew    bool
}

// step is one scriptlet run.
type step struct {
	pkg  string // the package the scriptlet belongs to
	what string // "%post", "%filetriggerin", ...
	s    Scriptlet
	args []int
	// input, for file triggers, is given on stdin, one path a line.
	input []string
}

// describe names the step for messages and the manifest.
func (s step) describe() string {
	d := s.pkg + " " + s.what
	if w := s.s.why(); w != "" {
		d += " (" + w + ")"
	}
	return d
}

// planScripts returns the scriptlets and triggers installing pkgs (in
// install order) over the installed packages base runs, in rpm's order.
func planScripts(base, pkgs []*scriptPkg) []step {
	var steps []step
	add := func(p *scriptPkg, what string, s *Scriptlet, input []string, args ...int) {
		if s != nil {
			steps = append(steps, step{pkg: p.name, what: what, s: *s, args: args, input: input})
		}
	}
	for _, p := range pkgs {
		add(p, "%pretrans", p.scripts.pretrans, nil, 1)
	}
	db := append([]*scriptPkg(nil), base...)
	triggers := func(p *scriptPkg, sense string) {
		// Triggers of installed packages that p sets off ...
		for _, q := range db {
			for _, t := range q.scripts.triggers {
				if t.Sense == sense && t.fires(p) {
					add(q, "%trigger"+sense+" on "+p.name, &t.Script, nil, 1, 1)
				}
			}
		}
		// ... and p's own, set off by installed packages.
		for _, t := range p.scripts.triggers {
			if t.Sense != sense {
				continue
			}
			for _, q := range db {
				if q != p && t.fires(q) {
					add(p, "%trigger"+sense+" on "+q.name, &t.Script, nil, 1, 1)
					break
				}
			}
		}
	}
	fileTriggers := func(p *scriptPkg, upper bool) {
		inClass := func(ft FileTrigger) bool { return (ft.Priority >= triggerPriorityBound) == upper }
		for _, ref := range sortedFileTriggers(db, false, func(q *scriptPkg, ft FileTrigger) bool {
			return inClass(ft) && len(ft.matching([]*scriptPkg{p})) > 0
		}) {
			ft := ref.ft
			add(ref.pkg, "%filetriggerin", &ft.Script, ft.matching([]*scriptPkg{p}), 1, 1)
		}
		// Its own files are not among them: rpm's database does not
		// count them installed until the package is done.
		others := db[:len(db)-1]
		for _, ref := range sortedFileTriggers([]*scriptPkg{p}, false, func(_ *scriptPkg, ft FileTrigger) bool { return inClass(ft) }) {
			if in := ref.ft.matching(others); len(in) > 0 {
				add(p, "%filetriggerin", &ref.ft.Script, in, 1, 1)
			}
		}
	}
	for _, p := range pkgs {
		triggers(p, "prein")
		add(p, "%pre", p.scripts.pre, nil, 1)
		db = append(db, p)
		fileTriggers(p, true)
		add(p, "%post", p.scripts.post, nil, 1)
		triggers(p, "in")
		fileTriggers(p, false)
	}
	for _, p := range pkgs {
		add(p, "%posttrans", p.scripts.posttrans, nil, 1)
	}
	for _, ref := range sortedFileTriggers(base, true, func(_ *scriptPkg, ft FileTrigger) bool { return len(ft.matching(pkgs)) > 0 }) {
		add(ref.pkg, "%transfiletriggerin", &ref.ft.Script, ref.ft.matching(pkgs), 1)
	}
	for _, p := range pkgs {
		for _, ref := range sortedFileTriggers([]*scriptPkg{p}, true, func(*scriptPkg, FileTrigger) bool { return true }) {
			if in := ref.ft.matching(db); len(in) > 0 {
				add(p, "%transfiletriggerin", &ref.ft.Script, in, 1)
			}
		}
	}
	return steps
}

// fires says whether installing p sets off t: a condition names p and
// its version matches.
func (t Trigger) fires(p *scriptPkg) bool {
	for _, c := range t.Conds {
		if c.Name == p.name && (c.Flags&senseMask == 0 || overlaps(senseEqual, p.evr, c.Flags, c.EVR)) {
			return true
		}
	}
	return false
}

// matching lists the files of pkgs under ft's prefixes: per prefix, per
// package, in order.
func (ft FileTrigger) matching(pkgs []*scriptPkg) []string {
	var out []string
	for _, pfx := range ft.Prefixes {
		for _, p := range pkgs {
			i := sort.SearchStrings(p.files, pfx)
			for ; i < len(p.files) && strings.HasPrefix(p.files[i], pfx); i++ {
				out = append(out, p.files[i])
			}
		}
	}
	return out
}

type fileTriggerRef struct {
	pkg   *scriptPkg
	order int // the package's place in pkgs
	tix   int
	ft    FileTrigger
}

// sortedFileTriggers returns the "in" file triggers (transaction ones
// with trans) of pkgs that keep accepts, by descending priority, then
// package order and index (as rpm's trigger set orders them).
func sortedFileTriggers(pkgs []*scriptPkg, trans bool, keep func(*scriptPkg, FileTrigger) bool) []fileTriggerRef {
	var out []fileTriggerRef
	for i, p := range pkgs {
		for tix, ft := range p.scripts.fileTriggers {
			if ft.Sense == "in" && ft.Trans == trans && keep(p, ft) {
				out = append(out, fileTriggerRef{pkg: p, order: i, tix: tix, ft: ft})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.ft.Priority != b.ft.Priority {
			return a.ft.Priority > b.ft.Priority
		}
		if a.order != b.order {
			return a.order < b.order
		}
		return a.tix < b.tix
	})
	return out
}

// Requires flags that make a dependency a prerequisite of scriptlets
// (RPMSENSE_PREREQ, _SCRIPT_PRE, _SCRIPT_POST, _PRETRANS).
const senseScriptPrereq = 1<<6 | 1<<7 | 1<<9 | 1<<10

// installOrder returns the indexes of pkgs so that a package comes after
// the packages providing what it requires, prerequisites of scriptlets
// (Requires(pre), Requires(post)) considered first; cycles are broken in
// name order. rpm's own ordering is subtler but agrees on what scripts
// depend on: their interpreters and prerequisites are installed first.
func installOrder(pkgs []*scriptPkg) []int {
	provides := map[string][]int{}
	for i, p := range pkgs {
		provides[p.name] = append(provides[p.name], i)
		for _, d := range p.provides {
			provides[d.Name] = append(provides[d.Name], i)
		}
		for _, f := range p.files {
			provides[f] = append(provides[f], i)
		}
	}
	byName := make([]int, len(pkgs))
	for i := range byName {
		byName[i] = i
	}
	sort.SliceStable(byName, func(a, b int) bool { return pkgs[byName[a]].name < pkgs[byName[b]].name })
	state := make([]int, len(pkgs))
	var out []int
	var visit func(i int)
	visit = func(i int) {
		if state[i] != 0 {
			return
		}
		state[i] = 1
		for _, pre := range []bool{true, false} {
			for _, d := range pkgs[i].requires {
				if d.Pre != pre || strings.HasPrefix(d.Name, "(") || strings.HasPrefix(d.Name, "rpmlib(") {
					continue
				}
				if js := provides[d.Name]; len(js) > 0 {
					visit(js[0])
				}
			}
		}
		state[i] = 2
		out = append(out, i)
	}
	for _, i := range byName {
		visit(i)
	}
	return out
}
