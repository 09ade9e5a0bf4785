package pacman

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/atomicfile"
)

// dbCacheVersion changes whenever Pkg or the parser changes, so that stale
// parsed databases in the cache are not read.
const dbCacheVersion = "pacman-db-v1"

func sha256hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// eachDBFile calls fn with the content of every "<entry>/<file>" of a
// database whose file name is in files, in archive order; entries larger
// than limit are an error.
func eachDBFile(raw []byte, files []string, limit int64, fn func(dir, file string, b []byte) error) error {
	// pacman and repo-add choose the compression freely, and file names
	// lie (core.db is a gzip tar named like neither): the magic decides.
	rd, done, err := tree.Decompress(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	defer done()
	tr := tar.NewReader(rd)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		dir, file := filepath.Split(strings.TrimPrefix(h.Name, "./"))
		if h.Typeflag != tar.TypeReg || !slices.Contains(files, file) {
			continue
		}
		if h.Size > limit {
			return fmt.Errorf("%s: too large (%d bytes)", h.Name, h.Size)
		}
		b := make([]byte, h.Size)
		if _, err := io.ReadFull(tr, b); err != nil {
			return err
		}
		if err := fn(dir, file, b); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
	}
}

// parseDB reads a sync database (a compressed tar of "<name>-<version>/desc"
// entries, with "depends" beside desc in databases older than pacman 4.2).
// Packages come back sorted by name, as libalpm keeps them; of two entries
// of one name the first is kept.
func parseDB(raw []byte) ([]Pkg, error) {
	entries := map[string]*syncEntry{}
	var order []*syncEntry
	err := eachDBFile(raw, []string{"desc", "depends"}, 16<<20, func(dir, _ string, b []byte) error {
		e, ok := entries[dir]
		if !ok {
			e = &syncEntry{dir: dir}
			entries[dir] = e
			order = append(order, e)
		}
		return e.parse(b)
	})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	out := make([]Pkg, 0, len(order))
	for _, e := range order {
		if e.p.Name == "" || e.p.Version == "" {
			return nil, fmt.Errorf("%s: entry without %%NAME%% or %%VERSION%%", strings.TrimSuffix(e.dir, "/"))
		}
		if seen[e.p.Name] {
			continue
		}
		seen[e.p.Name] = true
		out = append(out, e.p)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// parseFilesDB reads the %FILES% of a files database (<repo>.files),
// keeping only the paths in want (relative, no leading "/"), and returns
// for each the names of the packages shipping it, in database order.
func parseFilesDB(raw []byte, want map[string]bool) (map[string][]string, error) {
	names := map[string]string{} // entry directory -> package name
	var owners []struct{ dir, path string }
	err := eachDBFile(raw, []string{"desc", "files"}, 256<<20, func(dir, _ string, b []byte) error {
		d := desc{}
		if err := parseDesc(b, d); err != nil {
			return err
		}
		if n := d.one("NAME"); n != "" {
			names[dir] = n
		}
		for _, f := range d["FILES"] {
			if want[f] {
				owners = append(owners, struct{ dir, path string }{dir, f})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	files := map[string][]string{}
	for _, o := range owners {
		if n := names[o.dir]; n != "" {
			files[o.path] = append(files[o.path], n)
		}
	}
	return files, nil
}

// cachedDB parses raw (a sync database whose SHA-256 is sum) or reads the
// parsed form from the cache.
func cachedDB(cacheDir string, raw []byte, sum string) ([]Pkg, error) {
	file := filepath.Join(cacheDir, "pacman-db", sha256hex([]byte(dbCacheVersion+"\x00"+sum))+".gob")
	if f, err := os.Open(file); err == nil {
		var pkgs []Pkg
		err := gob.NewDecoder(bufio.NewReaderSize(f, 1<<20)).Decode(&pkgs)
		f.Close()
		if err == nil {
			return pkgs, nil
		}
	}
	pkgs, err := parseDB(raw)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(pkgs); err != nil {
		return nil, err
	}
	// The cache is an optimisation: failing to write it is not an error.
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err == nil {
		_ = atomicfile.Write(file, buf.Bytes(), 0o644)
	}
	return pkgs, nil
}

// errNoDB marks a repository whose database the server does not have.
var errNoDB = errors.New("no database")
