package mkosi

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/sxb-build/sxb/builtins/repart"
)

// kind is the type of a setting: how a raw value is parsed and merged with
// the previous value, and how [Match] compares against it.
type kind struct {
	name string
	// parse turns raw into a value; old is the value so far (lists
	// append). A nil result means "unset" (mkosi's None).
	parse func(c *pctx, raw string, old any) (any, error)
	// empty is the value of parse(None): what an explicitly reset setting
	// without a default holds.
	empty any
	// nullable marks collection and Optional settings: an explicit empty
	// assignment suppresses the default.
	nullable bool
	match    func(c *pctx, pattern string, value any) (bool, error)
	enum     []string
}

// Tree is a source directory (or archive) copied to Target in the image;
// Target is "" for the root.
type Tree struct {
	Source string `json:"Source"`
	Target string `json:"Target"`
}

// ImageTarget is where the tree goes in the image: its target, "/" when
// it has none, and for a file without one (or with "/") the file's name
// at the top, as mkosi copies such a file into the image's root.
func (t Tree) ImageTarget() string {
	if t.Target != "" && t.Target != "/" {
		return t.Target
	}
	if fi, err := os.Stat(t.Source); err == nil && !fi.IsDir() {
		return "/" + filepath.Base(t.Source)
	}
	return "/"
}

// Archive reports whether mkosi unpacks the tree rather than copying it:
// a tar archive or a disk image without a target (with one, mkosi copies
// the file as it is).
func (t Tree) Archive() bool {
	if t.Target != "" || isDir(t.Source) {
		return false
	}
	b := filepath.Base(t.Source)
	ext := filepath.Ext(b)
	return ext == ".raw" || ext == ".tar" || filepath.Ext(strings.TrimSuffix(b, ext)) == ".tar"
}

func (t Tree) String() string {
	if t.Target != "" {
		return t.Source + ":" + t.Target
	}
	return t.Source
}

func enumKind(name string, values, yesNo []string, _ string) *kind {
	k := &kind{name: "enum", enum: values}
	k.parse = func(c *pctx, raw string, old any) (any, error) {
		if raw == "" {
			return nil, nil
		}
		if slices.Contains(values, raw) {
			return raw, nil
		}
		if yesNo != nil {
			b, err := parseBoolean(raw)
			if err != nil {
				return nil, err
			}
			if b {
				return yesNo[0], nil
			}
			return yesNo[1], nil
		}
		return nil, fmt.Errorf("'%s' is not a valid %s", raw, name)
	}
	k.match = func(c *pctx, pattern string, value any) (bool, error) {
		if name == "Architecture" && pattern == "uefi" {
			return slices.Contains([]string{"x86", "x86-64", "arm", "arm64", "riscv32", "riscv64", "loongarch64"}, value.(string)), nil
		}
		if !slices.Contains(values, pattern) {
			return false, fmt.Errorf("'%s' is not a valid %s", pattern, name)
		}
		return pattern == value, nil
	}
	return k
}

func parseBoolean(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "1", "true", "yes", "y", "t", "on", "always":
		return true, nil
	case "0", "false", "no", "n", "f", "off", "never":
		return false, nil
	}
	return false, fmt.Errorf("invalid boolean literal: '%s'", s)
}

func parseString(c *pctx, raw string, old any) (any, error) {
	if raw == "" {
		return nil, nil
	}
	return raw, nil
}

func parseRaw(c *pctx, raw string, old any) (any, error) { return parseString(c, raw, old) }

// parseManifestFormat checks one ManifestFormat= value.
func parseManifestFormat(c *pctx, v string) (string, error) {
	v = strings.TrimSpace(v)
	if v != "json" && v != "changelog" {
		return "", fmt.Errorf("'%s' is not a valid ManifestFormat", v)
	}
	return v, nil
}

// parseSeed reads Seed=: a UUID (normalised to lower case with dashes),
// or "random".
func parseSeed(c *pctx, raw string, old any) (any, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" || raw == "random" {
		return nullIfEmpty(raw), nil
	}
	id, err := repart.ParseID128(raw)
	if err != nil {
		return nil, fmt.Errorf("%s is not a valid UUID", raw)
	}
	return id.String(), nil
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func parseBool(c *pctx, raw string, old any) (any, error) {
	if raw == "" {
		return nil, nil
	}
	return parseBoolean(raw)
}

func parseFeature(c *pctx, raw string, old any) (any, error) {
	if raw == "" {
		return nil, nil
	}
	return featureOf(raw)
}

func featureOf(raw string) (string, error) {
	switch raw {
	case "auto", "enabled", "disabled":
		return raw, nil
	}
	b, err := parseBoolean(raw)
	if err != nil {
		return "", err
	}
	if b {
		return "enabled", nil
	}
	return "disabled", nil
}

func matchFeature(c *pctx, pattern string, value any) (bool, error) {
	f, err := featureOf(pattern)
	return err == nil && f == value, err
}

func matchString(c *pctx, pattern string, value any) (bool, error) {
	return pattern == value, nil
}

func matchGlob(c *pctx, pattern string, value any) (bool, error) {
	return fnmatch(pattern, value.(string)), nil
}

func matchVersion(c *pctx, pattern string, value any) (bool, error) {
	v := value.(string)
	for _, op := range []string{"==", "!=", "<=", ">=", ">", "<"} {
		if rhs, ok := strings.CutPrefix(pattern, op); ok {
			r := CompareVersions(v, rhs)
			switch op {
			case "==":
				return r == 0, nil
			case "!=":
				return r != 0, nil
			case "<=":
				return r <= 0, nil
			case ">=":
				return r >= 0, nil
			case ">":
				return r > 0, nil
			default:
				return r < 0, nil
			}
		}
	}
	return CompareVersions(v, pattern) == 0, nil
}

func matchList(c *pctx, pattern string, value any) (bool, error) {
	l, _ := value.([]string)
	if pattern == "" {
		return len(l) == 0, nil
	}
	return slices.Contains(l, pattern), nil
}

func matchKeyValue(c *pctx, pattern string, value any) (bool, error) {
	m, _ := value.(map[string]string)
	k, v, ok := strings.Cut(pattern, "=")
	got, has := m[k]
	if !ok {
		return has, nil
	}
	return has && got == v, nil
}

type listOpts struct {
	delim    string // "" splits on commas and whitespace
	sortPkgs bool
	glob     bool
	noReset  bool
	item     func(c *pctx, v string) (string, error)
}

func listParser(o listOpts) func(c *pctx, raw string, old any) (any, error) {
	return func(c *pctx, raw string, old any) (any, error) {
		var values []string
		if o.delim == "" {
			values = strings.Fields(strings.ReplaceAll(raw, ",", " "))
		} else {
			values = strings.Split(strings.ReplaceAll(raw, o.delim, "\n"), "\n")
		}
		if !o.noReset && (len(values) == 0 || len(values) == 1 && values[0] == "") {
			return nil, nil
		}
		var out []string
		if l, ok := old.([]string); ok {
			out = append(out, l...)
		}
		if o.glob {
			var g []string
			for _, v := range values {
				m, _ := filepath.Glob(c.abs(v))
				sort.Strings(m)
				g = append(g, m...)
			}
			values = g
		}
		for _, v := range values {
			if v == "" {
				continue
			}
			if o.item != nil {
				var err error
				if v, err = o.item(c, v); err != nil {
					return nil, err
				}
			}
			out = append(out, v)
		}
		if o.sortPkgs {
			SortPackages(out)
		}
		if out == nil {
			out = []string{}
		}
		return out, nil
	}
}

// SortPackages sorts a package list as mkosi does: plain names first,
// then paths, then conditional "(...)" expressions, each group sorted.
func SortPackages(p []string) {
	rank := func(s string) int {
		switch {
		case strings.HasPrefix(s, "("):
			return 2
		case strings.HasPrefix(s, "/"):
			return 1
		}
		return 0
	}
	sort.SliceStable(p, func(i, j int) bool {
		ri, rj := rank(p[i]), rank(p[j])
		if ri != rj {
			return ri < rj
		}
		return p[i] < p[j]
	})
}

func parseProfile(c *pctx, v string) (string, error) {
	if !validFilename(v) {
		return "", fmt.Errorf("'%s' is not a valid profile: Profiles= requires a name with no path components", v)
	}
	return v, nil
}

func validFilename(s string) bool {
	s = strings.TrimSpace(s)
	return s != "." && s != ".." && !strings.Contains(s, "/")
}

func itemPath(required bool) func(c *pctx, v string) (string, error) {
	return func(c *pctx, v string) (string, error) { return c.path(v, required, true) }
}

// itemInclude resolves an Include= path; the names of mkosi's built-in
// configurations stay as they are (parseIncludes looks them up).
func itemInclude(c *pctx, v string) (string, error) {
	if slices.Contains(builtinConfigs, v) {
		return v, nil
	}
	return c.path(v, true, true)
}

func pathParser(required bool) func(c *pctx, raw string, old any) (any, error) {
	return func(c *pctx, raw string, old any) (any, error) {
		if raw == "" {
			return nil, nil
		}
		return c.path(raw, required, true)
	}
}

func parseKeyPath(c *pctx, raw string, old any) (any, error) {
	if raw == "" {
		return nil, nil
	}
	if _, err := os.Stat(c.abs(raw)); err == nil {
		return c.path(raw, true, true)
	}
	return raw, nil
}

// treeOpts says how a tree setting's entries are read.
type treeOpts struct {
	// required: the source must exist.
	required bool
	// directory: the source must be a directory (BuildSources=).
	directory bool
	// relTarget: the target is a path relative to where the trees are
	// mounted (BuildSources=), kept as written, not an absolute one.
	relTarget bool
}

func treesParser(o treeOpts) func(c *pctx, raw string, old any) (any, error) {
	return func(c *pctx, raw string, old any) (any, error) {
		values := strings.Fields(strings.ReplaceAll(raw, ",", " "))
		if len(values) == 0 {
			return nil, nil
		}
		var out []Tree
		if l, ok := old.([]Tree); ok {
			out = append(out, l...)
		}
		for _, v := range values {
			src, tgt, hasTgt := strings.Cut(v, ":")
			s, err := c.path(src, o.required, true)
			if err != nil {
				return nil, err
			}
			if o.directory && !isDir(s) {
				return nil, fmt.Errorf("%s is not a directory", src)
			}
			t := Tree{Source: s}
			if hasTgt {
				tgt = c.expandVars(tgt)
				switch {
				case o.relTarget:
					t.Target = purePath(tgt)
				case !strings.HasPrefix(tgt, "/"):
					return nil, fmt.Errorf("%s must be an absolute path", tgt)
				default:
					t.Target = filepath.Clean(tgt)
				}
			}
			out = append(out, t)
		}
		return out, nil
	}
}

// purePath normalises p as Python's pathlib does without touching the
// file system: empty and "." components go, ".." stays.
func purePath(p string) string {
	var parts []string
	for _, x := range strings.Split(p, "/") {
		if x != "" && x != "." {
			parts = append(parts, x)
		}
	}
	out := strings.Join(parts, "/")
	if strings.HasPrefix(p, "/") {
		return "/" + out
	}
	if out == "" {
		return "."
	}
	return out
}

// matchBuildSources is [Match]BuildSources=: some build source is mounted
// at the target named (relative to the sources directory).
func matchBuildSources(c *pctx, pattern string, value any) (bool, error) {
	want := purePath(strings.TrimLeft(pattern, "/"))
	for _, t := range value.([]Tree) {
		if t.Target != "" && t.Target == want {
			return true, nil
		}
	}
	return false, nil
}

func parseEnvironment(c *pctx, raw string, old any) (any, error) {
	words, err := shlexSplit(raw, "\n ")
	if err != nil {
		return nil, err
	}
	if len(words) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	if m, ok := old.(map[string]string); ok {
		for k, v := range m {
			out[k] = v
		}
	}
	for _, w := range words {
		if w == "" {
			continue
		}
		k, v, ok := strings.Cut(w, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok {
			v = c.getenv(k)
		}
		out[k] = v
	}
	return out, nil
}

// ParseBytes parses a size with an optional K, M or G suffix (powers of
// 1024) and rounds it up to a multiple of 4096, as mkosi does.
func ParseBytes(value string) (int64, error) {
	factor := 1.0
	switch {
	case strings.HasSuffix(value, "G"):
		factor = 1 << 30
	case strings.HasSuffix(value, "M"):
		factor = 1 << 20
	case strings.HasSuffix(value, "K"):
		factor = 1 << 10
	}
	num := value
	if factor > 1 {
		num = value[:len(value)-1]
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("'%s' is not a valid size", value)
	}
	r := math.Ceil(f * factor)
	if r <= 0 || r > 1<<62 {
		return 0, fmt.Errorf("size out of range: %s", value)
	}
	n := int64(r)
	if rem := n % 4096; rem != 0 {
		n += 4096 - rem
	}
	return n, nil
}

func parseBytesValue(c *pctx, raw string, old any) (any, error) {
	if raw == "" {
		return nil, nil
	}
	return ParseBytes(raw)
}

func parseEpoch(c *pctx, raw string, old any) (any, error) {
	if raw == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("timestamp '%s' is not a valid integer", raw)
	}
	if n < 0 {
		return nil, fmt.Errorf("source date epoch timestamp cannot be negative (got %s)", raw)
	}
	return n, nil
}

// parseMode reads an access mode in octal (OutputMode=).
func parseMode(c *pctx, raw string, old any) (any, error) {
	if raw == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(raw, 8, 64)
	if err != nil {
		return nil, fmt.Errorf("access mode '%s' is not a valid integer in base 8", raw)
	}
	if n < 0 {
		return nil, fmt.Errorf("access mode cannot be negative (got %s)", raw)
	}
	if n > 0o1777 {
		return nil, fmt.Errorf("access mode cannot be greater than 1777 (got %s)", raw)
	}
	return n, nil
}

func parseLevel(c *pctx, raw string, old any) (any, error) {
	if raw == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("compression level '%s' is not a valid integer", raw)
	}
	if n < 0 {
		return nil, fmt.Errorf("compression level cannot be negative (got %s)", raw)
	}
	return n, nil
}

func parseFilename(c *pctx, raw string, old any) (any, error) {
	if raw == "" {
		return nil, nil
	}
	if !validFilename(raw) {
		return nil, fmt.Errorf("'%s' is not a valid filename (no path components allowed)", raw)
	}
	return raw, nil
}

var compressions = map[string]string{"none": "none", "zstd": "zstd", "zst": "zstd", "xz": "xz", "bz2": "bz2",
	"gz": "gz", "gzip": "gz", "lz4": "lz4", "lzma": "lzma"}

func parseCompression(c *pctx, raw string, old any) (any, error) {
	if raw == "" {
		return nil, nil
	}
	if v, ok := compressions[raw]; ok {
		return v, nil
	}
	b, err := parseBoolean(raw)
	if err != nil {
		return nil, err
	}
	if b {
		return "zstd", nil
	}
	return "none", nil
}

var artifacts = []string{"uki", "kernel", "initrd", "partitions", "tar", "pcrs", "roothash", "os-release",
	"kernel-modules-initrd", "repart-definitions"}

func parseArtifacts(c *pctx, raw string, old any) (any, error) {
	if raw == "" {
		return []string{}, nil
	}
	switch strings.ToLower(raw) {
	case "1", "true", "yes", "y", "t", "on", "always":
		return []string{"uki", "kernel", "initrd", "partitions"}, nil
	case "0", "false", "no", "n", "f", "off", "never":
		return []string{"uki", "kernel", "initrd"}, nil
	}
	var out []string
	if l, ok := old.([]string); ok {
		out = append(out, l...)
	}
	for _, v := range strings.Fields(strings.ReplaceAll(raw, ",", " ")) {
		if !slices.Contains(artifacts, v) {
			return nil, fmt.Errorf("'%s' is not a valid ArtifactOutput", v)
		}
		out = append(out, v)
	}
	return out, nil
}

// shlexSplit splits s like Python's shlex in POSIX mode with
// whitespace_split and the given whitespace characters, no comments.
func shlexSplit(s, ws string) ([]string, error) {
	var (
		out   []string
		cur   strings.Builder
		inTok bool
	)
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case strings.IndexByte(ws, ch) >= 0:
			if inTok {
				out = append(out, cur.String())
				cur.Reset()
				inTok = false
			}
		case ch == '\\':
			inTok = true
			if i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
			}
		case ch == '\'':
			inTok = true
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("no closing quotation in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case ch == '"':
			inTok = true
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`\n", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("no closing quotation in %q", s)
			}
		default:
			inTok = true
			cur.WriteByte(ch)
		}
	}
	if inTok {
		out = append(out, cur.String())
	}
	return out, nil
}

// fnmatch matches name against a shell glob like Python's
// fnmatch.fnmatchcase: '*' and '?' also match '/'.
func fnmatch(pattern, name string) bool {
	px, nx := 0, 0
	nextPx, nextNx := 0, -1
	for px < len(pattern) || nx < len(name) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				nextPx, nextNx = px, nx+1
				px++
				continue
			case '?':
				if nx < len(name) {
					px++
					nx++
					continue
				}
			case '[':
				if nx < len(name) {
					if ok, w, valid := matchClass(pattern[px:], name[nx]); valid {
						if ok {
							px += w
							nx++
							continue
						}
					} else if name[nx] == '[' {
						px++
						nx++
						continue
					}
				}
			default:
				if nx < len(name) && name[nx] == c {
					px++
					nx++
					continue
				}
			}
		}
		if nextNx > 0 && nextNx <= len(name) {
			px, nx = nextPx, nextNx
			continue
		}
		return false
	}
	return true
}

// matchClass matches a "[...]" class at the start of p against c and
// returns the class width; valid is false when the class is not closed.
func matchClass(p string, c byte) (ok bool, width int, valid bool) {
	i := 1
	neg := false
	if i < len(p) && p[i] == '!' {
		neg = true
		i++
	}
	start := i
	for ; i < len(p); i++ {
		if p[i] == ']' && i > start {
			break
		}
	}
	if i >= len(p) {
		return false, 0, false
	}
	body := p[start:i]
	for j := 0; j < len(body); j++ {
		if j+2 < len(body) && body[j+1] == '-' {
			if body[j] <= c && c <= body[j+2] {
				ok = true
			}
			j += 2
			continue
		}
		if body[j] == c {
			ok = true
		}
	}
	return ok != neg, i + 1, true
}
