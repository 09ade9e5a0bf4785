package pacman

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// ErrSignature is returned (wrapped) when a package or database signature
// is missing, does not verify, or was made by a key pacman would not
// trust.
var ErrSignature = errors.New("signature check failed")

// DefaultKeyringDirs are where Arch's keyring lives on a host, in the order
// they are tried: Arch's own place (archlinux-keyring), then Debian's
// (package archlinux-keyring there), where only the archlinux* keyrings
// are read.
var DefaultKeyringDirs = []string{"/usr/share/pacman/keyrings", "/usr/share/keyrings"}

// marginalsNeeded and completesNeeded are GnuPG's defaults, which the
// keyring pacman-key sets up keeps: a key is valid when three trusted keys
// of marginal owner trust, or one of full owner trust, certified it.
const (
	marginalsNeeded = 3
	completesNeeded = 1
)

// Keyring decides which keys may sign packages and databases the way
// pacman's keyring does after "pacman-key --populate" and "pacman-key
// --lsign-key":
//
//   - the keys of <name>.gpg in a keyring directory, with <name>-trusted
//     listing the master keys (fingerprint:ownertrust, as gpg
//     --export-ownertrust writes it) that pacman-key locally signs, and
//     <name>-revoked the keys it disables;
//   - a master key is valid; any other key is valid when masters certified
//     one of its user IDs — three of marginal owner trust (what Arch's
//     list says) or one of full trust, GnuPG's defaults;
//   - keys added as local (Request.Keyring) are valid as if locally signed;
//   - a disabled (revoked-listed), revoked or expired key is never valid.
//
// A signature verifies when the key that made it (or whose subkey made it)
// is valid, which is pacman's default SigLevel (TrustedOnly).
type Keyring struct {
	keys    openpgp.EntityList
	anchors map[string]int // fingerprint -> owner trust (4 marginal, 5 full, 6 ultimate)
	local   map[string]bool
	revoked map[string]bool
	now     time.Time
	// Sources names what was read, for error messages.
	sources []string

	mu    sync.Mutex
	valid map[string]validity
}

type validity struct {
	ok  bool
	why string
}

// fingerprint returns the upper-case hex fingerprint of a primary key.
func fingerprint(e *openpgp.Entity) string {
	return strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint))
}

// LoadKeyring reads a keyring. dir is a pacman keyring directory
// (<name>.gpg, <name>-trusted, <name>-revoked); "" means the first of
// DefaultKeyringDirs that has a keyring, and "none" no directory. local
// names key files (armored or binary) or directories of them whose keys
// are trusted as if locally signed. now is the time signatures and keys
// are checked at.
func LoadKeyring(dir string, local []string, now time.Time) (*Keyring, error) {
	k := &Keyring{anchors: map[string]int{}, local: map[string]bool{}, revoked: map[string]bool{},
		valid: map[string]validity{}, now: now}
	switch dir {
	case "none":
	case "":
		for _, d := range DefaultKeyringDirs {
			if names := keyringNames(d); len(names) > 0 {
				if err := k.addDir(d, names); err != nil {
					return nil, err
				}
				break
			}
		}
	default:
		names := keyringNames(dir)
		if len(names) == 0 {
			return nil, fmt.Errorf("keyring directory %s: no <name>.gpg keyring in it", dir)
		}
		if err := k.addDir(dir, names); err != nil {
			return nil, err
		}
	}
	for _, p := range local {
		keys, err := readKeyPath(p)
		if err != nil {
			return nil, err
		}
		for _, e := range keys {
			k.local[fingerprint(e)] = true
		}
		k.keys = append(k.keys, keys...)
		k.sources = append(k.sources, p)
	}
	if len(k.keys) == 0 {
		return nil, fmt.Errorf("no keyring: install Arch's keyring (archlinux-keyring, in %s) or set keyring to the repository's signing key",
			strings.Join(DefaultKeyringDirs, " or "))
	}
	return k, nil
}

// keyringNames lists the keyrings of a directory: every <name>.gpg, but
// only archlinux* in Debian's shared /usr/share/keyrings, which holds
// other distributions' keys too.
func keyringNames(dir string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, "*.gpg"))
	var out []string
	for _, f := range m {
		name := strings.TrimSuffix(filepath.Base(f), ".gpg")
		if filepath.Clean(dir) == "/usr/share/keyrings" && !strings.HasPrefix(name, "archlinux") {
			continue
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// addDir reads the named keyrings of a pacman keyring directory.
func (k *Keyring) addDir(dir string, names []string) error {
	for _, name := range names {
		base := filepath.Join(dir, name)
		keys, err := readKeyFile(base + ".gpg")
		if err != nil {
			return err
		}
		k.keys = append(k.keys, keys...)
		k.sources = append(k.sources, base+".gpg")
		if b, err := os.ReadFile(base + "-trusted"); err == nil {
			for i, line := range strings.Split(string(b), "\n") {
				line = strings.TrimSpace(line)
				if line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				f := strings.Split(line, ":")
				trust := 4
				if len(f) >= 2 && f[1] != "" {
					if trust, err = strconv.Atoi(f[1]); err != nil {
						return fmt.Errorf("%s-trusted line %d: owner trust %q is not a number", base, i+1, f[1])
					}
				}
				k.anchors[strings.ToUpper(f[0])] = trust
			}
		} else if !os.IsNotExist(err) {
			return fmt.Errorf("reading keyring: %w", err)
		}
		if b, err := os.ReadFile(base + "-revoked"); err == nil {
			for _, line := range strings.Fields(string(b)) {
				if !strings.HasPrefix(line, "#") {
					k.revoked[strings.ToUpper(line)] = true
				}
			}
		} else if !os.IsNotExist(err) {
			return fmt.Errorf("reading keyring: %w", err)
		}
	}
	return nil
}

// readKeyPath reads the keys of a file, or of every regular file of a
// directory (sorted; files that hold no keys are skipped there).
func readKeyPath(p string) (openpgp.EntityList, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("reading keyring: %w", err)
	}
	if !fi.IsDir() {
		return readKeyFile(p)
	}
	ents, err := os.ReadDir(p)
	if err != nil {
		return nil, fmt.Errorf("reading keyring: %w", err)
	}
	var out openpgp.EntityList
	for _, e := range ents {
		if e.Type().IsRegular() {
			if ks, err := readKeyFile(filepath.Join(p, e.Name())); err == nil {
				out = append(out, ks...)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("reading keyring %s: no keys in it", p)
	}
	return out, nil
}

// readKeyFile reads an armored (possibly several blocks) or binary key
// file.
func readKeyFile(p string) (openpgp.EntityList, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("reading keyring: %w", err)
	}
	var out openpgp.EntityList
	const begin, end = "-----BEGIN PGP PUBLIC KEY BLOCK-----", "-----END PGP PUBLIC KEY BLOCK-----"
	if !bytes.Contains(b, []byte(begin)) {
		if out, err = openpgp.ReadKeyRing(bytes.NewReader(b)); err != nil {
			return nil, fmt.Errorf("reading keyring %s: %w", p, err)
		}
	}
	for rest := b; ; {
		i := bytes.Index(rest, []byte(begin))
		if i < 0 {
			break
		}
		j := bytes.Index(rest[i:], []byte(end))
		if j < 0 {
			return nil, fmt.Errorf("reading keyring %s: unterminated armored block", p)
		}
		el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(rest[i : i+j+len(end)]))
		if err != nil {
			return nil, fmt.Errorf("reading keyring %s: %w", p, err)
		}
		out = append(out, el...)
		rest = rest[i+j+len(end):]
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("reading keyring %s: no keys in it", p)
	}
	return out, nil
}

// Valid reports whether the key with the given fingerprint may sign, and
// if not, why.
func (k *Keyring) Valid(fpr string) (bool, string) {
	fpr = strings.ToUpper(fpr)
	for _, e := range k.keys {
		if fingerprint(e) == fpr {
			v := k.validity(e)
			return v.ok, v.why
		}
	}
	return false, "not in the keyring"
}

// ValidKeys returns the fingerprints of every valid key, sorted.
func (k *Keyring) ValidKeys() []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range k.keys {
		f := fingerprint(e)
		if !seen[f] && k.validity(e).ok {
			out = append(out, f)
		}
		seen[f] = true
	}
	sort.Strings(out)
	return out
}

func (k *Keyring) validity(e *openpgp.Entity) validity {
	f := fingerprint(e)
	k.mu.Lock()
	v, ok := k.valid[f]
	k.mu.Unlock()
	if ok {
		return v
	}
	v = k.computeValidity(e)
	k.mu.Lock()
	k.valid[f] = v
	k.mu.Unlock()
	return v
}

// usable reports whether a key is neither disabled, revoked nor expired.
func (k *Keyring) usable(e *openpgp.Entity) (bool, string) {
	f := fingerprint(e)
	if k.revoked[f] {
		return false, "disabled by the keyring's revoked list"
	}
	if e.Revoked(k.now) {
		return false, "revoked"
	}
	if sig, _ := e.PrimarySelfSignature(); sig == nil || e.PrimaryKey.KeyExpired(sig, k.now) {
		return false, "expired"
	}
	return true, ""
}

func (k *Keyring) computeValidity(e *openpgp.Entity) validity {
	if ok, why := k.usable(e); !ok {
		return validity{why: why}
	}
	f := fingerprint(e)
	if _, ok := k.anchors[f]; ok || k.local[f] {
		return validity{ok: true}
	}
	best := 0
	for name, id := range e.Identities {
		if id.Revoked(k.now) {
			continue
		}
		marginal, full := k.certifiers(e, name, id)
		if full >= completesNeeded || marginal >= marginalsNeeded {
			return validity{ok: true}
		}
		best = max(best, marginal+full)
	}
	return validity{why: fmt.Sprintf("not certified by enough trusted keys (%d of the %d needed)", best, marginalsNeeded)}
}

// certifiers counts the usable master keys whose certification of the user
// ID stands (verifies, has not expired and was not revoked by a later
// signature of the same key), by their owner trust.
func (k *Keyring) certifiers(e *openpgp.Entity, name string, id *openpgp.Identity) (marginal, full int) {
	type cert struct {
		created time.Time
		revoked bool
	}
	latest := map[string]cert{}
	for _, sig := range id.Signatures {
		if sig.IssuerKeyId == nil || *sig.IssuerKeyId == e.PrimaryKey.KeyId || sig.CreationTime.After(k.now) {
			continue
		}
		isCert := sig.SigType >= packet.SigTypeGenericCert && sig.SigType <= packet.SigTypePositiveCert
		if !isCert && sig.SigType != packet.SigTypeCertificationRevocation {
			continue
		}
		for _, m := range k.keys {
			if m.PrimaryKey.KeyId != *sig.IssuerKeyId {
				continue
			}
			mf := fingerprint(m)
			if _, ok := k.anchors[mf]; !ok {
				continue
			}
			if m.PrimaryKey.VerifyUserIdSignature(name, e.PrimaryKey, sig) != nil {
				continue
			}
			if isCert && sig.SigExpired(k.now) {
				continue
			}
			if c, ok := latest[mf]; !ok || !sig.CreationTime.Before(c.created) {
				latest[mf] = cert{created: sig.CreationTime, revoked: !isCert}
			}
		}
	}
	for mf, c := range latest {
		if c.revoked {
			continue
		}
		var m *openpgp.Entity
		for _, cand := range k.keys {
			if fingerprint(cand) == mf {
				m = cand
				break
			}
		}
		if ok, _ := k.usable(m); !ok {
			continue
		}
		if k.anchors[mf] >= 5 {
			full++
		} else if k.anchors[mf] == 4 {
			marginal++
		}
	}
	return marginal, full
}

// Verify checks the detached signature sig (binary or armored) of the
// content of data, as pacman's SigLevel Required TrustedOnly does: it
// must verify, and the key that made it must be valid. It returns the
// signer's fingerprint.
func (k *Keyring) Verify(data io.Reader, sig []byte) (string, error) {
	if len(sig) == 0 {
		return "", fmt.Errorf("empty signature: %w", ErrSignature)
	}
	if bytes.HasPrefix(bytes.TrimSpace(sig), []byte("-----BEGIN PGP")) {
		blk, err := armor.Decode(bytes.NewReader(sig))
		if err != nil {
			return "", fmt.Errorf("reading signature: %v: %w", err, ErrSignature)
		}
		if sig, err = io.ReadAll(blk.Body); err != nil {
			return "", fmt.Errorf("reading signature: %v: %w", err, ErrSignature)
		}
	}
	cfg := &packet.Config{Time: func() time.Time { return k.now }}
	_, signer, err := openpgp.VerifyDetachedSignature(k.keys, data, bytes.NewReader(sig), cfg)
	if errors.Is(err, pgperrors.ErrUnknownIssuer) {
		return "", fmt.Errorf("signed by key %s, which is not in the keyring (%s): %w", sigIssuer(sig), strings.Join(k.sources, ", "), ErrSignature)
	}
	if signer != nil {
		if ok, why := k.usable(signer); !ok {
			return "", fmt.Errorf("signed by key %s, which is %s: %w", fingerprint(signer), why, ErrSignature)
		}
	}
	if err != nil {
		return "", fmt.Errorf("signature does not verify (%v): %w", err, ErrSignature)
	}
	if v := k.validity(signer); !v.ok {
		return "", fmt.Errorf("signed by key %s (%s), which is not trusted: %s: %w", fingerprint(signer), identityName(signer), v.why, ErrSignature)
	}
	return fingerprint(signer), nil
}

// sigIssuer names the key that made a binary signature, for messages.
func sigIssuer(sig []byte) string {
	p, err := packet.Read(bytes.NewReader(sig))
	if s, ok := p.(*packet.Signature); err == nil && ok {
		if s.IssuerFingerprint != nil {
			return strings.ToUpper(hex.EncodeToString(s.IssuerFingerprint))
		}
		if s.IssuerKeyId != nil {
			return fmt.Sprintf("%016X", *s.IssuerKeyId)
		}
	}
	return "(unreadable signature)"
}

func identityName(e *openpgp.Entity) string {
	if id := e.PrimaryIdentity(); id != nil {
		return id.Name
	}
	return "no user ID"
}
