// Package workspace finds the workspace root and its packages.
//
// The root rule: starting at a directory and walking up, the first directory
// that contains a file named WORKSPACE.star is the root. If no ancestor has
// one, the root is the outermost ancestor that contains a BUILD.star. So a
// plain tree of BUILD.star files (like the sxb repository itself) needs no
// marker, and WORKSPACE.star pins the root explicitly (for a workspace nested
// in a directory that has a BUILD.star of its own).
//
// A package is a directory with a BUILD.star file. Recursive patterns
// ("//...") visit every package under a directory but do not descend into
// directories whose name starts with "." or "_", directories named
// "testdata" or "sxb-out", symbolic links, or directories with their own
// WORKSPACE.star (a nested workspace).
package workspace

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// File names with a meaning to sxb.
const (
	BuildFile     = "BUILD.star"
	WorkspaceFile = "WORKSPACE.star"
)

// ErrNoWorkspace is returned when no workspace root is found.
var ErrNoWorkspace = errors.New("not inside an sxb workspace (no BUILD.star or WORKSPACE.star in this directory or any parent)")

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
		if isFile(filepath.Join(d, BuildFile)) {
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

// IsPackage reports whether pkg (package-style path) has a BUILD.star.
func IsPackage(root, pkg string) bool {
	return isFile(filepath.Join(root, filepath.FromSlash(pkg), BuildFile))
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
			if Skip(d.Name()) || isFile(filepath.Join(p, WorkspaceFile)) {
				return filepath.SkipDir
			}
		}
		if isFile(filepath.Join(p, BuildFile)) {
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
