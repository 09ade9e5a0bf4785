package inspect

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/builtins/erofs"
	"github.com/sxb-build/sxb/builtins/squashfs"
	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/testenv"
)

// hostileDir is a tree whose names tests patch into hostile ones: a
// symlink "escape" to dir (outside the tree) beside a directory "escapf"
// holding "pwned"; names to turn into "/", NUL, ".", ".." and "";
// a directory "loop" with a subdirectory "inner".
func hostileDir(t testing.TB, outside string) string {
	dir := t.TempDir()
	for _, p := range []string{"escapf/pwned", "d/aaa", "d/nulXname", "d/zzz", "s/slashXname", "dots/Q", "dots/Qq",
		"empty/aaa", "empty/bbb", "loop/inner/f", "big", "link"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		if p == "link" {
			if err := os.Symlink("big", filepath.Join(dir, p)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(dir, "escape")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// patch replaces the single occurrence of old in img.
func patch(t testing.TB, img []byte, old, new string) []byte {
	t.Helper()
	if n := bytes.Count(img, []byte(old)); n != 1 {
		t.Fatalf("%q occurs %d times in the image", old, n)
	}
	return bytes.Replace(img, []byte(old), []byte(new), 1)
}

// extractHostile extracts img with opts into a fresh dest beside an empty
// directory outside; it checks that nothing appeared outside and, on
// failure, that dest is empty.
func extractHostile(t *testing.T, img []byte, outside string, opts ExtractOptions) error {
	t.Helper()
	base := t.TempDir()
	p := writeFile(t, filepath.Join(base, "img"), img)
	dest := filepath.Join(base, "dest")
	os.Mkdir(dest, 0o755)
	_, err := ExtractWith(context.Background(), p, dest, opts)
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("%d entries appeared outside the tree", len(ents))
	}
	if ents, _ := os.ReadDir(base); len(ents) != 2 {
		t.Errorf("%d entries beside dest", len(ents))
	}
	if ents, _ := os.ReadDir(dest); err != nil && len(ents) != 0 {
		t.Errorf("dest holds %d entries after the failure", len(ents))
	}
	return err
}

func wantError(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want an error with %q", err, want)
	}
}

// TestExtractHostileErofs: names with "/", NUL, ".", "..", empty and
// duplicate names (a directory under the name of a symlink pointing out
// of the tree), a directory loop, and sizes beyond the image are refused,
// and nothing is written outside dest.
func TestExtractHostileErofs(t *testing.T) {
	outside := t.TempDir()
	root, err := tree.Load(hostileDir(t, outside), tree.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var w buf
	if _, err := erofs.Write(&w, root, erofs.Options{}); err != nil {
		t.Fatal(err)
	}
	img := w.b
	if err := extractHostile(t, img, outside, ExtractOptions{}); err != nil {
		t.Fatalf("unpatched image: %v", err)
	}
	le := binary.LittleEndian
	e, err := openErofs(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	inode := func(p string) *erofsInode {
		o, err := fsView{e}.lookup(p)
		if err != nil {
			t.Fatal(err)
		}
		return o.handle.(*erofsInode)
	}
	// Directory data: dirents of 12 bytes, then the names.
	dirents := func(b []byte, names string, n int) int { return bytes.Index(b, []byte(names)) - 12*n }
	cases := map[string]struct {
		mod  func([]byte) []byte
		want string
	}{
		"slash":     {func(b []byte) []byte { return patch(t, b, "slashXname", "slash/name") }, `contains '/' or NUL`},
		"nul":       {func(b []byte) []byte { return patch(t, b, "nulXname", "nul\x00name") }, `contains '/' or NUL`},
		"dot":       {func(b []byte) []byte { return patch(t, b, "...QQq", "....Qq") }, `invalid file name "."`},
		"dotdot":    {func(b []byte) []byte { return patch(t, b, "...QQq", "...Q..") }, `invalid file name ".."`},
		"duplicate": {func(b []byte) []byte { return patch(t, b, "escapeescapf", "escapeescape") }, "/escape: duplicate directory entry"},
		"empty": {func(b []byte) []byte {
			at := dirents(b, "...aaabbb", 4)
			le.PutUint16(b[at+3*12+8:], le.Uint16(b[at+2*12+8:]))
			return b
		}, `invalid file name ""`},
		"loop": {func(b []byte) []byte {
			at := dirents(b, "...inner", 3)
			le.PutUint64(b[at+2*12:], e.rootNid)
			return b
		}, "/loop/inner: directory loop"},
		"file size": {func(b []byte) []byte {
			le.PutUint32(b[inode("big").off+8:], 0xfffffff0)
			return b
		}, "crosses a block boundary"},
		"directory size": {func(b []byte) []byte {
			le.PutUint32(b[inode("d").off+8:], 0x7ffffff0)
			return b
		}, "crosses a block boundary"},
		"flat file size": {func(b []byte) []byte {
			b[inode("big").off] = 0 // flat plain: all data in blocks
			le.PutUint32(b[inode("big").off+8:], 0x7ffffff0)
			return b
		}, "lies outside"},
		"symlink size": {func(b []byte) []byte {
			le.PutUint32(b[inode("link").off+8:], 5000)
			return b
		}, "symlink target of 5000 bytes"},
		"xattr count": {func(b []byte) []byte {
			le.PutUint16(b[inode("big").off+2:], 0xffff)
			return b
		}, "erofs"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			wantError(t, extractHostile(t, c.mod(bytes.Clone(img)), outside, ExtractOptions{}), c.want)
		})
	}
}

// TestExtractHostileSquashfs: the same for squashfs, on an image made by
// mksquashfs with uncompressed metadata so that tests can patch it.
func TestExtractHostileSquashfs(t *testing.T) {
	testenv.NeedTool(t, "mksquashfs")
	outside := t.TempDir()
	imgPath := filepath.Join(t.TempDir(), "h.sqfs")
	run(t, "mksquashfs", hostileDir(t, outside), imgPath, "-noI", "-noD", "-noF", "-noX", "-noappend", "-quiet")
	img, err := os.ReadFile(imgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := extractHostile(t, img, outside, ExtractOptions{}); err != nil {
		t.Fatalf("unpatched image: %v", err)
	}
	le := binary.LittleEndian
	s, err := openSquashfs(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	// With uncompressed metadata an inode reference's offset is its
	// position after the block header at the table's start.
	inodeAt := func(p string) int64 {
		o, err := fsView{s}.lookup(p)
		if err != nil {
			t.Fatal(err)
		}
		if o.key>>16 != 0 {
			t.Fatalf("%s: inode beyond the first metadata block", p)
		}
		return s.inodeTable + 2 + int64(o.key&0xffff)
	}
	cases := map[string]struct {
		mod  func([]byte) []byte
		want string
	}{
		"slash": {func(b []byte) []byte { return patch(t, b, "slashXname", "slash/name") }, `contains '/' or NUL`},
		"nul":   {func(b []byte) []byte { return patch(t, b, "nulXname", "nul\x00name") }, `contains '/' or NUL`},
		// An entry ends with its type, its name's length less one and
		// the name.
		"dot":       {func(b []byte) []byte { return patch(t, b, "\x02\x00\x00\x00Q", "\x02\x00\x00\x00.") }, `invalid file name "."`},
		"dotdot":    {func(b []byte) []byte { return patch(t, b, "\x02\x00\x01\x00Qq", "\x02\x00\x01\x00..") }, `invalid file name ".."`},
		"duplicate": {func(b []byte) []byte { return patch(t, b, "escapf", "escape") }, "/escape: duplicate directory entry"},
		"loop": {func(b []byte) []byte {
			// The entry (offset, inode delta, type, size, name) of
			// "inner" now refers to the root inode.
			at := bytes.Index(b, []byte("inner")) - 8
			le.PutUint16(b[at:], uint16(s.rootRef&0xffff))
			return b
		}, "directory loop"},
		"file size": {func(b []byte) []byte {
			le.PutUint32(b[inodeAt("big")+28:], 0xffffffff)
			le.PutUint32(b[inodeAt("big")+20:], 0xffffffff)
			return b
		}, "block list longer than the image"},
		"symlink size": {func(b []byte) []byte {
			le.PutUint32(b[inodeAt("link")+20:], 5000)
			return b
		}, "symlink target of 5000 bytes"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			wantError(t, extractHostile(t, c.mod(bytes.Clone(img)), outside, ExtractOptions{}), c.want)
		})
	}
}

// TestExtractLimits: an image that expands beyond the content limit (here
// identical files stored once) is refused as a decompression bomb; too
// many entries and too deep nesting are refused; a non-empty dest is
// refused and left alone.
func TestExtractLimits(t *testing.T) {
	outside := t.TempDir()
	dir := t.TempDir()
	for i := 0; i < 32; i++ {
		os.WriteFile(filepath.Join(dir, "copy"+string(rune('a'+i))), bytes.Repeat([]byte("bomb"), 1<<18), 0o644)
	}
	root, err := tree.Load(dir, tree.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var w buf
	if _, err := squashfs.Write(&w, root, squashfs.Options{Compression: "zstd"}); err != nil {
		t.Fatal(err)
	}
	if len(w.b) > 64<<10 {
		t.Fatalf("the image is %d bytes; the writer stored the copies", len(w.b))
	}
	err = extractHostile(t, w.b, outside, ExtractOptions{MaxBytes: 16 << 20})
	if !errors.Is(err, errBomb) {
		t.Errorf("32 MiB from %d bytes under a 16 MiB limit: %v", len(w.b), err)
	}
	if err := extractHostile(t, w.b, outside, ExtractOptions{}); err != nil {
		t.Errorf("the default limit refused 32 MiB: %v", err)
	}
	if err := extractHostile(t, w.b, outside, ExtractOptions{MaxEntries: 10}); !errors.Is(err, errEntries) {
		t.Errorf("32 entries under a limit of 10: %v", err)
	}

	deep := t.TempDir()
	p := deep
	for i := 0; i < maxDepth+10; i++ {
		p = filepath.Join(p, "d")
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if root, err = tree.Load(deep, tree.Options{}); err != nil {
		t.Fatal(err)
	}
	w = buf{}
	if _, err := erofs.Write(&w, root, erofs.Options{}); err != nil {
		t.Fatal(err)
	}
	wantError(t, extractHostile(t, w.b, outside, ExtractOptions{}), "nested deeper than 512 levels")

	dest := t.TempDir()
	os.WriteFile(filepath.Join(dest, "mine"), nil, 0o644)
	_, err = Extract(context.Background(), writeFile(t, filepath.Join(t.TempDir(), "img"), w.b), dest, nil)
	wantError(t, err, "is not empty")
	if _, err := os.Stat(filepath.Join(dest, "mine")); err != nil {
		t.Errorf("dest's own file: %v", err)
	}
}
