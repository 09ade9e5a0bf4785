package pacman

import (
	"os"
	"testing"

	"github.com/sxb-build/sxb/builtins/pacman/pacmantest"
	"github.com/sxb-build/sxb/builtins/sandbox"
)

// TestMain stops the GnuPG daemons the tests started in the fixture's
// key homes. sandbox.Init serves the sandbox's re-executions of the test
// binary (the scriptlet tests).
func TestMain(m *testing.M) {
	sandbox.Init()
	code := m.Run()
	pacmantest.StopAgents()
	os.Exit(code)
}

func TestParseDep(t *testing.T) {
	cases := map[string]Dep{
		"glibc":                  {Name: "glibc"},
		"bash>=5.2":              {Name: "bash", Op: GE, Version: "5.2"},
		"libfoo.so=1-64":         {Name: "libfoo.so", Op: EQ, Version: "1-64"},
		"python<3.13":            {Name: "python", Op: LT, Version: "3.13"},
		"x<=1:2.0-3":             {Name: "x", Op: LE, Version: "1:2.0-3"},
		"y>1":                    {Name: "y", Op: GT, Version: "1"},
		"fx-extra-dep: more":     {Name: "fx-extra-dep"},
		"gtk3>=3.24: for the UI": {Name: "gtk3", Op: GE, Version: "3.24"},
	}
	for in, want := range cases {
		got, err := ParseDep(in)
		if err != nil || got != want {
			t.Errorf("ParseDep(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if got.String() != in && !containsColon(in) {
			t.Errorf("%+v.String() = %q, want %q", got, got.String(), in)
		}
	}
	for _, bad := range []string{"", ">=1", "a b"} {
		if _, err := ParseDep(bad); err == nil {
			t.Errorf("ParseDep(%q) accepted it", bad)
		}
	}
}

func containsColon(s string) bool {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == ':' && s[i+1] == ' ' {
			return true
		}
	}
	return false
}

// TestSatisfies checks alpm's rule that only a provision with "=version"
// meets a versioned dependency.
func TestSatisfies(t *testing.T) {
	prov := []Dep{{Name: "sh"}, {Name: "libx.so", Op: EQ, Version: "2-64"}}
	cases := []struct {
		dep  string
		want bool
	}{
		{"sh", true}, {"sh>=1", false}, {"libx.so", true}, {"libx.so=2-64", true}, {"libx.so>=3", false},
		{"bash", true}, {"bash>=5", true}, {"bash<5", false}, {"bash=5.2", true}, {"bash=5.2-1", true}, {"bash=5.2-2", false},
	}
	for _, c := range cases {
		d, _ := ParseDep(c.dep)
		if got := d.satisfiedBy("bash", "5.2-1", prov); got != c.want {
			t.Errorf("%s satisfied by bash 5.2-1: %v, want %v", c.dep, got, c.want)
		}
	}
}

func TestFnmatchPatterns(t *testing.T) {
	cases := []struct {
		patterns []string
		s        string
		want     bool
	}{
		{[]string{"usr/bin/*"}, "usr/bin/a/b", true},
		{[]string{"usr/lib/sysusers.d/*.conf"}, "usr/lib/sysusers.d/x.conf", true},
		{[]string{"usr/bin/fx*", "!usr/bin/fx-suid"}, "usr/bin/fx-suid", false},
		{[]string{"!usr/bin/fx-suid", "usr/bin/fx*"}, "usr/bin/fx-suid", true},
		{[]string{"usr/share/[a-c]*/x"}, "usr/share/b1/x", true},
		{[]string{"usr/share/[!a-c]*/x"}, "usr/share/b1/x", false},
		{[]string{"a?c"}, "abc", true},
		{[]string{"a?c"}, "ac", false},
		{[]string{`\!x`}, "!x", true},
		{[]string{"linux"}, "linux-lts", false},
	}
	for _, c := range cases {
		if got := fnmatchPatterns(c.patterns, c.s); got != c.want {
			t.Errorf("fnmatchPatterns(%q, %q) = %v, want %v", c.patterns, c.s, got, c.want)
		}
	}
}

func TestMTreeUnescape(t *testing.T) {
	for in, want := range map[string]string{`./a\040b`: "./a b", `x\\y`: `x\y`, `plain`: "plain", `\303\244`: "ä"} {
		if got, err := mtreeUnescape(in); err != nil || got != want {
			t.Errorf("mtreeUnescape(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestParseDesc(t *testing.T) {
	d := desc{}
	if err := parseDesc([]byte("%NAME%\nfoo\n\n%DEPENDS%\na\nb>=1\n\n%URL%\n\n"), d); err != nil {
		t.Fatal(err)
	}
	if d.one("NAME") != "foo" || len(d["DEPENDS"]) != 2 || d["URL"] != nil {
		t.Errorf("parsed %v", d)
	}
	if err := parseDesc([]byte("stray\n"), desc{}); err == nil {
		t.Errorf("a value outside a section was accepted")
	}
}
