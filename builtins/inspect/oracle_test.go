package inspect

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/builtins/erofs"
	"github.com/sxb-build/sxb/builtins/squashfs"
	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/testenv"
)

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// extractHere extracts img into dir/ours and returns the loaded tree.
func extractHere(t testing.TB, img, dir string) (*Extracted, *tree.Node) {
	t.Helper()
	x, err := Extract(context.Background(), img, filepath.Join(dir, "ours"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return x, loadTree(t, filepath.Join(dir, "ours"), x.Meta)
}

// TestExtractMatchesReferenceTools extracts images written by sxb and by
// mkfs.erofs (plain with shared xattrs, and chunk-based) and mksquashfs
// (every compressor) from a source tree holding every kind of object, and
// checks the result against the source tree itself and against what
// fsck.erofs --extract and unsquashfs -d make of the same image as root:
// names, kinds, modes, owners, sizes, content hashes, symlink targets,
// device numbers, times, xattrs and hard links. (fsck.erofs 1.5 restores
// neither xattrs nor hard links and drops setuid bits, so those are
// compared against the source tree only.)
func TestExtractMatchesReferenceTools(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "mkfs.erofs", "fsck.erofs", "mksquashfs", "unsquashfs")
	root, real, want := realFixture(t)
	fsckAspects := aspects{owners: true, times: true}

	erofsImages := map[string]func(t *testing.T, img string){
		"sxb": func(t *testing.T, img string) { writeFile(t, img, fsCases[0].write(t, root)) },
		"mkfs-shared-xattrs": func(t *testing.T, img string) {
			run(t, "mkfs.erofs", "--quiet", "-x1", img, real)
			if sharedXattrs(t, img) == 0 {
				t.Fatal("mkfs.erofs -x1 wrote no shared xattrs")
			}
		},
		"mkfs-chunked": func(t *testing.T, img string) { run(t, "mkfs.erofs", "--quiet", "--chunksize=8192", img, real) },
	}
	for name, mk := range erofsImages {
		t.Run("erofs-"+name, func(t *testing.T) {
			img := checkExtraction(t, mk, want, fsckAspects, "fsck.erofs", "--extract=OUT", "IMG")
			if name == "mkfs-chunked" {
				e, err := openErofs(openFile(t, img), readerSize(openFile(t, img)))
				if err != nil {
					t.Fatal(err)
				}
				o, err := fsView{e}.lookup("usr/lib/big.bin")
				if err != nil || o.handle.(*erofsInode).layout != 4 {
					t.Fatalf("mkfs.erofs --chunksize wrote no chunk-based file (%v)", err)
				}
			}
		})
	}

	squashImages := map[string]func(t *testing.T, img string){}
	for _, c := range []string{"gzip", "xz", "zstd", "lz4"} {
		squashImages["sxb-"+c] = func(t *testing.T, img string) {
			writeFile(t, img, fsCase{s: &squashfs.Options{Compression: c}}.write(t, root))
		}
		squashImages["mksquashfs-"+c] = func(t *testing.T, img string) {
			run(t, "mksquashfs", real, img, "-comp", c, "-noappend", "-quiet")
		}
	}
	for name, mk := range squashImages {
		t.Run("squashfs-"+name, func(t *testing.T) {
			checkExtraction(t, mk, want, allAspects, "unsquashfs", "-no-progress", "-d", "OUT", "IMG")
		})
	}
}

// realFixture loads the fixture, materializes it (as root: owners,
// devices, xattrs) for the reference tools to read, and describes it.
func realFixture(t *testing.T) (root *tree.Node, real string, want map[string]string) {
	t.Helper()
	src, meta := fixture(t)
	root = loadTree(t, src, meta)
	real = filepath.Join(t.TempDir(), "real")
	materialize(t, root, real)
	want = describe(t, root, allAspects)
	if d := diffDescriptions(want, describe(t, loadReal(t, real), allAspects)); d != "" {
		t.Fatalf("the materialized source tree differs from the fixture:\n%s", d)
	}
	return root, real, want
}

// checkExtraction makes an image with mk, extracts it and compares the
// result with want and, in the aspects given, with what the reference
// tool (its arguments naming OUT and IMG) extracts. It returns the image.
func checkExtraction(t *testing.T, mk func(*testing.T, string), want map[string]string, a aspects, tool string, args ...string) string {
	dir := t.TempDir()
	img, out := filepath.Join(dir, "fs.img"), filepath.Join(dir, tool)
	mk(t, img)
	_, ours := extractHere(t, img, dir)
	if d := diffDescriptions(want, describe(t, ours, allAspects)); d != "" {
		t.Errorf("extracted tree differs from the source:\n%s", d)
	}
	for i, arg := range args {
		args[i] = strings.NewReplacer("OUT", out, "IMG", img).Replace(arg)
	}
	run(t, tool, args...)
	if d := diffDescriptions(describe(t, loadReal(t, out), a), describe(t, ours, a)); d != "" {
		t.Errorf("extracted tree differs from %s's:\n%s", tool, d)
	}
	return img
}

// TestExtractCompressedErofs extracts compressed erofs images, sxb's with
// every algorithm and mkfs.erofs 1.8's (also with big physical clusters and
// the non-compact index layout), and compares them with the source tree in
// every aspect. A layout the reader does not decode (tail packing) is
// refused with ErrCompressedErofs and leaves dest empty.
func TestExtractCompressedErofs(t *testing.T) {
	testenv.NeedRoot(t)
	mkfs := testenv.ErofsTool(t, "mkfs.erofs")
	root, real, want := realFixture(t)
	mkfsImage := func(args ...string) func(*testing.T, string) {
		return func(t *testing.T, img string) {
			argv := append(append(append([]string(nil), mkfs...), "--quiet"), args...)
			run(t, argv[0], append(argv[1:], img, real)...)
		}
	}
	images := map[string]func(*testing.T, string){}
	for _, c := range erofs.Compressions[1:] {
		images["sxb-"+c] = func(t *testing.T, img string) {
			writeFile(t, img, fsCase{e: &erofs.Options{Compression: c}}.write(t, root))
		}
	}
	for _, args := range [][]string{{"-zlz4"}, {"-zlz4hc", "-C65536"}, {"-zlz4hc,12", "-Elegacy-compress"},
		{"-zlzma"}, {"-zlzma,9", "-C32768"}, {"-zdeflate"}, {"-zzstd"}, {"-zzstd", "-C16384", "-Elegacy-compress"}} {
		images["mkfs"+strings.Join(args, "")] = mkfsImage(args...)
	}
	for name, mk := range images {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, "fs.img")
			mk(t, img)
			_, ours := extractHere(t, img, dir)
			if d := diffDescriptions(want, describe(t, ours, allAspects)); d != "" {
				t.Errorf("extracted tree differs from the source:\n%s", d)
			}
		})
	}
	t.Run("tailpacking", func(t *testing.T) {
		dir := t.TempDir()
		img := filepath.Join(dir, "z.img")
		mkfsImage("-zlz4hc", "-Eztailpacking")(t, img)
		dest := filepath.Join(dir, "out")
		os.Mkdir(dest, 0o755)
		_, err := Extract(context.Background(), img, dest, nil)
		if !errors.Is(err, ErrCompressedErofs) {
			t.Fatalf("got %v, want ErrCompressedErofs", err)
		}
		if ents, _ := os.ReadDir(dest); len(ents) != 0 {
			t.Errorf("dest holds %d entries after the failure", len(ents))
		}
	})
}

func openFile(t testing.TB, p string) *os.File {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// sharedXattrs counts the inodes of an erofs image that refer to shared
// xattrs.
func sharedXattrs(t testing.TB, img string) int {
	t.Helper()
	f := openFile(t, img)
	e, err := openErofs(f, readerSize(f))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	var walk func(o *object)
	walk = func(o *object) {
		in := o.handle.(*erofsInode)
		if in.xsize > 0 {
			b := make([]byte, 12)
			f.ReadAt(b, in.off+in.isize)
			if b[4] > 0 {
				n++
			}
		}
		if o.kind != tree.Dir {
			return
		}
		err := e.entries(o, func(name string, key uint64) error {
			if name == "." || name == ".." {
				return nil
			}
			c, err := e.object(key)
			if err == nil {
				walk(c)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	r, err := e.root()
	if err != nil {
		t.Fatal(err)
	}
	walk(r)
	return n
}
