package deb

import (
	"fmt"

	"github.com/sxb-build/sxb/internal/suggest"
)

// suggest returns " (did you mean "x"?)" for the package name of the
// universe nearest to a requested name that does not exist (at most two
// edits away, ties broken by name), or "".
func (u *universe) suggest(name string) string {
	best, bestD := "", 3
	for n := range u.byName {
		if abs(len(n)-len(name)) > bestD {
			continue
		}
		d := suggest.Levenshtein(name, n)
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
