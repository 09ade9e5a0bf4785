package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sxb-build/sxb/internal/testenv"
)

// TestRootlessBuildIsIdentical builds the same workspace (a bookworm base
// with jq on top, from the real archive, and a sysext from a local tree
// with a setuid file) once as root and once as an unprivileged user with a
// subordinate id range (sxb-test-sub), each with its own cache, and expects
// byte-identical images, maintainer scripts and build scripts run: nothing in sxb needs root, and ownership never depends on who built. The
// base is also written as a tar, whose bytes show every path, owner, mode
// and time of the tree.
func TestRootlessBuildIsIdentical(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedNetwork(t)
	runuser := testenv.NeedTool(t, "runuser")
	sxb := sxbForAnyone(t)
	build := `bookworm = base_image(name = "bookworm", distribution = "debian", release = "bookworm", packages = ["systemd", "udev"])
sysext(name = "jq", base = bookworm, packages = ["jq"])
base_image(name = "bookworm-tar", distribution = "debian", release = "bookworm", packages = ["systemd", "udev"], output = "tar")
sysext(name = "tool", extra_trees = ["tree"], extension_release = {"ID": "_any"}, format = "squashfs")
sysext(name = "scripted", base = bookworm, build_scripts = ["build.sh"], postinst_scripts = ["postinst.chroot"])
`
	// The unprivileged builder has a subordinate id range, so the
	// packages' maintainer scripts can chown in the sandbox.
	sub := testenv.User(t, "sxb-test-sub", true)
	images := map[string][]byte{}
	for _, who := range []string{"root", sub.Username} {
		ws, err := os.MkdirTemp("", "sxb-rootless-"+who+"-")
		if err != nil {
			t.Fatal(err)
		}
		if os.Getenv("SXB_KEEP") == "" {
			defer os.RemoveAll(ws)
		}
		os.Chmod(ws, 0o755)
		os.MkdirAll(filepath.Join(ws, "img/tree/usr/bin"), 0o755)
		os.WriteFile(filepath.Join(ws, "WORKSPACE.star"), nil, 0o644)
		os.WriteFile(filepath.Join(ws, "img/BUILD.star"), []byte(build), 0o644)
		tool := filepath.Join(ws, "img/tree/usr/bin/tool")
		os.WriteFile(tool, []byte("#!/bin/sh\n"), 0o755)
		os.Chmod(tool, 0o755|os.ModeSetuid)
		// Build scripts: one on the host's tools, one inside the image
		// that changes owners and modes.
		os.WriteFile(filepath.Join(ws, "img/build.sh"), []byte("#!/bin/sh\nset -e\nmkdir -p \"$DESTDIR/usr/bin\"\necho built > \"$DESTDIR/usr/bin/built\"\n"), 0o755)
		os.WriteFile(filepath.Join(ws, "img/postinst.chroot"), []byte("#!/bin/sh\nset -e\nchown 1:1 /usr/bin/built\nchmod 4755 /usr/bin/built\n"), 0o755)
		args := []string{sxb, "build", "--progress=plain", "//img/..."}
		if who != "root" {
			testenv.Chown(t, ws, sub)
			// chown clears the setuid bit: set it again.
			os.Chmod(tool, 0o755|os.ModeSetuid)
			args = append([]string{runuser, "-u", sub.Username, "--"}, args...)
		}
		env := buildAs(t, who, ws, args)
		// sxb run needs no root either: jq runs on its merged base.
		runArgs := append(slices.Clone(args[:len(args)-3]), "run", "--progress=plain", "//img:jq", "--", "jq", "-n", "1+1")
		run := exec.Command(runArgs[0], runArgs[1:]...)
		run.Dir, run.Env = ws, env
		if out, err := run.Output(); err != nil || string(out) != "2\n" {
			t.Errorf("sxb run as %s: %v, stdout %q", who, err, out)
		}
		for _, name := range []string{"jq.raw", "tool.raw", "bookworm-tar.tar", "scripted.raw"} {
			b, err := os.ReadFile(filepath.Join(ws, "sxb-out/img", name))
			if err != nil {
				t.Fatal(err)
			}
			if prev, ok := images[name]; ok && !bytes.Equal(prev, b) {
				t.Errorf("%s built as %s differs from the one built as root", name, sub.Username)
			}
			images[name] = b
		}
	}
}

// sxbForAnyone builds a copy of sxb that any user may run (removed when
// the test ends).
func sxbForAnyone(t *testing.T) string {
	t.Helper()
	goTool := testenv.NeedTool(t, "go")
	bin, err := os.MkdirTemp("", "sxb-rootless-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(bin) })
	os.Chmod(bin, 0o755)
	sxb := filepath.Join(bin, "sxb")
	if out, err := exec.Command(goTool, "build", "-o", sxb, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return sxb
}

// buildAs runs the sxb command line args (through runuser for another
// user) in ws, with ws as HOME, its own cache and a fixed
// SOURCE_DATE_EPOCH, failing the test when it fails; it returns the
// environment it used.
func buildAs(t *testing.T, who, ws string, args []string) []string {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = ws
	cmd.Env = append(os.Environ(), "HOME="+ws, "XDG_CACHE_HOME="+filepath.Join(ws, ".cache"), "SOURCE_DATE_EPOCH=1700000000")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build as %s: %v\n%s", who, err, stderr.String())
	}
	return cmd.Env
}
