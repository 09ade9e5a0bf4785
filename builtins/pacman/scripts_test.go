package pacman

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/builtins/pacman/pacmantest"
	"github.com/sxb-build/sxb/builtins/tree"
)

// pacmanInto runs pacman -S targets on root as mkosi does, with
// scriptlets and hooks, and returns its output.
func pacmanInto(t *testing.T, fx *pacmantest.Fixture, root string, targets ...string) (string, error) {
	t.Helper()
	os.MkdirAll(filepath.Join(root, "var/lib/pacman"), 0o755)
	args := []string{"--root", root, "--dbpath", filepath.Join(root, "var/lib/pacman"), "--config", fx.PacmanConf,
		"--gpgdir", fx.PacmanGnuPG, "--cachedir", t.TempDir(), "--logfile", filepath.Join(t.TempDir(), "pacman.log"),
		"--hookdir", filepath.Join(root, "etc/pacman.d/hooks"), "--noconfirm", "--noprogressbar", "--needed", "-Sy"}
	out, err := exec.Command("pacman", append(args, targets...)...).CombinedOutput()
	return string(out), err
}

// sxbScripts resolves and installs req into a new tree with the scripts
// run, and returns the tree, its metadata and the warnings.
func sxbScripts(t *testing.T, req Request) (string, *tree.Meta, []string, error) {
	t.Helper()
	plan, err := Resolve(context.Background(), req)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	root := filepath.Join(t.TempDir(), "tree")
	meta := tree.NewMeta()
	var warnings []string
	_, err = Install(context.Background(), plan, root, meta, InstallOptions{WithDocs: true, Scripts: true,
		Warn: func(s string) { warnings = append(warnings, s) }})
	if err == nil {
		if err := meta.Save(tree.MetaPath(root)); err != nil {
			t.Fatal(err)
		}
	}
	return root, meta, warnings, err
}

// scriptMade lists the paths of a snapshot no package of root's local
// database lists: what scriptlets, ldconfig and hooks made.
func scriptMade(t *testing.T, root string, snap map[string]entry) map[string]bool {
	t.Helper()
	listed := map[string]bool{}
	dirs, _ := filepath.Glob(filepath.Join(root, LocalDBPath, "*", "files"))
	for _, f := range dirs {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			listed[strings.TrimSuffix(l, "/")] = true
		}
	}
	out := map[string]bool{}
	for p := range snap {
		if !listed[p] {
			out[p] = true
		}
	}
	return out
}

// withoutScriptTimes zeroes the times of what scripts made (they differ
// from run to run in both trees; images clamp them).
func withoutScriptTimes(snap map[string]entry, made map[string]bool) map[string]entry {
	for p, e := range snap {
		if made[p] {
			e.mtime = 0
			snap[p] = e
		}
	}
	return snap
}

// wantTrace is what the fixture's scriptlets and hooks write to
// /var/lib/fx-trace when filesystem, fx-bash, fx-hooks, fx-scripted and
// fx-failing are installed in one transaction: the scriptlets in install
// order with pacman's arguments, then the PostTransaction hooks in name
// order without ".hook" with their targets on stdin. fx-pre.hook is not
// there before the transaction, fx-dep.hook lacks its dependency,
// fx-remove.hook is for removals, fx-masked.hook is masked and the
// /etc fx-override.hook replaces the one in /usr/share.
const wantTrace = `post_install fx-failing 1.0-1
pre_install fx-scripted 1.0-1
post_install fx-scripted 1.0-1 umask 0022 in /
fx.hook usr/share/fx-scripted/
fx.hook usr/share/fx-scripted/a b
fx.hook usr/share/fx-scripted/data
fx-b.hook fx-failing
fx-b.hook fx-hooks
fx-b.hook fx-scripted
fx-override.hook from etc; umask 0022; in /
`

// TestScriptsLikePacman installs the fixture's scripted packages with
// Debian's pacman (scriptlets and hooks run, as root, in a chroot) and
// with sxb (in the sandbox) and compares everything the trees hold: the
// trace the scriptlets and hooks write (arguments, order, targets on
// stdin, umask, working directory), the file post_install writes,
// ldconfig's cache and links, and every packaged file. A failing
// scriptlet and a hook whose dependency is missing are warnings for sxb
// and errors pacman reports and goes past. Then the same as an extension
// on a base holding the hooks: the base's PreTransaction hook runs
// before the packages are unpacked.
func TestScriptsLikePacman(t *testing.T) {
	fx := pacmantest.Get(t)
	targets := []string{"filesystem", "fx-bash", "fx-failing", "fx-hooks", "fx-scripted"}
	want := filepath.Join(t.TempDir(), "root")
	out, err := pacmanInto(t, fx, want, targets...)
	if err != nil {
		t.Fatalf("pacman: %v\n%s", err, out)
	}
	for _, s := range []string{"fx-failing: cannot set things up", "error: command failed to execute correctly",
		"unable to run hook fx-dep.hook: could not satisfy dependencies"} {
		if !strings.Contains(out, s) {
			t.Errorf("pacman's output lacks %q:\n%s", s, out)
		}
	}
	got, meta, warnings, err := sxbScripts(t, fixtureRequest(t, fx, fx.Mirror, targets...))
	if err != nil {
		t.Fatalf("Install: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(want, "var/lib/fx-trace")); string(b) != wantTrace {
		t.Errorf("pacman's trace:\n%s\nthe test expects:\n%s", b, wantTrace)
	}
	if b, _ := os.ReadFile(filepath.Join(got, "var/lib/fx-trace")); string(b) != wantTrace {
		t.Errorf("sxb's trace:\n%s\nwant (pacman's):\n%s", b, wantTrace)
	}
	wantWarnings := []string{
		"hook fx-dep.hook was not run: its dependency fx-not-there is not installed",
		"post_install of fx-failing failed (exit status 3): fx-failing: cannot set things up",
	}
	if strings.Join(warnings, "\n") != strings.Join(wantWarnings, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warnings, "\n"), strings.Join(wantWarnings, "\n"))
	}
	ws, gs := snapshot(t, want, nil), snapshot(t, got, meta)
	made := scriptMade(t, want, ws)
	for _, p := range []string{"var/lib/fx-trace", "etc/fx-scripted.generated", "etc/ld.so.cache", "usr/lib/libz.so.1"} {
		if !made[p] {
			t.Errorf("pacman's scripts did not make /%s (made: %v)", p, made)
		}
	}
	diffTrees(t, withoutScriptTimes(ws, made), withoutScriptTimes(gs, made))
	compareLocalDB(t, want, got)

	t.Run("extension", func(t *testing.T) {
		baseTargets, extTargets := []string{"filesystem", "fx-bash", "fx-hooks"}, []string{"fx-scripted"}
		want := filepath.Join(t.TempDir(), "root")
		for _, step := range [][]string{baseTargets, extTargets} {
			if out, err := pacmanInto(t, fx, want, step...); err != nil {
				t.Fatalf("pacman: %v\n%s", err, out)
			}
		}
		base, _, _, err := sxbScripts(t, fixtureRequest(t, fx, fx.Mirror, baseTargets...))
		if err != nil {
			t.Fatalf("Install of the base: %v", err)
		}
		req := fixtureRequest(t, fx, fx.Mirror, extTargets...)
		req.BaseRoot = base
		ext, _, warnings, err := sxbScripts(t, req)
		if err != nil {
			t.Fatalf("Install of the extension: %v", err)
		}
		w, _ := os.ReadFile(filepath.Join(want, "var/lib/fx-trace"))
		if !strings.Contains(string(w), "fx-pre.hook ran\npre_install fx-scripted 1.0-1\n") {
			t.Errorf("pacman's trace has no PreTransaction hook before pre_install:\n%s", w)
		}
		// The extension's tree holds the trace copied up from the base
		// with the extension's lines added.
		g, _ := os.ReadFile(filepath.Join(ext, "var/lib/fx-trace"))
		if string(g) != string(w) {
			t.Errorf("sxb's trace:\n%s\nwant (pacman's):\n%s", g, w)
		}
		if len(warnings) != 1 || !strings.Contains(warnings[0], "fx-dep.hook") {
			t.Errorf("warnings %q, want the one about fx-dep.hook", warnings)
		}
		for _, rel := range []string{"etc/fx-scripted.generated", "usr/share/fx-scripted/data"} {
			if _, err := os.Lstat(filepath.Join(ext, rel)); err != nil {
				t.Errorf("the extension lacks /%s: %v", rel, err)
			}
		}
	})
}

// TestAbortingHook installs on a base whose PreTransaction hook fails
// with AbortOnFail: pacman refuses the transaction, and so does sxb,
// naming the hook, its exit status and what it printed, before anything
// is unpacked.
func TestAbortingHook(t *testing.T) {
	fx := pacmantest.Get(t)
	baseTargets := []string{"filesystem", "fx-bash", "fx-abort"}
	root := filepath.Join(t.TempDir(), "root")
	if out, err := pacmanInto(t, fx, root, baseTargets...); err != nil {
		t.Fatalf("pacman: %v\n%s", err, out)
	}
	if out, err := pacmanInto(t, fx, root, "fx-scripted"); err == nil || !strings.Contains(out, "fx-abort: the transaction is refused") {
		t.Errorf("pacman did not refuse the transaction: %v\n%s", err, out)
	}
	base, _, _, err := sxbScripts(t, fixtureRequest(t, fx, fx.Mirror, baseTargets...))
	if err != nil {
		t.Fatalf("Install of the base: %v", err)
	}
	req := fixtureRequest(t, fx, fx.Mirror, "fx-scripted")
	req.BaseRoot = base
	ext, _, _, err := sxbScripts(t, req)
	want := "installing packages: hook fx-abort.hook (PreTransaction) failed (exit status 4): fx-abort: the transaction is refused; " +
		"pacman aborts the transaction when a PreTransaction hook with AbortOnFail fails"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v\nwant %s", err, want)
	}
	if _, err := os.Lstat(filepath.Join(ext, "usr/share/fx-scripted")); err == nil {
		t.Errorf("the refused transaction unpacked fx-scripted")
	}
}

// TestHostileHook runs hooks that try to reach the build machine: one
// leaves its log as a symlink to a host file (sxb reads what commands
// leave confined to their output directory, so the file's content must
// not show up in the failure it reports), one writes to absolute paths
// of the host's; nothing on the host changes.
func TestHostileHook(t *testing.T) {
	fx := pacmantest.Get(t)
	dir, meta, _, _ := sxbInstall(t, fixtureRequest(t, fx, fx.Mirror, "filesystem", "fx-bash"), true)
	// The fixture's tree has bash but no ln: the host's (it needs libc
	// only, which fx-bash ships).
	ln, err := os.ReadFile("/bin/ln")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "usr/bin/ln"), ln, 0o755); err != nil {
		t.Fatal(err)
	}
	secretDir := t.TempDir()
	secret := filepath.Join(secretDir, "secret")
	if err := os.WriteFile(secret, []byte("host secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(secretDir, "written")
	sr := &scriptRun{dir: dir, meta: meta}
	fails, err := sr.runSteps(context.Background(), []Step{
		{Kind: "hook", Hook: "leak.hook", When: "PostTransaction", Argv: []string{"/usr/bin/bash", "-c",
			"echo visible; ln -sf " + secret + " " + stepsOutDir + "/0.log; exit 7"}},
		{Kind: "hook", Hook: "write.hook", When: "PostTransaction", Argv: []string{"/usr/bin/bash", "-c",
			"echo x > " + marker + "; echo y > " + secret}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Both fail: the first as it says, the second as the host's paths
	// do not exist inside.
	if len(fails) != 2 || fails[0].status != 7 || fails[1].status != 1 ||
		strings.Contains(fails[0].Error()+fails[1].Error(), "host secret") {
		t.Errorf("failures %v", fails)
	}
	if b, _ := os.ReadFile(secret); string(b) != "host secret\n" {
		t.Errorf("the host file was changed: %q", b)
	}
	if _, err := os.Lstat(marker); err == nil {
		t.Errorf("a hook wrote %s on the host", marker)
	}
}
