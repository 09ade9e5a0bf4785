package eval

import (
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"go.starlark.net/starlark"

	"github.com/sxb-build/sxb/internal/label"
	"github.com/sxb-build/sxb/rules"
)

// hooks reads the build-script attributes; nil when none is set.
func (a *args) hooks() (*rules.Hooks, error) {
	any := false
	for _, s := range hookAttrs {
		any = any || a.has(s.name)
	}
	if !any {
		return nil, nil
	}
	h := &rules.Hooks{}
	var err error
	set := func(f func() error) {
		if err == nil {
			err = f()
		}
	}
	for _, f := range []struct {
		attr string
		dst  *[]string
	}{
		{"sync_scripts", &h.Sync}, {"prepare_scripts", &h.Prepare}, {"build_scripts", &h.Build},
		{"postinst_scripts", &h.PostInst}, {"finalize_scripts", &h.Finalize},
		{"postoutput_scripts", &h.PostOutput}, {"clean_scripts", &h.Clean},
		{"environment_files", &h.EnvironmentFiles},
	} {
		set(func() (e error) { *f.dst, e = a.files(f.attr); return })
	}
	set(func() (e error) { h.BuildPackages, e = a.strings("build_packages"); return })
	set(func() (e error) { h.BuildSources, e = a.trees("build_sources"); return })
	set(func() (e error) { h.SandboxTrees, e = a.trees("sandbox_trees"); return })
	set(func() (e error) { h.WithNetwork, e = a.boolean("with_network", false); return })
	set(func() (e error) { h.Environment, e = a.dict("environment"); return })
	set(func() (e error) {
		d, e := a.str("build_dir", "")
		if e != nil || d == "" {
			return e
		}
		h.BuildDir, e = a.l.workspacePath(a.ps, d)
		if e != nil {
			return a.errf("build_dir", "%v", e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, st := range h.SandboxTrees {
		if st.Label != nil {
			return nil, a.errf("sandbox_trees", "%s: sandbox trees are directories, not targets", st.Label)
		}
	}
	for _, kv := range h.Environment {
		if kv.Key == "" || strings.ContainsAny(kv.Key, "=\x00") {
			return nil, a.errf("environment", "%q is not a variable name", kv.Key)
		}
	}
	return h, nil
}

// files reads a list of existing files inside the workspace.
func (a *args) files(k string) ([]string, error) {
	ss, err := a.strings(k)
	if err != nil {
		return nil, err
	}
	var out []string
	for i, s := range ss {
		p, err := a.l.resolvePath(a.ps, s)
		if err != nil {
			return nil, a.errf(k, "element %d: %v", i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// workspacePath resolves a package-relative (or //-rooted) path that may
// not exist yet; it must stay inside the workspace.
func (l *loader) workspacePath(ps *pkgState, s string) (string, error) {
	var p string
	switch {
	case strings.HasPrefix(s, "//"):
		p = filepath.Join(l.root, filepath.FromSlash(s[2:]))
	case filepath.IsAbs(s):
		p = filepath.Clean(s)
	default:
		p = filepath.Join(ps.dir, filepath.FromSlash(s))
	}
	if rel, err := filepath.Rel(l.root, p); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%q leaves the workspace", s)
	}
	return p, nil
}

// treeItems reads a trees attribute: strings "src[:/dest]", tree targets
// (Target values) and their labels (":name", "//pkg:name", with an
// optional ":/dest"). For an element naming a target, labels[i] is set and
// ss[i] is its destination.
func (a *args) treeItems(k string) (ss []string, labels []*label.Label, err error) {
	v, ok := a.vals[k]
	if !ok {
		return nil, nil, nil
	}
	list, ok := v.(*starlark.List)
	if !ok {
		ss, err := a.strings(k) // its error names what is wrong
		return ss, make([]*label.Label, len(ss)), err
	}
	for i := range list.Len() {
		e := list.Index(i)
		if t, ok := e.(*Target); ok {
			lb := t.t.Label
			ss, labels = append(ss, "/"), append(labels, &lb)
			continue
		}
		s, ok := e.(starlark.String)
		if !ok {
			return nil, nil, a.errf(k, "element %d: got %s, want a string or a tree Target", i, e.Type())
		}
		str := string(s)
		if strings.ContainsAny(str, "\n\x00") {
			return nil, nil, a.errf(k, "element %d: must not contain a newline or NUL", i)
		}
		if lb, dst, ok := treeLabel(str); ok {
			l, err := label.Parse(lb, a.ps.name)
			if err != nil {
				return nil, nil, a.errf(k, "element %d: %v", i, err)
			}
			if !strings.HasPrefix(dst, "/") || slices.Contains(strings.Split(dst, "/"), "..") {
				return nil, nil, a.errf(k, "element %d (%q): the target %q must be an absolute path inside the image", i, str, dst)
			}
			ss, labels = append(ss, path.Clean(dst)), append(labels, &l)
			continue
		}
		ss, labels = append(ss, str), append(labels, nil)
	}
	return ss, labels, nil
}

// treeLabel splits a trees element that names a target: ":name[:/dest]"
// or "//pkg:name[:/dest]" (a path is "//dir[:/dest]": what follows its
// first colon starts with a slash).
func treeLabel(s string) (lb, dst string, ok bool) {
	var prefix, rest string
	switch {
	case strings.HasPrefix(s, ":"):
		prefix, rest = ":", s[1:]
	case strings.HasPrefix(s, "//"):
		i := strings.IndexByte(s, ':')
		if i < 0 || strings.HasPrefix(s[i+1:], "/") {
			return "", "", false
		}
		prefix, rest = s[:i+1], s[i+1:]
	default:
		return "", "", false
	}
	dst = "/"
	if j := strings.IndexByte(rest, ':'); j >= 0 {
		rest, dst = rest[:j], rest[j+1:]
	}
	return prefix + rest, dst, true
}

// treeAttrs are the attributes of tree().
var treeAttrs = append([]attrSpec{
	{name: "name", kind: kString, required: true},
	{name: "base", kind: kLabel, required: true},
}, hookAttrs...)

// treeBuiltin is tree(): build scripts run on a base, their $DESTDIR
// a directory for extra_trees.
func treeBuiltin(th *starlark.Thread, b *starlark.Builtin, pos starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	l, ps, a, name, err := ruleArgs(th, b.Name(), treeAttrs, pos, kwargs)
	if err != nil {
		return nil, err
	}
	tr := &rules.TreeRule{Name: name}
	var baseText string
	if tr.Base, baseText, err = a.labelAttr("base"); err != nil {
		return nil, err
	}
	if tr.Hooks, err = a.hooks(); err != nil {
		return nil, err
	}
	if tr.Hooks == nil || len(tr.Hooks.Build) == 0 {
		return nil, a.errf("build_scripts", "a tree needs build scripts: what they install into $DESTDIR is the tree")
	}
	if len(tr.Hooks.PostInst)+len(tr.Hooks.Finalize)+len(tr.Hooks.PostOutput) > 0 {
		return nil, a.errf("build_scripts", "a tree runs prepare and build scripts only (postinst, finalize and postoutput scripts belong to images)")
	}
	t := &rules.Target{Label: label.Label{Pkg: ps.name, Name: name}, Kind: rules.KindTree, Tree: tr, Deps: []label.Label{*tr.Base}}
	if err := l.declare(th, ps, &decl{t: t, baseText: baseText}, a); err != nil {
		return nil, err
	}
	return &Target{t: t}, nil
}

// treeDeps are the tree targets ts name.
func treeDeps(ts []rules.Tree) []label.Label {
	var out []label.Label
	for _, t := range ts {
		if t.Label != nil {
			out = append(out, *t.Label)
		}
	}
	return out
}

// ruleArgs is the start of every rule builtin: the calling package, its
// arguments checked against specs, and the validated name.
func ruleArgs(th *starlark.Thread, kind string, specs []attrSpec, pos starlark.Tuple, kwargs []starlark.Tuple) (*loader, *pkgState, *args, string, error) {
	ps, err := currentPkg(th, kind)
	if err != nil {
		return nil, nil, nil, "", err
	}
	l := loaderOf(th)
	a, err := parseArgs(l, ps, kind, specs, pos, kwargs)
	if err != nil {
		return nil, nil, nil, "", err
	}
	name, err := a.str("name", "")
	if err != nil {
		return nil, nil, nil, "", err
	}
	if err := label.ValidateName(name); err != nil {
		return nil, nil, nil, "", a.errf("name", "%v", err)
	}
	return l, ps, a, name, nil
}
