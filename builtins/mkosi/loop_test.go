package mkosi

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sxb-build/sxb/internal/diag"
)

// TestConfDirSymlinkLoops: two symlinks in mkosi.conf.d pointing back at
// the project left the kernel's ELOOP as the only stop, after about 3^40
// parses. A directory already being parsed is skipped at once, with a
// warning.
func TestConfDirSymlinkLoops(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"mkosi.conf.d/00.conf": "[Distribution]\nDistribution=debian\n",
	})
	for _, n := range []string{"a", "b", "c"} {
		if err := os.Symlink("..", filepath.Join(dir, "mkosi.conf.d", n)); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	var w []*diag.Diagnostic
	go func() {
		_, err := Load(dir, testOpts(&w))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		if len(w) == 0 || !strings.Contains(w[0].Error(), "symlink loop") {
			t.Errorf("warnings %v, want one about the symlink loop", w)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Load did not return within 20s")
	}
}

// TestImageVersionWithSlash: the default output name is ImageId and
// ImageVersion; a version with "/" made it a path out of the output
// directory.
func TestImageVersionWithSlash(t *testing.T) {
	dir := writeProject(t, map[string]string{
		"mkosi.conf": "[Distribution]\nDistribution=debian\n[Output]\nImageId=x\nImageVersion=1/../../../etc/cron.d/x\nFormat=sysext\n",
	})
	var w []*diag.Diagnostic
	if _, err := Load(dir, testOpts(&w)); err == nil || !strings.Contains(err.Error(), "file name") {
		t.Errorf("err = %v", err)
	}
}
