package rpm

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/sxb-build/sxb/builtins/rpm/rpmtest"
	"github.com/sxb-build/sxb/builtins/sandbox"
	"github.com/sxb-build/sxb/builtins/tree"
)

type seedFixture struct {
	dir, mirror, keyring string
	env                  *rpmtest.Env
}

var (
	seedOnce sync.Once
	seedFx   *seedFixture
	seedErr  string
	seedDir  string // removed by TestMain, even when building failed
)

// seedRepo builds (once per test binary) a mirror laid out like
// download.opensuse.org: tumbleweed/repo/oss and update/tumbleweed, with
// zstd metadata and signed repomd.xml.
func seedRepo(t testing.TB) *seedFixture {
	t.Helper()
	seedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sxb-rpm-seed-")
		if err != nil {
			seedErr = err.Error()
			return
		}
		seedDir = dir
		ok := false
		defer func() {
			if !ok && seedErr == "" {
				seedErr = "building the fixture failed (see the first test's log)"
			}
		}()
		env, mirror := rpmtest.SeedMirror(t, dir)
		seedFx = &seedFixture{dir: dir, mirror: mirror, keyring: env.Keyring, env: env}
		ok = true
	})
	if seedFx == nil {
		t.Fatal(seedErr)
	}
	return seedFx
}

func TestMain(m *testing.M) {
	sandbox.Init()
	code := m.Run()
	if seedDir != "" {
		os.RemoveAll(seedDir)
	}
	os.Exit(code)
}

func planNames(p *Plan) []string {
	var out []string
	for _, x := range p.Packages {
		out = append(out, x.Name+"-"+x.EVR+"."+x.Arch)
	}
	return out
}

func TestSeedBaseThenHelm(t *testing.T) {
	fx := seedRepo(t)
	ctx := context.Background()
	cache := t.TempDir()
	base := Request{Distribution: "opensuse", Release: "tumbleweed", Arch: "x86-64", Mirror: "file://" + fx.mirror,
		Packages: []string{"systemd", "udev"}, BaseImage: true, Keyring: fx.keyring, CacheDir: cache}
	plan, err := Resolve(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(planNames(plan), " ")
	want := "bash-5.2.37-1.1.x86_64 dbus-1-1.14.10-3.1.x86_64 filesystem-84.87-15.1.noarch glibc-2.40-2.1.x86_64 kmod-33~rc2-1.1.x86_64 openSUSE-release-20241101-1981.1.x86_64 systemd-256.7-2.1.x86_64 systemd-data-256.7-2.1.noarch systemd-network-256.7-2.1.x86_64 udev-256.7-2.1.x86_64"
	if got != want {
		t.Fatalf("base plan:\n got %s\nwant %s", got, want)
	}
	if plan.CheckSignatures {
		t.Error("openSUSE plan asks for package signature checks; repomd.xml is signed")
	}
	baseRoot := filepath.Join(t.TempDir(), "base")
	baseMeta := tree.NewMeta()
	if err := Install(ctx, plan, baseRoot, baseMeta, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	// Files, links, owners from the tree's own etc/group, caps, ghosts, docs.
	checkFile(t, baseRoot, "usr/lib/systemd/systemd", "systemd\n")
	checkFile(t, baseRoot, "etc/os-release", "NAME=\"openSUSE Tumbleweed\"\nID=\"opensuse-tumbleweed\"\nID_LIKE=\"opensuse suse\"\nVERSION_ID=\"20241101\"\nPRETTY_NAME=\"openSUSE Tumbleweed\"\n")
	if fi, err := os.Lstat(filepath.Join(baseRoot, "bin")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("bin is not a symlink: %v", err)
	}
	a, _ := os.Stat(filepath.Join(baseRoot, "usr/bin/systemctl"))
	b, _ := os.Stat(filepath.Join(baseRoot, "usr/bin/journalctl"))
	if a == nil || b == nil || !os.SameFile(a, b) {
		t.Error("systemctl and journalctl are not hard links")
	}
	for _, p := range []string{"var/log/systemd.log", "usr/share/doc/systemd/README"} {
		if _, err := os.Lstat(filepath.Join(baseRoot, p)); err == nil {
			t.Errorf("%s was installed (ghost/doc)", p)
		}
	}
	o, _ := baseMeta.Get("usr/bin/dbus-daemon")
	if o.Mode == nil || *o.Mode != 04750 || o.GID == nil || *o.GID != 499 || o.UID == nil || *o.UID != 0 {
		t.Errorf("dbus-daemon metadata %+v", o)
	}
	o, _ = baseMeta.Get("usr/bin/udevadm")
	if o.GID == nil || *o.GID != 12 || *o.Mode != 0750 {
		t.Errorf("udevadm metadata %+v", o)
	}
	o, _ = baseMeta.Get("usr/bin/sd-ping")
	capv := o.Xattrs["security.capability"]
	if len(capv) != 20 || binary.LittleEndian.Uint32(capv) != 0x02000001 || binary.LittleEndian.Uint32(capv[4:]) != 1<<12|1<<13 {
		t.Errorf("sd-ping capability %x", capv)
	}
	if o.Mtime == nil || *o.Mtime != 1700000000 {
		t.Errorf("sd-ping mtime %v", o.Mtime)
	}
	// The tree loads with the metadata applied.
	root, err := tree.Load(baseRoot, tree.Options{Meta: baseMeta, Epoch: -1})
	if err != nil {
		t.Fatal(err)
	}
	if n := root.Lookup("usr/bin/dbus-daemon"); n == nil || n.Mode != 04750 || n.GID != 499 {
		t.Errorf("loaded dbus-daemon %+v", n)
	}
	inst, err := ReadInstalled(baseRoot)
	if err != nil || len(inst) != len(plan.Packages) {
		t.Fatalf("installed record: %v, %d entries", err, len(inst))
	}
	for _, p := range inst {
		if p.License != "MIT" {
			t.Errorf("%s: License %q in the installed record, want the header's MIT", p.Name, p.License)
		}
	}

	// helm on top of the base: only what the base lacks.
	ext := base
	ext.BaseImage, ext.BaseRoot, ext.Packages = false, baseRoot, []string{"helm"}
	plan, err = Resolve(ctx, ext)
	if err != nil {
		t.Fatal(err)
	}
	got = strings.Join(planNames(plan), " ")
	want = "git-core-2.47.0-1.1.x86_64 helm-3.16.2-1.1.x86_64 helm-data-3.16.1-1.1.noarch kubernetes1.31-client-1.31.0^git20240901-1.1.x86_64"
	if got != want {
		t.Fatalf("helm plan:\n got %s\nwant %s", got, want)
	}
	if !strings.Contains(plan.Packages[1].URL, "update/tumbleweed") {
		t.Errorf("helm comes from %s, want the update repository", plan.Packages[1].URL)
	}
	extRoot := filepath.Join(t.TempDir(), "helm")
	if err := Install(ctx, plan, extRoot, tree.NewMeta(), InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	checkFile(t, extRoot, "usr/bin/helm", "helm-3.16.2\n")
	// Recommends on request.
	ext.WithRecommends = true
	plan, err = Resolve(ctx, ext)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(planNames(plan), " "), "helm-bash-completion") {
		t.Errorf("WithRecommends plan lacks helm-bash-completion: %v", planNames(plan))
	}
}

func checkFile(t *testing.T, root, rel, want string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Errorf("%s: %v", rel, err)
		return
	}
	if string(b) != want {
		t.Errorf("%s = %q, want %q", rel, b, want)
	}
}

var _ = sort.Strings
