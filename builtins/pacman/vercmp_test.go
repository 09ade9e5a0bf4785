package pacman

import (
	"bufio"
	"math/rand"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/internal/testenv"
)

// vercmpPairs are hand-picked version pairs: epochs, releases, letters
// against numbers, leading zeros, separators of different lengths, empty
// parts and what Arch versions look like.
var vercmpPairs = [][2]string{
	{"1.0", "1.0"}, {"1.0", "1.1"}, {"1.0.1", "1.0"}, {"1.0a", "1.0"}, {"1.0a", "1.0b"},
	{"1.0alpha", "1.0"}, {"1.0", "1.0.0"}, {"1.0.", "1.0"}, {"1..0", "1.0"}, {"1_0", "1.0"},
	{"1.0-1", "1.0-2"}, {"1.0-1", "1.0"}, {"1.0", "1.0-9"}, {"1.0-1.1", "1.0-1"}, {"1.0-", "1.0-1"},
	{"1:1.0", "2.0"}, {"1:1.0", "1:2.0"}, {"0:1.0", "1.0"}, {":1.0", "1.0"}, {"2:0.1-1", "1:9.9-9"},
	{"01", "1"}, {"001.0", "1.00"}, {"1.010", "1.9"}, {"10", "9"}, {"100000000000000000000", "99999999999999999999"},
	{"1.0rc1", "1.0"}, {"1.0rc1", "1.0.1"}, {"1.0pre", "1.0"}, {"a", "1"}, {"a", "b"}, {"", "1"}, {"", ""},
	{"1.0+git", "1.0"}, {"1.0+1", "1.0.1"}, {"1.0.r12.gabc", "1.0.r9.gdef"}, {"2024.01.01", "2023.12.31"},
	{"6.9.arch1-1", "6.9.1.arch1-1"}, {"255.4-2", "255.10-1"}, {"1:3.4.2-1", "3.5-1"}, {"1.0~rc1", "1.0"},
	{"1.0-1-1", "1.0-1"}, {"1:", "0:"}, {"1:-1", "-1"}, {"x:1", "1"}, {"1.a", "1.1"}, {"1.a", "1a"},
	{"1a", "1.a"}, {"1.0..", "1.0."}, {"1.0a1", "1.0.a1"}, {"1.2.3a", "1.2.3.a"}, {"abc", "abcd"},
	{"1.0_beta", "1.0.beta"}, {"5.15.arch1-1", "5.15-1"}, {"1.0a", "1.0."}, {"1.0.", "1.0a"},
}

// TestVercmpMatchesPacman compares Vercmp with pacman's vercmp on the
// hand-picked pairs and on random versions made of the characters that
// matter (digits, letters, separators, ":" and "-").
func TestVercmpMatchesPacman(t *testing.T) {
	bin := testenv.NeedTool(t, "vercmp")
	pairs := append([][2]string{}, vercmpPairs...)
	rng := rand.New(rand.NewSource(14))
	alphabet := "0123456789001abz..-_:+"
	word := func() string {
		n := rng.Intn(8)
		var b strings.Builder
		for i := 0; i < n; i++ {
			b.WriteByte(alphabet[rng.Intn(len(alphabet))])
		}
		return b.String()
	}
	for i := 0; i < 400; i++ {
		a := word()
		b := a
		if rng.Intn(3) > 0 {
			b = word()
		} else if len(a) > 0 {
			// A small change of a, where the rules are subtle.
			p := rng.Intn(len(a))
			b = a[:p] + string(alphabet[rng.Intn(len(alphabet))]) + a[p+1:]
		}
		pairs = append(pairs, [2]string{a, b})
	}
	for i, n := 0, len(pairs); i < n; i++ {
		pairs = append(pairs, [2]string{pairs[i][1], pairs[i][0]})
	}
	// One shell runs vercmp for every pair (a process per pair from Go is
	// slower); arguments travel NUL-separated.
	var in strings.Builder
	for _, p := range pairs {
		in.WriteString(p[0] + "\x00" + p[1] + "\x00")
	}
	cmd := exec.Command("bash", "-c", `while IFS= read -r -d '' a && IFS= read -r -d '' b; do "$0" "$a" "$b"; done`, bin)
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("vercmp: %v", err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	n := 0
	for sc.Scan() {
		if n >= len(pairs) {
			t.Fatalf("vercmp printed more lines than pairs")
		}
		want, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
		if err != nil {
			t.Fatalf("vercmp output %q", sc.Text())
		}
		a, b := pairs[n][0], pairs[n][1]
		if got := Vercmp(a, b); got != want {
			t.Errorf("Vercmp(%q, %q) = %d, vercmp says %d", a, b, got, want)
		}
		n++
	}
	if n != len(pairs) {
		t.Fatalf("vercmp answered %d of %d pairs", n, len(pairs))
	}
}
