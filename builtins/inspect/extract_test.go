package inspect

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/builtins/disk"
	"github.com/sxb-build/sxb/builtins/erofs"
	"github.com/sxb-build/sxb/builtins/repart"
	"github.com/sxb-build/sxb/builtins/squashfs"
	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/arch"
	"github.com/sxb-build/sxb/internal/diag"
)

// fsCase is one way of writing the fixture.
type fsCase struct {
	name string
	e    *erofs.Options
	s    *squashfs.Options
	// clamp, when set, is the SOURCE_DATE_EPOCH the fixture is loaded with.
	clamp *int64
}

var fsCases = []fsCase{
	{name: "erofs", e: &erofs.Options{UUID: [16]byte{1, 2, 3}, VolumeName: "fixture", Epoch: 1700000005}},
	// Times clamped to the build time: compact inodes wherever the owner
	// fits 16 bits.
	{name: "erofs-compact", e: &erofs.Options{Epoch: 1700001000}, clamp: tree.Ptr(int64(1700001000))},
	{name: "erofs-epoch0", e: &erofs.Options{}, clamp: tree.Ptr(int64(0))},
	{name: "squashfs-gzip", s: &squashfs.Options{Epoch: 1700000009}},
	{name: "squashfs-gzip6-4k-nofrag", s: &squashfs.Options{Level: 6, BlockSize: 4096, NoFragments: true}},
	{name: "squashfs-xz", s: &squashfs.Options{Compression: "xz", BlockSize: 65536}},
	{name: "squashfs-zstd", s: &squashfs.Options{Compression: "zstd"}},
	{name: "squashfs-zstd3", s: &squashfs.Options{Compression: "zstd", Level: 3, BlockSize: 1 << 20}},
	{name: "squashfs-lz4", s: &squashfs.Options{Compression: "lz4"}},
}

// write writes root as the case says and returns the image bytes.
func (c fsCase) write(t testing.TB, root *tree.Node) []byte {
	t.Helper()
	var w buf
	var err error
	if c.e != nil {
		_, err = erofs.Write(&w, root, *c.e)
	} else {
		_, err = squashfs.Write(&w, root, *c.s)
	}
	if err != nil {
		t.Fatal(err)
	}
	return w.b
}

// rewrite writes the extracted tree with the options Extract recovered.
func rewrite(t testing.TB, x *Extracted, root *tree.Node) []byte {
	t.Helper()
	c := fsCase{e: x.Erofs, s: x.Squashfs}
	if (c.e == nil) == (c.s == nil) {
		t.Fatalf("extracted %s: options %+v %+v", x.FS, c.e, c.s)
	}
	return c.write(t, root)
}

func writeFile(t testing.TB, p string, b []byte) string {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestExtractRoundTrip: extracting an image sxb wrote, loading the
// directory with the metadata Extract returned and writing it again with
// the options Extract recovered gives the same bytes — for erofs and for
// squashfs with every compression, block sizes and without fragments, and
// a fixture holding every kind of object (see fixture).
func TestExtractRoundTrip(t *testing.T) {
	src, meta := fixture(t)
	for _, c := range fsCases {
		t.Run(c.name, func(t *testing.T) {
			root := loadTree(t, src, meta)
			if c.clamp != nil {
				var err error
				if root, err = tree.Load(src, tree.Options{Meta: meta, Epoch: *c.clamp}); err != nil {
					t.Fatal(err)
				}
			}
			dir := t.TempDir()
			orig := c.write(t, root)
			img := writeFile(t, filepath.Join(dir, "fs.img"), orig)
			dest := filepath.Join(dir, "out")
			x, err := Extract(context.Background(), img, dest, nil)
			if err != nil {
				t.Fatal(err)
			}
			if x.Partition != nil || x.Dir != dest || x.Files != 412 || x.Dirs != 14 || x.Symlinks != 3 || x.Special != 5 || x.HardLinks != 1 {
				t.Errorf("extracted %+v", x)
			}
			if c.e != nil && *x.Erofs != *c.e {
				t.Errorf("erofs options %+v, want %+v", *x.Erofs, *c.e)
			}
			extracted := loadTree(t, dest, x.Meta)
			if d := diffDescriptions(describe(t, root, allAspects), describe(t, extracted, allAspects)); d != "" {
				t.Errorf("extracted tree differs from the source:\n%s", d)
			}
			if got := rewrite(t, x, extracted); !bytes.Equal(got, orig) {
				t.Fatalf("re-written image differs from the original (%d and %d bytes)", len(got), len(orig))
			}
		})
	}
}

// TestExtractDiskImage: from a GPT image (the sysext layout with verity)
// Extract picks the root partition; re-writing the extracted tree gives
// the partition's file system.
func TestExtractDiskImage(t *testing.T) {
	src, meta := fixture(t)
	root := loadTree(t, src, meta)
	for _, format := range []string{"erofs", "squashfs"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, "ext.raw")
			parts, err := disk.DefaultLayout("sysext", format, "hash")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := disk.Build(context.Background(), img, root, parts, disk.Options{Seed: repart.ID128{5}, Epoch: 1700000001, FSWriters: fsWriters()}); err != nil {
				t.Fatal(err)
			}
			dest := filepath.Join(dir, "out")
			x, err := Extract(context.Background(), img, dest, nil)
			if err != nil {
				t.Fatal(err)
			}
			if x.Partition == nil || x.Partition.Number != 1 || x.FS != format {
				t.Fatalf("extracted %+v", x)
			}
			got := rewrite(t, x, loadTree(t, dest, x.Meta))
			raw, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			part := raw[x.Partition.Offset : x.Partition.Offset+x.Partition.Size]
			if len(got) > len(part) || !bytes.Equal(got, part[:len(got)]) {
				t.Fatalf("re-written file system differs from partition %d", x.Partition.Number)
			}
		})
	}
}

// fsWriters are sxb's file-system writers as builtins/image hands them to
// the disk assembler (image imports inspect: its tests cannot import it).
func fsWriters() map[string]disk.FSWriter {
	return map[string]disk.FSWriter{
		"erofs": func(w io.WriterAt, root *tree.Node, p disk.FSParams) (int64, error) {
			return erofs.Write(w, root, erofs.Options{UUID: p.UUID, Epoch: p.Epoch})
		},
		"squashfs": func(w io.WriterAt, root *tree.Node, p disk.FSParams) (int64, error) {
			return squashfs.Write(w, root, squashfs.Options{Epoch: p.Epoch})
		},
	}
}

// diskWith builds a GPT image of root with the given partitions, each a
// list of repart.d keys.
func diskWith(t *testing.T, root *tree.Node, defs ...[]repart.KV) string {
	t.Helper()
	var parts []*repart.Partition
	for i, kv := range defs {
		p, err := repart.FromKeys(diag.Pos{File: "test"}, fmt.Sprintf("%d.conf", i), kv)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, p)
	}
	img := filepath.Join(t.TempDir(), "disk.raw")
	if _, err := disk.Build(context.Background(), img, root, parts, disk.Options{Seed: repart.ID128{7}, FSWriters: fsWriters()}); err != nil {
		t.Fatal(err)
	}
	return img
}

// TestExtractPartitionChoice: a usr partition is extracted below usr/ (it
// is mounted on /usr) and re-writes to the same file system; images with
// both root and usr partitions, with root partitions only for several
// foreign architectures, or without a file system are refused.
func TestExtractPartitionChoice(t *testing.T) {
	src, meta := fixture(t)
	root := loadTree(t, src, meta)
	usr := []repart.KV{{Key: "Type", Value: "usr"}, {Key: "Format", Value: "erofs"}, {Key: "CopyFiles", Value: "/usr/:/"}}
	img := diskWith(t, root, usr)
	dest := filepath.Join(t.TempDir(), "out")
	x, err := Extract(context.Background(), img, dest, nil)
	if err != nil {
		t.Fatal(err)
	}
	if x.Dir != filepath.Join(dest, "usr") || x.Partition == nil || !strings.HasPrefix(x.Partition.Type, "usr-") {
		t.Fatalf("extracted %+v", x)
	}
	extracted := loadTree(t, dest, x.Meta)
	if d := diffDescriptions(describe(t, root.Lookup("usr"), allAspects), describe(t, extracted.Lookup("usr"), allAspects)); d != "" {
		t.Errorf("extracted /usr differs from the source:\n%s", d)
	}
	raw, _ := os.ReadFile(img)
	got := rewrite(t, x, extracted.Lookup("usr"))
	if !bytes.Equal(got, raw[x.Partition.Offset:x.Partition.Offset+int64(len(got))]) {
		t.Error("re-written usr file system differs from the partition")
	}

	rootPart := []repart.KV{{Key: "Type", Value: "root"}, {Key: "Format", Value: "squashfs"}, {Key: "CopyFiles", Value: "/opt/:/opt"}}
	for name, c := range map[string]struct {
		defs [][]repart.KV
		want string
	}{
		"root and usr": {[][]repart.KV{rootPart, usr}, "both root and usr partitions"},
		"foreign roots": {[][]repart.KV{
			{{Key: "Type", Value: "root-" + foreign(0)}, {Key: "Format", Value: "erofs"}, {Key: "CopyFiles", Value: "/opt/:/opt"}},
			{{Key: "Type", Value: "root-" + foreign(1)}, {Key: "Format", Value: "erofs"}, {Key: "CopyFiles", Value: "/opt/:/opt"}},
		}, "is ambiguous"},
		"no file system": {[][]repart.KV{{{Key: "Type", Value: "linux-generic"}, {Key: "SizeMinBytes", Value: "1M"}}}, "no root or usr partition"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Extract(context.Background(), diskWith(t, root, c.defs...), filepath.Join(t.TempDir(), "out"), nil)
			wantError(t, err, c.want)
		})
	}
}

// foreign returns the i-th architecture that is not the machine's.
func foreign(i int) string {
	for _, a := range []string{"arm64", "riscv64", "x86-64"} {
		if a != arch.Native().Systemd() {
			if i == 0 {
				return a
			}
			i--
		}
	}
	return ""
}
