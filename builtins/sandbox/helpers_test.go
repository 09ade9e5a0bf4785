package sandbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/internal/testenv"
)

func TestMain(m *testing.M) {
	Init()
	if dir := os.Getenv(scenarioEnv); dir != "" {
		// Re-executed as another user by TestUnprivileged.
		os.Exit(runScenario(dir))
	}
	os.Exit(m.Run())
}

// busyboxTree makes a tree with a static busybox and its applets in /bin,
// the way a minimal image has a shell, inside a new directory that holds
// nothing else.
func busyboxTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	root := filepath.Join(dir, "root")
	makeBusyboxTree(t, root)
	return root
}

func makeBusyboxTree(t *testing.T, root string) {
	t.Helper()
	bb := testenv.NeedTool(t, "busybox")
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	for _, d := range []string{"bin", "etc", "usr/bin", "var"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" {
			os.Symlink("busybox", filepath.Join(root, "bin", a))
		}
	}
}

// sh runs a shell script in a sandbox and returns its output.
func sh(t *testing.T, opts Options, script string) (string, *Result, error) {
	t.Helper()
	var out, errb bytes.Buffer
	opts.Args = []string{"sh", "-c", script}
	opts.Stdout, opts.Stderr = &out, &errb
	res, err := Run(context.Background(), opts)
	if errb.Len() > 0 {
		t.Logf("stderr of the sandbox: %s", errb.String())
	}
	return out.String(), res, err
}

// mustSh is sh that fails the test when the script fails.
func mustSh(t *testing.T, opts Options, script string) (string, *Result) {
	t.Helper()
	out, res, err := sh(t, opts, script)
	if err != nil {
		t.Fatalf("script failed: %v\noutput: %s", err, out)
	}
	return out, res
}

// listing describes every object below root, one line each, sorted: path,
// type, permission bits, and content digest or symlink target. Disk owners
// are left out (a rootless tree's owners live in its Meta).
func listing(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %v", rel, fi.Mode())
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			line += " " + hex.EncodeToString(sum[:8])
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			line += " -> " + target
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// writeFile writes a file below root, making its directories.
func writeFile(t *testing.T, root, rel, content string, mode os.FileMode) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}
