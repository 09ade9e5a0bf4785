package eval

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadSymlinkOutOfWorkspace: a .star file reached through a symlink
// leading out of the workspace is refused like a tree is; it used to be
// read (and its lines quoted in parse errors), so a checked-out workspace
// could make sxb read any host file.
func TestLoadSymlinkOutOfWorkspace(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret.star"), []byte("secret = \"host data\"\n"), 0o644)
	os.Symlink(filepath.Join(outside, "secret.star"), filepath.Join(root, "lib.star"))
	os.WriteFile(filepath.Join(root, "BUILD.star"), []byte("load(\"//:lib.star\", \"secret\")\nfail(secret)\n"), 0o644)
	_, err := Load(context.Background(), Options{Dir: root, Patterns: []string{"//..."}})
	if err == nil || strings.Contains(err.Error(), "host data") || !strings.Contains(err.Error(), "out of the workspace") {
		t.Errorf("err = %v", err)
	}
	// A symlink that stays inside the workspace is fine.
	os.Remove(filepath.Join(root, "lib.star"))
	os.WriteFile(filepath.Join(root, "real.star"), []byte("secret = \"ok\"\n"), 0o644)
	os.Symlink("real.star", filepath.Join(root, "lib.star"))
	os.WriteFile(filepath.Join(root, "BUILD.star"), []byte("load(\"//:lib.star\", \"secret\")\nif secret != \"ok\":\n    fail(secret)\n"), 0o644)
	if _, err := Load(context.Background(), Options{Dir: root, Patterns: []string{"//..."}}); err != nil {
		t.Errorf("symlink inside the workspace: %v", err)
	}
}

// TestBuildFileSymlinkOutOfWorkspace: the same for a package's BUILD.star.
func TestBuildFileSymlinkOutOfWorkspace(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(outside, "BUILD.star"), []byte("fail(\"host data\")\n"), 0o644)
	os.WriteFile(filepath.Join(root, "BUILD.star"), nil, 0o644)
	os.Mkdir(filepath.Join(root, "pkg"), 0o755)
	os.Symlink(filepath.Join(outside, "BUILD.star"), filepath.Join(root, "pkg", "BUILD.star"))
	_, err := Load(context.Background(), Options{Dir: root, Patterns: []string{"//..."}})
	if err == nil || strings.Contains(err.Error(), "host data") || !strings.Contains(err.Error(), "out of the workspace") {
		t.Errorf("err = %v", err)
	}
}

// TestVersionWithSlash: the version is part of the output file name.
func TestVersionWithSlash(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "BUILD.star"), []byte("sysext(name = \"a\", version = \"1/../../x\", extension_release = {\"ID\": \"_any\"})\n"), 0o644)
	_, err := Load(context.Background(), Options{Dir: root, Patterns: []string{"//..."}})
	if err == nil || !strings.Contains(err.Error(), "output file name") {
		t.Errorf("err = %v", err)
	}
}
