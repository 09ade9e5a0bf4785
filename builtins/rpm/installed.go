package rpm

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sxb-build/sxb/builtins/tree"
)

// InstalledDBPath is where Install records the installed packages, relative
// to the tree root. It is sxb's own record (no rpm database is written): a
// JSON document listing each package's name, EVR, arch, provides,
// conflicts and obsoletes, read back by Resolve when the tree is used as a
// base (Request.BaseRoot). The image builder drops it from extensions along
// with other package databases.
const InstalledDBPath = "usr/lib/sysimage/sxb/rpm-installed.json"

// InstalledPackage is one entry of the installed-package record.
type InstalledPackage struct {
	Name string `json:"name"`
	EVR  string `json:"evr"`
	Arch string `json:"arch"`
	// License is the package's License tag (an SPDX expression in
	// current Fedora and openSUSE packages).
	License   string `json:"license,omitempty"`
	Provides  []Dep  `json:"provides,omitempty"`
	Conflicts []Dep  `json:"conflicts,omitempty"`
	Obsoletes []Dep  `json:"obsoletes,omitempty"`
	// Triggers and FileTriggers are the package's, kept so that they
	// fire when an extension built on this tree installs what they watch.
	Triggers     []Trigger     `json:"triggers,omitempty"`
	FileTriggers []FileTrigger `json:"file_triggers,omitempty"`
}

type installedDB struct {
	Format   int                `json:"format"`
	Packages []InstalledPackage `json:"packages"`
}

// ReadInstalled returns the packages recorded in the tree at root (nil when
// it has no record).
func ReadInstalled(root string) ([]InstalledPackage, error) {
	rt, err := tree.OpenRoot(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading installed packages: %w", err)
	}
	defer rt.Close()
	return readInstalled(rt)
}

func readInstalled(root *tree.Root) ([]InstalledPackage, error) {
	// Symlinks are followed inside the tree only: a package may have made
	// a component of the path a link to the host.
	b, err := root.ReadFile(InstalledDBPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading installed packages: %w", err)
	}
	pkgs, err := ParseInstalled(b)
	if err != nil {
		return nil, fmt.Errorf("reading installed packages %s: %w", filepath.Join(root.Path(), InstalledDBPath), err)
	}
	return pkgs, nil
}

// ParseInstalled parses an installed-package record (the content of
// InstalledDBPath).
func ParseInstalled(b []byte) ([]InstalledPackage, error) {
	var db installedDB
	if err := json.Unmarshal(b, &db); err != nil {
		return nil, err
	}
	if db.Format != 1 {
		return nil, fmt.Errorf("unknown format %d", db.Format)
	}
	return db.Packages, nil
}

// RecordInstalled merges pkgs into the installed-package record of the
// tree at root (a package of the same name replaces the recorded one),
// creating the record when there is none. An extension built on extensions
// resolves against a tree whose record lists the base's packages and those
// of the extensions in between (Request.InstalledRoot).
func RecordInstalled(root string, pkgs []InstalledPackage) error {
	rt, err := tree.OpenRoot(root)
	if err != nil {
		return fmt.Errorf("writing installed packages: %w", err)
	}
	defer rt.Close()
	return writeInstalled(rt, pkgs)
}

// writeInstalled merges pkgs into the record of root (same name replaces)
// and writes it sorted by name.
func writeInstalled(root *tree.Root, pkgs []InstalledPackage) error {
	old, err := readInstalled(root)
	if err != nil {
		return err
	}
	byName := map[string]InstalledPackage{}
	for _, p := range old {
		byName[p.Name] = p
	}
	for _, p := range pkgs {
		byName[p.Name] = p
	}
	db := installedDB{Format: 1}
	for _, p := range byName {
		db.Packages = append(db.Packages, p)
	}
	sort.Slice(db.Packages, func(i, j int) bool { return db.Packages[i].Name < db.Packages[j].Name })
	b, err := json.MarshalIndent(db, "", " ")
	if err != nil {
		return fmt.Errorf("writing installed packages: %w", err)
	}
	// The Root keeps the write inside the tree; beyond that, every
	// directory on the way must be a real directory, not a link a package
	// shipped to somewhere else in the tree.
	dir := ""
	for _, c := range strings.Split(path.Dir(InstalledDBPath), "/") {
		dir = path.Join(dir, c)
		fi, err := root.Lstat(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			d, err := root.MkdirAll(dir)
			if err != nil {
				return fmt.Errorf("writing installed packages: %w", err)
			}
			d.Close()
		case err != nil:
			return fmt.Errorf("writing installed packages: %w", err)
		case !fi.IsDir():
			return fmt.Errorf("writing installed packages: %s is not a directory in the tree (a package shipped it as %v)", filepath.Join(root.Path(), dir), fi.Mode().Type())
		}
	}
	if err := root.WriteFile(InstalledDBPath, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing installed packages: %w", err)
	}
	return nil
}
