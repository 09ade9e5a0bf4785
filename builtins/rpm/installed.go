package rpm

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/atomicfile"
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
}

type installedDB struct {
	Format   int                `json:"format"`
	Packages []InstalledPackage `json:"packages"`
}

// ReadInstalled returns the packages recorded in the tree at root (nil when
// it has no record).
func ReadInstalled(root string) ([]InstalledPackage, error) {
	// Follow symlinks inside the tree only: a package may have made a
	// component of the path a link to the host.
	file, err := tree.ResolveFollow(root, InstalledDBPath)
	if err != nil {
		return nil, fmt.Errorf("reading installed packages: %w", err)
	}
	b, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading installed packages: %w", err)
	}
	var db installedDB
	if err := json.Unmarshal(b, &db); err != nil {
		return nil, fmt.Errorf("reading installed packages %s: %w", filepath.Join(root, InstalledDBPath), err)
	}
	if db.Format != 1 {
		return nil, fmt.Errorf("reading installed packages %s: unknown format %d", filepath.Join(root, InstalledDBPath), db.Format)
	}
	return db.Packages, nil
}

// writeInstalled merges pkgs into the record of root (same name replaces)
// and writes it sorted by name.
func writeInstalled(root string, pkgs []InstalledPackage) error {
	old, err := ReadInstalled(root)
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
	// Every directory on the way must be a real directory of the tree, and
	// the record replaces (never writes through) whatever is at its path:
	// nothing a package shipped can redirect the write onto the host.
	dir := root
	for _, c := range strings.Split(filepath.Dir(InstalledDBPath), "/") {
		dir = filepath.Join(dir, c)
		fi, err := os.Lstat(dir)
		switch {
		case os.IsNotExist(err):
			if err := os.Mkdir(dir, 0o755); err != nil {
				return fmt.Errorf("writing installed packages: %w", err)
			}
			// Not the builder's umask.
			if err := os.Chmod(dir, 0o755); err != nil {
				return fmt.Errorf("writing installed packages: %w", err)
			}
		case err != nil:
			return fmt.Errorf("writing installed packages: %w", err)
		case !fi.IsDir():
			return fmt.Errorf("writing installed packages: %s is not a directory in the tree (a package shipped it as %v)", dir, fi.Mode().Type())
		}
	}
	if err := atomicfile.Write(filepath.Join(root, InstalledDBPath), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing installed packages: %w", err)
	}
	return nil
}
