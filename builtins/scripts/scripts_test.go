package scripts

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/builtins/sandbox"
	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/arch"
	"github.com/sxb-build/sxb/internal/testenv"
)

func TestMain(m *testing.M) {
	sandbox.Init()
	os.Exit(m.Run())
}

func config() *Config {
	a, _ := arch.Parse("x86-64")
	return &Config{Distribution: "debian", Release: "bookworm", Architecture: a, ImageID: "tool",
		ImageVersion: "1.2", Profiles: []string{"dev", "ci"}, Epoch: 1700000000, UID: 1000, GID: 1001}
}

// TestEnviron: each phase gets the variables of mkosi's table, with mkosi's
// paths; a .chroot script sees $BUILDROOT as /.
func TestEnviron(t *testing.T) {
	c := config()
	has := func(env []string, kv string) bool { return slices.Contains(env, kv) }
	name := func(env []string, n string) bool {
		return slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, n+"=") })
	}
	b := c.Environ(Build, false, true)
	for _, kv := range []string{"ARCHITECTURE=x86-64", "DISTRIBUTION=debian", "RELEASE=bookworm",
		"DISTRIBUTION_ARCHITECTURE=amd64", "EFI_ARCHITECTURE=x64", "IMAGE_ID=tool", "IMAGE_VERSION=1.2",
		"PROFILES=dev ci", "SOURCE_DATE_EPOCH=1700000000", "WITH_NETWORK=0", "MKOSI_UID=1000", "MKOSI_GID=1001",
		"BUILDROOT=/buildroot", "DESTDIR=/work/dest", "BUILDDIR=/work/build", "SRCDIR=/work/src",
		"CHROOT_SCRIPT=/work/build-script", "WITH_DOCS=0"} {
		if !has(b, kv) {
			t.Errorf("build: no %s in %q", kv, b)
		}
	}
	if name(b, "OUTPUTDIR") {
		t.Errorf("build: $OUTPUTDIR set: %q", b)
	}
	p := c.Environ(PostInst, true, false)
	for _, kv := range []string{"BUILDROOT=/", "OUTPUTDIR=/work/out", "CHROOT_SCRIPT=/work/postinst", "PATH=/usr/bin:/usr/sbin"} {
		if !has(p, kv) {
			t.Errorf("postinst.chroot: no %s in %q", kv, p)
		}
	}
	for _, n := range []string{"DESTDIR", "BUILDDIR", "WITH_DOCS"} {
		if name(p, n) {
			t.Errorf("postinst: $%s set: %q", n, p)
		}
	}
	o := c.Environ(PostOutput, false, true)
	for _, n := range []string{"BUILDROOT", "PROFILES", "SOURCE_DATE_EPOCH", "WITH_NETWORK", "BUILDDIR"} {
		if name(o, n) {
			t.Errorf("postoutput: $%s set: %q", n, o)
		}
	}
	if !has(o, "OUTPUTDIR=/work/out") {
		t.Errorf("postoutput: no $OUTPUTDIR: %q", o)
	}
}

// TestUserEnv: environment files, then passed host variables, then
// Environment=, the later winning; a malformed line names file and line.
func TestUserEnv(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "env")
	os.WriteFile(f, []byte("# comment\nA=file\nQ=\"quoted value\"\n"), 0o644)
	t.Setenv("SXB_TEST_PASSED", "host")
	c := &Config{EnvironmentFiles: []string{f}, PassEnvironment: []string{"SXB_TEST_PASSED", "SXB_TEST_UNSET"},
		Environment: []string{"A=config"}}
	env, err := c.UserEnv()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"A=file", "Q=quoted value", "SXB_TEST_PASSED=host", "A=config"}
	if !slices.Equal(env, want) {
		t.Errorf("UserEnv = %q, want %q", env, want)
	}
	os.WriteFile(f, []byte("A=1\nbroken\n"), 0o644)
	if _, err := c.UserEnv(); err == nil || !strings.Contains(err.Error(), f+":2:") {
		t.Errorf("malformed line: %v", err)
	}
}

func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// imageTree is a tree with os-release and a static busybox as /bin/sh, as a
// minimal image has.
func imageTree(t *testing.T) string {
	t.Helper()
	bb := testenv.NeedTool(t, "busybox")
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	root := filepath.Join(dir, "root")
	for _, d := range []string{"usr/bin", "usr/lib", "usr/share"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.Symlink("usr/bin", filepath.Join(root, "bin"))
	os.WriteFile(filepath.Join(root, "usr/lib/os-release"), []byte("ID=debian\nVERSION_CODENAME=bookworm\n"), 0o644)
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "usr/bin/busybox"), data, 0o755)
	for _, a := range []string{"sh", "cat", "mkdir", "echo", "cp"} {
		os.Symlink("busybox", filepath.Join(root, "usr/bin", a))
	}
	return root
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPhases: a chroot prepare script reads the image's os-release from
// inside; a host build script writes $DESTDIR (its writes to $BUILDROOT
// are in a throw-away layer) and $BUILDDIR; a postinst writes the image
// and $OUTPUTDIR; a postoutput script sees $OUTPUTDIR only.
func TestPhases(t *testing.T) {
	testenv.NeedRoot(t)
	root := imageTree(t)
	meta := tree.NewMeta()
	host := t.TempDir()
	dest, build, out, src := filepath.Join(host, "dest"), filepath.Join(host, "build"), filepath.Join(host, "out"), filepath.Join(host, "src")
	for _, d := range []string{dest, build, out, src} {
		os.Mkdir(d, 0o755)
	}
	os.WriteFile(filepath.Join(src, "input"), []byte("source\n"), 0o644)
	c := config()
	ctx := context.Background()
	run := func(r Run) {
		t.Helper()
		var log strings.Builder
		r.Output = &log
		if _, err := c.Execute(ctx, r); err != nil {
			t.Fatalf("%v\n%s", err, log.String())
		}
	}
	run(Run{Phase: Prepare, Arg: "final", Tree: root, Meta: meta, Script: script(t, host, "mkosi.prepare.chroot",
		"#!/bin/sh\nset -e\n. /usr/lib/os-release\necho \"$1 $ID $VERSION_CODENAME $BUILDROOT $(cat input)\" > /usr/share/prepared\n"), SrcDir: src})
	if got := read(t, filepath.Join(root, "usr/share/prepared")); got != "final debian bookworm / source\n" {
		t.Errorf("prepare: %q", got)
	}
	// The build overlay: a throw-away upper over the image.
	overlay := filepath.Join(host, "overlay")
	os.Mkdir(overlay, 0o755)
	run(Run{Phase: Build, Tree: overlay, Lower: []string{root}, LowerMeta: []*tree.Meta{meta}, DestDir: dest, BuildDir: build,
		Script: script(t, host, "mkosi.build", "#!/bin/bash\nset -e\nmkdir -p \"$DESTDIR/usr/bin\"\n"+
			"printf '#!/bin/sh\\necho tool\\n' > \"$DESTDIR/usr/bin/tool\"\nchmod 755 \"$DESTDIR/usr/bin/tool\"\n"+
			"echo scratch > \"$BUILDROOT/usr/share/scratch\"\necho $(( $(cat \"$BUILDDIR/count\" 2>/dev/null || echo 0) + 1 )) > \"$BUILDDIR/count\"\n")})
	if got := read(t, filepath.Join(dest, "usr/bin/tool")); got != "#!/bin/sh\necho tool\n" {
		t.Errorf("$DESTDIR: %q", got)
	}
	if _, err := os.Stat(filepath.Join(root, "usr/share/scratch")); err == nil {
		t.Error("a build script's write to $BUILDROOT reached the image")
	}
	if got := read(t, filepath.Join(build, "count")); got != "1\n" {
		t.Errorf("$BUILDDIR: %q", got)
	}
	run(Run{Phase: PostInst, Arg: "final", Tree: root, Meta: meta, OutputDir: out, BuildDir: build,
		Script: script(t, host, "mkosi.postinst", "#!/bin/sh\nset -e\necho \"$DISTRIBUTION $RELEASE $ARCHITECTURE\" > \"$BUILDROOT/usr/share/postinst\"\n"+
			"echo out > \"$OUTPUTDIR/from-postinst\"\ntouch \"$BUILDDIR/x\" 2>/dev/null && echo builddir-writable || true\n"+
			"touch \"$SRCDIR/x\" /usr/sxb-x /etc/sxb-x 2>/dev/null || true\n")})
	if got := read(t, filepath.Join(root, "usr/share/postinst")); got != "debian bookworm x86-64\n" {
		t.Errorf("postinst: %q", got)
	}
	if _, err := os.Stat(filepath.Join(build, "x")); err == nil {
		t.Error("postinst wrote to the build directory (mkosi mounts it read-only)")
	}
	for _, p := range []string{filepath.Join(src, "x"), "/usr/sxb-x", "/etc/sxb-x"} {
		if _, err := os.Stat(p); err == nil {
			os.Remove(p)
			t.Errorf("a postinst script wrote %s on the host", p)
		}
	}
	run(Run{Phase: PostOutput, OutputDir: out, Script: script(t, host, "mkosi.postoutput",
		"#!/bin/sh\nset -e\nls \"$OUTPUTDIR\" > \"$OUTPUTDIR/listing\"\ntest -z \"$BUILDROOT\"\n")})
	if got := read(t, filepath.Join(out, "listing")); got != "from-postinst\nlisting\n" {
		t.Errorf("postoutput: %q", got)
	}
}

// TestNetwork: without WithNetwork a script cannot connect to a listener
// on the host's loopback; with it, it can.
func TestNetwork(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "bash")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hello\n"))
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	host := t.TempDir()
	out := filepath.Join(host, "out")
	os.Mkdir(out, 0o755)
	s := script(t, host, "mkosi.postoutput", fmt.Sprintf("#!/bin/bash\nif exec 3<>/dev/tcp/127.0.0.1/%d; then head -n1 <&3 > \"$OUTPUTDIR/result\"; else echo refused > \"$OUTPUTDIR/result\"; fi\n", port))
	for _, network := range []bool{false, true} {
		c := config()
		c.WithNetwork = network
		if _, err := c.Execute(context.Background(), Run{Phase: PostOutput, Script: s, OutputDir: out}); err != nil {
			t.Fatal(err)
		}
		want := map[bool]string{false: "refused\n", true: "hello\n"}[network]
		if got := read(t, filepath.Join(out, "result")); got != want {
			t.Errorf("network %v: %q, want %q", network, got, want)
		}
	}
}

// TestFailure: a failing script's error names the phase, the script, the
// exit status and its last output lines.
func TestFailure(t *testing.T) {
	testenv.NeedRoot(t)
	host := t.TempDir()
	var lines strings.Builder
	for i := 1; i <= 30; i++ {
		fmt.Fprintf(&lines, "echo line %d\n", i)
	}
	s := script(t, host, "mkosi.postoutput", "#!/bin/sh\n"+lines.String()+"echo failing >&2\nexit 3\n")
	_, err := config().Execute(context.Background(), Run{Phase: PostOutput, Script: s})
	var se *Error
	if !errors.As(err, &se) {
		t.Fatalf("error %v is not a script error", err)
	}
	msg := err.Error()
	for _, want := range []string{"postoutput script mkosi.postoutput", "exited with status 3", "line 30", "failing"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "line 10\n") || len(se.Tail) != TailLines {
		t.Errorf("tail has %d lines: %q", len(se.Tail), se.Tail)
	}
	var ee *sandbox.ExitError
	if !errors.As(err, &ee) || ee.Code != 3 {
		t.Errorf("exit error: %v", err)
	}
	// Not executable: refused before anything runs.
	os.Chmod(s, 0o644)
	if _, err := config().Execute(context.Background(), Run{Phase: PostOutput, Script: s}); err == nil || !strings.Contains(err.Error(), "not an executable") {
		t.Errorf("non-executable script: %v", err)
	}
}

// TestOutput: a program's standard output, run in the sandbox on the
// host's tools in its source directory; a failure has its stderr lines.
func TestOutput(t *testing.T) {
	testenv.NeedRoot(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "VERSION"), []byte("4.5\n"), 0o644)
	p := script(t, dir, "mkosi.version", "#!/bin/sh\necho \"$(cat VERSION)-$(ls | wc -l)\"\n")
	out, err := Output(context.Background(), p, dir)
	if err != nil || string(out) != "4.5-2\n" {
		t.Errorf("Output = %q, %v", out, err)
	}
	bad := script(t, dir, "bad", "#!/bin/sh\necho broken >&2\nexit 2\n")
	if _, err := Output(context.Background(), bad, dir); err == nil || !strings.Contains(err.Error(), "exited with status 2") || !strings.Contains(err.Error(), "broken") {
		t.Errorf("failing program: %v", err)
	}
}

// TestSandboxTrees: scripts on the host's tools see the sandbox trees'
// files and links at their place (a later tree winning, over the host's
// own /etc files too), read-only; what it has below /usr is left out, a
// tree reaching into /work is refused.
func TestSandboxTrees(t *testing.T) {
	testenv.NeedRoot(t)
	root := imageTree(t)
	host := t.TempDir()
	a, b := filepath.Join(host, "a"), filepath.Join(host, "b")
	os.MkdirAll(filepath.Join(a, "etc/apt/sources.list.d"), 0o755)
	os.WriteFile(filepath.Join(a, "etc/apt/sources.list.d/x.sources"), []byte("from a\n"), 0o644)
	os.WriteFile(filepath.Join(a, "etc/resolv.conf"), []byte("nameserver 192.0.2.1\n"), 0o644)
	os.MkdirAll(b, 0o755)
	os.WriteFile(filepath.Join(b, "x.sources"), []byte("from b\n"), 0o644)
	os.Symlink("x.sources", filepath.Join(b, "y.sources"))
	c := config()
	c.SandboxTrees = []SandboxTree{{Source: a}, {Source: b, Target: "/etc/apt/sources.list.d"}}
	var log strings.Builder
	_, err := c.Execute(context.Background(), Run{Phase: PostInst, Arg: "final", Tree: root, Meta: tree.NewMeta(), Output: &log,
		Script: script(t, host, "mkosi.postinst", "#!/bin/sh\nset -e\nd=/etc/apt/sources.list.d\n"+
			"cat $d/x.sources $d/y.sources /etc/resolv.conf > \"$BUILDROOT/usr/share/seen\"\n"+
			"echo changed > $d/x.sources 2>/dev/null && echo WRITABLE >> \"$BUILDROOT/usr/share/seen\" || true\n")})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if got := read(t, filepath.Join(root, "usr/share/seen")); got != "from b\nfrom b\nnameserver 192.0.2.1\n" {
		t.Errorf("what the script saw: %q", got)
	}
	if got := read(t, filepath.Join(b, "x.sources")); got != "from b\n" {
		t.Errorf("the sandbox tree changed: %q", got)
	}
	// Below /usr (the host's, bound whole) a tree's files are left out.
	os.MkdirAll(filepath.Join(a, "usr/share/keyrings"), 0o755)
	os.WriteFile(filepath.Join(a, "usr/share/keyrings/x.gpg"), nil, 0o644)
	_, err = c.Execute(context.Background(), Run{Phase: PostInst, Tree: root, Meta: tree.NewMeta(),
		Script: script(t, host, "p2", "#!/bin/sh\n! test -e /usr/share/keyrings/x.gpg\n")})
	if err != nil {
		t.Errorf("a sandbox tree with /usr: %v", err)
	}
	os.MkdirAll(filepath.Join(host, "bad/work"), 0o755)
	os.WriteFile(filepath.Join(host, "bad/work/x"), nil, 0o644)
	c.SandboxTrees = []SandboxTree{{Source: filepath.Join(host, "bad")}}
	_, err = c.Execute(context.Background(), Run{Phase: PostInst, Tree: root, Meta: tree.NewMeta(), Script: script(t, host, "p3", "#!/bin/sh\n")})
	if err == nil || !strings.Contains(err.Error(), "scripts take /work from the sandbox") {
		t.Errorf("a sandbox tree with /work: %v", err)
	}
}
