package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/sxb-build/sxb/internal/diag"
	"github.com/sxb-build/sxb/internal/label"
	"github.com/sxb-build/sxb/starlark/format"
	"github.com/sxb-build/sxb/starlark/workspace"
)

func init() {
	register(&command{
		name:    "fmt",
		summary: "format BUILD.star and .star files as buildifier does (--check only lists them)",
		run:     runFmt,
	})
}

func runFmt(ctx context.Context, env *environ, args []string) int {
	fs := pflag.NewFlagSet("fmt", pflag.ContinueOnError)
	fs.SetOutput(env.stderr)
	check := fs.Bool("check", false, "change nothing; list the files that are not formatted and exit 1 if there are any")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "usage: sxb fmt [--check] [FILE|DIRECTORY|PATTERN...]")
		fmt.Fprintln(env.stderr, "Without arguments, formats every .star file at or below the current directory.")
		fmt.Fprintln(env.stderr, "Prints the files it changed (with --check: would change), one per line.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(env.stderr, "sxb fmt: %v\n", err)
		return exitUsage
	}
	targets := fs.Args()
	if len(targets) == 0 {
		targets = []string{"."}
	}
	var files []string
	for _, a := range targets {
		fs, err := fmtFiles(env.dir, a)
		if err != nil {
			fmt.Fprintf(env.stderr, "sxb fmt: %v\n", err)
			return exitUsage
		}
		files = append(files, fs...)
	}
	status := exitOK
	seen := map[string]bool{}
	for _, f := range files {
		if seen[f] {
			continue
		}
		seen[f] = true
		if ctx.Err() != nil {
			fmt.Fprintln(env.stderr, "sxb fmt: interrupted")
			return exitError
		}
		display := f
		if rel, err := filepath.Rel(env.dir, f); err == nil && !strings.HasPrefix(rel, "..") {
			display = rel
		}
		changed, err := format.File(f, display, !*check)
		if err != nil {
			diag.RenderError(env.stderr, err, diag.UseColor(env.stderr))
			status = exitError
			continue
		}
		if changed {
			fmt.Fprintln(env.stdout, display)
			if *check && status == exitOK {
				status = exitError
			}
		}
	}
	return status
}

// fmtFiles turns one argument of sxb fmt into the files it names: a file,
// a directory (recursively), or a target pattern (the .star files of the
// packages it matches).
func fmtFiles(cwd, arg string) ([]string, error) {
	p := arg
	if !filepath.IsAbs(p) {
		p = filepath.Join(cwd, p)
	}
	if !strings.HasPrefix(arg, "//") && !strings.Contains(arg, ":") {
		if fi, err := os.Stat(p); err == nil {
			if fi.IsDir() {
				return format.Files(p)
			}
			return []string{p}, nil
		} else if !strings.Contains(arg, "...") {
			return nil, fmt.Errorf("%s: no such file, directory or package", arg)
		}
	}
	root, err := workspace.FindRoot(cwd)
	if err != nil {
		return nil, err
	}
	rel, err := workspace.RelPackage(root, cwd)
	if err != nil {
		return nil, err
	}
	pat, err := label.ParsePattern(arg, rel)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(root, filepath.FromSlash(pat.Pkg))
	if pat.Recursive {
		return format.Files(dir)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("package //%s: %w", pat.Pkg, err)
	}
	var out []string
	for _, e := range ents {
		if e.Type().IsRegular() && format.IsStarlark(e.Name()) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out, nil
}
