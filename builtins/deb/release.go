package deb

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// ErrSignature is returned (wrapped) when a Release file is unsigned, signed
// by a key outside the keyring, or does not match its signature.
var ErrSignature = errors.New("repository signature check failed")

// release is a parsed (and verified) Release file.
type release struct {
	Suite, Codename string
	// Origin and Label are what "Pin: release o=, l=" match.
	Origin, Label string
	// NotAutomatic and ButAutomaticUpgrades lower the priority of the
	// release's packages (experimental, backports).
	NotAutomatic, ButAutomaticUpgrades bool
	ByHash                             bool
	ValidUntil                         time.Time
	Architectures                      []string
	Components                         []string
	// files maps a path relative to dists/<suite>/ to its size and SHA256.
	files map[string]fileSum
	// sha is the SHA256 of the verified Release text; it keys caches.
	sha string
}

type fileSum struct {
	size int64
	sha  string
}

// parseRelease parses verified Release text.
func parseRelease(text []byte) (*release, error) {
	r := &release{files: map[string]fileSum{}, sha: sha256hex(text)}
	var para *Paragraph
	err := parseParagraphs(text, func(_ int, p *Paragraph) error {
		if para == nil {
			para = p
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if para == nil {
		return nil, fmt.Errorf("empty Release file")
	}
	r.Suite = para.Get("Suite")
	r.Codename = para.Get("Codename")
	r.Origin, r.Label = para.Get("Origin"), para.Get("Label")
	r.NotAutomatic = strings.EqualFold(para.Get("NotAutomatic"), "yes")
	r.ButAutomaticUpgrades = strings.EqualFold(para.Get("ButAutomaticUpgrades"), "yes")
	r.ByHash = strings.EqualFold(para.Get("Acquire-By-Hash"), "yes")
	r.Architectures = strings.Fields(para.Get("Architectures"))
	r.Components = strings.Fields(para.Get("Components"))
	if v := para.Get("Valid-Until"); v != "" {
		t, err := time.Parse(time.RFC1123, strings.Replace(v, "UTC", "GMT", 1))
		if err != nil {
			t, err = time.Parse("Mon, 2 Jan 2006 15:04:05 MST", strings.Replace(v, "UTC", "GMT", 1))
		}
		if err == nil {
			r.ValidUntil = t
		}
	}
	sums := para.Get("SHA256")
	if sums == "" {
		//lint:ignore ST1005 Release is the file's name
		return nil, fmt.Errorf("Release file has no SHA256 field")
	}
	for i, line := range strings.Split(sums, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			//lint:ignore ST1005 Release is the file's name
			return nil, fmt.Errorf("Release SHA256 entry %d: want \"hash size path\", got %q", i, truncate(line))
		}
		size, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || len(f[0]) != 64 {
			//lint:ignore ST1005 Release is the file's name
			return nil, fmt.Errorf("Release SHA256 entry %d: malformed %q", i, truncate(line))
		}
		r.files[f[2]] = fileSum{size: size, sha: strings.ToLower(f[0])}
	}
	return r, nil
}

// loadKeyring reads OpenPGP public keys from path: a binary or armored key
// file, or a directory of *.gpg / *.asc files.
func loadKeyring(path string) (openpgp.EntityList, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading keyring: %w", err)
	}
	var files []string
	if fi.IsDir() {
		err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".gpg") || strings.HasSuffix(p, ".asc")) {
				files = append(files, p)
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("reading keyring: %w", err)
		}
		sort.Strings(files)
	} else {
		files = []string{path}
	}
	var all openpgp.EntityList
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading keyring: %w", err)
		}
		var el openpgp.EntityList
		if bytes.Contains(b[:min(len(b), 100)], []byte("-----BEGIN PGP")) {
			el, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(b))
		} else {
			el, err = openpgp.ReadKeyRing(bytes.NewReader(b))
		}
		if err != nil {
			return nil, fmt.Errorf("reading keyring %s: %w", f, err)
		}
		all = append(all, el...)
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("reading keyring %s: no keys", path)
	}
	return all, nil
}

// defaultKeyrings lists where a distribution's archive keyring usually lives.
func defaultKeyrings(distribution string) []string {
	switch distribution {
	case "ubuntu":
		return []string{
			"/usr/share/keyrings/ubuntu-archive-keyring.gpg",
			"/usr/share/distribution-gpg-keys/ubuntu/ubuntu-archive-keyring.gpg",
		}
	default:
		return []string{
			"/usr/share/keyrings/debian-archive-keyring.gpg",
			"/usr/share/distribution-gpg-keys/debian/debian-archive-keyring.gpg",
		}
	}
}

// verifyInRelease checks a clearsigned InRelease and returns the signed
// text.
func verifyInRelease(data []byte, kr openpgp.EntityList, now time.Time) ([]byte, error) {
	block, rest := clearsign.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("InRelease is not clearsigned: %w", ErrSignature)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("InRelease has data after the signature: %w", ErrSignature)
	}
	if _, err := block.VerifySignature(kr, &packet.Config{Time: func() time.Time { return now }}); err != nil {
		return nil, fmt.Errorf("%s: %w", signatureProblem(err), ErrSignature)
	}
	return block.Plaintext, nil
}

// verifyDetached checks Release against Release.gpg.
func verifyDetached(text, sig []byte, kr openpgp.EntityList, now time.Time) error {
	cfg := &packet.Config{Time: func() time.Time { return now }}
	var err error
	if bytes.Contains(sig[:min(len(sig), 100)], []byte("-----BEGIN PGP")) {
		_, err = openpgp.CheckArmoredDetachedSignature(kr, bytes.NewReader(text), bytes.NewReader(sig), cfg)
	} else {
		_, err = openpgp.CheckDetachedSignature(kr, bytes.NewReader(text), bytes.NewReader(sig), cfg)
	}
	if err != nil {
		//lint:ignore ST1005 Release.gpg is the file's name
		return fmt.Errorf("Release.gpg: %s: %w", signatureProblem(err), ErrSignature)
	}
	return nil
}

// signatureProblem words a signature check failure for the user: a
// signature by a key the keyring lacks usually means a wrong keyring.
func signatureProblem(err error) string {
	if errors.Is(err, pgperrors.ErrUnknownIssuer) {
		return "signed by a key that is not in the keyring (is keyring the archive's key?)"
	}
	return fmt.Sprintf("bad signature: %v", err)
}
