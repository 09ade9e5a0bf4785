package main

import "testing"

func TestPrintableEscapesControlCharacters(t *testing.T) {
	for in, want := range map[string]string{
		"ID=debian":            "ID=debian",
		"evil\x1b]0;pwned\x07": `evil\x1b]0;pwned\x07`,
		"caf\xc3\xa9":          "café",
		"bad\xffutf8":          `bad\xffutf8`,
		"c1\u009bx":            `c1\x9bx`,
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}
