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

func execBuild(ctx context.Context, env *environ, g *rules.Graph, targets []*rules.Target, opts buildOptions) int {
	epoch, err := sourceDateEpoch()
	if err != nil {
		fmt.Fprintln(env.stderr, "sxb build:", err)
		return exitUsage
	}
	useColor := diag.UseColor(env.stderr)
	fancy := opts.Progress == "auto" && isTerminal(env.stderr)
	var prog build.Progress = build.NewProgress(env.stderr, fancy, useColor, len(targets))
	var trace *build.Trace
	if opts.Profile != "" {
		profile := opts.Profile
		if !filepath.IsAbs(profile) {
			profile = filepath.Join(env.dir, profile)
		}
		trace = build.NewTrace(profile, prog)
		prog = trace
	}
	locks, err := build.ReadLocks(g)
	if err != nil {
		fmt.Fprintln(env.stderr, "sxb build: reading lock files:", err)
		return exitError
	}
	refresh, err := refreshInterval()
	if err != nil {
		fmt.Fprintln(env.stderr, "sxb build:", err)
		return exitUsage
	}
	remote, err := remoteClient(opts.Remote, filepath.Join(fetch.DefaultCacheDir(), "actions", "tmp"))
	if err != nil {
		fmt.Fprintln(env.stderr, "sxb build:", err)
		return exitUsage
	}
	var sum build.Summary
	results, err := build.Build(ctx, g, g.RootTargets(), build.Options{
		OutputDir: opts.OutputDir, Jobs: opts.Jobs, KeepGoing: opts.KeepGoing, Explain: opts.Explain,
		Epoch: epoch, Progress: prog, Log: env.stderr, Locks: locks, Refresh: refresh,
		RecordLocks: opts.recordLocks, SignKey: opts.SignKey, SignPassphrase: []byte(os.Getenv("SXB_SIGN_PASSPHRASE")),
		Remote: remote, RemoteUpload: opts.Remote.Upload, Summary: &sum,
	})
	for _, r := range results {
		for _, o := range r.Outputs {
			fmt.Fprintln(env.stdout, o)
		}
	}
	profileFailed := false
	if trace != nil {
		if terr := trace.Err(); terr != nil {
			fmt.Fprintln(env.stderr, "sxb build:", terr)
			profileFailed = true
		} else {
			fmt.Fprintf(env.stderr, "profile: %s (peak memory %s)\n", opts.Profile, humanSize(trace.PeakRSS()))
		}
	}
	if len(results) > 0 {
		fmt.Fprintln(env.stderr, "outputs:")
		for _, r := range results {
			state := "built"
			if r.Remote {
				state = "from remote cache"
			} else if r.Cached {
				state = "up to date"
			}
			for _, o := range r.Outputs {
				fmt.Fprintf(env.stderr, "  %s  %s  (%s)\n", o, humanSize(r.Size), state)
			}
		}
	}
	if remote != nil {
		st := remote.Stats()
		fmt.Fprintf(env.stderr, "remote cache: %d of %d actions from %s (%s downloaded), %d uploaded (%s)\n",
			sum.Remote, sum.Actions, remote.URL(), humanSize(st.Downloaded.Load()), sum.Uploaded, humanSize(st.Uploaded.Load()))
	}
	if err != nil {
		// After Ctrl-C, a step may fail with its own error (a download
		// cut short reads as a truncated archive): the cause is the interrupt.
		if errors.Is(err, context.Canceled) || ctx.Err() != nil {
			fmt.Fprintln(env.stderr, "sxb build: interrupted")
			return exitError
		}
		for _, e := range unwrapJoined(err) {
			diag.RenderError(env.stderr, e, useColor)
		}
		return exitError
	}
	if profileFailed {
		return exitError
	}
	return exitOK
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
