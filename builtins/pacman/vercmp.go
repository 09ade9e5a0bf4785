package pacman

import "strings"

// Vercmp compares two package versions as libalpm's alpm_pkg_vercmp (and
// the vercmp tool) does: [epoch:]pkgver[-pkgrel], the epoch compared first
// (missing means 0), then pkgver, then pkgrel only when both versions have
// one ("1.0" equals "1.0-3"). It returns -1, 0 or 1.
//
// Written here rather than shared with builtins/rpm: alpm's segment
// comparison is the rpmvercmp of rpm 4.4, without "~" and "^" and with a
// rule rpm dropped (a longer run of separators sorts later).
func Vercmp(a, b string) int {
	if a == b {
		return 0
	}
	ea, va, ra, hasA := splitEVR(a)
	eb, vb, rb, hasB := splitEVR(b)
	if c := segcmp(ea, eb); c != 0 {
		return c
	}
	if c := segcmp(va, vb); c != 0 || !hasA || !hasB {
		return c
	}
	return segcmp(ra, rb)
}

// splitEVR splits [epoch:]version[-release]: the epoch is the leading
// digits when a colon follows them ("0" otherwise), the release what
// follows the last "-".
func splitEVR(s string) (epoch, version, release string, hasRelease bool) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	epoch, version = "0", s
	if i < len(s) && s[i] == ':' {
		if i > 0 {
			epoch = s[:i]
		}
		version = s[i+1:]
	}
	if j := strings.LastIndexByte(version, '-'); j >= 0 {
		return epoch, version[:j], version[j+1:], true
	}
	return epoch, version, "", false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isAlpha(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

// segcmp is alpm's rpmvercmp on one part of a version: alternating runs of
// digits and letters compared in turn (numbers numerically, letters
// bytewise; a number beats letters), separated by runs of other bytes,
// where a longer separator run sorts later.
func segcmp(a, b string) int {
	if a == b {
		return 0
	}
	i, j := 0, 0   // start of the current segment
	pi, pj := 0, 0 // end of the previous segment
	for i < len(a) && j < len(b) {
		for i < len(a) && !isDigit(a[i]) && !isAlpha(a[i]) {
			i++
		}
		for j < len(b) && !isDigit(b[j]) && !isAlpha(b[j]) {
			j++
		}
		if i >= len(a) || j >= len(b) {
			break
		}
		if i-pi != j-pj {
			if i-pi < j-pj {
				return -1
			}
			return 1
		}
		num := isDigit(a[i])
		ei, ej := i, j
		if num {
			for ei < len(a) && isDigit(a[ei]) {
				ei++
			}
			for ej < len(b) && isDigit(b[ej]) {
				ej++
			}
		} else {
			for ei < len(a) && isAlpha(a[ei]) {
				ei++
			}
			for ej < len(b) && isAlpha(b[ej]) {
				ej++
			}
		}
		if ej == j {
			// Segments of different kinds: the number is newer.
			if num {
				return 1
			}
			return -1
		}
		sa, sb := a[i:ei], b[j:ej]
		if num {
			sa, sb = strings.TrimLeft(sa, "0"), strings.TrimLeft(sb, "0")
			if len(sa) != len(sb) {
				if len(sa) > len(sb) {
					return 1
				}
				return -1
			}
		}
		if c := strings.Compare(sa, sb); c != 0 {
			return c
		}
		i, j, pi, pj = ei, ej, ei, ej
	}
	if i >= len(a) && j >= len(b) {
		return 0
	}
	// What remains decides: a trailing letter run is older than nothing,
	// anything else is newer.
	if (i >= len(a) && !(j < len(b) && isAlpha(b[j]))) || (i < len(a) && isAlpha(a[i])) {
		return -1
	}
	return 1
}
