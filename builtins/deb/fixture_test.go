package deb

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/internal/testenv"
)

// fpkg describes a fixture package.
type fpkg struct {
	name, version string
	fields        string            // extra control lines
	files         map[string]string // payload path -> content ("->target" makes a symlink)
	zstd          bool
	members       map[string]string // more control members: preinst, postinst, triggers
}

// fixtureRepo is a signed local apt repository built with dpkg-deb,
// apt-ftparchive and gpg.
type fixtureRepo struct {
	dir, keyring, gnupg string
}

func run(t *testing.T, env []string, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newGPG creates a signing key in a fresh GNUPGHOME and exports it.
func newGPG(t *testing.T, email string) (home, keyring string) {
	t.Helper()
	home = t.TempDir()
	env := []string{"GNUPGHOME=" + home}
	run(t, env, home, "gpg", "--batch", "--quick-gen-key", "--passphrase", "", "Fixture <"+email+">", "rsa3072", "sign", "never")
	keyring = filepath.Join(home, "keyring.gpg")
	run(t, env, home, "gpg", "--batch", "--yes", "-o", keyring, "--export", email)
	return home, keyring
}

func buildRepo(t *testing.T, suite string, pkgs []fpkg) *fixtureRepo {
	t.Helper()
	testenv.NeedTool(t, "dpkg-deb", "apt-ftparchive", "gpg", "xz", "gzip", "zstd")
	r := &fixtureRepo{dir: t.TempDir()}
	r.gnupg, r.keyring = newGPG(t, "f@example.invalid")
	pool := filepath.Join(r.dir, "pool/main")
	os.MkdirAll(pool, 0o755)
	for _, p := range pkgs {
		src := t.TempDir()
		os.MkdirAll(filepath.Join(src, "DEBIAN"), 0o755)
		arch := "amd64"
		if strings.Contains(p.fields, "Architecture:") {
			arch = ""
		}
		ctrl := fmt.Sprintf("Package: %s\nVersion: %s\nMaintainer: T <t@example.invalid>\nDescription: fixture %s\n", p.name, p.version, p.name)
		if arch != "" {
			ctrl += "Architecture: " + arch + "\n"
		}
		ctrl += p.fields
		os.WriteFile(filepath.Join(src, "DEBIAN/control"), []byte(ctrl), 0o644)
		for name, content := range p.members {
			os.WriteFile(filepath.Join(src, "DEBIAN", name), []byte(content), 0o755)
			if name == "triggers" {
				os.Chmod(filepath.Join(src, "DEBIAN", name), 0o644)
			}
		}
		for path, content := range p.files {
			full := filepath.Join(src, path)
			os.MkdirAll(filepath.Dir(full), 0o755)
			if strings.HasPrefix(content, "->") {
				os.Symlink(content[2:], full)
				continue
			}
			mode := os.FileMode(0o644)
			if strings.Contains(path, "/bin/") {
				mode = 0o755
			}
			os.WriteFile(full, []byte(content), mode)
			os.Chmod(full, mode)
		}
		if c, ok := p.files["etc/"+p.name+".conf"]; ok && c != "" {
			os.WriteFile(filepath.Join(src, "DEBIAN/conffiles"), []byte("/etc/"+p.name+".conf\n"), 0o644)
		}
		comp := "-Zxz"
		if p.zstd {
			comp = "-Zzstd"
		}
		run(t, []string{"SOURCE_DATE_EPOCH=1700000000"}, src, "dpkg-deb", "--root-owner-group", comp, "--build", src,
			filepath.Join(pool, fmt.Sprintf("%s_%s_%s.deb", p.name, p.version, "amd64")))
	}
	dists := filepath.Join(r.dir, "dists", suite)
	bin := filepath.Join(dists, "main/binary-amd64")
	os.MkdirAll(bin, 0o755)
	out, err := exec.Command("sh", "-c", "cd "+r.dir+" && apt-ftparchive packages pool > "+filepath.Join(bin, "Packages")).CombinedOutput()
	if err != nil {
		t.Fatalf("apt-ftparchive packages: %v\n%s", err, out)
	}
	run(t, nil, bin, "xz", "-k", "Packages")
	run(t, nil, bin, "gzip", "-kn", "Packages")
	r.sign(t, suite)
	return r
}

// sign (re)writes Release, InRelease and Release.gpg of suite; fields
// are more Release fields (apt-ftparchive's APT::FTPArchive::Release::
// options, "NotAutomatic=yes").
func (r *fixtureRepo) sign(t *testing.T, suite string, fields ...string) {
	t.Helper()
	opts := ""
	for _, f := range fields {
		opts += " -o APT::FTPArchive::Release::" + f
	}
	dists := filepath.Join(r.dir, "dists", suite)
	for _, f := range []string{"Release", "InRelease", "Release.gpg"} {
		os.Remove(filepath.Join(dists, f))
	}
	tmp := filepath.Join(t.TempDir(), "Release")
	cmd := exec.Command("sh", "-c", "apt-ftparchive -o APT::FTPArchive::Release::Suite="+suite+
		" -o APT::FTPArchive::Release::Codename="+suite+
		" -o APT::FTPArchive::Release::Architectures=amd64 -o APT::FTPArchive::Release::Components=main"+opts+" release dists/"+suite+" > "+tmp)
	cmd.Dir = r.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("apt-ftparchive release: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(tmp)
	os.WriteFile(filepath.Join(dists, "Release"), b, 0o644)
	env := []string{"GNUPGHOME=" + r.gnupg}
	run(t, env, dists, "gpg", "--batch", "--yes", "--clearsign", "-o", "InRelease", "Release")
	run(t, env, dists, "gpg", "--batch", "--yes", "-abs", "-o", "Release.gpg", "Release")
}

func (r *fixtureRepo) request(t *testing.T, suite string, pkgs ...string) Request {
	return Request{Distribution: "debian", Release: suite, Arch: "x86-64", Mirror: "file://" + r.dir,
		Keyring: r.keyring, Packages: pkgs, CacheDir: t.TempDir()}
}
