package pacman

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/builtins/pacman/pacmantest"
	"github.com/sxb-build/sxb/builtins/tree"
)

// TestResolveErrors checks what cannot be installed is refused with the
// reason and the dependency chain, as pacman refuses it.
func TestResolveErrors(t *testing.T) {
	fx := pacmantest.Get(t)
	cases := []struct {
		targets []string
		want    string
	}{
		{[]string{"fx-broken"}, "fx-broken -> fx-lib>=9 -> no package satisfies it (core has fx-lib 2.0-1)"},
		{[]string{"fx-tool", "fx-conflict"}, "fx-conflict -> conflicts with fx-tool 1.0-1 (fx-tool), which the request also needs: unresolvable package conflict"},
		{[]string{"fx-tol"}, `fx-tol -> target not found in core, extra (x86_64) (did you mean "fx-tool"?)`},
		{[]string{"fx-lib>3"}, "fx-lib>3 -> target not found"},
		{[]string{"nosuch/fx-lib"}, `no repository "nosuch"`},
	}
	for _, c := range cases {
		_, err := Resolve(context.Background(), fixtureRequest(t, fx, fx.Mirror, c.targets...))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.targets, err, c.want)
		}
		if _, out, err := oracle(t, fx.PacmanConf, fx.PacmanGnuPG, c.targets); err == nil {
			t.Errorf("%v: pacman installed it\n%s", c.targets, out)
		}
	}
	if _, err := Resolve(context.Background(), Request{Release: "2024.01.01", CacheDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), `Arch Linux has one release, "rolling"`) {
		t.Errorf("release: %v", err)
	}
	if _, err := Resolve(context.Background(), Request{Arch: "ppc64-le", CacheDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "not built by Arch Linux") {
		t.Errorf("architecture: %v", err)
	}
	req := fixtureRequest(t, fx, fx.Mirror, "fx-tool")
	req.Repositories = []string{"testing"}
	if _, err := Resolve(context.Background(), req); err == nil || !strings.Contains(err.Error(), `unknown repository "testing"`) {
		t.Errorf("repositories: %v", err)
	}
}

// TestRepositories checks the pacman.conf the defaults amount to.
func TestRepositories(t *testing.T) {
	cases := []struct {
		req  Request
		arch string
		want []string
	}{
		{Request{}, "x86_64", []string{"core=https://fastly.mirror.pkgbuild.com/core/os/x86_64", "extra=https://fastly.mirror.pkgbuild.com/extra/os/x86_64"}},
		{Request{}, "aarch64", []string{"core=http://mirror.archlinuxarm.org/aarch64/core", "extra=http://mirror.archlinuxarm.org/aarch64/extra", "alarm=http://mirror.archlinuxarm.org/aarch64/alarm"}},
		{Request{Mirror: "/srv/arch/", Repositories: []string{"extra", "core-testing", "multilib"}}, "x86_64",
			[]string{"core-testing=file:///srv/arch/core-testing/os/x86_64", "multilib=file:///srv/arch/multilib/os/x86_64", "core=file:///srv/arch/core/os/x86_64", "extra=file:///srv/arch/extra/os/x86_64"}},
		{Request{Repositories: []string{"mine=https://example.org/$repo/$arch/", "extra=file:///e"}}, "x86_64",
			[]string{"mine=https://example.org/mine/x86_64", "core=https://fastly.mirror.pkgbuild.com/core/os/x86_64", "extra=file:///e"}},
	}
	for _, c := range cases {
		rs, err := c.req.repositories(c.arch)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rs {
			got = append(got, r.name+"="+r.server)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%+v %s:\n got %v\nwant %v", c.req, c.arch, got, c.want)
		}
	}
}

var pacmanQ = regexp.MustCompile(`(?m)^(\S+) (\S+)$`)

func queriedSet(t *testing.T, root string) map[string]string {
	out := map[string]string{}
	for _, m := range pacmanQ.FindAllStringSubmatch(queried(t, root), -1) {
		out[m[1]] = m[2]
	}
	return out
}

// TestExtensionOnBase resolves an extension against a base tree's local
// database and compares with pacman -S --needed run on the base: the
// same packages are added, the extension's database lists only them, and
// the base's hooks the transaction triggers are recorded.
func TestExtensionOnBase(t *testing.T) {
	fx := pacmantest.Get(t)
	baseTargets := []string{"fx-lib", "fx-hook", "fx-impl-a"}
	extTargets := []string{"fx-tool", "fx-group", "fx-extra-dep"}
	// pacman: the base, then the extension's packages on top.
	root, out, err := oracle(t, fx.PacmanConf, fx.PacmanGnuPG, baseTargets)
	if err != nil {
		t.Fatalf("pacman: %v\n%s", err, out)
	}
	before := queriedSet(t, root)
	logFile := filepath.Join(t.TempDir(), "log")
	args := []string{"--root", root, "--dbpath", filepath.Join(root, "var/lib/pacman"), "--config", fx.PacmanConf,
		"--gpgdir", fx.PacmanGnuPG, "--cachedir", t.TempDir(), "--logfile", logFile,
		"--hookdir", filepath.Join(root, "etc/pacman.d/hooks"), "--noconfirm", "--noscriptlet", "--needed", "-S"}
	if out, err := exec.Command("pacman", append(args, extTargets...)...).CombinedOutput(); err != nil {
		t.Fatalf("pacman: %v\n%s", err, out)
	}
	added := map[string]string{}
	for n, v := range queriedSet(t, root) {
		if before[n] != v {
			added[n] = v
		}
	}
	// sxb: the same two steps.
	base, _, _, _ := sxbInstall(t, fixtureRequest(t, fx, fx.Mirror, baseTargets...), true)
	req := fixtureRequest(t, fx, fx.Mirror, extTargets...)
	req.BaseRoot = base
	ext, _, plan, res := sxbInstall(t, req, true)
	got := map[string]string{}
	for _, p := range plan.Packages {
		got[p.Name] = p.Version
	}
	if !reflect.DeepEqual(got, added) {
		t.Errorf("extension packages:\n got %v\nwant %v (pacman)", got, added)
	}
	if q := queriedSet(t, ext); !reflect.DeepEqual(q, added) {
		t.Errorf("pacman -Q in the extension tree: %v, want %v", q, added)
	}
	if len(plan.Base) != len(before) {
		t.Errorf("plan.Base %v, want the %d base packages", plan.Base, len(before))
	}
	// Hooks: pacman logged what it ran; sxb recorded the same hooks.
	log, _ := os.ReadFile(logFile)
	var ran []string
	for _, m := range regexp.MustCompile(`running '([^']+)'`).FindAllStringSubmatch(string(log), -1) {
		ran = append(ran, m[1])
	}
	var recorded []string
	for _, s := range res.Steps {
		if s.Kind == "hook" {
			recorded = append(recorded, s.Hook)
		}
	}
	sort.Strings(ran)
	sort.Strings(recorded)
	if len(ran) == 0 || !reflect.DeepEqual(ran, recorded) {
		t.Errorf("hooks: pacman ran %v, sxb recorded %v", ran, recorded)
	}
	for _, s := range res.Steps {
		if s.Hook == "50-fx.hook" {
			if want := []string{"usr/bin/fx", "usr/bin/fx-hard", "usr/bin/fx-link"}; !reflect.DeepEqual(s.Targets, want) {
				t.Errorf("50-fx.hook targets %v, want %v", s.Targets, want)
			}
			if s.When != "PostTransaction" || s.Exec != "/usr/bin/fx-register" || !s.NeedsTargets {
				t.Errorf("50-fx.hook: %+v", s)
			}
		}
	}
	var scriptlets []string
	for _, s := range res.Steps {
		if s.Kind == "scriptlet" {
			scriptlets = append(scriptlets, s.String())
			if _, err := os.Stat(filepath.Join(ext, s.Script)); err != nil {
				t.Errorf("%s: script %s not in the tree: %v", s, s.Script, err)
			}
		}
	}
	if want := []string{"pre_install of fx-tool", "post_install of fx-tool"}; !reflect.DeepEqual(scriptlets, want) {
		t.Errorf("scriptlets %v, want %v", scriptlets, want)
	}
}

// TestLockRoundTrip pins a plan, reads the lock back and resolves with
// it: the same plan, without the databases (the mirror is gone).
func TestLockRoundTrip(t *testing.T) {
	fx := pacmantest.Get(t)
	mirror := fx.CopyMirror(t)
	req := fixtureRequest(t, fx, mirror, "fx-tool", "fx-virtual", "fx-group")
	plan, err := Resolve(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LockOf(plan).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	l, err := ParseLock(b, "lock")
	if err != nil {
		t.Fatal(err)
	}
	// The databases go away: a locked resolution must not read them.
	for _, db := range []string{"core/os/x86_64/core.db", "extra/os/x86_64/extra.db"} {
		os.Remove(filepath.Join(mirror, db))
	}
	req.Lock = l
	again, err := Resolve(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if again.Key() != plan.Key() {
		t.Errorf("locked plan differs:\n%+v\n%+v", again.Packages, plan.Packages)
	}
	root := filepath.Join(t.TempDir(), "tree")
	if _, err := Install(context.Background(), again, root, tree.NewMeta(), InstallOptions{}); err != nil {
		t.Fatalf("installing the locked plan: %v", err)
	}
	req.Packages = append(req.Packages, "fx-xz")
	if _, err := Resolve(context.Background(), req); err == nil || !strings.Contains(err.Error(), "fx-xz are not in the lock") {
		t.Errorf("a package the lock lacks: %v", err)
	}
	for _, bad := range []string{`{"version": 2}`, `{"version": 1, "packages": [{"name": "a"}]}`, `{"version": 1, "x": 1}`} {
		if _, err := ParseLock([]byte(bad), "lock"); err == nil {
			t.Errorf("ParseLock(%s) accepted it", bad)
		}
	}
}
