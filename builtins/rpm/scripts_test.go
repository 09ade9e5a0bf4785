package rpm

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sxb-build/sxb/builtins/rpm/rpmtest"
	"github.com/sxb-build/sxb/builtins/sandbox"
	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/arch"
	"github.com/sxb-build/sxb/internal/testenv"
)

// logLine is a scriptlet body appending what it was called with (and its
// stdin, for file triggers) to the log every scriptlet of the fixture
// writes.
func logLine(who string, stdin bool) string {
	if stdin {
		return `{ echo "` + who + ` $#:$*"; cat; } >> /usr/share/fx-log` + "\n"
	}
	return `echo "` + who + ` $#:$*" >> /usr/share/fx-log` + "\n"
}

// scriptPackages are the fixture of the scriptlet tests: "sh" (a static
// busybox as /bin/sh) and "trig" form a base; alpha, beta and gamma are
// installed on it. Every scriptlet and trigger appends to
// /usr/share/fx-log.
var scriptPackages = []rpmtest.Pkg{
	{Name: "sh", Version: "1", Arch: arch.Native().RPM(), Tags: "Provides: /bin/sh",
		Install: `mkdir -p %{buildroot}/usr/bin %{buildroot}/usr/share
cp /bin/busybox %{buildroot}/usr/bin/busybox
for a in sh cat mkdir touch ln nc; do ln -s busybox %{buildroot}/usr/bin/$a; done
ln -s usr/bin %{buildroot}/bin`,
		Files: "/bin\n/usr/bin/*\n%dir /usr/share"},
	{Name: "trig", Version: "1", Tags: "Requires(post): sh",
		Install: "mkdir -p %{buildroot}/usr/lib/fx\necho trig > %{buildroot}/usr/lib/fx/trig.so",
		Files:   "/usr/lib/fx",
		Scripts: "%post\n" + logLine("trig %post", false) +
			"%filetriggerin -- /usr/lib/fx\n" + logLine("trig %filetriggerin", true) +
			"%transfiletriggerin -- /usr/share/fx/data\n" + logLine("trig %transfiletriggerin", true) +
			"%triggerin -- gamma\n" + logLine("trig %triggerin gamma", false)},
	{Name: "alpha", Version: "1", Tags: "Requires(pre): sh\nRequires(post): sh",
		Install: "mkdir -p %{buildroot}/usr/lib/fx %{buildroot}/usr/share/fx/data\necho a > %{buildroot}/usr/lib/fx/alpha.so\necho a > %{buildroot}/usr/share/fx/data/a",
		Files:   "/usr/lib/fx/alpha.so\n/usr/share/fx",
		Scripts: "%pretrans\n" + logLine("alpha %pretrans", false) +
			"%pre\n" + logLine("alpha %pre", false) + "mkdir -p /usr/share/fx-made\ntouch /usr/share/fx-made/by-pre\n" +
			"%post\n" + logLine("alpha %post", false) +
			"%posttrans\n" + logLine("alpha %posttrans", false)},
	{Name: "beta", Version: "1", Tags: "Requires: alpha\nRequires(post): sh",
		Install: "mkdir -p %{buildroot}/usr/lib/fx %{buildroot}/usr/share/fx/data\necho b > %{buildroot}/usr/lib/fx/beta.so\necho b > %{buildroot}/usr/share/fx/data/b",
		Files:   "/usr/lib/fx/beta.so\n/usr/share/fx/data/b",
		Scripts: "%post\n" + logLine("beta %post", false) +
			"%filetriggerin -P 5000 -- /usr/lib/fx\n" + logLine("beta %filetriggerin", true) +
			"%transfiletriggerin -- /usr/share/fx/data /usr/lib/fx\n" + logLine("beta %transfiletriggerin", true)},
	{Name: "gamma", Version: "2", Tags: "Requires(post): sh",
		Install: "mkdir -p %{buildroot}/usr/share/fx\necho g > %{buildroot}/usr/share/fx/gamma",
		Files:   "/usr/share/fx/gamma",
		Scripts: "%post\n" + logLine("gamma %post", false)},
	{Name: "failing", Version: "1", Tags: "Requires(post): sh",
		Install: "mkdir -p %{buildroot}/usr/share/fx\necho f > %{buildroot}/usr/share/fx/failing",
		Files:   "/usr/share/fx/failing",
		Scripts: "%post\necho 'cannot frobnicate' >&2\nexit 3\n"},
	{Name: "svcpkg", Version: "1", Tags: "Requires(pre): sh",
		Install: "mkdir -p %{buildroot}/usr/share/fx\necho s > %{buildroot}/usr/share/fx/svc-owned",
		Files:   "%attr(0640,svc,svc) /usr/share/fx/svc-owned",
		Scripts: "%pre\nmkdir -p /etc\necho 'svc:x:481:482::/:/sbin/nologin' >> /etc/passwd\necho 'svc:x:482:' >> /etc/group\n"},
	{Name: "hostile", Version: "1", Tags: "Requires(post): sh",
		Install: "mkdir -p %{buildroot}/usr/share/fx\necho h > %{buildroot}/usr/share/fx/hostile",
		Files:   "/usr/share/fx/hostile",
		Scripts: `%post
t=$(cat /etc/hostile-target); p=$(cat /etc/hostile-port)
mkdir -p "$t"; echo pwned > "$t/abs"
ln -s "../../../../../../../../../..$t/link" /usr/share/fx/esc; echo pwned > /usr/share/fx/esc
cat /proc/1/environ > /usr/share/fx/environ
echo hello | nc -w 1 127.0.0.1 "$p"
echo "nc $?" > /usr/share/fx/nc
exit 0
`},
	{Name: "luapkg", Version: "1", Tags: "Requires(post): sh",
		Install: "mkdir -p %{buildroot}/usr/share/fx\necho l > %{buildroot}/usr/share/fx/lua",
		Files:   "/usr/share/fx/lua",
		Scripts: "%post -p <lua>\nprint(\"hi\")\n%posttrans\n" + logLine("luapkg %posttrans", false)},
}

var (
	scriptRepoOnce sync.Once
	scriptRepoDir  string
)

// scriptRepo builds the fixture repository once per test binary.
func scriptRepo(t *testing.T) string {
	t.Helper()
	fx := seedRepo(t)
	scriptRepoOnce.Do(func() {
		dir := filepath.Join(fx.dir, "scripts")
		fx.env.Build(t, dir, scriptPackages)
		fx.env.CreateRepo(t, dir, false, false)
		scriptRepoDir = dir
	})
	if scriptRepoDir == "" {
		t.Fatal("the scriptlet repository failed to build")
	}
	return scriptRepoDir
}

// installScripted resolves pkgs (over base, when not "") and installs them
// into dir with opts, saving the tree's metadata next to it.
func installScripted(t *testing.T, dir, base string, opts InstallOptions, pkgs ...string) (*tree.Meta, error) {
	t.Helper()
	plan, err := Resolve(context.Background(), Request{Distribution: "opensuse", Release: "tumbleweed",
		Repositories: []string{scriptRepo(t)}, Packages: pkgs, Insecure: true, CacheDir: filepath.Join(t.TempDir(), "cache"), BaseRoot: base})
	if err != nil {
		t.Fatal(err)
	}
	meta := tree.NewMeta()
	opts.BaseRoot = base
	if err := Install(context.Background(), plan, dir, meta, opts); err != nil {
		return meta, err
	}
	if err := meta.Save(tree.MetaPath(dir)); err != nil {
		t.Fatal(err)
	}
	return meta, nil
}

// TestScriptletsAgainstRpm installs a base (sh, trig) and then alpha,
// beta and gamma on it, once with sxb (the second install an extension
// over the base) and once with rpm -i --root into one root, and compares
// what the scriptlets and triggers wrote: which ran, in which order, with
// which arguments and file lists.
func TestScriptletsAgainstRpm(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "rpm")
	repo := scriptRepo(t)
	work := t.TempDir()
	base, ext := filepath.Join(work, "base"), filepath.Join(work, "ext")
	opts := InstallOptions{Scripts: true, Epoch: 1700000000}
	if _, err := installScripted(t, base, "", opts, "sh", "trig"); err != nil {
		t.Fatal(err)
	}
	var notRun []string
	opts.NotRun = func(l []string) { notRun = l }
	if _, err := installScripted(t, ext, base, opts, "alpha", "beta", "gamma"); err != nil {
		t.Fatal(err)
	}
	if notRun != nil {
		t.Errorf("not run: %q", notRun)
	}

	// The same with rpm.
	rroot := filepath.Join(work, "rpmroot")
	rpmi := func(names ...string) {
		args := []string{"--root", rroot, "--dbpath", "/var/lib/rpm", "--nosignature", "-i"}
		for _, n := range names {
			m, _ := filepath.Glob(filepath.Join(repo, n+"-[0-9]*.rpm"))
			if len(m) != 1 {
				t.Fatalf("%s: %v", n, m)
			}
			args = append(args, m[0])
		}
		out, err := exec.Command("rpm", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("rpm %q: %v\n%s", args, err, out)
		}
	}
	rpmi("sh", "trig")
	baseWant, err := os.ReadFile(filepath.Join(rroot, "usr/share/fx-log"))
	if err != nil {
		t.Fatal(err)
	}
	rpmi("alpha", "beta", "gamma")
	want, err := os.ReadFile(filepath.Join(rroot, "usr/share/fx-log"))
	if err != nil {
		t.Fatal(err)
	}
	// rpm before 4.19 gives file triggers a single argument, 0; since
	// 4.19 (Fedora 39, Tumbleweed) they get the number of installed
	// instances of the trigger's package and, for %filetriggerin, of the
	// package whose files set it off: sxb passes those.
	current := func(b []byte) []byte {
		s := strings.ReplaceAll(string(b), " %filetriggerin 1:0\n", " %filetriggerin 2:1 1\n")
		return []byte(strings.ReplaceAll(s, " %transfiletriggerin 1:0\n", " %transfiletriggerin 1:1\n"))
	}
	baseWant, want = current(baseWant), current(want)
	if got, _ := os.ReadFile(filepath.Join(base, "usr/share/fx-log")); string(got) != string(baseWant) {
		t.Errorf("base: sxb's scriptlets wrote\n%s\nrpm's\n%s", got, baseWant)
	}
	// The extension's tree holds the log copied up from the base and
	// appended to.
	if got, _ := os.ReadFile(filepath.Join(ext, "usr/share/fx-log")); string(got) != string(want) {
		t.Errorf("extension: sxb's scriptlets wrote\n%s\nrpm's\n%s", got, want)
	}
	if _, err := os.Stat(filepath.Join(ext, "usr/share/fx-made/by-pre")); err != nil {
		t.Errorf("the file %%pre made: %v", err)
	}
	for _, f := range []string{"usr/lib/fx/trig.so", "usr/bin/busybox"} {
		if _, err := os.Lstat(filepath.Join(ext, f)); err == nil {
			t.Errorf("the base's /%s is in the extension's tree", f)
		}
	}
}

func TestScriptletFailures(t *testing.T) {
	testenv.NeedRoot(t)
	work := t.TempDir()
	base := filepath.Join(work, "base")
	if _, err := installScripted(t, base, "", InstallOptions{Scripts: true}, "sh"); err != nil {
		t.Fatal(err)
	}
	_, err := installScripted(t, filepath.Join(work, "ext"), base, InstallOptions{Scripts: true}, "failing")
	if err == nil {
		t.Fatal("a failing post scriptlet did not fail the installation")
	}
	for _, want := range []string{"failing %post scriptlet failed (exit status 3)", "cannot frobnicate"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestScriptletsOff(t *testing.T) {
	work := t.TempDir()
	var notRun []string
	opts := InstallOptions{NotRun: func(l []string) { notRun = l }}
	dir := filepath.Join(work, "tree")
	if _, err := installScripted(t, dir, "", opts, "sh", "trig", "alpha", "beta"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "usr/share/fx-log")); err == nil {
		t.Error("scriptlets ran with Scripts false")
	}
	got := strings.Join(notRun, ", ")
	for _, want := range []string{"alpha %pretrans", "alpha %pre", "alpha %post", "beta %filetriggerin", "trig %transfiletriggerin", "alpha %posttrans"} {
		if !strings.Contains(got, want) {
			t.Errorf("not-run list %q lacks %q", got, want)
		}
	}
}

// TestLuaScriptletsReported: a lua scriptlet is reported and warned
// about, the package's other scriptlets run.
func TestLuaScriptletsReported(t *testing.T) {
	testenv.NeedRoot(t)
	work := t.TempDir()
	base := filepath.Join(work, "base")
	if _, err := installScripted(t, base, "", InstallOptions{Scripts: true}, "sh"); err != nil {
		t.Fatal(err)
	}
	var notRun, warnings []string
	opts := InstallOptions{Scripts: true, NotRun: func(l []string) { notRun = l }, Warn: func(s string) { warnings = append(warnings, s) }}
	ext := filepath.Join(work, "ext")
	if _, err := installScripted(t, ext, base, opts, "luapkg"); err != nil {
		t.Fatal(err)
	}
	if strings.Join(notRun, ",") != "luapkg %post (lua)" || len(warnings) != 1 || !strings.Contains(warnings[0], "luapkg %post (lua)") {
		t.Errorf("not run %q, warnings %q", notRun, warnings)
	}
	if b, _ := os.ReadFile(filepath.Join(ext, "usr/share/fx-log")); string(b) != "luapkg %posttrans 1:1\n" {
		t.Errorf("log %q", b)
	}
}

// TestScriptletsNoEmulator: when the tree's executables cannot run here,
// nothing runs, one warning lists what was skipped and NotRun gets it.
func TestScriptletsNoEmulator(t *testing.T) {
	old := findScriptEmulator
	findScriptEmulator = func(a string) (*sandbox.Emulator, error) {
		return nil, fmt.Errorf("%s: %w", a, sandbox.ErrNoEmulator)
	}
	defer func() { findScriptEmulator = old }()
	var notRun, warnings []string
	opts := InstallOptions{Scripts: true, NotRun: func(l []string) { notRun = l }, Warn: func(s string) { warnings = append(warnings, s) }}
	dir := filepath.Join(t.TempDir(), "tree")
	if _, err := installScripted(t, dir, "", opts, "sh", "trig", "alpha"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "usr/share/fx-log")); err == nil {
		t.Error("scriptlets ran without an emulator")
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "no binfmt_misc emulator") || !strings.Contains(warnings[0], "alpha %post") {
		t.Errorf("warnings %q", warnings)
	}
	if got := strings.Join(notRun, ", "); !strings.Contains(got, "trig %filetriggerin") || !strings.Contains(got, "alpha %pretrans") {
		t.Errorf("not run: %q", got)
	}
}

// TestScriptletUsers: owner names a %pre adds (useradd) map to their ids,
// as rpm maps them after %pre; without scripts they stay root, with a
// warning.
func TestScriptletUsers(t *testing.T) {
	testenv.NeedRoot(t)
	work := t.TempDir()
	base := filepath.Join(work, "base")
	if _, err := installScripted(t, base, "", InstallOptions{Scripts: true}, "sh"); err != nil {
		t.Fatal(err)
	}
	for _, scripts := range []bool{true, false} {
		var warnings []string
		opts := InstallOptions{Scripts: scripts, Warn: func(s string) { warnings = append(warnings, s) }}
		meta, err := installScripted(t, filepath.Join(work, fmt.Sprint("ext", scripts)), base, opts, "svcpkg")
		if err != nil {
			t.Fatal(err)
		}
		o, _ := meta.Get("usr/share/fx/svc-owned")
		uid, gid := *o.UID, *o.GID
		switch {
		case scripts && (uid != 481 || gid != 482 || len(warnings) != 0):
			t.Errorf("scripts: owner %d:%d, warnings %q; want 481:482 and none", uid, gid, warnings)
		case !scripts && (uid != 0 || gid != 0 || len(warnings) != 2):
			t.Errorf("no scripts: owner %d:%d, warnings %q; want root and two warnings", uid, gid, warnings)
		}
	}
}

// TestHostileScriptlet: a %post writing to absolute host paths and
// through ".." symlinks, reading /proc/1/environ and connecting to a
// listener on the host's loopback changes nothing on the host, sees none
// of the builder's environment and reaches no host socket.
func TestHostileScriptlet(t *testing.T) {
	testenv.NeedRoot(t)
	t.Setenv("SXB_TEST_SECRET", "hunter2")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	connected := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			connected <- struct{}{}
			c.Close()
		}
	}()
	work := t.TempDir()
	target := filepath.Join(work, "host")
	base := filepath.Join(work, "base")
	if _, err := installScripted(t, base, "", InstallOptions{Scripts: true}, "sh"); err != nil {
		t.Fatal(err)
	}
	// The scriptlet learns where to aim from the base.
	os.MkdirAll(filepath.Join(base, "etc"), 0o755)
	os.WriteFile(filepath.Join(base, "etc/hostile-target"), []byte(target+"\n"), 0o644)
	os.WriteFile(filepath.Join(base, "etc/hostile-port"), []byte(fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)+"\n"), 0o644)
	ext := filepath.Join(work, "ext")
	if _, err := installScripted(t, ext, base, InstallOptions{Scripts: true}, "hostile"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(target); err == nil {
		t.Errorf("the scriptlet created %s on the host", target)
	}
	if b, err := os.ReadFile(filepath.Join(ext, "usr/share/fx/nc")); err != nil || string(b) == "nc 0\n" {
		t.Errorf("nc in the sandbox: %q, %v", b, err)
	}
	select {
	case <-connected:
		t.Error("the scriptlet reached a listener on the host's loopback")
	default:
	}
	if b, err := os.ReadFile(filepath.Join(ext, "usr/share/fx/environ")); err != nil || strings.Contains(string(b), "hunter2") {
		t.Errorf("/proc/1/environ in the sandbox: %q, %v", b, err)
	}
	// It ran: its link is in the tree (what it wrote through it went to
	// the sandbox's own /tmp, like the absolute write).
	if _, err := os.Lstat(filepath.Join(ext, "usr/share/fx/esc")); err != nil {
		t.Errorf("the scriptlet's link: %v", err)
	}
}
