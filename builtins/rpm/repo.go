package rpm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/sxb-build/sxb/builtins/fetch"
)

// repository is one loaded rpm-md repository.
type repository struct {
	URL      string // base URL, ending in "/"
	md       *repoMD
	Packages []*repoPackage
	files    fileList // loaded on demand
	fetcher  *fetch.Fetcher
	cacheDir string
}

// joinURL resolves the relative location rel against base (which ends in
// "/"); it refuses locations that leave the repository.
func joinURL(base, rel string) (string, error) {
	if rel == "" || strings.HasPrefix(rel, "/") || strings.Contains(rel, "://") {
		return "", fmt.Errorf("location %q is not relative to the repository", rel)
	}
	for _, part := range strings.Split(rel, "/") {
		if part == ".." {
			return "", fmt.Errorf("location %q leaves the repository", rel)
		}
	}
	return base + rel, nil
}

// normalizeBase turns a repository URL into a base ending in "/"; a plain
// absolute path is taken as a file:// URL.
func normalizeBase(u string) (string, error) {
	if strings.HasPrefix(u, "/") {
		u = "file://" + u
	}
	pu, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("repository URL %q: %w", u, err)
	}
	switch pu.Scheme {
	case "http", "https", "file":
	default:
		return "", fmt.Errorf("repository URL %q: unsupported scheme", u)
	}
	if !strings.HasSuffix(u, "/") {
		u += "/"
	}
	return u, nil
}

// openRepo downloads and verifies repomd.xml and loads primary.xml.
// keys may be empty only when insecure or when signatures are not required
// (requireSig false: the packages' own signatures are checked instead).
func openRepo(ctx context.Context, f *fetch.Fetcher, cacheDir, base string, keys openpgp.EntityList, requireSig, insecure bool) (*repository, error) {
	r := &repository{URL: base, fetcher: f, cacheDir: cacheDir}
	mdURL := base + "repodata/repomd.xml"
	raw, err := f.Get(ctx, mdURL, 16<<20)
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", base, err)
	}
	if !insecure {
		asc, err := f.Get(ctx, mdURL+".asc", 1<<20)
		switch {
		case errors.Is(err, fetch.ErrNotFound):
			if requireSig {
				return nil, fmt.Errorf("repository %s: repomd.xml is not signed (no repomd.xml.asc); set a keyring with the signing key or opt out with insecure", base)
			}
		case err != nil:
			return nil, fmt.Errorf("repository %s: %w", base, err)
		default:
			if err := verifyDetached(raw, asc, keys); err != nil {
				return nil, fmt.Errorf("repository %s: repomd.xml: %w", base, err)
			}
		}
	}
	md, err := parseRepoMD(raw)
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", base, err)
	}
	r.md = md
	pf, ok := md.file("primary")
	if !ok {
		return nil, fmt.Errorf("repository %s: repomd.xml lists no primary metadata", base)
	}
	if loadCachedGob(cacheDir, "primary-"+pf.SumType+"-"+pf.Sum, &r.Packages) {
		return r, nil
	}
	data, err := r.metadata(ctx, pf)
	if err != nil {
		return nil, err
	}
	pkgs, err := parsePrimary(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", base, err)
	}
	r.Packages = pkgs
	if err := storeCachedGob(cacheDir, "primary-"+pf.SumType+"-"+pf.Sum, pkgs); err != nil {
		return nil, err
	}
	return r, nil
}

// metadata downloads one metadata file, checks it against repomd.xml and
// returns it decompressed.
func (r *repository) metadata(ctx context.Context, mf mdFile) ([]byte, error) {
	u, err := joinURL(r.URL, mf.Href)
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", r.URL, err)
	}
	var raw []byte
	if mf.SumType == "sha256" {
		size := mf.Size
		if size <= 0 {
			size = -1
		}
		p, err := r.fetcher.Fetch(ctx, fetch.Item{URL: u, Size: size, SHA256: mf.Sum})
		if err != nil {
			return nil, fmt.Errorf("repository %s: %w", r.URL, err)
		}
		if raw, err = os.ReadFile(p); err != nil {
			return nil, fmt.Errorf("repository %s: %w", r.URL, err)
		}
	} else {
		if raw, err = r.fetcher.Get(ctx, u, 4<<30); err != nil {
			return nil, fmt.Errorf("repository %s: %w", r.URL, err)
		}
	}
	// Checked again here (the cache could have been tampered with).
	if err := checkSum(raw, mf.SumType, mf.Sum); err != nil {
		return nil, fmt.Errorf("repository %s: %s: %w", r.URL, mf.Href, err)
	}
	limit := int64(maxMetadata)
	if mf.OpenSize > 0 {
		limit = mf.OpenSize
	}
	out, err := decompress(mf.Href, raw, limit)
	if err != nil {
		return nil, fmt.Errorf("repository %s: decompressing %s: %w", r.URL, mf.Href, err)
	}
	if mf.OpenSize > 0 && int64(len(out)) != mf.OpenSize {
		return nil, fmt.Errorf("repository %s: %s: decompressed size %d, repomd.xml says %d", r.URL, mf.Href, len(out), mf.OpenSize)
	}
	if mf.OpenSum != "" {
		if err := checkSum(out, mf.OpenSumType, mf.OpenSum); err != nil {
			return nil, fmt.Errorf("repository %s: decompressed %s: %w", r.URL, mf.Href, err)
		}
	}
	return out, nil
}

// fileLists loads filelists.xml on first use, keeping only the paths in
// want (the file dependencies of every loaded package); the result is
// cached under the checksum of filelists.xml and of want.
func (r *repository) fileLists(ctx context.Context, want map[string]bool) (fileList, error) {
	if r.files != nil {
		return r.files, nil
	}
	mf, ok := r.md.file("filelists")
	if !ok {
		r.files = fileList{}
		return r.files, nil
	}
	paths := make([]string, 0, len(want))
	for p := range want {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	h := sha256.Sum256([]byte(strings.Join(paths, "\x00")))
	key := "filelists-" + mf.SumType + "-" + mf.Sum + "-" + hex.EncodeToString(h[:8])
	var fl fileList
	if loadCachedGob(r.cacheDir, key, &fl) {
		r.files = fl
		return fl, nil
	}
	data, err := r.metadata(ctx, mf)
	if err != nil {
		return nil, err
	}
	if fl, err = parseFilelists(bytes.NewReader(data), want); err != nil {
		return nil, fmt.Errorf("repository %s: %w", r.URL, err)
	}
	if err := storeCachedGob(r.cacheDir, key, fl); err != nil {
		return nil, err
	}
	r.files = fl
	return fl, nil
}

// verifyDetached checks an armored (or binary) detached signature of data.
func verifyDetached(data, sig []byte, keys openpgp.EntityList) error {
	if len(keys) == 0 {
		return errors.New("no keys to verify the signature with (set a keyring)")
	}
	var err error
	if bytes.Contains(sig, []byte("-----BEGIN PGP")) {
		_, err = openpgp.CheckArmoredDetachedSignature(keys, bytes.NewReader(data), bytes.NewReader(sig), nil)
	} else {
		_, err = openpgp.CheckDetachedSignature(keys, bytes.NewReader(data), bytes.NewReader(sig), nil)
	}
	if err != nil {
		return fmt.Errorf("signature does not verify: %w", err)
	}
	return nil
}

// loadKeyring reads OpenPGP public keys from files or directories (every
// regular file inside, sorted), armored or binary. Files without keys are
// errors when named directly and skipped inside directories.
func loadKeyring(paths []string) (openpgp.EntityList, error) {
	var keys openpgp.EntityList
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("keyring: %w", err)
		}
		if !fi.IsDir() {
			ks, err := readKeyFile(p)
			if err != nil {
				return nil, err
			}
			keys = append(keys, ks...)
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("keyring: %w", err)
		}
		names := make([]string, 0, len(ents))
		for _, e := range ents {
			if e.Type().IsRegular() || e.Type()&os.ModeSymlink != 0 {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
		for _, n := range names {
			if ks, err := readKeyFile(filepath.Join(p, n)); err == nil {
				keys = append(keys, ks...)
			}
		}
	}
	return keys, nil
}

func readKeyFile(p string) (openpgp.EntityList, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	var ks openpgp.EntityList
	if bytes.Contains(b, []byte("-----BEGIN PGP")) {
		// A file may hold several armored blocks.
		for rest := b; ; {
			i := bytes.Index(rest, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----"))
			if i < 0 {
				break
			}
			rest = rest[i:]
			end := bytes.Index(rest, []byte("-----END PGP PUBLIC KEY BLOCK-----"))
			if end < 0 {
				break
			}
			end += len("-----END PGP PUBLIC KEY BLOCK-----")
			el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(rest[:end]))
			if err != nil {
				return nil, fmt.Errorf("keyring %s: %w", p, err)
			}
			ks = append(ks, el...)
			rest = rest[end:]
		}
	} else {
		el, err := openpgp.ReadKeyRing(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("keyring %s: %w", p, err)
		}
		ks = el
	}
	if len(ks) == 0 {
		return nil, fmt.Errorf("keyring %s: no public keys", p)
	}
	return ks, nil
}
