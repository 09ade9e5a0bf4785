package inspect

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/sxb-build/sxb/builtins/disk"
	"github.com/sxb-build/sxb/builtins/erofs"
	"github.com/sxb-build/sxb/builtins/repart"
	"github.com/sxb-build/sxb/builtins/squashfs"
	"github.com/sxb-build/sxb/builtins/tree"
)

// fuzzTree is a small tree for seed images: a release file, a file with
// full blocks and a tail, a symlink and a directory of several entries.
func fuzzTree(t testing.TB) *tree.Node {
	dir := t.TempDir()
	files := map[string]string{
		"usr/lib/extension-release.d/extension-release.x": "ID=debian\nSYSEXT_LEVEL=1.0\n",
		"usr/bin/a":  "a",
		"usr/bin/bb": string(bytes.Repeat([]byte("0123456789abcdef"), 600)),
		"etc/extension-release.d/extension-release.x": "ID=_any\n",
	}
	for p, c := range files {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("a", filepath.Join(dir, "usr/bin/c"))
	root, err := tree.Load(dir, tree.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return root
}

type buf struct{ b []byte }

func (w *buf) WriteAt(p []byte, off int64) (int, error) {
	if n := int(off) + len(p); n > len(w.b) {
		w.b = append(w.b, make([]byte, n-len(w.b))...)
	}
	return copy(w.b[off:], p), nil
}

// watchdog fails loudly, with every goroutine's stack, when one input
// takes longer than a few seconds: the fuzzer has no timeout of its own.
func watchdog() func() bool {
	return time.AfterFunc(10*time.Second, func() {
		buf := make([]byte, 1<<20)
		os.Stderr.Write(buf[:runtime.Stack(buf, true)])
		panic("input took more than 10s")
	}).Stop
}

// exercise reads what Inspect reads, and a little more, from a file system.
func exercise(fsys FS) {
	for _, d := range []string{"", "usr", "usr/bin", "usr/lib/extension-release.d", "etc/extension-release.d"} {
		names, _ := fsys.ReadDir(d)
		for _, n := range names[:min(len(names), 16)] {
			fsys.ReadFile(d + "/" + n)
		}
	}
}

func FuzzInspectErofs(f *testing.F) {
	root := fuzzTree(f)
	for _, c := range []string{"", "lz4", "lzma", "deflate", "zstd"} {
		var w buf
		if _, err := erofs.Write(&w, root, erofs.Options{Compression: c}); err != nil {
			f.Fatal(err)
		}
		f.Add(w.b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		defer watchdog()()
		r := bytes.NewReader(data)
		DetectFS(r)
		fsys, err := OpenErofs(r)
		if err != nil {
			return
		}
		exercise(fsys)
		findRelease(r, "erofs")
	})
}

func FuzzInspectSquashfs(f *testing.F) {
	root := fuzzTree(f)
	for _, c := range []string{"gzip", "xz", "zstd", "lz4"} {
		var w buf
		if _, err := squashfs.Write(&w, root, squashfs.Options{Compression: c}); err != nil {
			f.Fatal(err)
		}
		f.Add(w.b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		defer watchdog()()
		r := bytes.NewReader(data)
		DetectFS(r)
		fsys, err := OpenSquashfs(r)
		if err != nil {
			return
		}
		exercise(fsys)
		findRelease(r, "squashfs")
	})
}

func FuzzGPT(f *testing.F) {
	root := fuzzTree(f)
	parts, err := disk.DefaultLayout("sysext", "erofs", "hash")
	if err != nil {
		f.Fatal(err)
	}
	out := filepath.Join(f.TempDir(), "x.raw")
	writers := map[string]disk.FSWriter{"erofs": func(w io.WriterAt, r *tree.Node, p disk.FSParams) (int64, error) {
		return erofs.Write(w, r, erofs.Options{UUID: p.UUID})
	}}
	if _, err := disk.Build(context.Background(), out, root, parts, disk.Options{Seed: repart.ID128{9}, FSWriters: writers}); err != nil {
		f.Fatal(err)
	}
	img, err := os.ReadFile(out)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(img[:34*512]) // the primary header and entries alone
	f.Add(img)
	f.Fuzz(func(t *testing.T, data []byte) {
		defer watchdog()()
		inspectReader(bytes.NewReader(data), int64(len(data)), "fuzz.raw", Options{})
	})
}

// FuzzExtract extracts arbitrary images (seeded with erofs and squashfs
// images, bare and in a GPT) under small limits: it must not panic, must leave dest
// empty when it fails and must write nothing beside dest.
func FuzzExtract(f *testing.F) {
	root, err := tree.Load(hostileDir(f, "/tmp/outside"), tree.Options{})
	if err != nil {
		f.Fatal(err)
	}
	var w buf
	if _, err := erofs.Write(&w, root, erofs.Options{}); err != nil {
		f.Fatal(err)
	}
	f.Add(w.b)
	for _, c := range []string{"gzip", "zstd"} {
		w = buf{}
		if _, err := squashfs.Write(&w, root, squashfs.Options{Compression: c, BlockSize: 4096}); err != nil {
			f.Fatal(err)
		}
		f.Add(w.b)
	}
	// A small GPT around the squashfs image, in one generic partition.
	sectors := uint32(len(w.b)+511) / 512
	img := gptImage(34+sectors+1, 128, 128, 34, uint64(34+sectors-1))
	copy(img[34*512:], w.b)
	f.Add(img)
	f.Fuzz(func(t *testing.T, data []byte) {
		defer watchdog()()
		base := t.TempDir()
		dest := filepath.Join(base, "dest")
		_, err := extractReader(context.Background(), bytes.NewReader(data), int64(len(data)), dest,
			ExtractOptions{MaxBytes: 4 << 20, MaxEntries: 4096})
		if ents, _ := os.ReadDir(base); len(ents) > 1 || len(ents) == 1 && ents[0].Name() != "dest" {
			t.Fatalf("extraction wrote beside dest: %v", ents)
		}
		if ents, _ := os.ReadDir(dest); err != nil && len(ents) > 0 {
			t.Fatalf("failed extraction (%v) left %d entries", err, len(ents))
		}
	})
}
