package deb

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/builtins/fetch"
	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/testenv"
)

// bookwormCache is shared by the tests of one machine so reruns do not
// download the archive again.
func bookwormCache(t testing.TB) string {
	d := filepath.Join(os.TempDir(), "sxb-deb-test-cache")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// aptState is a private apt configuration reading bookworm, with its
// lists fetched once.
type aptState struct {
	dir, conf string
}

func newAptState(t *testing.T) *aptState {
	t.Helper()
	testenv.NeedTool(t, "apt-get")
	d := t.TempDir()
	for _, p := range []string{"etc/apt/sources.list.d", "etc/apt/preferences.d", "etc/apt/apt.conf.d", "lists/partial", "cache/archives/partial"} {
		os.MkdirAll(filepath.Join(d, p), 0o755)
	}
	kr := "/usr/share/keyrings/debian-archive-keyring.gpg"
	os.WriteFile(filepath.Join(d, "etc/apt/sources.list"), []byte(fmt.Sprintf(
		"deb [signed-by=%[1]s] http://deb.debian.org/debian bookworm main\n"+
			"deb [signed-by=%[1]s] http://deb.debian.org/debian bookworm-updates main\n"+
			"deb [signed-by=%[1]s] http://deb.debian.org/debian-security bookworm-security main\n", kr)), 0o644)
	a := &aptState{dir: d, conf: filepath.Join(d, "apt.conf")}
	os.WriteFile(a.conf, []byte(fmt.Sprintf(`Dir::Etc "%[1]s/etc/apt";
Dir::State::Lists "%[1]s/lists";
Dir::Cache "%[1]s/cache";
APT::Architecture "amd64";
APT::Architectures "amd64";
Acquire::Languages "none";
APT::Sandbox::User "root";
`, d)), 0o644)
	cmd := exec.Command("apt-get", "update", "-q")
	cmd.Env = append(os.Environ(), "APT_CONFIG="+a.conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("apt-get update: %v\n%s", err, out)
	}
	return a
}

// simulate returns "name version" of what apt would install for pkgs into
// a system whose dpkg status is the file status.
func (a *aptState) simulate(t *testing.T, status string, recommends bool, pkgs []string) []string {
	t.Helper()
	cmd := exec.Command("apt-get", append([]string{"install", "-s", "-q", "-o", "Dir::State::Status=" + status,
		"-o", fmt.Sprintf("APT::Install-Recommends=%v", recommends)}, pkgs...)...)
	cmd.Env = append(os.Environ(), "APT_CONFIG="+a.conf)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("apt-get install -s: %v\n%s", err, out)
	}
	var got []string
	for _, l := range strings.Split(string(out), "\n") {
		// Inst jq (1.6-2.1 Debian:12.x/stable [amd64])
		if f := strings.Fields(l); len(f) >= 3 && f[0] == "Inst" {
			got = append(got, f[1]+" "+strings.TrimPrefix(f[2], "("))
		}
	}
	sort.Strings(got)
	return got
}

func planSet(p *Plan) []string {
	var out []string
	for _, pk := range p.Packages {
		out = append(out, pk.Name+" "+pk.Version)
	}
	sort.Strings(out)
	return out
}

func TestBookwormMatchesApt(t *testing.T) {
	testenv.NeedNetwork(t)
	ctx := context.Background()
	cache := bookwormCache(t)
	req := Request{Distribution: "debian", Release: "bookworm", Arch: "x86-64",
		Packages: []string{"systemd", "udev"}, BaseImage: true, CacheDir: cache}
	plan, err := Resolve(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	// apt gets the same request: the named packages and every Essential
	// one (as mmdebstrap's essential variant passes them), plus
	// usr-is-merged, which sxb prefers over usrmerge.
	ess := []string{"systemd", "udev", "usr-is-merged"}
	seen := map[string]bool{}
	u, err := loadUniverse(ctx, &req, "amd64", &fetch.Fetcher{CacheDir: cache}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range u.pkgs {
		if p.Essential && !seen[p.Name] {
			ess = append(ess, p.Name)
			seen[p.Name] = true
		}
	}
	empty := filepath.Join(t.TempDir(), "status")
	os.WriteFile(empty, nil, 0o644)
	apt := newAptState(t)
	want := apt.simulate(t, empty, false, ess)
	got := planSet(plan)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("sxb and apt differ\nsxb (%d): %v\napt (%d): %v", len(got), got, len(want), want)
	}
	t.Logf("base: %d packages, identical to apt", len(got))

	root := filepath.Join(t.TempDir(), "base")
	meta := tree.NewMeta()
	if err := Install(ctx, plan, root, meta, InstallOptions{WithDocs: true}); err != nil {
		t.Fatal(err)
	}
	// dpkg finds the database consistent and every file matching its
	// md5sums.
	for _, args := range [][]string{{"--audit"}, {"--verify"}} {
		out, err := exec.Command("dpkg", append([]string{"--root=" + root}, args...)...).CombinedOutput()
		if err != nil || len(out) != 0 {
			t.Errorf("dpkg %v: %v\n%s", args, err, out)
		}
	}
	// The users and groups systemd's postinst would create are there:
	// systemd-sysusers finds nothing to add.
	pw, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
	gr, _ := os.ReadFile(filepath.Join(root, "etc/group"))
	if !strings.Contains(string(pw), "systemd-network:x:") || !strings.Contains(string(gr), "systemd-journal:x:") {
		t.Errorf("sysusers.d accounts missing:\n%s\n%s", pw, gr)
	}
	if out, err := exec.Command("systemd-sysusers", "--root="+root).CombinedOutput(); err != nil {
		t.Errorf("systemd-sysusers: %v\n%s", err, out)
	}
	pw2, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
	gr2, _ := os.ReadFile(filepath.Join(root, "etc/group"))
	if string(pw) != string(pw2) || string(gr) != string(gr2) {
		t.Errorf("systemd-sysusers still had accounts to add")
	}
	for link, want := range map[string]string{"usr/bin/awk": "/etc/alternatives/awk", "etc/alternatives/awk": "/usr/bin/mawk", "var/run": "/run", "bin": "usr/bin"} {
		if got, err := os.Readlink(filepath.Join(root, link)); err != nil || got != want {
			t.Errorf("%s -> %q (%v), want %q", link, got, err, want)
		}
	}
	for _, f := range []string{"usr/lib/systemd/systemd", "usr/bin/udevadm", "etc/passwd", "etc/os-release", "usr/lib64/ld-linux-x86-64.so.2"} {
		if _, err := os.Lstat(filepath.Join(root, f)); err != nil {
			t.Errorf("base lacks %s: %v", f, err)
		}
	}
	// jq on top, resolved against the base's dpkg database, compared with
	// apt reading that same database.
	req2 := Request{Distribution: "debian", Release: "bookworm", Arch: "x86-64",
		Packages: []string{"jq"}, BaseRoot: root, CacheDir: cache}
	plan2, err := Resolve(ctx, req2)
	if err != nil {
		t.Fatal(err)
	}
	want2 := apt.simulate(t, filepath.Join(root, "var/lib/dpkg/status"), false, []string{"jq"})
	if got2 := planSet(plan2); strings.Join(got2, "\n") != strings.Join(want2, "\n") {
		t.Fatalf("jq layer: sxb %v, apt %v", got2, want2)
	}
	t.Logf("jq layer: %v, identical to apt", got2FromPlan(plan2))
	if err := Install(ctx, plan2, root, meta, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	n, err := tree.Load(root, tree.Options{Meta: meta, Epoch: -1})
	if err != nil {
		t.Fatal(err)
	}
	jq := n.Lookup("usr/bin/jq")
	if jq == nil || jq.Kind != tree.Regular || jq.Mode != 0o755 || jq.UID != 0 {
		t.Fatalf("usr/bin/jq = %+v", jq)
	}
	if su := n.Lookup("usr/bin/su"); su == nil || su.Mode&0o4000 == 0 {
		t.Errorf("usr/bin/su lost its setuid bit: %+v", su)
	}
	// dpkg reads the database and agrees on the package count.
	out, err := exec.Command("dpkg-query", "--admindir="+filepath.Join(root, "var/lib/dpkg"), "-W", "-f", "${Package}\n").Output()
	if err != nil {
		t.Fatal(err)
	}
	if c := strings.Count(string(out), "\n"); c != len(plan.Packages)+len(plan2.Packages) {
		t.Errorf("dpkg-query lists %d packages, want %d", c, len(plan.Packages)+len(plan2.Packages))
	}
}

func got2FromPlan(p *Plan) string { return strings.Join(planSet(p), ", ") }

// TestBookwormForeignArch installs arm64 packages on whatever the host is:
// nothing is executed, so no emulation is needed.
func TestBookwormForeignArch(t *testing.T) {
	testenv.NeedNetwork(t)
	ctx := context.Background()
	plan, err := Resolve(ctx, Request{Distribution: "debian", Release: "bookworm", Arch: "arm64",
		Packages: []string{"jq"}, CacheDir: bookwormCache(t)})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range plan.Packages {
		if p.Arch != "arm64" && p.Arch != "all" {
			t.Errorf("%s is %s", p.Name, p.Arch)
		}
	}
	root := filepath.Join(t.TempDir(), "root")
	if err := Install(ctx, plan, root, tree.NewMeta(), InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "usr/bin/jq"))
	if err != nil {
		t.Fatal(err)
	}
	// ELF e_machine 183 is EM_AARCH64.
	if len(b) < 20 || string(b[1:4]) != "ELF" || b[18] != 183 || b[19] != 0 {
		t.Errorf("usr/bin/jq is not an aarch64 ELF")
	}
	if _, err := os.Lstat(filepath.Join(root, "lib64")); err == nil {
		t.Errorf("arm64 tree has a lib64 link")
	}
}

// TestBookwormMoreSetsMatchApt compares more requests with apt, chosen for
// virtual packages with several providers (container-network-stack,
// mail-transport-agent), Recommends, and size (gnome-core, 800 packages).
func TestBookwormMoreSetsMatchApt(t *testing.T) {
	testenv.NeedNetwork(t)
	apt := newAptState(t)
	empty := filepath.Join(t.TempDir(), "status")
	os.WriteFile(empty, nil, 0o644)
	for _, tc := range []struct {
		pkgs       []string
		recommends bool
	}{
		{[]string{"podman"}, false},
		{[]string{"mailutils"}, false},
		{[]string{"network-manager", "openssh-server"}, false},
		{[]string{"gnome-core"}, false},
		{[]string{"openssh-server"}, true},
		{[]string{"apache2", "php"}, true},
	} {
		plan, err := Resolve(context.Background(), Request{Release: "bookworm", Packages: tc.pkgs,
			WithRecommends: tc.recommends, CacheDir: bookwormCache(t)})
		if err != nil {
			t.Errorf("%v: %v", tc.pkgs, err)
			continue
		}
		// usr-is-merged is named for apt as sxb prefers it over usrmerge.
		want := apt.simulate(t, empty, tc.recommends, append([]string{"usr-is-merged"}, tc.pkgs...))
		isUIM := func(s string) bool { return strings.HasPrefix(s, "usr-is-merged ") }
		got := slices.DeleteFunc(planSet(plan), isUIM)
		want = slices.DeleteFunc(want, isUIM)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%v (recommends %v): sxb %d packages, apt %d\nsxb: %v\napt: %v", tc.pkgs, tc.recommends, len(got), len(want), got, want)
			continue
		}
		t.Logf("%v (recommends %v): %d packages, identical to apt", tc.pkgs, tc.recommends, len(got))
	}
}
