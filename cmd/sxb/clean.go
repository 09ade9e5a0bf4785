package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
	"github.com/sxb-build/sxb/builtins/fetch"
	"github.com/sxb-build/sxb/rules/build"
	"github.com/sxb-build/sxb/starlark/eval"
	"github.com/sxb-build/sxb/starlark/workspace"
)

func init() {
	register(&command{
		name:    "clean",
		summary: "remove the workspace outputs (and with --cache, the cache)",
		run:     runClean,
	})
}

func runClean(ctx context.Context, env *environ, args []string) int {
	fs := pflag.NewFlagSet("clean", pflag.ContinueOnError)
	fs.SetOutput(env.stderr)
	cache := fs.Bool("cache", false, "also remove the action, download and index cache ($XDG_CACHE_HOME/sxb)")
	outDir := fs.String("output-dir", "", "the output directory (default <workspace>/sxb-out)")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "usage: sxb clean [--cache] [--output-dir DIR]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return parseFailed(env, "clean", err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(env.stderr, "sxb clean: takes no arguments")
		return exitUsage
	}
	dir := *outDir
	if dir == "" {
		root, err := workspace.FindRoot(env.dir)
		if err != nil {
			fmt.Fprintln(env.stderr, "sxb clean:", err)
			return exitError
		}
		dir = filepath.Join(root, "sxb-out")
	}
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintln(env.stderr, "sxb clean:", err)
		return exitError
	}
	fmt.Fprintln(env.stderr, "removed", dir)
	// The images' clean scripts (mkosi.clean) run after the outputs are
	// gone. A workspace that does not load has none to run.
	if g, err := eval.Load(ctx, eval.Options{Dir: env.dir, Patterns: []string{"//..."}, Stderr: io.Discard}); err != nil {
		first, _, _ := strings.Cut(err.Error(), "\n")
		fmt.Fprintf(env.stderr, "sxb clean: clean scripts not run: the workspace does not load: %s\n", first)
	} else {
		epoch, err := sourceDateEpoch()
		if err != nil {
			fmt.Fprintln(env.stderr, "sxb clean:", err)
			return exitError
		}
		if err := build.RunCleanScripts(ctx, g, dir, epoch, env.stderr); err != nil {
			fmt.Fprintln(env.stderr, "sxb clean:", err)
			return exitError
		}
	}
	if *cache {
		c := fetch.DefaultCacheDir()
		if err := os.RemoveAll(c); err != nil {
			fmt.Fprintln(env.stderr, "sxb clean:", err)
			return exitError
		}
		fmt.Fprintln(env.stderr, "removed", c)
	}
	return exitOK
}
