package sandbox

import (
	"context"
	"encoding/json"
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

// The ownership scenario runs one script over a base tree and an extension
// tree whose Meta records owners, modes and a device, as root or as another
// user, and keeps what came out: the script's output, the extension tree and
// its Meta.

// scenarioEnv names the scenario directory when the test binary runs as
// another user.
const scenarioEnv = "SXB_SANDBOX_TEST_SCENARIO"

const scenarioScript = `set -e
stat -c '%n %u:%g %a' /usr/bin/tool /usr/lib/app /usr/lib/app/data /usr/share/base/file /var/mail
echo new > /etc/new
chmod g+w /var/mail
rm /etc/old /usr/share/base/file
ln -s tool /usr/bin/tool-link
mkfifo /usr/lib/app/fifo
ln /usr/lib/app/data /usr/lib/app/data-link
chmod 4750 /usr/lib/app/data
echo shown
mkdir -p /var/lib/svc
chown 201:202 /var/lib/svc
touch /var/lib/svc/state
chown 201 /var/lib/svc/state
chmod 600 /var/lib/svc/state
echo chowned
`

// scenarioResult is what a scenario run reports.
type scenarioResult struct {
	Out     string
	Removed []string
	Opaque  []string
	IDs     IDMode
	Err     string
}

// makeScenario writes the scenario's trees and Meta below dir.
func makeScenario(t *testing.T, dir string) {
	t.Helper()
	base, ext := filepath.Join(dir, "base"), filepath.Join(dir, "ext")
	makeBusyboxTree(t, base)
	writeFile(t, base, "usr/share/base/file", "base\n", 0o644)
	if err := os.MkdirAll(filepath.Join(base, "var/mail"), 0o775); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(base, "var/mail"), 0o775)
	baseMeta := tree.NewMeta()
	baseMeta.Set("var/mail", tree.Override{GID: tree.Ptr(uint32(8)), Mode: tree.Ptr(uint32(0o2775))})
	if err := baseMeta.Save(tree.MetaPath(base)); err != nil {
		t.Fatal(err)
	}
	writeFile(t, ext, "usr/bin/tool", "#!/bin/sh\n", 0o755)
	writeFile(t, ext, "usr/lib/app/data", "data\n", 0o640)
	writeFile(t, ext, "usr/lib/app/null", "", 0o666)
	writeFile(t, ext, "etc/old", "old\n", 0o644)
	meta := tree.NewMeta()
	meta.Set("usr/bin/tool", tree.Override{Mode: tree.Ptr(uint32(0o4755))})
	meta.Set("usr/lib/app", tree.Override{UID: tree.Ptr(uint32(101)), GID: tree.Ptr(uint32(102))})
	meta.Set("usr/lib/app/data", tree.Override{UID: tree.Ptr(uint32(101))})
	meta.Set("usr/lib/app/null", tree.Override{Kind: tree.Ptr(tree.CharDev), Rdev: tree.Ptr(tree.Mkdev(1, 3)), Mode: tree.Ptr(uint32(0o666))})
	if err := meta.Save(tree.MetaPath(ext)); err != nil {
		t.Fatal(err)
	}
}

// runScenario runs the scenario in dir and writes result.json there; it is
// the whole work of the test binary re-executed as another user.
func runScenario(dir string) int {
	base, ext := filepath.Join(dir, "base"), filepath.Join(dir, "ext")
	res, err := scenario(base, ext)
	if err != nil {
		res.Err = err.Error()
	}
	b, _ := json.Marshal(res)
	if err := os.WriteFile(filepath.Join(dir, "result.json"), b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func scenario(base, ext string) (scenarioResult, error) {
	var res scenarioResult
	baseMeta, err := tree.LoadMeta(tree.MetaPath(base))
	if err != nil {
		return res, err
	}
	meta, err := tree.LoadMeta(tree.MetaPath(ext))
	if err != nil {
		return res, err
	}
	var out strings.Builder
	r, err := Run(context.Background(), Options{
		Root: ext, Meta: meta, Lower: []string{base}, LowerMeta: []*tree.Meta{baseMeta},
		Args: []string{"sh", "-c", scenarioScript}, Stdout: &out, Stderr: &out,
	})
	res.Out = out.String()
	if r != nil {
		res.Removed, res.Opaque, res.IDs = r.Removed, r.Opaque, r.IDs
	}
	if serr := meta.Save(tree.MetaPath(ext)); serr != nil && err == nil {
		err = serr
	}
	return res, err
}

func readScenario(t *testing.T, dir string) (scenarioResult, string) {
	t.Helper()
	var res scenarioResult
	b, err := os.ReadFile(filepath.Join(dir, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	m, err := os.ReadFile(tree.MetaPath(filepath.Join(dir, "ext")))
	if err != nil {
		t.Fatal(err)
	}
	return res, string(m)
}

// TestOwnersRoundTrip: as root, the command sees the Meta's owners and modes,
// and what it changes of them ends up in the Meta while the files on disk
// go back to the builder.
func TestOwnersRoundTrip(t *testing.T) {
	testenv.NeedRoot(t)
	dir := t.TempDir()
	makeScenario(t, dir)
	if code := runScenario(dir); code != 0 {
		t.Fatal("scenario failed")
	}
	res, meta := readScenario(t, dir)
	if res.Err != "" {
		t.Fatalf("scenario: %s\n%s", res.Err, res.Out)
	}
	wantOut := `/usr/bin/tool 0:0 4755
/usr/lib/app 101:102 755
/usr/lib/app/data 101:0 640
/usr/share/base/file 0:0 644
/var/mail 0:0 775
shown
chowned
`
	if res.Out != wantOut {
		t.Errorf("the script saw:\n%s\nwant:\n%s", res.Out, wantOut)
	}
	wantMeta := `{"path":"usr/bin/tool","mode":2541}
{"path":"usr/lib/app","uid":101,"gid":102}
{"path":"usr/lib/app/data","mode":2536,"uid":101}
{"path":"usr/lib/app/data-link","mode":2536,"uid":101}
{"path":"usr/lib/app/null","kind":3,"mode":438,"rdev":259}
{"path":"var/lib/svc","uid":201,"gid":202}
{"path":"var/lib/svc/state","uid":201}
{"path":"var/mail","mode":1533,"gid":8}
`
	if meta != wantMeta {
		t.Errorf("Meta after the run:\n%s\nwant:\n%s", meta, wantMeta)
	}
	if res.IDs != IDsForeign || strings.Join(res.Removed, ",") != "usr/share/base/file" || len(res.Opaque) != 0 {
		t.Errorf("result %+v", res)
	}
	checkGivenBack(t, filepath.Join(dir, "ext"), 0, 0)
}

// checkGivenBack fails unless every file of root belongs to uid:gid and has
// the permission a rootless extraction gives.
func checkGivenBack(t *testing.T, root string, uid, gid uint32) {
	t.Helper()
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			t.Error(err)
			return nil
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != uid || st.Gid != gid {
			t.Errorf("%s belongs to %d:%d, want %d:%d", p, st.Uid, st.Gid, uid, gid)
		}
		if fi.Mode()&os.ModeSymlink == 0 && fi.Mode()&0o600 != 0o600 {
			t.Errorf("%s: mode %v on disk", p, fi.Mode())
		}
		if fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 {
			t.Errorf("%s: setuid or setgid on disk", p)
		}
		return nil
	})
}

// TestUnprivileged runs the scenario as root, as a user with a subordinate
// id range and as one without: the first two must give identical trees,
// Meta and output; without a range, the chown fails with an error that says
// why, and the Meta's owners survive.
func TestUnprivileged(t *testing.T) {
	testenv.NeedTool(t, "newuidmap", "newgidmap")
	sub := testenv.User(t, "sxb-test-sub", true)
	nosub := testenv.User(t, "sxb-test-nosub", false)
	bin := testenv.PortableBinary(t)

	rootDir := t.TempDir()
	makeScenario(t, rootDir)
	if runScenario(rootDir) != 0 {
		t.Fatal("scenario as root failed")
	}
	rootRes, rootMeta := readScenario(t, rootDir)

	runAs := func(u *user.User) (string, scenarioResult, string) {
		dir, err := os.MkdirTemp("", "sxb-sandbox-user-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		makeScenario(t, dir)
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		testenv.Chown(t, dir, u)
		testenv.RunAs(t, u, []string{scenarioEnv + "=" + dir}, bin)
		res, meta := readScenario(t, dir)
		checkGivenBack(t, filepath.Join(dir, "ext"), uint32(uid), uint32(gid))
		return dir, res, meta
	}

	subDir, subRes, subMeta := runAs(sub)
	if subRes.IDs != IDsSubordinate {
		t.Errorf("with a range: ids %v", subRes.IDs)
	}
	subRes.IDs = rootRes.IDs
	if fmt.Sprint(subRes) != fmt.Sprint(rootRes) {
		t.Errorf("as a user with a range:\n%+v\nas root:\n%+v", subRes, rootRes)
	}
	if subMeta != rootMeta {
		t.Errorf("Meta as a user with a range:\n%s\nas root:\n%s", subMeta, rootMeta)
	}
	if a, b := listing(t, filepath.Join(subDir, "ext")), listing(t, filepath.Join(rootDir, "ext")); a != b {
		t.Errorf("tree as a user with a range:\n%s\nas root:\n%s", a, b)
	}

	_, noRes, noMeta := runAs(nosub)
	if noRes.IDs != IDsRootOnly {
		t.Errorf("without a range: ids %v", noRes.IDs)
	}
	if !strings.Contains(noRes.Err, "exited with status 1") || !strings.Contains(noRes.Err, "/etc/subuid") || !strings.Contains(noRes.Err, "sxb-test-nosub") {
		t.Errorf("without a range the chown must fail with a hint: %q", noRes.Err)
	}
	if !strings.Contains(noRes.Out, "/usr/lib/app 0:0 755\n") || !strings.Contains(noRes.Out, "shown\n") || strings.Contains(noRes.Out, "chowned") {
		t.Errorf("without a range the script saw:\n%s", noRes.Out)
	}
	for _, want := range []string{`{"path":"usr/lib/app","uid":101,"gid":102}`, `{"path":"usr/lib/app/data","mode":2536,"uid":101}`, `{"path":"var/mail","mode":1533,"gid":8}`} {
		if !strings.Contains(noMeta, want+"\n") {
			t.Errorf("without a range the Meta lost %s:\n%s", want, noMeta)
		}
	}
}
