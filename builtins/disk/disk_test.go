package disk

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/diskfs/go-diskfs/partition/gpt"

	"github.com/sxb-build/sxb/builtins/repart"
	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/builtins/verity"
	"github.com/sxb-build/sxb/internal/arch"
)

var refSeed = repart.ID128{0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78, 0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0}

func TestDerivations(t *testing.T) {
	// Values systemd-repart 257 wrote into testdata/repart257/sysext.raw.
	if got := DeriveUUID(refSeed, "disk-uuid").String(); got != "3f200c87-6598-4b5b-8d76-e3fdee615e0b" {
		t.Errorf("disk UUID %s", got)
	}
	sig, _ := repart.ParseType("root-x86-64-verity-sig")
	if got := PartitionUUID(refSeed, sig.UUID, 0).String(); got != "77997113-c325-4a69-a9c8-b933b070b21c" {
		t.Errorf("partition UUID %s", got)
	}
	if got := DeriveUUID(refSeed, "verity-uuid").String(); got != "8a37ba8f-73e9-42c7-a49b-55aa6202758d" {
		t.Errorf("verity UUID %s", got)
	}
}

// refImage unpacks a reference image and returns its bytes, its table and
// the erofs images inside, by partition label.
func refImage(t *testing.T, name string) ([]byte, *gpt.Table, map[string][]byte) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata/repart257", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	img, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "ref.raw")
	os.WriteFile(p, img, 0o644)
	rf, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	table, err := gpt.Read(rf, 512, 512)
	if err != nil {
		t.Fatal(err)
	}
	fss := map[string][]byte{}
	for _, pt := range table.Partitions {
		b := img[pt.Start*512 : (pt.End+1)*512]
		if binary.LittleEndian.Uint32(b[1024:]) == 0xE0F5E1E2 {
			blocks := binary.LittleEndian.Uint32(b[1060:])
			fss[pt.Name] = b[:blocks*4096]
		}
	}
	return img, table, fss
}

// fakeWriters returns the reference file systems instead of writing new
// ones, checking that Build asks for the file-system UUID repart used.
func fakeWriters(t *testing.T, fss map[string][]byte) map[string]FSWriter {
	return map[string]FSWriter{"erofs": func(w io.WriterAt, root *tree.Node, p FSParams) (int64, error) {
		b, ok := fss[p.Label]
		if !ok {
			return 0, fmt.Errorf("no reference file system for %q", p.Label)
		}
		if !bytes.Equal(b[1072:1088], p.UUID[:]) {
			t.Errorf("%s: file-system UUID %x, repart used %x", p.Label, p.UUID, b[1072:1088])
		}
		_, err := w.WriteAt(b, 0)
		return int64(len(b)), err
	}}
}

func firstDiff(a, b []byte) string {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return fmt.Sprintf("first difference at byte %d (0x%x): %02x vs %02x; sizes %d vs %d", i, i, a[i], b[i], len(a), len(b))
		}
	}
	return fmt.Sprintf("sizes %d vs %d", len(a), len(b))
}

// TestMatchesRepartMakeDDI builds the --make-ddi=sysext layout with a
// signature and compares every byte with systemd-repart 257's image.
func TestMatchesRepartMakeDDI(t *testing.T) {
	want, _, fss := refImage(t, "sysext.raw.gz")
	key, cert, err := verity.LoadKeyPair("testdata/repart257/key.pem", "testdata/repart257/cert.pem")
	if err != nil {
		t.Fatal(err)
	}
	parts, err := DefaultLayout("sysext", "erofs", "signed")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "sysext.raw")
	root := &tree.Node{Kind: tree.Dir, Mode: 0o755}
	res, err := Build(context.Background(), out, root, parts, Options{Seed: refSeed, Arch: arch.X86_64, Key: key, Cert: cert, FSWriters: fakeWriters(t, fss)})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	if !bytes.Equal(got, want) {
		t.Fatalf("image differs from systemd-repart's: %s", firstDiff(got, want))
	}
	if hex.EncodeToString(res.RootHash) != "830984f26cc6e39f0d5b232aa56b02b5319ac4fef5c3d5727037ecdccc6274b5" {
		t.Errorf("root hash %x", res.RootHash)
	}
}

// TestMatchesRepartDefinitions builds a custom repart.d layout (usr with a
// two-level verity tree, explicit labels, padding, minimum sizes, no-auto,
// two partitions of one type) and compares with systemd-repart 257.
func TestMatchesRepartDefinitions(t *testing.T) {
	want, _, fss := refImage(t, "custom.raw.gz")
	parts, err := repart.ReadDir("testdata/repart257/custom.repart.d")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "custom.raw")
	root := &tree.Node{Kind: tree.Dir, Mode: 0o755}
	if _, err := Build(context.Background(), out, root, parts, Options{Seed: refSeed, Arch: arch.X86_64, FSWriters: fakeWriters(t, fss)}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	if !bytes.Equal(got, want) {
		t.Fatalf("image differs from systemd-repart's: %s", firstDiff(got, want))
	}
}

// TestMatchesRepartLargeDisk checks a disk over 4 MiB, where libfdisk
// starts the usable area at 1 MiB, against systemd-repart 257.
func TestMatchesRepartLargeDisk(t *testing.T) {
	want, table, fss := refImage(t, "big.raw.gz")
	if table.Partitions[0].Start != 2048 {
		t.Fatalf("reference starts at LBA %d", table.Partitions[0].Start)
	}
	parts, err := repart.ReadDir("testdata/repart257/big.repart.d")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "big.raw")
	root := &tree.Node{Kind: tree.Dir, Mode: 0o755}
	if _, err := Build(context.Background(), out, root, parts, Options{Seed: refSeed, Arch: arch.X86_64, FSWriters: fakeWriters(t, fss)}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	if !bytes.Equal(got, want) {
		t.Fatalf("image differs from systemd-repart's: %s", firstDiff(got, want))
	}
}
