package extension

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/sxb-build/sxb/builtins/tree"
)

// DropExisting removes from the tree at root every object that also exists
// in the base tree, except directories (they stay as parents of new
// content). This is the overlay delta of mkosi's Overlay=yes without
// overlayfs: the extension's packages were unpacked into their own tree and
// whatever the base already provides is not shipped again. Meta entries of
// removed paths are forgotten. It returns the removed paths, sorted.
func DropExisting(root string, meta *tree.Meta, base string) ([]string, error) {
	var removed []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." || d.IsDir() {
			return nil
		}
		rel = filepath.ToSlash(rel)
		// Look the path up confined to the base: an absolute symlink in
		// the base must not make us consult the host.
		inBase, err := tree.Resolve(base, rel)
		if err != nil {
			return err
		}
		if _, err := os.Lstat(inBase); err == nil {
			if err := os.Remove(p); err != nil {
				return err
			}
			if meta != nil {
				meta.Delete(rel)
			}
			removed = append(removed, rel)
		} else if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("computing overlay delta: %w", err)
	}
	sort.Strings(removed)
	return removed, nil
}

// neverShipped are paths no extension may carry: package databases and the
// os-release of whatever tree the extension was built in.
var neverShipped = []string{
	"usr/lib/os-release",
	"etc/os-release",
	"usr/lib/sysimage/rpm",
	"usr/lib/sysimage/libdnf5",
	"usr/lib/sysimage/sxb",
	"var/lib/dpkg",
	"var/lib/rpm",
}

// TopDirs returns the top-level directories an extension of kind keeps.
func TopDirs(kind Kind) []string {
	if kind == Confext {
		return []string{"etc"}
	}
	return []string{"opt", "usr"}
}

// Prune keeps only the top-level directories of kind (usr/ and opt/ for a
// sysext, etc/ for a confext), removes package databases and os-release,
// and then every empty directory, bottom-up. Meta entries of removed paths
// are forgotten.
func Prune(root string, meta *tree.Meta, kind Kind) error {
	keep := map[string]bool{}
	for _, d := range TopDirs(kind) {
		keep[d] = true
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("pruning extension tree: %w", err)
	}
	for _, e := range ents {
		if keep[e.Name()] && e.IsDir() {
			continue
		}
		if err := removeAll(root, e.Name(), meta); err != nil {
			return err
		}
	}
	for _, p := range neverShipped {
		if err := removeAll(root, p, meta); err != nil {
			return err
		}
	}
	if _, err := removeEmptyDirs(root, "", meta); err != nil {
		return fmt.Errorf("pruning extension tree: %w", err)
	}
	return nil
}

func removeAll(root, rel string, meta *tree.Meta) error {
	// Resolve intermediate symlinks inside the tree: a package that made
	// usr/lib a symlink to /etc must not make us delete a host file.
	full, err := tree.Resolve(root, rel)
	if err != nil {
		return fmt.Errorf("pruning extension tree: %w", err)
	}
	if r, err := filepath.Rel(root, full); err == nil {
		rel = filepath.ToSlash(r)
	}
	if _, err := os.Lstat(full); err != nil {
		return nil
	}
	if err := os.RemoveAll(full); err != nil {
		return fmt.Errorf("pruning extension tree: %w", err)
	}
	if meta != nil {
		for _, p := range meta.Paths() {
			if p == rel || strings.HasPrefix(p, rel+"/") {
				meta.Delete(p)
			}
		}
	}
	return nil
}

// removeEmptyDirs removes empty directories below root/rel and reports
// whether rel itself is now empty. The root itself is never removed.
func removeEmptyDirs(root, rel string, meta *tree.Meta) (bool, error) {
	ents, err := os.ReadDir(filepath.Join(root, rel))
	if err != nil {
		return false, err
	}
	n := len(ents)
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		crel := path.Join(rel, e.Name())
		empty, err := removeEmptyDirs(root, crel, meta)
		if err != nil {
			return false, err
		}
		if empty {
			if err := os.Remove(filepath.Join(root, crel)); err != nil {
				return false, err
			}
			if meta != nil {
				meta.Delete(crel)
			}
			n--
		}
	}
	return n == 0, nil
}
