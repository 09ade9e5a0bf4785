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

	"github.com/sxb-build/sxb/builtins/tree"
)

// seedPackages are stand-ins for a Tumbleweed base (systemd, udev) and for
// helm, exercising rich dependencies, file dependencies outside primary,
// caret and tilde versions, hard links, capabilities, setuid, %ghost and
// %doc files.
var seedOSS = []fxPkg{
	{Name: "filesystem", Version: "84.87", Release: "15.1",
		Install: `mkdir -p %{buildroot}/usr/bin %{buildroot}/usr/lib %{buildroot}/etc %{buildroot}/var/log
ln -s usr/bin %{buildroot}/bin
printf 'root:x:0:0:root:/root:/bin/bash\nmessagebus:x:499:499::/:/sbin/nologin\n' > %{buildroot}/etc/passwd
printf 'root:x:0:\nmail:x:12:\nmessagebus:x:499:\n' > %{buildroot}/etc/group`,
		Files: "%dir /usr\n%dir /usr/bin\n%dir /usr/lib\n%dir /etc\n%dir /var\n%dir /var/log\n/bin\n/etc/passwd\n/etc/group"},
	{Name: "bash", Version: "5.2.37", Release: "1.1", Arch: "x86_64", Tags: "Requires: filesystem\nProvides: /bin/sh",
		Install: "mkdir -p %{buildroot}/usr/bin\necho bash > %{buildroot}/usr/bin/bash\nln -s bash %{buildroot}/usr/bin/sh",
		Files:   "/usr/bin/bash\n/usr/bin/sh"},
	{Name: "glibc", Version: "2.40", Release: "2.1", Arch: "x86_64", Tags: "Requires: filesystem\nProvides: libc.so.6()(64bit)",
		Install: "mkdir -p %{buildroot}/usr/lib64\necho libc > %{buildroot}/usr/lib64/libc.so.6", Files: "/usr/lib64/libc.so.6"},
	{Name: "dbus-1", Version: "1.14.10", Release: "3.1", Arch: "x86_64", Tags: "Requires: glibc\nProvides: dbus",
		Install: "mkdir -p %{buildroot}/usr/bin\necho dbus > %{buildroot}/usr/bin/dbus-daemon",
		Files:   "%attr(4750,root,messagebus) /usr/bin/dbus-daemon"},
	{Name: "systemd", Version: "256.7", Release: "2.1", Arch: "x86_64",
		Tags: "Requires: libc.so.6()(64bit)\nRequires: /bin/sh\nRequires: (dbus-broker or dbus)\nRequires: (systemd-network if udev)\nRequires(post): rpmlib(PayloadIsZstd)\nRequires: /usr/share/systemd/data/rules.list\nConflicts: sysvinit < 3",
		Install: `mkdir -p %{buildroot}/usr/bin %{buildroot}/usr/lib/systemd %{buildroot}/usr/share/doc/systemd
echo systemd > %{buildroot}/usr/lib/systemd/systemd
echo ctl > %{buildroot}/usr/bin/systemctl
ln %{buildroot}/usr/bin/systemctl %{buildroot}/usr/bin/journalctl
echo ping > %{buildroot}/usr/bin/sd-ping
echo readme > %{buildroot}/usr/share/doc/systemd/README`,
		Files: "/usr/lib/systemd\n/usr/bin/systemctl\n/usr/bin/journalctl\n%caps(cap_net_raw,cap_net_admin=ep) /usr/bin/sd-ping\n%doc /usr/share/doc/systemd/README\n%ghost /var/log/systemd.log"},
	{Name: "systemd-data", Version: "256.7", Release: "2.1",
		Install: "mkdir -p %{buildroot}/usr/share/systemd/data\necho rules > %{buildroot}/usr/share/systemd/data/rules.list",
		Files:   "/usr/share/systemd/data"},
	{Name: "systemd-network", Version: "256.7", Release: "2.1", Arch: "x86_64", Tags: "Requires: systemd = 256.7-2.1",
		Install: "mkdir -p %{buildroot}/usr/lib/systemd\necho networkd > %{buildroot}/usr/lib/systemd/systemd-networkd",
		Files:   "/usr/lib/systemd/systemd-networkd"},
	{Name: "udev", Version: "256.7", Release: "2.1", Arch: "x86_64", Tags: "Requires: systemd = 256.7-2.1\nRequires: (kmod >= 33~rc1 with kmod-compat)",
		Install: "mkdir -p %{buildroot}/usr/bin\necho udevadm > %{buildroot}/usr/bin/udevadm",
		Files:   "%attr(0750,root,mail) /usr/bin/udevadm"},
	{Name: "kmod", Version: "33~rc2", Release: "1.1", Arch: "x86_64", Tags: "Provides: kmod-compat",
		Install: "mkdir -p %{buildroot}/usr/bin\necho kmod > %{buildroot}/usr/bin/kmod", Files: "/usr/bin/kmod"},
	{Name: "kmod-old", Version: "34", Release: "1", Arch: "x86_64", Tags: "Provides: kmod = 32",
		Install: "mkdir -p %{buildroot}/usr/bin\necho kmod > %{buildroot}/usr/bin/kmod-old", Files: "/usr/bin/kmod-old"},
	// helm: caret version, a file dependency only in filelists, a
	// Recommends that stays out by default.
	{Name: "helm", Version: "3.16.1", Release: "1.1", Arch: "x86_64",
		Tags:    "Requires: libc.so.6()(64bit)\nRequires: (git-core or git)\nRequires: kubernetes-client > 1.31\nRecommends: helm-bash-completion\nRequires: /usr/share/helm/plugins.conf",
		Install: "mkdir -p %{buildroot}/usr/bin\necho helm-3.16.1 > %{buildroot}/usr/bin/helm", Files: "/usr/bin/helm"},
	{Name: "helm-data", Version: "3.16.1", Release: "1.1",
		Install: "mkdir -p %{buildroot}/usr/share/helm\necho conf > %{buildroot}/usr/share/helm/plugins.conf", Files: "/usr/share/helm"},
	{Name: "helm-bash-completion", Version: "3.16.1", Release: "1.1", Tags: "Requires: helm",
		Install: "mkdir -p %{buildroot}/usr/share/bash-completion\necho c > %{buildroot}/usr/share/bash-completion/helm", Files: "/usr/share/bash-completion/helm"},
	{Name: "git-core", Version: "2.47.0", Release: "1.1", Arch: "x86_64", Tags: "Requires: libc.so.6()(64bit)",
		Install: "mkdir -p %{buildroot}/usr/bin\necho git > %{buildroot}/usr/bin/git", Files: "/usr/bin/git"},
	{Name: "kubernetes1.31-client", Version: "1.31.0^git20240901", Release: "1.1", Arch: "x86_64", Tags: "Provides: kubernetes-client = 1.31.0^git20240901",
		Install: "mkdir -p %{buildroot}/usr/bin\necho kubectl > %{buildroot}/usr/bin/kubectl1.31", Files: "/usr/bin/kubectl1.31"},
	{Name: "kubernetes1.30-client", Version: "1.30.5", Release: "1.1", Arch: "x86_64", Tags: "Provides: kubernetes-client = 1.30.5",
		Install: "mkdir -p %{buildroot}/usr/bin\necho kubectl > %{buildroot}/usr/bin/kubectl1.30", Files: "/usr/bin/kubectl1.30"},
}

// The update repository carries a newer helm.
var seedUpdate = []fxPkg{
	{Name: "helm", Version: "3.16.2", Release: "1.1", Arch: "x86_64",
		Tags:    "Requires: libc.so.6()(64bit)\nRequires: (git-core or git)\nRequires: kubernetes-client > 1.31\nRecommends: helm-bash-completion\nRequires: /usr/share/helm/plugins.conf",
		Install: "mkdir -p %{buildroot}/usr/bin\necho helm-3.16.2 > %{buildroot}/usr/bin/helm", Files: "/usr/bin/helm"},
}

type seedFixture struct {
	dir, mirror, keyring string
	env                  *fxEnv
}

var (
	seedOnce sync.Once
	seedFx   *seedFixture
	seedErr  string
)

// seedRepo builds (once per test binary) a mirror laid out like
// download.opensuse.org: tumbleweed/repo/oss and update/tumbleweed, with
// zstd metadata and signed repomd.xml.
func seedRepo(t *testing.T) *seedFixture {
	t.Helper()
	seedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sxb-rpm-seed-")
		if err != nil {
			seedErr = err.Error()
			return
		}
		ok := false
		defer func() {
			if !ok && seedErr == "" {
				seedErr = "building the fixture failed (see the first test's log)"
			}
		}()
		env := newFxEnv(t, dir, "fixture@example.invalid")
		mirror := filepath.Join(dir, "mirror")
		oss := filepath.Join(mirror, "tumbleweed/repo/oss")
		upd := filepath.Join(mirror, "update/tumbleweed")
		env.build(filepath.Join(oss, "x86_64"), seedOSS)
		env.createrepo(oss, true, true)
		env.build(filepath.Join(upd, "x86_64"), seedUpdate)
		env.createrepo(upd, true, true)
		seedFx = &seedFixture{dir: dir, mirror: mirror, keyring: env.keyring, env: env}
		ok = true
	})
	if seedFx == nil {
		t.Fatal(seedErr)
	}
	return seedFx
}

func TestMain(m *testing.M) {
	code := m.Run()
	if seedFx != nil {
		os.RemoveAll(seedFx.dir)
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
	want := "bash-5.2.37-1.1.x86_64 dbus-1-1.14.10-3.1.x86_64 filesystem-84.87-15.1.noarch glibc-2.40-2.1.x86_64 kmod-33~rc2-1.1.x86_64 systemd-256.7-2.1.x86_64 systemd-data-256.7-2.1.noarch systemd-network-256.7-2.1.x86_64 udev-256.7-2.1.x86_64"
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
