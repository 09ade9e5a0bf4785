package deb

import (
	"io"
	"strings"

	"github.com/sxb-build/sxb/builtins/tree"
)

// Copyright is what a machine-readable debian/copyright file (DEP-5)
// declares about licences.
type Copyright struct {
	// Licenses are the licence lines (the first line of each License
	// field) of the header and Files paragraphs, in file order, each once:
	// "GPL-2+", "BSD-3-clause or Expat", ...
	Licenses []string
	// Texts maps the short names of standalone License paragraphs to
	// their text.
	Texts map[string]string
}

// ParseCopyright reads a DEP-5 copyright file. It reports false for a
// free-form file (no Format field in the first paragraph, or not deb822 at
// all): such a file declares nothing a machine can read.
func ParseCopyright(b []byte) (*Copyright, bool) {
	c := &Copyright{Texts: map[string]string{}}
	first, dep5 := true, false
	seen := map[string]bool{}
	err := parseParagraphs(b, func(_ int, p *Paragraph) error {
		if first {
			first = false
			dep5 = p.Get("Format") != ""
		}
		lic := p.Get("License")
		if lic == "" {
			return nil
		}
		name, text, _ := strings.Cut(lic, "\n")
		name = strings.TrimSpace(name)
		if name == "" {
			return nil
		}
		if p.Get("Files") == "" && p.Get("Format") == "" {
			if text != "" {
				c.Texts[name] = text
			}
			return nil
		}
		if !seen[name] {
			seen[name] = true
			c.Licenses = append(c.Licenses, name)
		}
		return nil
	})
	if err != nil || !dep5 {
		return nil, false
	}
	return c, true
}

// ReadCopyright reads and parses usr/share/doc/<pkg>/copyright in the tree
// at root, following symlinks inside the tree only. It reports false when
// the file is missing or not machine-readable.
func ReadCopyright(root, pkg string) (*Copyright, bool) {
	if strings.ContainsAny(pkg, "/\x00") || pkg == "" || pkg == "." || pkg == ".." {
		return nil, false
	}
	rt, err := tree.OpenRoot(root)
	if err != nil {
		return nil, false
	}
	defer rt.Close()
	f, err := rt.Open("usr/share/doc/" + pkg + "/copyright")
	if err != nil {
		return nil, false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > 16<<20 {
		return nil, false
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, false
	}
	return ParseCopyright(b)
}
