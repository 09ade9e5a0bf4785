package deb

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/testenv"
)

// hostileDeb builds a .deb by hand whose data.tar holds the given entries.
func hostileDeb(t *testing.T, entries []*tar.Header, bodies map[string]string) string {
	t.Helper()
	tgz := func(hs []*tar.Header, bodies map[string]string) []byte {
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		tw := tar.NewWriter(gz)
		for _, h := range hs {
			b := bodies[h.Name]
			h.Size = int64(len(b))
			if h.Typeflag != tar.TypeReg {
				h.Size = 0
			}
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			tw.Write([]byte(b))
		}
		tw.Close()
		gz.Close()
		return buf.Bytes()
	}
	control := tgz([]*tar.Header{{Name: "./control", Typeflag: tar.TypeReg, Mode: 0o644}},
		map[string]string{"./control": "Package: evil\nVersion: 1\nArchitecture: amd64\n"})
	return arDeb(t, control, "data.tar.gz", tgz(entries, bodies))
}

// arDeb assembles a .deb from a control.tar.gz and a data member.
func arDeb(t *testing.T, control []byte, dataName string, data []byte) string {
	var ar bytes.Buffer
	ar.WriteString("!<arch>\n")
	member := func(name string, b []byte) {
		fmt.Fprintf(&ar, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", name, 0, 0, 0, "100644", len(b))
		ar.Write(b)
		if len(b)%2 == 1 {
			ar.WriteByte('\n')
		}
	}
	member("debian-binary", []byte("2.0\n"))
	member("control.tar.gz", control)
	member(dataName, data)
	p := filepath.Join(t.TempDir(), "evil.deb")
	os.WriteFile(p, ar.Bytes(), 0o644)
	return p
}

func TestHostilePayloads(t *testing.T) {
	outside := t.TempDir()
	reg := func(name string) *tar.Header { return &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644} }
	for _, tc := range []struct {
		name    string
		entries []*tar.Header
		refuse  string
	}{
		{"dotdot", []*tar.Header{reg("./../escape")}, "escapes the tree"},
		{"dotdot-deep", []*tar.Header{reg("./usr/../../escape")}, "escapes the tree"},
		{"hardlink-out", []*tar.Header{{Name: "./x", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"}}, "escapes the tree"},
		{"hardlink-foreign", []*tar.Header{{Name: "./x", Typeflag: tar.TypeLink, Linkname: "etc/passwd"}}, "did not unpack"},
		// An absolute symlink, then a file written through it: the write
		// stays inside the root.
		{"symlink-abs", []*tar.Header{
			{Name: "./evil", Typeflag: tar.TypeSymlink, Linkname: outside},
			reg("./evil/file"),
		}, ""},
		{"symlink-rel", []*tar.Header{
			{Name: "./usr/", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "./usr/up", Typeflag: tar.TypeSymlink, Linkname: "../../../../../../../../" + outside},
			{Name: "./usr/up/dir/", Typeflag: tar.TypeDir, Mode: 0o755},
			reg("./usr/up/dir/file"),
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			deb := hostileDeb(t, tc.entries, map[string]string{"./evil/file": "pwned", "./usr/up/dir/file": "pwned"})
			dir := filepath.Join(t.TempDir(), "root")
			r, err := openRoot(dir, tree.NewMeta(), "amd64")
			if err != nil {
				t.Fatal(err)
			}
			defer r.close()
			_, err = r.unpack(deb, 0, true, "")
			if tc.refuse != "" {
				if err == nil || !strings.Contains(err.Error(), tc.refuse) {
					t.Fatalf("err = %v, want %q", err, tc.refuse)
				}
			} else if err != nil {
				t.Fatalf("unpack: %v", err)
			}
			ents, _ := os.ReadDir(outside)
			if len(ents) != 0 {
				t.Fatalf("wrote outside the root: %v", ents)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escape")); err == nil {
				t.Fatal("wrote beside the root")
			}
			if tc.refuse == "" {
				// The file landed inside, where the confined symlink points.
				found := false
				filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
					if err == nil && fi.Mode().IsRegular() && fi.Name() == "file" {
						found = strings.HasPrefix(p, dir+"/")
					}
					return nil
				})
				if !found {
					t.Fatal("file not placed inside the root")
				}
			}
		})
	}
}

func TestDevicesAndModes(t *testing.T) {
	deb := hostileDeb(t, []*tar.Header{
		{Name: "./dev/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
		{Name: "./usr/bin/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./usr/bin/su", Typeflag: tar.TypeReg, Mode: 0o4755},
		{Name: "./usr/bin/wall", Typeflag: tar.TypeReg, Mode: 0o2755, Gid: 5},
		{Name: "./usr/bin/su2", Typeflag: tar.TypeLink, Linkname: "./usr/bin/su"},
		{Name: "./var/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./var/tmp/", Typeflag: tar.TypeDir, Mode: 0o1777},
	}, map[string]string{"./usr/bin/su": "su"})
	dir := filepath.Join(t.TempDir(), "root")
	meta := tree.NewMeta()
	r, err := openRoot(dir, meta, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.unpack(deb, 0, true, ""); err != nil {
		t.Fatal(err)
	}
	if err := r.finishDirs(0); err != nil {
		t.Fatal(err)
	}
	r.close()
	n, err := tree.Load(dir, tree.Options{Meta: meta, Epoch: -1})
	if err != nil {
		t.Fatal(err)
	}
	if d := n.Lookup("dev/null"); d == nil || d.Kind != tree.CharDev || d.Rdev != tree.Mkdev(1, 3) || d.Mode != 0o666 {
		t.Errorf("dev/null = %+v", d)
	}
	if s := n.Lookup("usr/bin/su"); s == nil || s.Mode != 0o4755 || s.Nlink != 2 {
		t.Errorf("su = %+v", s)
	}
	if s := n.Lookup("usr/bin/su2"); s == nil || s.Link == nil || s.Mode != 0o4755 {
		t.Errorf("su2 = %+v", s)
	}
	if w := n.Lookup("usr/bin/wall"); w == nil || w.Mode != 0o2755 || w.GID != 5 {
		t.Errorf("wall = %+v", w)
	}
	if v := n.Lookup("var/tmp"); v == nil || v.Mode != 0o1777 {
		t.Errorf("var/tmp = %+v", v)
	}
}

func TestParseAlternatives(t *testing.T) {
	script := `#!/bin/sh
if [ "$1" = "configure" ]; then
        update-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5 \
            --slave /usr/share/man/man1/awk.1.gz awk.1.gz /usr/share/man/man1/mawk.1.gz \
            --slave /usr/bin/nawk nawk /usr/bin/mawk
        update-alternatives --install "$LINK" x /usr/bin/x 1
        update-alternatives --quiet --install /usr/bin/pager pager /bin/more 50 || true
fi
`
	got := parseAlternatives([]byte(script))
	if len(got) != 2 {
		t.Fatalf("got %d alternatives: %+v", len(got), got)
	}
	a := got[0]
	if a.link != "/usr/bin/awk" || a.name != "awk" || a.path != "/usr/bin/mawk" || a.priority != 5 || len(a.slaves) != 2 || a.slaves[1] != [3]string{"/usr/bin/nawk", "nawk", "/usr/bin/mawk"} {
		t.Errorf("awk = %+v", a)
	}
	if got[1].name != "pager" || got[1].priority != 50 {
		t.Errorf("pager = %+v", got[1])
	}
}

func TestHostileSymlinkNotCopied(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	os.WriteFile(secret, []byte("host secret"), 0o600)
	deb := hostileDeb(t, []*tar.Header{
		{Name: "./usr/share/base-files/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./usr/share/base-files/motd", Typeflag: tar.TypeSymlink, Linkname: secret},
		{Name: "./usr/share/base-passwd/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./usr/share/base-passwd/passwd.master", Typeflag: tar.TypeSymlink, Linkname: secret},
		{Name: "./usr/share/base-passwd/group.master", Typeflag: tar.TypeSymlink, Linkname: "../../../../../../../../../../" + secret},
	}, nil)
	dir := filepath.Join(t.TempDir(), "root")
	r, err := openRoot(dir, tree.NewMeta(), "amd64")
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	if _, err := r.unpack(deb, 0, true, ""); err != nil {
		t.Fatal(err)
	}
	if err := r.writeUsers(); err != nil {
		t.Fatal(err)
	}
	if err := r.baseFiles(0); err != nil {
		t.Fatal(err)
	}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			if b, _ := os.ReadFile(p); strings.Contains(string(b), "host secret") {
				t.Errorf("host file copied into the tree at %s", p)
			}
		}
		return nil
	})
}

func TestPayloadCodecs(t *testing.T) {
	testenv.NeedTool(t, "xz", "zstd", "bzip2", "gzip")
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "./usr/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "./usr/payload", Typeflag: tar.TypeReg, Mode: 0o644, Size: 5})
	tw.Write([]byte("hello"))
	tw.Close()
	var cb bytes.Buffer
	gz := gzip.NewWriter(&cb)
	ctw := tar.NewWriter(gz)
	ctl := []byte("Package: p\nVersion: 1\nArchitecture: all\n")
	ctw.WriteHeader(&tar.Header{Name: "./control", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(ctl))})
	ctw.Write(ctl)
	ctw.Close()
	gz.Close()
	for _, tc := range []struct {
		ext  string
		args []string
	}{
		{".xz", []string{"xz", "-c"}}, {".zst", []string{"zstd", "-c", "-q"}}, {".gz", []string{"gzip", "-c"}},
		{".bz2", []string{"bzip2", "-c"}}, {".lzma", []string{"xz", "--format=lzma", "-c"}}, {"", nil},
	} {
		data := tb.Bytes()
		if tc.args != nil {
			cmd := exec.Command(tc.args[0], tc.args[1:]...)
			cmd.Stdin = bytes.NewReader(tb.Bytes())
			out, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			data = out
		}
		for _, pure := range []string{"", "1"} {
			t.Setenv("SXB_DEB_PURE_GO", pure)
			deb := arDeb(t, cb.Bytes(), "data.tar"+tc.ext, data)
			dir := filepath.Join(t.TempDir(), "root")
			r, err := openRoot(dir, tree.NewMeta(), "amd64")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.unpack(deb, 0, true, ""); err != nil {
				t.Fatalf("data.tar%s (pure Go %q): %v", tc.ext, pure, err)
			}
			r.close()
			if b, _ := os.ReadFile(filepath.Join(dir, "usr/payload")); string(b) != "hello" {
				t.Errorf("data.tar%s (pure Go %q): payload %q", tc.ext, pure, b)
			}
		}
	}
}
