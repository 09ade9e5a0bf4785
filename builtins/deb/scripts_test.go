package deb

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sxb-build/sxb/builtins/installer"
	"github.com/sxb-build/sxb/builtins/sandbox"
	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/testenv"
)

func TestMain(m *testing.M) {
	sandbox.Init()
	if dir := os.Getenv(rootlessBaseEnv); dir != "" {
		// Run again as another user by TestScriptsRootless.
		if _, err := buildBase(filepath.Join(dir, "base"), filepath.Join(dir, "cache"), true); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	if scripted.dir != "" {
		os.RemoveAll(scripted.dir)
	}
	os.Exit(code)
}

// rootlessBaseEnv names the directory the test binary builds a scripted base
// in when TestScriptsRootless runs it as another user.
const rootlessBaseEnv = "SXB_DEB_TEST_ROOTLESS_BASE"

// scriptEpoch is the SOURCE_DATE_EPOCH of the scripted builds.
const scriptEpoch = 1700000000

// scripted is a bookworm base (systemd, udev and the Essential set) built
// once per test binary with its maintainer scripts run.
var scripted struct {
	once sync.Once
	dir  string
	root string
	meta *tree.Meta
	err  error
}

func scriptedBase(t *testing.T) (string, *tree.Meta) {
	t.Helper()
	testenv.NeedNetwork(t)
	scripted.once.Do(func() {
		scripted.dir, scripted.err = os.MkdirTemp("", "sxb-deb-scripted-")
		if scripted.err != nil {
			return
		}
		os.Chmod(scripted.dir, 0o755)
		scripted.root = filepath.Join(scripted.dir, "base")
		scripted.meta, scripted.err = buildBase(scripted.root, bookwormCache(t), true)
	})
	if scripted.err != nil {
		t.Fatal(scripted.err)
	}
	return scripted.root, scripted.meta
}

// buildBase installs the bookworm base into root, with or without scripts,
// and saves its Meta beside it.
func buildBase(root, cache string, scripts bool) (*tree.Meta, error) {
	ctx := context.Background()
	plan, err := Resolve(ctx, Request{Distribution: "debian", Release: "bookworm", Arch: "x86-64",
		Packages: []string{"systemd", "udev"}, BaseImage: true, CacheDir: cache})
	if err != nil {
		return nil, err
	}
	meta := tree.NewMeta()
	if err := Install(ctx, plan, root, meta, InstallOptions{WithDocs: true, Scripts: scripts, Epoch: scriptEpoch}); err != nil {
		return nil, err
	}
	return meta, meta.Save(tree.MetaPath(root))
}

// TestBookwormBaseScripts: the base's maintainer scripts ran as dpkg runs
// them: every package configured, users, shadow, alternatives and the
// loader cache made by the scripts, owners they set recorded in the Meta,
// and the files given back to the builder.
func TestBookwormBaseScripts(t *testing.T) {
	testenv.NeedTool(t, "dpkg", "dpkg-query")
	root, meta := scriptedBase(t)
	if out, err := exec.Command("dpkg", "--root="+root, "--audit").CombinedOutput(); err != nil || len(out) != 0 {
		t.Errorf("dpkg --audit: %v\n%s", err, out)
	}
	out, err := exec.Command("dpkg-query", "--admindir="+filepath.Join(root, "var/lib/dpkg"), "-W", "-f", "${db:Status-Abbrev}${Package}\n").Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for _, l := range lines {
		if !strings.HasPrefix(l, "ii ") {
			t.Errorf("not configured: %q", l)
		}
	}
	if len(lines) < 80 {
		t.Errorf("only %d packages", len(lines))
	}
	pw, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if !strings.HasPrefix(string(pw), "root:x:0:0:") || !strings.Contains(string(pw), "\nsystemd-network:x:") {
		t.Errorf("/etc/passwd:\n%s", pw)
	}
	// passwd's postinst made /etc/shadow root:shadow: the chown is in the
	// Meta, not on disk.
	if o, ok := meta.Get("etc/shadow"); !ok || o.GID == nil || *o.GID != 42 {
		t.Errorf("etc/shadow Meta %+v, want group shadow (42)", o)
	}
	for link, want := range map[string]string{"usr/bin/awk": "/etc/alternatives/awk", "etc/alternatives/awk": "/usr/bin/mawk", "var/run": "/run"} {
		if got, err := os.Readlink(filepath.Join(root, link)); err != nil || got != want {
			t.Errorf("%s -> %q (%v), want %q", link, got, err, want)
		}
	}
	for _, f := range []string{"etc/ld.so.cache", "var/lib/dpkg/alternatives/awk", "etc/shadow", "etc/gshadow"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("the scripts did not make %s: %v", f, err)
		}
	}
	for _, f := range []string{"var/cache/ldconfig/aux-cache", "var/log/dpkg.log", "var/log/alternatives.log"} {
		if _, err := os.Lstat(filepath.Join(root, f)); err == nil {
			t.Errorf("%s is left in the tree", f)
		}
	}
	if st, err := os.Stat(filepath.Join(root, "etc/machine-id")); err != nil || st.Size() != 0 {
		t.Errorf("/etc/machine-id must be empty: %v", err)
	}
	checkBuilderOwns(t, root)
}

// checkBuilderOwns fails unless every file of dir belongs to the builder and
// no overlay whiteout is left.
func checkBuilderOwns(t *testing.T, dir string) {
	t.Helper()
	uid := uint32(os.Geteuid())
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != uid {
			t.Errorf("%s belongs to %d", p, st.Uid)
		}
		if fi.Mode()&fs.ModeCharDevice != 0 {
			t.Errorf("%s: device node (whiteout?) in the tree", p)
		}
		return nil
	})
}

// TestSysextTriggers is the acceptance check: a sysext of
// shared-mime-info, libgdk-pixbuf-2.0-0, python3-yaml and
// gsettings-desktop-schemas over the scripted base carries what their
// scripts and triggers make, leaves the base alone, and works merged onto
// it.
func TestSysextTriggers(t *testing.T) {
	base, baseMeta := scriptedBase(t)
	before := treeDigest(t, base, baseMeta)
	ctx := context.Background()
	plan, err := Resolve(ctx, Request{Distribution: "debian", Release: "bookworm", Arch: "x86-64",
		Packages: []string{"shared-mime-info", "libgdk-pixbuf-2.0-0", "python3-yaml", "gsettings-desktop-schemas"},
		BaseRoot: base, CacheDir: bookwormCache(t)})
	if err != nil {
		t.Fatal(err)
	}
	ext := filepath.Join(t.TempDir(), "ext")
	meta := tree.NewMeta()
	if err := Install(ctx, plan, ext, meta, InstallOptions{Scripts: true, Epoch: scriptEpoch}); err != nil {
		t.Fatal(err)
	}
	if after := treeDigest(t, base, baseMeta); after != before {
		t.Error("installing the extension changed the base tree")
	}
	for _, f := range []string{
		"usr/share/mime/mime.cache",
		"usr/lib/x86_64-linux-gnu/gdk-pixbuf-2.0/2.10.0/loaders.cache",
		"usr/share/glib-2.0/schemas/gschemas.compiled",
	} {
		if st, err := os.Stat(filepath.Join(ext, f)); err != nil || st.Size() == 0 {
			t.Errorf("the extension lacks %s: %v", f, err)
		}
	}
	pyc, _ := filepath.Glob(filepath.Join(ext, "usr/lib/python3/dist-packages/yaml/__pycache__/*.pyc"))
	if len(pyc) == 0 {
		t.Error("no __pycache__ for yaml")
	}
	// libgdk-pixbuf activates the base's libc-bin "ldconfig" trigger: the
	// loader cache, copied up into the extension, knows the new library.
	if b, err := os.ReadFile(filepath.Join(ext, "etc/ld.so.cache")); err != nil || !strings.Contains(string(b), "libgdk_pixbuf-2.0.so.0") {
		t.Errorf("etc/ld.so.cache of the extension lacks libgdk_pixbuf (%v)", err)
	}
	checkBuilderOwns(t, ext)
	// Merged onto the base, python3 imports yaml.
	var out strings.Builder
	_, err = sandbox.Run(ctx, sandbox.Options{Root: t.TempDir(), Lower: []string{ext, base},
		Args: []string{"python3", "-c", "import yaml; print(yaml.safe_load('a: 1'))"}, Stdout: &out, Stderr: &out})
	if err != nil || out.String() != "{'a': 1}\n" {
		t.Errorf("python3 -c 'import yaml': %v\n%s", err, out.String())
	}
}

// TestHostileMaintainerScript installs a package whose postinst writes to
// absolute host paths and through ".." symlinks, reads /proc/1/environ and
// connects to a listener on the host's loopback: the host does not change,
// the listener sees nothing, and what the script wrote is in the tree.
func TestHostileMaintainerScript(t *testing.T) {
	base, _ := scriptedBase(t)
	t.Setenv("SXB_BUILDER_SECRET", "leak-me")
	host, err := os.MkdirTemp("/var/tmp", "sxb-deb-host-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(host)
	victim := filepath.Join(host, "victim")
	os.WriteFile(victim, []byte("intact\n"), 0o666)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	up := strings.Repeat("../", 12) + strings.TrimPrefix(host, "/")
	postinst := `#!/bin/sh
mkdir -p ` + host + ` && echo pwned > ` + victim + ` || true
mkdir -p /usr/lib/evil && ln -s ` + up + ` /usr/lib/evil/up && echo pwned > /usr/lib/evil/up/victim2 || true
tr '\0' '\n' < /proc/1/environ > /usr/lib/evil/environ || true
perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(PeerAddr => "127.0.0.1:` + port + `", Timeout => 5) ? "connected\n" : "refused\n"' > /usr/lib/evil/net
`
	r := buildRepo(t, "fix", []fpkg{{name: "evil", version: "1", files: map[string]string{"usr/share/doc/evil/README": "x"},
		members: map[string]string{"postinst": postinst}}})
	req := r.request(t, "fix", "evil")
	req.BaseRoot = base
	ctx := context.Background()
	plan, err := Resolve(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	ext := filepath.Join(t.TempDir(), "ext")
	var kinds []string
	progress := func(e installer.Event) {
		if len(kinds) == 0 || kinds[len(kinds)-1] != string(e.Kind) {
			kinds = append(kinds, string(e.Kind))
		}
	}
	if err := Install(ctx, plan, ext, tree.NewMeta(), InstallOptions{Scripts: true, Progress: progress}); err != nil {
		t.Fatal(err)
	}
	// The scripts are a step of their own, after unpacking.
	if got := strings.Join(kinds, " "); got != "download extract scripts done" {
		t.Errorf("progress events %q, want \"download extract scripts done\"", got)
	}
	if b, _ := os.ReadFile(victim); string(b) != "intact\n" {
		t.Errorf("the host file changed: %q", b)
	}
	if _, err := os.Lstat(filepath.Join(host, "victim2")); err == nil {
		t.Error("the script wrote through a symlink out of the tree")
	}
	if b, err := os.ReadFile(filepath.Join(ext, victim)); err != nil || string(b) != "pwned\n" {
		t.Errorf("the absolute write is not in the tree: %q %v", b, err)
	}
	env, _ := os.ReadFile(filepath.Join(ext, "usr/lib/evil/environ"))
	if strings.Contains(string(env), "leak-me") {
		t.Error("the script read the builder's environment")
	}
	if b, _ := os.ReadFile(filepath.Join(ext, "usr/lib/evil/net")); string(b) != "refused\n" {
		t.Errorf("connecting to the host's loopback: %q", b)
	}
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(200 * time.Millisecond))
	if c, err := ln.Accept(); err == nil {
		c.Close()
		t.Error("the listener on the host's loopback got a connection")
	}
}

// TestScriptsNotRun: without an emulator, Install uses the stand-ins (the
// tree is what Scripts=false gives), warns once and lists the scripts and
// triggers it did not run; Scripts=false lists them without a warning.
func TestScriptsNotRun(t *testing.T) {
	host := fpkg{name: "host", version: "1", files: map[string]string{"usr/share/host/README": "x"},
		members: map[string]string{"postinst": "#!/bin/sh\n", "preinst": "#!/bin/sh\n", "triggers": "interest-noawait /usr/share/plugins\n"}}
	plug := fpkg{name: "plug", version: "1", files: map[string]string{"usr/share/plugins/a": "a"},
		members: map[string]string{"postinst": "#!/bin/sh\n"}}
	r := buildRepo(t, "fix", []fpkg{host, plug})
	ctx := context.Background()
	install := func(scripts bool, noEmulator bool, pkgs ...string) (string, []string, []string) {
		t.Helper()
		if noEmulator {
			findScriptEmulator = func(string) (*sandbox.Emulator, error) {
				return nil, fmt.Errorf("%w (test)", sandbox.ErrNoEmulator)
			}
			defer func() { findScriptEmulator = sandbox.EmulatorForArchName }()
		}
		req := r.request(t, "fix", pkgs...)
		plan, err := Resolve(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "root")
		meta := tree.NewMeta()
		var warnings, notRun []string
		err = Install(ctx, plan, dir, meta, InstallOptions{Scripts: scripts,
			Warn: func(s string) { warnings = append(warnings, s) }, NotRun: func(l []string) { notRun = l }})
		if err != nil {
			t.Fatal(err)
		}
		return treeDigest(t, dir, meta), warnings, notRun
	}
	off, warnOff, listOff := install(false, false, "host", "plug")
	none, warnNone, listNone := install(true, true, "host", "plug")
	want := "host.postinst host.preinst plug.postinst"
	if strings.Join(listOff, " ") != want || strings.Join(listNone, " ") != want {
		t.Errorf("not run: %q and %q, want %q", listOff, listNone, want)
	}
	if len(warnOff) != 0 || len(warnNone) != 1 || !strings.Contains(warnNone[0], "host.preinst") || !strings.Contains(warnNone[0], "no binfmt_misc emulator") {
		t.Errorf("warnings: %q and %q", warnOff, warnNone)
	}
	if off != none {
		t.Error("without an emulator the tree differs from Scripts=false")
	}
}

// TestTriggerActivation: unpacking a package activates the file triggers
// of installed packages whose path is one of its files or a parent of one,
// and the explicit triggers it activates; the status and index files are
// what dpkg reads.
func TestTriggerActivation(t *testing.T) {
	testenv.NeedTool(t, "dpkg-query")
	dir := t.TempDir()
	r, err := openRoot(dir, tree.NewMeta(), "amd64")
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	status := "Package: host\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\nMaintainer: T <t@example.invalid>\nDescription: d\n\n" +
		"Package: other\nStatus: install ok installed\nArchitecture: all\nVersion: 1\nMaintainer: T <t@example.invalid>\nDescription: d\n\n"
	for name, content := range map[string]string{
		"var/lib/dpkg/status":              status,
		"var/lib/dpkg/info/host.triggers":  "# comment\ninterest /usr/share/plugins\ninterest-noawait ping\n",
		"var/lib/dpkg/info/other.triggers": "interest /usr/share/unrelated\n",
	} {
		if err := r.writeFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	plan := &Plan{Arch: "amd64", Packages: []Package{{Name: "plug", Arch: "amd64", Version: "2"}}}
	results := []*unpacked{{
		control: []byte("Package: plug\nVersion: 2\nArchitecture: amd64\nMaintainer: T <t@example.invalid>\nDescription: d\n"),
		info:    map[string][]byte{"triggers": []byte("activate-noawait ping\n"), "postinst": []byte("#!/bin/sh\n")},
		list:    []string{"/usr", "/usr/share", "/usr/share/plugins", "/usr/share/plugins/a"},
	}}
	status += "Package: plug\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2\nMaintainer: T <t@example.invalid>\nDescription: d\n\n"
	r.writeFile("var/lib/dpkg/status", []byte(status), 0o644)
	sp, err := r.planScripts(plan, results, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(sp.notRun, ","); got != "host trigger /usr/share/plugins,host trigger ping,plug.postinst" {
		t.Errorf("not run: %s", got)
	}
	if got := string(sp.triggers["File"]); got != "/usr/share/plugins host\n/usr/share/unrelated other\n" {
		t.Errorf("File index %q", got)
	}
	if got := string(sp.triggers["ping"]); got != "host/noawait\n" {
		t.Errorf("ping index %q", got)
	}
	r.writeFile("var/lib/dpkg/status", sp.status, 0o644)
	out, err := exec.Command("dpkg-query", "--admindir="+filepath.Join(dir, "var/lib/dpkg"), "-W", "-f", "${Package} ${db:Status-Status} ${Triggers-Pending}\n").CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-query: %v\n%s", err, out)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		slices.Sort(f[2:])
		got = append(got, strings.Join(f, " "))
	}
	if want := "host triggers-pending /usr/share/plugins ping,other installed,plug unpacked"; strings.Join(got, ",") != want {
		t.Errorf("dpkg reads %q, want %q", got, want)
	}
}

// TestScriptsRootless builds the scripted base again as a user with a
// subordinate id range (and a cache of its own): the tree and its Meta, as
// an image would carry them, are the same as root's.
func TestScriptsRootless(t *testing.T) {
	testenv.NeedTool(t, "newuidmap", "newgidmap")
	root, meta := scriptedBase(t)
	u := testenv.User(t, "sxb-test-sub", true)
	bin := testenv.PortableBinary(t)
	dir, err := os.MkdirTemp("", "sxb-deb-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	testenv.Chown(t, dir, u)
	testenv.RunAs(t, u, []string{rootlessBaseEnv + "=" + dir, "TMPDIR=" + dir}, bin)
	userMeta, err := tree.LoadMeta(tree.MetaPath(filepath.Join(dir, "base")))
	if err != nil {
		t.Fatal(err)
	}
	a := treeDigestAt(t, root, meta, scriptEpoch)
	b := treeDigestAt(t, filepath.Join(dir, "base"), userMeta, scriptEpoch)
	if a != b {
		al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
		n := 0
		for i := 0; i < len(al) && i < len(bl) && n < 20; i++ {
			if al[i] != bl[i] {
				t.Errorf("root: %.200s\nuser: %.200s", al[i], bl[i])
				n++
			}
		}
		t.Fatalf("the scripted base built by %s differs from root's (%d and %d lines)", u.Username, len(al), len(bl))
	}
}

// TestScriptLog: a failed run's error names the packages dpkg reports and
// what their scripts said.
func TestScriptLog(t *testing.T) {
	var l scriptLog
	fmt.Fprint(&l, "Setting up base-files (12.4) ...\nchown: changing ownership of '/var/mail': Invalid argument\n"+
		"dpkg: error processing package base-files (--configure):\n installed base-files package post-installation script subprocess returned error exit status 1\n"+
		"Setting up bash (5.2) ...\ndpkg: dependency problems prevent configuration of bash:\n bash depends on base-files; however:\n"+
		"dpkg: error processing package bash (--configure):\n dependency problems - leaving unconfigured\nsxb: evil: the preinst script failed (exit status 3)\n")
	want := "base-files: installed base-files package post-installation script subprocess returned error exit status 1 (chown: changing ownership of '/var/mail': Invalid argument); " +
		"bash: dependency problems - leaving unconfigured ( bash depends on base-files; however:); evil: the preinst script failed (exit status 3)"
	if got := l.summary(); got != strings.ReplaceAll(want, "( ", "(") {
		t.Errorf("summary:\n%s\nwant:\n%s", got, want)
	}
	var quiet scriptLog
	fmt.Fprint(&quiet, "one\ntwo")
	if quiet.summary() != "one\ntwo" {
		t.Errorf("summary without failures: %q", quiet.summary())
	}
}
