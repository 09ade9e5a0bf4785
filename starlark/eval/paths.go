package eval

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"go.starlark.net/starlark"

	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/diag"
	"github.com/sxb-build/sxb/internal/label"
	"github.com/sxb-build/sxb/rules"
)

// resolvePath turns a path written in package ps into an absolute host
// path. Relative paths are package-relative, "//x" workspace-relative; both
// must stay inside the workspace and exist. Absolute paths are host paths
// and are taken as they are.
func (l *loader) resolvePath(ps *pkgState, s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("empty path")
	}
	var p string
	switch {
	case strings.HasPrefix(s, "//"):
		p = filepath.Join(l.root, filepath.FromSlash(s[2:]))
	case filepath.IsAbs(s):
		return filepath.Clean(s), nil
	default:
		p = filepath.Join(ps.dir, filepath.FromSlash(s))
	}
	if rel, err := filepath.Rel(l.root, p); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%q leaves the workspace", s)
	}
	if _, err := os.Lstat(p); err != nil {
		return "", fmt.Errorf("%q does not exist (looked for %s)", s, l.display(p))
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("%q: %v", s, err)
	}
	rootReal, err := filepath.EvalSymlinks(l.root)
	if err != nil {
		return "", err
	}
	if rel, err := filepath.Rel(rootReal, real); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%q is a symbolic link leading out of the workspace", s)
	}
	return p, nil
}

func (a *args) path(k string) (string, error) {
	s, err := a.str(k, "")
	if err != nil || s == "" && !a.has(k) {
		return "", err
	}
	p, err := a.l.resolvePath(a.ps, s)
	if err != nil {
		return "", a.errf(k, "%v", err)
	}
	return p, nil
}

// baseAttr reads an extension's base: a label or Target, or, written with
// a trailing slash ("prebuilt/root/", "//trees/debian/", an absolute
// path), a directory tree sxb does not build, or a tar archive of one
// ("prebuilt/root.tar.zst", see tree.TarSuffixes) or an image of one
// ("base.raw").
func (a *args) baseAttr() (*label.Label, *rules.TreeBase, string, error) {
	if s, ok := a.vals["base"].(starlark.String); ok && strings.HasSuffix(string(s), "/") {
		p, err := a.l.resolvePath(a.ps, strings.TrimSuffix(string(s), "/"))
		if err != nil {
			return nil, nil, "", a.errf("base", "%v", err)
		}
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			return nil, nil, "", a.errf("base", "%s is not a directory", s)
		}
		return nil, &rules.TreeBase{Path: p}, "", nil
	}
	if s, ok := a.vals["base"].(starlark.String); ok && tree.IsBaseFile(string(s)) {
		p, err := a.l.resolvePath(a.ps, string(s))
		if err != nil {
			return nil, nil, "", a.errf("base", "%v", err)
		}
		if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
			return nil, nil, "", a.errf("base", "%s is not a file", s)
		}
		return nil, &rules.TreeBase{Path: p}, "", nil
	}
	l, text, err := a.labelAttr("base")
	return l, nil, text, err
}

func (a *args) trees(k string) ([]rules.Tree, error) {
	ss, labels, err := a.treeItems(k)
	if err != nil {
		return nil, err
	}
	var out []rules.Tree
	for i, s := range ss {
		if lb := labels[i]; lb != nil {
			out = append(out, rules.Tree{Label: lb, Target: s})
			continue
		}
		src, dst := s, "/"
		if j := strings.IndexByte(s, ':'); j >= 0 {
			src, dst = s[:j], s[j+1:]
		}
		if !strings.HasPrefix(dst, "/") {
			return nil, a.errf(k, "element %d (%q): the target %q must be an absolute path inside the image", i, s, dst)
		}
		if slices.Contains(strings.Split(dst, "/"), "..") {
			return nil, a.errf(k, "element %d (%q): the target %q may not contain \"..\"", i, s, dst)
		}
		p, err := a.l.resolvePath(a.ps, src)
		if err != nil {
			return nil, a.errf(k, "element %d: %v", i, err)
		}
		out = append(out, rules.Tree{Source: p, Target: path.Clean(dst)})
	}
	return out, nil
}

func (a *args) imagePaths(k string) ([]string, error) {
	ss, err := a.strings(k)
	if err != nil {
		return nil, err
	}
	for i, s := range ss {
		if !strings.HasPrefix(s, "/") || slices.Contains(strings.Split(s, "/"), "..") {
			return nil, a.errf(k, "element %d (%q): want an absolute path inside the image without \"..\"", i, s)
		}
	}
	return ss, nil
}

func (a *args) partitions(k string) ([]rules.Partition, error) {
	v, ok := a.vals[k]
	if !ok {
		return nil, nil
	}
	if _, ok := v.(*Partition); ok {
		return nil, a.errf(k, "got a partition, want a list (write %s = [partition(...)])", k)
	}
	if s, ok := v.(starlark.String); ok {
		return nil, a.errf(k, "got string %s, want a list of partition() values or repart.d files (write %s = [%s])", s.String(), k, s.String())
	}
	var elems []starlark.Value
	switch v := v.(type) {
	case *starlark.List:
		for i := range v.Len() {
			elems = append(elems, v.Index(i))
		}
	case starlark.Tuple:
		elems = v
	default:
		return nil, a.errf(k, "got %s, want a list of partition() values or repart.d files", v.Type())
	}
	var out []rules.Partition
	for i, e := range elems {
		switch e := e.(type) {
		case *Partition:
			out = append(out, e.p)
		case starlark.String:
			if !strings.HasSuffix(string(e), ".conf") {
				return nil, a.errf(k, "element %d (%s): a repart.d file name must end in \".conf\"", i, e.String())
			}
			p, err := a.l.resolvePath(a.ps, string(e))
			if err != nil {
				return nil, a.errf(k, "element %d: %v", i, err)
			}
			out = append(out, rules.Partition{Pos: diag.Pos{File: a.l.display(p)}, File: p})
		default:
			return nil, a.errf(k, "element %d: got %s, want partition() or a repart.d file name", i, e.Type())
		}
	}
	return out, nil
}
