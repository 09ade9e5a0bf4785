// Package testenv holds the checks tests use for tools and privileges.
//
// The README's test command installs every validator and CI runs it as root,
// so a missing tool or missing root is a failure, not a skip. A developer who
// runs the suite unprivileged on purpose sets SXB_TEST_ALLOW_SKIP=1 and the
// affected tests are skipped with a message saying why.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("SXB_TEST_ALLOW_SKIP") == "1" {
		t.Skipf("%s (SXB_TEST_ALLOW_SKIP=1)", what)
	}
	t.Fatalf("%s: run the suite with the README test command (.ci/test), as root", what)
}

// NeedTool fails the test unless every named program is on PATH, and
// returns the path of the first.
func NeedTool(t testing.TB, names ...string) string {
	t.Helper()
	var first string
	for _, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			missing(t, "needs "+n)
		}
		if first == "" {
			first = p
		}
	}
	return first
}

// NeedRoot fails the test unless it runs as root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "needs root")
	}
}

// NeedNetwork fails the test when SXB_TEST_OFFLINE=1 says the archive cannot
// be reached (the suite otherwise expects deb.debian.org to answer).
func NeedNetwork(t testing.TB) {
	t.Helper()
	if os.Getenv("SXB_TEST_OFFLINE") == "1" {
		missing(t, "needs the network (SXB_TEST_OFFLINE=1)")
	}
}

// User returns the user name, creating it (without a home directory) when
// it does not exist, with a range of 65536 subordinate user and group ids in
// /etc/subuid and /etc/subgid when subordinate is true and none otherwise.
// It needs root, useradd and usermod.
func User(t testing.TB, name string, subordinate bool) *user.User {
	t.Helper()
	NeedRoot(t)
	NeedTool(t, "useradd", "usermod")
	if _, err := user.Lookup(name); err != nil {
		out, err := exec.Command("useradd", "-M", "-s", "/usr/sbin/nologin", "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0", name).CombinedOutput()
		if err != nil {
			t.Fatalf("useradd %s: %v: %s", name, err, out)
		}
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ file, flag string }{{"/etc/subuid", "--add-subuids"}, {"/etc/subgid", "--add-subgids"}} {
		has, next := subordinateRange(t, f.file, name)
		switch {
		case subordinate && !has:
			r := fmt.Sprintf("%d-%d", next, next+65535)
			if out, err := exec.Command("usermod", f.flag, r, name).CombinedOutput(); err != nil {
				t.Fatalf("usermod %s %s %s: %v: %s", f.flag, r, name, err, out)
			}
		case !subordinate && has:
			t.Fatalf("%s has a range in %s; the test needs a user without one", name, f.file)
		}
	}
	return u
}

// subordinateRange tells whether file gives name a range, and the first id
// after every range (at least 100000).
func subordinateRange(t testing.TB, file, name string) (bool, int) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	has, next := false, 100000
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) != 3 {
			continue
		}
		start, err1 := strconv.Atoi(f[1])
		count, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil {
			continue
		}
		has = has || f[0] == name
		next = max(next, start+count)
	}
	return has, next
}

// RunAs runs the command as user u with the environment env (plus PATH)
// and fails the test when it fails.
func RunAs(t testing.TB, u *user.User, env []string, name string, args ...string) {
	t.Helper()
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	cmd := exec.Command(name, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s as %s: %v\n%s", name, u.Username, err, out)
	}
}

// Chown gives dir and everything below it to u.
func Chown(t testing.TB, dir string, u *user.User) {
	t.Helper()
	if out, err := exec.Command("chown", "-R", u.Uid+":"+u.Gid, dir).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v: %s", err, out)
	}
}

// PortableBinary copies the running test binary where every user may run
// it, for tests that run it again as another user.
func PortableBinary(t testing.TB) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "sxb-test-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, filepath.Base(self))
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}
