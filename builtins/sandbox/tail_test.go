package sandbox

import (
	"fmt"
	"slices"
	"testing"
)

// TestTail: the last Max lines are kept, the unfinished one included; Line
// sees each complete line with the ones kept before it and may drop it.
func TestTail(t *testing.T) {
	var seen []string
	tl := &Tail{Max: 3, Line: func(s string, before []string) bool {
		seen = append(seen, fmt.Sprintf("%s<%d", s, len(before)))
		return s != "drop"
	}}
	fmt.Fprint(tl, "a\nb\ndr")
	fmt.Fprint(tl, "op\nc\nd\npart")
	if got := tl.Lines(); !slices.Equal(got, []string{"c", "d", "part"}) {
		t.Errorf("Lines() = %q", got)
	}
	if want := []string{"a<0", "b<1", "drop<2", "c<2", "d<3"}; !slices.Equal(seen, want) {
		t.Errorf("Line saw %q, want %q", seen, want)
	}
	if got := tl.String(); got != "c\nd\npart" {
		t.Errorf("String() = %q", got)
	}
	if got := (&Tail{Max: 2}).String(); got != "" {
		t.Errorf("empty: %q", got)
	}
}
