package label

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in, pkg string
		want    string // canonical label, or "error: <part>: <substring>"
	}{
		{"//a/b:c", "x", "//a/b:c"},
		{"//a/b", "x", "//a/b:b"},
		{"//:c", "x", "//:c"},
		{":c", "x/y", "//x/y:c"},
		{":c", "", "//:c"},
		{"c", "x", "//x:c"},
		{"//a:c.star", "", "//a:c.star"},
		{"//a:sub/c.star", "", "error: target name: may not contain \"/\""},
		{"//a/b:", "", "error: target name: empty after \":\""},
		{"//", "", "error: target name: \"//\" alone"},
		{":", "", "error: target name: empty after \":\""},
		{"", "", "error: : empty label"},
		{"//a//b:c", "", "error: package: empty path component"},
		{"//a/../b:c", "", "error: package: may not contain \"..\" components"},
		{"//a/:c", "", "error: package: must not end with \"/\""},
		{"///a:c", "", "error: package: must not start with \"/\""},
		{"//a b:c", "", "error: package: character ' ' is not allowed"},
		{"//a:b c", "", "error: target name: character ' ' is not allowed"},
		{"//a:..", "", "error: target name: is not allowed"},
		{"//a:-x", "", "error: target name: must start with"},
		{"/a:c", "", "error: package: labels start with \"//\""},
		{"a/b:c", "", "error: package: must start with \"//\""},
		{"@repo//a:b", "", "error: repository: not supported"},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in, tt.pkg)
		if strings.HasPrefix(tt.want, "error: ") {
			part, sub, _ := strings.Cut(strings.TrimPrefix(tt.want, "error: "), ": ")
			var le *Error
			if !errors.As(err, &le) {
				t.Errorf("Parse(%q) = %v, %v; want error about %s", tt.in, got, err, part)
				continue
			}
			if le.Part != part || !strings.Contains(le.Msg, sub) {
				t.Errorf("Parse(%q) error = part %q msg %q; want part %q containing %q", tt.in, le.Part, le.Msg, part, sub)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q, %q): %v", tt.in, tt.pkg, err)
			continue
		}
		if got.String() != tt.want {
			t.Errorf("Parse(%q, %q) = %s, want %s", tt.in, tt.pkg, got, tt.want)
		}
	}
}

func TestParsePattern(t *testing.T) {
	tests := []struct {
		in, cwd string
		want    string // canonical pattern or "error: <part>"
	}{
		{"//...", "x", "//..."},
		{"//a/...", "x", "//a/..."},
		{"//a/...:all", "", "//a/..."},
		{"//a/...:*", "", "//a/..."},
		{"//a:all", "", "//a:all"},
		{"//a:*", "", "//a:all"},
		{"//a:b", "", "//a:b"},
		{"//a/b", "", "//a/b:b"},
		{"//:all", "", "//:all"},
		{"...", "", "//..."},
		{"...", "x/y", "//x/y/..."},
		{"sub/...", "x", "//x/sub/..."},
		{":all", "x", "//x:all"},
		{":n", "x", "//x:n"},
		{":n", "", "//:n"},
		{"sub:n", "x", "//x/sub:n"},
		{"sub", "x", "//x/sub:sub"},
		{"sub", "", "//sub:sub"},
		{"", "", "error: pattern"},
		{"//", "", "error: target name"},
		{"//a/...:b", "", "error: target name"},
		{"//a/.../b", "", "error: package"},
		{"//a:", "", "error: target name"},
		{"//a:b/c", "", "error: target name"},
		{"//a/../b:c", "", "error: package"},
		{"../x:y", "a", "error: package"},
		{"/abs", "", "error: package"},
		{"@r//a:b", "", "error: repository"},
	}
	for _, tt := range tests {
		got, err := ParsePattern(tt.in, tt.cwd)
		if part, ok := strings.CutPrefix(tt.want, "error: "); ok {
			var le *Error
			if !errors.As(err, &le) || le.Part != part {
				t.Errorf("ParsePattern(%q, %q) = %v, %v; want an error about the %s", tt.in, tt.cwd, got, err, part)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParsePattern(%q, %q): %v", tt.in, tt.cwd, err)
			continue
		}
		if got.String() != tt.want {
			t.Errorf("ParsePattern(%q, %q) = %s, want %s", tt.in, tt.cwd, got, tt.want)
		}
	}
}

func TestMatches(t *testing.T) {
	tests := []struct {
		pat   string
		label Label
		want  bool
	}{
		{"//...", Label{"", "x"}, true},
		{"//...", Label{"a/b", "x"}, true},
		{"//a/...", Label{"a", "x"}, true},
		{"//a/...", Label{"a/b", "x"}, true},
		{"//a/...", Label{"ab", "x"}, false},
		{"//a/...", Label{"", "a"}, false},
		{"//a:all", Label{"a", "x"}, true},
		{"//a:all", Label{"a/b", "x"}, false},
		{"//a:x", Label{"a", "x"}, true},
		{"//a:x", Label{"a", "y"}, false},
	}
	for _, tt := range tests {
		p, err := ParsePattern(tt.pat, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Matches(tt.label); got != tt.want {
			t.Errorf("%s matches %s = %v, want %v", tt.pat, tt.label, got, tt.want)
		}
	}
}

func TestParseFile(t *testing.T) {
	for _, tc := range []struct{ in, pkg, want string }{
		{"//a:sub/defs.star", "", "//a:sub/defs.star"},
		{":sub/defs.star", "p", "//p:sub/defs.star"},
		{":defs.star", "p", "//p:defs.star"},
		{"//a:sub/../x.star", "", "error"},
		{"//a:/x.star", "", "error"},
		{"//a b:x/y.star", "", "error"},
	} {
		got, err := ParseFile(tc.in, tc.pkg)
		if tc.want == "error" {
			if err == nil {
				t.Errorf("ParseFile(%q) = %s, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("ParseFile(%q, %q) = %s, %v; want %s", tc.in, tc.pkg, got, err, tc.want)
		}
	}
}

func TestErrorMessageNamesThePart(t *testing.T) {
	_, err := Parse("//a//b:c", "")
	if want := `invalid label "//a//b:c": package: "a//b" has an empty path component`; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}
