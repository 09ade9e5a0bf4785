package mkosi

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"unicode"

	"github.com/sxb-build/sxb/internal/arch"
	"github.com/sxb-build/sxb/internal/diag"
	"github.com/sxb-build/sxb/internal/suggest"
)

// maxDepth bounds nesting of directories and includes (symlink loops).
const maxDepth = 64

// pctx is the parse state of one image, mirroring mkosi's ParseContext:
// values from "the command line" (cli: mkosi.local.conf and settings forced
// from the main image) and from configuration files (config), plus cached
// defaults.
type pctx struct {
	l         *loader
	image     string
	directory string // %D: the directory sxb was pointed at
	cwd       string // the directory being parsed (%P)
	cli       map[*setting]any
	config    map[*setting]any
	defaults  map[*setting]any
	includes  map[[2]uint64]bool
	files     []string
	pos       map[string]diag.Pos
	comments  map[string][]string
	depth     int
	// active holds the directories being parsed (device, inode), so a
	// symlink back to one of them is refused instead of re-parsed.
	active map[[2]uint64]bool
}

func newCtx(l *loader, image string) *pctx {
	return &pctx{
		l: l, image: image, directory: l.dir,
		cli: map[*setting]any{}, config: map[*setting]any{}, defaults: map[*setting]any{},
		includes: map[[2]uint64]bool{}, active: map[[2]uint64]bool{}, pos: map[string]diag.Pos{}, comments: map[string][]string{},
	}
}

func (c *pctx) warn(d *diag.Diagnostic) {
	if c.l.opts.Warn != nil {
		c.l.opts.Warn(d)
	}
}

func (c *pctx) getenv(k string) string {
	if c.l.opts.Environment != nil {
		return c.l.opts.Environment[k]
	}
	return os.Getenv(k)
}

// expandVars expands $VAR and ${VAR} like os.path.expandvars: unknown
// variables are left alone.
func (c *pctx) expandVars(s string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		j, name, end := i+1, "", 0
		if s[j] == '{' {
			k := strings.IndexByte(s[j:], '}')
			if k < 0 {
				b.WriteByte(s[i])
				continue
			}
			name, end = s[j+1:j+k], j+k+1
		} else {
			k := j
			for k < len(s) && (s[k] == '_' || s[k] >= 'a' && s[k] <= 'z' || s[k] >= 'A' && s[k] <= 'Z' || s[k] >= '0' && s[k] <= '9') {
				k++
			}
			name, end = s[j:k], k
		}
		v, ok := c.lookupEnv(name)
		if name == "" || !ok {
			b.WriteString(s[i:end])
		} else {
			b.WriteString(v)
		}
		i = end - 1
	}
	return b.String()
}

func (c *pctx) lookupEnv(k string) (string, bool) {
	if c.l.opts.Environment != nil {
		v, ok := c.l.opts.Environment[k]
		return v, ok
	}
	return os.LookupEnv(k)
}

func (c *pctx) abs(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(c.cwd, p)
}

// path resolves a path setting value relative to the directory being
// parsed, expanding ~ and $VARS, optionally requiring it to exist.
func (c *pctx) path(v string, required, resolve bool) (string, error) {
	v = c.expandVars(v)
	if v == "~" || strings.HasPrefix(v, "~/") {
		if h := c.getenv("HOME"); h != "" {
			v = h + v[1:]
		}
	}
	p := c.abs(v)
	if required {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s does not exist", v)
		}
	}
	if resolve {
		p = resolvePath(p)
	}
	return p, nil
}

// resolvePath resolves symlinks in the existing prefix of p, like
// pathlib's resolve(strict=False).
func resolvePath(p string) string {
	rest := ""
	for cur := p; ; {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(r, rest)
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return p
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

func (c *pctx) prohibited(s *setting) bool {
	return (s.Scope.mainOnly() && c.image != "main") || (s.Scope == scUniversal && c.image != "main")
}

// value returns the current value of s: mkosi's finalize_value.
func (c *pctx) value(s *setting) (any, error) {
	if v, ok := c.cli[s]; ok && v != nil {
		cfg := c.config[s]
		if cfg == nil {
			return v, nil
		}
		switch v := v.(type) {
		case []string:
			return append(append([]string{}, cfg.([]string)...), v...), nil
		case []Tree:
			return append(append([]Tree{}, cfg.([]Tree)...), v...), nil
		case map[string]string:
			m := map[string]string{}
			for k, x := range cfg.(map[string]string) {
				m[k] = x
			}
			for k, x := range v {
				m[k] = x
			}
			return m, nil
		}
		return v, nil
	}
	_, inCli := c.cli[s]
	cfg, inCfg := c.config[s]
	if !inCli && cfg != nil {
		return cfg, nil
	}
	var def any
	switch {
	case (inCli || inCfg) && s.Kind.nullable:
		def = s.Kind.empty
	case c.hasDefault(s):
		def = c.defaults[s]
	case s.DefaultFn != nil:
		v, err := s.DefaultFn(c)
		if err != nil {
			return nil, err
		}
		def = v
	case s.Default != nil:
		def = s.Default
	default:
		def = s.Kind.empty
	}
	c.defaults[s] = def
	return def, nil
}

func (c *pctx) hasDefault(s *setting) bool { _, ok := c.defaults[s]; return ok }

func (c *pctx) valueOf(name string) (any, error) { return c.value(settingByName[name]) }

func (c *pctx) str(name string) string {
	v, err := c.valueOf(name)
	if err != nil {
		return ""
	}
	s, _ := v.(string)
	return s
}

// expand replaces %-specifiers in text as mkosi does when a line is parsed.
func (c *pctx) expand(text, file string, pos diag.Pos) (string, error) {
	if !strings.Contains(text, "%") {
		return text, nil
	}
	var b strings.Builder
	for i := 0; i < len(text); i++ {
		ch := text[i]
		if ch != '%' {
			b.WriteByte(ch)
			continue
		}
		if i+1 >= len(text) {
			b.WriteByte('%')
			break
		}
		i++
		ch = text[i]
		if ch == '%' {
			b.WriteByte('%')
			continue
		}
		if s, ok := settingBySpec[ch]; ok {
			v, err := c.value(s)
			if err != nil {
				return "", diag.Errorf(pos, "%v", err)
			}
			if v == nil {
				c.warn(diag.Warnf(pos, "setting %s specified by specifier '%%%c' in %s is not yet set, ignoring", s.Name, ch, text))
				continue
			}
			b.WriteString(fmt.Sprint(v))
			continue
		}
		switch ch {
		case 'C':
			b.WriteString(filepath.Dir(resolvePath(c.abs(file))))
		case 'P':
			b.WriteString(c.cwd)
		case 'D':
			b.WriteString(resolvePath(c.directory))
		case 'I':
			b.WriteString(c.image)
		case 'F':
			v, err := c.valueOf("Distribution")
			if err != nil {
				return "", diag.Errorf(pos, "%v", err)
			}
			if v == nil {
				c.warn(diag.Warnf(pos, "setting Distribution which specifier '%%F' in %s depends on is not yet set, ignoring", text))
				continue
			}
			b.WriteString(distFilesystem(v.(string)))
		default:
			c.warn(diag.Warnf(pos, "unknown specifier '%%%c' found in %s, ignoring", ch, text))
		}
	}
	return b.String(), nil
}

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

var matchSections = map[string]bool{"Match": true, "TriggerMatch": true}
var assertSections = map[string]bool{"Assert": true, "TriggerAssert": true}

// matchConfig evaluates the [Match]/[TriggerMatch] (or, with asserts, the
// [Assert]/[TriggerAssert]) sections of file.
func (c *pctx) matchConfig(file string, asserts bool) (bool, error) {
	data, err := readConfig(file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return true, nil
		}
		return false, err
	}
	sections := matchSections
	if asserts {
		sections = assertSections
	}
	entries, err := ParseINI(file, data, func(s string) bool { return sections[s] })
	if err != nil {
		return false, err
	}
	const unset, no, yes = 0, 1, 2
	cond, trig := unset, unset
	skip := false
	for _, e := range entries {
		if e.End() {
			if cond == no {
				if e.Section == "Assert" {
					return false, diag.Errorf(e.Pos, "trigger condition in [Assert] section was not satisfied")
				} else if e.Section == "Match" {
					return false, nil
				}
			}
			if e.Section == "TriggerMatch" || e.Section == "TriggerAssert" {
				if trig == yes || cond != no {
					trig = yes
				} else {
					trig = no
				}
			}
			cond, skip = unset, false
			continue
		}
		if skip {
			continue
		}
		v := e.Value
		trigger := strings.HasPrefix(v, "|")
		v = strings.TrimPrefix(v, "|")
		negate := strings.HasPrefix(v, "!")
		v = strings.TrimPrefix(v, "!")
		if v, err = c.expand(v, file, e.Pos); err != nil {
			return false, err
		}
		var result bool
		if s, ok := settingByName[e.Key]; ok {
			if s.Kind.match == nil {
				return false, diag.Errorf(e.Pos, "%s cannot be used in [%s]", e.Key, e.Section)
			}
			if s.Scope == scMain && c.image != "main" {
				return false, diag.Errorf(e.Pos, "%s cannot be matched on outside of the main image", e.Key)
			}
			if e.Key != s.Name {
				c.warn(diag.Warnf(e.Pos, "setting %s is deprecated, please use %s instead", e.Key, s.Name))
			}
			val, err := c.value(s)
			if err != nil {
				return false, diag.Errorf(e.Pos, "%v", err)
			}
			if val != nil {
				if result, err = s.Kind.match(c, v, val); err != nil {
					return false, diag.Errorf(e.Pos, "%s=%s: %v", e.Key, e.Value, err)
				}
			}
		} else {
			switch e.Key {
			case "PathExists":
				result = v != "" && exists(c.abs(v))
			case "Image":
				result = v == c.image
			case "HostArchitecture":
				if !contains(architectures, v) {
					return false, diag.Errorf(e.Pos, "'%s' is not a valid Architecture", v)
				}
				result = v == c.l.hostArch()
			case "SystemdVersion":
				sv, err := c.l.systemdVersion()
				if err != nil {
					return false, diag.Errorf(e.Pos, "SystemdVersion=: %v", err)
				}
				result, _ = matchVersion(c, v, sv)
				result = result && v != ""
			default:
				return false, diag.Errorf(e.Pos, "%s cannot be used in [%s]", e.Key, e.Section)
			}
		}
		if negate {
			result = !result
		}
		if !trigger && !result {
			if isTrigger(e.Section) {
				skip, cond = true, no
				continue
			}
			if asserts {
				return false, diag.Errorf(e.Pos, "%s=%s in [Assert] section was not satisfied", e.Key, e.Value)
			}
			return false, nil
		}
		if trigger {
			if cond == yes || result {
				cond = yes
			} else {
				cond = no
			}
		}
	}
	if trig == no && asserts {
		return false, diag.Errorf(diag.Pos{File: file}, "none of the [TriggerAssert] sections was satisfied")
	}
	return trig != no, nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// set parses raw for s and stores it in the config namespace.
func (c *pctx) set(s *setting, raw string, pos diag.Pos, comments []string) error {
	v, err := s.Kind.parse(c, raw, c.config[s])
	if err != nil {
		return diag.Errorf(pos, "%s=%s: %v", s.Name, oneLine(raw), err)
	}
	c.config[s] = v
	c.pos[s.Name] = pos
	if len(comments) > 0 {
		c.comments[s.Name] = append(c.comments[s.Name], comments...)
	}
	return nil
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// withCwd runs f with the directory being parsed set to dir.
func (c *pctx) withCwd(dir string, f func() error) error {
	old := c.cwd
	c.cwd = dir
	defer func() { c.cwd = old }()
	return f()
}

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
				if fi.Mode()&0o111 != 0 && !fi.IsDir() {
					return diag.Errorf(diag.Pos{File: p}, "%s is executable: sxb does not run programs to compute %s=", f, s.Name)
				}
				data, err := readConfig(p)
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

// finalize computes the final value of every setting.
func (c *pctx) finalize() (map[*setting]any, error) {
	out := map[*setting]any{}
	for _, s := range settings {
		v, err := c.value(s)
		if err != nil {
			return nil, err
		}
		out[s] = v
	}
	return out, nil
}

// Defaults computed from the host and other settings.

func defaultDistribution(c *pctx) (any, error) {
	d, _ := c.l.host()
	if d == "" {
		return "custom", nil
	}
	return d, nil
}

var defaultReleases = map[string]string{"fedora": "rawhide", "debian": "testing", "kali": "kali-rolling",
	"ubuntu": "devel", "postmarketos": "edge", "arch": "rolling", "opensuse": "tumbleweed", "mageia": "cauldron",
	"centos": "10", "rhel": "10", "rhel-ubi": "10", "openmandriva": "cooker", "rocky": "10", "alma": "10",
	"azure": "3.0", "custom": ""}

func defaultRelease(c *pctx) (any, error) {
	d, err := c.valueOf("Distribution")
	if err != nil {
		return nil, err
	}
	hd, hr := c.l.host()
	if d == hd && hr != "" {
		return hr, nil
	}
	ds, _ := d.(string)
	return defaultReleases[ds], nil
}

func distFilesystem(d string) string {
	switch d {
	case "fedora", "opensuse":
		return "btrfs"
	case "centos", "rhel", "rhel-ubi", "rocky", "alma":
		return "xfs"
	}
	return "ext4"
}

func defaultArchitecture(c *pctx) (any, error) { return c.l.hostArch(), nil }

func defaultOutput(c *pctx) (any, error) {
	out := c.image
	if c.image == "main" {
		out = c.str("ImageId")
		if out == "" {
			out = "image"
		}
	}
	if v := c.str("ImageVersion"); v != "" {
		out += "_" + v
	}
	// The default name is used as a file name in the output directory.
	if !validFilename(out) || strings.ContainsRune(out, 0) {
		return nil, fmt.Errorf("ImageVersion=%s: the output name %q would not be a file name", c.str("ImageVersion"), out)
	}
	return out, nil
}

var formatExtensions = map[string]string{"confext": "raw", "cpio": "cpio", "disk": "raw", "esp": "raw",
	"portable": "raw", "sysext": "raw", "tar": "tar", "uki": "efi", "addon": "efi"}

func defaultExtension(c *pctx) (any, error) { return formatExtensions[c.str("Format")], nil }

func defaultCompression(c *pctx) (any, error) {
	switch c.str("Format") {
	case "tar", "cpio", "uki", "esp", "addon":
		return "zstd", nil
	case "oci":
		return "gz", nil
	}
	return "none", nil
}

func defaultEpoch(c *pctx) (any, error) {
	// mkosi looks for SOURCE_DATE_EPOCH= among the keys of Environment=,
	// which never matches, so effectively only the process environment
	// counts.
	return parseEpoch(c, c.getenv("SOURCE_DATE_EPOCH"), nil)
}

// Host facts.

func (l *loader) host() (string, string) {
	if l.opts.HostDistribution != "" {
		return l.opts.HostDistribution, l.opts.HostRelease
	}
	if d := l.env("MKOSI_HOST_DISTRIBUTION"); d != "" && contains(distributions, d) {
		if r := l.env("MKOSI_HOST_RELEASE"); r != "" {
			return d, r
		}
	}
	return detectDistribution("/")
}

func (l *loader) env(k string) string {
	if l.opts.Environment != nil {
		return l.opts.Environment[k]
	}
	return os.Getenv(k)
}

// detectDistribution reads os-release like mkosi's detect_distribution.
func detectDistribution(root string) (string, string) {
	data, err := os.ReadFile(filepath.Join(root, "etc/os-release"))
	if err != nil {
		if data, err = os.ReadFile(filepath.Join(root, "usr/lib/os-release")); err != nil {
			return "", ""
		}
	}
	kv := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok {
			kv[k] = strings.Trim(v, `"'`)
		}
	}
	id := kv["ID"]
	version := kv["VERSION_ID"]
	if id == "opensuse-tumbleweed" {
		version = "tumbleweed"
	}
	d := ""
	for _, cand := range append([]string{id}, strings.Fields(kv["ID_LIKE"])...) {
		if cand == "azurelinux" {
			cand = "azure"
		}
		if contains(distributions, cand) {
			d = cand
			break
		}
	}
	if d == "" {
		return "", ""
	}
	if (d == "debian" || d == "ubuntu" || d == "kali") && kv["VERSION_CODENAME"] != "" {
		version = kv["VERSION_CODENAME"]
	}
	if version == "" {
		version = defaultReleases[d]
	}
	return d, version
}

func (l *loader) hostArch() string {
	if l.opts.HostArchitecture != "" {
		return l.opts.HostArchitecture
	}
	return arch.Native().Mkosi()
}

func (l *loader) systemdVersion() (string, error) {
	if l.opts.SystemdVersion != "" {
		return l.opts.SystemdVersion, nil
	}
	out, err := exec.Command("systemctl", "--version").Output()
	if err != nil {
		return "", fmt.Errorf("running systemctl --version: %w", err)
	}
	f := strings.Fields(string(out))
	if len(f) < 2 {
		return "", fmt.Errorf("unexpected systemctl --version output")
	}
	return f[1], nil
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
