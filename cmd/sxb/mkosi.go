package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	"github.com/sxb-build/sxb/builtins/mkosi"
	"github.com/sxb-build/sxb/builtins/scripts"
	"github.com/sxb-build/sxb/internal/diag"
)

func init() {
	register(&command{
		name:    "mkosi",
		summary: "inspect mkosi projects (mkosi summary [--json] [DIR])",
		run:     runMkosi,
	})
}

// loadMkosi loads the mkosi project in dir (relative to the working
// directory), printing warnings to stderr.
func loadMkosi(env *environ, dir string, profiles []string) (*mkosi.Project, error) {
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(env.dir, dir)
	}
	color := diag.UseColor(env.stderr)
	return mkosi.Load(dir, mkosi.LoadOptions{
		Profiles: profiles,
		Warn:     func(d *diag.Diagnostic) { diag.Render(env.stderr, d, color) },
		RunVersion: func(program, dir string) ([]byte, error) {
			return scripts.Output(context.Background(), program, dir)
		},
	})
}

func runMkosi(ctx context.Context, env *environ, args []string) int {
	if len(args) == 0 || args[0] != "summary" {
		fmt.Fprintln(env.stderr, "usage: sxb mkosi summary [--json] [--profile NAME] [DIR]")
		if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
			return exitOK
		}
		return exitUsage
	}
	fs := pflag.NewFlagSet("mkosi summary", pflag.ContinueOnError)
	fs.SetOutput(env.stderr)
	asJSON := fs.Bool("json", false, "print the configuration as JSON, in the shape of mkosi --json summary")
	profiles := profileFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "usage: sxb mkosi summary [--json] [--profile NAME] [DIR]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		return parseFailed(env, "mkosi summary", err)
	}
	if fs.NArg() > 1 {
		fmt.Fprintln(env.stderr, "usage: sxb mkosi summary [--json] [--profile NAME] [DIR]")
		return exitUsage
	}
	dir := "."
	if fs.NArg() == 1 {
		dir = fs.Arg(0)
	}
	p, err := loadMkosi(env, dir, *profiles)
	if err != nil {
		diag.RenderError(env.stderr, err, diag.UseColor(env.stderr))
		return exitError
	}
	if *asJSON {
		b, err := p.SummaryJSON()
		if err != nil {
			diag.RenderError(env.stderr, err, false)
			return exitError
		}
		env.stdout.Write(b)
		return exitOK
	}
	for i, im := range p.Images {
		if i > 0 {
			fmt.Fprintln(env.stdout)
		}
		fmt.Fprintf(env.stdout, "IMAGE: %s\n", im.Name)
		s := im.Summary()
		keys := make([]string, 0, len(s))
		for k := range s {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if k == "Image" {
				continue
			}
			fmt.Fprintf(env.stdout, "  %-28s %s\n", k+":", summaryText(s[k]))
		}
	}
	return exitOK
}

func summaryText(v any) string {
	switch v := v.(type) {
	case nil:
		return "n/a"
	case bool:
		if v {
			return "yes"
		}
		return "no"
	case []string:
		if len(v) == 0 {
			return "n/a"
		}
		return strings.Join(v, " ")
	case []map[string]any:
		var l []string
		for _, t := range v {
			s := fmt.Sprint(t["Source"])
			if t["Target"] != nil {
				s += ":" + fmt.Sprint(t["Target"])
			}
			l = append(l, s)
		}
		if len(l) == 0 {
			return "n/a"
		}
		return strings.Join(l, " ")
	case map[string]string:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var l []string
		for _, k := range keys {
			l = append(l, k+"="+v[k])
		}
		if len(l) == 0 {
			return "n/a"
		}
		return strings.Join(l, " ")
	}
	return fmt.Sprint(v)
}
