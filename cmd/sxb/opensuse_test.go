package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/builtins/rpm"
	"github.com/sxb-build/sxb/builtins/rpm/rpmtest"
	"github.com/sxb-build/sxb/internal/testenv"
)

// TestOpenSUSESeed builds the seed's first example — a Tumbleweed base
// with systemd and udev, and helm on top as a sysext — from a local signed
// mirror laid out like download.opensuse.org (zstd metadata, signed
// repomd.xml, signed packages), and validates the image like the Debian
// one.
func TestOpenSUSESeed(t *testing.T) {
	dissect := testenv.NeedTool(t, "systemd-dissect")
	dir := t.TempDir()
	fx, mirror := rpmtest.SeedMirror(t, filepath.Join(dir, "fixture"))
	ws := filepath.Join(dir, "ws")
	os.MkdirAll(filepath.Join(ws, "seed"), 0o755)
	os.WriteFile(filepath.Join(ws, "WORKSPACE.star"), nil, 0o644)
	build := `base = base_image(
    name = "base",
    distribution = "opensuse",
    release = "tumbleweed",
    mirror = "file://` + mirror + `",
    keyring = "` + fx.Keyring + `",
    packages = ["systemd", "udev"],
)

sysext(name = "helm", base = base, packages = ["helm"])
`
	os.WriteFile(filepath.Join(ws, "seed/BUILD.star"), []byte(build), 0o644)
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache"))
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), &environ{stdout: &stdout, stderr: &stderr, dir: ws}, []string{"build", "--progress=plain", "//seed:helm"})
	if code != 0 {
		t.Fatalf("sxb build: exit %d\n%s", code, stderr.String())
	}
	img := filepath.Join(ws, "sxb-out/seed/helm.raw")
	if strings.TrimSpace(stdout.String()) != img {
		t.Errorf("stdout = %q, want %q", stdout.String(), img)
	}
	var buf bytes.Buffer
	if code := run(context.Background(), &environ{stdout: &buf, stderr: &stderr, dir: ws}, []string{"inspect", img}); code != 0 {
		t.Fatalf("sxb inspect: exit %d\n%s", code, stderr.String())
	}
	text := buf.String()
	for _, want := range []string{"root-x86-64", "erofs", "extension-release.helm", "ARCHITECTURE=x86-64", "  ID=opensuse-tumbleweed\n", "  VERSION_ID=20241101\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("inspect lacks %q:\n%s", want, text)
		}
	}
	// A second build reuses the pinned resolution and the cached image.
	stdout.Reset()
	stderr.Reset()
	if code := run(context.Background(), &environ{stdout: &stdout, stderr: &stderr, dir: ws}, []string{"build", "--progress=plain", "//seed:helm"}); code != 0 {
		t.Fatalf("second sxb build: exit %d\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "helm.raw") || !strings.Contains(stderr.String(), "(up to date)") || strings.Contains(stderr.String(), " built ") {
		t.Errorf("second build did work:\n%s", stderr.String())
	}
	manifest, _ := os.ReadFile(filepath.Join(ws, "sxb-out/seed/helm.manifest.json"))
	if !strings.Contains(string(manifest), `"version": "3.16.2-1.1"`) {
		t.Errorf("helm from the update repository not chosen:\n%s", manifest)
	}
	out, err := exec.Command(dissect, img).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "extension for system") {
		t.Errorf("systemd-dissect: %v\n%s", err, out)
	}
	testenv.NeedRoot(t)
	files := imageFiles(t, img)
	if !strings.Contains(files, "\nusr/bin/helm\n") {
		t.Errorf("image lacks usr/bin/helm:\n%s", files)
	}
	for _, bad := range []string{"usr/lib/os-release", "usr/lib/sysimage", "\netc", "\nvar"} {
		if strings.Contains(files, bad) {
			t.Errorf("image has %q:\n%s", bad, files)
		}
	}
}

// imageFiles lists the image's root file system (mounted read-only by
// systemd-dissect in a private mount namespace).
func imageFiles(t *testing.T, img string) string {
	t.Helper()
	out, err := listImage(img, t.TempDir())
	if err != nil {
		t.Fatalf("listing %s: %v", img, err)
	}
	return "\n" + string(out)
}

// TestOpenSUSEExtensionOnExtension stacks three sysexts on a Tumbleweed
// base: what each lower extension installed counts as installed for the
// one above (its packages from the record kept in the cache, its files
// for file dependencies), so each image holds only its own packages.
func TestOpenSUSEExtensionOnExtension(t *testing.T) {
	dir := t.TempDir()
	fx, mirror := rpmtest.SeedMirror(t, filepath.Join(dir, "fixture"))
	ws := fixtureWorkspace(t, dir, map[string]string{"stack/BUILD.star": "base = " + tumbleweedBase(fx, mirror, "base", "", "filesystem", "glibc") + `

sysext(name = "kube", base = base, packages = ["kubernetes1.31-client", "git-core", "helm-data"])

sysext(name = "helm", base = ":kube", packages = ["helm"])

sysext(name = "completion", base = ":helm", packages = ["helm-bash-completion"])
`})
	sxbIn(t, ws, "build", "--progress=plain", "//stack:completion")
	out := filepath.Join(ws, "sxb-out/stack")
	for name, want := range map[string]string{
		"kube":       "git-core helm-data kubernetes1.31-client",
		"helm":       "helm",
		"completion": "helm-bash-completion",
	} {
		if got := strings.Join(manifestPackages(t, filepath.Join(out, name+".manifest.json")), " "); got != want {
			t.Errorf("%s installs %q, want %q", name, got, want)
		}
	}
	// Without the extension below, helm needs everything again.
	os.WriteFile(filepath.Join(ws, "stack/BUILD.star"), []byte(strings.Replace(
		string(must(os.ReadFile(filepath.Join(ws, "stack/BUILD.star")))), `base = ":kube", packages = ["helm"]`, `base = base, packages = ["helm"]`, 1)), 0o644)
	sxbIn(t, ws, "build", "--progress=plain", "//stack:helm")
	if got := strings.Join(manifestPackages(t, filepath.Join(out, "helm.manifest.json")), " "); got != "git-core helm helm-data kubernetes1.31-client" {
		t.Errorf("helm on the base installs %q", got)
	}
	testenv.NeedRoot(t)
	files := imageFiles(t, filepath.Join(out, "completion.raw"))
	if !strings.Contains(files, "\nusr/share/bash-completion/helm\n") || strings.Contains(files, "usr/bin/") {
		t.Errorf("completion image:\n%s", files)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestLayeredBase builds a base_image layered on another (mkosi's
// BaseTrees= on a Format=directory image): the tree below is copied in,
// the packages go on top resolved against what it has installed, and the
// record of installed packages covers both, so a sysext on the layered
// base installs only what neither has.
func TestLayeredBase(t *testing.T) {
	dir := t.TempDir()
	fx, mirror := rpmtest.SeedMirror(t, filepath.Join(dir, "fixture"))
	ws := fixtureWorkspace(t, dir, map[string]string{"stack/BUILD.star": tumbleweedBase(fx, mirror, "core", "", "filesystem", "glibc") + "\n" +
		tumbleweedBase(fx, mirror, "layer", ":core", "kubernetes1.31-client", "git-core", "helm-data") + `

sysext(name = "helm", base = ":layer", packages = ["helm"])
`})
	sxbIn(t, ws, "build", "--progress=plain", "//stack:helm")
	layer := filepath.Join(ws, "sxb-out/stack/layer")
	for _, f := range []string{"usr/lib64/libc.so.6", "etc/passwd", "usr/bin/kubectl1.31", "usr/share/helm/plugins.conf"} {
		if _, err := os.Lstat(filepath.Join(layer, f)); err != nil {
			t.Errorf("layered base: %v", err)
		}
	}
	inst, err := rpm.ReadInstalled(layer)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range inst {
		names = append(names, p.Name)
	}
	if got := strings.Join(names, " "); got != "filesystem git-core glibc helm-data kubernetes1.31-client" {
		t.Errorf("layered base records %q", got)
	}
	if got := strings.Join(manifestPackages(t, filepath.Join(ws, "sxb-out/stack/helm.manifest.json")), " "); got != "helm" {
		t.Errorf("helm on the layered base installs %q", got)
	}
}

// tumbleweedBase is a base_image call installing packages from the seed
// mirror, layered on base when it is not "".
func tumbleweedBase(fx *rpmtest.Env, mirror, name, base string, packages ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "base_image(\n    name = %q,\n", name)
	if base != "" {
		fmt.Fprintf(&b, "    base = %q,\n", base)
	}
	fmt.Fprintf(&b, "    distribution = \"opensuse\",\n    release = \"tumbleweed\",\n    mirror = \"file://%s\",\n    keyring = %q,\n", mirror, fx.Keyring)
	q := make([]string, len(packages))
	for i, p := range packages {
		q[i] = strconv.Quote(p)
	}
	fmt.Fprintf(&b, "    packages = [%s],\n)\n", strings.Join(q, ", "))
	return b.String()
}

// TestOpenSUSESandboxRepos builds an mkosi project whose sandbox tree
// brings zypper's repository files: mkosi.repo replaces the default
// repositories, $releasever is expanded, the gpgkey= file from the
// sandbox verifies the fixture mirror (no keyring is configured), and a
// repository sxb cannot read makes only the image using it unbuildable.
func TestOpenSUSESandboxRepos(t *testing.T) {
	dir := t.TempDir()
	fx, mirror := rpmtest.SeedMirror(t, filepath.Join(dir, "fixture"))
	key, err := os.ReadFile(fx.Keyring)
	if err != nil {
		t.Fatal(err)
	}
	conf := "[Distribution]\nDistribution=opensuse\nRelease=tumbleweed\nArchitecture=x86-64\n[Output]\nOutputDirectory=mkosi.output\n"
	ws := fixtureWorkspace(t, dir, map[string]string{
		"proj/mkosi.conf": conf,
		"proj/mkosi.sandbox/etc/zypp/repos.d/mkosi.repo": "[oss]\nbaseurl=file://" + mirror + "/$releasever/repo/oss/\n" +
			"gpgcheck=1\ngpgkey=file:///etc/pki/fixture.asc\n\n[update]\nname=update\nbaseurl=file://" + mirror + "/update/$releasever/\n" +
			"gpgkey=file:///etc/pki/fixture.asc\n\n[debug]\nbaseurl=https://example.invalid/debug/\nenabled=0\n",
		"proj/mkosi.sandbox/etc/pki/fixture.asc":    string(key),
		"proj/mkosi.images/base/mkosi.conf":         "[Output]\nFormat=directory\n[Content]\nPackages=filesystem\n        glibc\n",
		"proj/mkosi.images/helm/mkosi.conf":         "[Config]\nDependencies=base\n[Output]\nFormat=sysext\nOverlay=yes\n[Content]\nBaseTrees=%O/base\nPackages=helm\n",
		"bad/mkosi.conf":                            conf + "Format=sysext\nOverlay=yes\n[Content]\nExtraTrees=tree\n",
		"bad/tree/usr/bin/x":                        "x",
		"bad/mkosi.sandbox/etc/zypp/repos.d/x.repo": "[oss]\nmirrorlist=https://example.invalid/list\n",
	})
	sxbIn(t, ws, "build", "--progress=plain", "//proj:helm")
	m, err := os.ReadFile(filepath.Join(ws, "proj/mkosi.output/helm.manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"name": "helm"`, `"version": "3.16.2-1.1"`, `"name": "git-core"`} {
		if !strings.Contains(string(m), want) {
			t.Errorf("manifest lacks %s (the update repository read through $releasever):\n%s", want, m)
		}
	}
	out, _ := sxbIn(t, ws, "query", "--output=json", "//bad:all")
	if !strings.Contains(out, "x.repo:2: repository [oss]: mirrorlist= without baseurl= is not supported by sxb") {
		t.Errorf("query of the mirrorlist project:\n%s", out)
	}
}
