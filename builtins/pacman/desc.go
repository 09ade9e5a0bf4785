package pacman

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// desc is one parsed desc-format file ("%NAME%" headers, one value per
// line, a blank line after each section), as sync databases and the local
// database store package records.
type desc map[string][]string

// eachDescValue calls fn with every value of a desc-format file and the
// section it is in; fn also sees each section header with value nil.
func eachDescValue(b []byte, fn func(key string, value []byte) error) error {
	key := ""
	for line := 1; len(b) > 0; line++ {
		var raw []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			raw, b = b[:i], b[i+1:]
		} else {
			raw, b = b, nil
		}
		raw = bytes.TrimSuffix(raw, []byte("\r"))
		var err error
		switch {
		case len(raw) == 0:
			key = ""
		case key == "" && len(raw) > 2 && raw[0] == '%' && raw[len(raw)-1] == '%':
			key = string(raw[1 : len(raw)-1])
			err = fn(key, nil)
		case key == "":
			return fmt.Errorf("line %d: value %q outside a %%SECTION%%", line, truncate(string(raw)))
		default:
			err = fn(key, raw)
		}
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
	}
	return nil
}

// parseDesc reads a desc-format file into d; a header must be "%UPPER%".
func parseDesc(b []byte, d desc) error {
	return eachDescValue(b, func(key string, v []byte) error {
		if v == nil {
			if _, ok := d[key]; !ok {
				d[key] = nil
			}
			return nil
		}
		d[key] = append(d[key], string(v))
		return nil
	})
}

// one returns the single value of a section ("" when absent).
func (d desc) one(k string) string {
	if v := d[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// truncate shortens s for an error message.
func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// Pkg is one package of a sync database.
type Pkg struct {
	Name, Base, Version, Desc, Arch string
	// Filename is the package file, relative to the repository URL.
	Filename string
	// CSize is the package file's size, ISize what it installs.
	CSize, ISize int64
	SHA256       string
	// PGPSig is the package's detached signature (base64) when the
	// database carries it; otherwise it is Filename + ".sig" beside the
	// package.
	PGPSig                                 string
	BuildDate                              int64
	Groups                                 []string
	Depends, Provides, Conflicts, Replaces []Dep
}

// syncEntry is one package entry of a sync database being read.
type syncEntry struct {
	dir string
	p   Pkg
}

// parse reads a desc (or old-style depends) file of the entry straight
// into its Pkg: a database has tens of thousands of entries, and a map
// per entry costs more than the parsing.
func (e *syncEntry) parse(b []byte) error {
	p := &e.p
	return eachDescValue(b, func(key string, raw []byte) error {
		if raw == nil {
			return nil
		}
		v := string(raw)
		var err error
		switch key {
		case "NAME":
			p.Name = v
		case "BASE":
			p.Base = v
		case "VERSION":
			p.Version = v
		case "DESC":
			p.Desc = v
		case "ARCH":
			p.Arch = v
		case "FILENAME":
			p.Filename = v
		case "SHA256SUM":
			p.SHA256 = strings.ToLower(v)
		case "PGPSIG":
			p.PGPSig = v
		case "GROUPS":
			p.Groups = append(p.Groups, v)
		case "CSIZE":
			p.CSize, err = strconv.ParseInt(v, 10, 64)
		case "ISIZE":
			p.ISize, err = strconv.ParseInt(v, 10, 64)
		case "BUILDDATE":
			p.BuildDate, err = strconv.ParseInt(v, 10, 64)
		case "DEPENDS", "PROVIDES", "CONFLICTS", "REPLACES":
			d, derr := ParseDep(v)
			if derr != nil {
				return fmt.Errorf("%%%s%%: %w", key, derr)
			}
			switch key {
			case "DEPENDS":
				p.Depends = append(p.Depends, d)
			case "PROVIDES":
				p.Provides = append(p.Provides, d)
			case "CONFLICTS":
				p.Conflicts = append(p.Conflicts, d)
			default:
				p.Replaces = append(p.Replaces, d)
			}
		}
		if err != nil {
			return fmt.Errorf("%%%s%%: %q is not a number", key, v)
		}
		return nil
	})
}
