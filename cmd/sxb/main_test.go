package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/sxb-build/sxb/builtins/sandbox"
)

func TestMain(m *testing.M) {
	sandbox.Init()
	testscript.Main(m, map[string]func(){
		"sxb": func() { os.Exit(sxbMain()) },
	})
}

// TestScripts runs the end-to-end CLI scripts in testdata/script.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(e *testscript.Env) error {
			e.Setenv("NO_COLOR", "1")
			e.Setenv("XDG_CACHE_HOME", e.WorkDir+"/.cache")
			// Scripts that download from the real archive share one
			// cache across scripts and runs (env XDG_CACHE_HOME=$SHARED_CACHE).
			e.Setenv("SHARED_CACHE", filepath.Join(os.TempDir(), "sxb-test-cache"))
			return nil
		},
		Condition: scriptCondition,
		Cmds:      scriptCommands,
	})
}
