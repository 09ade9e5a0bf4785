package main

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/builtins/inspect"
	"github.com/sxb-build/sxb/builtins/rpm/rpmtest"
	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/arch"
	"github.com/sxb-build/sxb/internal/testenv"
)

// scriptedOSS is a Tumbleweed-shaped repository whose base package
// (mime-db, standing in for shared-mime-info) compiles a cache with a
// %transfiletriggerin, as openSUSE's does, and whose extension package
// ships a definition under the watched directory.
func scriptedOSS() []rpmtest.Pkg {
	return []rpmtest.Pkg{
		{Name: "filesystem", Version: "84.87", Arch: arch.Native().RPM(), Tags: "Provides: /bin/sh",
			Install: `mkdir -p %{buildroot}/usr/bin %{buildroot}/usr/share %{buildroot}/etc
cp /bin/busybox %{buildroot}/usr/bin/busybox
for a in sh cat sort chown; do ln -s busybox %{buildroot}/usr/bin/$a; done
ln -s usr/bin %{buildroot}/bin
printf 'root:x:0:0:root:/root:/bin/sh\n' > %{buildroot}/etc/passwd
printf 'root:x:0:\n' > %{buildroot}/etc/group`,
			Files: "%dir /usr\n%dir /usr/share\n/bin\n/usr/bin\n/etc/passwd\n/etc/group"},
		{Name: "openSUSE-release", Version: "20241101", Release: "1981.1", Tags: "Provides: distribution-release",
			Install: `mkdir -p %{buildroot}/usr/lib
printf 'NAME="openSUSE Tumbleweed"\nID="opensuse-tumbleweed"\nVERSION_ID="20241101"\n' > %{buildroot}/usr/lib/os-release`,
			Files: "/usr/lib/os-release"},
		{Name: "mime-db", Version: "2.4", Tags: "Requires: filesystem\nRequires(post): /bin/sh",
			Install: "mkdir -p %{buildroot}/usr/share/mime/packages\necho base > %{buildroot}/usr/share/mime/packages/base.xml",
			Files:   "/usr/share/mime",
			Scripts: "%post\nsort /usr/share/mime/packages/*.xml > /usr/share/mime/mime.cache\nchown 7:7 /usr/share/mime/mime.cache\n" +
				"%transfiletriggerin -- /usr/share/mime/packages\n{ echo \"cache $1\"; cat; sort /usr/share/mime/packages/*.xml; } > /usr/share/mime/mime.cache\n"},
		{Name: "mime-extra", Version: "1", Tags: "Requires: mime-db",
			Install: "mkdir -p %{buildroot}/usr/share/mime/packages\necho extra > %{buildroot}/usr/share/mime/packages/extra.xml",
			Files:   "/usr/share/mime/packages/extra.xml"},
	}
}

// mimeBuild is the BUILD.star of the scripted workspace: a base from
// mirror (with more attributes, each a line) and the "mime" sysext.
func mimeBuild(mirror, keyring, more string) string {
	return `base = base_image(
    name = "base",
    distribution = "opensuse",
    release = "tumbleweed",
    mirror = "file://` + mirror + `",
    keyring = "` + keyring + `",
    packages = ["filesystem", "mime-db", "openSUSE-release"],
` + more + `)

sysext(name = "mime", base = base, packages = ["mime-extra"])
`
}

// mimeWorkspace makes the scripted fixture in dir and a workspace whose
// package mime holds mimeBuild's targets and more, caching in dir.
func mimeWorkspace(t *testing.T, dir, more string) string {
	t.Helper()
	env, mirror := rpmtest.TumbleweedMirror(t, filepath.Join(dir, "fixture"), scriptedOSS(),
		[]rpmtest.Pkg{{Name: "placeholder", Version: "1"}})
	ws := filepath.Join(dir, "ws")
	os.MkdirAll(filepath.Join(ws, "mime"), 0o755)
	os.WriteFile(filepath.Join(ws, "WORKSPACE.star"), nil, 0o644)
	os.WriteFile(filepath.Join(ws, "mime/BUILD.star"), []byte(mimeBuild(mirror, env.Keyring, "")+more), 0o644)
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache"))
	return ws
}

// TestOpenSUSEScriptlets builds a Tumbleweed-shaped base whose package
// has a %post and a %transfiletriggerin, and a sysext adding a file the
// trigger watches: the cache the base's trigger rewrites lands in the
// image. With scripts = False the image has no cache and the manifest
// names the trigger that did not run.
func TestOpenSUSEScriptlets(t *testing.T) {
	dir := t.TempDir()
	ws := mimeWorkspace(t, dir, `
sysext(name = "mime-noscripts", base = base, packages = ["mime-extra"], scripts = False)
`)
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), &environ{stdout: &stdout, stderr: &stderr, dir: ws}, []string{"build", "--progress=plain", "//mime:mime", "//mime:mime-noscripts"}); code != 0 {
		t.Fatalf("sxb build: exit %d\n%s", code, stderr.String())
	}
	cache := func(name string) (string, bool) {
		t.Helper()
		dest := filepath.Join(dir, "x-"+name)
		if _, err := inspect.Extract(context.Background(), filepath.Join(ws, "sxb-out/mime", name+".raw"), dest, tree.NewMeta()); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dest, "usr/share/mime/mime.cache"))
		return string(b), err == nil
	}
	// The base's %transfiletriggerin ran over the new file, with the
	// base's file beneath the extension's.
	if got, ok := cache("mime"); !ok || got != "cache 1\n/usr/share/mime/packages/extra.xml\nbase\nextra\n" {
		t.Errorf("mime.cache in the scripted image = %q (present %v)", got, ok)
	}
	manifest, _ := os.ReadFile(filepath.Join(ws, "sxb-out/mime/mime.manifest.json"))
	if strings.Contains(string(manifest), "scripts_not_run") {
		t.Errorf("the scripted image's manifest lists scripts not run:\n%s", manifest)
	}
	if got, ok := cache("mime-noscripts"); ok {
		t.Errorf("scripts = False: mime.cache in the image: %q", got)
	}
	manifest, _ = os.ReadFile(filepath.Join(ws, "sxb-out/mime/mime-noscripts.manifest.json"))
	if !strings.Contains(string(manifest), "mime-db %transfiletriggerin") {
		t.Errorf("scripts = False: the manifest does not list the trigger:\n%s", manifest)
	}
}

// TestOpenSUSEScriptletsRootless builds the scripted workspace of
// TestOpenSUSEScriptlets (a %post chowns the cache to another user) as
// root and as an unprivileged user with a subordinate id range: the base
// (as a tar, showing every owner) and the sysext are byte-identical.
func TestOpenSUSEScriptletsRootless(t *testing.T) {
	testenv.NeedRoot(t)
	runuser := testenv.NeedTool(t, "runuser")
	sub := testenv.User(t, "sxb-test-sub", true)
	sxb := sxbForAnyone(t)
	dir, err := os.MkdirTemp("", "sxb-rpm-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	fixture := filepath.Join(dir, "fixture")
	env, mirror := rpmtest.TumbleweedMirror(t, fixture, scriptedOSS(), []rpmtest.Pkg{{Name: "placeholder", Version: "1"}})
	os.Chmod(fixture, 0o755)
	build := mimeBuild(mirror, env.Keyring, `    output = "tar",
`)
	outputs := map[string][]byte{}
	for _, who := range []string{"root", sub.Username} {
		ws := filepath.Join(dir, "ws-"+who)
		os.MkdirAll(filepath.Join(ws, "mime"), 0o755)
		os.WriteFile(filepath.Join(ws, "WORKSPACE.star"), nil, 0o644)
		os.WriteFile(filepath.Join(ws, "mime/BUILD.star"), []byte(build), 0o644)
		args := []string{sxb, "build", "--progress=plain", "//mime:base", "//mime:mime"}
		if who != "root" {
			testenv.Chown(t, ws, sub)
			args = append([]string{runuser, "-u", sub.Username, "--"}, args...)
		}
		buildAs(t, who, ws, args)
		for _, name := range []string{"base.tar", "mime.raw"} {
			b, err := os.ReadFile(filepath.Join(ws, "sxb-out/mime", name))
			if err != nil {
				t.Fatal(err)
			}
			if prev, ok := outputs[name]; ok && !bytes.Equal(prev, b) {
				t.Errorf("%s built as %s differs from the one built as root", name, who)
			}
			outputs[name] = b
		}
	}
	// The %post's chown reached the image.
	tr := tar.NewReader(bytes.NewReader(outputs["base.tar"]))
	found := false
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if strings.TrimPrefix(h.Name, "./") == "usr/share/mime/mime.cache" {
			found = true
			if h.Uid != 7 || h.Gid != 7 {
				t.Errorf("mime.cache owner %d:%d, want 7:7 (the %%post's chown)", h.Uid, h.Gid)
			}
		}
	}
	if !found {
		t.Error("the base has no mime.cache")
	}
}

// TestOpenSUSEBuildPackages: build packages on an openSUSE base are
// installed in the build overlay only. The build script sees mime-extra's
// file (and the cache its trigger rewrote); the image holds what the
// script wrote to $DESTDIR and nothing of the build packages.
func TestOpenSUSEBuildPackages(t *testing.T) {
	dir := t.TempDir()
	ws := mimeWorkspace(t, dir, `
sysext(
    name = "tool",
    base = base,
    build_packages = ["mime-extra"],
    build_scripts = ["build.sh"],
    extension_release = {"ID": "_any"},
)
`)
	os.WriteFile(filepath.Join(ws, "mime/build.sh"), []byte(`#!/bin/sh
set -e
mkdir -p "$DESTDIR/usr/share/tool"
cat "$BUILDROOT/usr/share/mime/packages/extra.xml" "$BUILDROOT/usr/share/mime/mime.cache" > "$DESTDIR/usr/share/tool/seen"
`), 0o755)
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), &environ{stdout: &stdout, stderr: &stderr, dir: ws}, []string{"build", "--progress=plain", "//mime:tool"}); code != 0 {
		t.Fatalf("sxb build: exit %d\n%s", code, stderr.String())
	}
	dest := filepath.Join(dir, "x")
	if _, err := inspect.Extract(context.Background(), filepath.Join(ws, "sxb-out/mime/tool.raw"), dest, tree.NewMeta()); err != nil {
		t.Fatal(err)
	}
	seen, err := os.ReadFile(filepath.Join(dest, "usr/share/tool/seen"))
	if want := "extra\ncache 1\n/usr/share/mime/packages/extra.xml\nbase\nextra\n"; err != nil || string(seen) != want {
		t.Errorf("what the build script saw: %q (%v), want %q", seen, err, want)
	}
	for _, p := range []string{"usr/share/mime/packages/extra.xml", "usr/share/mime/mime.cache"} {
		if _, err := os.Lstat(filepath.Join(dest, p)); err == nil {
			t.Errorf("the build packages' %s is in the image", p)
		}
	}
}
