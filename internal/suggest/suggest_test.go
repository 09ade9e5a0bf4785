package suggest

import "testing"

func TestDistances(t *testing.T) {
	for _, c := range []struct {
		a, b       string
		lev, trans int
	}{
		{"", "", 0, 0},
		{"jq", "jqq", 1, 1},
		{"pakcages", "packages", 2, 1},
		{"bookwrom", "bookworm", 2, 1},
		{"kitten", "sitting", 3, 3},
		{"abc", "", 3, 3},
	} {
		if got := Levenshtein(c.a, c.b); got != c.lev {
			t.Errorf("Levenshtein(%q, %q) = %d, want %d", c.a, c.b, got, c.lev)
		}
		if got := WithTranspositions(c.a, c.b); got != c.trans {
			t.Errorf("WithTranspositions(%q, %q) = %d, want %d", c.a, c.b, got, c.trans)
		}
	}
}

func TestNearest(t *testing.T) {
	names := []string{"arm", "arm64", "armhf", "x86-64"}
	for _, c := range []struct{ s, want string }{
		{"arm46", "arm64"}, // one transposition
		{"armfh", "armhf"},
		{"x86_64", "x86-64"},
		{"arm", "arm"},
		{"pdp11", ""}, // nothing close
		{"", ""},
	} {
		if got := Nearest(c.s, names); got != c.want {
			t.Errorf("Nearest(%q) = %q, want %q", c.s, got, c.want)
		}
	}
}

func TestNotOneOf(t *testing.T) {
	choices := []string{"directory", "tar"}
	if got, want := NotOneOf("tra", choices), `"tra" is not one of "directory", "tar" (did you mean "tar"?)`; got != want {
		t.Errorf("NotOneOf = %s, want %s", got, want)
	}
	if got, want := NotOneOf("cpio", choices), `"cpio" is not one of "directory", "tar"`; got != want {
		t.Errorf("NotOneOf = %s, want %s", got, want)
	}
}
