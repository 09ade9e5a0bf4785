package disk

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/builtins/erofs"
	"github.com/sxb-build/sxb/builtins/repart"
	"github.com/sxb-build/sxb/builtins/squashfs"
	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/builtins/verity"
	"github.com/sxb-build/sxb/internal/arch"
	"github.com/sxb-build/sxb/internal/diag"
	"github.com/sxb-build/sxb/internal/testenv"
)

func erofsWriter(w io.WriterAt, root *tree.Node, p FSParams) (int64, error) {
	return erofs.Write(w, root, erofs.Options{UUID: p.UUID, Epoch: p.Epoch})
}

func squashfsWriter(w io.WriterAt, root *tree.Node, p FSParams) (int64, error) {
	return squashfs.Write(w, root, squashfs.Options{Compression: "zstd", Epoch: p.Epoch})
}

func sampleTree(t *testing.T) *tree.Node {
	t.Helper()
	dir := t.TempDir()
	for p, c := range map[string]string{
		"usr/lib/extension-release.d/extension-release.sample": "ID=_any\n",
		"usr/bin/hello":     "#!/bin/sh\necho hello\n",
		"usr/share/big.txt": strings.Repeat("some text for a few blocks of data\n", 40000),
		"opt/vendor/tool":   "tool\n",
		"etc/ignored":       "not in a sysext\n",
	} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Link(filepath.Join(dir, "usr/bin/hello"), filepath.Join(dir, "usr/bin/hello2"))
	os.Symlink("hello", filepath.Join(dir, "usr/bin/hi"))
	root, err := tree.Load(dir, tree.Options{Epoch: 1700000000})
	if err != nil {
		t.Fatal(err)
	}
	return root
}

type sfdiskTable struct {
	PartitionTable struct {
		ID         string `json:"id"`
		FirstLBA   int64  `json:"firstlba"`
		Partitions []struct {
			Start int64  `json:"start"`
			Size  int64  `json:"size"`
			Type  string `json:"type"`
			UUID  string `json:"uuid"`
			Name  string `json:"name"`
			Attrs string `json:"attrs"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

// TestImagesValidate builds sysext images in every verity mode with the
// erofs writer, twice, and checks them with sfdisk, veritysetup, openssl,
// fsck.erofs and systemd-dissect.
func TestImagesValidate(t *testing.T) {
	testenv.NeedTool(t, "sfdisk", "veritysetup", "openssl", "fsck.erofs", "unsquashfs", "systemd-dissect")
	root := sampleTree(t)
	key, cert, err := verity.LoadKeyPair("testdata/repart257/key.pem", "testdata/repart257/cert.pem")
	if err != nil {
		t.Fatal(err)
	}
	seed := repart.ID128{1, 2, 3, 4}
	for _, run := range []string{"erofs/off", "erofs/hash", "erofs/signed", "squashfs/off", "squashfs/hash", "squashfs/signed"} {
		format, mode, _ := strings.Cut(run, "/")
		t.Run(run, func(t *testing.T) {
			dir := t.TempDir()
			var imgs [2][]byte
			var res *Result
			for i := range imgs {
				parts, err := DefaultLayout("sysext", format, mode)
				if err != nil {
					t.Fatal(err)
				}
				out := filepath.Join(dir, "sample.raw")
				res, err = Build(context.Background(), out, root, parts, Options{Seed: seed, Arch: arch.Native(), Epoch: 1700000000,
					Key: key, Cert: cert, FSWriters: map[string]FSWriter{"erofs": erofsWriter, "squashfs": squashfsWriter}})
				if err != nil {
					t.Fatal(err)
				}
				imgs[i], _ = os.ReadFile(out)
			}
			if !bytes.Equal(imgs[0], imgs[1]) {
				t.Fatal("two builds differ")
			}
			img := imgs[0]
			out := filepath.Join(dir, "sample.raw")
			js, err := exec.Command("sfdisk", "-J", out).Output()
			if err != nil {
				t.Fatalf("sfdisk: %v", err)
			}
			var st sfdiskTable
			if err := json.Unmarshal(js, &st); err != nil {
				t.Fatal(err)
			}
			pt := st.PartitionTable
			if !strings.EqualFold(pt.ID, DeriveUUID(seed, "disk-uuid").String()) {
				t.Errorf("disk id %s", pt.ID)
			}
			wantN := map[string]int{"off": 1, "hash": 2, "signed": 3}[mode]
			if len(pt.Partitions) != wantN || len(res.Partitions) != wantN {
				t.Fatalf("%d partitions, want %d", len(pt.Partitions), wantN)
			}
			var names, types []string
			for _, n := range []string{"root", "root-verity", "root-verity-sig"} {
				ty, _ := repart.ParseType(n)
				names, types = append(names, ty.Name), append(types, strings.ToUpper(ty.UUID.String()))
			}
			for i, p := range pt.Partitions {
				if p.Name != names[i] || p.Type != types[i] {
					t.Errorf("partition %d: %s %s", i+1, p.Name, p.Type)
				}
				if p.Start%8 != 0 || p.Size%8 != 0 {
					t.Errorf("partition %d not 4 KiB aligned: start %d size %d", i+1, p.Start, p.Size)
				}
				if !strings.EqualFold(p.UUID, res.Partitions[i].UUID.String()) {
					t.Errorf("partition %d uuid %s, result %s", i+1, p.UUID, res.Partitions[i].UUID)
				}
				wantAttrs := "GUID:60" // read-only: verity data and hash
				switch {
				case i == 2:
					wantAttrs = "" // the signature partition
				case mode == "off":
					wantAttrs = "GUID:59" // grow-fs, as repart gives mkosi's unsigned layout
				}
				if p.Attrs != wantAttrs {
					t.Errorf("partition %d attrs %q, want %q", i+1, p.Attrs, wantAttrs)
				}
			}
			data := res.Partitions[0]
			fsImg := filepath.Join(dir, "fs."+format)
			os.WriteFile(fsImg, img[data.Offset:data.Offset+data.FSSize], 0o644)
			check := exec.Command("fsck.erofs", fsImg)
			if format == "squashfs" {
				check = exec.Command("unsquashfs", "-l", fsImg)
			}
			if out, err := check.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", check, err, out)
			} else if format == "squashfs" && !strings.Contains(string(out), "usr/lib/extension-release.d/extension-release.sample") {
				t.Errorf("unsquashfs -l lacks the release file:\n%s", out)
			}
			dissect := []string{out}
			if mode != "off" {
				rh := hex.EncodeToString(res.RootHash)
				if !strings.EqualFold(pt.Partitions[0].UUID, (rh[0:8] + "-" + rh[8:12] + "-" + rh[12:16] + "-" + rh[16:20] + "-" + rh[20:32])) {
					t.Errorf("data UUID %s is not the first half of root hash %s", pt.Partitions[0].UUID, rh)
				}
				if !strings.EqualFold(strings.ReplaceAll(pt.Partitions[1].UUID, "-", ""), rh[32:]) {
					t.Errorf("hash UUID %s is not the second half of root hash %s", pt.Partitions[1].UUID, rh)
				}
				h := res.Partitions[1]
				hashFile := filepath.Join(dir, "hash")
				os.WriteFile(hashFile, img[h.Offset:h.Offset+h.Size], 0o644)
				if out, err := exec.Command("veritysetup", "verify", fsImg, hashFile, rh).CombinedOutput(); err != nil {
					t.Fatalf("veritysetup verify: %v\n%s", err, out)
				}
				dissect = []string{"--root-hash=" + rh, out}
			}
			if mode == "signed" {
				s := res.Partitions[2]
				doc, der, err := verity.ParseSignature(img[s.Offset : s.Offset+s.Size])
				if err != nil {
					t.Fatal(err)
				}
				if doc.RootHash != hex.EncodeToString(res.RootHash) {
					t.Errorf("signature names %s", doc.RootHash)
				}
				os.WriteFile(filepath.Join(dir, "sig"), der, 0o644)
				os.WriteFile(filepath.Join(dir, "roothash"), []byte(doc.RootHash), 0o644)
				cmd := exec.Command("openssl", "smime", "-verify", "-binary", "-inform", "DER", "-content", "roothash", "-in", "sig",
					"-CAfile", filepath.Join(mustAbs(t, "testdata/repart257/cert.pem")), "-out", os.DevNull)
				cmd.Dir = dir
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("openssl smime -verify: %v\n%s", err, out)
				}
			}
			dout, err := exec.Command("systemd-dissect", dissect...).CombinedOutput()
			if err != nil {
				t.Fatalf("systemd-dissect: %v\n%s", err, dout)
			}
			wants := []string{"Ext. Rel.: ID=_any", "✓ extension for system", names[0]}
			if mode == "signed" {
				// Without the certificate in the kernel keyring dissect cannot
				// open the signed image, but it must recognize the signature.
				wants = []string{names[2], "verity_hash_signature", " signed "}
			}
			for _, want := range wants {
				if !strings.Contains(string(dout), want) {
					t.Errorf("systemd-dissect output lacks %q:\n%s", want, dout)
				}
			}
		})
	}
}

func mustAbs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestPartitionTree(t *testing.T) {
	root := sampleTree(t)
	p, err := repart.FromKeys(diagPos, "t", []repart.KV{{Key: "Type", Value: "root"}, {Key: "Format", Value: "erofs"},
		{Key: "CopyFiles", Value: "/usr/"}, {Key: "CopyFiles", Value: "/opt/vendor:/srv/v"}, {Key: "CopyFiles", Value: "/usr/bin/hello:/hello"},
		{Key: "CopyFiles", Value: "/missing"}, {Key: "ExcludeFiles", Value: "/usr/share/ /usr/bin/hi"},
		{Key: "MakeDirectories", Value: "/var/lib/x"}})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := PartitionTree(root, p, 42)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	sub.Walk(func(n *tree.Node) error {
		paths = append(paths, n.Path)
		if n.Parent != nil && n.Parent.Lookup(n.Name) != n {
			t.Errorf("%s: parent link broken", n.Path)
		}
		return nil
	})
	got := strings.Join(paths, " ")
	want := " hello srv srv/v srv/v/tool usr usr/bin usr/bin/hello usr/bin/hello2 usr/lib usr/lib/extension-release.d usr/lib/extension-release.d/extension-release.sample usr/share var var/lib var/lib/x"
	if got != want {
		t.Fatalf("paths\n got %s\nwant %s", got, want)
	}
	h1, h2 := sub.Lookup("usr/bin/hello"), sub.Lookup("usr/bin/hello2")
	if h1.Link != nil || h2.Link != h1 || h1.Nlink != 2 || h2.LinkCount() != 2 {
		t.Errorf("hard link group: %v %v %d", h1.Link, h2.Link, h1.Nlink)
	}
	if c := sub.Lookup("hello"); c.Link != nil || c.HostPath == "" || c.Nlink != 1 {
		t.Errorf("copied single file: %+v", c)
	}
	if v := sub.Lookup("var"); v.Mode != 0o755 || v.Mtime != 42 || v.UID != 0 {
		t.Errorf("made directory: %+v", v)
	}
	if sub.Lookup("srv/v").Mtime != 1700000000 {
		t.Error("copied directory lost its mtime")
	}
	if sub.Nlink != 2+3 {
		t.Errorf("root nlink %d", sub.Nlink)
	}
}

// TestBuildErrors checks refusals that happen at build time.
func TestBuildErrors(t *testing.T) {
	root := sampleTree(t)
	parts, _ := DefaultLayout("sysext", "erofs", "signed")
	_, err := Build(context.Background(), filepath.Join(t.TempDir(), "x.raw"), root, parts, Options{FSWriters: map[string]FSWriter{"erofs": erofsWriter}})
	if err == nil || !strings.Contains(err.Error(), "no private key") {
		t.Errorf("signed without key: %v", err)
	}
	parts, _ = DefaultLayout("confext", "squashfs", "off")
	_, err = Build(context.Background(), filepath.Join(t.TempDir(), "x.raw"), root, parts, Options{FSWriters: map[string]FSWriter{"erofs": erofsWriter}})
	if err == nil || !strings.Contains(err.Error(), "no writer for Format=squashfs") {
		t.Errorf("missing writer: %v", err)
	}
	if _, err := DefaultLayout("portable", "erofs", "off"); err == nil {
		t.Error("unknown kind accepted")
	}
	p, _ := repart.FromKeys(diagPos, "big", []repart.KV{{Key: "Type", Value: "usr"}, {Key: "Format", Value: "erofs"},
		{Key: "CopyFiles", Value: "/usr"}, {Key: "SizeMaxBytes", Value: "64K"}})
	_, err = Build(context.Background(), filepath.Join(t.TempDir(), "x.raw"), root, []*repart.Partition{p}, Options{FSWriters: map[string]FSWriter{"erofs": erofsWriter}})
	if err == nil || !strings.Contains(err.Error(), "more than SizeMaxBytes") {
		t.Errorf("oversized file system: %v", err)
	}
}

var diagPos = diag.Pos{File: "test"}
