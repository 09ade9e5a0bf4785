package main

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"
)

// parseFailed reports a flag set's Parse error and returns the exit status:
// -h and --help (the flag set has printed the usage) succeed, anything else
// is a usage error, said on stderr with a pointer to --help.
func parseFailed(env *environ, verb string, err error) int {
	if errors.Is(err, pflag.ErrHelp) {
		return exitOK
	}
	fmt.Fprintf(env.stderr, "sxb %s: %v (see sxb %s --help)\n", verb, err, verb)
	return exitUsage
}

// profileFlag adds --profile NAME (repeatable, or comma-separated), the
// mkosi profiles enabled in every mkosi project, as mkosi's --profile.
func profileFlag(fs *pflag.FlagSet) *[]string {
	return fs.StringSlice("profile", nil, "enable the mkosi profile `NAME` in mkosi projects (repeatable), as mkosi --profile")
}
