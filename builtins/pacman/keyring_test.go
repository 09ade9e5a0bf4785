package pacman

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sxb-build/sxb/builtins/pacman/pacmantest"
	"github.com/sxb-build/sxb/internal/testenv"
)

// gpgValid lists the keys GnuPG holds valid (full or ultimate) and not
// disabled in the home dir, leaving out the home's own secret keys.
func gpgValid(t *testing.T, home string) []string {
	t.Helper()
	out, err := exec.Command("gpg", "--homedir", home, "--batch", "--list-keys", "--with-colons").Output()
	if err != nil {
		t.Fatalf("gpg --list-keys: %v", err)
	}
	secret, _ := exec.Command("gpg", "--homedir", home, "--batch", "--list-secret-keys", "--with-colons").Output()
	own := map[string]bool{}
	var valid []string
	for _, pass := range []struct {
		text []byte
		f    func(fpr string, fields []string)
	}{
		{secret, func(fpr string, _ []string) { own[fpr] = true }},
		{out, func(fpr string, f []string) {
			if (f[1] == "f" || f[1] == "u") && !strings.Contains(f[11], "D") && !own[fpr] {
				valid = append(valid, fpr)
			}
		}},
	} {
		var pub []string
		sc := bufio.NewScanner(strings.NewReader(string(pass.text)))
		for sc.Scan() {
			f := strings.Split(sc.Text(), ":")
			switch {
			case f[0] == "pub" || f[0] == "sec":
				pub = f
			case f[0] == "fpr" && pub != nil:
				pass.f(f[9], pub)
				pub = nil
			case f[0] == "sub" || f[0] == "ssb":
				pub = nil
			}
		}
	}
	sort.Strings(valid)
	return valid
}

// TestKeyringMatchesPacmanKey compares which keys the fixture keyring
// trusts with the keyring pacman-key built from it (master keys locally
// signed, owner trust imported, the revoked key disabled).
func TestKeyringMatchesPacmanKey(t *testing.T) {
	fx := pacmantest.Get(t)
	k, err := LoadKeyring(fx.KeyringDir, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := gpgValid(t, fx.PacmanGnuPG)
	if got := k.ValidKeys(); !reflect.DeepEqual(got, want) {
		t.Errorf("valid keys:\n got %v\nwant %v (pacman-key)", got, want)
	}
	for name, ok := range map[string]bool{"master1": true, "packager": true, "weak": false, "revoked": false, "stranger": false} {
		if v, why := k.Valid(fx.Fingerprints[name]); v != ok {
			t.Errorf("%s: valid %v (%s), want %v", name, v, why, ok)
		}
	}
}

// TestArchKeyringMatchesGnuPG reads Debian's copy of Arch's keyring and
// compares the keys sxb trusts with what GnuPG trusts after the steps of
// pacman-key --populate (a local ultimately trusted key lsigns the keys
// of archlinux-trusted, their owner trust is imported, the keys of
// archlinux-revoked are disabled).
func TestArchKeyringMatchesGnuPG(t *testing.T) {
	testenv.NeedTool(t, "gpg")
	dir := "/usr/share/keyrings"
	for _, f := range []string{"archlinux.gpg", "archlinux-trusted", "archlinux-revoked"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("needs Debian's archlinux-keyring package: %v", err)
		}
	}
	home := t.TempDir()
	t.Cleanup(func() { exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run() })
	gpg := func(stdin string, args ...string) {
		t.Helper()
		cmd := exec.Command("gpg", append([]string{"--homedir", home, "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("gpg %v: %v\n%s", args, err, out)
		}
	}
	gpg("", "--quick-gen-key", "Local Master <local@sxb.invalid>", "ed25519", "sign", "never")
	gpg("", "--import", filepath.Join(dir, "archlinux.gpg"))
	trusted, _ := os.ReadFile(filepath.Join(dir, "archlinux-trusted"))
	for _, l := range strings.Fields(string(trusted)) {
		if fpr, _, ok := strings.Cut(l, ":"); ok && !strings.HasPrefix(l, "#") {
			gpg("", "--yes", "--quick-lsign-key", fpr)
		}
	}
	gpg("", "--import-ownertrust", filepath.Join(dir, "archlinux-trusted"))
	revoked, _ := os.ReadFile(filepath.Join(dir, "archlinux-revoked"))
	for _, fpr := range strings.Fields(string(revoked)) {
		cmd := exec.Command("gpg", "--homedir", home, "--command-fd", "0", "--no-auto-check-trustdb", "--batch", "--quiet", "--edit-key", fpr)
		cmd.Stdin = strings.NewReader("disable\nquit\n")
		cmd.Run() // keys no longer in the keyring fail, as for pacman-key
	}
	gpg("", "--check-trustdb")
	want := gpgValid(t, home)
	k, err := LoadKeyring(dir, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got := k.ValidKeys()
	if len(want) < 10 || !reflect.DeepEqual(got, want) {
		t.Errorf("valid keys (%d):\n got %v\nwant %v (%d, GnuPG)", len(got), got, want, len(want))
	}
}
