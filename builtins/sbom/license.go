package sbom

import (
	"regexp"
	"strings"

	"github.com/sxb-build/sxb/builtins/deb"
)

// License is a package's declared licence as an SPDX expression, with the
// text of every LicenseRef-… it uses (SPDX requires their extracted text).
type License struct {
	// Expression is the SPDX licence expression; "" means none declared
	// (NOASSERTION).
	Expression string
	// Refs maps each LicenseRef-… identifier of Expression to its text.
	Refs map[string]string
}

// Debian's short licence names (DEP-5) that are not SPDX identifiers as
// they are written. GPL-family names are handled by gnuFamily.
var debianNames = map[string]string{
	"apache-2.0": "Apache-2.0", "apache-2": "Apache-2.0", "artistic": "Artistic-1.0-Perl", "artistic-1.0": "Artistic-1.0",
	"artistic-2.0": "Artistic-2.0", "bsd-2-clause": "BSD-2-Clause", "bsd-3-clause": "BSD-3-Clause",
	"bsd-4-clause": "BSD-4-Clause", "expat": "MIT", "mit": "MIT", "isc": "ISC", "zlib": "Zlib",
	"mpl-1.1": "MPL-1.1", "mpl-2.0": "MPL-2.0", "cc0-1.0": "CC0-1.0", "cc0": "CC0-1.0", "psf-2": "PSF-2.0",
	"python-2.0": "Python-2.0", "openssl": "OpenSSL", "curl": "curl", "x11": "X11", "bsl-1.0": "BSL-1.0",
	"unicode-dfs-2016": "Unicode-DFS-2016", "fsfap": "FSFAP", "fsful": "FSFUL", "fsfullr": "FSFULLR",
	"cc-by-3.0": "CC-BY-3.0", "cc-by-4.0": "CC-BY-4.0", "cc-by-sa-3.0": "CC-BY-SA-3.0", "cc-by-sa-4.0": "CC-BY-SA-4.0",
	"unlicense": "Unlicense", "wtfpl": "WTFPL", "ruby": "Ruby", "ofl-1.1": "OFL-1.1", "sil-ofl-1.1": "OFL-1.1",
	"bzip2-1.0.6": "bzip2-1.0.6", "ijg": "IJG", "libpng": "Libpng", "libpng-2.0": "libpng-2.0",
	"tcl": "TCL", "beerware": "Beerware", "0bsd": "0BSD", "ncsa": "NCSA", "postgresql": "PostgreSQL",
	"sgi-b-2.0": "SGI-B-2.0", "epl-1.0": "EPL-1.0", "epl-2.0": "EPL-2.0", "cddl-1.0": "CDDL-1.0",
}

// gnuFamily matches GNU licence names as Debian writes them: GPL-2+,
// LGPL-2.1, GFDL-1.3-no-invariants+, ...
var gnuFamily = regexp.MustCompile(`^(?i)(a?gpl|lgpl|gfdl)-?([0-9](?:\.[0-9])?)(\.0)?(?:-only|-or-later)?(\+)?$`)

// spdxID matches what may stand as one licence identifier in an SPDX
// expression.
var spdxID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.+-]*$`)

// spdxName maps one Debian short name to an SPDX identifier, or "".
func spdxName(name string) string {
	if m := gnuFamily.FindStringSubmatch(name); m != nil {
		fam := strings.ToUpper(m[1])
		ver := m[2]
		if !strings.Contains(ver, ".") {
			ver += ".0"
		}
		if m[4] == "+" || strings.HasSuffix(strings.ToLower(name), "-or-later") {
			return fam + "-" + ver + "-or-later"
		}
		return fam + "-" + ver + "-only"
	}
	if id, ok := debianNames[strings.ToLower(name)]; ok {
		return id
	}
	return ""
}

// licenseRef makes a LicenseRef identifier of a name.
func licenseRef(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	id := b.String()
	for strings.Contains(id, "--") {
		id = strings.ReplaceAll(id, "--", "-")
	}
	return "LicenseRef-" + strings.Trim(id, "-")
}

// DebianLicense turns the licences a DEP-5 copyright file declares into
// one SPDX expression: each Files paragraph's licence (with Debian's "or",
// "and" and commas), all of them joined by AND. Names SPDX does not know,
// and "X with Y exception" clauses, become LicenseRef-… identifiers whose
// text is the file's standalone License paragraph or a pointer to the
// file.
func DebianLicense(c *deb.Copyright, pkg string) License {
	l := License{Refs: map[string]string{}}
	var parts []string
	seen := map[string]bool{}
	for _, line := range c.Licenses {
		e := l.debianExpression(line, c, pkg)
		if e == "" || seen[e] {
			continue
		}
		seen[e] = true
		parts = append(parts, e)
	}
	if len(parts) > 1 {
		for i, p := range parts {
			if strings.Contains(p, " OR ") {
				parts[i] = "(" + p + ")"
			}
		}
	}
	l.Expression = strings.Join(parts, " AND ")
	return l
}

func (l *License) debianExpression(line string, c *deb.Copyright, pkg string) string {
	// DEP-5: "and" binds tighter than "or", except that a comma before
	// the operator makes it bind loosest ("A or B, and C" is (A or B)
	// and C).
	segs := strings.Split(line, ",")
	var out []string
	for i, seg := range segs {
		words := strings.Fields(seg)
		op := ""
		if i > 0 && len(words) > 0 && (strings.EqualFold(words[0], "and") || strings.EqualFold(words[0], "or")) {
			op, words = strings.ToUpper(words[0]), words[1:]
		}
		e := l.terms(words, c, pkg)
		if e == "" {
			continue
		}
		if len(segs) > 1 && strings.Contains(e, " ") {
			e = "(" + e + ")"
		}
		if len(out) > 0 {
			if op == "" {
				op = "AND"
			}
			out = append(out, op)
		}
		out = append(out, e)
	}
	return strings.Join(out, " ")
}

// terms converts the words of one comma-free part of a licence line.
func (l *License) terms(words []string, c *deb.Copyright, pkg string) string {
	ref := func(name string) string {
		id := licenseRef(name)
		text := c.Texts[name]
		if text == "" {
			text = "License \"" + name + "\" as declared in /usr/share/doc/" + pkg + "/copyright."
		}
		l.Refs[id] = text
		return id
	}
	var out []string
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch strings.ToLower(w) {
		case "or", "and":
			out = append(out, strings.ToUpper(w))
			continue
		}
		// "NAME with SOMETHING exception" is one term.
		if i+1 < len(words) && strings.EqualFold(words[i+1], "with") {
			j := i + 2
			for j < len(words) && !strings.EqualFold(words[j-1], "exception") {
				j++
			}
			out = append(out, ref(strings.Join(words[i:j], " ")))
			i = j - 1
			continue
		}
		if id := spdxName(w); id != "" {
			out = append(out, id)
		} else {
			out = append(out, ref(w))
		}
	}
	// Drop dangling operators ("GPL-2+ and" from a broken line).
	for len(out) > 0 && (out[0] == "OR" || out[0] == "AND") {
		out = out[1:]
	}
	for len(out) > 0 && (out[len(out)-1] == "OR" || out[len(out)-1] == "AND") {
		out = out[:len(out)-1]
	}
	return strings.Join(out, " ")
}

// ExpressionLicense takes a licence string that should already be an SPDX
// expression (rpm's License tag, pacman's %LICENSE%): kept when every term
// looks like an identifier, else the whole string becomes one
// LicenseRef-… with the string as its text.
func ExpressionLicense(s string) License {
	s = strings.TrimSpace(s)
	if s == "" {
		return License{}
	}
	ok := true
	for _, w := range strings.Fields(strings.NewReplacer("(", " ", ")", " ").Replace(s)) {
		if w != "AND" && w != "OR" && w != "WITH" && !spdxID.MatchString(w) {
			ok = false
		}
	}
	if ok {
		return License{Expression: s}
	}
	id := licenseRef(s)
	return License{Expression: id, Refs: map[string]string{id: s}}
}

// PacmanLicense reads the %LICENSE% entries of a pacman local database
// desc file (var/lib/pacman/local/<name>-<version>/desc), joined by AND.
func PacmanLicense(desc []byte) License {
	var lics []string
	in := false
	for _, line := range strings.Split(string(desc), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "%") && strings.HasSuffix(line, "%"):
			in = line == "%LICENSE%"
		case in && line != "":
			lics = append(lics, line)
		}
	}
	if len(lics) == 0 {
		return License{}
	}
	for i, x := range lics {
		if strings.Contains(x, " ") {
			lics[i] = "(" + x + ")"
		}
	}
	return ExpressionLicense(strings.Join(lics, " AND "))
}
