package mkosi

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"unicode"

	"github.com/sxb-build/sxb/internal/diag"
	"github.com/sxb-build/sxb/internal/suggest"
)

// maxConfigSize bounds configuration files (hostile input: /dev/zero).
const maxConfigSize = 16 << 20

// readConfig reads a configuration file, refusing anything but a regular
// file of reasonable size.
func readConfig(p string) ([]byte, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, diag.Errorf(diag.Pos{File: p}, "not a regular file")
	}
	if fi.Size() > maxConfigSize {
		return nil, diag.Errorf(diag.Pos{File: p}, "configuration file larger than %d bytes", maxConfigSize)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	return data, nil
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func isDir(p string) bool { fi, err := os.Stat(p); return err == nil && fi.IsDir() }

// parseOne parses a configuration file or, for a directory, its mkosi.conf,
// default files, mkosi.conf.d/ and (with profiles) mkosi.profiles/. It
// reports whether the [Match] sections matched.
func (c *pctx) parseOne(path string, profiles, local bool) (bool, error) {
	c.depth++
	defer func() { c.depth-- }()
	if c.depth > maxDepth {
		return false, diag.Errorf(diag.Pos{File: path}, "configuration nested too deeply (symlink loop?)")
	}
	extras := isDir(path)
	dir := filepath.Dir(path)
	if extras {
		var st syscall.Stat_t
		if err := syscall.Stat(path, &st); err != nil {
			return false, fmt.Errorf("reading %s: %w", path, err)
		}
		id := [2]uint64{uint64(st.Dev), st.Ino}
		if c.active[id] {
			// A symlink back to a directory being parsed: skipped, as mkosi
			// ends up doing once the kernel reports ELOOP, but at once
			// rather than after (fan-out)^40 parses.
			c.warn(diag.Warnf(diag.Pos{File: path}, "skipping a symlink loop: this directory is already being parsed"))
			return false, nil
		}
		c.active[id] = true
		defer delete(c.active, id)
		dir = path
		path = filepath.Join(path, "mkosi.conf")
	}
	ok, err := c.matchConfig(path, false)
	if err != nil || !ok {
		return false, err
	}
	if _, err := c.matchConfig(path, true); err != nil {
		return false, err
	}
	if extras {
		if local {
			var locals []string
			if p := filepath.Join(dir, "mkosi.local"); isDir(p) {
				locals = append(locals, p)
			}
			if p := filepath.Join(dir, "mkosi.local.conf"); exists(p) && !isDir(p) {
				locals = append(locals, p)
			}
			for _, lp := range locals {
				if isDir(lp) {
					err = c.withCwd(lp, func() error { _, err := c.parseOne(lp, false, false); return err })
				} else {
					_, err = c.parseOne(lp, false, false)
				}
				if err != nil {
					return false, err
				}
				// Local configuration overrides other files but not the
				// command line: move it to the cli namespace.
				for _, s := range settings {
					if _, ok := c.config[s]; ok {
						v, err := c.value(s)
						if err != nil {
							return false, err
						}
						c.cli[s] = v
						delete(c.config, s)
					}
				}
			}
		}
		if err := c.defaultFiles(); err != nil {
			return false, err
		}
	}
	if exists(path) {
		if err := c.parseFile(path); err != nil {
			return false, err
		}
	}
	if confd := filepath.Join(dir, "mkosi.conf.d"); extras && exists(confd) {
		ents, err := os.ReadDir(confd)
		if err != nil {
			return false, fmt.Errorf("reading %s: %w", confd, err)
		}
		names := make([]string, 0, len(ents))
		for _, e := range ents {
			names = append(names, e.Name())
		}
		sort.Strings(names)
		for _, n := range names {
			p := filepath.Join(confd, n)
			if isDir(p) {
				err = c.withCwd(p, func() error { _, err := c.parseOne(p, false, false); return err })
			} else if strings.HasSuffix(n, ".conf") && n != ".conf" {
				_, err = c.parseOne(p, false, false)
			}
			if err != nil {
				return false, err
			}
		}
	}
	if profiles {
		v, err := c.valueOf("Profiles")
		if err != nil {
			return false, err
		}
		l, _ := v.([]string)
		for _, prof := range l {
			for _, n := range []string{prof, prof + ".conf"} {
				p := filepath.Join(c.cwd, "mkosi.profiles", n)
				if !exists(p) {
					continue
				}
				if isDir(p) {
					err = c.withCwd(p, func() error { _, err := c.parseOne(p, false, false); return err })
				} else {
					_, err = c.parseOne(p, false, false)
				}
				if err != nil {
					return false, err
				}
			}
		}
	}
	return true, nil
}

// defaultFiles picks up mkosi.extra/, mkosi.repart/, mkosi.version, ... in
// the directory being parsed.
func (c *pctx) defaultFiles() error {
	for _, s := range settings {
		if c.prohibited(s) {
			continue
		}
		for _, f := range s.Files {
			f = "mkosi." + f
			p := filepath.Join(c.cwd, f)
			fi, err := os.Stat(p)
			if err != nil {
				continue
			}
			raw := f
			if s.ReadFile {
				var data []byte
				switch {
				case fi.Mode()&0o111 != 0 && !fi.IsDir() && s.Name == "ImageVersion" && c.l.opts.RunVersion != nil:
					// As mkosi: its standard output is the version.
					out, err := c.l.opts.RunVersion(p, c.cwd)
					if err != nil {
						return diag.Errorf(diag.Pos{File: p}, "running %s: %v", f, err)
					}
					raw = strings.TrimSpace(string(out))
					if err := c.set(s, raw, diag.Pos{File: p}, nil); err != nil {
						return err
					}
					continue
				case fi.Mode()&0o111 != 0 && !fi.IsDir():
					return diag.Errorf(diag.Pos{File: p}, "%s is executable: sxb does not run programs to compute %s=", f, s.Name)
				}
				data, err = readConfig(p)
				if err != nil {
					return err
				}
				if strings.HasPrefix(string(data), "#!/") {
					return diag.Errorf(diag.Pos{File: p, Line: 1}, "%s starts with a shebang but is not executable", f)
				}
				raw = strings.TrimRight(string(data), "\n")
			}
			if err := c.set(s, raw, diag.Pos{File: p}, nil); err != nil {
				return err
			}
		}
		for _, g := range s.DirFiles {
			matches, _ := filepath.Glob(filepath.Join(c.cwd, "mkosi."+g))
			sort.Strings(matches)
			for _, m := range matches {
				if err := c.set(s, m, diag.Pos{File: m}, nil); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (c *pctx) keepSection(s string) bool { return sectionsKnown[s] }

// parseFile applies the settings of one configuration file.
func (c *pctx) parseFile(path string) error {
	data, err := readConfig(path)
	if err != nil {
		return err
	}
	c.files = append(c.files, path)
	entries, err := ParseINI(path, data, c.keepSection)
	if err != nil {
		return err
	}
	c.warnUnknownSections(path, data)
	for _, e := range entries {
		if e.End() {
			continue
		}
		name := strings.TrimPrefix(e.Key, "@")
		if name != e.Key {
			c.warn(diag.Warnf(e.Pos, "the '@' specifier is deprecated, please use %s instead of %s", name, e.Key))
		}
		s, ok := settingByName[name]
		if !ok {
			c.warn(diag.Warnf(e.Pos, "unknown setting %s", name))
			continue
		}
		if c.prohibited(s) {
			return diag.Errorf(e.Pos, "setting %s cannot be configured in %s image", name, c.image)
		}
		if e.Section != s.Section {
			c.warn(diag.Warnf(e.Pos, "setting %s should be configured in [%s], not [%s]", name, s.Section, e.Section))
		}
		if name != s.Name {
			c.warn(diag.Warnf(e.Pos, "setting %s is deprecated, please use %s instead", name, s.Name))
		}
		v, err := c.expand(e.Value, path, e.Pos)
		if err != nil {
			return err
		}
		if err := c.set(s, v, e.Pos, e.Comments); err != nil {
			return err
		}
		if err := c.parseIncludes(e.Pos); err != nil {
			return err
		}
	}
	return nil
}

// parseIncludes parses Include= targets not seen before in this image.
func (c *pctx) parseIncludes(pos diag.Pos) error {
	s := settingByName["Include"]
	var all []string
	if l, ok := c.cli[s].([]string); ok {
		all = append(all, l...)
	}
	if l, ok := c.config[s].([]string); ok {
		all = append(all, l...)
	}
	for _, p := range all {
		if slices.Contains(builtinConfigs, p) {
			if p = c.builtinInclude(p, pos); p == "" {
				continue
			}
		}
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			return diag.Errorf(pos, "Include=%s: %v", p, err)
		}
		id := [2]uint64{uint64(st.Dev), st.Ino}
		if c.includes[id] {
			continue
		}
		c.includes[id] = true
		var err error
		if isDir(p) {
			err = c.withCwd(p, func() error { _, err := c.parseOne(p, true, false); return err })
		} else {
			_, err = c.parseOne(p, false, false)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// warnUnknownSections warns about section headers mkosi does not know: like
// mkosi, their settings are skipped, which a misspelt [Content] would
// otherwise do silently.
func (c *pctx) warnUnknownSections(path string, data []byte) {
	var known []string
	for s := range sectionsKnown {
		known = append(known, s)
	}
	for s := range matchSections {
		known = append(known, s)
	}
	for s := range assertSections {
		known = append(known, s)
	}
	sort.Strings(known)
	for i, line := range splitLines(string(data)) {
		if c := strings.IndexByte(line, '#'); c >= 0 {
			line = line[:c]
		}
		t := strings.TrimSpace(line)
		if len(t) < 3 || t[0] != '[' || t[len(t)-1] != ']' || unicode.IsSpace(rune(line[0])) {
			continue
		}
		name := strings.TrimSpace(t[1 : len(t)-1])
		if slices.Contains(known, name) {
			continue
		}
		msg := fmt.Sprintf("unknown section [%s]: its settings are ignored", name)
		best, bestD := "", 3
		for _, k := range known {
			if d := suggest.Levenshtein(strings.ToLower(name), strings.ToLower(k)); d < bestD {
				best, bestD = k, d
			}
		}
		if best != "" {
			msg += fmt.Sprintf(" (did you mean [%s]?)", best)
		}
		c.warn(diag.Warnf(diag.Pos{File: path, Line: i + 1, Col: strings.Index(line, "[") + 1}, "%s", msg))
	}
}
