package inspect

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/sxb-build/sxb/builtins/disk"
	"github.com/sxb-build/sxb/builtins/erofs"
	"github.com/sxb-build/sxb/builtins/repart"
	"github.com/sxb-build/sxb/builtins/squashfs"
	"github.com/sxb-build/sxb/builtins/tree"
)

// gptImage returns an image of sectors 512-byte sectors with a primary GPT
// whose header announces count entries of esize bytes at LBA 2, and whose
// first entry spans LBA start to end.
func gptImage(sectors, count, esize uint32, start, end uint64) []byte {
	img := make([]byte, int(sectors)*512)
	le := binary.LittleEndian
	n := min(int(count)*int(esize), len(img)-1024)
	arr := img[1024 : 1024+n]
	if n >= 128 {
		copy(arr, []byte{0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4}) // linux generic
		arr[16] = 1
		le.PutUint64(arr[32:], start)
		le.PutUint64(arr[40:], end)
	}
	h := img[512:]
	copy(h, "EFI PART")
	le.PutUint32(h[8:], 0x00010000)
	le.PutUint32(h[12:], 92)
	le.PutUint64(h[24:], 1)
	le.PutUint64(h[32:], uint64(sectors-1))
	le.PutUint64(h[72:], 2)
	le.PutUint32(h[80:], count)
	le.PutUint32(h[84:], esize)
	le.PutUint32(h[88:], crc32.ChecksumIEEE(arr))
	le.PutUint32(h[16:], crc32.ChecksumIEEE(h[:92]))
	return img
}

// TestHostileGPT: header fields that size allocations or point outside the
// image are refused with an error instead of a multi-gigabyte allocation
// (go-diskfs allocated count*size bytes) or a read past the end.
func TestHostileGPT(t *testing.T) {
	for name, img := range map[string][]byte{
		"huge entry array":          gptImage(64, 0xffffffff, 4096, 34, 40),
		"entry size zero":           gptImage(64, 128, 0, 34, 40),
		"entries past the end":      gptImage(40, 128, 128, 34, 39)[:20*512],
		"partition past the end":    gptImage(64, 128, 128, 34, 1<<40),
		"partition ends before":     gptImage(64, 128, 128, 40, 34),
		"partition end overflowing": gptImage(64, 128, 128, 34, 1<<63),
	} {
		_, err := inspectReader(bytes.NewReader(img), int64(len(img)), name, Options{})
		if err == nil || !strings.Contains(err.Error(), "GPT") {
			t.Errorf("%s: got %v, want a GPT error", name, err)
		}
	}
	img := gptImage(64, 128, 128, 34, 40)
	rep, err := inspectReader(bytes.NewReader(img), int64(len(img)), "ok", Options{})
	if err != nil || len(rep.Partitions) != 1 || rep.Partitions[0].Offset != 34*512 || rep.Partitions[0].Size != 7*512 {
		t.Fatalf("valid table: %+v %v", rep, err)
	}
}

func squashImage(t *testing.T, comp string) []byte {
	var w buf
	if _, err := squashfs.Write(&w, fuzzTree(t), squashfs.Options{Compression: comp}); err != nil {
		t.Fatal(err)
	}
	return w.b
}

// TestHostileSquashfs: a zero block size used to divide by zero, a huge
// one to allocate it per block, and a zstd metadata block inflating to
// 64 MiB was decoded whole.
func TestHostileSquashfs(t *testing.T) {
	for _, bs := range []uint32{0, 1, 3 << 20, 0xffffffff} {
		img := squashImage(t, "gzip")
		binary.LittleEndian.PutUint32(img[12:], bs)
		if fsys, err := OpenSquashfs(bytes.NewReader(img)); err == nil {
			_, err = fsys.ReadFile("usr/bin/bb")
			t.Errorf("block size %d accepted (read: %v)", bs, err)
		}
	}

	img := squashImage(t, "zstd")
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	bomb := enc.EncodeAll(make([]byte, 64<<20), nil)
	if len(bomb) > 8192 {
		t.Fatalf("bomb of %d bytes does not fit a metadata block", len(bomb))
	}
	// The inode table now starts with the bomb, appended to the image.
	binary.LittleEndian.PutUint64(img[64:], uint64(len(img)))
	img = binary.LittleEndian.AppendUint16(img, uint16(len(bomb)))
	img = append(img, bomb...)
	fsys, err := OpenSquashfs(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.ReadDir("usr"); err == nil || !strings.Contains(err.Error(), "zstd") {
		t.Errorf("decompression bomb: %v", err)
	}
}

// TestHostileVeritySuperblock: the hash partition's superblock sizes the
// hash tree rebuilt in memory; a data block count far beyond the data
// partition made Inspect allocate terabytes.
func TestHostileVeritySuperblock(t *testing.T) {
	parts, err := disk.DefaultLayout("sysext", "erofs", "hash")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "x.raw")
	writers := map[string]disk.FSWriter{"erofs": func(w io.WriterAt, r *tree.Node, p disk.FSParams) (int64, error) {
		return erofs.Write(w, r, erofs.Options{UUID: p.UUID})
	}}
	if _, err := disk.Build(context.Background(), out, fuzzTree(t), parts, disk.Options{Seed: repart.ID128{9}, FSWriters: writers}); err != nil {
		t.Fatal(err)
	}
	rep, err := Inspect(out, Options{})
	if err != nil || len(rep.Verity) != 1 || !rep.Verity[0].Verified {
		t.Fatalf("untampered: %+v %v", rep, err)
	}
	img, _ := os.ReadFile(out)
	binary.LittleEndian.PutUint64(img[rep.Partitions[1].Offset+72:], 1<<50)
	os.WriteFile(out, img, 0o644)
	rep, err = Inspect(out, Options{})
	if err != nil || len(rep.Verity) != 1 || rep.Verity[0].Verified || !strings.Contains(rep.Verity[0].Error, "superblock") {
		t.Fatalf("tampered superblock: %+v %v", rep.Verity, err)
	}
}
