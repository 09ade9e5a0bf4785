package deb

import (
	"bytes"
	"fmt"
	"strings"
)

// Paragraph is one deb822 stanza: fields in file order. Field names keep
// their spelling; Get is case-insensitive as Debian policy requires.
type Paragraph struct {
	Fields []Field
}

// Field is one "Name: value" entry of a Paragraph. Multi-line values keep
// their continuation lines (each starting with a space) joined by "\n".
type Field struct {
	Name, Value string
}

// Get returns the value of the field name (case-insensitive), or "".
func (p *Paragraph) Get(name string) string {
	for _, f := range p.Fields {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// parseParagraphs splits deb822 text into paragraphs. Comment lines ("#")
// are skipped. A continuation line before any field is an error naming the
// line.
func parseParagraphs(data []byte, fn func(line int, p *Paragraph) error) error {
	var cur Paragraph
	start := 0
	lineNo := 0
	flush := func() error {
		if len(cur.Fields) == 0 {
			return nil
		}
		p := cur
		cur = Paragraph{}
		return fn(start, &p)
	}
	for len(data) > 0 {
		lineNo++
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		line = bytes.TrimRight(line, "\r")
		if len(bytes.TrimSpace(line)) == 0 {
			if err := flush(); err != nil {
				return err
			}
			continue
		}
		if line[0] == '#' {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(cur.Fields) == 0 {
				return fmt.Errorf("line %d: continuation line outside a field", lineNo)
			}
			f := &cur.Fields[len(cur.Fields)-1]
			f.Value += "\n" + string(line)
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return fmt.Errorf("line %d: not a \"Field: value\" line: %q", lineNo, truncate(string(line)))
		}
		if len(cur.Fields) == 0 {
			start = lineNo
		}
		cur.Fields = append(cur.Fields, Field{
			Name:  string(line[:colon]),
			Value: string(bytes.TrimSpace(line[colon+1:])),
		})
	}
	return flush()
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// Dep is one alternative of a dependency: a package name with an optional
// architecture qualifier and version relation.
type Dep struct {
	Name string
	// ArchQual is the Multi-Arch qualifier ("any", "native", an
	// architecture) or "".
	ArchQual string
	// Op is one of "", "<<", "<=", "=", ">=", ">>".
	Op      string
	Version string
}

// String formats d as in a control file: "libjq1 (>= 1.6)".
func (d Dep) String() string {
	s := d.Name
	if d.ArchQual != "" {
		s += ":" + d.ArchQual
	}
	if d.Op != "" {
		s += " (" + d.Op + " " + d.Version + ")"
	}
	return s
}

// Alt is a list of alternatives ("a | b"); any one satisfies it.
type Alt []Dep

// String formats an alternative group.
func (a Alt) String() string {
	var s []string
	for _, d := range a {
		s = append(s, d.String())
	}
	return strings.Join(s, " | ")
}

// parseDeps parses a relationship field such as Depends. Architecture
// restrictions ("[amd64]") and build profiles ("<!nocheck>") are honoured
// for arch: alternatives restricted to other architectures are dropped.
func parseDeps(s, arch string) ([]Alt, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var out []Alt
	for _, group := range strings.Split(s, ",") {
		group = strings.TrimSpace(group)
		if group == "" {
			continue
		}
		var alt Alt
		for _, one := range strings.Split(group, "|") {
			d, keep, err := parseDep(strings.TrimSpace(one), arch)
			if err != nil {
				return nil, err
			}
			if keep {
				alt = append(alt, d)
			}
		}
		if len(alt) > 0 {
			out = append(out, alt)
		}
	}
	return out, nil
}

func parseDep(s, arch string) (Dep, bool, error) {
	var d Dep
	// Drop build profiles.
	if i := strings.IndexByte(s, '<'); i >= 0 && !strings.Contains(s[:i], "(") {
		s = strings.TrimSpace(s[:i])
	} else if i := strings.Index(s, ")"); i >= 0 {
		if j := strings.IndexByte(s[i:], '<'); j >= 0 {
			s = strings.TrimSpace(s[:i+j])
		}
	}
	keep := true
	if i := strings.IndexByte(s, '['); i >= 0 {
		j := strings.IndexByte(s, ']')
		if j < i {
			return d, false, fmt.Errorf("bad architecture restriction in %q", s)
		}
		keep = archMatches(strings.Fields(s[i+1:j]), arch)
		s = strings.TrimSpace(s[:i] + s[j+1:])
	}
	name := s
	if i := strings.IndexByte(s, '('); i >= 0 {
		j := strings.IndexByte(s, ')')
		if j < i {
			return d, false, fmt.Errorf("bad version relation in %q", s)
		}
		name = strings.TrimSpace(s[:i])
		rel := strings.TrimSpace(s[i+1 : j])
		k := 0
		for k < len(rel) && strings.IndexByte("<=>", rel[k]) >= 0 {
			k++
		}
		d.Op = rel[:k]
		d.Version = strings.TrimSpace(rel[k:])
		switch d.Op {
		case "<":
			d.Op = "<="
		case ">":
			d.Op = ">="
		case "<<", "<=", "=", ">=", ">>":
		default:
			return d, false, fmt.Errorf("bad version relation %q", rel)
		}
		if d.Version == "" {
			return d, false, fmt.Errorf("missing version in %q", s)
		}
	}
	if i := strings.IndexByte(name, ':'); i >= 0 {
		d.ArchQual = name[i+1:]
		name = name[:i]
	}
	if name == "" || strings.ContainsAny(name, " \t") {
		return d, false, fmt.Errorf("bad package name in %q", s)
	}
	d.Name = name
	return d, keep, nil
}

func archMatches(list []string, arch string) bool {
	neg := false
	for _, a := range list {
		if strings.HasPrefix(a, "!") {
			neg = true
			if a[1:] == arch || a[1:] == "any" {
				return false
			}
		} else if a == arch || a == "any" || a == "linux-any" || a == "linux-"+arch || a == "any-"+arch {
			return true
		}
	}
	return neg
}
