package eval

import (
	"go.starlark.net/starlark"

	"github.com/sxb-build/sxb/internal/label"
	"github.com/sxb-build/sxb/rules"
)

var testAttrs = []attrSpec{
	{name: "name", kind: kString, required: true},
	{name: "images", kind: kLabel, required: true},
	{name: "script", kind: kPath, required: true},
	{name: "base", kind: kLabel},
	{name: "env", kind: kDict},
	{name: "network", kind: kBool},
	{name: "timeout", kind: kString},
}

// defaultTestTimeout is an image_test's timeout when none is given, in
// seconds (Bazel's "moderate").
const defaultTestTimeout = 300

// imageTestBuiltin is image_test(): a test run inside merged images.
func imageTestBuiltin(th *starlark.Thread, b *starlark.Builtin, pos starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	l, ps, a, name, err := ruleArgs(th, b.Name(), testAttrs, pos, kwargs)
	if err != nil {
		return nil, err
	}
	it := &rules.ImageTest{Name: name, Timeout: defaultTestTimeout}
	if it.Images, err = a.labels("images"); err != nil {
		return nil, err
	}
	if len(it.Images) == 0 {
		return nil, a.errf("images", "give at least one sysext or confext")
	}
	if it.Script, err = a.path("script"); err != nil {
		return nil, err
	}
	if it.Base, _, err = a.labelAttr("base"); err != nil {
		return nil, err
	}
	if it.Env, err = a.dict("env"); err != nil {
		return nil, err
	}
	if it.Network, err = a.boolean("network", false); err != nil {
		return nil, err
	}
	if v, ok := a.vals["timeout"]; ok {
		n, ok := v.(starlark.Int)
		secs, exact := n.Int64()
		if !ok || !exact || secs < 1 || secs > 24*3600 {
			return nil, a.errf("timeout", "got %s, want a number of seconds from 1 to 86400", v.String())
		}
		it.Timeout = int(secs)
	}
	t := &rules.Target{Label: label.Label{Pkg: ps.name, Name: name}, Kind: rules.KindImageTest, Test: it}
	t.Deps = append(t.Deps, it.Images...)
	if it.Base != nil {
		t.Deps = append(t.Deps, *it.Base)
	}
	if err := l.declare(th, ps, &decl{t: t}, a); err != nil {
		return nil, err
	}
	return &Target{t: t}, nil
}

// labels converts a list of labels (strings or Targets), relative to the
// package.
func (a *args) labels(k string) ([]label.Label, error) {
	v, ok := a.vals[k]
	if !ok {
		return nil, nil
	}
	list, ok := v.(*starlark.List)
	if !ok {
		return nil, a.errf(k, "got %s, want a list of labels or Targets", v.Type())
	}
	var out []label.Label
	seen := map[string]bool{}
	for i := range list.Len() {
		var lb label.Label
		switch x := list.Index(i).(type) {
		case *Target:
			lb = x.t.Label
		case starlark.String:
			var err error
			if lb, err = label.Parse(string(x), a.ps.name); err != nil {
				return nil, a.errf(k, "%v", err)
			}
		default:
			return nil, a.errf(k, "element %d: got %s, want a label string or a Target", i, x.Type())
		}
		if seen[lb.String()] {
			return nil, a.errf(k, "%s is listed twice", lb)
		}
		seen[lb.String()] = true
		out = append(out, lb)
	}
	return out, nil
}
