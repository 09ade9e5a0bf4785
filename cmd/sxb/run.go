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

	"github.com/sxb-build/sxb/builtins/extension"
	"github.com/sxb-build/sxb/builtins/merge"
	"github.com/sxb-build/sxb/builtins/sandbox"
	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/rules"
	"github.com/sxb-build/sxb/rules/build"
)

func init() {
	register(&command{
		name:    "run",
		summary: "build extensions and run a command on them merged onto their base (sxb run //:jq -- jq --version)",
		run:     func(ctx context.Context, env *environ, args []string) int { return runMerged(ctx, env, "run", args) },
	})
	register(&command{
		name:    "shell",
		summary: "build extensions and open a shell on them merged onto their base",
		run:     func(ctx context.Context, env *environ, args []string) int { return runMerged(ctx, env, "shell", args) },
	})
}

// runMerged is sxb run and sxb shell: build the targets, merge the
// extensions onto their base as systemd would, and run a command there in
// the sandbox; its exit status is sxb's.
func runMerged(ctx context.Context, env *environ, verb string, args []string) int {
	fs := pflag.NewFlagSet(verb, pflag.ContinueOnError)
	fs.SetOutput(env.stderr)
	var opts buildOptions
	opts.verb = verb
	fs.IntVarP(&opts.Jobs, "jobs", "j", runtime.NumCPU(), "number of actions run in parallel")
	fs.StringVar(&opts.Progress, "progress", "auto", "progress display of the build: auto or plain")
	fs.StringVar(&opts.OutputDir, "output-dir", "", "where outputs go (default <workspace>/sxb-out)")
	network := fs.Bool("network", false, "let the command reach the network (default: loopback only)")
	envVars := fs.StringArrayP("env", "e", nil, "set `NAME=VALUE` in the command's environment (repeatable)")
	addRemoteFlags(fs, &opts.Remote)
	fs.Usage = func() {
		if verb == "shell" {
			fmt.Fprintln(env.stderr, "usage: sxb shell [flags] TARGET...")
		} else {
			fmt.Fprintln(env.stderr, "usage: sxb run [flags] TARGET... -- COMMAND [ARG...]")
		}
		fmt.Fprintln(env.stderr, "TARGETs are sysexts and confexts (merged in systemd's order) or one base_image.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(env.stderr, "sxb %s: %v\n", verb, err)
		return exitUsage
	}
	patterns, command := fs.Args(), []string(nil)
	if n := fs.ArgsLenAtDash(); n >= 0 {
		patterns, command = fs.Args()[:n], fs.Args()[n:]
	}
	switch {
	case len(patterns) == 0:
		fs.Usage()
		return exitUsage
	case verb == "run" && len(command) == 0:
		fmt.Fprintln(env.stderr, "sxb run: give the command to run after --, e.g. sxb run //:jq -- jq --version")
		return exitUsage
	case verb == "shell" && len(command) > 0:
		fmt.Fprintln(env.stderr, "sxb shell: takes no command (use sxb run TARGET -- COMMAND)")
		return exitUsage
	}
	for _, e := range *envVars {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			fmt.Fprintf(env.stderr, "sxb %s: --env %q: want NAME=VALUE\n", verb, e)
			return exitUsage
		}
	}
	g, code := loadGraph(ctx, env, verb, patterns, nil)
	if code != exitOK {
		return code
	}
	roots := g.RootTargets()
	base, err := mergeBase(g, roots)
	if err != nil {
		fmt.Fprintf(env.stderr, "sxb %s: %v\n", verb, err)
		return exitUsage
	}
	results, code, err := execute(ctx, env, g, append(roots, base), opts, nil)
	if code != exitOK {
		return code
	}
	if err != nil {
		return reportErr(ctx, env, verb, err)
	}
	byLabel := map[string]*build.Result{}
	for _, r := range results {
		byLabel[r.Label] = r
	}
	br := byLabel[base.Label.String()]
	mo := merge.Options{Base: br.Tree, Architecture: base.Base.Architecture.String(), Args: command,
		Env: *envVars, Stdin: env.stdin, Stdout: env.stdout, Stderr: env.stderr, Network: *network}
	if br.TreeMeta != "" {
		if mo.BaseMeta, err = tree.LoadMeta(br.TreeMeta); err != nil {
			fmt.Fprintf(env.stderr, "sxb %s: %v\n", verb, err)
			return exitError
		}
	}
	for _, t := range roots {
		if t.Ext != nil {
			mo.Images = append(mo.Images, merge.Image{Path: byLabel[t.Label.String()].Image, Name: t.Ext.Output, Kind: extension.Kind(t.Ext.Kind)})
		}
	}
	if verb == "shell" {
		mo.Args = []string{"/bin/sh"}
		if fi, err := os.Stat(filepath.Join(br.Tree, "usr/bin/bash")); err == nil && !fi.IsDir() {
			mo.Args = []string{"/usr/bin/bash"}
		}
		if term := os.Getenv("TERM"); term != "" {
			mo.Env = append([]string{"TERM=" + term}, mo.Env...)
		}
	}
	err = merge.Run(ctx, mo)
	var exit *sandbox.ExitError
	switch {
	case errors.As(err, &exit) && exit.Signal != 0:
		return 128 + exit.Signal
	case errors.As(err, &exit):
		return exit.Code
	case err != nil:
		fmt.Fprintf(env.stderr, "sxb %s: %v\n", verb, err)
		return exitError
	}
	return exitOK
}

// mergeBase returns the base the targets run on: the one base_image among
// them, or the base every extension among them is built on.
func mergeBase(g *rules.Graph, roots []*rules.Target) (*rules.Target, error) {
	var base *rules.Target
	for _, t := range roots {
		var b *rules.Target
		switch {
		case t.Base != nil:
			b = t
		case t.Ext != nil && t.Ext.Base != nil:
			b = g.Target(*t.Ext.Base)
		case t.Ext != nil:
			continue
		default:
			return nil, fmt.Errorf("%s is a %s: give sysexts, confexts or a base_image", t.Label, t.Kind)
		}
		if b == nil || b.Base == nil {
			return nil, fmt.Errorf("%s: its base is not a base_image", t.Label)
		}
		if base != nil && base != b {
			return nil, fmt.Errorf("the targets have different bases (%s and %s): give extensions of one base", base.Label, b.Label)
		}
		base = b
	}
	if base == nil {
		return nil, errors.New("none of the targets has a base to run on: add a base_image target to the command line")
	}
	return base, nil
}
