package pacman

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"unicode"

	"github.com/sxb-build/sxb/builtins/tree"
)

// libalpm hooks (alpm-hooks(5)) as libalpm 6 reads, matches and orders
// them. Running them is scripts.go's business.

// HookDirs are where libalpm reads hooks, relative to the root, the
// directory that wins first: a hook in /etc/pacman.d/hooks replaces (or,
// without triggers, for instance a symlink to /dev/null, masks) the hook
// of the same name in /usr/share/libalpm/hooks.
var HookDirs = []string{"etc/pacman.d/hooks", "usr/share/libalpm/hooks"}

// hookOp is a set of transaction operations.
type hookOp uint8

const (
	opInstall hookOp = 1 << iota
	opUpgrade
	opRemove
)

// hook is a parsed hook file.
type hook struct {
	name string // file name
	path string // where it was read, relative to the tree
	desc string
	// triggers is empty for a masking hook.
	triggers []trigger
	when     string // PreTransaction or PostTransaction
	exec     string // as written
	argv     []string
	depends  []string
	// needsTargets passes what matched on stdin; abortOnFail makes a
	// failing PreTransaction hook abort the transaction.
	needsTargets, abortOnFail bool
}

type trigger struct {
	ops     hookOp
	typ     string // Package or Path
	targets []string
}

// parseHook reads a hook file, rel naming it in errors. Like libalpm it
// accepts a hook without [Trigger] sections (it masks a hook of the same
// name) and refuses unknown sections, options and values.
func parseHook(rel string, b []byte) (*hook, error) {
	h := &hook{name: rel[strings.LastIndex(rel, "/")+1:], path: rel}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || l[0] == '#' {
			continue
		}
		bad := func(format string, a ...any) error {
			return fmt.Errorf("hook %s line %d: %s", rel, line, fmt.Sprintf(format, a...))
		}
		if l[0] == '[' && l[len(l)-1] == ']' {
			section = l[1 : len(l)-1]
			switch section {
			case "Trigger":
				h.triggers = append(h.triggers, trigger{})
			case "Action":
			default:
				return nil, bad("invalid section %s", section)
			}
			continue
		}
		key, value, hasValue := strings.Cut(l, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if section == "" {
			return nil, bad("invalid option %s (outside a section)", key)
		}
		invalid := func() error { return bad("invalid value %q for %s", value, key) }
		if section == "Trigger" {
			t := &h.triggers[len(h.triggers)-1]
			switch key {
			case "Operation":
				switch value {
				case "Install":
					t.ops |= opInstall
				case "Upgrade":
					t.ops |= opUpgrade
				case "Remove":
					t.ops |= opRemove
				default:
					return nil, invalid()
				}
			case "Type":
				switch value {
				case "Package":
					t.typ = "Package"
				case "Path", "File": // File is the deprecated name of Path
					t.typ = "Path"
				default:
					return nil, invalid()
				}
			case "Target":
				t.targets = append(t.targets, value)
			default:
				return nil, bad("invalid option %s", key)
			}
			continue
		}
		switch key {
		case "When":
			if value != "PreTransaction" && value != "PostTransaction" {
				return nil, invalid()
			}
			h.when = value
		case "Description":
			h.desc = value
		case "Depends":
			h.depends = append(h.depends, value)
		case "AbortOnFail":
			h.abortOnFail = true
		case "NeedsTargets":
			h.needsTargets = true
		case "Exec":
			argv, err := wordSplit(value)
			if err != nil || !hasValue || len(argv) == 0 {
				return nil, invalid()
			}
			h.exec, h.argv = value, argv
		default:
			return nil, bad("invalid option %s", key)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("hook %s: %w", rel, err)
	}
	if len(h.triggers) == 0 {
		return h, nil
	}
	var missing []string
	for i, t := range h.triggers {
		if len(t.targets) == 0 {
			missing = append(missing, fmt.Sprintf("Target in [Trigger] %d", i+1))
		}
		if t.typ == "" {
			missing = append(missing, fmt.Sprintf("Type in [Trigger] %d", i+1))
		}
		if t.ops == 0 {
			missing = append(missing, fmt.Sprintf("Operation in [Trigger] %d", i+1))
		}
	}
	if h.argv == nil {
		missing = append(missing, "Exec")
	}
	if h.when == "" {
		missing = append(missing, "When")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("hook %s: missing %s", rel, strings.Join(missing, ", "))
	}
	return h, nil
}

// wordSplit splits a hook's Exec value into words as libalpm does: words
// are separated by white space; single or double quotes group (a
// backslash before the quote character inside escapes it); outside quotes
// a backslash escapes only a quote character. No other expansion.
func wordSplit(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < 0x80 && unicode.IsSpace(rune(c)):
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case c == '\'' || c == '"':
			inWord = true
			j := i + 1
			for ; j < len(s) && s[j] != c; j++ {
				if s[j] == '\\' && j+1 < len(s) && s[j+1] == c {
					j++
				}
				w.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unbalanced %c", c)
			}
			i = j
		case c == '\\' && i+1 < len(s) && (s[i+1] == '\'' || s[i+1] == '"'):
			inWord = true
			i++
			w.WriteByte(s[i])
		default:
			inWord = true
			w.WriteByte(c)
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// hookFile is a hook file found in a tree.
type hookFile struct {
	name, rel string
	content   []byte
	err       error // it could not be read
}

// findHooks lists the hook files in effect in the overlay of trees (the
// top-most first, as the sandbox stacks them): per file name, the one in
// the first of HookDirs, and in the top-most tree that has it there;
// sorted as libalpm orders hooks, by name without ".hook".
func findHooks(trees []string) []hookFile {
	byName := map[string]hookFile{}
	for _, d := range HookDirs {
		seen := map[string]bool{}
		for _, t := range trees {
			if t == "" {
				continue
			}
			root, err := tree.OpenRoot(t)
			if err != nil {
				continue // no tree, no hooks
			}
			ents, _ := root.ReadDir(d)
			for _, e := range ents {
				n := e.Name()
				if !strings.HasSuffix(n, ".hook") || seen[n] {
					continue
				}
				seen[n] = true
				if _, ok := byName[n]; ok {
					continue
				}
				rel := d + "/" + n
				hf := hookFile{name: n, rel: rel}
				if target, err := root.Readlink(rel); err == nil && target == "/dev/null" {
					// The usual mask: an empty hook. (The tree has no
					// /dev/null to read.)
					byName[n] = hf
					continue
				}
				f, err := root.Open(rel)
				if err == nil {
					if st, err := f.Stat(); err == nil && st.IsDir() {
						f.Close()
						continue // libalpm skips directories
					}
					hf.content, err = io.ReadAll(io.LimitReader(f, 1<<20))
					f.Close()
				}
				hf.err = err
				byName[n] = hf
			}
			root.Close()
		}
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		return strings.TrimSuffix(names[i], ".hook") < strings.TrimSuffix(names[j], ".hook")
	})
	out := make([]hookFile, len(names))
	for i, n := range names {
		out[i] = byName[n]
	}
	return out
}

// readHooks parses the hooks in effect in trees (see findHooks). A hook
// that cannot be read or parsed is left out and its error returned with
// the others: libalpm aborts the transaction for one before it, and only
// reports one after it.
func readHooks(trees []string) ([]*hook, []error) {
	var hooks []*hook
	var errs []error
	for _, hf := range findHooks(trees) {
		if hf.err != nil {
			errs = append(errs, fmt.Errorf("hook %s: %w", hf.rel, hf.err))
			continue
		}
		h, err := parseHook(hf.rel, hf.content)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		hooks = append(hooks, h)
	}
	return hooks, errs
}

// txnPackage is a package of the transaction as hooks see it.
type txnPackage struct {
	name string
	// files are the paths the package installs as its file list names
	// them (directories end in "/"), without what NoExtract leaves out.
	files []string
	// upgrade: the package replaces an installed one of the same name,
	// of oldVersion, whose file list is oldFiles.
	upgrade    bool
	oldVersion string
	oldFiles   []string
}

// matches returns whether the transaction triggers h and, when it needs
// them, the targets (package names or paths) sorted and without
// duplicates, as libalpm computes them.
func (h *hook) matches(txn []txnPackage) (bool, []string) {
	triggered := false
	var targets []string
	for _, t := range h.triggers {
		var install, upgrade, remove []string
		if t.typ == "Package" {
			for _, p := range txn {
				if !fnmatchPatterns(t.targets, p.name) {
					continue
				}
				if p.upgrade {
					upgrade = append(upgrade, p.name)
				} else {
					install = append(install, p.name)
				}
			}
		} else {
			in, out := map[string]bool{}, map[string]bool{}
			for _, p := range txn {
				for _, f := range p.files {
					if fnmatchPatterns(t.targets, f) {
						in[f] = true
					}
				}
				for _, f := range p.oldFiles {
					if fnmatchPatterns(t.targets, f) {
						out[f] = true
					}
				}
			}
			// A path both installed and removed is upgraded.
			for f := range in {
				if out[f] {
					upgrade = append(upgrade, f)
				} else {
					install = append(install, f)
				}
			}
			for f := range out {
				if !in[f] {
					remove = append(remove, f)
				}
			}
		}
		for _, m := range []struct {
			op    hookOp
			paths []string
		}{{opInstall, install}, {opUpgrade, upgrade}, {opRemove, remove}} {
			if t.ops&m.op != 0 && len(m.paths) > 0 {
				triggered = true
				targets = append(targets, m.paths...)
			}
		}
	}
	if !triggered || !h.needsTargets {
		return triggered, nil
	}
	sort.Strings(targets)
	out := targets[:0]
	for i, t := range targets {
		if i == 0 || t != targets[i-1] {
			out = append(out, t)
		}
	}
	return true, out
}

// fnmatchPatterns is how libalpm matches a target list: the last pattern
// that matches decides, a leading "!" negates it ("\!" matches a "!").
func fnmatchPatterns(patterns []string, s string) bool {
	for i := len(patterns) - 1; i >= 0; i-- {
		p := patterns[i]
		neg := strings.HasPrefix(p, "!")
		if neg || strings.HasPrefix(p, "\\") {
			p = p[1:]
		}
		if fnmatch(p, s) {
			return !neg
		}
	}
	return false
}

// fnmatch is fnmatch(3) without flags: "*" and "?" match any byte, "/"
// included (path.Match cannot stand in: its "*" stops at "/"), [...]
// classes with "!" or "^" negation, "\" escapes. The pattern becomes a
// regular expression.
func fnmatch(p, s string) bool {
	var re strings.Builder
	re.WriteString("^(?s:")
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '*':
			re.WriteString(".*")
		case '?':
			re.WriteString(".")
		case '\\':
			if i+1 < len(p) {
				i++
			}
			re.WriteString(regexp.QuoteMeta(p[i : i+1]))
		case '[':
			j := i + 1
			if j < len(p) && (p[j] == '!' || p[j] == '^') {
				j++
			}
			if j < len(p) && p[j] == ']' {
				j++
			}
			for j < len(p) && p[j] != ']' {
				j++
			}
			if j >= len(p) {
				re.WriteString(`\[`)
				continue
			}
			class := p[i+1 : j]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			re.WriteString("[" + strings.ReplaceAll(class, `\`, `\\`) + "]")
			i = j
		default:
			re.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	re.WriteString(")$")
	m, err := regexp.MatchString(re.String(), s)
	return err == nil && m
}
