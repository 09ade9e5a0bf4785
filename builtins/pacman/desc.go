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

// parseDesc reads a desc-format file. Lines before the first header and
// unknown sections are kept as they are; a header must be "%UPPER%".
func parseDesc(b []byte, d desc) error {
	key := ""
	for line := 1; len(b) > 0; line++ {
		var raw []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			raw, b = b[:i], b[i+1:]
		} else {
			raw, b = b, nil
		}
		l := string(bytes.TrimSuffix(raw, []byte("\r")))
		switch {
		case l == "":
			key = ""
		case key == "" && len(l) > 2 && l[0] == '%' && l[len(l)-1] == '%':
			key = l[1 : len(l)-1]
			if _, ok := d[key]; !ok {
				d[key] = nil
			}
		case key == "":
			return fmt.Errorf("line %d: value %q outside a %%SECTION%%", line, truncate(l))
		default:
			d[key] = append(d[key], l)
		}
	}
	return nil
}

// one returns the single value of a section ("" when absent).
func (d desc) one(k string) string {
	if v := d[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (d desc) int(k string) (int64, error) {
	s := d.one(k)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%%%s%%: %q is not a number", k, s)
	}
	return n, nil
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

// pkgFromDesc builds a Pkg from the desc (and, in old databases, depends)
// sections of one database entry.
func pkgFromDesc(d desc) (Pkg, error) {
	p := Pkg{Name: d.one("NAME"), Base: d.one("BASE"), Version: d.one("VERSION"), Desc: d.one("DESC"),
		Arch: d.one("ARCH"), Filename: d.one("FILENAME"), SHA256: strings.ToLower(d.one("SHA256SUM")),
		PGPSig: d.one("PGPSIG"), Groups: d["GROUPS"]}
	if p.Name == "" || p.Version == "" {
		return Pkg{}, fmt.Errorf("entry without %%NAME%% or %%VERSION%%")
	}
	var err error
	if p.CSize, err = d.int("CSIZE"); err != nil {
		return Pkg{}, err
	}
	if p.ISize, err = d.int("ISIZE"); err != nil {
		return Pkg{}, err
	}
	if p.BuildDate, err = d.int("BUILDDATE"); err != nil {
		return Pkg{}, err
	}
	for _, f := range []struct {
		key string
		dst *[]Dep
	}{{"DEPENDS", &p.Depends}, {"PROVIDES", &p.Provides}, {"CONFLICTS", &p.Conflicts}, {"REPLACES", &p.Replaces}} {
		if *f.dst, err = parseDeps(d[f.key], "%"+f.key+"%"); err != nil {
			return Pkg{}, err
		}
	}
	return p, nil
}
