package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/testenv"
)

// TestTreeAt: with TreeAt the tree is mounted at that path over an empty
// root holding the host's /usr (read-only) and links; the command writes
// to the tree there, and nothing of the sandbox's own root reaches the
// tree.
func TestTreeAt(t *testing.T) {
	testenv.NeedRoot(t)
	root := busyboxTree(t)
	base := t.TempDir()
	writeFile(t, base, "usr/lib/os-release", "ID=test\n", 0o644)
	links := []Link{{Path: "/bin", Target: "usr/bin"}, {Path: "/lib", Target: "usr/lib"}, {Path: "/lib64", Target: "usr/lib64"}, {Path: "/sbin", Target: "usr/sbin"}}
	meta := tree.NewMeta()
	out, _ := mustSh(t, Options{Root: root, Meta: meta, Lower: []string{base}, TreeAt: "/buildroot", Links: links,
		Binds: []Bind{{Source: "/usr", Target: "/usr"}}},
		`cat /buildroot/usr/lib/os-release
		test -x /buildroot/bin/busybox && echo tree-visible
		readlink /bin
		echo made > /buildroot/made
		mkdir -p /work/dest && echo scratch > /work/dest/f && echo scratch-ok
		touch /usr/sxb-test 2>/dev/null || echo usr-read-only
		ls /`)
	want := "ID=test\ntree-visible\nusr/bin\nscratch-ok\nusr-read-only\nbin\nbuildroot\ndev\nlib\nlib64\nproc\nrun\nsbin\ntmp\nusr\nwork\n"
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	if b, err := os.ReadFile(filepath.Join(root, "made")); err != nil || string(b) != "made\n" {
		t.Errorf("write to the tree: %q, %v", b, err)
	}
	for _, p := range []string{"work", "buildroot", "proc", "usr/lib/os-release"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("%s landed in the tree", p)
		}
	}
}

// TestTreeAtChecks: bad TreeAt, links and binds into the tree are refused
// before anything runs.
func TestTreeAtChecks(t *testing.T) {
	root := t.TempDir()
	for _, c := range []struct {
		opts Options
		want string
	}{
		{Options{TreeAt: "buildroot"}, "not an absolute path"},
		{Options{TreeAt: "/"}, "not an absolute path"},
		{Options{Links: []Link{{Path: "/bin", Target: "usr/bin"}}}, "need TreeAt"},
		{Options{TreeAt: "/buildroot", Links: []Link{{Path: "/buildroot/bin", Target: "x"}}}, "inside the tree"},
		{Options{TreeAt: "/buildroot", Binds: []Bind{{Source: root, Target: "/buildroot/x"}}}, "inside the tree"},
	} {
		c.opts.Root, c.opts.Args = root, []string{"true"}
		_, err := newKeeperConfig(c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.opts, err, c.want)
		}
	}
}
