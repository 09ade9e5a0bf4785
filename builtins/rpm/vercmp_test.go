package rpm

import (
	"fmt"
	"math/rand"
	"os/exec"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/internal/testenv"
)

// vercmpCases are rpm's own rpmvercmp test cases (tests/rpmvercmp.at).
var vercmpCases = []struct {
	a, b string
	want int
}{
	{"1.0", "1.0", 0}, {"1.0", "2.0", -1}, {"2.0", "1.0", 1},
	{"2.0.1", "2.0.1", 0}, {"2.0", "2.0.1", -1}, {"2.0.1", "2.0", 1},
	{"2.0.1a", "2.0.1a", 0}, {"2.0.1a", "2.0.1", 1}, {"2.0.1", "2.0.1a", -1},
	{"5.5p1", "5.5p1", 0}, {"5.5p1", "5.5p2", -1}, {"5.5p2", "5.5p1", 1},
	{"5.5p10", "5.5p10", 0}, {"5.5p1", "5.5p10", -1}, {"5.5p10", "5.5p1", 1},
	{"10xyz", "10.1xyz", -1}, {"10.1xyz", "10xyz", 1},
	{"xyz10", "xyz10", 0}, {"xyz10", "xyz10.1", -1}, {"xyz10.1", "xyz10", 1},
	{"xyz.4", "xyz.4", 0}, {"xyz.4", "8", -1}, {"8", "xyz.4", 1},
	{"xyz.4", "2", -1}, {"2", "xyz.4", 1},
	{"5.5p2", "5.6p1", -1}, {"5.6p1", "5.5p2", 1},
	{"5.6p1", "6.5p1", -1}, {"6.5p1", "5.6p1", 1},
	{"6.0.rc1", "6.0", 1}, {"6.0", "6.0.rc1", -1},
	{"10b2", "10a1", 1}, {"10a2", "10b2", -1},
	{"1.0aa", "1.0aa", 0}, {"1.0a", "1.0aa", -1}, {"1.0aa", "1.0a", 1},
	{"10.0001", "10.0001", 0}, {"10.0001", "10.1", 0}, {"10.1", "10.0001", 0},
	{"10.0001", "10.0039", -1}, {"10.0039", "10.0001", 1},
	{"4.999.9", "5.0", -1}, {"5.0", "4.999.9", 1},
	{"20101121", "20101121", 0}, {"20101121", "20101122", -1}, {"20101122", "20101121", 1},
	{"2_0", "2_0", 0}, {"2.0", "2_0", 0}, {"2_0", "2.0", 0},
	{"a", "a", 0}, {"a+", "a+", 0}, {"a+", "a_", 0}, {"a_", "a+", 0},
	{"+a", "+a", 0}, {"+a", "_a", 0}, {"_a", "+a", 0},
	{"+_", "+_", 0}, {"_+", "+_", 0}, {"_+", "_+", 0}, {"+", "_", 0}, {"_", "+", 0},
	{"1.0~rc1", "1.0~rc1", 0}, {"1.0~rc1", "1.0", -1}, {"1.0", "1.0~rc1", 1},
	{"1.0~rc1", "1.0~rc2", -1}, {"1.0~rc2", "1.0~rc1", 1},
	{"1.0~rc1~git123", "1.0~rc1~git123", 0}, {"1.0~rc1~git123", "1.0~rc1", -1}, {"1.0~rc1", "1.0~rc1~git123", 1},
	{"1.0^", "1.0^", 0}, {"1.0^", "1.0", 1}, {"1.0", "1.0^", -1},
	{"1.0^git1", "1.0^git1", 0}, {"1.0^git1", "1.0", 1}, {"1.0", "1.0^git1", -1},
	{"1.0^git1", "1.0^git2", -1}, {"1.0^git2", "1.0^git1", 1},
	{"1.0^git1", "1.01", -1}, {"1.01", "1.0^git1", 1},
	{"1.0^20160101", "1.0^20160101", 0}, {"1.0^20160101", "1.0.1", -1}, {"1.0.1", "1.0^20160101", 1},
	{"1.0^20160101^git1", "1.0^20160101^git1", 0}, {"1.0^20160102", "1.0^20160101^git1", 1}, {"1.0^20160101^git1", "1.0^20160102", -1},
	{"1.0~rc1^git1", "1.0~rc1^git1", 0}, {"1.0~rc1^git1", "1.0~rc1", 1}, {"1.0~rc1", "1.0~rc1^git1", -1},
	{"1.0^git1~pre", "1.0^git1~pre", 0}, {"1.0^git1", "1.0^git1~pre", 1}, {"1.0^git1~pre", "1.0^git1", -1},
}

func TestVercmpTable(t *testing.T) {
	for _, c := range vercmpCases {
		if got := Vercmp(c.a, c.b); got != c.want {
			t.Errorf("Vercmp(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

// TestVercmpAgainstRPM compares with rpm's own rpm.vercmp on the table and
// on generated versions full of separators, tildes and carets.
func TestVercmpAgainstRPM(t *testing.T) {
	testenv.NeedTool(t, "rpm")
	type pair struct{ a, b string }
	var pairs []pair
	for _, c := range vercmpCases {
		pairs = append(pairs, pair{c.a, c.b})
	}
	rng := rand.New(rand.NewSource(7))
	alpha := []string{"0", "1", "01", "2", "10", "a", "b", "rc", "git", ".", "_", "+", "~", "^", "-"}
	gen := func() string {
		n := 1 + rng.Intn(6)
		var sb strings.Builder
		for i := 0; i < n; i++ {
			sb.WriteString(alpha[rng.Intn(len(alpha))])
		}
		return strings.ReplaceAll(sb.String(), "-", ".")
	}
	for i := 0; i < 400; i++ {
		pairs = append(pairs, pair{gen(), gen()})
	}
	var lua strings.Builder
	lua.WriteString("%{lua:\n")
	for _, p := range pairs {
		fmt.Fprintf(&lua, "print(rpm.vercmp(%q, %q)..\"\\n\")\n", p.a, p.b)
	}
	lua.WriteString("}")
	cmd := exec.Command("rpm", "--eval", lua.String())
	cmd.Env = append(cmd.Environ(), "RPM_FORCE_DEBIAN=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("rpm --eval: %v", err)
	}
	lines := strings.Fields(string(out))
	if len(lines) != len(pairs) {
		t.Fatalf("rpm printed %d results for %d pairs", len(lines), len(pairs))
	}
	for i, p := range pairs {
		want := map[string]int{"-1": -1, "0": 0, "1": 1}[lines[i]]
		if got := Vercmp(p.a, p.b); got != want {
			t.Errorf("Vercmp(%q, %q) = %d, rpm says %s", p.a, p.b, got, lines[i])
		}
	}
}

func TestOverlaps(t *testing.T) {
	cases := []struct {
		prov, req string
		want      bool
	}{
		{"foo = 1.0-1", "foo >= 1.0", true},
		{"foo = 1.0~rc1-1", "foo >= 1.0", false},
		{"foo = 2.0^git1-1", "foo > 2.0", true},
		{"foo = 1:0.5-1", "foo > 2.0", true},
		{"foo = 1.0-1", "foo = 1.0-2", false},
		{"foo = 1.0-1", "foo = 1.0", true},
		{"foo", "foo >= 9", true},
		{"foo >= 2", "foo < 3", true},
		{"foo >= 3", "foo < 3", false},
	}
	for _, c := range cases {
		p, err := parseRequest(c.prov)
		if err != nil {
			t.Fatal(err)
		}
		r, err := parseRequest(c.req)
		if err != nil {
			t.Fatal(err)
		}
		if got := overlaps(p.Flags, p.EVR, r.Flags, r.EVR); got != c.want {
			t.Errorf("%q satisfies %q = %v, want %v", c.prov, c.req, got, c.want)
		}
	}
}

func TestParseRich(t *testing.T) {
	cases := map[string]string{
		"(a or b)":                                 "(a or b)",
		"(a >= 1.0 and (b if c else d))":           "(a >= 1.0 and (b if c else d))",
		"(a with b with c)":                        "(a with b with c)",
		"(python3 unless (x without y))":           "(python3 unless (x without y))",
		"((a))":                                    "a",
		"(kernel-default-devel if kernel-default)": "(kernel-default-devel if kernel-default)",
	}
	for in, want := range cases {
		r, err := parseRich(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if got := r.String(); got != want {
			t.Errorf("%s: parsed as %s, want %s", in, got, want)
		}
	}
	for _, bad := range []string{"(a or)", "(a or b and c)", "(a b)", "a or b", "(a if b else c else d)", "(a >=)"} {
		if _, err := parseRich(bad); err == nil {
			t.Errorf("%s: parsed, want an error", bad)
		}
	}
}
