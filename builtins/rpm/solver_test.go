package rpm

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sxb-build/sxb/builtins/rpm/rpmtest"
)

func simple(name, version, tags string) rpmtest.Pkg {
	return rpmtest.Pkg{Name: name, Version: version, Tags: tags, Unsigned: true,
		Install: "mkdir -p %{buildroot}/usr/share/fx\necho " + name + " > %{buildroot}/usr/share/fx/" + name,
		Files:   "/usr/share/fx/" + name}
}

// scenarioPackages exercise the resolver: rich operators, conflicts,
// obsoletes, versions with ~ and ^, and unsatisfiable chains.
var scenarioPackages = []rpmtest.Pkg{
	simple("libx-a", "1", "Provides: libx\nProvides: libx-flavor-a"),
	simple("libx-b", "1", "Provides: libx\nProvides: libx-flavor-b"),
	simple("want-with", "1", "Requires: (libx with libx-flavor-b)"),
	simple("want-without", "1", "Requires: (libx without libx-flavor-a)"),
	simple("cond", "1", ""),
	simple("then", "1", ""),
	simple("alt", "1", ""),
	simple("guard", "1", "Conflicts: (then unless cond)"),
	simple("guard-and", "1", "Conflicts: (then and cond)"),
	simple("want-ifelse", "1", "Requires: (then if cond else alt)"),
	simple("want-ifelse-cond", "1", "Requires: cond\nRequires: (then if cond else alt)"),
	simple("want-and-or", "1", "Requires: ((nope or then) and (alt or nope2))"),
	simple("p1", "1", "Provides: cap\nConflicts: want-conflict"),
	simple("p2", "1", "Provides: cap"),
	simple("want-conflict", "1", "Requires: cap"),
	simple("oldtool", "1", ""),
	simple("newtool", "2", "Obsoletes: oldtool < 2"),
	simple("lib", "1.0~rc1", ""),
	simple("needs-final", "1", "Requires: lib >= 1.0"),
	simple("snap", "2.0^git1", ""),
	simple("needs-snap", "1", "Requires: snap > 2.0"),
	simple("top", "1", "Requires: mid"),
	simple("mid", "1", "Requires: missing-thing >= 2"),
	simple("epoch", "1", "Epoch: 3"),
	simple("needs-epoch", "1", "Requires: epoch >= 3:0.5"),
	simple("acme", "1", "Provides: widget"),
	simple("widget", "1", ""),
	simple("want-widget", "1", "Requires: widget"),
	simple("zeta", "1", "Provides: gadget"),
	simple("beta", "1", "Provides: gadget"),
	simple("want-gadget", "1", "Requires: gadget"),
	simple("want-or-order", "1", "Requires: (zeta or beta)"),
	simple("aaa-thing", "1", "Provides: thing"),
	simple("zzz-thing", "1", "Provides: thing"),
	simple("zz2-thing", "1", "Provides: thing\nSupplements: want-sup"),
	simple("want-rec", "1", "Requires: thing\nRecommends: zzz-thing"),
	simple("want-sug", "1", "Requires: thing\nSuggests: zzz-thing"),
	simple("want-sup", "1", "Requires: thing"),
	simple("old-thing", "1", "Provides: thing2"),
	simple("new-thing", "2", "Provides: thing2\nObsoletes: old-thing"),
	simple("want-thing2", "1", "Requires: thing2"),
	simple("sup-base", "1", ""),
	simple("sup-addon", "1", "Supplements: (sup-base and cond)\nRequires: sup-dep"),
	simple("sup-dep", "1", ""),
	simple("sup-broken", "1", "Supplements: sup-base\nRequires: nothing-provides-this"),
	simple("rec-base", "1", "Recommends: rec-a\nRecommends: rec-missing"),
	simple("rec-a", "1", "Requires: alt"),
	simple("needs-rpmlib", "1", "Requires: rpmlib(RichDependencies) <= 4.12.0-1\nRequires: rpmlib(CaretInVersions)"),
	simple("needs-future", "1", "Requires: rpmlib(TeleportingPayloads) <= 9.0-1"),
	fileOnly("clash-a", "/usr/share/fx/clash", "a", ""),
	fileOnly("clash-b", "/usr/share/fx/clash", "b", ""),
	fileOnly("share-a", "/usr/share/fx/shared", "same", ""),
	fileOnly("share-b", "/usr/share/fx/shared", "same", ""),
	fileOnly("owned", "/usr/share/fx/owned", "x", "%attr(0640,svc,svcgrp) "),
	{Name: "devices", Version: "1", Unsigned: true, Install: "mkdir -p %{buildroot}/dev",
		Files: "%dir /dev\n%dev(c,1,3) %attr(0666,root,root) /dev/null\n%dev(b,8,17) %attr(0660,root,root) /dev/sdb1"},
}

// fileOnly is a package with a single file.
func fileOnly(name, path, content, attr string) rpmtest.Pkg {
	return rpmtest.Pkg{Name: name, Version: "1", Unsigned: true,
		Install: "mkdir -p %{buildroot}" + filepath.Dir(path) + "\necho " + content + " > %{buildroot}" + path,
		Files:   attr + path}
}

var (
	scenOnce sync.Once
	scenDir  string
)

func scenarioRepo(t *testing.T) string {
	t.Helper()
	fx := seedRepo(t)
	scenOnce.Do(func() {
		dir := filepath.Join(fx.dir, "scenarios")
		fx.env.Build(t, dir, scenarioPackages)
		fx.env.CreateRepo(t, dir, false, false)
		scenDir = dir
	})
	if scenDir == "" {
		t.Fatal("scenario repository failed to build")
	}
	return scenDir
}

func scenarioResolve(t *testing.T, pkgs ...string) (*Plan, error) {
	repo := scenarioRepo(t)
	return Resolve(context.Background(), Request{Distribution: "opensuse", Release: "tumbleweed",
		Repositories: []string{repo}, Packages: pkgs, Insecure: true, CacheDir: t.TempDir()})
}

// scenarios are requests with the set rpm's own resolvers install.
var scenarios = []struct {
	req  []string
	want string
}{
	{[]string{"want-with"}, "libx-b want-with"},
	{[]string{"want-without"}, "libx-b want-without"},
	{[]string{"guard", "then", "cond"}, "cond guard then"},
	{[]string{"guard", "then"}, "cond guard then"},
	{[]string{"guard-and", "then"}, "guard-and then"},
	{[]string{"want-ifelse"}, "alt want-ifelse"},
	{[]string{"want-ifelse-cond"}, "cond then want-ifelse-cond"},
	{[]string{"want-and-or"}, "alt then want-and-or"},
	{[]string{"want-conflict"}, "p2 want-conflict"},
	{[]string{"needs-snap"}, "needs-snap snap"},
	{[]string{"needs-epoch"}, "epoch needs-epoch"},
	{[]string{"newtool"}, "newtool"},
	{[]string{"want-widget"}, "acme want-widget"},
	{[]string{"want-gadget"}, "beta want-gadget"},
	{[]string{"want-or-order"}, "beta want-or-order"},
	{[]string{"want-rec"}, "want-rec zzz-thing"},
	{[]string{"want-sug"}, "want-sug zzz-thing"},
	{[]string{"want-sup"}, "want-sup zz2-thing"},
	{[]string{"want-thing2"}, "new-thing want-thing2"},
	{[]string{"needs-rpmlib"}, "needs-rpmlib"},
}

// weakScenarios are resolved with WithRecommends (dnf:
// install_weak_deps=True).
var weakScenarios = []struct {
	req  []string
	want string
}{
	{[]string{"sup-base"}, "sup-base"},
	{[]string{"sup-base", "cond"}, "cond sup-addon sup-base sup-dep"},
	{[]string{"rec-base"}, "alt rec-a rec-base"},
}

func TestWeakScenarios(t *testing.T) {
	for _, sc := range weakScenarios {
		repo := scenarioRepo(t)
		plan, err := Resolve(context.Background(), Request{Distribution: "opensuse", Repositories: []string{repo},
			Packages: sc.req, Insecure: true, CacheDir: t.TempDir(), WithRecommends: true})
		if err != nil {
			t.Errorf("%v: %v", sc.req, err)
			continue
		}
		if got := strings.Join(plan.Names(), " "); got != sc.want {
			t.Errorf("%v: got %s, want %s", sc.req, got, sc.want)
		}
	}
}

func TestScenarios(t *testing.T) {
	for _, sc := range scenarios {
		plan, err := scenarioResolve(t, sc.req...)
		if err != nil {
			t.Errorf("%v: %v", sc.req, err)
			continue
		}
		var names []string
		for _, p := range plan.Packages {
			names = append(names, p.Name)
		}
		if got := strings.Join(names, " "); got != sc.want {
			t.Errorf("%v: got %s, want %s", sc.req, got, sc.want)
		}
	}
}

func TestUnsatisfiable(t *testing.T) {
	cases := []struct {
		req  []string
		want []string
	}{
		{[]string{"top"}, []string{`"missing-thing >= 2"`, "mid-1-1.noarch <- top-1-1.noarch <- requested"}},
		{[]string{"needs-final"}, []string{`"lib >= 1.0"`, "needs-final-1-1.noarch"}},
		{[]string{"newtool", "oldtool"}, []string{"obsolete"}},
		{[]string{"no-such-package"}, []string{`"no-such-package"`}},
	}
	for _, c := range cases {
		_, err := scenarioResolve(t, c.req...)
		if err == nil {
			t.Errorf("%v: resolved, want an error", c.req)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q lacks %q", c.req, err, w)
			}
		}
	}
}

func TestResolveCachesMetadata(t *testing.T) {
	repo := scenarioRepo(t)
	cache := t.TempDir()
	req := Request{Distribution: "opensuse", Repositories: []string{repo}, Packages: []string{"top"}, Insecure: true, CacheDir: cache}
	req.Packages = []string{"needs-snap"}
	if _, err := Resolve(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	gobs, _ := filepath.Glob(filepath.Join(cache, "rpm-md", "*.gob"))
	if len(gobs) != 1 {
		t.Fatalf("parsed-metadata cache holds %v", gobs)
	}
	// A damaged cache entry is ignored, not trusted blindly.
	os.WriteFile(gobs[0], []byte("junk"), 0o644)
	if _, err := Resolve(context.Background(), req); err != nil {
		t.Fatal(err)
	}
}

func TestRepoURLs(t *testing.T) {
	cases := []struct {
		req  Request
		want string
	}{
		{Request{Distribution: "opensuse", Release: "tumbleweed"},
			"https://download.opensuse.org/tumbleweed/repo/oss/ https://download.opensuse.org/update/tumbleweed/"},
		{Request{Distribution: "opensuse", Release: "tumbleweed", Arch: "arm64"},
			"https://download.opensuse.org/ports/aarch64/tumbleweed/repo/oss/"},
		{Request{Distribution: "opensuse", Release: "leap-15.6", Repositories: []string{"oss", "update"}, Mirror: "file:///srv/m"},
			"file:///srv/m/distribution/leap/15.6/repo/oss/ file:///srv/m/update/leap/15.6/oss/"},
		{Request{Distribution: "fedora", Release: "41", Arch: "x86-64"},
			"https://dl.fedoraproject.org/pub/fedora/linux/releases/41/Everything/x86_64/os/ https://dl.fedoraproject.org/pub/fedora/linux/updates/41/Everything/x86_64/"},
		{Request{Distribution: "fedora", Release: "41", Repositories: []string{"release", "/srv/extra"}, Mirror: "/srv/fedora"},
			"file:///srv/fedora/fedora/linux/releases/41/Everything/x86_64/os/ file:///srv/extra/"},
		{Request{Distribution: "fedora", Release: "41", Repositories: []string{"https://example.invalid/repo"}},
			"https://example.invalid/repo/"},
	}
	for _, c := range cases {
		arch, _ := rpmArch(c.req.Arch)
		got, err := repoURLs(c.req, arch)
		if err != nil {
			t.Errorf("%+v: %v", c.req, err)
			continue
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("%+v:\n got %s\nwant %s", c.req, strings.Join(got, " "), c.want)
		}
	}
	for _, bad := range []Request{
		{Distribution: "opensuse", Release: "tumbleweed", Repositories: []string{"non-oss"}},
		{Distribution: "fedora", Release: "forty"},
		{Distribution: "opensuse", Release: "tumbleweed", Mirror: "ftp://x"},
	} {
		if _, err := repoURLs(bad, "x86_64"); err == nil {
			t.Errorf("%+v: accepted", bad)
		}
	}
	if _, err := Resolve(context.Background(), Request{Distribution: "debian", Packages: []string{"x"}}); err == nil {
		t.Error("distribution debian accepted")
	}
}
