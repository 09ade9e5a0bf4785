package main

import (
	"context"
	"fmt"
	"runtime/debug"
)

func init() {
	register(&command{
		name:    "version",
		summary: "print the sxb version",
		run: func(ctx context.Context, env *environ, args []string) int {
			switch {
			case len(args) == 1 && (args[0] == "-h" || args[0] == "--help"):
				fmt.Fprintln(env.stderr, "usage: sxb version")
				return exitOK
			case len(args) > 0:
				fmt.Fprintln(env.stderr, "usage: sxb version (takes no arguments)")
				return exitUsage
			}
			v := "(devel)"
			if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
				v = bi.Main.Version
			}
			fmt.Fprintln(env.stdout, "sxb", v)
			return exitOK
		},
	})
}
