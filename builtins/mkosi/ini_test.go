package mkosi

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/internal/diag"
)

func entryTuples(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Section+"|"+e.Key+"|"+e.Value)
	}
	return out
}

func TestParseINI(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"basic", `
		[MySection]
		Value=abc
		Other=def
		ALLCAPS=txt

		# Comment
		[EmptySection]
		[AnotherSection]
		EmptyValue=
		Multiline=abc
		            def
		            qed
		            ord
		`, []string{"MySection|Value|abc", "MySection|Other|def", "MySection|ALLCAPS|txt", "MySection||",
			"EmptySection||", "AnotherSection|EmptyValue|", "AnotherSection|Multiline|abc\ndef\nqed\nord", "AnotherSection||"}},
		{"comment anywhere", "[A]\nKey=value # trailing\n#Key=commented\n  # indented comment\nOther=x#y\n",
			[]string{"A|Key|value", "A|Other|x", "A||"}},
		{"continuation after empty value", "[Content]\nPackages=\n  a\n  b,c\n", []string{"Content|Packages|\na\nb,c", "Content||"}},
		{"spaces around", "[ S ]\n  K  =  v  \n", []string{"S|K|v", "S||"}},
		{"value with equals", "[Build]\nEnvironment=A=B C=D\n", []string{"Build|Environment|A=B C=D", "Build||"}},
		{"crlf", "[A]\r\nK=v\r\n", []string{"A|K|v", "A||"}},
		{"key is case sensitive", "[A]\npackages=x\n", []string{"A|packages|x", "A||"}},
		{"empty file", "", nil},
		{"only comments", "# a\n# b\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es, err := ParseINI("f.conf", []byte(tc.in), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := entryTuples(es); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestParseINIErrors(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		line     int
	}{
		{"Key=v\n", "outside of a section", 1},
		{"[A]\nK=v\n[B\n", "is not a valid section", 3},
		{"[A]\n\n\nNoEquals\n", "must be followed by '='", 4},
		{"[A]\n=v\n", "missing setting name", 2},
		{"[ ]\n", "cannot be empty", 1},
	} {
		_, err := ParseINI("dir/mkosi.conf", []byte(tc.in), nil)
		d, ok := diag.As(err)
		if !ok {
			t.Errorf("%q: want a diagnostic, got %v", tc.in, err)
			continue
		}
		if d.Pos.File != "dir/mkosi.conf" || d.Pos.Line != tc.line || !strings.Contains(d.Msg, tc.want) {
			t.Errorf("%q: got %v, want line %d %q", tc.in, err, tc.line, tc.want)
		}
	}
}

func TestParseINISkippedSections(t *testing.T) {
	// Lines of sections that are not read are not checked at all.
	es, err := ParseINI("f", []byte("[Unknown]\nno equals here\n[Content]\nPackages=a\n"), func(s string) bool { return s == "Content" })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Unknown||", "Content|Packages|a", "Content||"}
	if got := entryTuples(es); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q want %q", got, want)
	}
}

func TestParseINIComments(t *testing.T) {
	es, err := ParseINI("f", []byte("[Content]\n# the tools\n# we need\nPackages=jq # small\n  curl # and this\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"the tools", "we need", "small", "and this"}
	if !reflect.DeepEqual(es[0].Comments, want) {
		t.Errorf("comments %q, want %q", es[0].Comments, want)
	}
	if es[0].Pos.Line != 4 || es[0].Pos.Col != 1 {
		t.Errorf("pos %v", es[0].Pos)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"[Distribution]\nDistribution=debian\n",
		"[Content]\nPackages=\n a\n b\n",
		"[Match]\nFormat=|disk\nFormat=|!directory\n[Output]\nImageId=%i%%%O\n",
		"   [A]\n   K=v\n  x\n",
		"[A\n",
		"K=v",
		"[Build]\nEnvironment=\"A=b c\" 'D=e'\\ f\n",
		"\r\n[X]\r\n\v=\f#",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := ParseINI("fuzz.conf", data, nil)
		if err != nil {
			if _, ok := diag.As(err); !ok {
				t.Fatalf("error without position: %v", err)
			}
			return
		}
		c := &pctx{l: &loader{opts: LoadOptions{Environment: map[string]string{}}}, image: "main", cwd: "/nonexistent",
			cli: map[*setting]any{}, config: map[*setting]any{}, defaults: map[*setting]any{}, pos: map[string]diag.Pos{},
			comments: map[string][]string{}}
		c.l.opts.HostDistribution, c.l.opts.HostRelease, c.l.opts.HostArchitecture = "debian", "trixie", "x86-64"
		for _, e := range es {
			if e.End() {
				continue
			}
			v, err := c.expand(e.Value, "fuzz.conf", e.Pos)
			if err != nil {
				continue
			}
			if s := settingByName[e.Key]; s != nil && s.Kind != tInclude {
				_ = c.set(s, v, e.Pos, e.Comments)
			}
			_, _ = shlexSplit(e.Value, "\n ")
			_ = fnmatch(e.Key, e.Value)
			_ = CompareVersions(e.Key, e.Value)
			_, _ = ParseBytes(e.Value)
		}
		_, _ = c.finalize()
	})
}

// FuzzLoad loads a project whose mkosi.conf is the fuzz input: loading
// never panics or hangs, whatever the file says (includes of /dev/zero,
// recursion through /, bad values).
func FuzzLoad(f *testing.F) {
	for _, s := range []string{
		"[Output]\nFormat=sysext\n[Content]\nPackages=a b\n",
		"[Include]\nInclude=/dev/zero\n",
		"[Include]\nInclude=mkosi.conf\n",
		"[Match]\nSystemdVersion=>=1\nImageVersion=<2\n[Build]\nEnvironment=%a%F%C%P%D%I%%\n",
		"[Content]\nExtraTrees=/:/x,a:b\nSkeletonTrees=%O\n",
		"[Config]\nDependencies=main\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "mkosi.conf"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		var w []*diag.Diagnostic
		p, err := Load(dir, testOpts(&w))
		if err != nil {
			return
		}
		if _, err := p.SummaryJSON(); err != nil {
			t.Fatal(err)
		}
		if _, err := Convert(p); err != nil {
			t.Fatalf("convert: %v", err)
		}
	})
}
