package workspace

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, root string, files ...string) {
	t.Helper()
	for _, f := range files {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFindRoot(t *testing.T) {
	tmp := t.TempDir()
	// Outermost BUILD.star wins, across directories without one.
	write(t, tmp, "ws/BUILD.star", "ws/a/b/BUILD.star", "ws/a/b/c/x.txt")
	// WORKSPACE.star pins a nested root.
	write(t, tmp, "ws/nested/WORKSPACE.star", "ws/nested/p/BUILD.star")
	// No BUILD.star anywhere.
	write(t, tmp, "empty/d/x.txt")
	for _, tc := range []struct{ dir, want string }{
		{"ws", "ws"},
		{"ws/a", "ws"},
		{"ws/a/b/c", "ws"},
		{"ws/nested", "ws/nested"},
		{"ws/nested/p", "ws/nested"},
		{"empty/d", ""},
	} {
		got, err := FindRoot(filepath.Join(tmp, tc.dir))
		if tc.want == "" {
			if err != ErrNoWorkspace {
				t.Errorf("FindRoot(%s) = %q, %v; want ErrNoWorkspace", tc.dir, got, err)
			}
			continue
		}
		if err != nil || got != filepath.Join(tmp, tc.want) {
			t.Errorf("FindRoot(%s) = %q, %v; want %s", tc.dir, got, err, tc.want)
		}
	}
}

func TestPackages(t *testing.T) {
	root := t.TempDir()
	write(t, root, "BUILD.star", "a/BUILD.star", "a/b/BUILD.star", "a/nopkg/x.txt", "c/d/BUILD.star",
		".hidden/BUILD.star", "_skip/BUILD.star", "a/testdata/BUILD.star", "sxb-out/BUILD.star",
		"nested/WORKSPACE.star", "nested/BUILD.star", "nested/x/BUILD.star")
	os.Symlink(filepath.Join(root, "a"), filepath.Join(root, "link"))
	got, err := Packages(root, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := ",a,a/b,c/d"; strings.Join(got, ",") != want {
		t.Errorf("Packages(//) = %q, want %q", strings.Join(got, ","), want)
	}
	got, _ = Packages(root, "a")
	if want := "a,a/b"; strings.Join(got, ",") != want {
		t.Errorf("Packages(//a) = %q, want %q", strings.Join(got, ","), want)
	}
	if _, err := Packages(root, "zz"); err == nil {
		t.Error("Packages of a missing directory: no error")
	}
	if p, err := RelPackage(root, filepath.Join(root, "a/b")); p != "a/b" || err != nil {
		t.Errorf("RelPackage = %q, %v", p, err)
	}
	if _, err := RelPackage(root, filepath.Dir(root)); err == nil {
		t.Error("RelPackage outside the root: no error")
	}
}

// TestMkosiPackages checks that mkosi project directories are packages and
// the directories they own are not.
func TestMkosiPackages(t *testing.T) {
	tmp := t.TempDir()
	write(t, tmp,
		"ws/BUILD.star",
		"ws/proj/mkosi.conf", "ws/proj/mkosi.images/jq/mkosi.conf", "ws/proj/mkosi.images/jq/mkosi.extra/x",
		"ws/proj/mkosi.output/o/mkosi.conf",
		"ws/sub/mkosi/mkosi.conf", "ws/sub/mkosi/mkosi.images/a.conf",
		"ws/dropins/mkosi.conf.d/10.conf",
		"ws/both/BUILD.star", "ws/both/mkosi.conf",
		"alone/mkosi.conf", "alone/mkosi.images/base/mkosi.conf", "alone/deep/x.txt",
		// Fragments a project Include=s are not projects; BUILD.star
		// packages inside a project still are.
		"ws/proj/shared/packages/x/mkosi.conf", "ws/proj/shared/base/mkosi.conf.d/a.conf", "ws/both/inner/mkosi.conf",
		"ws/proj/star/BUILD.star")
	ws := filepath.Join(tmp, "ws")
	got, err := Packages(ws, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"", "both", "dropins", "proj", "proj/star", "sub"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Packages = %q, want %q", got, want)
	}
	for pkg, want := range map[string]bool{
		"proj": true, "sub": true, "dropins": true, "both": false,
		"proj/mkosi.images/jq": false, "sub/mkosi": false, "proj/mkosi.output/o": false, "nothing": false,
		"proj/shared/packages/x": false, "proj/shared/base": false, "both/inner": false,
	} {
		if got := IsMkosiPackage(ws, pkg); got != want {
			t.Errorf("IsMkosiPackage(%q) = %v, want %v", pkg, got, want)
		}
	}
	if !IsPackage(ws, "both") || !IsPackage(ws, "proj") || IsPackage(ws, "proj/mkosi.images/jq") {
		t.Errorf("IsPackage disagrees with the package rules")
	}
	if got, err := Packages(ws, "proj/shared"); err != nil || len(got) != 0 {
		t.Errorf("Packages(proj/shared) = %q, %v; want none", got, err)
	}
	if f := PackageFile(ws, "proj"); f != filepath.Join(ws, "proj/mkosi.conf") {
		t.Errorf("PackageFile(proj) = %s", f)
	}
	if f := PackageFile(ws, "sub"); f != filepath.Join(ws, "sub/mkosi/mkosi.conf") {
		t.Errorf("PackageFile(sub) = %s", f)
	}
	if f := PackageFile(ws, "dropins"); f != filepath.Join(ws, "dropins") {
		t.Errorf("PackageFile(dropins) = %s", f)
	}
	// A standalone mkosi checkout is its own workspace, from inside too.
	for _, d := range []string{"alone", "alone/deep", "alone/mkosi.images/base"} {
		got, err := FindRoot(filepath.Join(tmp, d))
		if err != nil || got != filepath.Join(tmp, "alone") {
			t.Errorf("FindRoot(%s) = %q, %v; want alone", d, got, err)
		}
	}
}
