package mkosi

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sxb-build/sxb/internal/diag"
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
	// missing are the built-in configurations the image Include=s that no
	// installed mkosi provides: the image cannot be built.
	missing []Setting
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
