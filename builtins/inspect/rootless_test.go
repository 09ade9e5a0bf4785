package inspect

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/testenv"
)

// helperEnv, when set to "IMAGE:DEST:META", makes the test binary extract
// IMAGE into DEST, save the metadata to META and exit: the unprivileged
// half of TestExtractRootless.
const helperEnv = "SXB_TEST_EXTRACT"

func TestMain(m *testing.M) {
	if args := os.Getenv(helperEnv); args != "" {
		a := strings.Split(args, ":")
		meta := tree.NewMeta()
		_, err := Extract(context.Background(), a[0], a[1], meta)
		if err == nil {
			err = meta.Save(a[2])
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestExtractRootless extracts the fixture's images as the unprivileged
// user nobody (setuid files, foreign owners, devices, a read-only
// directory, an unreadable file) and checks that re-writing the result,
// loaded with the saved metadata, gives the original images.
func TestExtractRootless(t *testing.T) {
	testenv.NeedRoot(t)
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	dir, err := os.MkdirTemp("", "sxb-extract-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	bin := testenv.PortableBinary(t)

	src, meta := fixture(t)
	root := loadTree(t, src, meta)
	for _, c := range fsCases {
		if c.name != "erofs" && c.name != "squashfs-xz" {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			orig := c.write(t, root)
			img := writeFile(t, filepath.Join(dir, c.name+".img"), orig)
			work := filepath.Join(dir, c.name)
			if err := os.Mkdir(work, 0o755); err != nil {
				t.Fatal(err)
			}
			testenv.Chown(t, work, nobody)
			dest, metaFile := filepath.Join(work, "out"), filepath.Join(work, "out.meta.json")
			testenv.RunAs(t, nobody, []string{helperEnv + "=" + img + ":" + dest + ":" + metaFile}, bin)
			var st syscall.Stat_t
			if err := syscall.Lstat(filepath.Join(dest, "usr/bin/tool"), &st); err != nil || int(st.Uid) != uid || st.Mode&syscall.S_ISUID != 0 {
				t.Fatalf("usr/bin/tool: uid %d mode %o (%v); want nobody's file without setuid", st.Uid, st.Mode, err)
			}
			m, err := tree.LoadMeta(metaFile)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.write(t, loadTree(t, dest, m)); !bytes.Equal(got, orig) {
				t.Fatal("re-writing what nobody extracted gives another image")
			}
		})
	}
}
