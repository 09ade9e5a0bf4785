package build

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sxb-build/sxb/rules"
)

// TestApplyFileTreeIntoDirectory: a file tree whose target is a directory
// of the image goes inside it under its own name, as cp (and mkosi's
// ExtraTrees=file:/dir) puts it — whether the directory is in the tree
// or, for an extension, only in the base below (through the base's
// symlinks); any other target is the file's own path.
func TestApplyFileTreeIntoDirectory(t *testing.T) {
	root, base := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(root, "usr/share/doc"), 0o755)
	os.MkdirAll(filepath.Join(base, "usr/lib/systemd/system"), 0o755)
	os.Symlink("usr/lib", filepath.Join(base, "lib"))
	src := t.TempDir()
	unit := filepath.Join(src, "x@.service")
	os.WriteFile(unit, []byte("[Unit]\n"), 0o644)
	script := filepath.Join(src, "x.py")
	os.WriteFile(script, []byte("print()\n"), 0o755)
	err := applyTrees(root, base, []rules.Tree{
		{Source: unit, Target: "/lib/systemd/system"},
		{Source: unit, Target: "/usr/share/doc"},
		{Source: script, Target: "/usr/bin/x"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{
		"usr/lib/systemd/system/x@.service": 0o644,
		"usr/share/doc/x@.service":          0o644,
		"usr/bin/x":                         0o755,
	} {
		fi, err := os.Lstat(filepath.Join(root, p))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != want {
			t.Errorf("%s: %v %v", p, fi, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(root, "lib")); err == nil {
		t.Errorf("lib/ made in the extension instead of following the base's symlink")
	}
	// Without a base, a target that is no directory is the file's path.
	root2 := t.TempDir()
	if err := applyTrees(root2, "", []rules.Tree{{Source: unit, Target: "/usr/lib/systemd/system"}}, nil); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(root2, "usr/lib/systemd/system")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("file at its target: %v %v", fi, err)
	}
}
