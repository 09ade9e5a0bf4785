package pacman

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/sxb-build/sxb/builtins/tree"
)

// HookDirs are where libalpm reads hooks, relative to the root; a hook in
// a later directory replaces one of the same name in an earlier one.
var HookDirs = []string{"usr/share/libalpm/hooks", "etc/pacman.d/hooks"}

// Step is a scriptlet function or a libalpm hook pacman would run during
// the installation.
type Step struct {
	// Kind is "scriptlet" or "hook".
	Kind string `json:"kind"`
	// Package and Function name a scriptlet: the package's .INSTALL
	// function pre_install or post_install. Script is the install file in
	// the local database, relative to the root.
	Package  string `json:"package,omitempty"`
	Function string `json:"function,omitempty"`
	Script   string `json:"script,omitempty"`
	// Hook is the hook's file name and HookPath where it was read from
	// (relative to the tree it is in); When is PreTransaction or
	// PostTransaction; Exec the command (run in the root); Targets what
	// triggered it, passed on stdin when NeedsTargets.
	Hook         string   `json:"hook,omitempty"`
	HookPath     string   `json:"hook_path,omitempty"`
	When         string   `json:"when,omitempty"`
	Exec         string   `json:"exec,omitempty"`
	Depends      []string `json:"depends,omitempty"`
	NeedsTargets bool     `json:"needs_targets,omitempty"`
	AbortOnFail  bool     `json:"abort_on_fail,omitempty"`
	Targets      []string `json:"targets,omitempty"`
}

// String names the step for messages.
func (s Step) String() string {
	if s.Kind == "scriptlet" {
		return s.Function + " of " + s.Package
	}
	return fmt.Sprintf("hook %s (%s): %s", s.Hook, s.When, s.Exec)
}

// ScriptRunner runs scriptlets and hooks in a root (the seam for a
// sandbox: sxb does not run package code on the build machine itself).
// Install calls Run for each Step in pacman's order once every package
// is unpacked.
type ScriptRunner interface {
	Run(ctx context.Context, root string, s Step) error
}

var scriptletFunc = regexp.MustCompile(`(?m)^[ \t]*(?:function[ \t]+)?(pre_install|post_install)[ \t]*\([ \t]*\)`)

// scriptletSteps lists the install functions a package's .INSTALL defines.
func scriptletSteps(pf *pkgFile) (pre, post *Step) {
	if pf.install == nil {
		return nil, nil
	}
	script := LocalDBPath + "/" + pf.info.Name + "-" + pf.info.Version + "/install"
	for _, m := range scriptletFunc.FindAllSubmatch(pf.install, -1) {
		s := &Step{Kind: "scriptlet", Package: pf.info.Name, Function: string(m[1]), Script: script}
		if s.Function == "pre_install" {
			pre = s
		} else {
			post = s
		}
	}
	return pre, post
}

// hook is a parsed alpm-hooks(5) file.
type hook struct {
	name, path string
	triggers   []trigger
	action     Step
}

type trigger struct {
	ops     []string
	typ     string
	targets []string
}

// parseHook reads an alpm hook file.
func parseHook(name, rel string, b []byte) (*hook, error) {
	h := &hook{name: name, path: rel}
	section := ""
	var tr *trigger
	sc := bufio.NewScanner(bytes.NewReader(b))
	line := 0
	for sc.Scan() {
		line++
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]") {
			section = l[1 : len(l)-1]
			if section == "Trigger" {
				h.triggers = append(h.triggers, trigger{})
				tr = &h.triggers[len(h.triggers)-1]
			}
			continue
		}
		k, v, _ := strings.Cut(l, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case section == "Trigger" && k == "Operation":
			tr.ops = append(tr.ops, v)
		case section == "Trigger" && k == "Type":
			tr.typ = v
		case section == "Trigger" && k == "Target":
			tr.targets = append(tr.targets, v)
		case section == "Action" && k == "When":
			h.action.When = v
		case section == "Action" && k == "Exec":
			h.action.Exec = v
		case section == "Action" && k == "Depends":
			h.action.Depends = append(h.action.Depends, v)
		case section == "Action" && k == "NeedsTargets":
			h.action.NeedsTargets = true
		case section == "Action" && k == "AbortOnFail":
			h.action.AbortOnFail = true
		case section == "Action" && k == "Description":
		case section == "":
			return nil, fmt.Errorf("hook %s line %d: outside a section", rel, line)
		}
	}
	if len(h.triggers) == 0 || h.action.Exec == "" || (h.action.When != "PreTransaction" && h.action.When != "PostTransaction") {
		return nil, fmt.Errorf("hook %s: needs a [Trigger], Exec and When = PreTransaction or PostTransaction", rel)
	}
	// alpm treats the deprecated Type = File as Path.
	for i := range h.triggers {
		if h.triggers[i].typ == "File" {
			h.triggers[i].typ = "Path"
		}
	}
	return h, nil
}

// readHooks reads the hooks of the trees (later trees and later
// directories replace hooks of the same name), sorted by name. A hook that
// is a symlink to /dev/null is masked.
func readHooks(roots ...string) ([]*hook, error) {
	byName := map[string]*hook{}
	for _, dir := range roots {
		if dir == "" {
			continue
		}
		root, err := tree.OpenRoot(dir)
		if err != nil {
			continue // no tree, no hooks
		}
		defer root.Close()
		for _, d := range HookDirs {
			ents, err := root.ReadDir(d)
			if err != nil {
				continue
			}
			for _, e := range ents {
				if !strings.HasSuffix(e.Name(), ".hook") {
					continue
				}
				rel := d + "/" + e.Name()
				if t, err := root.Readlink(rel); err == nil && t == "/dev/null" {
					delete(byName, e.Name())
					continue
				}
				b, err := root.ReadFile(rel)
				if err != nil {
					continue
				}
				h, err := parseHook(e.Name(), rel, b)
				if err != nil {
					return nil, err
				}
				byName[e.Name()] = h
			}
		}
	}
	var out []*hook
	for _, n := range sortedKeys(byName) {
		out = append(out, byName[n])
	}
	return out, nil
}

// fnmatchPatterns is alpm's _alpm_fnmatch_patterns: the last pattern that
// matches decides ("!" negates).
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

// matches returns what of the transaction triggers h (package names or
// file paths), or nil. Every package installs (Operation = Install); one
// whose name the base has is an upgrade.
func (h *hook) matches(pfs []*pkgFile, upgraded map[string]bool) []string {
	seen := map[string]bool{}
	for _, t := range h.triggers {
		for _, pf := range pfs {
			op := "Install"
			if upgraded[pf.info.Name] {
				op = "Upgrade"
			}
			if !containsString(t.ops, op) {
				continue
			}
			if t.typ == "Package" {
				if fnmatchPatterns(t.targets, pf.info.Name) {
					seen[pf.info.Name] = true
				}
				continue
			}
			for _, f := range pf.files {
				if fnmatchPatterns(t.targets, f) {
					seen[f] = true
				}
			}
		}
	}
	if len(seen) == 0 {
		return nil
	}
	return sortedKeys(seen)
}

func containsString(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// hookSteps lists the hooks of the roots that the transaction triggers
// at when.
func hookSteps(roots []string, when string, pfs []*pkgFile, upgraded map[string]bool) ([]Step, error) {
	hooks, err := readHooks(roots...)
	if err != nil {
		return nil, err
	}
	var out []Step
	for _, h := range hooks {
		if h.action.When != when {
			continue
		}
		if t := h.matches(pfs, upgraded); t != nil {
			s := h.action
			s.Kind, s.Hook, s.HookPath, s.Targets = "hook", h.name, h.path, t
			out = append(out, s)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Hook < out[j].Hook })
	return out, nil
}
