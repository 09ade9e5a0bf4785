// Package pacmantest builds the signed Arch repositories the pacman tests
// install from (builtins/pacman/testdata/mkfixture.sh: makepkg as nobody,
// repo-add, gpg), once per machine: the result is kept in the temporary
// directory under a name derived from the script and the PKGBUILDs, as
// makepkg's fakeroot phase makes building take minutes (about ten for
// all of pkgbuild/ on a loaded machine). mkfixture.sh also keeps the
// packages of each PKGBUILD in the temporary directory
// (sxb-pacman-pkgcache), so that after a change to one PKGBUILD only that
// one is built again. Tests that change the fixture work on a copy
// (CopyMirror).
package pacmantest

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sxb-build/sxb/internal/testenv"
)

// Fixture is a built fixture.
type Fixture struct {
	// Dir holds everything below.
	Dir string
	// Mirror is the mirror root: Mirror/{core,extra}/os/x86_64/.
	Mirror string
	// KeyringDir is a pacman keyring directory (fixture.gpg, -trusted,
	// -revoked): three master keys, the packager, weak and revoked keys.
	KeyringDir string
	// Packager is the packager's public key file, Stranger a key no
	// keyring has.
	Packager, Stranger string
	// GnuPG is a GNUPGHOME with every secret key.
	GnuPG string
	// PacmanConf and PacmanGnuPG are pacman's configuration (core and
	// extra from Mirror, SigLevel = Required DatabaseOptional) and keyring.
	PacmanConf, PacmanGnuPG string
	// Fingerprints maps master1..3, packager, weak, revoked and stranger
	// to key fingerprints.
	Fingerprints map[string]string
}

var (
	once  sync.Once
	built *Fixture
	err   string
)

// testdata is builtins/pacman/testdata.
func testdata() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata")
}

// Get returns the fixture, building it on first use. It needs root (to
// run makepkg as nobody) and makepkg, repo-add, pacman-key, gpg, fakeroot
// and bsdtar.
func Get(t testing.TB) *Fixture {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "makepkg", "repo-add", "pacman-key", "pacman", "gpg", "fakeroot", "bsdtar", "zstd", "xz")
	once.Do(func() { built, err = build() })
	if built == nil {
		t.Fatalf("building the pacman fixture: %s", err)
	}
	return built
}

func build() (*Fixture, string) {
	src := testdata()
	h := sha256.New()
	files, _ := filepath.Glob(filepath.Join(src, "pkgbuild", "*"))
	files = append(files, filepath.Join(src, "mkfixture.sh"))
	sort.Strings(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err.Error()
		}
		h.Write([]byte(filepath.Base(f) + "\x00"))
		h.Write(b)
	}
	dir := filepath.Join(os.TempDir(), "sxb-pacman-fixture-"+hex.EncodeToString(h.Sum(nil))[:16])
	// One builder at a time across test binaries.
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err.Error()
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return nil, err.Error()
	}
	if _, err := os.Stat(filepath.Join(dir, "pacman.conf")); err != nil {
		tmp := dir + ".tmp"
		os.RemoveAll(tmp)
		out, err := exec.Command(filepath.Join(src, "mkfixture.sh"), tmp).CombinedOutput()
		if err != nil {
			os.RemoveAll(tmp)
			return nil, err.Error() + "\n" + string(out)
		}
		// pacman.conf names the directory: written for the final place.
		conf, _ := os.ReadFile(filepath.Join(tmp, "pacman.conf"))
		os.WriteFile(filepath.Join(tmp, "pacman.conf"), []byte(strings.ReplaceAll(string(conf), tmp, dir)), 0o644)
		if err := os.Rename(tmp, dir); err != nil {
			return nil, err.Error()
		}
	}
	f := &Fixture{Dir: dir, Mirror: filepath.Join(dir, "mirror"), KeyringDir: filepath.Join(dir, "keyrings"),
		Packager: filepath.Join(dir, "packager.gpg"), Stranger: filepath.Join(dir, "stranger.gpg"),
		GnuPG: filepath.Join(dir, "gnupg"), PacmanConf: filepath.Join(dir, "pacman.conf"),
		PacmanGnuPG: filepath.Join(dir, "pacman-gnupg"), Fingerprints: map[string]string{}}
	b, err := os.ReadFile(filepath.Join(dir, "fingerprints"))
	if err != nil {
		return nil, err.Error()
	}
	for _, l := range strings.Fields(string(b)) {
		if k, v, ok := strings.Cut(l, "="); ok {
			f.Fingerprints[k] = v
		}
	}
	return f, ""
}

// StopAgents stops the gpg-agent and dirmngr processes that gpg and
// pacman started for the fixture's key homes (a test binary calls it when
// it is done, so that no daemon outlives the tests).
func StopAgents() {
	if built == nil {
		return
	}
	for _, home := range []string{built.GnuPG, built.PacmanGnuPG} {
		exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
	}
}

// CopyMirror copies the fixture's mirror to a new temporary directory,
// for a test that changes it, and returns the copy's root.
func (f *Fixture) CopyMirror(t testing.TB) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "mirror")
	if out, err := exec.Command("cp", "-a", f.Mirror, dst).CombinedOutput(); err != nil {
		t.Fatalf("copying the mirror: %v\n%s", err, out)
	}
	return dst
}

// PacmanConfFor returns a pacman.conf like the fixture's reading the
// mirror at mirror, with extra [options] lines, written to a temporary
// file.
func (f *Fixture) PacmanConfFor(t testing.TB, mirror string, options ...string) string {
	t.Helper()
	conf := "[options]\nArchitecture = x86_64\nSigLevel = Required DatabaseOptional\nLocalFileSigLevel = Optional\n" +
		strings.Join(options, "\n") + "\n\n[core]\nServer = file://" + mirror + "/$repo/os/$arch\n\n[extra]\nServer = file://" + mirror + "/$repo/os/$arch\n"
	p := filepath.Join(t.TempDir(), "pacman.conf")
	if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
