package rpm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/builtins/tree"
)

func TestInstalledRecordNeverLeavesTheTree(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(root, "usr/lib"), 0o755)
	// A package made usr/lib/sysimage a symlink out of the tree.
	if err := os.Symlink(outside, filepath.Join(root, "usr/lib/sysimage")); err != nil {
		t.Fatal(err)
	}
	err := writeInstalledAt(t, root, []InstalledPackage{{Name: "x"}})
	if err == nil || !strings.Contains(err.Error(), "not a directory in the tree") {
		t.Errorf("err = %v", err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("wrote outside the tree: %v", ents)
	}
	// A record path that is itself a symlink is replaced, not written through.
	root2 := t.TempDir()
	os.MkdirAll(filepath.Join(root2, "usr/lib/sysimage/sxb"), 0o755)
	target := filepath.Join(outside, "victim")
	os.WriteFile(target, []byte("keep"), 0o644)
	os.Symlink(target, filepath.Join(root2, InstalledDBPath))
	if err := writeInstalledAt(t, root2, []InstalledPackage{{Name: "x"}}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Fatal("wrote through a symlink onto the host")
	}
	pkgs, err := ReadInstalled(root2)
	if err != nil || len(pkgs) != 1 || pkgs[0].Name != "x" {
		t.Errorf("ReadInstalled = %v, %v", pkgs, err)
	}
}

// writeInstalledAt runs writeInstalled on the tree at dir.
func writeInstalledAt(t *testing.T, dir string, pkgs []InstalledPackage) error {
	t.Helper()
	root, err := tree.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	return writeInstalled(root, pkgs)
}
