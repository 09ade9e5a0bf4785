package eval

import (
	"fmt"
	"path/filepath"
	"strings"

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
