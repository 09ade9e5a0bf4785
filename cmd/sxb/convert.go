package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/sxb-build/sxb/builtins/mkosi"
	"github.com/sxb-build/sxb/internal/atomicfile"
	"github.com/sxb-build/sxb/internal/diag"
)

func init() {
	register(&command{
		name:    "convert",
		summary: "convert an mkosi project to BUILD.star (convert [-w] [DIR])",
		run:     runConvert,
	})
}

func runConvert(ctx context.Context, env *environ, args []string) int {
	fs := pflag.NewFlagSet("convert", pflag.ContinueOnError)
	fs.SetOutput(env.stderr)
	write := fs.BoolP("write", "w", false, "write DIR/BUILD.star instead of printing it")
	profiles := profileFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "usage: sxb convert [-w] [--profile NAME] [DIR]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return parseFailed(env, "convert", err)
	}
	if fs.NArg() > 1 {
		fmt.Fprintln(env.stderr, "usage: sxb convert [-w] [--profile NAME] [DIR]")
		return exitUsage
	}
	dir := "."
	if fs.NArg() == 1 {
		dir = fs.Arg(0)
	}
	color := diag.UseColor(env.stderr)
	p, err := loadMkosi(env, dir, *profiles)
	if err != nil {
		diag.RenderError(env.stderr, err, color)
		return exitError
	}
	cv, err := mkosi.Convert(p)
	if err != nil {
		diag.RenderError(env.stderr, err, color)
		return exitError
	}
	for _, n := range cv.Notes {
		fmt.Fprintf(env.stderr, "sxb convert: note: %s\n", n)
	}
	for _, t := range cv.TODO {
		where := t.Pos.String()
		if rel, err := filepath.Rel(p.Dir, t.Pos.File); err == nil && t.Pos.File != "" {
			where = (diag.Pos{File: rel, Line: t.Pos.Line}).String()
		}
		if t.Reason != "" {
			fmt.Fprintf(env.stderr, "sxb convert: %s: %s=%s %s; marked with a TODO(mkosi) comment\n", where, t.Name, oneLine(t.Value), t.Reason)
			continue
		}
		fmt.Fprintf(env.stderr, "sxb convert: %s: %s=%s has no Starlark equivalent; kept as a TODO(mkosi) comment\n", where, t.Name, oneLine(t.Value))
	}
	if !*write {
		env.stdout.Write(cv.BuildStar)
		return exitOK
	}
	out := filepath.Join(p.Dir, "BUILD.star")
	if err := atomicfile.Write(out, cv.BuildStar, 0o644); err != nil {
		diag.RenderError(env.stderr, fmt.Errorf("writing BUILD.star: %w", err), color)
		return exitError
	}
	fmt.Fprintln(env.stdout, out)
	return exitOK
}

// oneLine shows a multi-line value on one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
