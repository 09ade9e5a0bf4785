package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// ErofsUtilsRoot is where .ci/test installs erofs-utils from Debian trixie
// (mmdebstrap) when the host's is older than 1.8: Debian 12's 1.5 reads
// only LZ4-compressed images. SXB_EROFS_UTILS_ROOT overrides it.
const ErofsUtilsRoot = "/var/tmp/sxb-tools/trixie-erofs"

var erofsVersionRE = regexp.MustCompile(`erofs-utils\) (\d+)\.(\d+)`)

// ErofsTool returns the command line that runs an erofs-utils program
// (fsck.erofs, mkfs.erofs, dump.erofs) of version 1.8 or later: the host's
// when it is recent enough, otherwise the one in the trixie root, run by
// that root's dynamic loader with its libraries. The test fails when
// neither exists.
func ErofsTool(t testing.TB, name string) []string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil && erofsAtLeast18([]string{p}) {
		return []string{p}
	}
	root := os.Getenv("SXB_EROFS_UTILS_ROOT")
	if root == "" {
		root = ErofsUtilsRoot
	}
	if argv := rootTool(root, name); argv != nil && erofsAtLeast18(argv) {
		return argv
	}
	missing(t, "needs "+name+" 1.8 or later (host or "+root+")")
	return nil
}

func rootTool(root, name string) []string {
	bin := filepath.Join(root, "usr/bin", name)
	if _, err := os.Stat(bin); err != nil {
		return nil
	}
	ld, _ := filepath.Glob(filepath.Join(root, "usr/lib*/ld-linux*.so.*"))
	libs, _ := filepath.Glob(filepath.Join(root, "usr/lib/*-linux-gnu*"))
	if len(ld) == 0 || len(libs) == 0 {
		return nil
	}
	return []string{ld[0], "--library-path", libs[0], bin}
}

func erofsAtLeast18(argv []string) bool {
	out, _ := exec.Command(argv[0], append(argv[1:], "-V")...).CombinedOutput()
	m := erofsVersionRE.FindSubmatch(out)
	if m == nil {
		return false
	}
	major, _ := strconv.Atoi(string(m[1]))
	minor, _ := strconv.Atoi(string(m[2]))
	return major > 1 || major == 1 && minor >= 8
}
