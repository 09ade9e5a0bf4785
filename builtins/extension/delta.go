package extension

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/sxb-build/sxb/builtins/tree"
)

// DropExisting removes from the tree at root every object that the base
// tree already has, identical (same type and permissions, same symlink
// target or same content), except directories (they stay as parents of new
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
		if bfi, err := os.Lstat(inBase); err == nil {
			same, err := sameObject(p, inBase, bfi)
			if err != nil {
				return err
			}
			if !same {
				// The extension's packages changed it (an upgraded base
				// package): ship the new one, as the overlay would.
				return nil
			}
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

// sameObject reports whether the object at p equals the one at q (whose
// Lstat is qfi): type, permission bits, symlink target, file content.
func sameObject(p, q string, qfi fs.FileInfo) (bool, error) {
	pfi, err := os.Lstat(p)
	if err != nil {
		return false, err
	}
	if pfi.Mode() != qfi.Mode() {
		return false, nil
	}
	switch {
	case pfi.Mode()&fs.ModeSymlink != 0:
		a, err1 := os.Readlink(p)
		b, err2 := os.Readlink(q)
		return err1 == nil && err2 == nil && a == b, nil
	case pfi.Mode().IsRegular():
		if pfi.Size() != qfi.Size() {
			return false, nil
		}
		return sameContent(p, q)
	}
	return true, nil
}

func sameContent(p, q string) (bool, error) {
	a, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer a.Close()
	b, err := os.Open(q)
	if err != nil {
		return false, err
	}
	defer b.Close()
	ba, bb := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, ea := io.ReadFull(a, ba)
		nb, eb := io.ReadFull(b, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if ea == io.EOF || ea == io.ErrUnexpectedEOF {
			return eb == io.EOF || eb == io.ErrUnexpectedEOF, nil
		}
		if ea != nil {
			return false, ea
		}
		if eb != nil {
			return false, eb
		}
	}
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
