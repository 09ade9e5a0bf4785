package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/sxb-build/sxb/builtins/fetch"
	"github.com/sxb-build/sxb/internal/diag"
	"github.com/sxb-build/sxb/rules"
	"github.com/sxb-build/sxb/rules/build"
)

// sourceDateEpoch reads SOURCE_DATE_EPOCH; unset means 0, so that two
// builds of the same inputs give the same bytes wherever they run.
func sourceDateEpoch() (int64, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want a non-negative number of seconds", v)
	}
	return n, nil
}

// selectRoots splits the roots of g into the targets to build and the
// unbuildable ones (Target.Unbuildable, themselves or a dependency): one a
// pattern named explicitly is an error, one a wildcard matched is skipped
// with a note on stderr, as Bazel skips incompatible targets in "//...".
// It returns the targets to build, or the exit status when there is
// nothing to build.
func selectRoots(env *environ, g *rules.Graph) ([]*rules.Target, int) {
	useColor := diag.UseColor(env.stderr)
	var roots []*rules.Target
	var errs []error
	skipped := 0
	for _, t := range g.RootTargets() {
		err := g.BuildError(t.Label)
		switch {
		case err == nil:
			roots = append(roots, t)
		case g.Named[t.Label.String()]:
			errs = append(errs, err)
		default:
			skipped++
			b := g.BlockedBy(t.Label)
			why := b.Unbuildable[0].Msg
			if b != t {
				why = fmt.Sprintf("it depends on %s: %s", b.Label, why)
			}
			fmt.Fprintf(env.stderr, "note: skipping %s, which cannot be built: %s\n", t.Label, summarizeReason(why, len(b.Unbuildable)))
		}
	}
	if len(errs) > 0 {
		for _, e := range errs {
			for _, x := range unwrapJoined(e) {
				diag.RenderError(env.stderr, x, useColor)
			}
		}
		return nil, exitError
	}
	if len(roots) == 0 && skipped > 0 {
		what := "the target the patterns matched cannot"
		if skipped > 1 {
			what = fmt.Sprintf("none of the %d targets the patterns matched can", skipped)
		}
		fmt.Fprintf(env.stderr, "sxb: error: nothing to build: %s be built (sxb query --output=json says why)\n", what)
		return nil, exitError
	}
	return roots, exitOK
}

// summarizeReason is the first reason of an unbuildable target, saying
// how many more there are.
func summarizeReason(first string, n int) string {
	if n > 1 {
		return fmt.Sprintf("%s (and %d more reasons)", first, n-1)
	}
	return first
}

// labelsOf returns the targets' labels.
func labelsOf(ts []*rules.Target) []rules.Label {
	out := make([]rules.Label, len(ts))
	for i, t := range ts {
		out[i] = t.Label
	}
	return out
}

func execBuild(ctx context.Context, env *environ, g *rules.Graph, opts buildOptions) int {
	roots, code := selectRoots(env, g)
	if roots == nil {
		return code
	}
	results, code, err := execute(ctx, env, g, roots, opts, nil)
	if code != exitOK {
		return code
	}
	for _, r := range results {
		for _, o := range r.Outputs {
			fmt.Fprintln(env.stdout, o)
		}
	}
	if len(results) > 0 {
		fmt.Fprintln(env.stderr, "outputs:")
		for _, r := range results {
			for _, o := range r.Outputs {
				fmt.Fprintf(env.stderr, "  %s  %s  (%s)\n", o, humanSize(r.Size), resultState(r))
			}
		}
	}
	return reportErr(ctx, env, "build", err)
}

// resultState says where a target's outputs came from.
func resultState(r *build.Result) string {
	switch {
	case r.Remote:
		return "from remote cache"
	case r.Cached:
		return "up to date"
	}
	return "built"
}

// reportErr prints the error of an execution and returns the exit code.
func reportErr(ctx context.Context, env *environ, verb string, err error) int {
	if err == nil {
		return exitOK
	}
	// After Ctrl-C, a step may fail with its own error (a download cut
	// short reads as a truncated archive): the cause is the interrupt.
	if errors.Is(err, context.Canceled) || ctx.Err() != nil {
		fmt.Fprintf(env.stderr, "sxb %s: interrupted\n", verb)
		return exitError
	}
	useColor := diag.UseColor(env.stderr)
	for _, e := range unwrapJoined(err) {
		diag.RenderError(env.stderr, e, useColor)
	}
	return exitError
}

// execute builds roots (and what they need) with the executor as the
// flags in opts say; tune, when set, adjusts the executor's options. It
// returns the results, exitOK and the build error, or an exit code other
// than exitOK when the build could not start (the problem printed). Progress,
// the profile and the remote cache's summary go to stderr.
func execute(ctx context.Context, env *environ, g *rules.Graph, roots []*rules.Target, opts buildOptions, tune func(*build.Options)) ([]*build.Result, int, error) {
	verb := opts.verb
	if verb == "" {
		verb = "build"
	}
	epoch, err := sourceDateEpoch()
	if err != nil {
		fmt.Fprintf(env.stderr, "sxb %s: %v\n", verb, err)
		return nil, exitUsage, nil
	}
	useColor := diag.UseColor(env.stderr)
	fancy := opts.Progress == "auto" && isTerminal(env.stderr)
	// The progress counts what will run: the roots and what they need,
	// tests only when they run.
	runTests := false
	if tune != nil {
		var probe build.Options
		tune(&probe)
		runTests = probe.RunTests
	}
	total := 0
	for _, t := range g.Closure(labelsOf(roots)) {
		if t.Kind != rules.KindImageTest || runTests {
			total++
		}
	}
	var prog build.Progress = build.NewProgress(env.stderr, fancy, useColor, total)
	var trace *build.Trace
	if opts.Trace != "" {
		profile := opts.Trace
		if !filepath.IsAbs(profile) {
			profile = filepath.Join(env.dir, profile)
		}
		trace = build.NewTrace(profile, prog)
		prog = trace
	}
	locks, err := build.ReadLocks(g)
	if err != nil {
		fmt.Fprintf(env.stderr, "sxb %s: reading lock files: %v\n", verb, err)
		return nil, exitError, nil
	}
	refresh, err := refreshInterval()
	if err != nil {
		fmt.Fprintf(env.stderr, "sxb %s: %v\n", verb, err)
		return nil, exitUsage, nil
	}
	remote, err := remoteClient(opts.Remote, filepath.Join(fetch.DefaultCacheDir(), "actions", "tmp"))
	if err != nil {
		fmt.Fprintf(env.stderr, "sxb %s: %v\n", verb, err)
		return nil, exitUsage, nil
	}
	var sum build.Summary
	bo := build.Options{
		OutputDir: opts.OutputDir, Jobs: opts.Jobs, KeepGoing: opts.KeepGoing, Explain: opts.Explain,
		Epoch: epoch, Progress: prog, Log: env.stderr, Locks: locks, Refresh: refresh,
		RecordLocks: opts.recordLocks, SignKey: opts.SignKey, SignPassphrase: []byte(os.Getenv("SXB_SIGN_PASSPHRASE")),
		Remote: remote, RemoteUpload: opts.Remote.Upload, Summary: &sum,
	}
	if tune != nil {
		tune(&bo)
	}
	results, err := build.Build(ctx, g, roots, bo)
	if trace != nil {
		if terr := trace.Err(); terr != nil {
			err = errors.Join(err, terr)
		} else {
			fmt.Fprintf(env.stderr, "trace: %s (peak memory %s)\n", opts.Trace, humanSize(trace.PeakRSS()))
		}
	}
	if remote != nil {
		st := remote.Stats()
		fmt.Fprintf(env.stderr, "remote cache: %d of %d actions from %s (%s downloaded), %d uploaded (%s)\n",
			sum.Remote, sum.Actions, remote.URL(), humanSize(st.Downloaded.Load()), sum.Uploaded, humanSize(st.Uploaded.Load()))
	}
	return results, exitOK, err
}

// refreshInterval is how long resolved package sets are reused without
// asking the repositories: SXB_REFRESH (a Go duration such as "10m", or
// "0" to resolve on every build), one hour by default.
func refreshInterval() (time.Duration, error) {
	v := os.Getenv("SXB_REFRESH")
	if v == "" {
		return time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if v == "0" {
		d, err = 0, nil
	}
	if err != nil || d < 0 {
		return 0, fmt.Errorf("SXB_REFRESH=%q: want a duration such as 10m, or 0", v)
	}
	return d, nil
}

func unwrapJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
