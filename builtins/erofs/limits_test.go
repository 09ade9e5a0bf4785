package erofs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/testenv"
)

// manyLinks builds, in memory, a directory with more than 65535 names of one
// empty file: the inode needs the extended form for its link count and the
// directory spans hundreds of dirent blocks.
func manyLinks(n int) *tree.Node {
	root := &tree.Node{Kind: tree.Dir, Mode: 0o755, Mtime: buildTime, Nlink: 3}
	d := &tree.Node{Name: "links", Path: "links", Kind: tree.Dir, Mode: 0o700, Mtime: buildTime, Nlink: 2, Parent: root}
	f := &tree.Node{Name: "file", Path: "file", Kind: tree.Regular, Mode: 0o644, Mtime: buildTime, Nlink: uint32(n + 1), Parent: root}
	root.Children = []*tree.Node{f, d}
	for i := range n {
		name := fmt.Sprintf("l%06d", i)
		d.Children = append(d.Children, &tree.Node{Name: name, Path: "links/" + name, Kind: tree.Regular,
			Mode: 0o644, Mtime: buildTime, Link: f, Parent: d})
	}
	return root
}

func TestManyHardLinks(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "fsck.erofs", "dump.erofs")
	const n = 70000
	root := manyLinks(n)
	img := writeImage(t, root, defaultOpts)
	run(t, "fsck.erofs", "--extract", img)
	if out := run(t, "dump.erofs", "--path=/file", img); !strings.Contains(out, "Inode size: 64") ||
		!strings.Contains(out, fmt.Sprintf("Links: %d", n+1)) {
		t.Errorf("dump.erofs --path=/file:\n%s", out)
	}
	mnt := mount(t, img)
	var a, b unix.Stat_t
	if err := unix.Lstat(filepath.Join(mnt, "file"), &a); err != nil {
		t.Fatal(err)
	}
	if a.Nlink != n+1 {
		t.Errorf("nlink %d, want %d", a.Nlink, n+1)
	}
	for _, name := range []string{"l000000", "l034567", fmt.Sprintf("l%06d", n-1)} {
		if err := unix.Lstat(filepath.Join(mnt, "links", name), &b); err != nil {
			t.Fatal(err)
		}
		if b.Ino != a.Ino {
			t.Errorf("links/%s: inode %d, want %d", name, b.Ino, a.Ino)
		}
	}
	ents, err := os.ReadDir(filepath.Join(mnt, "links"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != n {
		t.Errorf("links has %d entries, want %d", len(ents), n)
	}
	if _, err := os.Lstat(filepath.Join(mnt, "links", "l0700000")); !os.IsNotExist(err) {
		t.Errorf("lookup of a missing name: %v", err)
	}
}

// sparseWriter writes only the non-zero blocks to f, so that an image with
// gigabytes of zeros costs no disk space.
type sparseWriter struct{ f *os.File }

func (s sparseWriter) WriteAt(p []byte, off int64) (int, error) {
	var zero [BlockSize]byte
	for i := 0; i < len(p); {
		k := min(BlockSize-int((off+int64(i))%BlockSize), len(p)-i)
		if !bytes.Equal(p[i:i+k], zero[:k]) {
			if _, err := s.f.WriteAt(p[i:i+k], off+int64(i)); err != nil {
				return i, err
			}
		}
		i += k
	}
	return len(p), nil
}

// TestHugeFile stores a sparse file larger than 4 GiB, which needs the
// extended inode's 64-bit size.
func TestHugeFile(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "dump.erofs")
	dir := t.TempDir()
	const size = 4<<30 + 4096 + 105
	f, err := os.Create(filepath.Join(dir, "huge"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("BEGIN"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("END!!"), size-5); err != nil {
		t.Fatal(err)
	}
	f.Close()
	root, err := tree.Load(dir, tree.Options{Epoch: buildTime})
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "img.erofs")
	out, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	n, err := Write(sparseWriter{out}, root, defaultOpts)
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Truncate(n); err != nil {
		t.Fatal(err)
	}
	out.Close()
	if d := run(t, "dump.erofs", "--path=/huge", img); !strings.Contains(d, fmt.Sprintf("Size: %d", size)) || !strings.Contains(d, "Inode size: 64") {
		t.Errorf("dump.erofs --path=/huge:\n%s", d)
	}
	mnt := mount(t, img)
	g, err := os.Open(filepath.Join(mnt, "huge"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	fi, _ := g.Stat()
	if fi.Size() != size {
		t.Errorf("size %d, want %d", fi.Size(), size)
	}
	for off, want := range map[int64]string{0: "BEGIN", size - 5: "END!!", 4 << 30: "\x00\x00\x00\x00\x00"} {
		buf := make([]byte, 5)
		if _, err := g.ReadAt(buf, off); err != nil || string(buf) != want {
			t.Errorf("at %d: %q (%v), want %q", off, buf, err, want)
		}
	}
}

func TestHostileTrees(t *testing.T) {
	var buf writerAtBuf
	for name, mk := range map[string]func() *tree.Node{
		"dotdot": func() *tree.Node {
			r := manyLinks(1)
			r.Children[1].Children[0].Name = ".."
			return r
		},
		"duplicate": func() *tree.Node {
			r := manyLinks(2)
			r.Children[1].Children[1].Name = r.Children[1].Children[0].Name
			return r
		},
		"link outside": func() *tree.Node {
			r := manyLinks(1)
			r.Children[1].Children[0].Link = &tree.Node{Name: "elsewhere", Kind: tree.Regular}
			return r
		},
		"linked dir": func() *tree.Node {
			r := manyLinks(1)
			r.Children = append(r.Children, &tree.Node{Name: "z", Kind: tree.Dir, Link: r.Children[1]})
			return r
		},
		"long name": func() *tree.Node {
			r := manyLinks(1)
			r.Children[1].Children[0].Name = strings.Repeat("x", 256)
			return r
		},
		"empty symlink": func() *tree.Node {
			r := manyLinks(0)
			r.Children = append(r.Children, &tree.Node{Name: "s", Kind: tree.Symlink})
			return r
		},
		"huge device": func() *tree.Node {
			r := manyLinks(0)
			r.Children = append(r.Children, &tree.Node{Name: "s", Kind: tree.CharDev, Rdev: tree.Mkdev(5000, 1)})
			return r
		},
		"mode type bits": func() *tree.Node {
			r := manyLinks(0)
			r.Children[0].Mode = 0o100644
			return r
		},
	} {
		if _, err := Write(&buf, mk(), defaultOpts); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.HasPrefix(err.Error(), "erofs: ") {
			t.Errorf("%s: error without context: %v", name, err)
		}
	}
}
