package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"github.com/spf13/pflag"

	"github.com/sxb-build/sxb/rules"
	"github.com/sxb-build/sxb/rules/build"
)

func init() {
	register(&command{
		name:    "test",
		summary: "build what image_test targets need and run them (PASSED, FAILED, cached)",
		run:     runTestCmd,
	})
}

func runTestCmd(ctx context.Context, env *environ, args []string) int {
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.SetOutput(env.stderr)
	var opts buildOptions
	opts.verb = "test"
	fs.IntVarP(&opts.Jobs, "jobs", "j", runtime.NumCPU(), "number of actions and tests run in parallel")
	fs.StringVar(&opts.Progress, "progress", "auto", "progress display: auto or plain")
	fs.StringVar(&opts.OutputDir, "output-dir", "", "where outputs and test logs go (default <workspace>/sxb-out)")
	cacheResults := fs.String("cache-test-results", "yes", "reuse the result of a test that passed with the same images, script and attributes (yes or no)")
	addRemoteFlags(fs, &opts.Remote)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "usage: sxb test [flags] [PATTERN...]")
		fmt.Fprintln(env.stderr, "Runs the image_test targets among the matches (default :all); exits 1 if any failed.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(env.stderr, "sxb test: %v\n", err)
		return exitUsage
	}
	if *cacheResults != "yes" && *cacheResults != "no" {
		fmt.Fprintf(env.stderr, "sxb test: --cache-test-results=%q: want yes or no\n", *cacheResults)
		return exitUsage
	}
	patterns := fs.Args()
	if len(patterns) == 0 {
		patterns = []string{":all"}
	}
	g, code := loadGraph(ctx, env, "test", patterns, nil)
	if code != exitOK {
		return code
	}
	var tests []*rules.Target
	for _, t := range g.RootTargets() {
		if t.Kind == rules.KindImageTest {
			tests = append(tests, t)
		}
	}
	if len(tests) == 0 {
		fmt.Fprintln(env.stderr, "sxb test: no image_test target matches", patterns)
		return exitError
	}
	opts.KeepGoing = true // one failing test does not stop the others
	results, code, err := execute(ctx, env, g, tests, opts, func(bo *build.Options) {
		bo.RunTests, bo.RerunTests = true, *cacheResults == "no"
	})
	if code != exitOK {
		return code
	}
	passed := map[string]*build.Result{}
	for _, r := range results {
		if r.Kind == rules.KindImageTest {
			passed[r.Label] = r
		}
	}
	failed := map[string]*build.TestFailure{}
	var other []error
	for _, e := range unwrapJoined(err) {
		var f *build.TestFailure
		if errors.As(e, &f) {
			failed[f.Label] = f
		} else if e != nil {
			other = append(other, e)
		}
	}
	for _, t := range tests {
		if f := failed[t.Label.String()]; f != nil {
			fmt.Fprintf(env.stderr, "==== %s output (%s) ====\n%s\n====\n", t.Label, f.LogFile, build.LastLines(f.Log, 200))
		}
	}
	status := exitOK
	var npass, nfail int
	for _, t := range tests {
		l := t.Label.String()
		switch r, f := passed[l], failed[l]; {
		case r != nil && r.Cached:
			fmt.Fprintf(env.stdout, "%-40s (cached) PASSED\n", l)
			npass++
		case r != nil:
			fmt.Fprintf(env.stdout, "%-40s PASSED\n", l)
			npass++
		case f != nil && f.Timeout > 0:
			fmt.Fprintf(env.stdout, "%-40s TIMEOUT after %s\n", l, f.Timeout)
			nfail++
		case f != nil:
			fmt.Fprintf(env.stdout, "%-40s FAILED (exit status %d)\n", l, f.Status)
			nfail++
		default:
			fmt.Fprintf(env.stdout, "%-40s NO STATUS (its images did not build)\n", l)
			nfail++
		}
	}
	if len(other) > 0 {
		reportErr(ctx, env, "test", errors.Join(other...))
	}
	fmt.Fprintf(env.stderr, "%d passed, %d failed\n", npass, nfail)
	if nfail > 0 || len(other) > 0 {
		status = exitError
	}
	return status
}
