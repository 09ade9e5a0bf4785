package build

import (
	"archive/tar"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/sxb-build/sxb/builtins/deb"
	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/arch"
	"github.com/sxb-build/sxb/internal/label"
	"github.com/sxb-build/sxb/internal/testenv"
	"github.com/sxb-build/sxb/rules"
)

// TestPublishLocation checks targets with their own publish location (an
// mkosi project's OutputDirectory and artifact names) and an
// extension-release taken from the trees as written (mkosi's Format=disk).
func TestPublishLocation(t *testing.T) {
	writer := func(ctx context.Context, out string, req ImageRequest) (*ImageResult, error) {
		r, err := listingWriter(ctx, out, req)
		if r != nil && req.Verity == "hash" {
			r.RootHash = "ab12"
			fi, _ := os.Stat(out)
			half := fi.Size() / 2
			r.Partitions = []map[string]any{{"type": "root-x86-64", "offset": 0, "size": half},
				{"type": "root-x86-64-verity", "offset": half, "size": fi.Size() - half}}
		}
		return r, err
	}
	ws := t.TempDir()
	out := filepath.Join(ws, "proj/mkosi.output")
	rel := filepath.Join(ws, "proj/extra/usr/lib/extension-release.d")
	os.MkdirAll(rel, 0o755)
	os.WriteFile(filepath.Join(rel, "extension-release.tool"), []byte("ID=_any\n"), 0o644)
	os.MkdirAll(filepath.Join(ws, "proj/bare/usr/bin"), 0o755)
	os.WriteFile(filepath.Join(ws, "proj/bare/usr/bin/x"), []byte("x"), 0o755)

	bl := label.Label{Pkg: "proj", Name: "base"}
	tl := label.Label{Pkg: "proj", Name: "tb"}
	xl := label.Label{Pkg: "proj", Name: "tool"}
	nl := label.Label{Pkg: "proj", Name: "bare"}
	g := &rules.Graph{Workspace: ws, Targets: map[string]*rules.Target{}}
	bareMode := uint32(0o600)
	g.Targets[bl.String()] = &rules.Target{Label: bl, Kind: rules.KindBaseImage, Base: &rules.BaseImage{
		Name: "base", Distribution: "fake", Release: "1", Architecture: arch.X86_64, Packages: []string{"base-files"}, Output: "directory"},
		Publish: &rules.Publish{Dir: out, File: "base", Checksum: "base.SHA256SUMS", MkosiManifest: &rules.MkosiManifest{File: "base.manifest", PackageType: "deb",
			Config: rules.MkosiManifestConfig{Name: "os", Distribution: "debian", Architecture: "x86-64", OutputFormat: "directory"}}}}
	g.Targets[tl.String()] = &rules.Target{Label: tl, Kind: rules.KindBaseImage, Base: &rules.BaseImage{
		Name: "tb", Distribution: "fake", Release: "1", Architecture: arch.X86_64, Packages: []string{"base-files"}, Output: "tar"},
		Publish: &rules.Publish{Dir: out, File: "tb.tar.zst", Symlink: "tb", Checksum: "tb.SHA256SUMS"}}
	g.Targets[xl.String()] = &rules.Target{Label: xl, Kind: rules.KindSysext, Deps: []label.Label{bl}, Ext: &rules.Extension{
		Name: "tool", Kind: "sysext", Base: &bl, Packages: []string{"jq"}, Format: "erofs", Verity: "hash", Output: "tool", Version: "2",
		ExtraTrees: []rules.Tree{{Source: filepath.Join(ws, "proj/extra"), Target: "/"}}, ReleaseFromTrees: true},
		Publish: &rules.Publish{Dir: out, File: "tool_2.raw", Symlink: "tool_2", Manifest: "tool_2.manifest.json", Roothash: "tool_2.roothash", SplitPartitions: true, Checksum: "tool.SHA256SUMS",
			MkosiManifest: &rules.MkosiManifest{File: "tool_2.manifest", PackageType: "deb", Config: rules.MkosiManifestConfig{Name: "image",
				Distribution: "debian", Architecture: "x86-64", OutputFormat: "sysext", Version: "2", Release: "trixie"}}}}
	g.Targets[nl.String()] = &rules.Target{Label: nl, Kind: rules.KindSysext, Ext: &rules.Extension{
		Name: "bare", Kind: "sysext", Format: "erofs", Verity: "off", Output: "bare", Architecture: arch.X86_64,
		ExtraTrees: []rules.Tree{{Source: filepath.Join(ws, "proj/bare"), Target: "/"}}, ReleaseFromTrees: true},
		Publish: &rules.Publish{Dir: out, File: "bare.raw", Mode: &bareMode}}
	res, err := Build(context.Background(), g, g.Order(), Options{CacheDir: t.TempDir(), Installers: map[string]Installer{"fake": &fakeInstaller{}}, ImageWriter: writer})
	if err != nil {
		t.Fatal(err)
	}
	outs := map[string]string{}
	for _, r := range res {
		outs[r.Label] = r.Outputs[0]
	}
	if outs["//proj:tool"] != filepath.Join(out, "tool_2.raw") || outs["//proj:base"] != filepath.Join(out, "base") || outs["//proj:tb"] != filepath.Join(out, "tb.tar.zst") {
		t.Errorf("outputs %v", outs)
	}

	// The extension-release is the tree's, as written: nothing added.
	img, err := os.ReadFile(filepath.Join(out, "tool_2.raw"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(img), "usr/lib/extension-release.d/extension-release.tool file 644\n  \"ID=_any\\n\"\n") || !strings.Contains(string(img), "usr/share/jq/jq") {
		t.Errorf("image:\n%s", img)
	}
	// systemd-repart --split=yes names: <image stem>.<partition type>.raw.
	root, _ := os.ReadFile(filepath.Join(out, "tool_2.root-x86-64.raw"))
	hash, _ := os.ReadFile(filepath.Join(out, "tool_2.root-x86-64-verity.raw"))
	if len(root) == 0 || !bytes.Equal(append(root, hash...), img) {
		t.Errorf("split partitions: %d + %d bytes, image %d", len(root), len(hash), len(img))
	}
	if l, err := os.Readlink(filepath.Join(out, "tool_2")); err != nil || l != "tool_2.raw" {
		t.Errorf("symlink tool_2 = %q, %v", l, err)
	}
	if b, err := os.ReadFile(filepath.Join(out, "tool_2.roothash")); err != nil || string(b) != "ab12" {
		t.Errorf("roothash = %q, %v (want the bare digest, as mkosi writes it)", b, err)
	}
	// Checksum=yes: mkosi's <Output>.SHA256SUMS lists the image and what
	// was split off it, nothing else (manifests come later in mkosi).
	var toolSums []string
	for _, n := range []string{"tool_2.raw", "tool_2.root-x86-64-verity.raw", "tool_2.root-x86-64.raw", "tool_2.roothash"} {
		b, _ := os.ReadFile(filepath.Join(out, n))
		toolSums = append(toolSums, fmt.Sprintf("%x *%s\n", sha256.Sum256(b), n))
	}
	if b, err := os.ReadFile(filepath.Join(out, "tool.SHA256SUMS")); err != nil || string(b) != strings.Join(toolSums, "") {
		t.Errorf("tool.SHA256SUMS: %v\n%s\nwant\n%s", err, b, strings.Join(toolSums, ""))
	}
	// A base: the tar is summed; a directory is not (mkosi skips it with
	// a warning), leaving the file empty.
	tb, _ := os.ReadFile(filepath.Join(out, "tb.tar.zst"))
	if b, err := os.ReadFile(filepath.Join(out, "tb.SHA256SUMS")); err != nil || string(b) != fmt.Sprintf("%x *tb.tar.zst\n", sha256.Sum256(tb)) {
		t.Errorf("tb.SHA256SUMS: %v\n%s", err, b)
	}
	if b, err := os.ReadFile(filepath.Join(out, "base.SHA256SUMS")); err != nil || len(b) != 0 {
		t.Errorf("base.SHA256SUMS: %v %q, want an empty file", err, b)
	}
	if m, err := os.ReadFile(filepath.Join(out, "tool_2.manifest.json")); err != nil || !strings.Contains(string(m), `"extension_release": "ID=_any\n"`) {
		t.Errorf("manifest: %s %v", m, err)
	}
	// mkosi's manifest (ManifestFormat=json), as its json.dump(indent=2)
	// writes it: the extension lists the packages it installed.
	want := `{
  "manifest_version": 1,
  "config": {
    "name": "image",
    "distribution": "debian",
    "architecture": "x86-64",
    "output_format": "sysext",
    "version": "2",
    "release": "trixie"
  },
  "packages": [
    {
      "type": "deb",
      "name": "jq",
      "version": "1",
      "architecture": "x86-64"
    }
  ]
}`
	if m, err := os.ReadFile(filepath.Join(out, "tool_2.manifest")); err != nil || string(m) != want {
		t.Errorf("mkosi manifest: %v\n%s\nwant\n%s", err, m, want)
	}
	if m, err := os.ReadFile(filepath.Join(out, "base.manifest")); err != nil || !strings.Contains(string(m), `"name": "base-files"`) || strings.Contains(string(m), `"version": ""`) {
		t.Errorf("base manifest: %v\n%s", err, m)
	}
	// OutputMode=600: the published image has that mode, the cache's
	// copy keeps its own.
	if fi, err := os.Stat(filepath.Join(out, "bare.raw")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("bare.raw mode: %v %v", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(out, "tool_2.raw")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("tool_2.raw mode: %v %v", fi, err)
	}
	// Without a file in the trees there is none in the image.
	if img, _ := os.ReadFile(filepath.Join(out, "bare.raw")); strings.Contains(string(img), "extension-release") || !strings.Contains(string(img), "usr/bin/x") {
		t.Errorf("bare image:\n%s", img)
	}
	if _, err := os.Stat(filepath.Join(out, "base/usr/lib/os-release")); err != nil {
		t.Errorf("base tree: %v", err)
	}

	// The tar base is zstd-compressed, next to its symlink.
	f, err := os.Open(filepath.Join(out, "tb.tar.zst"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	found := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading tb.tar.zst: %v", err)
		}
		if h.Name == "usr/lib/os-release" {
			found = true
		}
	}
	if !found {
		t.Error("tb.tar.zst lacks usr/lib/os-release")
	}
	if l, _ := os.Readlink(filepath.Join(out, "tb")); l != "tb.tar.zst" {
		t.Errorf("symlink tb = %q", l)
	}

	// Nothing went to the package's directory under sxb-out, and the
	// checksums are in the publish directory.
	if _, err := os.Stat(filepath.Join(ws, "sxb-out/proj")); err == nil {
		t.Error("outputs also published under sxb-out/proj")
	}
	sums, _ := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
	if !bytes.Contains(sums, []byte("  tool_2.raw\n")) || !bytes.Contains(sums, []byte("  tb.tar.zst\n")) {
		t.Errorf("SHA256SUMS:\n%s", sums)
	}
	// A second build gives the same compressed bytes. Without verity and
	// splitting, the root hash and partition files of the first build go:
	// systemd would pick them up with the new image.
	first, _ := os.ReadFile(filepath.Join(out, "tb.tar.zst"))
	os.WriteFile(filepath.Join(out, "tool_2.extra.raw"), []byte("not ours"), 0o644)
	g.Targets[xl.String()].Ext.Verity = "off"
	g.Targets[xl.String()].Publish.SplitPartitions = false
	if _, err := Build(context.Background(), g, g.Order(), Options{CacheDir: t.TempDir(), Installers: map[string]Installer{"fake": &fakeInstaller{}}, ImageWriter: writer}); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(filepath.Join(out, "tb.tar.zst")); !bytes.Equal(first, again) {
		t.Error("tb.tar.zst differs between builds")
	}
	for _, n := range []string{"tool_2.roothash", "tool_2.root-x86-64.raw", "tool_2.root-x86-64-verity.raw"} {
		if _, err := os.Stat(filepath.Join(out, n)); err == nil {
			t.Errorf("stale %s left behind", n)
		}
	}
	for _, n := range []string{"tool_2.raw", "tool_2.manifest.json", "tool_2.extra.raw", "base", "tb.tar.zst"} {
		if _, err := os.Stat(filepath.Join(out, n)); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}

// metaInstaller is fakeInstaller recording, as rootless extraction does,
// a setuid root file and a device node in the sidecar.
type metaInstaller struct{ fakeInstaller }

func (m *metaInstaller) Install(ctx context.Context, r Resolved, root string, meta *tree.Meta, opts InstallOptions) (*InstallReport, error) {
	rep, err := m.fakeInstaller.Install(ctx, r, root, meta, opts)
	if err != nil {
		return nil, err
	}
	os.MkdirAll(filepath.Join(root, "dev"), 0o755)
	os.WriteFile(filepath.Join(root, "dev/null"), nil, 0o644)
	meta.Set("dev/null", tree.Override{Kind: tree.Ptr(tree.CharDev), Mode: tree.Ptr[uint32](0o666), Rdev: tree.Ptr(tree.Mkdev(1, 3))})
	meta.Set("usr/share/base-files/base-files", tree.Override{Mode: tree.Ptr[uint32](04755), UID: tree.Ptr[uint32](7), GID: tree.Ptr[uint32](8)})
	return rep, nil
}

// TestPublishTreeAsRoot checks that a directory base published by root
// carries the sidecar's owners, setuid bits and device nodes on disk,
// while the cache entry it is linked from keeps its own.
func TestPublishTreeAsRoot(t *testing.T) {
	testenv.NeedRoot(t)
	ws := t.TempDir()
	bl := label.Label{Pkg: "p", Name: "base"}
	g := &rules.Graph{Workspace: ws, Targets: map[string]*rules.Target{bl.String(): {Label: bl, Kind: rules.KindBaseImage, Base: &rules.BaseImage{
		Name: "base", Distribution: "fake", Release: "1", Architecture: arch.X86_64, Packages: []string{"base-files"}, Output: "directory"}}}}
	cache := t.TempDir()
	res, err := Build(context.Background(), g, g.Order(), Options{CacheDir: cache, Installers: map[string]Installer{"fake": &metaInstaller{}}, ImageWriter: listingWriter})
	if err != nil {
		t.Fatal(err)
	}
	out := res[0].Outputs[0]
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(out, "usr/share/base-files/base-files"), &st); err != nil || st.Mode&0o7777 != 04755 || st.Uid != 7 || st.Gid != 8 {
		t.Errorf("setuid file: mode %o owner %d:%d %v", st.Mode&0o7777, st.Uid, st.Gid, err)
	}
	if err := unix.Lstat(filepath.Join(out, "dev/null"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("dev/null: mode %o %v", st.Mode, err)
	}
	// The cache's copy is untouched: the image built from it is the same
	// as a rootless build's.
	matches, _ := filepath.Glob(filepath.Join(cache, "actions/*/*/out/tree/usr/share/base-files/base-files"))
	for _, m := range matches {
		if err := unix.Lstat(m, &st); err != nil || st.Mode&0o7777 == 04755 || st.Uid == 7 {
			t.Errorf("cache entry %s changed: mode %o uid %d", m, st.Mode&0o7777, st.Uid)
		}
	}
	if len(matches) == 0 {
		t.Errorf("no cache entry found under %s", cache)
	}
}

// statusInstaller is fakeInstaller keeping a dpkg-like database: packages
// listed in the base's var/lib/dpkg/status are not installed again.
type statusInstaller struct{ fakeInstaller }

func (s *statusInstaller) Resolve(ctx context.Context, req InstallRequest, report func(string, string)) (Resolved, error) {
	installed := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(cmp.Or(req.BaseDB, req.BaseRoot), "var/lib/dpkg/status")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if n, ok := strings.CutPrefix(line, "Package: "); ok {
				installed[n] = true
			}
		}
	}
	var set fakeSet
	for _, p := range req.Packages {
		if !installed[p] {
			set = append(set, Package{Name: p, Version: "1", Arch: req.Architecture.Systemd(), SHA256: strings.Repeat("0", 64)})
		}
	}
	return set, nil
}

func (s *statusInstaller) Install(ctx context.Context, r Resolved, root string, meta *tree.Meta, opts InstallOptions) (*InstallReport, error) {
	if _, err := s.fakeInstaller.Install(ctx, r, root, meta, opts); err != nil {
		return nil, err
	}
	var status strings.Builder
	for _, p := range r.Packages() {
		fmt.Fprintf(&status, "Package: %s\nStatus: install ok installed\n\n", p.Name)
	}
	os.MkdirAll(filepath.Join(root, "var/lib/dpkg"), 0o755)
	return &InstallReport{}, os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), []byte(status.String()), 0o644)
}

// TestExtensionOnExtension checks an extension whose base is another
// extension: what the lower extension installed counts as installed, the
// base image below completes the extension-release.
func TestExtensionOnExtension(t *testing.T) {
	ws := t.TempDir()
	bl, l1, l2 := label.Label{Pkg: "p", Name: "base"}, label.Label{Pkg: "p", Name: "libs"}, label.Label{Pkg: "p", Name: "tool"}
	g := &rules.Graph{Workspace: ws, Targets: map[string]*rules.Target{
		bl.String(): {Label: bl, Kind: rules.KindBaseImage, Base: &rules.BaseImage{Name: "base", Distribution: "fake", Release: "1",
			Architecture: arch.X86_64, Packages: []string{"base-files", "libc"}, Output: "directory"}},
		l1.String(): {Label: l1, Kind: rules.KindSysext, Deps: []label.Label{bl}, Ext: &rules.Extension{Name: "libs", Kind: "sysext",
			Base: &bl, Packages: []string{"libc", "lib1"}, Format: "erofs", Verity: "off", Output: "libs"}},
		l2.String(): {Label: l2, Kind: rules.KindSysext, Deps: []label.Label{l1}, Ext: &rules.Extension{Name: "tool", Kind: "sysext",
			Base: &l1, Packages: []string{"lib1", "tool"}, Format: "erofs", Verity: "off", Output: "tool"}},
	}}
	res, err := Build(context.Background(), g, g.Order(), Options{CacheDir: t.TempDir(), Installers: map[string]Installer{"fake": &statusInstaller{}}, ImageWriter: listingWriter})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Label != "//p:tool" {
			continue
		}
		img, _ := os.ReadFile(r.Outputs[0])
		if !strings.Contains(string(img), "usr/share/tool/tool") || strings.Contains(string(img), "usr/share/lib1") ||
			strings.Contains(string(img), "usr/share/libc") || !strings.Contains(string(img), `"ID=fake\nVERSION_ID=1\n`) {
			t.Errorf("tool image:\n%s", img)
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(r.Outputs[0]), extDBFile)); err == nil {
			t.Error("the extension's package database was published")
		}
		return
	}
	t.Fatalf("no result for //p:tool in %v", res)
}

// TestTreeBase checks an extension built on a tree sxb did not build, a
// directory or a tar archive of it (as GNU tar and zstd write it, then
// extracted once into the cache with its owners in the sidecar): packages
// the tree has are not installed again, its os-release completes the
// extension-release, and a change in the tree rebuilds the image.
func TestTreeBase(t *testing.T) {
	for _, archived := range []bool{false, true} {
		t.Run(map[bool]string{false: "directory", true: "tar.zst"}[archived], func(t *testing.T) { testTreeBase(t, archived) })
	}
}

func testTreeBase(t *testing.T, archived bool) {
	ws := t.TempDir()
	src := filepath.Join(ws, "prebuilt")
	for p, c := range map[string]string{"usr/share/libc/libc": "libc", "usr/lib/os-release": "ID=fake\nVERSION_ID=7\n"} {
		os.MkdirAll(filepath.Join(src, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(src, p), []byte(c), 0o644)
	}
	base := src
	update := func() {}
	if archived {
		testenv.NeedTool(t, "tar", "zstd")
		base = filepath.Join(ws, "prebuilt.tar.zst")
		update = func() {
			t.Helper()
			if out, err := exec.Command("tar", "-C", src, "--zstd", "--owner=0", "--group=0", "--numeric-owner", "-cf", base, ".").CombinedOutput(); err != nil {
				t.Fatalf("tar: %v\n%s", err, out)
			}
		}
		update()
	}
	xl := label.Label{Pkg: "p", Name: "tool"}
	g := &rules.Graph{Workspace: ws, Targets: map[string]*rules.Target{xl.String(): {Label: xl, Kind: rules.KindSysext, Ext: &rules.Extension{
		Name: "tool", Kind: "sysext", BaseTree: &rules.TreeBase{Path: base, Distribution: "fake"}, Packages: []string{"jq", "libc"},
		Format: "erofs", Verity: "off", Output: "tool", Architecture: arch.X86_64}}}}
	fake := &fakeInstaller{}
	cache := t.TempDir()
	build := func() ([]*Result, error) {
		return Build(context.Background(), g, g.Order(), Options{CacheDir: cache, Installers: map[string]Installer{"fake": fake}, ImageWriter: listingWriter})
	}
	res, err := build()
	if err != nil {
		t.Fatal(err)
	}
	img, _ := os.ReadFile(res[0].Outputs[0])
	if !strings.Contains(string(img), "usr/share/jq/jq") || strings.Contains(string(img), "usr/share/libc") ||
		!strings.Contains(string(img), `"ID=fake\nVERSION_ID=7\n`) {
		t.Errorf("image:\n%s", img)
	}
	if fmt.Sprint(fake.installs) != "[jq]" {
		t.Errorf("installed %v", fake.installs)
	}
	trees, _ := filepath.Glob(filepath.Join(cache, "tree-bases/*/tree/usr/share/libc/libc"))
	sidecars, _ := filepath.Glob(filepath.Join(cache, "tree-bases/*/tree.meta.json"))
	if archived && (len(trees) != 1 || len(sidecars) != 1) {
		t.Errorf("extracted trees %v, sidecars %v", trees, sidecars)
	}
	if res, err := build(); err != nil || !res[0].Cached {
		t.Errorf("second build not cached (%v)", err)
	}
	os.WriteFile(filepath.Join(src, "usr/lib/os-release"), []byte("ID=fake\nVERSION_ID=8\n"), 0o644)
	update()
	if res, err = build(); err != nil {
		t.Fatal(err)
	}
	img, _ = os.ReadFile(res[0].Outputs[0])
	if res[0].Cached || !strings.Contains(string(img), "VERSION_ID=8") {
		t.Errorf("changed tree: cached %v\n%s", res[0].Cached, img)
	}
	if !archived {
		return
	}
	// Not an archive: the target's error names the file, and nothing is
	// left half-extracted.
	bad := filepath.Join(ws, "bad.tar.zst")
	os.WriteFile(bad, []byte("not zstd"), 0o644)
	g.Targets[xl.String()].Ext.BaseTree.Path = bad
	if _, err := build(); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("bad archive: err = %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(cache, "tree-bases/.*")); len(left) != 0 {
		t.Errorf("half-extracted trees left: %v", left)
	}
}

// TestMergeStatus checks that a package an upper status lists replaces
// the lower's paragraph (an extension's status repeats its base's).
func TestMergeStatus(t *testing.T) {
	lower := "Package: libc\nArchitecture: amd64\nVersion: 1\n\nPackage: base-files\nArchitecture: amd64\nVersion: 1\n"
	upper := "Package: libc\nArchitecture: amd64\nVersion: 2\n\nPackage: libc\nArchitecture: i386\nVersion: 1\n\nPackage: jq\nArchitecture: amd64\nVersion: 1\n\n"
	want := "Package: libc\nArchitecture: amd64\nVersion: 2\n\nPackage: base-files\nArchitecture: amd64\nVersion: 1\n\n" +
		"Package: libc\nArchitecture: i386\nVersion: 1\n\nPackage: jq\nArchitecture: amd64\nVersion: 1\n\n"
	if got := string(mergeStatus([]byte(lower), []byte(upper))); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// reqInstaller is fakeInstaller keeping the requests it resolves.
type reqInstaller struct {
	fakeInstaller
	reqs []InstallRequest
}

func (r *reqInstaller) Resolve(ctx context.Context, req InstallRequest, report func(string, string)) (Resolved, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	return r.fakeInstaller.Resolve(ctx, req, report)
}

// TestSandboxSettingsReachInstaller checks that the repository settings
// of a base (apt pins, repository keys, a pacman keyring directory, the
// defaults off) reach the installer for the base and for an extension on
// it.
func TestSandboxSettingsReachInstaller(t *testing.T) {
	ws := t.TempDir()
	bl, xl := label.Label{Pkg: "p", Name: "base"}, label.Label{Pkg: "p", Name: "tool"}
	pins := []deb.Pin{{Priority: 100, Release: map[string]string{"a": "x"}}}
	g := &rules.Graph{Workspace: ws, Targets: map[string]*rules.Target{
		bl.String(): {Label: bl, Kind: rules.KindBaseImage, Base: &rules.BaseImage{Name: "base", Distribution: "fake", Release: "1",
			Architecture: arch.X86_64, Packages: []string{"base-files"}, Output: "directory", AptPins: pins, RepoKeys: []string{"/k.asc"},
			KeyringDir: "/keyrings", NoDefaultSources: true}},
		xl.String(): {Label: xl, Kind: rules.KindSysext, Deps: []label.Label{bl}, Ext: &rules.Extension{Name: "tool", Kind: "sysext",
			Base: &bl, Packages: []string{"jq"}, Format: "erofs", Verity: "off", Output: "tool"}},
	}}
	in := &reqInstaller{}
	if _, err := Build(context.Background(), g, g.Order(), Options{CacheDir: t.TempDir(), Installers: map[string]Installer{"fake": in}, ImageWriter: listingWriter}); err != nil {
		t.Fatal(err)
	}
	if len(in.reqs) != 2 {
		t.Fatalf("%d requests", len(in.reqs))
	}
	for _, r := range in.reqs {
		if len(r.AptPins) != 1 || r.AptPins[0].Priority != 100 || fmt.Sprint(r.RepoKeys) != "[/k.asc]" || r.KeyringDir != "/keyrings" || !r.NoDefaultSources {
			t.Errorf("request %+v", r)
		}
	}
}
