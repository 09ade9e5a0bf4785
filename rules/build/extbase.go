package build

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sxb-build/sxb/builtins/pacman"
	"github.com/sxb-build/sxb/builtins/rpm"
	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/atomicfile"
	"github.com/sxb-build/sxb/rules"
)

// extDBFile holds the package databases of an extension's own packages,
// kept in its cache entry (not published) for extensions built on it.
const extDBFile = "pkgdb.json"

// dpkgStatus is dpkg's database, relative to a tree's root.
const dpkgStatus = "var/lib/dpkg/status"

// pkgDB is what a tree's package managers know of its packages: the files
// of their databases (dpkg's status, sxb's rpm record, pacman's local
// database) and, for rpm, whose file dependencies are answered by the
// files present, every path the packages installed.
type pkgDB struct {
	// Files maps tree-relative paths to their content.
	Files map[string][]byte `json:"files,omitempty"`
	// Paths lists what the packages installed (directories end in "/").
	Paths []string `json:"paths,omitempty"`
}

func (db *pkgDB) empty() bool { return len(db.Files) == 0 && len(db.Paths) == 0 }

// readPkgDB reads the package databases of the tree at root, resolving
// paths inside it. With paths, and when the tree has an rpm record, it
// lists every path of the tree too (for an extension's own tree, which
// holds only what its packages installed).
func readPkgDB(root string, paths bool) (*pkgDB, error) {
	db := &pkgDB{Files: map[string][]byte{}}
	read := func(rel string) error {
		b, err := tree.ReadFile(root, rel)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil
		case err != nil:
			return fmt.Errorf("reading the package database %s: %w", filepath.Join(root, rel), err)
		}
		db.Files[rel] = b
		return nil
	}
	for _, rel := range []string{dpkgStatus, rpm.InstalledDBPath} {
		if err := read(rel); err != nil {
			return nil, err
		}
	}
	ents, err := tree.ReadDir(root, pacman.LocalDBPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading the package database %s: %w", filepath.Join(root, pacman.LocalDBPath), err)
	}
	for _, e := range ents {
		rel := pacman.LocalDBPath + "/" + e.Name()
		if !e.IsDir() {
			if err := read(rel); err != nil {
				return nil, err
			}
			continue
		}
		// What pacman's resolver and installer read of an entry.
		for _, f := range []string{"desc", "files"} {
			if err := read(rel + "/" + f); err != nil {
				return nil, err
			}
		}
	}
	if _, ok := db.Files[rpm.InstalledDBPath]; ok && paths {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			switch {
			case rel == ".":
			case d.IsDir():
				db.Paths = append(db.Paths, filepath.ToSlash(rel)+"/")
			default:
				db.Paths = append(db.Paths, filepath.ToSlash(rel))
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("listing the installed files: %w", err)
		}
	}
	return db, nil
}

// writePkgDB writes the databases of layers, lowest first, merged into
// the empty tree dst: dpkg's status files are concatenated, rpm records
// merged by package name, other files replaced by the upper layer's, and
// every path of Paths made an empty stand-in (a directory, or an empty
// file) so that file dependencies see it.
func writePkgDB(dst string, layers []*pkgDB) error {
	rt, err := tree.OpenRoot(dst)
	if err != nil {
		return err
	}
	defer rt.Close()
	mkParent := func(rel string) error {
		d, err := rt.MkdirAll(path.Dir(rel))
		if err != nil {
			return err
		}
		return d.Close()
	}
	var status []byte
	for _, l := range layers {
		names := make([]string, 0, len(l.Files))
		for rel := range l.Files {
			names = append(names, rel)
		}
		sort.Strings(names)
		for _, rel := range names {
			b := l.Files[rel]
			switch rel {
			case dpkgStatus:
				status = mergeStatus(status, b)
			case rpm.InstalledDBPath:
				pkgs, err := rpm.ParseInstalled(b)
				if err != nil {
					return fmt.Errorf("reading installed rpm packages: %w", err)
				}
				if err := rpm.RecordInstalled(dst, pkgs); err != nil {
					return err
				}
			default:
				if err := mkParent(rel); err != nil {
					return err
				}
				if err := rt.WriteFile(rel, b, 0o644); err != nil {
					return err
				}
			}
		}
		for _, p := range l.Paths {
			rel := strings.TrimSuffix(p, "/")
			if _, err := rt.Lstat(rel); err == nil {
				continue // a stand-in only has to exist
			}
			if strings.HasSuffix(p, "/") {
				d, err := rt.MkdirAll(rel)
				if err != nil {
					return fmt.Errorf("stand-in of %s: %w", rel, err)
				}
				d.Close()
				continue
			}
			if err := mkParent(rel); err != nil {
				return fmt.Errorf("stand-in of %s: %w", rel, err)
			}
			if err := rt.WriteFile(rel, nil, 0o644); err != nil {
				return fmt.Errorf("stand-in of %s: %w", rel, err)
			}
		}
	}
	if len(status) > 0 {
		if err := mkParent(dpkgStatus); err != nil {
			return err
		}
		return rt.WriteFile(dpkgStatus, status, 0o644)
	}
	return nil
}

// mergeStatus merges the dpkg status upper into lower: a package (name
// and architecture) upper lists replaces lower's paragraph in place, the
// others follow in upper's order. An extension's status lists its base's
// packages too.
func mergeStatus(lower, upper []byte) []byte {
	var order []string
	paras := map[string][]byte{}
	for _, s := range [][]byte{lower, upper} {
		for _, p := range bytes.Split(bytes.ReplaceAll(s, []byte("\r\n"), []byte("\n")), []byte("\n\n")) {
			p = bytes.Trim(p, "\n")
			if len(p) == 0 {
				continue
			}
			var name, arch string
			for _, l := range strings.Split(string(p), "\n") {
				if v, ok := strings.CutPrefix(l, "Package:"); ok {
					name = strings.TrimSpace(v)
				} else if v, ok := strings.CutPrefix(l, "Architecture:"); ok {
					arch = strings.TrimSpace(v)
				}
			}
			k := name + ":" + arch
			if _, seen := paras[k]; !seen {
				order = append(order, k)
			}
			paras[k] = p
		}
	}
	var out []byte
	for _, k := range order {
		out = append(append(out, paras[k]...), "\n\n"...)
	}
	return out
}

// recordPkgDB keeps the package databases of an extension's own tree in
// its cache entry out (see extBase).
func recordPkgDB(root, out string) error {
	db, err := readPkgDB(root, true)
	if err != nil || db.empty() {
		return err
	}
	b, err := json.Marshal(db)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, extDBFile), b, 0o644)
}

// extChain returns the tree at the bottom of the base chain of l (a
// base_image's, or a tree sxb did not build), its record, and the package
// databases of the extensions from there up to l itself.
func (x *executor) extChain(ctx context.Context, l rules.Label) (root string, info baseInfo, layers []*pkgDB, err error) {
	bt := x.g.Target(l)
	e := x.entry(l.String())
	if bt == nil || e == nil {
		return "", info, nil, fmt.Errorf("base %s was not built", l)
	}
	switch {
	case bt.Kind == rules.KindBaseImage:
		if err := json.Unmarshal(e.Info, &info); err != nil {
			return "", info, nil, fmt.Errorf("base %s: reading its record: %w", l, err)
		}
		return e.Path("tree"), info, nil, nil
	case bt.Ext == nil:
		return "", info, nil, fmt.Errorf("base %s is a %s, not an image", l, bt.Kind)
	case bt.Ext.Base != nil:
		if root, info, layers, err = x.extChain(ctx, *bt.Ext.Base); err != nil {
			return "", info, nil, err
		}
	case bt.Ext.BaseTree != nil:
		if root, info, _, err = x.treeBase(ctx, bt.Ext.BaseTree); err != nil {
			return "", info, nil, err
		}
	default:
		return "", info, nil, fmt.Errorf("base %s has no base of its own: there is nothing to install on", l)
	}
	b, err := os.ReadFile(e.Path(extDBFile))
	if errors.Is(err, fs.ErrNotExist) {
		return root, info, layers, nil // no packages of its own
	}
	if err != nil {
		return "", info, nil, err
	}
	db := &pkgDB{}
	if err := json.Unmarshal(b, db); err != nil {
		return "", info, nil, fmt.Errorf("base %s: reading its package database: %w", l, err)
	}
	return root, info, append(layers, db), nil
}

// extBase describes the base l of an extension: the tree below (a
// base_image's, or for an extension the tree its own base chain starts
// from), the tree holding the package databases to resolve against when l
// is an extension with packages below it ("" otherwise: resolve against
// root), the key of l's result and the base's record. An extension on an
// extension resolves against the base's installed packages and those of
// every extension in between (dpkg's status, rpm's record and stand-ins of
// the files, pacman's local database): their files are never installed
// again since their packages count as installed.
func (x *executor) extBase(ctx context.Context, l rules.Label) (root, resolveRoot, key string, info baseInfo, err error) {
	root, info, layers, err := x.extChain(ctx, l)
	if err != nil {
		return "", "", "", info, err
	}
	e := x.entry(l.String())
	if len(layers) == 0 {
		return root, "", e.Key, info, nil
	}
	// Written once per result of l, under a name derived from it, so that
	// resolving stays memoised; made aside and renamed into place whole.
	resolveRoot = filepath.Join(x.opts.CacheDir, "extension-bases", e.Key)
	if _, err := os.Stat(resolveRoot); err == nil {
		touchDir(resolveRoot)
		return root, resolveRoot, e.Key, info, nil
	}
	lower, err := readPkgDB(root, false)
	if err != nil {
		return "", "", "", info, fmt.Errorf("base %s: %w", l, err)
	}
	if err := os.MkdirAll(filepath.Dir(resolveRoot), 0o755); err != nil {
		return "", "", "", info, err
	}
	d, err := atomicfile.CreateDir(resolveRoot, 0o755)
	if err != nil {
		return "", "", "", info, err
	}
	defer d.Abort()
	if err := writePkgDB(d.Path(), append([]*pkgDB{lower}, layers...)); err != nil {
		return "", "", "", info, fmt.Errorf("base %s: merging package databases: %w", l, err)
	}
	if err := d.Commit(); err != nil {
		return "", "", "", info, err
	}
	return root, resolveRoot, e.Key, info, nil
}
