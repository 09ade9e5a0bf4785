package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/builtins/pacman/pacmantest"
	"github.com/sxb-build/sxb/internal/testenv"
)

// archWorkspace writes a workspace whose package arch has a base_image
// of packages from mirror (the fixture's keyring trusted) followed by
// rest, points the cache into the test's directory and returns the
// workspace.
func archWorkspace(t *testing.T, fx *pacmantest.Fixture, mirror string, packages []string, rest string) string {
	t.Helper()
	dir := t.TempDir()
	ws := filepath.Join(dir, "ws")
	os.MkdirAll(filepath.Join(ws, "arch"), 0o755)
	os.WriteFile(filepath.Join(ws, "WORKSPACE.star"), nil, 0o644)
	key, _ := os.ReadFile(fx.Packager)
	os.WriteFile(filepath.Join(ws, "arch/packager.gpg"), key, 0o644)
	build := `base = base_image(
    name = "base",
    distribution = "arch",
    release = "rolling",
    architecture = "x86-64",
    mirror = "file://` + mirror + `",
    keyring = "packager.gpg",
    packages = ["` + strings.Join(packages, `", "`) + `"],
)
` + rest
	os.WriteFile(filepath.Join(ws, "arch/BUILD.star"), []byte(build), 0o644)
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache"))
	return ws
}

// TestArchFixture builds an Arch base and a sysext on it from a local
// signed mirror laid out like an Arch mirror (the fixture of
// builtins/pacman, made with makepkg and repo-add), then checks the
// image, the base's local database (pacman -Q) and that a locked build
// gives the same image.
func TestArchFixture(t *testing.T) {
	dissect := testenv.NeedTool(t, "systemd-dissect")
	fx := pacmantest.Get(t)
	mirror := fx.CopyMirror(t)
	ws := archWorkspace(t, fx, mirror, []string{"fx-lib", "fx-hook"}, `
sysext(name = "tool", base = base, packages = ["fx-tool"])
`)
	sxb := func(args ...string) (string, string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), &environ{stdout: &stdout, stderr: &stderr, dir: ws}, args); code != 0 {
			t.Fatalf("sxb %s: exit %d\n%s", strings.Join(args, " "), code, stderr.String())
		}
		return stdout.String(), stderr.String()
	}
	out, _ := sxb("build", "--progress=plain", "//arch:tool")
	img := filepath.Join(ws, "sxb-out/arch/tool.raw")
	if strings.TrimSpace(out) != img {
		t.Errorf("stdout = %q, want %q", out, img)
	}
	text, _ := sxb("inspect", img)
	for _, want := range []string{"root-x86-64", "erofs", "extension-release.tool", "  ID=arch\n", "ARCHITECTURE=x86-64"} {
		if !strings.Contains(text, want) {
			t.Errorf("inspect lacks %q:\n%s", want, text)
		}
	}
	if out, err := exec.Command(dissect, img).CombinedOutput(); err != nil || !strings.Contains(string(out), "extension for system") {
		t.Errorf("systemd-dissect: %v\n%s", err, out)
	}
	// The base has a local database pacman reads.
	baseTree := filepath.Join(ws, "sxb-out/arch/base")
	q, err := exec.Command("pacman", "--root", baseTree, "--dbpath", filepath.Join(baseTree, "var/lib/pacman"), "-Q").CombinedOutput()
	if err != nil || string(q) != "filesystem 1.0-1\nfx-hook 1.0-1\nfx-lib 2.0-1\n" {
		t.Errorf("pacman -Q in the base: %v\n%s", err, q)
	}
	manifest, _ := os.ReadFile(filepath.Join(ws, "sxb-out/arch/tool.manifest.json"))
	for _, want := range []string{`"name": "fx-tool"`, `"name": "fx-impl-b"`} {
		if !strings.Contains(string(manifest), want) {
			t.Errorf("manifest lacks %s:\n%s", want, manifest)
		}
	}
	if strings.Contains(string(manifest), `"name": "fx-lib"`) {
		t.Errorf("manifest lists fx-lib, which the base has:\n%s", manifest)
	}
	first, _ := os.ReadFile(img)
	// Pinned: sxb lock, then a build from the lock (no cache, and the
	// mirror without databases) gives the same image.
	sxb("lock", "//arch:tool")
	lock, err := os.ReadFile(filepath.Join(ws, "arch/sxb.lock.json"))
	if err != nil || !strings.Contains(string(lock), "fx-impl-b-1.0-1-any.pkg.tar.zst") {
		t.Fatalf("sxb.lock.json: %v\n%s", err, lock)
	}
	sxb("clean", "--cache")
	for _, db := range []string{"core/os/x86_64/core.db", "extra/os/x86_64/extra.db"} {
		os.Remove(filepath.Join(mirror, db))
	}
	sxb("build", "--progress=plain", "//arch:tool")
	if again, _ := os.ReadFile(img); !bytes.Equal(first, again) {
		t.Errorf("the locked rebuild differs from the first build")
	}
	testenv.NeedRoot(t)
	files := imageFiles(t, img)
	for _, want := range []string{"\nusr/bin/fx\n", "\nusr/bin/fx-suid\n", "\nusr/share/fx-impl/b\n"} {
		if !strings.Contains(files, want) {
			t.Errorf("image lacks %q:\n%s", strings.TrimSpace(want), files)
		}
	}
	for _, bad := range []string{"usr/lib/libfx.so.2", "usr/lib/os-release", "\netc", "\nvar"} {
		if strings.Contains(files, bad) {
			t.Errorf("image has %q:\n%s", bad, files)
		}
	}
}

// TestArchScripts builds an Arch base and a sysext whose packages have
// .INSTALL scriptlets and libalpm hooks: they run (the base's tree holds
// the trace they write; a failing scriptlet is a warning, as pacman goes
// on), and with scripts = False the manifest lists what did not run.
func TestArchScripts(t *testing.T) {
	fx := pacmantest.Get(t)
	ws := archWorkspace(t, fx, fx.Mirror, []string{"fx-bash", "fx-hooks", "fx-failing"}, `
sysext(name = "scripted", base = base, packages = ["fx-scripted"])
sysext(name = "unscripted", base = base, packages = ["fx-scripted"], scripts = False)
`)
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), &environ{stdout: &stdout, stderr: &stderr, dir: ws}, []string{"build", "--progress=plain", "//arch:all"}); code != 0 {
		t.Fatalf("sxb build: exit %d\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "post_install of fx-failing failed (exit status 3): fx-failing: cannot set things up") {
		t.Errorf("no warning about fx-failing's post_install:\n%s", stderr.String())
	}
	trace, err := os.ReadFile(filepath.Join(ws, "sxb-out/arch/base/var/lib/fx-trace"))
	if err != nil || !strings.Contains(string(trace), "post_install fx-failing 1.0-1\n") || !strings.Contains(string(trace), "fx-b.hook fx-hooks\n") {
		t.Errorf("the base's trace: %v\n%s", err, trace)
	}
	scripted, _ := os.ReadFile(filepath.Join(ws, "sxb-out/arch/scripted.manifest.json"))
	if strings.Contains(string(scripted), "scripts_not_run") {
		t.Errorf("scripted's manifest lists scripts not run:\n%s", scripted)
	}
	unscripted, _ := os.ReadFile(filepath.Join(ws, "sxb-out/arch/unscripted.manifest.json"))
	for _, want := range []string{`"pre_install of fx-scripted"`, `"post_install of fx-scripted"`, `"ldconfig"`, `"hook fx.hook (PostTransaction)"`} {
		if !strings.Contains(string(unscripted), want) {
			t.Errorf("unscripted's manifest lacks %s:\n%s", want, unscripted)
		}
	}
}

// TestArchExtensionOnExtension builds a sysext on a sysext on an Arch
// base: the lower extension's local database entries count as installed
// for the upper one, whose image then holds only its own packages.
func TestArchExtensionOnExtension(t *testing.T) {
	fx := pacmantest.Get(t)
	mirror := fx.CopyMirror(t)
	dir := t.TempDir()
	key, _ := os.ReadFile(fx.Packager)
	ws := fixtureWorkspace(t, dir, map[string]string{"arch/packager.gpg": string(key), "arch/BUILD.star": `base = base_image(
    name = "base",
    distribution = "arch",
    release = "rolling",
    architecture = "x86-64",
    mirror = "file://` + mirror + `",
    keyring = "packager.gpg",
    packages = ["filesystem"],
)

sysext(name = "lib", base = base, packages = ["fx-lib", "fx-impl-a"])

sysext(name = "tool", base = ":lib", packages = ["fx-tool"])
`})
	sxbIn(t, ws, "build", "--progress=plain", "//arch:tool")
	out := filepath.Join(ws, "sxb-out/arch")
	if got := strings.Join(manifestPackages(t, filepath.Join(out, "lib.manifest.json")), " "); got != "fx-impl-a fx-lib" {
		t.Errorf("lib installs %q", got)
	}
	// fx-tool needs fx-lib, libfx.so and fx-virtual (fx-impl-a): all below.
	if got := strings.Join(manifestPackages(t, filepath.Join(out, "tool.manifest.json")), " "); got != "fx-tool" {
		t.Errorf("tool installs %q, want only fx-tool", got)
	}
	files := imageFiles(t, filepath.Join(out, "tool.raw"))
	if !strings.Contains(files, "\nusr/bin/fx\n") || strings.Contains(files, "libfx") || strings.Contains(files, "fx-impl") {
		t.Errorf("tool image:\n%s", files)
	}
}

// TestArchSandboxPacmanConf builds an mkosi project whose sandbox tree
// brings pacman's configuration: its pacman.conf (a repository through an
// Included mirrorlist, one with its Server) replaces the default
// repositories, and its usr/share/pacman/keyrings the host's keyring. A
// SigLevel letting packages go unchecked makes only that image
// unbuildable.
func TestArchSandboxPacmanConf(t *testing.T) {
	fx := pacmantest.Get(t)
	mirror := fx.CopyMirror(t)
	dir := t.TempDir()
	files := map[string]string{
		"proj/mkosi.conf": "[Distribution]\nDistribution=arch\nArchitecture=x86-64\n[Output]\nOutputDirectory=mkosi.output\n",
		"proj/mkosi.sandbox/etc/pacman.conf": "[options]\nArchitecture = auto\nSigLevel = Required DatabaseOptional\n\n" +
			"[core]\nInclude = /etc/pacman.d/mirrorlist\n\n[extra]\nServer = file://" + mirror + "/$repo/os/$arch\n",
		"proj/mkosi.sandbox/etc/pacman.d/mirrorlist": "Server = file://" + mirror + "/$repo/os/$arch\n",
		"proj/mkosi.images/base/mkosi.conf":          "[Output]\nFormat=directory\n[Content]\nPackages=fx-lib\n",
		"proj/mkosi.images/tool/mkosi.conf":          "[Config]\nDependencies=base\n[Output]\nFormat=sysext\nOverlay=yes\n[Content]\nBaseTrees=%O/base\nPackages=fx-tool\n",
		"bad/mkosi.conf":                             "[Distribution]\nDistribution=arch\n[Output]\nFormat=sysext\nOverlay=yes\n[Content]\nExtraTrees=tree\n",
		"bad/tree/usr/bin/x":                         "x",
		"bad/mkosi.sandbox/etc/pacman.conf":          "[core]\nSigLevel = Never\nServer = file:///nowhere\n",
	}
	// The fixture's keyring, which the host's does not hold.
	for _, f := range []string{"fixture.gpg", "fixture-trusted", "fixture-revoked"} {
		b, err := os.ReadFile(filepath.Join(fx.KeyringDir, f))
		if err != nil {
			t.Fatal(err)
		}
		files["proj/mkosi.sandbox/usr/share/pacman/keyrings/"+f] = string(b)
	}
	ws := fixtureWorkspace(t, dir, files)
	sxbIn(t, ws, "build", "--progress=plain", "//proj:tool")
	got := strings.Join(manifestPackages(t, filepath.Join(ws, "proj/mkosi.output/tool.manifest.json")), " ")
	if got != "fx-impl-b fx-tool" {
		t.Errorf("tool installs %q", got)
	}
	out, _ := sxbIn(t, ws, "query", "--output=json", "//bad:all")
	if !strings.Contains(out, "/etc/pacman.conf:2: SigLevel Never: sxb checks the signature of every package") {
		t.Errorf("query of the SigLevel = Never project:\n%s", out)
	}
}

// TestArchLayeredBase layers an Arch base_image on another: the packages
// go into the copied tree below, its local database then lists both
// (pacman -Q agrees), and a sysext on it installs only its own packages.
func TestArchLayeredBase(t *testing.T) {
	fx := pacmantest.Get(t)
	mirror := fx.CopyMirror(t)
	key, _ := os.ReadFile(fx.Packager)
	base := func(name, below string, packages string) string {
		b := "base_image(\n    name = \"" + name + "\",\n"
		if below != "" {
			b += "    base = \"" + below + "\",\n"
		}
		return b + `    distribution = "arch",
    release = "rolling",
    architecture = "x86-64",
    mirror = "file://` + mirror + `",
    keyring = "packager.gpg",
    packages = [` + packages + `],
)
`
	}
	ws := fixtureWorkspace(t, t.TempDir(), map[string]string{"arch/packager.gpg": string(key), "arch/BUILD.star": base("core", "", `"filesystem"`) +
		base("layer", ":core", `"fx-lib", "fx-impl-a"`) + "\nsysext(name = \"tool\", base = \":layer\", packages = [\"fx-tool\"])\n"})
	sxbIn(t, ws, "build", "--progress=plain", "//arch:tool")
	layer := filepath.Join(ws, "sxb-out/arch/layer")
	q, err := exec.Command("pacman", "--root", layer, "--dbpath", filepath.Join(layer, "var/lib/pacman"), "-Q").CombinedOutput()
	if err != nil || string(q) != "filesystem 1.0-1\nfx-impl-a 1.0-1\nfx-lib 2.0-1\n" {
		t.Errorf("pacman -Q in the layered base: %v\n%s", err, q)
	}
	if got := strings.Join(manifestPackages(t, filepath.Join(ws, "sxb-out/arch/tool.manifest.json")), " "); got != "fx-tool" {
		t.Errorf("tool installs %q, want only fx-tool", got)
	}
}

// TestArchBuildPackages: build packages on an Arch base are installed in
// the build overlay only: the build script runs what fx-tool installs, the
// image holds the script's output and none of the build packages.
func TestArchBuildPackages(t *testing.T) {
	fx := pacmantest.Get(t)
	ws := archWorkspace(t, fx, fx.Mirror, []string{"filesystem"}, `
sysext(
    name = "tool",
    base = base,
    build_packages = ["fx-tool"],
    build_scripts = ["build.sh"],
    extension_release = {"ID": "_any"},
)
`)
	os.WriteFile(filepath.Join(ws, "arch/build.sh"), []byte(`#!/bin/sh
set -e
mkdir -p "$DESTDIR/usr/share/tool"
cp "$BUILDROOT/usr/bin/fx" "$DESTDIR/usr/share/tool/fx-seen"
test -e "$BUILDROOT/var/lib/pacman/local" && echo db > "$DESTDIR/usr/share/tool/db-seen"
`), 0o755)
	sxbIn(t, ws, "build", "--progress=plain", "//arch:tool")
	files := imageFiles(t, filepath.Join(ws, "sxb-out/arch/tool.raw"))
	if !strings.Contains(files, "\nusr/share/tool/fx-seen\n") || !strings.Contains(files, "\nusr/share/tool/db-seen\n") {
		t.Errorf("the build script's output is not in the image:\n%s", files)
	}
	if strings.Contains(files, "usr/bin/fx") || strings.Contains(files, "libfx") {
		t.Errorf("build packages in the image:\n%s", files)
	}
	// sxb lock pins the build packages beside the target; a locked build
	// installs exactly those.
	sxbIn(t, ws, "lock", "//arch:tool")
	lock, err := os.ReadFile(filepath.Join(ws, "arch", "sxb.lock.json"))
	if err != nil || !strings.Contains(string(lock), `"tool~build-packages"`) || !strings.Contains(string(lock), "fx-tool") {
		t.Fatalf("lock file (%v):\n%s", err, lock)
	}
	os.WriteFile(filepath.Join(ws, "arch", "sxb.lock.json"), []byte(strings.ReplaceAll(string(lock), `"fx-tool"`, `"fx-missing"`)), 0o644)
	os.WriteFile(filepath.Join(ws, "arch/build.sh"), []byte("#!/bin/sh\nexit 0\n"), 0o755) // rebuild
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), &environ{stdout: &stdout, stderr: &stderr, dir: ws}, []string{"build", "--progress=plain", "//arch:tool"}); code == 0 || !strings.Contains(stderr.String(), "lock file") {
		t.Errorf("a lock naming a build package the archive lacks: exit %d\n%s", code, stderr.String())
	}
}
