package tree

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// CopyInto copies the directory src into the tree at root, below the
// relative directory target ("" or "/" for the top), the way extra and
// skeleton trees are applied: directories merge, files, symlinks and other
// objects replace what is there, permission bits and modification times are
// kept, and ownership becomes root's (meta entries of replaced paths are
// dropped). Destination paths are resolved confined to root, so a symlink
// already in the tree cannot redirect a copy outside of it.
func CopyInto(root, src, target string, meta *Meta) error {
	target = strings.Trim(path.Clean("/"+filepath.ToSlash(target)), "/")
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("copying %s: %w", src, err)
		}
		rel, _ := filepath.Rel(src, p)
		rel = path.Join(target, filepath.ToSlash(rel))
		if rel == "." {
			rel = ""
		}
		fi, err := d.Info()
		if err != nil {
			return fmt.Errorf("copying %s: %w", src, err)
		}
		if rel == "" {
			return MkdirAll(root)
		}
		dst, err := Resolve(root, rel)
		if err == nil && fi.IsDir() {
			// A directory merges into whatever directory the tree has
			// there, also through a symlink such as the merged-/usr "bin".
			var inner string
			if inner, err = Resolve(root, rel+"/x"); err == nil {
				if st, serr := os.Stat(filepath.Dir(inner)); serr == nil && st.IsDir() {
					dst = filepath.Dir(inner)
				}
			}
		}
		if err != nil {
			return fmt.Errorf("copying %s: %w", p, err)
		}
		if meta != nil {
			if resRel, err := filepath.Rel(root, dst); err == nil {
				meta.Delete(filepath.ToSlash(resRel))
			}
		}
		if err := MkdirAll(filepath.Dir(dst)); err != nil {
			return err
		}
		mode := fi.Mode()
		if mode.IsDir() {
			if st, err := os.Lstat(dst); err == nil && st.IsDir() {
				os.Chmod(dst, mode.Perm()|mode&(fs.ModeSetgid|fs.ModeSticky))
				return nil
			}
			os.RemoveAll(dst)
			if err := os.Mkdir(dst, mode.Perm()); err != nil {
				return fmt.Errorf("copying %s: %w", p, err)
			}
			// Mkdir applied the builder's umask.
			return os.Chmod(dst, mode.Perm()|mode&(fs.ModeSetgid|fs.ModeSticky))
		}
		if st, err := os.Lstat(dst); err == nil {
			if st.IsDir() {
				if err := os.RemoveAll(dst); err != nil {
					return err
				}
			} else if err := os.Remove(dst); err != nil {
				return err
			}
		}
		switch {
		case mode&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(t, dst); err != nil {
				return fmt.Errorf("copying %s: %w", p, err)
			}
			return nil
		case mode.IsRegular():
			if err := copyFile(p, dst, mode); err != nil {
				return fmt.Errorf("copying %s: %w", p, err)
			}
			return os.Chtimes(dst, fi.ModTime(), fi.ModTime())
		default:
			return fmt.Errorf("copying %s: unsupported file type %v", p, mode.Type())
		}
	})
}

// MkdirAll creates dir and missing parents with mode 0755 whatever the
// process umask, so that what the image records of them does not depend on
// who built it. Existing directories are left as they are.
func MkdirAll(dir string) error {
	if st, err := os.Stat(dir); err == nil {
		if !st.IsDir() {
			return &fs.PathError{Op: "mkdir", Path: dir, Err: fs.ErrExist}
		}
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := MkdirAll(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if os.IsExist(err) {
			return nil
		}
		return err
	}
	return os.Chmod(dir, 0o755)
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode.Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	// Keep setuid/setgid/sticky, which the umask-free create above drops.
	return os.Chmod(dst, mode.Perm()|mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
}

// RemoveGlobs deletes every path of the tree at root matching one of the
// shell patterns (relative to root, a leading "/" allowed), as mkosi's
// RemoveFiles= does. Matching walks the tree itself and never follows a
// symlink: a pattern that runs through a symlinked directory matches
// nothing, so no symlink in a (possibly hostile) tree can make sxb delete a
// file outside of it. It returns the removed paths.
func RemoveGlobs(root string, patterns []string, meta *Meta) ([]string, error) {
	var removed []string
	for _, pat := range patterns {
		clean := strings.Trim(path.Clean("/"+pat), "/")
		if clean == "" {
			return nil, fmt.Errorf("remove_files: %q would remove the whole tree", pat)
		}
		comps := strings.Split(clean, "/")
		for _, c := range comps {
			if _, err := path.Match(c, ""); err != nil {
				return nil, fmt.Errorf("remove_files: %q: %w", pat, err)
			}
		}
		var matches []string
		if err := globWalk(root, "", comps, &matches); err != nil {
			return nil, fmt.Errorf("remove_files: %w", err)
		}
		for _, rel := range matches {
			if err := os.RemoveAll(filepath.Join(root, filepath.FromSlash(rel))); err != nil {
				return nil, fmt.Errorf("remove_files: %w", err)
			}
			if meta != nil {
				for _, p := range meta.Paths() {
					if p == rel || strings.HasPrefix(p, rel+"/") {
						meta.Delete(p)
					}
				}
			}
			removed = append(removed, rel)
		}
	}
	return removed, nil
}

// globWalk appends to out the paths below root/rel matching comps, one
// pattern per path component, descending only into real directories.
func globWalk(root, rel string, comps []string, out *[]string) error {
	ents, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	for _, e := range ents {
		if ok, _ := path.Match(comps[0], e.Name()); !ok {
			continue
		}
		p := path.Join(rel, e.Name())
		if len(comps) == 1 {
			*out = append(*out, p)
			continue
		}
		if e.IsDir() && e.Type()&fs.ModeSymlink == 0 {
			if err := globWalk(root, p, comps[1:], out); err != nil {
				return err
			}
		}
	}
	return nil
}
