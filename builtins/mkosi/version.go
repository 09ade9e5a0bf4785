package mkosi

import "strings"

// CompareVersions compares two versions by the UAPI Version Format
// Specification (as mkosi's GenericVersion does) and returns -1, 0 or +1.
func CompareVersions(a, b string) int {
	valid := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("~-^.", c) >= 0
	}
	strip := func(s string) string {
		for i := 0; i < len(s); i++ {
			if valid(s[i]) {
				return s[i:]
			}
		}
		return ""
	}
	prefix := func(s string, f func(byte) bool) string {
		i := 0
		for i < len(s) && f(s[i]) {
			i++
		}
		return s[:i]
	}
	isDigit := func(c byte) bool { return c >= '0' && c <= '9' }
	isLetter := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	for {
		a, b = strip(a), strip(b)
		for _, sep := range []byte{'~'} {
			ha, hb := strings.HasPrefix(a, string(sep)), strings.HasPrefix(b, string(sep))
			switch {
			case ha && hb:
				a, b = a[1:], b[1:]
			case ha:
				return -1
			case hb:
				return 1
			}
		}
		switch {
		case a == "" && b == "":
			return 0
		case a == "":
			return -1
		case b == "":
			return 1
		}
		for _, sep := range []byte{'-', '^', '.'} {
			ha, hb := a != "" && a[0] == sep, b != "" && b[0] == sep
			switch {
			case ha && hb:
				a, b = a[1:], b[1:]
			case ha:
				return -1
			case hb:
				return 1
			}
		}
		da, db := prefix(a, isDigit), prefix(b, isDigit)
		if da != "" || db != "" {
			na, nb := strings.TrimLeft(da, "0"), strings.TrimLeft(db, "0")
			if len(na) != len(nb) {
				if len(na) < len(nb) {
					return -1
				}
				return 1
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[len(da):], b[len(db):]
			continue
		}
		la, lb := prefix(a, isLetter), prefix(b, isLetter)
		if c := strings.Compare(la, lb); c != 0 {
			return c
		}
		a, b = a[len(la):], b[len(lb):]
	}
}
