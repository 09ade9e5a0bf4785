package image

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/builtins/disk"
	"github.com/sxb-build/sxb/builtins/tree"
)

func TestFormats(t *testing.T) {
	if got := strings.Join(Formats(), " "); got != "erofs squashfs" {
		t.Errorf("Formats() = %s", got)
	}
}

// CheckCompression agrees with what the writers do: it accepts what they
// write and refuses, with the reason, what they would refuse.
func TestCheckCompression(t *testing.T) {
	for _, c := range []struct{ format, compression, level, err string }{
		{"erofs", "", "", ""},
		{"erofs", "none", "", ""},
		{"erofs", "lz4", "", ""},
		{"erofs", "zstd", "19", ""},
		{"erofs", "zstd,19", "", ""},
		{"erofs", "lzma", "0", ""},
		{"erofs", "lz4", "3", "lz4 takes no level"},
		{"erofs", "zstd", "23", "zstd level 23 out of range 1..22"},
		{"erofs", "lzo", "", `"lzo" is not a erofs compression (want one of "none", "lz4", "lz4hc", "lzma", "deflate", "libdeflate", "zstd")`},
		{"squashfs", "zstd,19", "", ""},
		{"squashfs", "", "", ""},
		{"squashfs", "xz", "", ""},
		{"squashfs", "zstd", "19", ""},
		{"squashfs", "lzo", "", `"lzo" is not a squashfs compression (want one of "gzip", "xz", "zstd", "lz4")`},
		{"squashfs", "gzip", "10", "gzip level 10 out of range 1..9"},
		{"squashfs", "xz", "3", "xz takes no level"},
		{"squashfs", "zstd", "high", "CompressionLevel=high: not a number"},
		{"ext4", "gzip", "", `"gzip" is not a ext4 compression`},
	} {
		err := CheckCompression(c.format, c.compression, c.level)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s %s %s: %v", c.format, c.compression, c.level, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s %s %s: %v, want %s", c.format, c.compression, c.level, err, c.err)
		}
	}
}

type memWriter struct{ b []byte }

func (m *memWriter) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(m.b) {
		m.b = append(m.b, make([]byte, end-len(m.b))...)
	}
	return copy(m.b[off:], p), nil
}

// TestFSWritersCompression checks that a partition's Compression= and
// CompressionLevel= (or the extension's "alg,level") reach the erofs and
// squashfs writers, and that bad values fail.
func TestFSWritersCompression(t *testing.T) {
	dir := t.TempDir()
	text := make([]byte, 0, 64<<10)
	for len(text) < cap(text) {
		text = append(text, "an extension image holds compressible text\n"...)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), text, 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := tree.Load(dir, tree.Options{Epoch: 0})
	if err != nil {
		t.Fatal(err)
	}
	erofsAlgs := func(def string, p disk.FSParams) (uint32, uint16) {
		t.Helper()
		var w memWriter
		if _, err := FSWriters(def)["erofs"](&w, root, p); err != nil {
			t.Fatal(err)
		}
		sb := w.b[1024:]
		return binary.LittleEndian.Uint32(sb[80:]), binary.LittleEndian.Uint16(sb[84:])
	}
	if incompat, algs := erofsAlgs("", disk.FSParams{Compression: "zstd", CompressionLevel: "9"}); incompat&2 == 0 || algs != 1<<3 {
		t.Errorf("zstd partition: incompat %#x, algorithms %#x", incompat, algs)
	}
	if incompat, algs := erofsAlgs("deflate,4", disk.FSParams{}); incompat&2 == 0 || algs != 1<<2 {
		t.Errorf("deflate,4 default: incompat %#x, algorithms %#x", incompat, algs)
	}
	if incompat, _ := erofsAlgs("", disk.FSParams{}); incompat != 0 {
		t.Errorf("uncompressed image has incompat features %#x", incompat)
	}
	for _, p := range []disk.FSParams{{Compression: "zstd", CompressionLevel: "99"}, {Compression: "lzo"}, {Compression: "lz4", CompressionLevel: "x"}} {
		var w memWriter
		if _, err := FSWriters("")["erofs"](&w, root, p); err == nil {
			t.Errorf("erofs %+v accepted", p)
		}
	}
	var w memWriter
	if _, err := FSWriters("zstd,19")["squashfs"](&w, root, disk.FSParams{}); err != nil {
		t.Errorf("squashfs zstd,19: %v", err)
	}
	if _, err := FSWriters("zstd,23")["squashfs"](&w, root, disk.FSParams{}); err == nil {
		t.Errorf("squashfs zstd,23 accepted")
	}
}
