// Package format formats BUILD.star and .star files the way buildifier
// formats Bazel's BUILD and .bzl files, with bazelbuild/buildtools (the
// parser and printer buildifier itself is built on).
package format

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/bazelbuild/buildtools/build"

	"github.com/sxb-build/sxb/internal/atomicfile"
	"github.com/sxb-build/sxb/internal/diag"
	"github.com/sxb-build/sxb/starlark/workspace"
)

// Source formats the Starlark source src of the file named name (used for
// messages and to choose the dialect: a file named BUILD.star is formatted
// as a BUILD file, any other as a .bzl library). A syntax error is a
// *diag.Diagnostic positioned in name.
func Source(name string, src []byte) ([]byte, error) {
	parse := build.ParseBzl
	if filepath.Base(name) == workspace.BuildFile {
		parse = build.ParseBuild
	}
	f, err := parse(name, src)
	if err != nil {
		if pe, ok := err.(build.ParseError); ok {
			p := pe.Pos
			msg := strings.TrimSuffix(pe.Message, " near ")
			// The parser positions a syntax error after the token it names
			// ("syntax error near ]"); the caret belongs under the token.
			if _, tok, ok := strings.Cut(msg, " near "); ok && p.LineRune > utf8.RuneCountInString(tok) {
				p.LineRune -= utf8.RuneCountInString(tok)
			}
			d := diag.Errorf(diag.Pos{File: name, Line: p.Line, Col: p.LineRune}, "%s", msg)
			if lines := strings.Split(string(src), "\n"); p.Line >= 1 && p.Line <= len(lines) {
				d.Source = lines[p.Line-1]
			}
			return nil, d
		}
		return nil, fmt.Errorf("parsing %s: %w", name, err)
	}
	return build.Format(f), nil
}

// IsStarlark reports whether the file name is one sxb formats: BUILD.star,
// WORKSPACE.star or any other *.star file.
func IsStarlark(name string) bool { return strings.HasSuffix(name, ".star") }

// Files returns, sorted, the Starlark files at or below dir, skipping what
// a recursive pattern skips (testdata, sxb-out, names starting with "." or
// "_") and symbolic links.
func Files(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != dir && workspace.Skip(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() && IsStarlark(d.Name()) {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// File formats the file at path. It reports whether the file's content
// differs from its formatted form; with write it also replaces the file
// (atomically, keeping its mode) when it does.
func File(path, display string, write bool) (changed bool, err error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	out, err := Source(display, src)
	if err != nil {
		return false, err
	}
	if bytes.Equal(src, out) {
		return false, nil
	}
	if write {
		fi, err := os.Stat(path)
		if err != nil {
			return true, err
		}
		if err := atomicfile.Write(path, out, fi.Mode().Perm()); err != nil {
			return true, fmt.Errorf("writing %s: %w", display, err)
		}
	}
	return true, nil
}
