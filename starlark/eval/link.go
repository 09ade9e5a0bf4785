package eval

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/sxb-build/sxb/internal/arch"
	"github.com/sxb-build/sxb/internal/diag"
	"github.com/sxb-build/sxb/internal/label"
	"github.com/sxb-build/sxb/internal/suggest"
	"github.com/sxb-build/sxb/rules"
	"github.com/sxb-build/sxb/starlark/workspace"
)

// allDecls returns the declarations of all evaluated packages, by label.
func (l *loader) allDecls() []*decl {
	var out []*decl
	for _, ps := range l.pkgs {
		out = append(out, ps.decls...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].t.Label.Less(out[j].t.Label) })
	return out
}

// depPos is where decl d names its dependency (the base attribute).
func (l *loader) depPos(d *decl) diag.Pos {
	if len(d.stack) == 0 {
		return d.t.Pos
	}
	return l.framesAttrPos(d.stack, "base")
}

func (l *loader) depNotes(d *decl) []string {
	var notes []string
	for i := len(d.stack) - 2; i >= 0; i-- {
		notes = append(notes, fmt.Sprintf("note: in %s(), called from %s", d.stack[i+1].Name, l.callStart(d.stack[i].Pos)))
	}
	return notes
}

// link loads the packages dependencies live in, checks every dependency
// and builds the graph.
func (l *loader) link() (*rules.Graph, error) {
	// Load the packages dependencies point into, until closed.
	for {
		var need []string
		needSeen := map[string]bool{}
		var errs []error
		for _, d := range l.allDecls() {
			for _, dep := range d.t.Deps {
				if _, ok := l.pkgs[dep.Pkg]; ok || needSeen[dep.Pkg] {
					continue
				}
				if !workspace.IsPackage(l.root, dep.Pkg) {
					errs = append(errs, l.diagAt(l.depPos(d), fmt.Sprintf("%s %q: base: no such package //%s (no %s in %s)",
						d.t.Kind, d.t.Label.Name, dep.Pkg, workspace.BuildFile, l.display(l.pkgDir(dep.Pkg))), l.depNotes(d)...))
					continue
				}
				needSeen[dep.Pkg] = true
				need = append(need, dep.Pkg)
			}
		}
		if err := joinErrors(errs); err != nil {
			return nil, err
		}
		if len(need) == 0 {
			break
		}
		sort.Strings(need)
		if err := l.evalPackages(need); err != nil {
			return nil, err
		}
	}
	decls := l.allDecls()
	byLabel := make(map[string]*decl, len(decls))
	for _, d := range decls {
		byLabel[d.t.Label.String()] = d
	}
	// Every dependency exists and is not the target itself.
	var errs []error
	for _, d := range decls {
		for _, dep := range d.t.Deps {
			who := fmt.Sprintf("%s %q: base", d.t.Kind, d.t.Label.Name)
			if d.t.Test != nil {
				who = fmt.Sprintf("%s %q: images", d.t.Kind, d.t.Label.Name)
			}
			if dep == d.t.Label {
				errs = append(errs, l.diagAt(l.depPos(d), fmt.Sprintf("%s: %s depends on itself", who, dep), l.depNotes(d)...))
				continue
			}
			if _, ok := byLabel[dep.String()]; !ok {
				msg := fmt.Sprintf("%s: no target %q in package //%s", who, dep.Name, dep.Pkg)
				if s := suggest.Nearest(dep.Name, l.pkgs[dep.Pkg].names()); s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", label.Label{Pkg: dep.Pkg, Name: s}.String())
				}
				errs = append(errs, l.diagAt(l.depPos(d), msg, l.depNotes(d)...))
			}
		}
	}
	if err := joinErrors(errs); err != nil {
		return nil, err
	}
	if err := l.checkCycles(decls, byLabel); err != nil {
		return nil, err
	}
	for _, d := range decls {
		if d.t.Test != nil {
			errs = append(errs, l.linkTest(d, byLabel))
		}
	}
	if err := joinErrors(errs); err != nil {
		return nil, err
	}
	// Extensions inherit their base's architecture.
	var archOf func(d *decl) arch.Arch
	archOf = func(d *decl) arch.Arch {
		switch {
		case d.t.Base != nil:
			return d.t.Base.Architecture
		case d.t.Ext == nil:
			return arch.None
		case d.t.Ext.Architecture != arch.None:
			return d.t.Ext.Architecture
		case d.t.Ext.Base != nil:
			return archOf(byLabel[d.t.Ext.Base.String()])
		}
		return arch.None
	}
	g := &rules.Graph{Workspace: l.root, Targets: make(map[string]*rules.Target, len(decls))}
	var archErrs []error
	for _, d := range decls {
		if x := d.t.Ext; x != nil && x.Architecture == arch.None {
			if x.Architecture = archOf(d); x.Architecture != arch.None {
				archErrs = append(archErrs, l.inheritedArchErr(d))
			}
		}
		sort.Slice(d.t.Deps, func(i, j int) bool { return d.t.Deps[i].Less(d.t.Deps[j]) })
		g.Targets[d.t.Label.String()] = d.t
	}
	if err := joinErrors(archErrs); err != nil {
		return nil, err
	}
	return g, nil
}

// inheritedArchErr checks the architecture an extension has from its
// base; nil when an image can be built for it.
func (l *loader) inheritedArchErr(d *decl) error {
	var ae *rules.AttrError
	if !errors.As(d.t.Ext.ValidateArchitecture(), &ae) {
		return nil
	}
	msg := fmt.Sprintf("%s %q: %s (its base's): %s", d.t.Kind, d.t.Label.Name, ae.Attr, ae.Msg)
	return l.diagAt(l.depPos(d), msg, l.depNotes(d)...)
}

// checkCycles reports each dependency cycle once, with the whole cycle.
func (l *loader) checkCycles(decls []*decl, byLabel map[string]*decl) error {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []*decl
	var errs []error
	var visit func(d *decl)
	visit = func(d *decl) {
		k := d.t.Label.String()
		color[k] = grey
		stack = append(stack, d)
		for _, dep := range d.t.Deps {
			dd := byLabel[dep.String()]
			switch color[dep.String()] {
			case white:
				visit(dd)
			case grey:
				i := len(stack) - 1
				for stack[i] != dd {
					i--
				}
				cyc := stack[i:]
				names := make([]string, 0, len(cyc)+1)
				var notes []string
				for j, c := range cyc {
					names = append(names, c.t.Label.String())
					next := cyc[(j+1)%len(cyc)]
					notes = append(notes, fmt.Sprintf("note: %s depends on %s at %s", c.t.Label, next.t.Label, l.depPos(c)))
				}
				names = append(names, dd.t.Label.String())
				errs = append(errs, l.diagAt(l.depPos(dd), "dependency cycle: "+strings.Join(names, " -> "), notes...))
			}
		}
		stack = stack[:len(stack)-1]
		color[k] = black
	}
	for _, d := range decls {
		if color[d.t.Label.String()] == white {
			visit(d)
		}
	}
	return joinErrors(errs)
}

// linkTest checks that an image_test names extensions and a base image,
// and settles the base the images are merged onto: the one given, or the
// one every image is built on.
func (l *loader) linkTest(d *decl, byLabel map[string]*decl) error {
	it := d.t.Test
	fail := func(format string, xs ...any) error {
		return l.diagAt(d.t.Pos, fmt.Sprintf("image_test %q: ", it.Name)+fmt.Sprintf(format, xs...))
	}
	var base *label.Label
	for _, lb := range it.Images {
		t := byLabel[lb.String()].t
		if t.Ext == nil {
			return fail("images: %s is a %s, not a sysext or confext", lb, t.Kind)
		}
		switch {
		case t.Ext.Base == nil:
		case base == nil:
			base = t.Ext.Base
		case *base != *t.Ext.Base:
			return fail("images: %s is built on %s but another image on %s: set base to the one to test on", lb, t.Ext.Base, base)
		}
	}
	if it.Base == nil {
		if base == nil {
			return fail("none of the images has a base: set base = a base_image to run the test on")
		}
		it.Base = base
		d.t.Deps = append(d.t.Deps, *base)
	}
	if t := byLabel[it.Base.String()].t; t.Base == nil {
		return fail("base: %s is a %s, not a base_image", it.Base, t.Kind)
	}
	return nil
}
