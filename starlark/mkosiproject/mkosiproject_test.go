package mkosiproject

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/rules"
)

// project writes files ("path", "content" pairs) under a new directory.
func project(t *testing.T, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	for i := 0; i < len(files); i += 2 {
		p := filepath.Join(dir, files[i])
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(files[i+1]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const distro = "[Distribution]\nDistribution=debian\nRelease=bookworm\nArchitecture=x86-64\n"

func targets(t *testing.T, dir string) map[string]*rules.Target {
	t.Helper()
	ts, err := Targets(Request{Workspace: dir, Package: "p", Dir: dir, Cwd: dir})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*rules.Target{}
	for _, tg := range ts {
		out[tg.Label.Name] = tg
	}
	return out
}

// why returns the reasons target name of the project in dir cannot be
// built, one diagnostic a line ("" when it can be built).
func why(t *testing.T, dir, name string) string {
	t.Helper()
	tg := targets(t, dir)[name]
	if tg == nil {
		t.Fatalf("no target %s", name)
	}
	var l []string
	for _, d := range tg.Unbuildable {
		l = append(l, d.Error())
	}
	return strings.Join(l, "\n")
}

func TestExtensionSettings(t *testing.T) {
	dir := project(t,
		"mkosi.conf", distro+"[Output]\nFormat=none\nOutputDirectory=out\nImageVersion=1.2\n",
		"mkosi.images/base/mkosi.conf", "[Output]\nFormat=directory\n[Content]\nPackages=systemd\n",
		"mkosi.images/tool/mkosi.conf", "[Config]\nDependencies=base\n[Output]\nFormat=sysext\nOverlay=yes\nImageId=tools\nSplitArtifacts=roothash\n"+
			"[Content]\nBaseTrees=%O/base_1.2\nPackages=jq\nWithDocs=no\nWithRecommends=yes\nRemoveFiles=/usr/share/man\n"+
			"[Validation]\nVerity=yes\n[Build]\nEnvironment=SYSEXT_SCOPE=\"system  portable\" OTHER=1\n",
		"mkosi.images/tool/mkosi.extra/usr/share/tool/x", "x",
		"mkosi.key", "key", "mkosi.crt", "crt",
	)
	ts := targets(t, dir)
	if len(ts) != 2 {
		t.Fatalf("targets %v", ts)
	}
	base, tool := ts["base"], ts["tool"]
	if base.Kind != rules.KindBaseImage || base.Base.Output != "directory" || base.Publish.Dir != filepath.Join(dir, "out") || base.Publish.File != "base_1.2" {
		t.Errorf("base = %+v %+v", base.Base, base.Publish)
	}
	x := tool.Ext
	if tool.Kind != rules.KindSysext || x.Base == nil || x.Base.String() != "//p:base" || len(tool.Deps) != 1 {
		t.Fatalf("tool = %+v", tool)
	}
	// mkosi's Output "tool_1.2" is sxb's output "tool" with version 1.2.
	if x.Output != "tool" || x.Version != "1.2" || x.ImageID != "tools" || x.Scope != "system portable" {
		t.Errorf("output %q version %q image id %q scope %q", x.Output, x.Version, x.ImageID, x.Scope)
	}
	if x.WithDocs || !x.WithRecommends || strings.Join(x.RemoveFiles, ",") != "/usr/share/man" || strings.Join(x.Packages, ",") != "jq" {
		t.Errorf("content settings: %+v", x)
	}
	if len(x.ExtraTrees) != 1 || x.ExtraTrees[0].Source != filepath.Join(dir, "mkosi.images/tool/mkosi.extra") || x.ExtraTrees[0].Target != "/" {
		t.Errorf("extra trees %+v", x.ExtraTrees)
	}
	// Verity=yes with mkosi.key/mkosi.crt is a signed image.
	if x.Verity != "signed" || x.Key != filepath.Join(dir, "mkosi.key") || x.Certificate != filepath.Join(dir, "mkosi.crt") {
		t.Errorf("verity %q key %q cert %q", x.Verity, x.Key, x.Certificate)
	}
	p := tool.Publish
	if p.File != "tool_1.2.raw" || p.Symlink != "tool_1.2" || p.Roothash != "tool_1.2.roothash" || p.Manifest != "tool_1.2.manifest.json" {
		t.Errorf("publish %+v", p)
	}
	if x.ReleaseFromTrees {
		t.Error("Format=sysext: sxb completes the extension-release as for Starlark sysexts")
	}
	if !strings.HasSuffix(tool.Pos.File, "mkosi.images/tool/mkosi.conf") || tool.Pos.Line != 4 {
		t.Errorf("position %s", tool.Pos)
	}
}

func TestDiskConfextAndTar(t *testing.T) {
	dir := project(t,
		"mkosi.conf", distro+"[Output]\nOutputDirectory=out\n",
		"mkosi.images/base/mkosi.conf", "[Output]\nFormat=tar\n[Content]\nPackages=systemd\n",
		"mkosi.images/cfg/mkosi.conf", "[Output]\nFormat=disk\nOverlay=yes\n[Content]\nBaseTrees=%O/base.tar.zst\n",
		"mkosi.images/cfg/mkosi.extra/etc/extension-release.d/extension-release.cfg", "ID=_any\n",
		"mkosi.images/cfg/mkosi.repart/20-verity.conf", "[Partition]\nType=root-verity\n",
		"mkosi.images/cfg/mkosi.repart/10-root.conf", "[Partition]\nType=root\n",
	)
	ts := targets(t, dir)
	base, cfg := ts["base"], ts["cfg"]
	if base.Base.Output != "tar" || base.Publish.File != "base.tar.zst" || base.Publish.Symlink != "base" {
		t.Errorf("tar base publish %+v", base.Publish)
	}
	x := cfg.Ext
	if cfg.Kind != rules.KindConfext || !x.ReleaseFromTrees || x.Base == nil || x.Base.Name != "base" {
		t.Fatalf("cfg = %+v %+v", cfg, x)
	}
	if len(x.Partitions) != 2 || filepath.Base(x.Partitions[0].File) != "10-root.conf" || filepath.Base(x.Partitions[1].File) != "20-verity.conf" {
		t.Errorf("partitions %+v", x.Partitions)
	}
	if cfg.Publish.File != "cfg.raw" || cfg.Publish.Symlink != "cfg" {
		t.Errorf("publish %+v", cfg.Publish)
	}
	// The main image installs nothing: mkosi builds an almost empty disk
	// image of it, sxb lists it as a target it cannot build, saying why.
	main := ts["image"]
	if len(ts) != 3 || main == nil || main.Kind != rules.KindMkosiImage || len(main.Unbuildable) != 1 ||
		!strings.Contains(main.Unbuildable[0].Error(), "mkosi.conf: error: image main: the main image installs nothing") {
		t.Errorf("targets %v, main %+v", ts, main)
	}
	if len(base.Unbuildable)+len(cfg.Unbuildable) != 0 {
		t.Errorf("base, cfg unbuildable: %v %v", base.Unbuildable, cfg.Unbuildable)
	}
}

// TestFormatNone: mkosi skips a Format=none image unless it has build
// scripts; then it is a target that cannot be built, and so is what
// depends on it.
func TestFormatNone(t *testing.T) {
	dir := project(t,
		"mkosi.conf", distro+"[Output]\nFormat=none\n",
		"mkosi.images/settings/mkosi.conf", "[Output]\nFormat=none\n[Content]\nPackages=jq\n",
		"mkosi.images/gen/mkosi.conf", "[Output]\nFormat=none\n",
		"mkosi.images/gen/mkosi.build", "#!/bin/sh\n",
		"mkosi.images/base/mkosi.conf", "[Config]\nDependencies=gen\n[Output]\nFormat=directory\n[Content]\nPackages=systemd\n",
	)
	os.Chmod(filepath.Join(dir, "mkosi.images/gen/mkosi.build"), 0o755)
	ts := targets(t, dir)
	gen := ts["gen"]
	if len(ts) != 2 || gen == nil || ts["base"] == nil {
		t.Fatalf("targets %v", ts)
	}
	if len(gen.Unbuildable) == 0 || !strings.Contains(gen.Unbuildable[0].Error(), "Format=none with BuildScripts=") {
		t.Errorf("gen unbuildable: %v", gen.Unbuildable)
	}
	if d := ts["base"].Deps; len(d) != 1 || d[0].Name != "gen" {
		t.Errorf("base deps %v", d)
	}
}

// TestGaps checks that what sxb cannot build is an error naming the
// setting, the file and the line.
func TestGaps(t *testing.T) {
	for _, tc := range []struct{ name, conf, want string }{
		{"split", "[Output]\nFormat=sysext\nSplitArtifacts=os-release\n", "mkosi.images/a/mkosi.conf:3:1: error: image a: SplitArtifacts=os-release is not supported"},
		{"compress", "[Output]\nFormat=tar\nCompressOutput=xz\n", "mkosi.images/a/mkosi.conf:3:1: error: image a: CompressOutput=xz is not supported"},
		{"twobases", "[Output]\nFormat=sysext\nOverlay=yes\n[Content]\nBaseTrees=/x /y\n", "mkosi.images/a/mkosi.conf:5:1: error: image a: BaseTrees= with 2 trees"},
		{"nobase", "[Output]\nFormat=sysext\n[Content]\nPackages=jq\n", "mkosi.images/a/mkosi.conf:4:1: error: image a: Packages= on an extension needs BaseTrees="},
		{"skeleton", "[Output]\nFormat=sysext\n[Content]\nSkeletonTrees=/etc\n", "mkosi.images/a/mkosi.conf:4:1: error: image a: SkeletonTrees= on an extension"},
		{"baseoverlay", "[Output]\nFormat=directory\nOverlay=yes\n", "mkosi.images/a/mkosi.conf:3:1: error: image a: Overlay=yes on a Format=directory image"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := project(t, "mkosi.conf", distro, "mkosi.images/a/mkosi.conf", tc.conf)
			if got := why(t, dir, "a"); !strings.Contains(got, tc.want) {
				t.Errorf("unbuildable = %v\nwant %s", got, tc.want)
			}
		})
	}
}

func TestSplitPartitions(t *testing.T) {
	dir := project(t, "mkosi.conf", distro+"[Output]\nFormat=sysext\nSplitArtifacts=partitions,roothash\n[Content]\nExtraTrees=tree\n", "tree/usr/lib/x", "x")
	ts := targets(t, dir)
	if p := ts["image"].Publish; !p.SplitPartitions || p.Roothash != "" {
		t.Errorf("publish %+v (no verity: no roothash)", p)
	}
	dir = project(t,
		"mkosi.conf", distro+"[Output]\nFormat=disk\nOverlay=yes\nSplitArtifacts=partitions\n[Content]\nExtraTrees=tree\n", "tree/usr/lib/x", "x",
		"mkosi.repart/10-root.conf", "[Partition]\nType=root\nSplitName=-\n")
	if got := why(t, dir, "image"); !strings.Contains(got, "mkosi.conf:8:1: error: image main: SplitArtifacts=partitions with SplitName=- in") {
		t.Errorf("unbuildable = %v", got)
	}
}

// TestSourceDateEpoch: SourceDateEpoch= in the configuration is the epoch
// of every image inheriting it; without it, the build's epoch applies.
func TestSourceDateEpoch(t *testing.T) {
	dir := project(t, "mkosi.conf", distro+"[Content]\nSourceDateEpoch=5\n",
		"mkosi.images/a/mkosi.conf", "[Output]\nFormat=sysext\n[Content]\nExtraTrees=tree\n", "mkosi.images/a/tree/usr/lib/x", "x",
		"mkosi.images/b/mkosi.conf", "[Output]\nFormat=directory\n[Content]\nPackages=p\n")
	ts := targets(t, dir)
	if e := ts["a"].Ext.SourceDateEpoch; e == nil || *e != 5 {
		t.Errorf("a: epoch %v, want 5", e)
	}
	if e := ts["b"].Base.SourceDateEpoch; e == nil || *e != 5 {
		t.Errorf("b: epoch %v, want 5", e)
	}
	dir = project(t, "mkosi.conf", distro+"[Output]\nFormat=sysext\n[Content]\nExtraTrees=tree\n", "tree/usr/lib/x", "x")
	if e := targets(t, dir)["image"].Ext.SourceDateEpoch; e != nil {
		t.Errorf("no SourceDateEpoch=: epoch %d, want the build's", *e)
	}
}

// TestMainImage names a main image that builds after its Output.
func TestMainImage(t *testing.T) {
	dir := project(t, "mkosi.conf", distro+"[Output]\nFormat=sysext\nOutput=tools\n[Content]\nExtraTrees=tree\n", "tree/usr/lib/x", "x")
	ts := targets(t, dir)
	if tg := ts["tools"]; tg == nil || tg.Ext.Output != "tools" || tg.Publish.Dir != dir || tg.Publish.File != "tools.raw" {
		t.Fatalf("targets %v", ts)
	}
}

// TestArch maps Distribution=arch: the release defaults to rolling, as in
// mkosi, and Mirror= and Repositories= pass through to the base image.
func TestArch(t *testing.T) {
	dir := project(t,
		"mkosi.conf", "[Distribution]\nDistribution=arch\nArchitecture=arm64\nMirror=http://mirror.example/archlinuxarm\nRepositories=core-testing\n[Output]\nFormat=none\nOutputDirectory=out\n",
		"mkosi.images/base/mkosi.conf", "[Output]\nFormat=directory\n[Content]\nPackages=systemd\n",
		"mkosi.images/tool/mkosi.conf", "[Output]\nFormat=sysext\nOverlay=yes\n[Content]\nBaseTrees=%O/base\nPackages=strace\n",
	)
	ts := targets(t, dir)
	b := ts["base"].Base
	if b.Distribution != "arch" || b.Release != "rolling" || b.Architecture.Systemd() != "arm64" || b.Mirror != "http://mirror.example/archlinuxarm" ||
		strings.Join(b.Repositories, ",") != "core-testing" {
		t.Errorf("base = %+v", b)
	}
	if err := b.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	dir = project(t, "mkosi.conf", "[Distribution]\nDistribution=arch\nRelease=2024\n[Output]\nFormat=none\n",
		"mkosi.images/base/mkosi.conf", "[Output]\nFormat=directory\n[Content]\nPackages=systemd\n")
	if got := why(t, dir, "base"); !strings.Contains(got, `Arch Linux has one release, "rolling"`) {
		t.Errorf("Release=2024: %v", got)
	}
}

// TestUnbuildableImages checks that images sxb cannot build are targets
// of their own, with their dependencies and reasons, while the others
// convert as usual.
func TestUnbuildableImages(t *testing.T) {
	dir := project(t,
		"mkosi.conf", distro+"[Output]\nFormat=none\nOutputDirectory=out\n",
		"mkosi.images/base/mkosi.conf", "[Output]\nFormat=directory\n[Content]\nPackages=systemd\n",
		"mkosi.images/base/mkosi.configure", "#!/bin/sh\n",
		"mkosi.images/tool/mkosi.conf", "[Config]\nDependencies=base\n[Output]\nFormat=sysext\nOverlay=yes\n[Content]\nBaseTrees=%O/base\nPackages=jq\n",
		"mkosi.images/vm/mkosi.conf", "[Output]\nFormat=disk\n[Content]\nBootable=yes\nPackages=linux-image-amd64\n",
		"mkosi.images/plain/mkosi.conf", "[Output]\nFormat=sysext\n[Content]\nExtraTrees=tree\n",
		"mkosi.images/plain/tree/usr/lib/extension-release.d/extension-release.plain", "ID=_any\n",
	)
	ts := targets(t, dir)
	if len(ts) != 5 {
		t.Fatalf("targets %v", ts)
	}
	if ts["plain"].Unbuildable != nil || ts["tool"].Unbuildable != nil {
		t.Errorf("plain %v, tool %v: want buildable", ts["plain"].Unbuildable, ts["tool"].Unbuildable)
	}
	base := ts["base"]
	if base.Kind != rules.KindBaseImage || len(base.Unbuildable) != 1 || !strings.Contains(base.Unbuildable[0].Error(), "mkosi.images/base/mkosi.configure: error: image base: ConfigureScripts=mkosi.images/base/mkosi.configure: configure scripts are not supported by sxb yet") ||
		!strings.Contains(base.Unbuildable[0].Msg, "configure scripts are not supported") {
		t.Errorf("base: kind %s, %v", base.Kind, base.Unbuildable)
	}
	// A bootable image with a kernel gets mkosi's default initrd, an
	// unbuildable target it depends on.
	vm, initrd := ts["vm"], ts["default-initrd"]
	if vm.Kind != rules.KindMkosiImage || len(vm.Unbuildable) == 0 || len(vm.Deps) != 1 || vm.Deps[0].Name != "default-initrd" {
		t.Errorf("vm: kind %s deps %v, %v", vm.Kind, vm.Deps, vm.Unbuildable)
	}
	if initrd.Kind != rules.KindMkosiImage || len(initrd.Unbuildable) == 0 || !strings.Contains(initrd.Unbuildable[0].Msg, "the default initrd") {
		t.Errorf("default-initrd: kind %s, %v", initrd.Kind, initrd.Unbuildable)
	}
	if d := ts["tool"].Deps; len(d) != 1 || d[0].Name != "base" {
		t.Errorf("tool deps %v", d)
	}
}

// TestDefaultDiskLayout checks Format=disk with Overlay=yes and no
// mkosi.repart/: mkosi's default root partition, of the distribution's
// file system unless SYSTEMD_REPART_OVERRIDE_FSTYPE_ROOT= in Environment=
// says otherwise, which also applies to Format=sysext and repart files.
func TestDefaultDiskLayout(t *testing.T) {
	const tree = "[Content]\nExtraTrees=tree\n"
	files := []string{"tree/usr/lib/extension-release.d/extension-release.image", "ID=_any\n"}
	dir := project(t, append([]string{"mkosi.conf", distro + "[Output]\nFormat=disk\nOverlay=yes\n" + tree}, files...)...)
	if got := why(t, dir, "image"); !strings.Contains(got, "mkosi's default root partition of ext4 (Distribution=debian), which sxb does not write; set Environment=SYSTEMD_REPART_OVERRIDE_FSTYPE_ROOT=") {
		t.Errorf("ext4 default: %s", got)
	}
	dir = project(t, append([]string{"mkosi.conf", distro + "[Output]\nFormat=disk\nOverlay=yes\n" + tree +
		"[Build]\nEnvironment=SYSTEMD_REPART_OVERRIDE_FSTYPE_ROOT=squashfs\n"}, files...)...)
	x := targets(t, dir)["image"].Ext
	if x == nil || len(x.Partitions) != 1 || !x.ReleaseFromTrees {
		t.Fatalf("disk: %+v", x)
	}
	if k := x.Partitions[0].Keys; fmt.Sprint(k) != "[{Type root} {Format squashfs} {CopyFiles /} {Minimize guess}]" {
		t.Errorf("default partition %v", k)
	}
	dir = project(t, append([]string{"mkosi.conf", distro + "[Output]\nFormat=sysext\n" + tree +
		"[Build]\nEnvironment=SYSTEMD_REPART_OVERRIDE_FSTYPE_ROOT=squashfs\n"}, files...)...)
	if x := targets(t, dir)["image"].Ext; x == nil || x.Format != "squashfs" {
		t.Errorf("sysext: %+v", x)
	}
	dir = project(t, append([]string{"mkosi.conf", distro + "[Output]\nFormat=sysext\n" + tree +
		"[Build]\nEnvironment=SYSTEMD_REPART_OVERRIDE_FSTYPE_ROOT=btrfs\n"}, files...)...)
	if got := why(t, dir, "image"); !strings.Contains(got, "mkosi.conf:10:1: error: image main: the root file system btrfs (from SYSTEMD_REPART_OVERRIDE_FSTYPE_ROOT) is not one sxb writes") {
		t.Errorf("btrfs: %s", got)
	}
	// repart.d files are read under the same variables.
	dir = project(t, append([]string{"mkosi.conf", distro + "[Output]\nFormat=disk\nOverlay=yes\n" + tree +
		"[Build]\nEnvironment=SYSTEMD_REPART_OVERRIDE_FSTYPE_ROOT=squashfs\n",
		"mkosi.repart/10-root.conf", "[Partition]\nType=root\nFormat=ext4\nCopyFiles=/\n"}, files...)...)
	tg := targets(t, dir)["image"]
	if tg.Unbuildable != nil || len(tg.Ext.Partitions) != 1 || fmt.Sprint(tg.Ext.Partitions[0].Env) != "[{SYSTEMD_REPART_OVERRIDE_FSTYPE_ROOT squashfs}]" {
		t.Errorf("repart files: %v %+v", tg.Unbuildable, tg.Ext)
	}
}

// TestManifestFormat checks that ManifestFormat=json publishes mkosi's
// <Output>.manifest and that changelog reports make the image unbuildable.
func TestManifestFormat(t *testing.T) {
	dir := project(t, "mkosi.conf", distro+"[Output]\nFormat=sysext\nOutput=tools\nManifestFormat=json\nImageVersion=3\n[Content]\nExtraTrees=tree\n", "tree/usr/lib/x", "x")
	m := targets(t, dir)["tools"].Publish.MkosiManifest
	if m == nil || *m != (rules.MkosiManifest{File: "tools.manifest", PackageType: "deb", Config: rules.MkosiManifestConfig{Name: "image",
		Distribution: "debian", Architecture: "x86-64", OutputFormat: "sysext", Version: "3", Release: "bookworm"}}) {
		t.Errorf("manifest %+v", m)
	}
	dir = project(t, "mkosi.conf", distro+"[Output]\nFormat=sysext\nOutput=tools\nManifestFormat=json,changelog\n[Content]\nExtraTrees=tree\n", "tree/usr/lib/x", "x")
	if got := why(t, dir, "tools"); !strings.Contains(got, "ManifestFormat=json,changelog: the changelog report") {
		t.Errorf("changelog: %s", got)
	}
}

// TestSandboxSources checks that the sandbox's apt sources reach the base
// image, whose extensions resolve against the same repositories.
func TestSandboxSources(t *testing.T) {
	dir := project(t, "mkosi.conf", distro+"[Output]\nFormat=directory\n[Content]\nPackages=systemd\n",
		"mkosi.sandbox/etc/apt/sources.list.d/mkosi.sources", "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\nComponents: main\n")
	b := targets(t, dir)["image"].Base
	if b == nil || !b.NoDefaultSources || len(b.AptSources) != 1 || b.AptSources[0].URI != "http://mirror.example/debian" {
		t.Errorf("base %+v", b)
	}
	// apt preferences, zypper repositories and a pacman keyring reach the
	// base the same way.
	dir = project(t, "mkosi.conf", distro+"[Output]\nFormat=directory\n[Content]\nPackages=systemd\n",
		"mkosi.sandbox/etc/apt/preferences", "Package: *\nPin: release a=bookworm-backports\nPin-Priority: 100\n")
	if b := targets(t, dir)["image"].Base; b == nil || len(b.AptPins) != 1 || b.AptPins[0].Priority != 100 {
		t.Errorf("pins: base %+v", b)
	}
	dir = project(t, "mkosi.conf", "[Distribution]\nDistribution=opensuse\nRelease=tumbleweed\nArchitecture=x86-64\n[Output]\nFormat=directory\n[Content]\nPackages=systemd\n",
		"mkosi.sandbox/etc/zypp/repos.d/mkosi.repo", "[oss]\nbaseurl=https://mirror.example/$releasever/\ngpgkey=file:///k.asc\n",
		"mkosi.sandbox/k.asc", "key")
	if b := targets(t, dir)["image"].Base; b == nil || !b.NoDefaultSources || strings.Join(b.Repositories, " ") != "https://mirror.example/tumbleweed/" ||
		len(b.RepoKeys) != 1 || !strings.HasSuffix(b.RepoKeys[0], "mkosi.sandbox/k.asc") {
		t.Errorf("zypper: base %+v", b)
	}
}

// TestExtensionBase checks BaseTrees= naming another extension of the
// project: the extension is built on it.
func TestExtensionBase(t *testing.T) {
	dir := project(t,
		"mkosi.conf", distro+"[Output]\nFormat=none\nOutputDirectory=out\n",
		"mkosi.images/base/mkosi.conf", "[Output]\nFormat=directory\n[Content]\nPackages=systemd\n",
		"mkosi.images/libs/mkosi.conf", "[Config]\nDependencies=base\n[Output]\nFormat=sysext\nOverlay=yes\n[Content]\nBaseTrees=%O/base\nPackages=libfoo\n",
		"mkosi.images/tool/mkosi.conf", "[Config]\nDependencies=libs\n[Output]\nFormat=sysext\nOverlay=yes\n[Content]\nBaseTrees=%O/libs.raw\nPackages=tool\n",
	)
	tool := targets(t, dir)["tool"]
	if tool.Unbuildable != nil || tool.Ext.Base == nil || tool.Ext.Base.Name != "libs" {
		t.Errorf("tool: %v %+v", tool.Unbuildable, tool.Ext)
	}
}

// TestFirstBoot: a base tree's first-boot settings become its firstboot
// attribute, in systemd-firstboot's order; an extension ignores them, as
// mkosi does.
func TestFirstBoot(t *testing.T) {
	dir := project(t, "mkosi.conf", distro+"[Output]\nFormat=none\n",
		"mkosi.images/b/mkosi.conf", "[Output]\nFormat=directory\n[Content]\nPackages=p\nHostname=box\nLocale=C.UTF-8\n",
		"mkosi.images/a/mkosi.conf", "[Output]\nFormat=sysext\n[Content]\nExtraTrees=tree\nHostname=x\nTimezone=UTC\n", "mkosi.images/a/tree/usr/lib/x", "x")
	ts := targets(t, dir)
	if got := fmt.Sprint(ts["b"].Base.FirstBoot); got != "[{locale C.UTF-8} {hostname box}]" {
		t.Errorf("base firstboot %s", got)
	}
	if a := ts["a"]; a == nil || a.Ext == nil || len(a.Unbuildable) > 0 {
		t.Errorf("the sysext with first-boot settings: %+v", a)
	}
}

// TestVolatilePackages: without build scripts, VolatilePackages= are
// installed with Packages= (the image mkosi makes); with them, the image is
// unbuildable, naming the setting.
func TestVolatilePackages(t *testing.T) {
	dir := project(t, "mkosi.conf", distro+"[Output]\nFormat=directory\n[Content]\nPackages=a\n b\nVolatilePackages=c\n b\n")
	if got := fmt.Sprint(targets(t, dir)["image"].Base.Packages); got != "[a b c]" {
		t.Errorf("packages %s, want [a b c]", got)
	}
	dir = project(t, "mkosi.conf", distro+"[Output]\nFormat=directory\n[Content]\nPackages=a\nVolatilePackages=c\n", "mkosi.build", "#!/bin/sh\n")
	os.Chmod(filepath.Join(dir, "mkosi.build"), 0o755)
	if got := why(t, dir, "image"); !strings.Contains(got, "mkosi.conf:9:1: error: image main: VolatilePackages=c: packages installed after the build scripts") {
		t.Errorf("unbuildable = %v", got)
	}
}
