package pacman

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/sxb-build/sxb/builtins/tree"
)

// LocalDBPath is pacman's local database, relative to the tree root:
// one directory per installed package, "<name>-<version>", holding desc,
// files, mtree and (with a scriptlet) install.
const LocalDBPath = "var/lib/pacman/local"

// installed is a package of a local database.
type installed struct {
	Name, Version, Arch                    string
	Depends, Provides, Conflicts, Replaces []Dep
	Groups                                 []string
	// entry is the directory name in the local database.
	entry string
}

// readLocalDB reads the packages of the local database of the tree at
// root (none when it has no database), sorted by name. Paths are resolved
// inside the tree: a symlink in it cannot make sxb read the host.
func readLocalDB(root string) ([]*installed, error) {
	ents, err := tree.ReadDir(root, LocalDBPath)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading installed packages: %w", err)
	}
	var out []*installed
	for _, e := range ents {
		if !e.IsDir() {
			continue // ALPM_DB_VERSION
		}
		d, err := readTreeDesc(root, LocalDBPath+"/"+e.Name()+"/desc")
		if err != nil {
			return nil, fmt.Errorf("reading installed packages: %w", err)
		}
		p := &installed{Name: d.one("NAME"), Version: d.one("VERSION"), Arch: d.one("ARCH"), Groups: d["GROUPS"], entry: e.Name()}
		if p.Name == "" || p.Version == "" {
			return nil, fmt.Errorf("reading installed packages: %s/%s/desc has no %%NAME%% or %%VERSION%%", LocalDBPath, e.Name())
		}
		for _, f := range []struct {
			key string
			dst *[]Dep
		}{{"DEPENDS", &p.Depends}, {"PROVIDES", &p.Provides}, {"CONFLICTS", &p.Conflicts}, {"REPLACES", &p.Replaces}} {
			if *f.dst, err = parseDeps(d[f.key], "%"+f.key+"%"); err != nil {
				return nil, fmt.Errorf("reading installed packages: %s: %w", e.Name(), err)
			}
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// readTreeDesc reads a desc-format file of the tree at root.
func readTreeDesc(root, rel string) (desc, error) {
	b, err := tree.ReadFile(root, rel)
	if err != nil {
		return nil, err
	}
	d := desc{}
	if err := parseDesc(b, d); err != nil {
		return nil, fmt.Errorf("%s: %w", rel, err)
	}
	return d, nil
}

// installedFiles maps every non-directory path the local database of root
// lists to the package owning it.
func installedFiles(root string, pkgs []*installed) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range pkgs {
		d, err := readTreeDesc(root, LocalDBPath+"/"+p.entry+"/files")
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading installed packages: %w", err)
		}
		for _, f := range d["FILES"] {
			if !strings.HasSuffix(f, "/") {
				out[f] = p.Name
			}
		}
	}
	return out, nil
}
