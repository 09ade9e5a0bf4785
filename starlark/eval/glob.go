package eval

import (
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"go.starlark.net/starlark"

	"github.com/sxb-build/sxb/internal/suggest"
	"github.com/sxb-build/sxb/starlark/workspace"
)

// globBuiltin implements glob(include, exclude = [], allow_empty = False):
// the package's files matching any include pattern and no exclude pattern,
// package-relative and sorted. "*" and "?" match within one path component,
// "**" any number of components. Sub-packages (directories with a
// BUILD.star) are not entered.
func globBuiltin(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var include, exclude starlark.Value = nil, starlark.NewList(nil)
	allowEmpty := false
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "include", &include, "exclude?", &exclude, "allow_empty?", &allowEmpty); err != nil {
		return nil, err
	}
	ps, err := currentPkg(th, b.Name())
	if err != nil {
		return nil, err
	}
	errf := func(attr string) func(string, ...any) error {
		return func(format string, xs ...any) error {
			return &attrError{rule: "glob", attr: attr, msg: fmt.Sprintf(format, xs...)}
		}
	}
	inc, err := listOfStrings(include, errf("include"), "include")
	if err != nil {
		return nil, err
	}
	exc, err := listOfStrings(exclude, errf("exclude"), "exclude")
	if err != nil {
		return nil, err
	}
	parse := func(attr string, pats []string) ([][]string, error) {
		var out [][]string
		for _, p := range pats {
			if p == "" || strings.HasPrefix(p, "/") {
				return nil, errf(attr)("%q: patterns are package-relative paths", p)
			}
			segs := strings.Split(p, "/")
			for _, s := range segs {
				if s == "" || s == "." || s == ".." {
					return nil, errf(attr)("%q: empty, \".\" and \"..\" components are not allowed", p)
				}
				if strings.Contains(s, "**") && s != "**" {
					return nil, errf(attr)("%q: \"**\" must be a whole path component", p)
				}
				if _, err := path.Match(s, ""); err != nil {
					return nil, errf(attr)("%q: %v", p, err)
				}
			}
			out = append(out, segs)
		}
		return out, nil
	}
	incP, err := parse("include", inc)
	if err != nil {
		return nil, err
	}
	excP, err := parse("exclude", exc)
	if err != nil {
		return nil, err
	}
	var files []string
	err = filepath.WalkDir(ps.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == ps.dir {
			return nil
		}
		rel, _ := filepath.Rel(ps.dir, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if workspace.IsPackage(ps.dir, rel) {
				return filepath.SkipDir
			}
			return nil
		}
		segs := strings.Split(rel, "/")
		if matchAny(incP, segs) && !matchAny(excP, segs) {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("glob: %w", err)
	}
	if len(files) == 0 && !allowEmpty {
		return nil, errf("include")("%s matched no files in package //%s (pass allow_empty = True if that is expected)", suggest.Quote(inc), ps.name)
	}
	sort.Strings(files)
	vals := make([]starlark.Value, len(files))
	for i, f := range files {
		vals[i] = starlark.String(f)
	}
	return starlark.NewList(vals), nil
}

func matchAny(pats [][]string, name []string) bool {
	for _, p := range pats {
		if matchSegs(p, name) {
			return true
		}
	}
	return false
}

func matchSegs(pat, name []string) bool {
	if len(pat) == 0 {
		return len(name) == 0
	}
	if pat[0] == "**" {
		for i := 0; i <= len(name); i++ {
			if matchSegs(pat[1:], name[i:]) {
				return true
			}
		}
		return false
	}
	if len(name) == 0 {
		return false
	}
	ok, _ := path.Match(pat[0], name[0])
	return ok && matchSegs(pat[1:], name[1:])
}
