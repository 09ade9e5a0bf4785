// Package workspace finds the workspace root and its packages.
//
// The root rule: starting at a directory and walking up, the first directory
// that contains a file named WORKSPACE.star is the root. If no ancestor has
// one, the root is the outermost ancestor that contains a BUILD.star. So a
// plain tree of BUILD.star files (like the sxb repository itself) needs no
// marker, and WORKSPACE.star pins the root explicitly (for a workspace nested
// in a directory that has a BUILD.star of its own).
//
// A package is a directory with a BUILD.star file, or an mkosi project
// directory (mkosi.conf, mkosi.conf.d/, mkosi.images/, mkosi.profiles/ or
// the mkosi/ subdirectory layout) without one: such a package behaves as if
// its BUILD.star were `mkosi_project(directory = ".")`. Directories an mkosi
// project owns (those named mkosi.*, and the mkosi/ configuration
// subdirectory) are never packages of their own, and no directory inside
// an mkosi project is an mkosi project of its own (the fragments a project
// Include=s from shared/ are not projects). Recursive patterns
// ("//...") visit every package under a directory but do not descend into
// directories whose name starts with "." or "_", directories named
// "testdata" or "sxb-out", directories an mkosi project owns, symbolic
// links, or directories with their own WORKSPACE.star (a nested
// workspace).
//
// The workspace root rule counts mkosi project directories like
// directories with a BUILD.star, so an mkosi checkout needs no sxb file.
package workspace

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sxb-build/sxb/builtins/mkosi"
)

// File names with a meaning to sxb.
const (
	BuildFile     = "BUILD.star"
	WorkspaceFile = "WORKSPACE.star"
)

// ErrNoWorkspace is returned when no workspace root is found.
var ErrNoWorkspace = errors.New("not inside an sxb workspace (no BUILD.star, WORKSPACE.star or mkosi project in this directory or any parent)")

// FindRoot returns the workspace root for dir (absolute, cleaned).
func FindRoot(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("finding workspace: %w", err)
	}
	outer := ""
	for {
		if isFile(filepath.Join(d, WorkspaceFile)) {
			return d, nil
		}
		if isFile(filepath.Join(d, BuildFile)) || isMkosiDir(d) {
			outer = d
		}
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	if outer == "" {
		return "", ErrNoWorkspace
	}
	return outer, nil
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// RelPackage returns the package-style path ("a/b", "" for the root) of
// directory dir inside root, or an error when dir is outside root.
func RelPackage(root, dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(root, d)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("directory %s is outside the workspace %s", dir, root)
	}
	if rel == "." {
		return "", nil
	}
	return filepath.ToSlash(rel), nil
}

// IsPackage reports whether pkg (package-style path) has a BUILD.star or
// is an mkosi project (see IsMkosiPackage).
func IsPackage(root, pkg string) bool {
	return isFile(filepath.Join(root, filepath.FromSlash(pkg), BuildFile)) || IsMkosiPackage(root, pkg)
}

// IsMkosiPackage reports whether pkg is an mkosi project directory without
// a BUILD.star, outside the directories another mkosi project owns.
func IsMkosiPackage(root, pkg string) bool {
	dir := filepath.Join(root, filepath.FromSlash(pkg))
	if isFile(filepath.Join(dir, BuildFile)) {
		return false
	}
	if pkg != "" {
		for _, c := range strings.Split(pkg, "/") {
			if strings.HasPrefix(c, "mkosi.") {
				return false
			}
		}
	}
	return isMkosiDir(dir) && !insideMkosiProject(root, dir)
}

// insideMkosiProject reports whether a directory above dir, up to the
// workspace root, is an mkosi project: its subdirectories (configuration
// fragments it Include=s, trees, scripts) are never projects of their own.
func insideMkosiProject(root, dir string) bool {
	for d := dir; d != root && strings.HasPrefix(d, root+"/"); {
		d = filepath.Dir(d)
		if mkosi.IsProject(d) {
			return true
		}
	}
	return false
}

// isMkosiDir reports whether dir is an mkosi project that is not part of
// another one (inside mkosi.images/ or the mkosi/ subdirectory layout).
func isMkosiDir(dir string) bool {
	if strings.HasPrefix(filepath.Base(dir), "mkosi.") || strings.Contains(dir, "/mkosi.") {
		return false
	}
	if filepath.Base(dir) == "mkosi" && mkosi.FindConfigDir(filepath.Dir(dir)) == dir {
		return false
	}
	return mkosi.IsProject(dir)
}

// PackageFile is the file that defines package pkg: its BUILD.star, or
// for an mkosi package the mkosi.conf (or the configuration directory
// when there is no mkosi.conf).
func PackageFile(root, pkg string) string {
	dir := filepath.Join(root, filepath.FromSlash(pkg))
	if !IsMkosiPackage(root, pkg) {
		return filepath.Join(dir, BuildFile)
	}
	c := mkosi.FindConfigDir(dir)
	if f := filepath.Join(c, "mkosi.conf"); isFile(f) {
		return f
	}
	return c
}

// Skip reports whether a recursive walk skips the directory named name.
func Skip(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") ||
		name == "testdata" || name == "sxb-out"
}

// Packages returns, sorted, every package at or under package dir pkg,
// following the recursive-walk rules in the package comment.
func Packages(root, pkg string) ([]string, error) {
	start := filepath.Join(root, filepath.FromSlash(pkg))
	fi, err := os.Stat(start)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("directory //%s does not exist", pkg)
		}
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("//%s is not a directory", pkg)
	}
	var out []string
	// The mkosi projects met so far: nothing below one is a project.
	var projects []string
	if insideMkosiProject(root, start) {
		projects = append(projects, filepath.Dir(start))
	}
	under := func(p string) bool {
		for _, q := range projects {
			if strings.HasPrefix(p, q+"/") {
				return true
			}
		}
		return false
	}
	err = filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == start {
				return err
			}
			return nil // unreadable subdirectory: not a package
		}
		if !d.IsDir() {
			return nil
		}
		if p != start {
			if Skip(d.Name()) || isFile(filepath.Join(p, WorkspaceFile)) || strings.HasPrefix(d.Name(), "mkosi.") {
				return filepath.SkipDir
			}
			if d.Name() == "mkosi" && mkosi.FindConfigDir(filepath.Dir(p)) == p {
				return filepath.SkipDir
			}
		}
		mk := isMkosiDir(p) && !under(p)
		if mk {
			projects = append(projects, p)
		}
		if isFile(filepath.Join(p, BuildFile)) || mk {
			rel, _ := filepath.Rel(root, p)
			if rel == "." {
				rel = ""
			}
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}
