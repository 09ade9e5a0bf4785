// Package rpmtest builds hermetic rpm-md repositories for tests: packages
// made with rpmbuild (zstd payloads, SOURCE_DATE_EPOCH, clamped mtimes),
// signed with rpmsign, indexed with createrepo_c, optionally recompressed
// to zstd metadata as Tumbleweed publishes it, with repomd.xml signed by a
// throw-away GnuPG key. SeedMirror lays out a mirror like
// download.opensuse.org with stand-ins for the seed example (a
// systemd/udev base and helm).
package rpmtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/internal/testenv"
)

// Pkg describes one fixture package built with rpmbuild.
type Pkg struct {
	// Name, Version and Release (default "1") of the package.
	Name, Version, Release string
	// Arch is the build target; "" means noarch.
	Arch string
	// Tags are extra preamble lines ("Requires: foo").
	Tags string
	// Install is the %install script; Files the body of %files.
	Install, Files string
	// Scripts are more spec sections after %files: scriptlets and
	// triggers ("%post\necho hi\n").
	Scripts string
	// Unsigned leaves the package without a header signature.
	Unsigned bool
	// Payload is rpm's _binary_payload ("w19.zstdio" when empty;
	// "w6.xzdio", "w9.gzdio", "w3.zstdio", ...).
	Payload string
}

// Env holds a GnuPG home and rpm HOME for building fixtures.
type Env struct {
	dir   string
	gnupg string
	home  string
	// Keyring is the armored public key file.
	Keyring string
	email   string
}

// NewEnv creates a GnuPG home with a new signing key for email and an
// rpm HOME below dir. It fails the test when a tool is missing.
func NewEnv(t testing.TB, dir, email string) *Env {
	t.Helper()
	return NewEnvAlgo(t, dir, email, "ed25519")
}

// NewEnvAlgo is NewEnv with the key algorithm gpg --quick-gen-key takes
// ("ed25519", "rsa3072", ...).
func NewEnvAlgo(t testing.TB, dir, email, algo string) *Env {
	t.Helper()
	for _, tool := range []string{"rpmbuild", "rpmsign", "createrepo_c", "gpg", "zstd"} {
		testenv.NeedTool(t, tool)
	}
	e := &Env{dir: dir, gnupg: filepath.Join(dir, "gnupg"), home: filepath.Join(dir, "home"), email: email}
	for _, d := range []string{e.gnupg, e.home} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(e.home, ".rpmmacros"), []byte("%_dbpath /usr/lib/sysimage/rpm\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.run(t, dir, "gpg", "--batch", "--quick-gen-key", "--passphrase", "", "Fixture <"+email+">", algo, "sign", "never")
	e.Keyring = filepath.Join(dir, "key.asc")
	out := e.run(t, dir, "gpg", "--armor", "--export", email)
	if err := os.WriteFile(e.Keyring, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *Env) env() []string {
	return append(os.Environ(), "GNUPGHOME="+e.gnupg, "HOME="+e.home, "RPM_FORCE_DEBIAN=1", "SOURCE_DATE_EPOCH=1700000000", "LC_ALL=C")
}

func (e *Env) run(t testing.TB, dir string, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = e.env()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// Build builds the packages into repoDir (flat) and signs the signed ones.
func (e *Env) Build(t testing.TB, repoDir string, pkgs []Pkg) {
	t.Helper()
	top := filepath.Join(e.dir, "top")
	if err := os.MkdirAll(repoDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range pkgs {
		arch := p.Arch
		if arch == "" {
			arch = "noarch"
		}
		rel := p.Release
		if rel == "" {
			rel = "1"
		}
		files := p.Files
		spec := fmt.Sprintf("Name: %s\nVersion: %s\nRelease: %s\nSummary: fixture %s\nLicense: MIT\nBuildArch: %s\nAutoReqProv: no\n%s\n%%description\nfixture\n%%install\nmkdir -p %%{buildroot}\n%s\n%%files\n%s\n%s\n",
			p.Name, p.Version, rel, p.Name, arch, p.Tags, p.Install, files, p.Scripts)
		sp := filepath.Join(e.dir, p.Name+".spec")
		if err := os.WriteFile(sp, []byte(spec), 0o644); err != nil {
			t.Fatal(err)
		}
		os.RemoveAll(filepath.Join(top, "RPMS"))
		payload := p.Payload
		if payload == "" {
			payload = "w19.zstdio"
		}
		e.run(t, e.dir, "rpmbuild", "--define", "_topdir "+top, "--define", "_binary_payload "+payload,
			"--define", "use_source_date_epoch_as_buildtime 1", "--define", "debug_package %{nil}",
			"--define", "__os_install_post %{nil}", "--define", "_build_id_links none",
			"--define", "_buildhost fixture", "--define", "clamp_mtime_to_source_date_epoch 1", "--target", arch, "--quiet", "-bb", sp)
		built, _ := filepath.Glob(filepath.Join(top, "RPMS", "*", "*.rpm"))
		if len(built) != 1 {
			t.Fatalf("rpmbuild %s: got %v", p.Name, built)
		}
		dst := filepath.Join(repoDir, filepath.Base(built[0]))
		if err := os.Rename(built[0], dst); err != nil {
			t.Fatal(err)
		}
		if !p.Unsigned {
			gpg, _ := exec.LookPath("gpg")
			e.run(t, e.dir, "rpmsign", "--define", "_gpg_name "+e.email, "--define", "__gpg "+gpg, "--addsign", dst)
		}
	}
}

// CreateRepo indexes repoDir, recompresses the metadata with zstd as
// Tumbleweed publishes it (when zst), and signs repomd.xml (when sign).
func (e *Env) CreateRepo(t testing.TB, repoDir string, zst, sign bool) {
	t.Helper()
	e.run(t, repoDir, "createrepo_c", "--revision", "1", "--set-timestamp-to-revision", "--no-database", "--simple-md-filenames", repoDir)
	md := filepath.Join(repoDir, "repodata")
	if zst {
		rm, err := os.ReadFile(filepath.Join(md, "repomd.xml"))
		if err != nil {
			t.Fatal(err)
		}
		s := string(rm)
		for _, typ := range []string{"primary", "filelists", "other"} {
			gz := filepath.Join(md, typ+".xml.gz")
			raw := e.run(t, md, "gzip", "-dc", gz)
			zpath := filepath.Join(md, typ+".xml.zst")
			if err := os.WriteFile(filepath.Join(md, typ+".xml"), raw, 0o644); err != nil {
				t.Fatal(err)
			}
			e.run(t, md, "zstd", "-q", "-f", "--rm", "-19", typ+".xml", "-o", zpath)
			zb, err := os.ReadFile(zpath)
			if err != nil {
				t.Fatal(err)
			}
			os.Remove(gz)
			sum := sha256.Sum256(zb)
			// Rewrite this data block's location, checksum and size.
			re := regexp.MustCompile(`(?s)<data type="` + typ + `">.*?</data>`)
			block := re.FindString(s)
			nb := regexp.MustCompile(`<checksum type="sha256">[0-9a-f]+</checksum>`).ReplaceAllString(block, `<checksum type="sha256">`+hex.EncodeToString(sum[:])+`</checksum>`)
			nb = strings.Replace(nb, `repodata/`+typ+`.xml.gz`, `repodata/`+typ+`.xml.zst`, 1)
			nb = regexp.MustCompile(`<size>\d+</size>`).ReplaceAllString(nb, fmt.Sprintf("<size>%d</size>", len(zb)))
			s = strings.Replace(s, block, nb, 1)
		}
		if err := os.WriteFile(filepath.Join(md, "repomd.xml"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if sign {
		e.run(t, md, "gpg", "--batch", "--yes", "--local-user", e.email, "--detach-sign", "--armor", "repomd.xml")
	}
}

// SeedOSS are stand-ins for a Tumbleweed base (systemd, udev) and for
// helm, exercising rich dependencies, file dependencies outside primary,
// caret and tilde versions, hard links, capabilities, setuid, %ghost and
// %doc files.
var SeedOSS = []Pkg{
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
	{Name: "openSUSE-release", Version: "20241101", Release: "1981.1", Arch: "x86_64", Tags: "Provides: distribution-release",
		Install: `mkdir -p %{buildroot}/usr/lib %{buildroot}/etc
printf 'NAME="openSUSE Tumbleweed"\nID="opensuse-tumbleweed"\nID_LIKE="opensuse suse"\nVERSION_ID="20241101"\nPRETTY_NAME="openSUSE Tumbleweed"\n' > %{buildroot}/usr/lib/os-release
ln -s ../usr/lib/os-release %{buildroot}/etc/os-release`,
		Files: "/usr/lib/os-release\n/etc/os-release"},
	{Name: "systemd", Version: "256.7", Release: "2.1", Arch: "x86_64",
		Tags: "Requires: distribution-release\nRequires: libc.so.6()(64bit)\nRequires: /bin/sh\nRequires: (dbus-broker or dbus)\nRequires: (systemd-network if udev)\nRequires(post): rpmlib(PayloadIsZstd)\nRequires: /usr/share/systemd/data/rules.list\nConflicts: sysvinit < 3",
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

// SeedUpdate is the update repository: a newer helm.
var SeedUpdate = []Pkg{
	{Name: "helm", Version: "3.16.2", Release: "1.1", Arch: "x86_64",
		Tags:    "Requires: libc.so.6()(64bit)\nRequires: (git-core or git)\nRequires: kubernetes-client > 1.31\nRecommends: helm-bash-completion\nRequires: /usr/share/helm/plugins.conf",
		Install: "mkdir -p %{buildroot}/usr/bin\necho helm-3.16.2 > %{buildroot}/usr/bin/helm", Files: "/usr/bin/helm"},
}

// SeedMirror builds, below dir, a mirror laid out like
// download.opensuse.org: tumbleweed/repo/oss (SeedOSS) and
// update/tumbleweed (SeedUpdate), both with zstd metadata and a signed
// repomd.xml. It returns the fixture environment (whose Keyring verifies
// everything) and the mirror directory, usable as a file:// mirror for
// distribution "opensuse", release "tumbleweed", arch x86-64.
func SeedMirror(t testing.TB, dir string) (*Env, string) {
	t.Helper()
	return TumbleweedMirror(t, dir, SeedOSS, SeedUpdate)
}

// TumbleweedMirror builds, below dir, a mirror laid out like
// download.opensuse.org with the packages oss in tumbleweed/repo/oss and
// update in update/tumbleweed (zstd metadata, signed repomd.xml), and
// returns the fixture environment and the mirror directory.
func TumbleweedMirror(t testing.TB, dir string, oss, update []Pkg) (*Env, string) {
	t.Helper()
	env := NewEnv(t, dir, "fixture@example.invalid")
	mirror := filepath.Join(dir, "mirror")
	for _, r := range []struct {
		dir  string
		pkgs []Pkg
	}{{filepath.Join(mirror, "tumbleweed/repo/oss"), oss}, {filepath.Join(mirror, "update/tumbleweed"), update}} {
		env.Build(t, filepath.Join(r.dir, "x86_64"), r.pkgs)
		env.CreateRepo(t, r.dir, true, true)
	}
	return env, mirror
}
