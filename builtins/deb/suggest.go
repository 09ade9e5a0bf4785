package deb

import "fmt"

// suggest returns " (did you mean "x"?)" for the package name of the
// universe nearest to a requested name that does not exist (at most two
// edits away, ties broken by name), or "".
func (u *universe) suggest(name string) string {
	best, bestD := "", 3
	for n := range u.byName {
		if abs(len(n)-len(name)) > bestD {
			continue
		}
		d := editDistance(name, n)
		if d < bestD || d == bestD && n < best {
			best, bestD = n, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
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
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
