package mkosi

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/internal/diag"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/golden")

// TestProjects loads every project under testdata/projects (with a fixed
// host) and compares the summary, the conversion and the warnings with the
// golden files in testdata/golden.
func TestProjects(t *testing.T) {
	ents, err := os.ReadDir("testdata/projects")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		for _, prof := range [][]string{nil, {"devel"}} {
			name := e.Name()
			if prof != nil {
				if name != "bakery" {
					continue
				}
				name += "-devel"
			}
			t.Run(name, func(t *testing.T) {
				dir, _ := filepath.Abs(filepath.Join("testdata/projects", e.Name()))
				var out bytes.Buffer
				o := testOpts(new([]*diag.Diagnostic))
				o.Environment = map[string]string{}
				o.Profiles = prof
				o.Warn = func(d *diag.Diagnostic) { fmt.Fprintf(&out, "warning: %s\n", d.Error()) }
				p, err := Load(dir, o)
				if err != nil {
					t.Fatal(err)
				}
				for _, im := range p.Images {
					if err := im.CheckSupported(); err != nil {
						fmt.Fprintf(&out, "unsupported:\n%v\n", err)
					}
				}
				js, err := p.SummaryJSON()
				if err != nil {
					t.Fatal(err)
				}
				cv, err := Convert(p)
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range cv.Notes {
					fmt.Fprintf(&out, "note: %s\n", n)
				}
				for _, td := range cv.TODO {
					fmt.Fprintf(&out, "todo: %s: %s=%s\n", td.Pos, td.Name, td.Value)
				}
				fix := func(b []byte) []byte { return bytes.ReplaceAll(b, []byte(dir), []byte("$DIR")) }
				golden(t, name+".summary.json", fix(js))
				golden(t, name+".BUILD.star", cv.BuildStar)
				golden(t, name+".log", fix(out.Bytes()))
			})
		}
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata/golden", name)
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden:\n%s", name, diffLines(string(want), string(got)))
	}
}

func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			out = append(out, fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, x, y))
		}
		if len(out) > 10 {
			break
		}
	}
	return strings.Join(out, "\n")
}

// BenchmarkLoad measures loading the multi-image bakery fixture (7 images,
// drop-ins, profiles).
func BenchmarkLoad(b *testing.B) {
	var w []*diag.Diagnostic
	o := testOpts(&w)
	for i := 0; i < b.N; i++ {
		if _, err := Load("testdata/projects/bakery", o); err != nil {
			b.Fatal(err)
		}
	}
}
