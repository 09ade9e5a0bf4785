package pacman

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/sxb-build/sxb/builtins/tree"
)

// member is one tar entry of a hand-made package.
type member struct {
	name, link, content string
	typ                 byte
	mode                int64
}

// handPkg makes a .pkg.tar.zst of name-1.0-1 with the given payload (and
// an .MTREE when mtree is not empty).
func handPkg(t *testing.T, name, pkginfoName string, mtree string, payload ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	add := func(m member) {
		h := &tar.Header{Name: m.name, Linkname: m.link, Typeflag: m.typ, Mode: m.mode, Size: int64(len(m.content)), ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX}
		if m.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if m.typ == tar.TypeReg {
			tw.Write([]byte(m.content))
		}
	}
	add(member{name: ".PKGINFO", typ: tar.TypeReg, mode: 0o644, content: "pkgname = " + pkginfoName + "\npkgver = 1.0-1\narch = any\n"})
	if mtree != "" {
		var gz bytes.Buffer
		w := gzip.NewWriter(&gz)
		w.Write([]byte("#mtree\n" + mtree))
		w.Close()
		add(member{name: ".MTREE", typ: tar.TypeReg, mode: 0o644, content: gz.String()})
	}
	for _, m := range payload {
		add(m)
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// handRepo writes packages and a core.db (no signatures) into a mirror
// layout and returns the mirror root. filename overrides a package's
// %FILENAME%.
func handRepo(t *testing.T, pkgs map[string][]byte, filename map[string]string) string {
	t.Helper()
	mirror := filepath.Join(t.TempDir(), "mirror")
	dir := filepath.Join(mirror, "core/os/x86_64")
	os.MkdirAll(dir, 0o755)
	var db bytes.Buffer
	gw := gzip.NewWriter(&db)
	tw := tar.NewWriter(gw)
	for name, b := range pkgs {
		file := name + "-1.0-1-any.pkg.tar.zst"
		os.WriteFile(filepath.Join(dir, file), b, 0o644)
		if f, ok := filename[name]; ok {
			file = f
		}
		sum := sha256.Sum256(b)
		desc := fmt.Sprintf("%%FILENAME%%\n%s\n\n%%NAME%%\n%s\n\n%%VERSION%%\n1.0-1\n\n%%CSIZE%%\n%d\n\n%%SHA256SUM%%\n%s\n\n%%ARCH%%\nany\n\n",
			file, name, len(b), hex.EncodeToString(sum[:]))
		tw.WriteHeader(&tar.Header{Name: name + "-1.0-1/", Typeflag: tar.TypeDir, Mode: 0o755})
		tw.WriteHeader(&tar.Header{Name: name + "-1.0-1/desc", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(desc))})
		tw.Write([]byte(desc))
	}
	tw.Close()
	gw.Close()
	os.WriteFile(filepath.Join(dir, "core.db"), db.Bytes(), 0o644)
	// An empty extra repository.
	var empty bytes.Buffer
	gw = gzip.NewWriter(&empty)
	tar.NewWriter(gw).Close()
	gw.Close()
	os.MkdirAll(filepath.Join(mirror, "extra/os/x86_64"), 0o755)
	os.WriteFile(filepath.Join(mirror, "extra/os/x86_64/extra.db"), empty.Bytes(), 0o644)
	return mirror
}

// TestHostilePackages installs packages made to write outside the tree
// (through "..", absolute and relative symlinks, hard links), to lie
// about what they are, and to clash: each is refused or confined, and
// nothing appears outside the tree.
func TestHostilePackages(t *testing.T) {
	outside := t.TempDir()
	reg := func(name string) member { return member{name: name, typ: tar.TypeReg, mode: 0o644, content: "x"} }
	dir := func(name string) member { return member{name: name, typ: tar.TypeDir, mode: 0o755} }
	cases := []struct {
		name    string
		pkgs    map[string][]byte
		files   map[string]string
		targets []string
		want    string // "" when the installation succeeds, confined
		check   func(t *testing.T, root string)
	}{
		{name: "dot-dot", want: "refusing payload entry",
			pkgs: map[string][]byte{"evil": handPkg(t, "evil", "evil", "", reg("../../../"+filepath.Base(outside)+"/pwned"))}},
		{name: "absolute symlink", pkgs: map[string][]byte{"evil": handPkg(t, "evil", "evil", "",
			dir("usr/"), member{name: "usr/evil", typ: tar.TypeSymlink, link: outside, mode: 0o777}, reg("usr/evil/pwned"))},
			check: func(t *testing.T, root string) {
				if _, err := os.Stat(filepath.Join(root, outside, "pwned")); err != nil {
					t.Errorf("the file did not land inside the tree: %v", err)
				}
			}},
		{name: "relative symlink out", pkgs: map[string][]byte{"evil": handPkg(t, "evil", "evil", "",
			dir("usr/"), member{name: "usr/up", typ: tar.TypeSymlink, link: strings.Repeat("../", 20) + strings.TrimPrefix(outside, "/"), mode: 0o777}, reg("usr/up/pwned"))}},
		{name: "hard link out", want: "refusing hard link", pkgs: map[string][]byte{"evil": handPkg(t, "evil", "evil", "",
			dir("usr/"), member{name: "usr/h", typ: tar.TypeLink, link: "../../../etc/passwd"})}},
		{name: "hard link to a host path", want: "did not unpack before", pkgs: map[string][]byte{"evil": handPkg(t, "evil", "evil", "",
			dir("usr/"), member{name: "usr/h", typ: tar.TypeLink, link: "/etc/passwd"})}},
		{name: "not the package the database names", want: "not the package the database names",
			pkgs: map[string][]byte{"evil": handPkg(t, "evil", "glibc", "", reg("usr/x"))}},
		{name: "file name leaving the repository", want: "bad %FILENAME%",
			pkgs:  map[string][]byte{"evil": handPkg(t, "evil", "evil", "", reg("usr/x"))},
			files: map[string]string{"evil": "../../evil-1.0-1-any.pkg.tar.zst"}},
		{name: "payload disagrees with .MTREE", want: "disagrees with the package's .MTREE: mode 4755, .MTREE 755",
			pkgs: map[string][]byte{"evil": handPkg(t, "evil", "evil", "./usr type=dir mode=755\n./usr/x type=file mode=755 size=1\n",
				dir("usr/"), member{name: "usr/x", typ: tar.TypeReg, mode: 0o4755, content: "x"})}},
		{name: "payload not in .MTREE", want: "not in the package's .MTREE",
			pkgs: map[string][]byte{"evil": handPkg(t, "evil", "evil", "./usr type=dir mode=755\n", dir("usr/"), reg("usr/x"))}},
		{name: "file conflict", want: "file conflict: it exists in both a and b", targets: []string{"a", "b"},
			pkgs: map[string][]byte{"a": handPkg(t, "a", "a", "", dir("usr/"), reg("usr/x")), "b": handPkg(t, "b", "b", "", dir("usr/"), reg("usr/x"))}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mirror := handRepo(t, c.pkgs, c.files)
			targets := c.targets
			if targets == nil {
				targets = []string{"evil"}
			}
			req := Request{Mirror: mirror, Insecure: true, CacheDir: filepath.Join(t.TempDir(), "cache"), Packages: targets}
			root := filepath.Join(t.TempDir(), "a", "b", "tree")
			plan, err := Resolve(context.Background(), req)
			if err == nil {
				_, err = Install(context.Background(), plan, root, tree.NewMeta(), InstallOptions{WithDocs: true})
			}
			switch {
			case c.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("error %v, want %q", err, c.want)
			}
			if ents, _ := os.ReadDir(outside); len(ents) > 0 {
				t.Fatalf("%d entries appeared outside the tree", len(ents))
			}
			if ents, _ := os.ReadDir(filepath.Dir(filepath.Dir(root))); len(ents) > 1 {
				t.Errorf("the tree's parents hold %d entries", len(ents))
			}
			if c.check != nil {
				c.check(t, root)
			}
		})
	}
}
