package eval

import (
	"fmt"

	"go.starlark.net/starlark"

	"github.com/sxb-build/sxb/internal/diag"
	"github.com/sxb-build/sxb/internal/label"
	"github.com/sxb-build/sxb/rules"
	"github.com/sxb-build/sxb/starlark/mkosiproject"
)

func mkosiBuiltin(th *starlark.Thread, b *starlark.Builtin, pos starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	ps, err := currentPkg(th, b.Name())
	if err != nil {
		return nil, err
	}
	l := loaderOf(th)
	a, err := parseArgs(l, ps, b.Name(), []attrSpec{{name: "directory", kind: kString}}, pos, kwargs)
	if err != nil {
		return nil, err
	}
	dir, err := a.str("directory", ".")
	if err != nil {
		return nil, err
	}
	abs, err := l.resolvePath(ps, dir)
	if err != nil {
		return nil, a.errf("directory", "%v", err)
	}
	frames := userFrames(th.CallStack())
	req := l.mkosiRequest(ps, abs)
	if len(frames) > 0 {
		req.Pos = l.callStart(frames[len(frames)-1].Pos)
	}
	ts, err := l.mkosi(req)
	if err != nil {
		if _, ok := diag.As(err); ok {
			return nil, err
		}
		return nil, a.errf("", "%v", err)
	}
	var out []starlark.Value
	for _, t := range ts {
		if err := l.declareMkosi(th, ps, t, a); err != nil {
			return nil, err
		}
		out = append(out, &Target{t: t})
	}
	return starlark.NewList(out), nil
}

func (l *loader) mkosiRequest(ps *pkgState, dir string) mkosiproject.Request {
	return mkosiproject.Request{Workspace: l.root, Package: ps.name, Dir: dir, Cwd: l.cwd, Profiles: l.profiles, Warn: func(d *diag.Diagnostic) {
		l.printMu.Lock()
		defer l.printMu.Unlock()
		diag.Render(l.stderr, d, diag.UseColor(l.stderr))
	}}
}

// declareMkosi adds a target mkosiproject returned to package ps.
// th and a are nil for a package that is an mkosi directory.
func (l *loader) declareMkosi(th *starlark.Thread, ps *pkgState, t *rules.Target, a *args) error {
	errf := func(format string, xs ...any) error {
		if a != nil {
			return a.errf("", format, xs...)
		}
		return fmt.Errorf("package //%s: %s", ps.name, fmt.Sprintf(format, xs...))
	}
	if t.Label.Pkg == "" {
		t.Label.Pkg = ps.name
	}
	if t.Label.Pkg != ps.name {
		return errf("mkosi image %s is not in package //%s", t.Label, ps.name)
	}
	if err := label.ValidateName(t.Label.Name); err != nil {
		return errf("mkosi image: %v", err)
	}
	if t.Deps == nil && t.Ext != nil && t.Ext.Base != nil {
		t.Deps = []label.Label{*t.Ext.Base}
	}
	d := &decl{t: t}
	if t.Ext != nil && t.Ext.Base != nil {
		d.baseText = t.Ext.Base.String()
	}
	hookPos := t.Pos
	if th == nil {
		if prev, dup := ps.byName[t.Label.Name]; dup {
			return diag.Errorf(hookPos, "duplicate target name %q in package //%s (first declared at %s)", t.Label.Name, ps.name, prev.t.Pos)
		}
		ps.byName[t.Label.Name] = d
		ps.decls = append(ps.decls, d)
		return nil
	}
	if err := l.declare(th, ps, d, a); err != nil {
		return err
	}
	if hookPos.File != "" {
		t.Pos = hookPos // where the image is configured (its mkosi.conf)
	}
	return nil
}

// evalMkosiPackage declares the targets of a package that is an mkosi
// project directory, as mkosi_project(directory = ".") would.
func (l *loader) evalMkosiPackage(ps *pkgState) error {
	ts, err := l.mkosi(l.mkosiRequest(ps, ps.dir))
	if err != nil {
		return err
	}
	for _, t := range ts {
		if err := l.declareMkosi(nil, ps, t, nil); err != nil {
			return err
		}
	}
	return nil
}
