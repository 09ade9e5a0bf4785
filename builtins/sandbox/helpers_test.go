package sandbox

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/internal/testenv"
)

func TestMain(m *testing.M) {
	Init()
	os.Exit(m.Run())
}

// busyboxTree makes a tree with a static busybox and its applets in /bin,
// the way a minimal image has a shell.
func busyboxTree(t *testing.T) string {
	t.Helper()
	bb := testenv.NeedTool(t, "busybox")
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	root := filepath.Join(dir, "root")
	for _, d := range []string{"bin", "etc", "usr", "var"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("\x7fELF")) {
		t.Fatal("busybox is not an ELF file")
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" {
			os.Symlink("busybox", filepath.Join(root, "bin", a))
		}
	}
	return root
}

// sh runs a shell script in a sandbox over root and returns its output.
func sh(t *testing.T, opts Options, script string) (string, *Result, error) {
	t.Helper()
	var out, errb bytes.Buffer
	opts.Args = []string{"sh", "-c", script}
	opts.Stdout, opts.Stderr = &out, &errb
	res, err := Run(context.Background(), opts)
	if errb.Len() > 0 {
		t.Logf("stderr: %s", errb.String())
	}
	return out.String(), res, err
}
