package sandbox

import (
	"errors"
	"io/fs"
	"os"

	"github.com/sxb-build/sxb/builtins/tree"
)

// Scrub removes from a tree what package scripts leave that differs from
// run to run and has no place in an image, as mmdebstrap does: the files
// named by remove (logs with the time of the run, ldconfig's auxiliary
// cache of inode numbers and times) go, with their Meta entries, and
// /etc/machine-id, which systemd's scripts fill with a random id, is
// left empty: machine-id(5) asks that of an image meant for many
// machines, and the first boot fills it.
func Scrub(r *tree.Root, meta *tree.Meta, remove ...string) error {
	for _, rel := range remove {
		if err := r.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if meta != nil {
			meta.Delete(rel)
		}
	}
	if st, err := r.Lstat("etc/machine-id"); err == nil && st.Mode().IsRegular() && st.Size() > 0 {
		f, err := r.OpenFile("etc/machine-id", os.O_WRONLY|os.O_TRUNC)
		if err != nil {
			return err
		}
		f.Close()
	}
	return nil
}
