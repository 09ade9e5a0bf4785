// Command sxb builds systemd system extension images from Starlark.
//
// The command is thin: each verb lives in its own file, registers itself in
// init, parses its flags with pflag and calls into the library packages.
// stdout carries only results (paths, query output) so that $(sxb build //x)
// composes; progress and diagnostics go to stderr.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"syscall"

	"github.com/sxb-build/sxb/builtins/sandbox"
)

// Exit codes shared by every verb.
const (
	exitOK    = 0
	exitError = 1 // build or evaluation error
	exitUsage = 2 // bad command line
)

// command is one verb of the CLI.
type command struct {
	name    string
	summary string
	// run executes the verb with its arguments (without the verb itself) and
	// returns the exit code. ctx is cancelled on SIGINT/SIGTERM.
	run func(ctx context.Context, env *environ, args []string) int
}

// environ is what a verb may touch of the process: its streams and the
// directory it was started in.
type environ struct {
	stdin          io.Reader // nil: no input
	stdout, stderr io.Writer
	dir            string
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("sxb: duplicate command " + c.name)
	}
	commands[c.name] = c
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: sxb <command> [flags] [arguments]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
}

func main() {
	// A process the sandbox started does its work and exits here.
	sandbox.Init()
	os.Exit(sxbMain())
}

func sxbMain() int {
	dir, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sxb:", err)
		return exitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if os.Getenv("GOMEMLIMIT") == "" {
		// A soft limit makes the collector run, and hand memory back
		// to the system, before the heap grows past it: a cold build's
		// peak (parsing a distribution's package index while packages
		// unpack) then stays near its live data. GOMEMLIMIT overrides it.
		debug.SetMemoryLimit(memoryLimit)
	}
	if p := os.Getenv("SXB_CPUPROFILE"); p != "" {
		stopProfile, err := startCPUProfile(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "sxb: SXB_CPUPROFILE:", err)
			return exitError
		}
		defer stopProfile()
	}
	return run(ctx, &environ{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, dir: dir}, os.Args[1:])
}

// memoryLimit is the Go heap's soft limit unless GOMEMLIMIT sets one.
const memoryLimit = 160 << 20

// startCPUProfile writes a pprof CPU profile of this process to path
// (SXB_CPUPROFILE, for `go tool pprof`) until the returned function runs.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "sxb: SXB_CPUPROFILE:", err)
		}
	}, nil
}

// run executes one sxb invocation (args without the program name) and
// returns its exit code.
func run(ctx context.Context, env *environ, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(env.stderr, "sxb: unknown command %q\n", args[0])
		usage(env.stderr)
		return exitUsage
	}
	return c.run(ctx, env, args[1:])
}
