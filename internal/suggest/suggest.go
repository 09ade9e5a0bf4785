// Package suggest measures how far apart two names are, for "did you
// mean" hints in error messages.
package suggest

import (
	"fmt"
	"strconv"
	"strings"
)

// Levenshtein is the edit distance of a and b: insertions, deletions and
// substitutions of bytes.
func Levenshtein(a, b string) int { return distance(a, b, false) }

// WithTranspositions is Levenshtein where swapping two adjacent bytes also
// counts as one edit (optimal string alignment), so "pakcages" is one edit
// from "packages".
func WithTranspositions(a, b string) int { return distance(a, b, true) }

func distance(a, b string, transpose bool) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if transpose && i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// Nearest returns the candidate closest to s by WithTranspositions, the
// first of equally close ones, when it is close enough to be a likely
// misspelling (fewer than len(s)/2+2 edits and at most max(2, len(s)/3));
// else "".
func Nearest(s string, candidates []string) string {
	best, bestD := "", len(s)/2+2
	for _, c := range candidates {
		if d := WithTranspositions(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	if bestD > max(2, len(s)/3) {
		return ""
	}
	return best
}

// Quote returns the choices quoted and comma separated: "a", "b", "c".
func Quote(choices []string) string {
	q := make([]string, len(choices))
	for i, c := range choices {
		q[i] = strconv.Quote(c)
	}
	return strings.Join(q, ", ")
}

// NotOneOf says that value is not one of choices, with a did-you-mean hint
// when one is close: `"tra" is not one of "directory", "tar" (did you mean
// "tar"?)`.
func NotOneOf(value string, choices []string) string {
	msg := fmt.Sprintf("%q is not one of %s", value, Quote(choices))
	if n := Nearest(value, choices); n != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", n)
	}
	return msg
}
