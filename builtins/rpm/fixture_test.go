package rpm

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

// fxPkg describes one fixture package built with rpmbuild.
type fxPkg struct {
	Name, Version, Release string
	Arch                   string // "" = noarch
	Tags                   string // extra preamble lines (Requires: ...)
	Install                string // %install script
	Files                  string // %files section body
	Unsigned               bool
}

// fxEnv holds a GnuPG home and rpm HOME for building fixtures.
type fxEnv struct {
	t       *testing.T
	dir     string
	gnupg   string
	home    string
	keyring string // armored public key
	email   string
}

func newFxEnv(t *testing.T, dir, email string) *fxEnv {
	t.Helper()
	for _, tool := range []string{"rpmbuild", "rpmsign", "createrepo_c", "gpg", "zstd"} {
		testenv.NeedTool(t, tool)
	}
	e := &fxEnv{t: t, dir: dir, gnupg: filepath.Join(dir, "gnupg"), home: filepath.Join(dir, "home"), email: email}
	for _, d := range []string{e.gnupg, e.home} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(e.home, ".rpmmacros"), []byte("%_dbpath /usr/lib/sysimage/rpm\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.run(dir, "gpg", "--batch", "--quick-gen-key", "--passphrase", "", "Fixture <"+email+">", "ed25519", "sign", "never")
	e.keyring = filepath.Join(dir, "key.asc")
	out := e.run(dir, "gpg", "--armor", "--export", email)
	if err := os.WriteFile(e.keyring, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *fxEnv) env() []string {
	return append(os.Environ(), "GNUPGHOME="+e.gnupg, "HOME="+e.home, "RPM_FORCE_DEBIAN=1", "SOURCE_DATE_EPOCH=1700000000", "LC_ALL=C")
}

func (e *fxEnv) run(dir string, name string, args ...string) []byte {
	e.t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = e.env()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		e.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// build builds the packages into repoDir (flat) and signs the signed ones.
func (e *fxEnv) build(repoDir string, pkgs []fxPkg) {
	e.t.Helper()
	top := filepath.Join(e.dir, "top")
	if err := os.MkdirAll(repoDir, 0o755); err != nil {
		e.t.Fatal(err)
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
		spec := fmt.Sprintf("Name: %s\nVersion: %s\nRelease: %s\nSummary: fixture %s\nLicense: MIT\nBuildArch: %s\nAutoReqProv: no\n%s\n%%description\nfixture\n%%install\nmkdir -p %%{buildroot}\n%s\n%%files\n%s\n",
			p.Name, p.Version, rel, p.Name, arch, p.Tags, p.Install, files)
		sp := filepath.Join(e.dir, p.Name+".spec")
		if err := os.WriteFile(sp, []byte(spec), 0o644); err != nil {
			e.t.Fatal(err)
		}
		os.RemoveAll(filepath.Join(top, "RPMS"))
		e.run(e.dir, "rpmbuild", "--define", "_topdir "+top, "--define", "_binary_payload w19.zstdio",
			"--define", "use_source_date_epoch_as_buildtime 1", "--define", "debug_package %{nil}",
			"--define", "__os_install_post %{nil}", "--define", "_build_id_links none",
			"--define", "_buildhost fixture", "--define", "clamp_mtime_to_source_date_epoch 1", "--target", arch, "--quiet", "-bb", sp)
		built, _ := filepath.Glob(filepath.Join(top, "RPMS", "*", "*.rpm"))
		if len(built) != 1 {
			e.t.Fatalf("rpmbuild %s: got %v", p.Name, built)
		}
		dst := filepath.Join(repoDir, filepath.Base(built[0]))
		if err := os.Rename(built[0], dst); err != nil {
			e.t.Fatal(err)
		}
		if !p.Unsigned {
			gpg, _ := exec.LookPath("gpg")
			e.run(e.dir, "rpmsign", "--define", "_gpg_name "+e.email, "--define", "__gpg "+gpg, "--addsign", dst)
		}
	}
}

// createrepo indexes repoDir, recompresses the metadata with zstd as
// Tumbleweed publishes it (when zst), and signs repomd.xml (when sign).
func (e *fxEnv) createrepo(repoDir string, zst, sign bool) {
	e.t.Helper()
	e.run(repoDir, "createrepo_c", "--revision", "1", "--set-timestamp-to-revision", "--no-database", "--simple-md-filenames", repoDir)
	md := filepath.Join(repoDir, "repodata")
	if zst {
		rm, err := os.ReadFile(filepath.Join(md, "repomd.xml"))
		if err != nil {
			e.t.Fatal(err)
		}
		s := string(rm)
		for _, typ := range []string{"primary", "filelists", "other"} {
			gz := filepath.Join(md, typ+".xml.gz")
			raw := e.run(md, "gzip", "-dc", gz)
			zpath := filepath.Join(md, typ+".xml.zst")
			if err := os.WriteFile(filepath.Join(md, typ+".xml"), raw, 0o644); err != nil {
				e.t.Fatal(err)
			}
			e.run(md, "zstd", "-q", "-f", "--rm", "-19", typ+".xml", "-o", zpath)
			zb, err := os.ReadFile(zpath)
			if err != nil {
				e.t.Fatal(err)
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
			e.t.Fatal(err)
		}
	}
	if sign {
		e.run(md, "gpg", "--batch", "--yes", "--local-user", e.email, "--detach-sign", "--armor", "repomd.xml")
	}
}
