package tree

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sxb-build/sxb/internal/testenv"
)

// TestExtractTarCompressed extracts archives GNU tar wrote, compressed by
// zstd, xz, gzip or not at all, and finds the tree it was given, hard
// links and symlinks included.
func TestExtractTarCompressed(t *testing.T) {
	testenv.NeedTool(t, "tar", "zstd", "xz", "gzip")
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "usr/bin"), 0o755)
	os.MkdirAll(filepath.Join(src, "etc/ro"), 0o755)
	os.WriteFile(filepath.Join(src, "usr/bin/tool"), []byte("#!/bin/sh\n"), 0o755)
	os.Link(filepath.Join(src, "usr/bin/tool"), filepath.Join(src, "usr/bin/tool2"))
	os.Symlink("usr/bin", filepath.Join(src, "bin"))
	os.WriteFile(filepath.Join(src, "etc/ro/conf"), []byte("x=1\n"), 0o640)
	os.Chmod(filepath.Join(src, "etc/ro"), 0o555)
	defer os.Chmod(filepath.Join(src, "etc/ro"), 0o755)
	for _, c := range []struct{ name, flag string }{{"plain.tar", ""}, {"t.tar.zst", "--zstd"}, {"t.tar.xz", "--xz"}, {"t.tar.gz", "--gzip"}} {
		t.Run(c.name, func(t *testing.T) {
			archive := filepath.Join(t.TempDir(), c.name)
			args := []string{"-C", src, "--owner=0", "--group=0", "--numeric-owner", "--mtime=@100", "-cf", archive}
			if c.flag != "" {
				args = append(args, c.flag)
			}
			if out, err := exec.Command("tar", append(args, ".")...).CombinedOutput(); err != nil {
				t.Fatalf("tar: %v\n%s", err, out)
			}
			f, err := os.Open(archive)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			r, done, err := Decompress(f)
			if err != nil {
				t.Fatal(err)
			}
			defer done()
			dst := t.TempDir()
			meta := NewMeta()
			if err := ExtractTar(r, dst, meta, -1); err != nil {
				t.Fatal(err)
			}
			n, err := Load(dst, Options{Meta: meta, Epoch: -1})
			if err != nil {
				t.Fatal(err)
			}
			tool, tool2 := n.Lookup("usr/bin/tool"), n.Lookup("usr/bin/tool2")
			if tool == nil || tool2 == nil || tool.Mode != 0o755 || tool.Mtime != 100 || (tool2.Link != tool && tool.Link != tool2) {
				t.Errorf("tool %+v, tool2 %+v", tool, tool2)
			}
			if b, _ := os.ReadFile(filepath.Join(dst, "usr/bin/tool")); string(b) != "#!/bin/sh\n" {
				t.Errorf("tool holds %q", b)
			}
			if l := n.Lookup("bin"); l == nil || l.Kind != Symlink || l.Target != "usr/bin" {
				t.Errorf("bin: %+v", l)
			}
			if d := n.Lookup("etc/ro"); d == nil || d.Kind != Dir || d.Mode != 0o555 {
				t.Errorf("etc/ro: %+v", d)
			}
			if c := n.Lookup("etc/ro/conf"); c == nil || c.Mode != 0o640 {
				t.Errorf("etc/ro/conf: %+v", c)
			}
		})
	}
}

// TestExtractTarSpecial checks what a rootless extraction cannot put on
// disk: owners, setuid bits, device nodes and xattrs end up in the
// metadata and so in the loaded tree.
func TestExtractTarSpecial(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(5, 0)
	for _, h := range []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime},
		{Name: "./usr/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime},
		{Name: "./usr/su", Typeflag: tar.TypeReg, Mode: 0o4755, Uid: 0, Gid: 0, ModTime: mtime, Format: tar.FormatPAX,
			PAXRecords: map[string]string{"SCHILY.xattr.security.capability": "\x01\x00\x00\x02"}},
		{Name: "./usr/owned", Typeflag: tar.TypeReg, Mode: 0o600, Uid: 1000, Gid: 100, ModTime: mtime},
		{Name: "./dev/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime},
		{Name: "./dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: mtime},
		{Name: "./dev/fifo", Typeflag: tar.TypeFifo, Mode: 0o600, ModTime: mtime},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	dst := t.TempDir()
	meta := NewMeta()
	if err := ExtractTar(&buf, dst, meta, -1); err != nil {
		t.Fatal(err)
	}
	n, err := Load(dst, Options{Meta: meta, Epoch: -1})
	if err != nil {
		t.Fatal(err)
	}
	if su := n.Lookup("usr/su"); su == nil || su.Mode != 0o4755 || string(su.Xattrs["security.capability"]) != "\x01\x00\x00\x02" {
		t.Errorf("usr/su: %+v", su)
	}
	if o := n.Lookup("usr/owned"); o == nil || o.UID != 1000 || o.GID != 100 {
		t.Errorf("usr/owned: %+v", o)
	}
	if d := n.Lookup("dev/null"); d == nil || d.Kind != CharDev || d.Rdev != Mkdev(1, 3) || d.Mode != 0o666 {
		t.Errorf("dev/null: %+v", d)
	}
	if d := n.Lookup("dev/fifo"); d == nil || d.Kind != FIFO {
		t.Errorf("dev/fifo: %+v", d)
	}
}

// TestExtractTarHostile feeds archives that try to write outside the
// directory: through "..", through a symlink they ship and through a hard
// link to a host file. Nothing outside changes.
func TestExtractTarHostile(t *testing.T) {
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	os.MkdirAll(outside, 0o755)
	os.WriteFile(filepath.Join(outside, "victim"), []byte("keep"), 0o644)
	for _, c := range []struct {
		name    string
		headers []*tar.Header
		wantErr bool
	}{
		{"dotdot", []*tar.Header{{Name: "../outside/victim", Typeflag: tar.TypeReg, Size: 4}}, true},
		{"symlink", []*tar.Header{
			{Name: "evil", Typeflag: tar.TypeSymlink, Linkname: outside},
			{Name: "evil/victim", Typeflag: tar.TypeReg, Size: 4},
		}, true}, // evil leads to <dst>/<outside>, which does not exist
		{"climb", []*tar.Header{
			{Name: "up", Typeflag: tar.TypeSymlink, Linkname: "../../../../../../../../" + outside},
			{Name: "up/victim", Typeflag: tar.TypeReg, Size: 4},
		}, true},
		{"hardlink", []*tar.Header{{Name: "x", Typeflag: tar.TypeLink, Linkname: "../outside/victim"}}, true},
		{"hardlink-abs", []*tar.Header{{Name: "x", Typeflag: tar.TypeLink, Linkname: filepath.Join(outside, "victim")}}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			for _, h := range c.headers {
				h.Mode = 0o644
				tw.WriteHeader(h)
				if h.Size > 0 {
					tw.Write([]byte("evil"))
				}
			}
			tw.Close()
			dst := filepath.Join(base, c.name)
			os.MkdirAll(dst, 0o755)
			err := ExtractTar(&buf, dst, NewMeta(), -1)
			if (err != nil) != c.wantErr {
				t.Errorf("err = %v, want error %v", err, c.wantErr)
			}
			if c.wantErr && err != nil && c.name == "dotdot" && !errors.Is(err, ErrUnsafePath) {
				t.Errorf("err = %v, want ErrUnsafePath", err)
			}
			if b, _ := os.ReadFile(filepath.Join(outside, "victim")); string(b) != "keep" {
				t.Fatalf("the host file was changed: %q", b)
			}
			if ents, _ := os.ReadDir(outside); len(ents) != 1 {
				t.Fatalf("files appeared outside: %v", ents)
			}
		})
	}
}

// TestExtractTarLimit refuses an archive whose files add up to more than
// the limit, before writing what goes beyond it.
func TestExtractTarLimit(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range []string{"a", "b"} {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: 600})
		tw.Write(make([]byte, 600))
	}
	tw.Close()
	dst := t.TempDir()
	err := ExtractTar(bytes.NewReader(buf.Bytes()), dst, NewMeta(), 1000)
	if err == nil || !strings.Contains(err.Error(), `tar entry "b": the archive expands beyond 1000 bytes`) {
		t.Errorf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dst, "b")); err == nil {
		t.Error("b was written")
	}
	if err := ExtractTar(bytes.NewReader(buf.Bytes()), t.TempDir(), NewMeta(), 1200); err != nil {
		t.Errorf("at the limit: %v", err)
	}
}
