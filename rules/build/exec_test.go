package build

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/arch"
	"github.com/sxb-build/sxb/internal/label"
	"github.com/sxb-build/sxb/rules"
)

// fakeInstaller "installs" packages named in files: each package p puts
// usr/share/p/<p> and, for "base-files", an os-release.
type fakeInstaller struct {
	mu       sync.Mutex
	installs []string
}

type fakeSet []Package

func (s fakeSet) Packages() []Package { return s }

func (f *fakeInstaller) Resolve(ctx context.Context, req InstallRequest, report func(string, string)) (Resolved, error) {
	var s fakeSet
	for _, p := range req.Packages {
		if req.BaseRoot != "" {
			if _, err := os.Stat(filepath.Join(req.BaseRoot, "usr/share", p)); err == nil {
				continue
			}
		}
		if p == "missing" {
			return nil, fmt.Errorf("missing: not found")
		}
		s = append(s, Package{Name: p, Version: "1", Arch: req.Architecture.Systemd(), SHA256: strings.Repeat("0", 64)})
	}
	return s, nil
}

func (f *fakeInstaller) Pin(Resolved) ([]byte, error) { return nil, nil }

// ScriptRunner says the fake's scripts run natively (they do not exist).
func (f *fakeInstaller) ScriptRunner(arch.Arch) string { return "native" }

func (f *fakeInstaller) Install(ctx context.Context, r Resolved, root string, meta *tree.Meta, opts InstallOptions) (*InstallReport, error) {
	for _, p := range r.Packages() {
		f.mu.Lock()
		f.installs = append(f.installs, p.Name)
		f.mu.Unlock()
		d := filepath.Join(root, "usr/share", p.Name)
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, p.Name), []byte(p.Name), 0o644)
		if p.Name == "base-files" {
			os.MkdirAll(filepath.Join(root, "usr/lib"), 0o755)
			os.WriteFile(filepath.Join(root, "usr/lib/os-release"), []byte("ID=fake\nVERSION_ID=1\n"), 0o644)
		}
		os.MkdirAll(filepath.Join(root, "var/lib/dpkg"), 0o755)
		os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), []byte("Package: "+p.Name+"\n"), 0o644)
	}
	return &InstallReport{}, nil
}

// listingWriter writes the tree's listing as the "image".
func listingWriter(ctx context.Context, out string, req ImageRequest) (*ImageResult, error) {
	var b bytes.Buffer
	req.Root.Walk(func(n *tree.Node) error {
		fmt.Fprintf(&b, "%s %v %o\n", n.Path, n.Kind, n.Mode)
		if n.Kind == tree.Regular {
			r, _ := n.Open()
			buf := new(bytes.Buffer)
			buf.ReadFrom(r)
			r.Close()
			fmt.Fprintf(&b, "  %q\n", buf.String())
		}
		return nil
	})
	return &ImageResult{RootHash: ""}, os.WriteFile(out, b.Bytes(), 0o644)
}

func testGraph(ws string, extPackages []string) *rules.Graph {
	bl := label.Label{Pkg: "img", Name: "base"}
	el := label.Label{Pkg: "img", Name: "tool"}
	cl := label.Label{Pkg: "img", Name: "conf"}
	g := &rules.Graph{Workspace: ws, Targets: map[string]*rules.Target{}}
	g.Targets[bl.String()] = &rules.Target{Label: bl, Kind: rules.KindBaseImage, Base: &rules.BaseImage{
		Name: "base", Distribution: "fake", Release: "1", Architecture: arch.X86_64, Packages: []string{"base-files", "libc"}, WithDocs: true, Output: "directory"}}
	g.Targets[el.String()] = &rules.Target{Label: el, Kind: rules.KindSysext, Deps: []label.Label{bl}, Ext: &rules.Extension{
		Name: "tool", Kind: "sysext", Base: &bl, Packages: extPackages, Format: "erofs", Verity: "off", Output: "tool", Version: "2.0",
		ExtensionRelease: []rules.KV{{Key: "SYSEXT_LEVEL", Value: "1.0"}}}}
	g.Targets[cl.String()] = &rules.Target{Label: cl, Kind: rules.KindConfext, Deps: []label.Label{bl}, Ext: &rules.Extension{
		Name: "conf", Kind: "confext", Base: &bl, Format: "erofs", Verity: "off", Output: "conf",
		ExtraTrees: []rules.Tree{{Source: filepath.Join(ws, "img/etc-tree"), Target: "/"}}}}
	return g
}

func TestBuildCachesPublishesAndRebuildsOnlyWhatChanged(t *testing.T) {
	fake := &fakeInstaller{}
	ws := t.TempDir()
	os.MkdirAll(filepath.Join(ws, "img/etc-tree/etc/app"), 0o755)
	os.WriteFile(filepath.Join(ws, "img/etc-tree/etc/app/app.conf"), []byte("x=1\n"), 0o644)
	cache := t.TempDir()
	build := func(pkgs []string) []*Result {
		g := testGraph(ws, pkgs)
		var log bytes.Buffer
		res, err := Build(context.Background(), g, g.Order(), Options{CacheDir: cache, Jobs: 2, Log: &log, Explain: true, Installers: map[string]Installer{"fake": fake}, ImageWriter: listingWriter})
		if err != nil {
			t.Fatalf("build: %v\n%s", err, log.String())
		}
		return res
	}
	res := build([]string{"libc", "jq"})
	if len(res) != 3 || res[0].Cached || res[1].Cached {
		t.Fatalf("first build results %+v", res)
	}
	if got := strings.Join(fake.installs, ","); got != "base-files,libc,jq" {
		t.Errorf("installed %s; want base-files,libc,jq (libc comes from the base)", got)
	}
	out := filepath.Join(ws, "sxb-out/img")
	img, err := os.ReadFile(filepath.Join(out, "tool_2.0.raw"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(img)
	for _, want := range []string{"usr/share/jq/jq", "usr/lib/extension-release.d/extension-release.tool",
		`"SYSEXT_LEVEL=1.0\nID=fake\nVERSION_ID=1\nSYSEXT_VERSION_ID=2.0\nSYSEXT_SCOPE=initrd system portable\nARCHITECTURE=x86-64\n"`} {
		if !strings.Contains(s, want) {
			t.Errorf("image lacks %s:\n%s", want, s)
		}
	}
	for _, bad := range []string{"libc", "var/", "os-release\n"} {
		if strings.Contains(s, bad) {
			t.Errorf("image contains %q:\n%s", bad, s)
		}
	}
	if l, err := os.Readlink(filepath.Join(out, "tool.raw")); err != nil || l != "tool_2.0.raw" {
		t.Errorf("unversioned symlink: %q %v", l, err)
	}
	conf, _ := os.ReadFile(filepath.Join(out, "conf.raw"))
	if !strings.Contains(string(conf), "etc/app/app.conf") || !strings.Contains(string(conf), "etc/extension-release.d/extension-release.conf") || strings.Contains(string(conf), "usr/") {
		t.Errorf("confext content:\n%s", conf)
	}
	if _, err := os.Stat(filepath.Join(out, "base/usr/share/libc/libc")); err != nil {
		t.Errorf("base directory not published: %v", err)
	}
	sums, _ := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
	if !strings.Contains(string(sums), "  tool_2.0.raw\n") || !strings.Contains(string(sums), "  conf.manifest.json\n") {
		t.Errorf("SHA256SUMS:\n%s", sums)
	}

	// Nothing changed: everything cached, nothing installed.
	fake.installs = nil
	res = build([]string{"libc", "jq"})
	for _, r := range res {
		if !r.Cached {
			t.Errorf("%s rebuilt with nothing changed", r.Label)
		}
	}
	if len(fake.installs) != 0 {
		t.Errorf("no-op build installed %v", fake.installs)
	}

	// Only the sysext's packages changed: the base is reused.
	res = build([]string{"jq", "htop"})
	byLabel := map[string]*Result{}
	for _, r := range res {
		byLabel[r.Label] = r
	}
	if !byLabel["//img:base"].Cached || byLabel["//img:tool"].Cached || !byLabel["//img:conf"].Cached {
		t.Errorf("after package change: %+v %+v %+v", byLabel["//img:base"], byLabel["//img:tool"], byLabel["//img:conf"])
	}
	sort.Strings(fake.installs)
	if got := strings.Join(fake.installs, ","); got != "htop,jq" {
		t.Errorf("installed %s", got)
	}

	// A corrupted cache entry is detected and rebuilt.
	ents, _ := filepath.Glob(filepath.Join(cache, "actions/*/*/out/conf.raw"))
	if len(ents) != 1 {
		t.Fatalf("cache entries for conf: %v", ents)
	}
	os.Remove(filepath.Join(out, "conf.raw")) // break the hard link first
	os.WriteFile(ents[0], []byte("garbage"), 0o644)
	res = build([]string{"jq", "htop"})
	for _, r := range res {
		if r.Label == "//img:conf" && r.Cached {
			t.Error("corrupt cache entry was used")
		}
	}
	conf, _ = os.ReadFile(filepath.Join(out, "conf.raw"))
	if !strings.Contains(string(conf), "etc/app/app.conf") {
		t.Errorf("conf.raw after rebuild: %s", conf)
	}
}

func TestExtensionWithoutBaseNeedsID(t *testing.T) {
	ws := t.TempDir()
	os.MkdirAll(filepath.Join(ws, "s/tree/usr/bin"), 0o755)
	os.WriteFile(filepath.Join(ws, "s/tree/usr/bin/tool"), []byte("#!/bin/sh\n"), 0o755)
	l := label.Label{Pkg: "s", Name: "s"}
	mk := func(rel []rules.KV) *rules.Graph {
		g := &rules.Graph{Workspace: ws, Targets: map[string]*rules.Target{}}
		g.Targets[l.String()] = &rules.Target{Label: l, Kind: rules.KindSysext, Ext: &rules.Extension{
			Name: "s", Kind: "sysext", Format: "erofs", Verity: "off", Output: "s", Architecture: arch.ARM64,
			ExtraTrees: []rules.Tree{{Source: filepath.Join(ws, "s/tree"), Target: "/"}}, ExtensionRelease: rel}}
		return g
	}
	g := mk(nil)
	if _, err := Build(context.Background(), g, g.Order(), Options{CacheDir: t.TempDir(), ImageWriter: listingWriter}); err == nil || !strings.Contains(err.Error(), "needs extension_release with ID") {
		t.Fatalf("err = %v", err)
	}
	g = mk([]rules.KV{{Key: "ID", Value: "_any"}})
	if _, err := Build(context.Background(), g, g.Order(), Options{CacheDir: t.TempDir(), ImageWriter: listingWriter}); err != nil {
		t.Fatal(err)
	}
	img, _ := os.ReadFile(filepath.Join(ws, "sxb-out/s/s.raw"))
	if !strings.Contains(string(img), `"ID=_any\nSYSEXT_SCOPE=initrd system portable\nARCHITECTURE=arm64\n"`) || !strings.Contains(string(img), "usr/bin/tool file 755") {
		t.Errorf("image:\n%s", img)
	}
}

// slowWriter is listingWriter that takes a while, so that two builds
// overlap.
func slowWriter(ctx context.Context, out string, req ImageRequest) (*ImageResult, error) {
	time.Sleep(300 * time.Millisecond)
	return listingWriter(ctx, out, req)
}

func TestConcurrentBuildsTakeTurns(t *testing.T) {
	ws := t.TempDir()
	os.MkdirAll(filepath.Join(ws, "img/etc-tree/etc/app"), 0o755)
	os.WriteFile(filepath.Join(ws, "img/etc-tree/etc/app/app.conf"), []byte("x=1\n"), 0o644)
	var wg sync.WaitGroup
	logs := make([]bytes.Buffer, 2)
	errs := make([]error, 2)
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			g := testGraph(ws, []string{"jq"})
			// Separate caches: both really build and publish.
			_, errs[i] = Build(context.Background(), g, g.Order(), Options{CacheDir: t.TempDir(), Log: &logs[i], Installers: map[string]Installer{"fake": &fakeInstaller{}}, ImageWriter: slowWriter})
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("build %d: %v", i, err)
		}
	}
	waited := strings.Contains(logs[0].String(), "waiting for another sxb build") || strings.Contains(logs[1].String(), "waiting for another sxb build")
	if !waited {
		t.Errorf("neither build waited for the other:\n%s\n%s", logs[0].String(), logs[1].String())
	}
	img, err := os.ReadFile(filepath.Join(ws, "sxb-out/img/tool_2.0.raw"))
	if err != nil || !strings.Contains(string(img), "usr/share/jq/jq") {
		t.Errorf("output after concurrent builds: %v\n%s", err, img)
	}
	sums, _ := os.ReadFile(filepath.Join(ws, "sxb-out/img/SHA256SUMS"))
	// Two images, each with its manifest and SPDX document.
	if strings.Count(string(sums), "\n") != 6 {
		t.Errorf("SHA256SUMS:\n%s", sums)
	}
}
