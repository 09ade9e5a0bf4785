// Package label parses and prints target labels ("//pkg:name") and command
// line target patterns ("//...", "//pkg/...", "//pkg:all", relative forms).
//
// A package is a workspace-relative directory path using "/" ("" is the
// workspace root). A target name is a file-name-like word: it becomes the
// name of the target's output, so it may not contain "/".
package label

import (
	"fmt"
	"path"
	"strings"
)

// Label names one target: the package directory (workspace-relative, "" for
// the root package) and the target's name within it.
type Label struct {
	Pkg  string
	Name string
}

// String returns the canonical form "//pkg:name".
func (l Label) String() string { return "//" + l.Pkg + ":" + l.Name }

// Less orders labels by package, then name.
func (l Label) Less(m Label) bool {
	if l.Pkg != m.Pkg {
		return l.Pkg < m.Pkg
	}
	return l.Name < m.Name
}

// MarshalText makes labels print as "//pkg:name" in JSON.
func (l Label) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// Error describes a malformed label or pattern: which part is wrong.
type Error struct {
	Input string // the text as written
	Part  string // "package", "target name", "pattern", ...
	Msg   string
}

// Error returns `invalid label "<input>": <part>: <msg>`.
func (e *Error) Error() string {
	if e.Part == "" {
		return fmt.Sprintf("invalid label %q: %s", e.Input, e.Msg)
	}
	return fmt.Sprintf("invalid label %q: %s: %s", e.Input, e.Part, e.Msg)
}

// ValidatePackage checks a workspace-relative package path.
func ValidatePackage(pkg string) error {
	if pkg == "" {
		return nil
	}
	if strings.HasPrefix(pkg, "/") {
		return fmt.Errorf("package %q must not start with \"/\" (after \"//\")", pkg)
	}
	if strings.HasSuffix(pkg, "/") {
		return fmt.Errorf("package %q must not end with \"/\"", pkg)
	}
	for _, c := range strings.Split(pkg, "/") {
		switch c {
		case "":
			return fmt.Errorf("package %q has an empty path component", pkg)
		case ".", "..":
			return fmt.Errorf("package %q may not contain %q components", pkg, c)
		}
		for _, r := range c {
			if !pkgChar(r) {
				return fmt.Errorf("package %q: character %q is not allowed", pkg, r)
			}
		}
	}
	return nil
}

// ValidateName checks a target name.
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("target name is empty")
	case name == "." || name == "..":
		return fmt.Errorf("target name %q is not allowed", name)
	case strings.HasPrefix(name, "-") || strings.HasPrefix(name, "."):
		return fmt.Errorf("target name %q must start with a letter, digit or \"_\"", name)
	}
	for _, r := range name {
		if r == '/' {
			return fmt.Errorf("target name %q may not contain \"/\"", name)
		}
		if !nameChar(r) {
			return fmt.Errorf("target name %q: character %q is not allowed", name, r)
		}
	}
	return nil
}

func pkgChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		r == '_' || r == '-' || r == '.' || r == '+' || r == '@'
}

func nameChar(r rune) bool {
	return pkgChar(r) || r == '='
}

// Parse parses a label as written in a BUILD.star attribute or load() of
// package pkg: "//p:n", "//p" (= "//p:<last component of p>"), ":n" and
// "n" (both in package pkg).
func Parse(s, pkg string) (Label, error) {
	if s == "" {
		return Label{}, &Error{Input: s, Msg: "empty label"}
	}
	if strings.HasPrefix(s, "@") {
		return Label{}, &Error{Input: s, Part: "repository", Msg: "external repositories (@repo) are not supported"}
	}
	var p, n string
	switch {
	case strings.HasPrefix(s, "//"):
		rest := s[2:]
		if i := strings.IndexByte(rest, ':'); i >= 0 {
			p, n = rest[:i], rest[i+1:]
			if n == "" {
				return Label{}, &Error{Input: s, Part: "target name", Msg: "empty after \":\""}
			}
		} else {
			p = rest
			if p == "" {
				return Label{}, &Error{Input: s, Part: "target name", Msg: "\"//\" alone names no target (write \"//:name\")"}
			}
			n = path.Base(p)
		}
	case strings.HasPrefix(s, ":"):
		p, n = pkg, s[1:]
		if n == "" {
			return Label{}, &Error{Input: s, Part: "target name", Msg: "empty after \":\""}
		}
	case strings.HasPrefix(s, "/"):
		return Label{}, &Error{Input: s, Part: "package", Msg: "labels start with \"//\" (workspace root) or \":\" (this package)"}
	default:
		if strings.ContainsAny(s, ":/") {
			return Label{}, &Error{Input: s, Part: "package", Msg: "a label naming another package must start with \"//\""}
		}
		p, n = pkg, s
	}
	if err := ValidatePackage(p); err != nil {
		return Label{}, &Error{Input: s, Part: "package", Msg: stripPart(err, "package")}
	}
	if err := ValidateName(n); err != nil {
		return Label{}, &Error{Input: s, Part: "target name", Msg: stripPart(err, "target name")}
	}
	return Label{Pkg: p, Name: n}, nil
}

// ParseFile parses the label of a file in a package, as load() takes it:
// like Parse, but the name may be a relative path ("//pkg:sub/defs.star").
func ParseFile(s, pkg string) (Label, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 || !strings.Contains(s[i+1:], "/") {
		return Parse(s, pkg)
	}
	head, name := s[:i+1], s[i+1:]
	for _, c := range strings.Split(name, "/") {
		if err := ValidateName(c); err != nil {
			return Label{}, &Error{Input: s, Part: "file name", Msg: fmt.Sprintf("%q: %s", name, stripPart(err, "target name"))}
		}
	}
	l, err := Parse(head+"x", pkg)
	if err != nil {
		return Label{}, err
	}
	l.Name = name
	return l, nil
}

// stripPart turns `package "x" has ...` into `"x" has ...` for use after
// a Part.
func stripPart(err error, part string) string {
	return strings.TrimPrefix(err.Error(), part+" ")
}

// Pattern is a parsed command-line target pattern, made absolute.
type Pattern struct {
	// Pkg is the package (or, with Recursive, the directory under which all
	// packages match).
	Pkg string
	// Name is the single target matched; "" with All or Recursive.
	Name string
	// All matches every target of package Pkg ("//pkg:all", "//pkg:*").
	All bool
	// Recursive matches every target of every package at or under Pkg
	// ("//pkg/...").
	Recursive bool
}

// String returns the canonical form of the pattern.
func (p Pattern) String() string {
	switch {
	case p.Recursive && p.Pkg == "":
		return "//..."
	case p.Recursive:
		return "//" + p.Pkg + "/..."
	case p.All:
		return "//" + p.Pkg + ":all"
	}
	return Label{p.Pkg, p.Name}.String()
}

// ParsePattern parses a command-line target pattern. cwd is the package-style
// path of the current directory relative to the workspace root ("" at the
// root); patterns not starting with "//" are relative to it:
//
//	//...  //pkg/...  //pkg:all  //pkg:*  //pkg:name  //pkg
//	...    sub/...    :all      :name    sub:name   sub   (relative)
//
// A relative "sub" names the package cwd/sub (its default target), like
// "//cwd/sub".
func ParsePattern(s, cwd string) (Pattern, error) {
	if s == "" {
		return Pattern{}, &Error{Input: s, Part: "pattern", Msg: "empty pattern"}
	}
	if strings.HasPrefix(s, "@") {
		return Pattern{}, &Error{Input: s, Part: "repository", Msg: "external repositories (@repo) are not supported"}
	}
	var rel string
	abs := strings.HasPrefix(s, "//")
	if abs {
		rel = s[2:]
	} else {
		if strings.HasPrefix(s, "/") {
			return Pattern{}, &Error{Input: s, Part: "package", Msg: "absolute patterns start with \"//\" (workspace root)"}
		}
		rel = s
	}
	pkgPart, name, hasColon := strings.Cut(rel, ":")
	// Recursive: "...", "pkg/...".
	if pkgPart == "..." || strings.HasSuffix(pkgPart, "/...") {
		if hasColon && name != "all" && name != "*" {
			return Pattern{}, &Error{Input: s, Part: "target name", Msg: fmt.Sprintf("%q cannot follow \"...\" (only \":all\" or \":*\")", name)}
		}
		dir := strings.TrimSuffix(strings.TrimSuffix(pkgPart, "..."), "/")
		p, err := joinPkg(s, cwd, dir, abs)
		if err != nil {
			return Pattern{}, err
		}
		return Pattern{Pkg: p, Recursive: true}, nil
	}
	if strings.Contains(pkgPart, "...") {
		return Pattern{}, &Error{Input: s, Part: "package", Msg: "\"...\" may only be the last path component"}
	}
	p, err := joinPkg(s, cwd, pkgPart, abs)
	if err != nil {
		return Pattern{}, err
	}
	if !hasColon {
		if pkgPart == "" {
			if abs {
				return Pattern{}, &Error{Input: s, Part: "target name", Msg: "\"//\" alone names no target (write \"//:all\" or \"//...\")"}
			}
			return Pattern{}, &Error{Input: s, Part: "pattern", Msg: "empty pattern"}
		}
		return Pattern{Pkg: p, Name: path.Base(p)}, nil
	}
	if name == "" {
		return Pattern{}, &Error{Input: s, Part: "target name", Msg: "empty after \":\""}
	}
	if name == "all" || name == "*" {
		return Pattern{Pkg: p, All: true}, nil
	}
	if err := ValidateName(name); err != nil {
		return Pattern{}, &Error{Input: s, Part: "target name", Msg: stripPart(err, "target name")}
	}
	return Pattern{Pkg: p, Name: name}, nil
}

func joinPkg(input, cwd, p string, abs bool) (string, error) {
	if !abs && cwd != "" {
		if p == "" {
			p = cwd
		} else {
			if err := ValidatePackage(p); err != nil {
				return "", &Error{Input: input, Part: "package", Msg: stripPart(err, "package")}
			}
			p = cwd + "/" + p
		}
	}
	if err := ValidatePackage(p); err != nil {
		return "", &Error{Input: input, Part: "package", Msg: stripPart(err, "package")}
	}
	return p, nil
}

// Matches reports whether the pattern matches target l.
func (p Pattern) Matches(l Label) bool {
	switch {
	case p.Recursive:
		return p.Pkg == "" || l.Pkg == p.Pkg || strings.HasPrefix(l.Pkg, p.Pkg+"/")
	case p.All:
		return l.Pkg == p.Pkg
	}
	return l.Pkg == p.Pkg && l.Name == p.Name
}
