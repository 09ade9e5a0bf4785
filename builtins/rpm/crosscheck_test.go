package rpm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/testenv"
	"golang.org/x/sys/unix"
)

// dnfRun runs dnf against an installroot with only the given
// repositories, state and cache kept under dir.
type dnfRunner struct {
	t     *testing.T
	root  string
	cache string
	repos map[string]string
}

func (d *dnfRunner) args(extra ...string) []string {
	a := []string{"--installroot=" + d.root, "--releasever=fixture", "--setopt=reposdir=/dev/null",
		"--setopt=cachedir=" + d.cache, "--setopt=install_weak_deps=False", "--nogpgcheck",
		"--forcearch=x86_64", "--disableplugin=*", "-q"}
	names := make([]string, 0, len(d.repos))
	for n := range d.repos {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		a = append(a, "--repofrompath="+n+","+d.repos[n])
	}
	return append(a, extra...)
}

func (d *dnfRunner) run(extra ...string) {
	d.t.Helper()
	cmd := exec.Command("dnf", d.args(extra...)...)
	cmd.Env = append(os.Environ(), "RPM_FORCE_DEBIAN=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		d.t.Fatalf("dnf %s: %v\n%s", strings.Join(extra, " "), err, out)
	}
}

// transaction returns the package files dnf would install for pkgs (by
// downloading them only), as name-version-release.arch.rpm.
func (d *dnfRunner) transaction(weak bool, pkgs ...string) []string {
	d.t.Helper()
	dest := d.t.TempDir()
	extra := []string{"-y", "install", "--downloadonly", "--destdir=" + dest}
	if weak {
		extra = append(extra, "--setopt=install_weak_deps=True")
	}
	d.run(append(extra, pkgs...)...)
	files, _ := filepath.Glob(filepath.Join(dest, "*.rpm"))
	var out []string
	for _, f := range files {
		out = append(out, filepath.Base(f))
	}
	sort.Strings(out)
	return out
}

func planFiles(p *Plan) []string {
	var out []string
	for _, x := range p.Packages {
		out = append(out, path.Base(x.URL))
	}
	sort.Strings(out)
	return out
}

// TestCrossCheckDNF compares the sets sxb resolves with what dnf (libsolv)
// installs from the same repositories: the seed's base, helm on top of the
// base dnf installed, helm with weak dependencies, and the resolver
// scenarios.
func TestCrossCheckDNF(t *testing.T) {
	testenv.NeedTool(t, "dnf")
	fx := seedRepo(t)
	ctx := context.Background()
	oss := "file://" + filepath.Join(fx.mirror, "tumbleweed/repo/oss")
	upd := "file://" + filepath.Join(fx.mirror, "update/tumbleweed")
	d := &dnfRunner{t: t, root: t.TempDir(), cache: t.TempDir(), repos: map[string]string{"oss": oss, "update": upd}}

	req := Request{Distribution: "opensuse", Release: "tumbleweed", Mirror: fx.mirror, Keyring: fx.keyring,
		CacheDir: t.TempDir(), BaseImage: true, Packages: []string{"systemd", "udev"}}
	plan, err := Resolve(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	compareSets(t, "base", planFiles(plan), d.transaction(false, "systemd", "udev"))
	baseRoot := t.TempDir()
	baseMeta := tree.NewMeta()
	if err := Install(ctx, plan, baseRoot, baseMeta, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	// dnf installs the base for real (rpm unpacks it, as root), then
	// resolves helm on top of it. The two trees must agree.
	d.run("-y", "--setopt=tsflags=nodocs", "install", "systemd", "udev")
	if os.Geteuid() == 0 {
		compareTrees(t, d.root, baseRoot, baseMeta)
	} else {
		t.Log("not root: rpm cannot set owners, tree comparison skipped")
	}
	req.BaseImage, req.BaseRoot, req.Packages = false, baseRoot, []string{"helm"}
	if plan, err = Resolve(ctx, req); err != nil {
		t.Fatal(err)
	}
	compareSets(t, "helm on base", planFiles(plan), d.transaction(false, "helm"))
	req.WithRecommends = true
	if plan, err = Resolve(ctx, req); err != nil {
		t.Fatal(err)
	}
	compareSets(t, "helm on base with recommends", planFiles(plan), d.transaction(true, "helm"))

	// --downloadonly installs nothing: one root and a warm cache serve
	// every scenario.
	scen := &dnfRunner{t: t, root: t.TempDir(), cache: t.TempDir(), repos: map[string]string{"scen": "file://" + scenarioRepo(t)}}
	for _, sc := range scenarios {
		plan, err := scenarioResolve(t, sc.req...)
		if err != nil {
			t.Errorf("%v: %v", sc.req, err)
			continue
		}
		compareSets(t, strings.Join(sc.req, ","), planFiles(plan), scen.transaction(false, sc.req...))
	}
	for _, sc := range weakScenarios {
		plan, err := Resolve(ctx, Request{Distribution: "opensuse", Repositories: []string{scenarioRepo(t)},
			Packages: sc.req, Insecure: true, CacheDir: t.TempDir(), WithRecommends: true})
		if err != nil {
			t.Errorf("%v: %v", sc.req, err)
			continue
		}
		compareSets(t, strings.Join(sc.req, ",")+" (weak)", planFiles(plan), scen.transaction(true, sc.req...))
	}
	// What sxb refuses, dnf refuses too.
	for _, req := range [][]string{{"top"}, {"needs-final"}, {"guard-and", "then", "cond"}} {
		if _, err := scenarioResolve(t, req...); err == nil {
			t.Errorf("%v: sxb resolved it", req)
		}
		cmd := exec.Command("dnf", scen.args(append([]string{"-y", "install", "--downloadonly", "--destdir=" + t.TempDir()}, req...)...)...)
		cmd.Env = append(os.Environ(), "RPM_FORCE_DEBIAN=1")
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Errorf("%v: dnf resolved it (%v), sxb does not:\n%s", req, scen.transaction(false, req...), out)
		}
	}
}

func compareSets(t *testing.T, what string, got, want []string) {
	t.Helper()
	compareWith(t, "dnf", what, got, want)
}

func compareWith(t *testing.T, tool, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%s: sxb resolves\n  %s\n%s installs\n  %s", what, strings.Join(got, " "), tool, strings.Join(want, " "))
	} else {
		t.Logf("%s: sxb and %s agree on %d packages", what, tool, len(got))
	}
}

// dnfOwnState are paths only the package manager writes.
// ("root/.rpmdb" is Debian's rpm database location.)
var dnfOwnState = []string{"var/lib", "var/cache", "var/log", "usr/lib/sysimage", "root",
	"etc/dnf", "var/tmp", "tmp"}

func describeTree(t *testing.T, root string, meta *tree.Meta) map[string]string {
	t.Helper()
	n, err := tree.Load(root, tree.Options{Meta: meta, Epoch: -1, KeepOwner: meta == nil, Filter: func(rel string, _ bool) bool {
		for _, p := range dnfOwnState {
			if rel == p || strings.HasPrefix(rel, p+"/") {
				return false
			}
		}
		return true
	}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	n.Walk(func(x *tree.Node) error {
		if x.Path == "" {
			return nil
		}
		desc := fmt.Sprintf("%v %04o %d:%d", x.Kind, x.Mode, x.UID, x.GID)
		switch x.Kind {
		case tree.Symlink:
			desc += " -> " + x.Target
		case tree.Regular:
			b, _ := os.ReadFile(x.HostPath)
			desc += fmt.Sprintf(" sha256=%x mtime=%d links=%d", sha256.Sum256(b), x.Mtime, x.LinkCount())
			caps := x.Xattrs["security.capability"]
			if meta == nil {
				buf := make([]byte, 64)
				if n, err := unix.Lgetxattr(x.HostPath, "security.capability", buf); err == nil {
					caps = buf[:n]
				}
			}
			if len(caps) > 0 {
				desc += fmt.Sprintf(" caps=%x", caps)
			}
		}
		out[x.Path] = desc
		return nil
	})
	return out
}

// compareTrees checks that the tree rpm unpacked (want, real owners and
// xattrs) equals the one Install produced (got + meta).
func compareTrees(t *testing.T, want, got string, meta *tree.Meta) {
	t.Helper()
	w, g := describeTree(t, want, nil), describeTree(t, got, meta)
	var keys []string
	for k := range w {
		keys = append(keys, k)
	}
	for k := range g {
		if _, ok := w[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var diff bytes.Buffer
	for _, k := range keys {
		if w[k] != g[k] {
			fmt.Fprintf(&diff, "%s:\n  rpm: %s\n  sxb: %s\n", k, w[k], g[k])
		}
	}
	if diff.Len() > 0 {
		t.Errorf("trees differ:\n%s", diff.String())
	} else {
		t.Logf("rpm and sxb unpacked identical trees (%d paths)", len(keys))
	}
}

// TestCrossCheckDNFSynthetic compares sxb and dnf on a generated
// 5000-package repository (sonames, file dependencies only in filelists,
// "or" alternatives), parsing dnf's transaction table.
func TestCrossCheckDNFSynthetic(t *testing.T) {
	testenv.NeedTool(t, "dnf")
	dir := t.TempDir()
	n := 5000
	if v, err := strconv.Atoi(os.Getenv("SXB_RPM_SYNTH_N")); err == nil && v > 300 {
		n = v // a larger run by hand: SXB_RPM_SYNTH_N=40000
	}
	writeSyntheticRepo(t, dir, n)
	reqs := [][]string{{"p04999"}, {"p03000", "p01234"}, {"p00299"}}
	rng := rand.New(rand.NewSource(3))
	for i := 0; i < 5; i++ {
		reqs = append(reqs, []string{fmt.Sprintf("p%05d", rng.Intn(n)), fmt.Sprintf("p%05d", rng.Intn(n)), fmt.Sprintf("p%05d", rng.Intn(n))})
	}
	for _, req := range reqs {
		plan, err := Resolve(context.Background(), Request{Distribution: "opensuse", Repositories: []string{dir}, Packages: req, Insecure: true, CacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range plan.Packages {
			got = append(got, p.Name+"-"+p.EVR)
		}
		d := &dnfRunner{t: t, root: t.TempDir(), cache: t.TempDir(), repos: map[string]string{"big": "file://" + dir}}
		var args []string
		for _, a := range d.args(append([]string{"--assumeno", "install"}, req...)...) {
			if a != "-q" { // -q hides the transaction table
				args = append(args, a)
			}
		}
		cmd := exec.Command("dnf", args...)
		cmd.Env = append(os.Environ(), "RPM_FORCE_DEBIAN=1")
		out, _ := cmd.CombinedOutput()
		var want []string
		in := false
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			switch {
			case strings.HasPrefix(line, "Installing"):
				in = true
			case strings.HasPrefix(line, "Transaction Summary"):
				in = false
			case in && len(f) >= 4 && f[1] == "x86_64":
				want = append(want, f[0]+"-"+f[2])
			}
		}
		sort.Strings(want)
		if len(want) == 0 {
			t.Fatalf("%v: no dnf transaction:\n%s", req, out)
		}
		compareSets(t, strings.Join(req, ","), got, want)
	}
}

// zypperRoot runs zypper (libzypp: libsolv with openSUSE's settings) on
// a root of its own.
type zypperRoot struct {
	t    *testing.T
	root string
}

func (z *zypperRoot) run(args ...string) ([]byte, error) {
	cmd := exec.Command("zypper", append([]string{"--root", z.root, "--non-interactive", "--gpg-auto-import-keys"}, args...)...)
	cmd.Env = append(os.Environ(), "RPM_FORCE_DEBIAN=1")
	return cmd.CombinedOutput()
}

// newZypperRoot makes an empty root with repo added and refreshed.
func newZypperRoot(t *testing.T, repo string) *zypperRoot {
	t.Helper()
	z := &zypperRoot{t: t, root: t.TempDir()}
	if out, err := z.run("addrepo", "--no-gpgcheck", "file://"+repo, "fixture"); err != nil {
		t.Fatalf("zypper addrepo: %v\n%s", err, out)
	}
	if out, err := z.run("refresh"); err != nil {
		t.Fatalf("zypper refresh: %v\n%s", err, out)
	}
	return z
}

// transaction returns what zypper would install for pkgs (--dry-run
// changes nothing), as name-evr, sorted.
func (z *zypperRoot) transaction(weak bool, pkgs ...string) ([]string, error) {
	run := z.run
	flag := "--no-recommends"
	if weak {
		flag = "--recommends"
	}
	out, err := run(append([]string{"-x", "install", "--dry-run", flag}, pkgs...)...)
	if err != nil {
		return nil, fmt.Errorf("zypper install: %v\n%s", err, out)
	}
	var got []string
	re := regexp.MustCompile(`<solvable type="package" name="([^"]+)" edition="([^"]+)"`)
	sum := string(out)
	if i := strings.Index(sum, "<to-install>"); i >= 0 {
		sum = sum[i:]
		if j := strings.Index(sum, "</to-install>"); j >= 0 {
			sum = sum[:j]
		}
	} else {
		sum = ""
	}
	for _, m := range re.FindAllStringSubmatch(sum, -1) {
		got = append(got, m[1]+"-"+m[2])
	}
	sort.Strings(got)
	return got, nil
}

// TestCrossCheckZypper compares the scenario resolutions with zypper's.
// zypper does not read filelists.xml, so only repositories whose file
// dependencies are in primary.xml are compared.
func TestCrossCheckZypper(t *testing.T) {
	testenv.NeedTool(t, "zypper")
	repo := scenarioRepo(t)
	z := newZypperRoot(t, repo)
	check := func(req []string, weak bool) {
		plan, err := Resolve(context.Background(), Request{Distribution: "opensuse", Repositories: []string{repo},
			Packages: req, Insecure: true, CacheDir: t.TempDir(), WithRecommends: weak})
		if err != nil {
			t.Errorf("%v: %v", req, err)
			return
		}
		var got []string
		for _, p := range plan.Packages {
			got = append(got, p.Name+"-"+p.EVR)
		}
		want, err := z.transaction(weak, req...)
		if err != nil {
			t.Errorf("%v: %v", req, err)
			return
		}
		what := strings.Join(req, ",")
		if weak {
			what += " (weak)"
		}
		compareWith(t, "zypper", what, got, want)
	}
	for _, sc := range scenarios {
		check(sc.req, false)
	}
	for _, sc := range weakScenarios {
		check(sc.req, true)
	}
}
