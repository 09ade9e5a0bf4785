package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/spf13/pflag"

	"github.com/sxb-build/sxb/starlark/workspace"
)

func init() {
	register(&command{
		name:    "build",
		summary: "build the targets matching patterns (--dry-run prints the build order)",
		run:     runBuildCmd,
	})
}

// buildOptions are the flags of sxb build that the executor sees.
type buildOptions struct {
	Jobs      int
	Progress  string // "auto" or "plain"
	Explain   bool
	OutputDir string
	KeepGoing bool
	// Trace, when set, is where a Chrome trace-event profile goes.
	Trace string
	// SignKey is an OpenPGP secret key signing every SHA256SUMS written.
	SignKey string
	// verb names the command in messages ("build" when empty).
	verb string
	// recordLocks is set by sxb lock: resolve afresh and write lock files.
	recordLocks bool
	Remote      remoteOptions
}

func runBuildCmd(ctx context.Context, env *environ, args []string) int {
	fs := pflag.NewFlagSet("build", pflag.ContinueOnError)
	fs.SetOutput(env.stderr)
	dryRun := fs.BoolP("dry-run", "n", false, "print the build order (dependencies first) and stop")
	var opts buildOptions
	fs.IntVarP(&opts.Jobs, "jobs", "j", runtime.NumCPU(), "number of actions run in parallel")
	fs.StringVar(&opts.Progress, "progress", "auto", "progress display: auto (a live status on a terminal) or plain (one line per event)")
	fs.BoolVar(&opts.Explain, "explain", false, "say why each action runs (which input changed)")
	fs.StringVar(&opts.OutputDir, "output-dir", "", "where outputs go (default <workspace>/sxb-out)")
	fs.BoolVarP(&opts.KeepGoing, "keep-going", "k", false, "build as much as possible after an error")
	fs.StringVar(&opts.Trace, "trace", "", "write a trace of the build (Chrome trace-event JSON: chrome://tracing, ui.perfetto.dev) to `FILE`")
	profiles := profileFlag(fs)
	fs.StringVar(&opts.SignKey, "sign-key", "", "OpenPGP secret key signing each output directory's SHA256SUMS into SHA256SUMS.gpg (passphrase: $SXB_SIGN_PASSPHRASE)")
	addRemoteFlags(fs, &opts.Remote)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "usage: sxb build [flags] [PATTERN...]")
		fmt.Fprintln(env.stderr, "Without a pattern, builds the package in the current directory (:all).")
		fmt.Fprintf(env.stderr, "Flags also come from the workspace's %s (lines \"build --flag=value\"), under SXB_REMOTE_CACHE and the command line.\n", RCFile)
		fs.PrintDefaults()
	}
	// The workspace's defaults, then the environment, then the command line.
	if root, err := workspace.FindRoot(env.dir); err == nil {
		rc, err := rcArgs(root, "build")
		if err == nil {
			err = fs.Parse(rc)
		}
		if err == nil && fs.NArg() > 0 {
			err = fmt.Errorf("%q: only flags belong there", fs.Arg(0))
		}
		if err != nil {
			fmt.Fprintf(env.stderr, "sxb build: %s: %v\n", filepath.Join(root, RCFile), err)
			return exitUsage
		}
	}
	if v := os.Getenv("SXB_REMOTE_CACHE"); v != "" {
		fs.Set("remote-cache", v)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(env.stderr, "sxb build: %v\n", err)
		return exitUsage
	}
	patterns := fs.Args()
	if len(patterns) == 0 {
		// The package in the current directory: a BUILD.star or an mkosi
		// project, as "mkosi build" builds the project it is run in.
		patterns = []string{":all"}
		root, err := workspace.FindRoot(env.dir)
		if err != nil {
			fmt.Fprintf(env.stderr, "sxb build: %v\n", err)
			return exitError
		}
		if pkg, err := workspace.RelPackage(root, env.dir); err != nil || !workspace.IsPackage(root, pkg) {
			fmt.Fprintf(env.stderr, "sxb build: no pattern given and the current directory is not a package (no %s or mkosi project here); give a pattern such as //...\n", workspace.BuildFile)
			return exitUsage
		}
	}
	if opts.Jobs < 1 {
		fmt.Fprintf(env.stderr, "sxb build: --jobs must be at least 1 (got %d)\n", opts.Jobs)
		return exitUsage
	}
	if opts.Progress != "auto" && opts.Progress != "plain" {
		fmt.Fprintf(env.stderr, "sxb build: unknown --progress %q (want auto or plain)\n", opts.Progress)
		return exitUsage
	}
	g, code := loadGraph(ctx, env, "build", patterns, *profiles)
	if g == nil {
		return code
	}
	if *dryRun {
		roots, code := selectRoots(env, g)
		if roots == nil {
			return code
		}
		var b strings.Builder
		for _, t := range g.Closure(labelsOf(roots)) {
			b.WriteString(t.Label.String())
			b.WriteByte('\n')
		}
		fmt.Fprint(env.stdout, b.String())
		return exitOK
	}
	if opts.OutputDir == "" {
		opts.OutputDir = filepath.Join(g.Workspace, "sxb-out")
	} else if !filepath.IsAbs(opts.OutputDir) {
		opts.OutputDir = filepath.Join(env.dir, opts.OutputDir)
	}
	if opts.SignKey != "" && !filepath.IsAbs(opts.SignKey) {
		opts.SignKey = filepath.Join(env.dir, opts.SignKey)
	}
	return execBuild(ctx, env, g, opts)
}
