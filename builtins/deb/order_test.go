package deb

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"path/filepath"
	"testing"

	"github.com/sxb-build/sxb/builtins/tree"
)

// namedDeb builds a .deb of package name whose data.tar holds entries.
func namedDeb(t *testing.T, name, fields string, entries []*tar.Header, bodies map[string]string) string {
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
		map[string]string{"./control": "Package: " + name + "\nVersion: 1\nArchitecture: amd64\n" + fields})
	return arDeb(t, control, "data.tar.gz", tgz(entries, bodies))
}

// TestUnpackOrderIndependent unpacks the same packages in every order (as
// parallel unpacking may) and wants the same tree. A hard link to a file
// another package takes over linked to whichever copy was there at the
// time, or failed ("did not unpack before") when the other package had
// come first.
func TestUnpackOrderIndependent(t *testing.T) {
	dir := func(n string) *tar.Header { return &tar.Header{Name: n, Typeflag: tar.TypeDir, Mode: 0o755} }
	reg := func(n string, mode int64) *tar.Header { return &tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: mode} }
	debs := []string{
		namedDeb(t, "a", "", []*tar.Header{dir("./usr/"), dir("./usr/bin/"),
			reg("./usr/bin/f", 0o755),
			{Name: "./usr/bin/g", Typeflag: tar.TypeLink, Linkname: "./usr/bin/f"},
		}, map[string]string{"./usr/bin/f": "from a"}),
		namedDeb(t, "b", "Replaces: a\n", []*tar.Header{dir("./usr/"), dir("./usr/bin/"),
			reg("./usr/bin/f", 0o4755),
		}, map[string]string{"./usr/bin/f": "from b"}),
		namedDeb(t, "c", "", []*tar.Header{dir("./usr/"), dir("./usr/bin/"),
			reg("./usr/bin/h", 0o644),
			{Name: "./usr/bin/i", Typeflag: tar.TypeLink, Linkname: "./usr/bin/h"},
		}, map[string]string{"./usr/bin/h": "from c"}),
	}
	var want string
	for _, order := range [][]int{{0, 1, 2}, {1, 0, 2}, {2, 1, 0}, {1, 2, 0}} {
		d := filepath.Join(t.TempDir(), "root")
		meta := tree.NewMeta()
		r, err := openRoot(d, meta, "amd64")
		if err != nil {
			t.Fatal(err)
		}
		r.names = []string{"a", "b", "c"}
		r.replaces = make([]map[string]bool, 3)
		for _, i := range order {
			if _, err := r.unpack(debs[i], i, true, ""); err != nil {
				t.Fatalf("order %v: unpacking %s: %v", order, r.names[i], err)
			}
		}
		if err := r.finishDirs(0); err != nil {
			t.Fatal(err)
		}
		r.close()
		got := treeDigest(t, d, meta)
		n, err := tree.Load(d, tree.Options{Meta: meta, Epoch: -1})
		if err != nil {
			t.Fatal(err)
		}
		if g := n.Lookup("usr/bin/g"); g == nil || g.Link == nil || g.Link.Path != "usr/bin/f" {
			t.Errorf("order %v: usr/bin/g is not a hard link of usr/bin/f: %+v", order, g)
		}
		if want == "" {
			want = got
			continue
		}
		if got != want {
			t.Errorf("order %v gives another tree:\n%s\nwant:\n%s", order, got, want)
		}
	}
}
