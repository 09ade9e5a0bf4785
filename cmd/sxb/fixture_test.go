package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixtureWorkspace makes a workspace below dir with the BUILD.star files
// given by package directory (and any other file by its path), and a
// cache of its own.
func fixtureWorkspace(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	ws := filepath.Join(dir, "ws")
	files["WORKSPACE.star"] = ""
	for name, content := range files {
		p := filepath.Join(ws, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache"))
	return ws
}

// sxbIn runs sxb in the workspace ws and fails the test unless it exits
// 0; it returns stdout and stderr.
func sxbIn(t *testing.T, ws string, args ...string) (string, string) {
	t.Helper()
	out, errs, code := sxbCode(ws, args...)
	if code != 0 {
		t.Fatalf("sxb %s: exit %d\n%s", strings.Join(args, " "), code, errs)
	}
	return out, errs
}

// sxbCode runs sxb in the workspace ws and returns stdout, stderr and the
// exit code.
func sxbCode(ws string, args ...string) (string, string, int) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), &environ{stdout: &stdout, stderr: &stderr, dir: ws}, args)
	return stdout.String(), stderr.String(), code
}

// manifestPackages returns the names of the packages a manifest lists.
func manifestPackages(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Packages []struct {
			Name string `json:"name"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var names []string
	for _, p := range m.Packages {
		names = append(names, p.Name)
	}
	return names
}
