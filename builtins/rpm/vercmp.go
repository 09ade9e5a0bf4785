package rpm

import (
	"strconv"
	"strings"
)

// isAlnum reports whether c is an ASCII letter or digit, as rpm's risalnum.
func isAlnum(c byte) bool { return isDigit(c) || isAlpha(c) }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isAlpha(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

// Vercmp compares two version (or release) strings exactly as rpm's
// rpmvercmp does, including the "~" (sorts before anything, even the end of
// the string) and "^" (sorts after the end of the string but before any
// other segment) separators. It returns -1, 0 or 1.
func Vercmp(a, b string) int {
	if a == b {
		return 0
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for i < len(a) && !isAlnum(a[i]) && a[i] != '~' && a[i] != '^' {
			i++
		}
		for j < len(b) && !isAlnum(b[j]) && b[j] != '~' && b[j] != '^' {
			j++
		}
		// Tilde sorts before everything else, including the end.
		ta, tb := i < len(a) && a[i] == '~', j < len(b) && b[j] == '~'
		if ta || tb {
			if !ta {
				return 1
			}
			if !tb {
				return -1
			}
			i++
			j++
			continue
		}
		// Caret sorts after the end but before any other segment.
		ca, cb := i < len(a) && a[i] == '^', j < len(b) && b[j] == '^'
		if ca || cb {
			if i >= len(a) {
				return -1
			}
			if j >= len(b) {
				return 1
			}
			if !ca {
				return 1
			}
			if !cb {
				return -1
			}
			i++
			j++
			continue
		}
		if i >= len(a) || j >= len(b) {
			break
		}
		si, sj := i, j
		isnum := isDigit(a[i])
		if isnum {
			for i < len(a) && isDigit(a[i]) {
				i++
			}
			for j < len(b) && isDigit(b[j]) {
				j++
			}
		} else {
			for i < len(a) && isAlpha(a[i]) {
				i++
			}
			for j < len(b) && isAlpha(b[j]) {
				j++
			}
		}
		sa, sb := a[si:i], b[sj:j]
		if sb == "" {
			// Numeric segments are newer than alphabetic ones.
			if isnum {
				return 1
			}
			return -1
		}
		if isnum {
			sa = strings.TrimLeft(sa, "0")
			sb = strings.TrimLeft(sb, "0")
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
	}
	switch {
	case i >= len(a) && j >= len(b):
		return 0
	case i < len(a):
		return 1
	default:
		return -1
	}
}

// EVR is an epoch:version-release triple. An empty Epoch means 0; an empty
// Release matches any release in comparisons, as in rpm's dependency
// matching.
type EVR struct {
	Epoch   string `json:"epoch,omitempty"`
	Version string `json:"version,omitempty"`
	Release string `json:"release,omitempty"`
}

// ParseEVR splits "[epoch:]version[-release]".
func ParseEVR(s string) EVR {
	var e EVR
	if i := strings.IndexByte(s, ':'); i >= 0 && allDigits(s[:i]) {
		e.Epoch, s = s[:i], s[i+1:]
	}
	if i := strings.LastIndexByte(s, '-'); i >= 0 {
		e.Version, e.Release = s[:i], s[i+1:]
	} else {
		e.Version = s
	}
	return e
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// String formats the EVR as rpm does, leaving out a zero epoch.
func (e EVR) String() string {
	s := e.Version
	if e.Epoch != "" && e.Epoch != "0" {
		s = e.Epoch + ":" + s
	}
	if e.Release != "" {
		s += "-" + e.Release
	}
	return s
}

func epochNum(s string) uint64 {
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}

// CompareEVR compares a and b: epochs numerically, then versions and, when
// both have one, releases with Vercmp.
func CompareEVR(a, b EVR) int {
	ea, eb := epochNum(a.Epoch), epochNum(b.Epoch)
	if ea != eb {
		if ea < eb {
			return -1
		}
		return 1
	}
	if c := Vercmp(a.Version, b.Version); c != 0 {
		return c
	}
	if a.Release == "" || b.Release == "" {
		return 0
	}
	return Vercmp(a.Release, b.Release)
}

// compareFull compares two complete EVRs where a missing release sorts
// first (package ordering rather than dependency matching).
func compareFull(a, b EVR) int {
	if c := CompareEVR(EVR{a.Epoch, a.Version, ""}, EVR{b.Epoch, b.Version, ""}); c != 0 {
		return c
	}
	return Vercmp(a.Release, b.Release)
}
