package pacman

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/builtins/fetch"
	"github.com/sxb-build/sxb/builtins/pacman/pacmantest"
	"github.com/sxb-build/sxb/builtins/tree"
)

// refused resolves and installs req into a new tree and returns the
// error, checking that a refused installation left the tree empty.
func refused(t *testing.T, req Request) error {
	t.Helper()
	plan, err := Resolve(context.Background(), req)
	if err != nil {
		return err
	}
	root := filepath.Join(t.TempDir(), "tree")
	_, err = Install(context.Background(), plan, root, tree.NewMeta(), InstallOptions{WithDocs: true})
	if err != nil {
		if ents, _ := os.ReadDir(root); len(ents) > 0 {
			t.Errorf("refused installation left %d entries in the tree", len(ents))
		}
	}
	return err
}

func gpgSign(t *testing.T, fx *pacmantest.Fixture, key, file string) {
	t.Helper()
	cmd := exec.Command("gpg", "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", "", "--local-user", key,
		"--detach-sign", "--no-armor", "--output", file+".sig", file)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+fx.GnuPG)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gpg: %v\n%s", err, out)
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// TestTamperingRefused changes the fixture the ways an attacker on the
// mirror could and checks that sxb refuses each, with a clear error and
// nothing installed, and that pacman (the oracle) refuses it too.
func TestTamperingRefused(t *testing.T) {
	fx := pacmantest.Get(t)
	extra := func(m string) string { return filepath.Join(m, "extra/os/x86_64") }
	cases := []struct {
		name    string
		target  string
		tamper  func(t *testing.T, mirror string)
		want    string
		sigErr  bool
		pacman  bool // pacman must refuse too
		resolve bool // refused while resolving (database)
	}{
		{
			name: "package changed, database not", target: "fx-old", pacman: true,
			tamper: func(t *testing.T, m string) {
				f := filepath.Join(extra(m), "fx-old-1.0-1-any.pkg.tar.zst")
				b, _ := os.ReadFile(f)
				b[len(b)/2] ^= 0xff
				os.WriteFile(f, b, 0o644)
			},
			want: "checksum",
		},
		{
			name: "package rebuilt and database updated, signature stale", target: "fx-old", pacman: true, sigErr: true,
			tamper: func(t *testing.T, m string) {
				f := filepath.Join(extra(m), "fx-old-1.0-1-any.pkg.tar.zst")
				run(t, "sh", "-c", "zstd -dc '"+f+"' | zstd -q -19 -c > '"+f+".new' && mv '"+f+".new' '"+f+"'")
				run(t, "repo-add", "--quiet", filepath.Join(extra(m), "extra.db.tar.gz"), f)
			},
			want: "signature does not verify",
		},
		{
			name: "signature removed", target: "fx-old", pacman: true, sigErr: true,
			tamper: func(t *testing.T, m string) {
				os.Remove(filepath.Join(extra(m), "fx-old-1.0-1-any.pkg.tar.zst.sig"))
			},
			want: "package is not signed",
		},
		{
			name: "signed by a stranger", target: "fx-old", pacman: true, sigErr: true,
			tamper: func(t *testing.T, m string) {
				gpgSign(t, fx, fx.Fingerprints["stranger"], filepath.Join(extra(m), "fx-old-1.0-1-any.pkg.tar.zst"))
			},
			want: "which is not in the keyring",
		},
		{
			name: "another package's signature", target: "fx-old", pacman: true, sigErr: true,
			tamper: func(t *testing.T, m string) {
				run(t, "cp", filepath.Join(extra(m), "fx-dup-2.0-1-any.pkg.tar.zst.sig"), filepath.Join(extra(m), "fx-old-1.0-1-any.pkg.tar.zst.sig"))
			},
			want: "signature does not verify",
		},
		{
			name: "key of the revoked list", target: "fx-revoked", pacman: true, sigErr: true,
			want: "disabled by the keyring's revoked list",
		},
		{
			name: "key certified by two master keys of three", target: "fx-weak", pacman: true, sigErr: true,
			want: "not certified by enough trusted keys (2 of the 3 needed)",
		},
		{
			name: "database signature bad", target: "fx-tool", pacman: true, sigErr: true, resolve: true,
			tamper: func(t *testing.T, m string) {
				core := filepath.Join(m, "core/os/x86_64")
				os.Remove(filepath.Join(core, "core.db.sig"))
				run(t, "cp", filepath.Join(core, "fx-tool-1.0-1-any.pkg.tar.zst.sig"), filepath.Join(core, "core.db.sig"))
			},
			want: "database signature",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mirror := fx.Mirror
			if c.tamper != nil {
				mirror = fx.CopyMirror(t)
				c.tamper(t, mirror)
			}
			req := fixtureRequest(t, fx, mirror, c.target)
			err := refused(t, req)
			if err == nil {
				t.Fatalf("installed %s", c.target)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			if c.sigErr && !errors.Is(err, ErrSignature) {
				t.Errorf("error %q is not ErrSignature", err)
			}
			if c.resolve {
				if _, rerr := Resolve(context.Background(), req); rerr == nil {
					t.Errorf("Resolve accepted the tampered database")
				}
			}
			if c.pacman {
				if _, out, err := oracle(t, fx.PacmanConfFor(t, mirror), fx.PacmanGnuPG, []string{c.target}); err == nil {
					t.Errorf("pacman installed %s: the case does not test what pacman refuses\n%s", c.target, out)
				}
			}
		})
	}
	t.Run("insecure still checks the checksum", func(t *testing.T) {
		mirror := fx.CopyMirror(t)
		f := filepath.Join(extra(mirror), "fx-old-1.0-1-any.pkg.tar.zst")
		b, _ := os.ReadFile(f)
		b[len(b)/2] ^= 0xff
		os.WriteFile(f, b, 0o644)
		req := fixtureRequest(t, fx, mirror, "fx-old")
		req.Insecure = true
		if err := refused(t, req); !errors.Is(err, fetch.ErrChecksum) {
			t.Errorf("error %v, want a checksum mismatch", err)
		}
	})
}

// TestLocalKeyring trusts the packager's key alone, as if locally signed:
// its packages install, the weak key's (not in that keyring) do not.
func TestLocalKeyring(t *testing.T) {
	fx := pacmantest.Get(t)
	req := fixtureRequest(t, fx, fx.Mirror, "fx-tool")
	req.KeyringDir, req.Keyring = "none", []string{fx.Packager}
	if err := refused(t, req); err != nil {
		t.Fatalf("packager-signed packages refused: %v", err)
	}
	req.Packages = []string{"fx-weak"}
	if err := refused(t, req); !errors.Is(err, ErrSignature) || !strings.Contains(err.Error(), "not in the keyring") {
		t.Errorf("fx-weak: error %v, want a signature by a key not in the keyring", err)
	}
}
