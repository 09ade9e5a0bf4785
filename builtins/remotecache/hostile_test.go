package remotecache

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type entry struct {
	name, link string
	typ        byte
	body       string
}

func archive(t *testing.T, es ...entry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	return b.Bytes()
}

// TestReadTreeConfinesHostileArchives: whatever a tampered archive says,
// nothing is written outside the target directory.
func TestReadTreeConfinesHostileArchives(t *testing.T) {
	root := entry{name: "./", typ: tar.TypeDir}
	cases := map[string][]entry{
		"dot-dot":               {root, {name: "../escaped", typ: tar.TypeReg, body: "x"}},
		"absolute":              {root, {name: "/escaped", typ: tar.TypeReg, body: "x"}},
		"inner dot-dot":         {root, {name: "a/", typ: tar.TypeDir}, {name: "a/../../escaped", typ: tar.TypeReg, body: "x"}},
		"through symlink":       {root, {name: "l", typ: tar.TypeSymlink, link: ".."}, {name: "l/escaped", typ: tar.TypeReg, body: "x"}},
		"symlink as parent dir": {root, {name: "d", typ: tar.TypeSymlink, link: "/tmp"}, {name: "d/", typ: tar.TypeDir}},
		"hard link outside":     {root, {name: "h", typ: tar.TypeLink, link: "../outside"}},
		"hard link to symlink":  {root, {name: "s", typ: tar.TypeSymlink, link: "/etc/passwd"}, {name: "h", typ: tar.TypeLink, link: "s"}},
		"twice":                 {root, {name: "f", typ: tar.TypeReg, body: "a"}, {name: "f", typ: tar.TypeReg, body: "b"}},
		"no root":               {{name: "f", typ: tar.TypeReg, body: "a"}},
		"orphan":                {root, {name: "a/b", typ: tar.TypeReg, body: "a"}},
		"device":                {root, {name: "dev", typ: tar.TypeChar}},
	}
	for name, es := range cases {
		t.Run(name, func(t *testing.T) {
			base := t.TempDir()
			outside := filepath.Join(base, "outside")
			os.WriteFile(outside, []byte("keep"), 0o644)
			dst := filepath.Join(base, "a", "b")
			os.MkdirAll(filepath.Dir(dst), 0o755)
			err := ReadTree(bytes.NewReader(archive(t, es...)), dst)
			if err == nil {
				t.Fatalf("hostile archive accepted")
			}
			for _, p := range []string{filepath.Join(base, "escaped"), filepath.Join(base, "a", "escaped"), "/escaped", "/tmp/escaped"} {
				if _, err := os.Lstat(p); err == nil {
					t.Fatalf("%s was written", p)
				}
			}
			if b, _ := os.ReadFile(outside); string(b) != "keep" {
				t.Fatalf("outside file changed")
			}
		})
	}
}

func TestWriteTreeIsDeterministic(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "t")
	makeTree(t, dir, 1000)
	var a, b bytes.Buffer
	if err := WriteTree(&a, dir); err != nil {
		t.Fatal(err)
	}
	if err := WriteTree(&b, dir); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two archives of one tree differ")
	}
	// Round trip through a second copy gives the same archive again.
	cp := filepath.Join(t.TempDir(), "copy")
	if err := ReadTree(bytes.NewReader(a.Bytes()), cp); err != nil {
		t.Fatal(err)
	}
	var c bytes.Buffer
	if err := WriteTree(&c, cp); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), c.Bytes()) {
		t.Fatal("archive of the extracted copy differs")
	}
	os.MkdirAll(filepath.Join(dir, "sock"), 0o755)
	if err := WriteTree(&c, t.TempDir()+"/missing"); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("archiving a missing directory: %v", err)
	}
}
