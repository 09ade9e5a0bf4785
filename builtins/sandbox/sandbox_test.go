package sandbox

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sxb-build/sxb/internal/testenv"
)

// TestRootIsTheTree: the command sees the tree as /, nothing of the host.
func TestRootIsTheTree(t *testing.T) {
	testenv.NeedRoot(t)
	root := busyboxTree(t)
	writeFile(t, root, "etc/os-release", "ID=sandboxtest\n", 0o644)
	// A file beside the tree and one in the host's /tmp.
	outside := filepath.Join(filepath.Dir(root), "outside")
	writeFile(t, filepath.Dir(root), "outside", "secret", 0o644)
	hostTmp, err := os.CreateTemp("", "sxb-sandbox-host-")
	if err != nil {
		t.Fatal(err)
	}
	hostTmp.Close()
	defer os.Remove(hostTmp.Name())
	out, _ := mustSh(t, Options{Root: root}, `cat /etc/os-release; ls -a /; echo ---; ls -a /tmp; echo ---
		test -e `+outside+` && echo OUTSIDE; test -e `+hostTmp.Name()+` && echo HOSTTMP; test -e /usr/bin/go && echo HOSTBIN; hostname; grep PPid /proc/$$/status`)
	parts := strings.Split(out, "---\n")
	if len(parts) != 3 {
		t.Fatalf("output: %q", out)
	}
	if !strings.HasPrefix(parts[0], "ID=sandboxtest\n") {
		t.Errorf("/etc/os-release is not the tree's: %q", parts[0])
	}
	top := strings.Fields(strings.TrimPrefix(parts[0], "ID=sandboxtest\n"))
	want := []string{".", "..", "bin", "dev", "etc", "proc", "run", "tmp", "usr", "var"}
	if !slices.Equal(top, want) {
		t.Errorf("/ holds %v, want %v", top, want)
	}
	if f := strings.Fields(parts[1]); !slices.Equal(f, []string{".", ".."}) {
		t.Errorf("/tmp is not empty: %v", f)
	}
	if got := strings.Fields(parts[2]); !slices.Equal(got, []string{"sxb", "PPid:", "1"}) {
		t.Errorf("host view, host name, parent: %v (want no host paths, sxb, the sandbox's PID 1)", got)
	}
	// The mount points came from the scaffold layer, not the tree.
	for _, d := range []string{"proc", "dev", "tmp", "run"} {
		if _, err := os.Lstat(filepath.Join(root, d)); err == nil {
			t.Errorf("the tree got /%s", d)
		}
	}
}

// TestWritesStayInUpper: writes land in the upper tree, the lower tree does
// not change, deletions of lower files are reported and leave no whiteout.
func TestWritesStayInUpper(t *testing.T) {
	testenv.NeedRoot(t)
	dir := t.TempDir()
	lower := filepath.Join(dir, "base")
	upper := filepath.Join(dir, "ext")
	makeBusyboxTree(t, lower)
	writeFile(t, lower, "etc/keep", "base keep\n", 0o644)
	writeFile(t, lower, "etc/edit", "base edit\n", 0o644)
	writeFile(t, lower, "etc/gone", "base gone\n", 0o644)
	writeFile(t, lower, "usr/share/old/a", "a\n", 0o644)
	writeFile(t, lower, "usr/share/old/b", "b\n", 0o644)
	writeFile(t, upper, "usr/lib/ext/mine", "mine\n", 0o644)
	writeFile(t, upper, "usr/lib/ext/drop", "drop\n", 0o644)
	before := listing(t, lower)
	out, res := mustSh(t, Options{Root: upper, Lower: []string{lower}}, `set -e
		cat /etc/keep /usr/lib/ext/mine
		echo new > /etc/new
		echo changed >> /etc/edit
		rm /etc/gone /usr/lib/ext/drop
		rm -r /usr/share/old && mkdir /usr/share/old && echo c > /usr/share/old/c
		ls /usr/share/old`)
	if out != "base keep\nmine\nc\n" {
		t.Errorf("output %q", out)
	}
	if after := listing(t, lower); after != before {
		t.Errorf("the lower tree changed:\n%s\n---\n%s", before, after)
	}
	for rel, want := range map[string]string{
		"etc/new": "new\n", "etc/edit": "base edit\nchanged\n", "usr/lib/ext/mine": "mine\n", "usr/share/old/c": "c\n",
	} {
		if b, err := os.ReadFile(filepath.Join(upper, rel)); err != nil || string(b) != want {
			t.Errorf("%s in the upper tree: %q, %v; want %q", rel, b, err, want)
		}
	}
	for _, rel := range []string{"etc/gone", "usr/lib/ext/drop", "etc/keep", "usr/share/old/a", "bin"} {
		if _, err := os.Lstat(filepath.Join(upper, rel)); err == nil {
			t.Errorf("%s is in the upper tree", rel)
		}
	}
	// The directory replaced in whole is opaque, which says its lower
	// entries are gone; the file deleted on its own is listed.
	if !slices.Equal(res.Removed, []string{"etc/gone"}) {
		t.Errorf("Removed = %v, want [etc/gone]", res.Removed)
	}
	if !slices.Equal(res.Opaque, []string{"usr/share/old"}) {
		t.Errorf("Opaque = %v, want [usr/share/old]", res.Opaque)
	}
	// No whiteout or overlay attribute is left.
	filepath.Walk(upper, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			t.Errorf("%s: device node left in the tree", p)
		}
		if names, _ := listXattrs(p); len(names) > 0 {
			t.Errorf("%s: extended attributes left: %v", p, names)
		}
		return nil
	})
	// The work directory beside the tree is gone.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("beside the trees: %v", ents)
	}
}

// TestSpecialFileSystems: /proc, the minimal /dev, private /tmp and /run.
func TestSpecialFileSystems(t *testing.T) {
	testenv.NeedRoot(t)
	root := busyboxTree(t)
	out, _ := mustSh(t, Options{Root: root}, `set -e
		ls /proc | grep -c '^[0-9]'
		tr -d '\0' < /proc/1/cmdline; echo
		for d in null zero full random urandom tty; do test -c /dev/$d; done
		echo discarded > /dev/null
		head -c 4 /dev/zero | od -An -tx1
		head -c 16 /dev/urandom | wc -c
		if echo x > /dev/full; then echo full-accepted; fi
		test -d /dev/pts && test -L /dev/ptmx && test -d /dev/shm && readlink /dev/fd
		ls /dev | tr '\n' ' '; echo
		echo t > /tmp/t && echo r > /run/r && echo s > /dev/shm/s && cat /tmp/t /run/r /dev/shm/s
		stat -c %a /tmp`)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	// init, sh, ls and grep at most.
	if n, err := strconv.Atoi(lines[0]); err != nil || n > 4 {
		t.Errorf("processes in /proc: %q (the host's are visible?)", lines[0])
	}
	if lines[1] != roleInit {
		t.Errorf("PID 1 is %q, want the sandbox's init", lines[1])
	}
	if strings.TrimSpace(lines[2]) != "00 00 00 00" || strings.TrimSpace(lines[3]) != "16" {
		t.Errorf("/dev/zero, /dev/urandom: %q %q", lines[2], lines[3])
	}
	if lines[4] != "/proc/self/fd" {
		t.Errorf("line %q; writing to /dev/full must fail", lines[4])
	}
	if got := strings.Fields(lines[5]); !slices.Equal(got, []string{"fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout", "tty", "urandom", "zero"}) {
		t.Errorf("/dev holds %v", got)
	}
	if strings.Join(lines[6:], " ") != "t r s 1777" {
		t.Errorf("tmpfs: %q", lines[6:])
	}
	if _, err := os.Lstat(filepath.Join(root, "tmp")); err == nil {
		t.Error("/tmp's contents landed in the tree")
	}
}

// TestEnvironment: the command gets BaseEnv and Options.Env, nothing of the
// builder's.
func TestEnvironment(t *testing.T) {
	testenv.NeedRoot(t)
	t.Setenv("SXB_BUILDER_SECRET", "leak")
	root := busyboxTree(t)
	var out strings.Builder
	_, err := Run(context.Background(), Options{Root: root, Args: []string{"env"}, Env: []string{"SOURCE_DATE_EPOCH=42", "LANG=C"}, Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(out.String()), "\n")
	slices.Sort(got)
	want := []string{"HOME=/root", "LANG=C", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "SOURCE_DATE_EPOCH=42", "TZ=UTC"}
	if !slices.Equal(got, want) {
		t.Errorf("environment %v, want %v", got, want)
	}
}

// TestExitStatus: a failing command gives an ExitError with its status or
// signal; a missing one is an error before anything runs.
func TestExitStatus(t *testing.T) {
	testenv.NeedRoot(t)
	root := busyboxTree(t)
	_, _, err := sh(t, Options{Root: root}, "exit 3")
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 3 || ee.Signal != 0 {
		t.Errorf("exit 3: %v", err)
	}
	_, _, err = sh(t, Options{Root: root}, "kill -9 $$")
	if !errors.As(err, &ee) || ee.Signal != 9 {
		t.Errorf("kill -9: %v", err)
	}
	_, err = Run(context.Background(), Options{Root: root, Args: []string{"no-such-tool"}})
	if err == nil || errors.As(err, &ee) || !strings.Contains(err.Error(), "no-such-tool") {
		t.Errorf("missing command: %v", err)
	}
	_, err = Run(context.Background(), Options{Root: root, Args: []string{"pwd"}, Dir: "/nonexistent"})
	if err == nil || !strings.Contains(err.Error(), "working directory") {
		t.Errorf("missing working directory: %v", err)
	}
}

// TestCancel: cancelling kills the command and whatever it started, and the
// tree is settled all the same.
func TestCancel(t *testing.T) {
	testenv.NeedRoot(t)
	root := busyboxTree(t)
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	go func() {
		// Cancel once the script has written its marker.
		for {
			if _, err := os.Stat(filepath.Join(root, "started")); err == nil {
				close(started)
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	_, err := Run(ctx, Options{Root: root, Args: []string{"sh", "-c", "sleep 987654 & touch /started; chown 7 /started; sleep 987655"}})
	<-started
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run after cancel: %v", err)
	}
	// No process of the sandbox is left on the host.
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		if strings.Contains(string(b), "98765") {
			t.Errorf("%s survived: %q", p, b)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(root, "started"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != uint32(os.Geteuid()) {
		t.Errorf("after cancel, the tree still has a file owned by %d", st.Uid)
	}
}

// TestChroot: with Chroot the command's root is the tree while PID 1's is
// not (what ischroot and systemd-detect-virt --chroot test), the working
// directory and PATH lookup are the tree's, and a command breaking out of
// its chroot finds only an empty directory around the tree.
func TestChroot(t *testing.T) {
	testenv.NeedRoot(t)
	root := busyboxTree(t)
	writeFile(t, root, "etc/os-release", "ID=sandboxtest\n", 0o644)
	os.MkdirAll(filepath.Join(root, "var/work"), 0o755)
	same := `if [ "$(stat -L -c %d:%i /)" = "$(stat -L -c %d:%i /proc/1/root)" ]; then echo same; else echo chroot; fi`
	out, _ := mustSh(t, Options{Root: root}, same)
	if out != "same\n" {
		t.Errorf("without Chroot: %q, want PID 1 to share the root", out)
	}
	out, _ = mustSh(t, Options{Root: root, Chroot: true, Dir: "/var/work"}, same+`; pwd; cat /etc/os-release; ls /proc/1/root`)
	if out != "chroot\n/var/work\nID=sandboxtest\nroot\n" {
		t.Errorf("with Chroot: %q, want a chroot in /var/work of the tree, PID 1's root holding only it", out)
	}
	if _, err := Run(context.Background(), Options{Root: root, Chroot: true, TreeAt: "/x", Args: []string{"true"}}); err == nil || !strings.Contains(err.Error(), "Chroot and TreeAt") {
		t.Errorf("Chroot with TreeAt: %v", err)
	}
}
