package squashfs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/testenv"
)

// memImage is an in-memory io.WriterAt.
type memImage struct{ b []byte }

func (m *memImage) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(m.b) {
		m.b = append(m.b, make([]byte, end-len(m.b))...)
	}
	copy(m.b[off:], p)
	return len(p), nil
}

func TestReproducible(t *testing.T) {
	root := makeTree(t)
	for _, c := range []string{"gzip", "zstd", "lz4"} {
		var first []byte
		for _, workers := range []int{1, 2, 7, 1} {
			m := &memImage{}
			size, err := Write(m, root, Options{Compression: c, Workers: workers, Epoch: 1700000000})
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(m.b)) != size {
				t.Fatalf("%s: returned size %d, wrote %d bytes", c, size, len(m.b))
			}
			if first == nil {
				first = m.b
			} else if !bytes.Equal(first, m.b) {
				t.Fatalf("%s: image with %d workers differs from the first one", c, workers)
			}
		}
	}
}

// TestVariants mounts images written with other block sizes and without
// fragments.
func TestVariants(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "unsquashfs", "mount", "umount")
	root := makeTree(t)
	for name, opts := range map[string]Options{
		"nofrag":     {NoFragments: true},
		"block4k":    {BlockSize: 4096, Compression: "zstd", Level: 3},
		"block1m":    {BlockSize: 1 << 20, Compression: "gzip", Level: 1},
		"lz4hc":      {Compression: "lz4", Level: 9},
		"xz-block8k": {Compression: "xz", BlockSize: 8192},
	} {
		t.Run(name, func(t *testing.T) {
			img := writeImage(t, root, opts)
			diffLines(t, "unsquashfs -pf", expectedPseudo(root), actualPseudo(t, img))
			checkTree(t, mountImage(t, img), root, true)
		})
	}
}

// TestLargeSparseFile writes a file larger than 4 GiB (extended inode with
// 64-bit size) that is mostly holes.
func TestLargeSparseFile(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "mount", "umount")
	dir := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const size = 4<<30 + 3*testBlock + 77
	f, err := os.Create(filepath.Join(dir, "huge"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("end of a huge file"), size-18); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("start"), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	root, err := tree.Load(dir, tree.Options{Epoch: -1})
	if err != nil {
		t.Fatal(err)
	}
	img := writeImage(t, root, Options{Compression: "zstd"})
	if fi, _ := os.Stat(img); fi.Size() > 1<<20 {
		t.Errorf("image of a sparse file is %d bytes; holes were not stored as sparse blocks", fi.Size())
	}
	mnt := mountImage(t, img)
	g, err := os.Open(filepath.Join(mnt, "huge"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(g.Fd()), &st); err != nil || st.Size != size {
		t.Fatalf("size %d (%v), want %d", st.Size, err, size)
	}
	buf := make([]byte, 4096)
	for _, c := range []struct {
		off  int64
		want string
	}{{0, "start\x00"}, {size - 18, "end of a huge file"}, {2 << 30, "\x00\x00\x00\x00"}} {
		n, err := g.ReadAt(buf[:len(c.want)], c.off)
		if err != nil || string(buf[:n]) != c.want {
			t.Errorf("at %d read %q (%v), want %q", c.off, buf[:n], err, c.want)
		}
	}
}

// TestRealTree writes a real system directory and compares the kernel's
// view of it with the tree.
func TestRealTree(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "unsquashfs", "mount", "umount")
	var dir string
	for _, d := range []string{"/usr/share/doc", "/usr/share/man", "/usr/lib/python3"} {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			dir = d
			break
		}
	}
	if dir == "" {
		t.Fatal("no real tree found (/usr/share/doc, /usr/share/man, /usr/lib/python3)")
	}
	root, err := tree.Load(dir, tree.Options{Epoch: -1, KeepOwner: true})
	if err != nil {
		t.Fatal(err)
	}
	img := writeImage(t, root, Options{Compression: "zstd", Level: 3, Epoch: 1700000000})
	diffLines(t, "unsquashfs -lln", expectedListing(root), actualListing(t, img))
	diffLines(t, "unsquashfs -pf", expectedPseudo(root), actualPseudo(t, img))
	checkTree(t, mountImage(t, img), root, true)
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	mk := func(children ...*tree.Node) *tree.Node {
		r := &tree.Node{Kind: tree.Dir, Mode: 0755, Nlink: 2}
		for _, c := range children {
			c.Parent = r
			if c.Path == "" {
				c.Path = c.Name
			}
			if c.Nlink == 0 {
				c.Nlink = 1
			}
			r.Children = append(r.Children, c)
		}
		return r
	}
	file := &tree.Node{Name: "f", Kind: tree.Regular, Mode: 0644, Size: 3, HostPath: short}
	later := &tree.Node{Name: "z", Kind: tree.Regular, Mode: 0644}
	for _, c := range []struct {
		name string
		root *tree.Node
		opts Options
		want string
	}{
		{"compression", mk(), Options{Compression: "lzo"}, `unknown compression "lzo"`},
		{"level", mk(), Options{Compression: "gzip", Level: 10}, "gzip level 10 out of range"},
		{"xz level", mk(), Options{Compression: "xz", Level: 6}, "xz takes no level"},
		{"block size", mk(), Options{BlockSize: 65537}, "block size 65537"},
		{"root", &tree.Node{Kind: tree.Regular}, Options{}, "root must be a directory"},
		{"slash", mk(&tree.Node{Name: "a/b", Kind: tree.FIFO}), Options{}, `contains '/'`},
		{"dotdot", mk(&tree.Node{Name: "..", Kind: tree.FIFO}), Options{}, `invalid name ".."`},
		{"long", mk(&tree.Node{Name: strings.Repeat("x", 257), Kind: tree.FIFO}), Options{}, "longer than 256"},
		{"unsorted", mk(&tree.Node{Name: "b", Kind: tree.FIFO}, &tree.Node{Name: "a", Kind: tree.FIFO}), Options{}, "not sorted"},
		{"xattr", mk(&tree.Node{Name: "a", Kind: tree.FIFO, Xattrs: map[string][]byte{"system.posix_acl_access": {1}}}), Options{},
			"only user., trusted. and security."},
		{"device", mk(&tree.Node{Name: "d", Kind: tree.CharDev, Rdev: tree.Mkdev(5000, 1)}), Options{}, "device number 5000:1"},
		{"grown", mk(&tree.Node{Name: "f", Kind: tree.Regular, Size: 2, HostPath: short}), Options{}, "changed size"},
		{"shrunk", mk(&tree.Node{Name: "f", Kind: tree.Regular, Size: 300000, HostPath: short}), Options{}, "changed size"},
		{"missing", mk(&tree.Node{Name: "f", Kind: tree.Regular, Size: 3, HostPath: filepath.Join(dir, "nope")}), Options{}, "no such file"},
		{"late link", mk(&tree.Node{Name: "a", Kind: tree.Regular, Link: later}, later), Options{}, "not an earlier node"},
		{"link kind", mk(file, &tree.Node{Name: "g", Kind: tree.FIFO, Link: file}), Options{}, "hard link to f"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Write(&memImage{}, c.root, c.opts)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got error %v, want one containing %q", err, c.want)
			}
		})
	}
}

type failingWriter struct{ after int64 }

func (f *failingWriter) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.after {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestWriteErrorPropagates(t *testing.T) {
	root := makeTree(t)
	size, err := Write(&memImage{}, root, Options{Compression: "lz4"})
	if err != nil {
		t.Fatal(err)
	}
	for _, after := range []int64{100, 300000, size / 2, size - 100} {
		_, err := Write(&failingWriter{after: after}, root, Options{Compression: "lz4"})
		if err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("write failing after %d bytes: got %v", after, err)
		}
	}
}
