package pacman

import (
	"fmt"
	"io/fs"
	"path"

	"github.com/sxb-build/sxb/builtins/tree"
)

// root is a tree being filled. Every write goes through tree.Root, so no
// symlink, whoever made it, sends a write outside the tree.
type root struct {
	t *tree.Root
	// resolved caches where a payload directory is in the tree after
	// following symlinks (merged-/usr links): directories are created
	// right after they are resolved and never replaced by symlinks, so
	// the answer does not change.
	resolved map[string]string
	// created is called with every directory mkdirAll makes.
	created func(rel string)
}

func openRoot(dir string) (*root, error) {
	if err := tree.MkdirAll(dir); err != nil {
		return nil, err
	}
	t, err := tree.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &root{t: t, resolved: map[string]string{}}, nil
}

func (r *root) close() { r.t.Close() }

func orDot(s string) string {
	if s == "" {
		return "."
	}
	return s
}

// mkdirAll opens the directory rel, creating it and its missing parents
// (mode 0755, whatever the umask) and telling created about them.
func (r *root) mkdirAll(rel string) (*tree.DirHandle, error) {
	d, err := r.t.MkdirAllFunc(orDot(rel), r.created)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", orDot(rel), err)
	}
	return d, nil
}

// resolveDir maps the payload directory rel to where it is in the tree,
// following symlinks inside the root.
func (r *root) resolveDir(rel string) (string, error) {
	if rel == "" {
		return "", nil
	}
	if res, ok := r.resolved[rel]; ok {
		return res, nil
	}
	p, err := r.t.Resolve(rel + "/x")
	if err != nil {
		return "", err
	}
	res := path.Dir(p)
	if res == "." {
		res = ""
	}
	r.resolved[rel] = res
	return res, nil
}

// writeFile replaces rel with content and mode perm, parents created as
// needed.
func (r *root) writeFile(rel string, content []byte, perm uint32) error {
	d, err := r.mkdirAll(path.Dir(rel))
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.WriteFile(path.Base(rel), content, fs.FileMode(perm)); err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	return nil
}
