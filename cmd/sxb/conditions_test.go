package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// scriptCondition answers testscript conditions: [root] and [exec:TOOL].
// Scripts should guard with them only where the README test command cannot
// provide the tool; it provides the validators and runs as root in CI.
func scriptCondition(cond string) (bool, error) {
	switch {
	case cond == "root":
		return os.Geteuid() == 0, nil
	case cond == "allowskip":
		// SXB_TEST_ALLOW_SKIP=1: skipping for want of root or a tool is
		// intended (see internal/testenv).
		return os.Getenv("SXB_TEST_ALLOW_SKIP") == "1", nil
	case strings.HasPrefix(cond, "exec:"):
		_, err := exec.LookPath(strings.TrimPrefix(cond, "exec:"))
		return err == nil, nil
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}
