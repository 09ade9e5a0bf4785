package erofs

import "testing"

// TestMaxLiterals: the closing run maxLiterals allows is the longest whose
// cost fits, for every budget of a cluster and beyond.
func TestMaxLiterals(t *testing.T) {
	want := -1 // grows with the budget
	for budget := -2; budget < 1<<17; budget++ {
		for budget > 0 && literalCost(want+1) <= budget {
			want++
		}
		if got := maxLiterals(budget); got != want {
			t.Fatalf("maxLiterals(%d) = %d, want %d", budget, got, want)
		}
	}
}
