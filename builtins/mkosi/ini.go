package mkosi

import (
	"strings"
	"unicode"

	"github.com/sxb-build/sxb/internal/diag"
)

// Entry is one assignment (or the end of a section) in an mkosi
// configuration file.
type Entry struct {
	// Section is the name of the section the entry belongs to.
	Section string
	// Key is the setting name as written; empty for a section end marker.
	Key string
	// Value is the raw value; continuation lines are joined with "\n".
	Value string
	// Pos is the position of the key.
	Pos diag.Pos
	// Comments are the comment lines ("# ..." without the "#") written
	// directly above the assignment and after it on the same line.
	Comments []string
}

// End reports whether e marks the end of a section.
func (e *Entry) End() bool { return e.Key == "" && e.Value == "" }

// ParseINI splits data, the contents of file, into entries the way mkosi's
// own INI reader does. (It is not gopkg.in/ini.v1: mkosi's format repeats
// keys to append, resets lists with an empty "Key=", continues values on
// indented lines and is case-sensitive, and every entry needs its
// file:line for diagnostics and its comments for `sxb convert`; ini.v1
// merges duplicate keys and keeps neither.) The rules: the common
// indentation is removed, "#" starts a comment anywhere on a line, an
// indented line continues the open value,
// and every section is closed by an End entry. keep decides which sections
// are read; lines of other sections are skipped without checks.
func ParseINI(file string, data []byte, keep func(section string) bool) ([]Entry, error) {
	lines := splitLines(string(data))
	indent := commonIndent(lines)
	var (
		out      []Entry
		section  string
		cur      *Entry
		comments []string
	)
	flush := func() {
		if cur != nil {
			out = append(out, *cur)
			cur = nil
		}
	}
	for i, raw := range lines {
		line := raw
		if len(line) >= len(indent) && strings.HasPrefix(line, indent) {
			line = line[len(indent):]
		} else if strings.TrimSpace(line) == "" {
			line = ""
		}
		col := len(raw) - len(line)
		comment := ""
		hasComment := false
		if c := strings.IndexByte(line, '#'); c >= 0 {
			comment = strings.TrimSpace(line[c+1:])
			hasComment = true
			line = line[:c]
		}
		if strings.TrimSpace(line) == "" {
			if hasComment {
				comments = append(comments, comment)
			} else {
				// A blank line detaches comments from what follows.
				comments = nil
			}
			continue
		}
		pos := diag.Pos{File: file, Line: i + 1}
		if cur != nil && unicode.IsSpace(rune(line[0])) {
			cur.Value += "\n" + strings.TrimSpace(line)
			if hasComment {
				cur.Comments = append(cur.Comments, comment)
			}
			continue
		}
		flush()
		lead := len(line) - len(strings.TrimLeftFunc(line, unicode.IsSpace))
		pos.Col = col + lead + 1
		line = strings.TrimSpace(line)
		if line[0] == '[' {
			if line[len(line)-1] != ']' {
				return nil, diag.Errorf(pos, "%s is not a valid section", line)
			}
			if section != "" {
				out = append(out, Entry{Section: section, Pos: pos})
			}
			comments = nil // comments above a header describe the section
			section = strings.TrimSpace(line[1 : len(line)-1])
			if section == "" {
				return nil, diag.Errorf(pos, "section name cannot be empty or whitespace")
			}
			continue
		}
		if section == "" {
			return nil, diag.Errorf(pos, "setting %s is located outside of a section", line)
		}
		if keep != nil && !keep(section) {
			comments = nil
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, diag.Errorf(pos, "setting %s must be followed by '='", key)
		}
		if strings.TrimSpace(key) == "" {
			return nil, diag.Errorf(pos, "missing setting name before '=' in %s", line)
		}
		cur = &Entry{Section: section, Key: strings.TrimSpace(key), Value: strings.TrimSpace(value), Pos: pos, Comments: comments}
		comments = nil
		if hasComment {
			cur.Comments = append(cur.Comments, comment)
		}
	}
	flush()
	if section != "" && (keep == nil || keep(section)) {
		out = append(out, Entry{Section: section, Pos: diag.Pos{File: file, Line: len(lines)}})
	}
	return out, nil
}

// splitLines splits like Python's str.splitlines for the line breaks that
// occur in practice (\n, \r\n, \r, \v, \f).
func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\n', '\v', '\f':
			out = append(out, s[start:i])
			start = i + 1
		case '\r':
			out = append(out, s[start:i])
			if i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// commonIndent is the whitespace prefix shared by all non-blank lines, as
// textwrap.dedent computes it.
func commonIndent(lines []string) string {
	var margin string
	first := true
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		ind := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		if first {
			margin, first = ind, false
			continue
		}
		for !strings.HasPrefix(ind, margin) {
			margin = margin[:len(margin)-1]
		}
	}
	return margin
}
