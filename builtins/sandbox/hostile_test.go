package sandbox

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sxb-build/sxb/internal/testenv"
)

// TestNoNetwork: a listener on the host's loopback is unreachable from the
// sandbox, which has a loopback of its own; with Network it is reachable.
func TestNoNetwork(t *testing.T) {
	testenv.NeedRoot(t)
	root := busyboxTree(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	connect := "nc -w 5 127.0.0.1 " + port + " </dev/null; echo rc=$?; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '"
	out, _ := mustSh(t, Options{Root: root}, connect)
	if !strings.HasPrefix(out, "rc=") || strings.HasPrefix(out, "rc=0") || !strings.HasSuffix(out, "\nlo\n") {
		t.Errorf("without network: %q (want a failed connection and only lo)", out)
	}
	// A connection that reached the listener is queued by now.
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(200 * time.Millisecond))
	if c, err := ln.Accept(); err == nil {
		c.Close()
		t.Fatal("the sandbox reached the host's loopback")
	}
	ln.(*net.TCPListener).SetDeadline(time.Time{})
	accepted := make(chan struct{})
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
			close(accepted)
		}
	}()
	out, _ = mustSh(t, Options{Root: root, Network: true}, connect)
	if !strings.HasPrefix(out, "rc=0") {
		t.Errorf("with network: %q", out)
	}
	<-accepted
}

// TestHostileScript: writes to absolute host paths and through ".."
// symlinks land in the tree, the host's /proc and processes are out of
// sight, and kernel interfaces that trust host root refuse.
func TestHostileScript(t *testing.T) {
	testenv.NeedRoot(t)
	t.Setenv("SXB_BUILDER_SECRET", "leak-me")
	root := busyboxTree(t)
	// Not below /tmp, which is a tmpfs inside.
	host, err := os.MkdirTemp("/var/tmp", "sxb-sandbox-host-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(host)
	victim := filepath.Join(host, "victim")
	writeFile(t, host, "victim", "intact\n", 0o666)
	os.Chmod(host, 0o777)
	os.Symlink(strings.Repeat("../", 20)+strings.TrimPrefix(host, "/"), filepath.Join(root, "escape"))
	os.Symlink(host, filepath.Join(root, "abs"))
	ratio, err := os.ReadFile("/proc/sys/vm/overcommit_ratio")
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := sh(t, Options{Root: root}, `
		for p in `+victim+` /escape/victim /abs/victim; do mkdir -p $(dirname $p); echo pwned > $p; done
		mkdir -p `+host+`/new && echo x > `+host+`/new/file
		echo environ; tr '\0' '\n' < /proc/1/environ
		echo root; ls /proc/1/root | tr '\n' ' '; echo
		echo h > /proc/sysrq-trigger && echo SYSRQ
		echo `+strings.TrimSpace(string(ratio))+` > /proc/sys/vm/overcommit_ratio && echo SYSCTL
		mknod /tmp/disk b 8 0 && echo MKNOD
		ls /proc | grep -c '^[0-9]'
		true`)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "intact\n" {
		t.Errorf("host file changed: %q", b)
	}
	if _, err := os.Stat(filepath.Join(host, "new")); err == nil {
		t.Error("the script made a directory on the host")
	}
	if b, err := os.ReadFile(filepath.Join(root, victim)); err != nil || string(b) != "pwned\n" {
		t.Errorf("the absolute write did not land in the tree: %q, %v", b, err)
	}
	for _, bad := range []string{"leak-me", "SYSRQ", "SYSCTL", "MKNOD"} {
		if strings.Contains(out, bad) {
			t.Errorf("output has %s:\n%s", bad, out)
		}
	}
	if !strings.Contains(out, "root\nabs bin dev escape etc proc run tmp usr var \n") {
		t.Errorf("/proc/1/root is not the sandbox's root:\n%s", out)
	}
}

// TestBinds: read-only and writable binds of directories and files; their
// targets never land in the tree, also when a symlink in the tree points
// them elsewhere.
func TestBinds(t *testing.T) {
	testenv.NeedRoot(t)
	root := busyboxTree(t)
	host := t.TempDir()
	writeFile(t, host, "in/file", "input\n", 0o644)
	writeFile(t, host, "conf", "conf\n", 0o644)
	if err := os.Mkdir(filepath.Join(host, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Symlink("../../../../run/data", filepath.Join(root, "etc/data"))
	before := listing(t, root)
	out, _ := mustSh(t, Options{Root: root, Binds: []Bind{
		{Source: filepath.Join(host, "in"), Target: "/srv/in"},
		{Source: filepath.Join(host, "out"), Target: "/out", Writable: true},
		{Source: filepath.Join(host, "conf"), Target: "/etc/host.conf"},
		{Source: filepath.Join(host, "in"), Target: "/etc/data/in"},
	}}, `cat /srv/in/file /etc/host.conf /run/data/in/file
		echo x > /srv/in/new || echo read-only
		echo x > /etc/host.conf || echo read-only
		echo result > /out/result`)
	if out != "input\nconf\ninput\nread-only\nread-only\n" {
		t.Errorf("output %q", out)
	}
	if b, err := os.ReadFile(filepath.Join(host, "out/result")); err != nil || string(b) != "result\n" {
		t.Errorf("writable bind: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(host, "in/new")); err == nil {
		t.Error("wrote through a read-only bind")
	}
	if after := listing(t, root); after != before {
		t.Errorf("bind targets changed the tree:\n%s\n---\n%s", before, after)
	}
}
