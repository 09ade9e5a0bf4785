package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"

	"github.com/spf13/pflag"
	"github.com/sxb-build/sxb/rules/build"
)

func init() {
	register(&command{
		name:    "lock",
		summary: "resolve the targets' packages afresh and pin them in sxb.lock.json",
		run:     runLock,
	})
}

// runLock builds the matched targets (their bases must exist to resolve
// extensions against) while resolving every package set afresh, and writes
// the exact packages into each package's sxb.lock.json. Later builds install
// exactly those.
func runLock(ctx context.Context, env *environ, args []string) int {
	fs := pflag.NewFlagSet("lock", pflag.ContinueOnError)
	fs.SetOutput(env.stderr)
	var opts buildOptions
	fs.IntVarP(&opts.Jobs, "jobs", "j", runtime.NumCPU(), "number of actions run in parallel")
	fs.StringVar(&opts.Progress, "progress", "auto", "progress display: auto or plain")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "usage: sxb lock [flags] PATTERN...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(env.stderr, "sxb lock: %v\n", err)
		return exitUsage
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitUsage
	}
	g, code := loadGraph(ctx, env, "lock", fs.Args(), nil)
	if g == nil {
		return code
	}
	opts.OutputDir = filepath.Join(g.Workspace, "sxb-out")
	opts.recordLocks = true
	code = execBuild(ctx, env, g, opts)
	if code == exitOK {
		seen := map[string]bool{}
		for _, t := range g.Closure(g.Roots) {
			if !seen[t.Label.Pkg] {
				seen[t.Label.Pkg] = true
				fmt.Fprintf(env.stderr, "locked %s\n", filepath.Join(g.Workspace, filepath.FromSlash(t.Label.Pkg), build.LockFileName))
			}
		}
	}
	return code
}
