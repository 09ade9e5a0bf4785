package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"
	"github.com/sxb-build/sxb/builtins/fetch"
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
