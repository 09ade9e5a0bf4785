package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/sxb-build/sxb/internal/diag"
	"github.com/sxb-build/sxb/internal/label"
	"github.com/sxb-build/sxb/rules"
	"github.com/sxb-build/sxb/starlark/eval"
)

func init() {
	register(&command{
		name:    "query",
		summary: "list the targets matching patterns (--output=plain|json|dot, --deps)",
		run:     runQuery,
	})
}

// loadGraph evaluates the packages patterns need. On failure it prints the
// diagnostics and returns the exit code (usage error for a malformed
// pattern, error otherwise). SXB_MAX_STEPS overrides the per-file step
// limit (eval.DefaultMaxSteps) for very large generated workspaces.
//
// profiles are mkosi profiles enabled in every mkosi project (--profile).
func loadGraph(ctx context.Context, env *environ, verb string, patterns, profiles []string) (*rules.Graph, int) {
	opts := eval.Options{Dir: env.dir, Patterns: patterns, Stderr: env.stderr, Profiles: profiles}
	if s := os.Getenv("SXB_MAX_STEPS"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			fmt.Fprintf(env.stderr, "sxb %s: SXB_MAX_STEPS=%q: want a positive number\n", verb, s)
			return nil, exitUsage
		}
		opts.MaxSteps = n
	}
	g, err := eval.Load(ctx, opts)
	if err == nil {
		return g, exitOK
	}
	var le *label.Error
	if errors.As(err, &le) {
		fmt.Fprintf(env.stderr, "sxb %s: %v\n", verb, err)
		return nil, exitUsage
	}
	if ctx.Err() != nil {
		fmt.Fprintf(env.stderr, "sxb %s: interrupted\n", verb)
		return nil, exitError
	}
	eval.RenderError(env.stderr, err, diag.UseColor(env.stderr))
	return nil, exitError
}

func runQuery(ctx context.Context, env *environ, args []string) int {
	fs := pflag.NewFlagSet("query", pflag.ContinueOnError)
	fs.SetOutput(env.stderr)
	output := fs.String("output", "plain", "output format: plain (labels), json (targets with attributes) or dot (graph)")
	deps := fs.Bool("deps", false, "include the transitive dependencies of the matched targets")
	profiles := profileFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "usage: sxb query [--output=plain|json|dot] [--deps] [--profile NAME]... PATTERN...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(env.stderr, "sxb query: %v\n", err)
		return exitUsage
	}
	switch *output {
	case "plain", "json", "dot":
	default:
		fmt.Fprintf(env.stderr, "sxb query: unknown --output %q (want plain, json or dot)\n", *output)
		return exitUsage
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitUsage
	}
	g, code := loadGraph(ctx, env, "query", fs.Args(), *profiles)
	if g == nil {
		return code
	}
	targets := g.RootTargets()
	if *deps {
		targets = g.Closure(g.Roots)
		sort.Slice(targets, func(i, j int) bool { return targets[i].Label.Less(targets[j].Label) })
	}
	var err error
	switch *output {
	case "plain":
		var b strings.Builder
		for _, t := range targets {
			b.WriteString(t.Label.String())
			b.WriteByte('\n')
		}
		_, err = io.WriteString(env.stdout, b.String())
	case "json":
		err = writeQueryJSON(env.stdout, g, targets)
	case "dot":
		err = writeQueryDot(env.stdout, targets)
	}
	if err != nil {
		fmt.Fprintln(env.stderr, "sxb query:", err)
		return exitError
	}
	return exitOK
}

// queryTarget is the JSON form of one target.
type queryTarget struct {
	Label      string   `json:"label"`
	Kind       string   `json:"kind"`
	Location   string   `json:"location"`
	Attributes any      `json:"attributes"`
	Deps       []string `json:"deps"`
	// Buildable is false when the target, or one of its dependencies,
	// cannot be built; Unbuildable then says why.
	Buildable   bool          `json:"buildable"`
	Unbuildable []queryReason `json:"unbuildable,omitempty"`
}

// queryReason is one reason a target cannot be built.
type queryReason struct {
	// Target is the unbuildable target: this one or a dependency.
	Target   string `json:"target"`
	Location string `json:"location"`
	Reason   string `json:"reason"`
}

func writeQueryJSON(w io.Writer, g *rules.Graph, targets []*rules.Target) error {
	out := make([]queryTarget, 0, len(targets))
	for _, t := range targets {
		q := queryTarget{Label: t.Label.String(), Kind: t.Kind, Location: t.Pos.String(), Deps: []string{}, Buildable: true}
		switch {
		case t.Base != nil:
			q.Attributes = t.Base
		case t.Ext != nil:
			q.Attributes = t.Ext
		case t.Test != nil:
			q.Attributes = t.Test
		case t.Tree != nil:
			q.Attributes = t.Tree
		}
		if b := g.BlockedBy(t.Label); b != nil {
			q.Buildable = false
			for _, d := range b.Unbuildable {
				q.Unbuildable = append(q.Unbuildable, queryReason{Target: b.Label.String(), Location: d.Pos.String(), Reason: d.Msg})
			}
		}
		for _, d := range t.Deps {
			q.Deps = append(q.Deps, d.String())
		}
		out = append(out, q)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func writeQueryDot(w io.Writer, targets []*rules.Target) error {
	var b strings.Builder
	b.WriteString("digraph sxb {\n  rankdir = \"BT\";\n  node [shape = \"box\"];\n")
	in := map[string]bool{}
	for _, t := range targets {
		in[t.Label.String()] = true
	}
	for _, t := range targets {
		shape := "box"
		if t.Kind == rules.KindBaseImage {
			shape = "box3d"
		}
		style := ""
		if len(t.Unbuildable) > 0 {
			style = ", style = \"dashed\"" // cannot be built
		}
		fmt.Fprintf(&b, "  %q [label = %q, shape = %q%s];\n", t.Label.String(), t.Kind+"\n"+t.Label.String(), shape, style)
	}
	for _, t := range targets {
		for _, d := range t.Deps {
			if in[d.String()] {
				fmt.Fprintf(&b, "  %q -> %q;\n", t.Label.String(), d.String())
			}
		}
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}
