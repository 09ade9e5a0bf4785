// Package testenv holds the checks tests use for tools and privileges.
//
// The README's test command installs every validator and CI runs it as root,
// so a missing tool or missing root is a failure, not a skip. A developer who
// runs the suite unprivileged on purpose sets SXB_TEST_ALLOW_SKIP=1 and the
// affected tests are skipped with a message saying why.
package testenv

import (
	"os"
	"os/exec"
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
