package eval

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.starlark.net/starlark"

	"github.com/sxb-build/sxb/internal/arch"
	"github.com/sxb-build/sxb/internal/diag"
	"github.com/sxb-build/sxb/internal/label"
	"github.com/sxb-build/sxb/internal/suggest"
	"github.com/sxb-build/sxb/rules"
	"github.com/sxb-build/sxb/starlark/mkosiproject"
)

// Target is the Starlark value a rule call returns; it is accepted wherever
// a label is.
type Target struct{ t *rules.Target }

var (
	_ starlark.Value    = (*Target)(nil)
	_ starlark.HasAttrs = (*Target)(nil)
)

// String returns the target's label.
func (v *Target) String() string { return v.t.Label.String() }

// Type returns "Target".
func (v *Target) Type() string { return "Target" }

// Freeze does nothing: a Target is immutable.
func (v *Target) Freeze() {}

// Truth returns True.
func (v *Target) Truth() starlark.Bool { return starlark.True }

// Hash hashes the label.
func (v *Target) Hash() (uint32, error) { return starlark.String(v.String()).Hash() }

// Attr returns label, name, package or kind.
func (v *Target) Attr(name string) (starlark.Value, error) {
	switch name {
	case "label":
		return starlark.String(v.t.Label.String()), nil
	case "name":
		return starlark.String(v.t.Label.Name), nil
	case "package":
		return starlark.String(v.t.Label.Pkg), nil
	case "kind":
		return starlark.String(v.t.Kind), nil
	}
	return nil, nil
}

// AttrNames lists the attributes.
func (v *Target) AttrNames() []string { return []string{"kind", "label", "name", "package"} }

// Partition is the Starlark value partition() returns.
type Partition struct{ p rules.Partition }

// String describes the partition.
func (v *Partition) String() string {
	var b strings.Builder
	b.WriteString("partition(")
	for i, kv := range v.p.Keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%s", kv.Key, kv.Value)
	}
	b.WriteString(")")
	return b.String()
}

// Type returns "partition".
func (v *Partition) Type() string { return "partition" }

// Freeze does nothing: a Partition is immutable.
func (v *Partition) Freeze() {}

// Truth returns True.
func (v *Partition) Truth() starlark.Bool { return starlark.True }

// Hash fails: partitions are not hashable.
func (v *Partition) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: partition") }

// attrError is an error about a rule call, optionally about one attribute;
// it is positioned at that attribute's value in the call.
type attrError struct {
	rule, name, attr string
	msg              string
	notes            []string
	// unknown is an attribute name that is not allowed; the error points at
	// the name rather than the value.
	unknown string
}

func (e *attrError) Error() string {
	who := e.rule
	if e.name != "" {
		who += fmt.Sprintf(" %q", e.name)
	}
	if e.attr != "" {
		return fmt.Sprintf("%s: %s: %s", who, e.attr, e.msg)
	}
	return who + ": " + e.msg
}

type attrKind int

const (
	kString attrKind = iota
	kBool
	kStrings
	kLabel
	kTrees
	kDict
	kPartitions
	kPath
	kEnum
	kArch
	kScope
)

type attrSpec struct {
	name     string
	kind     attrKind
	required bool
	enum     []string
}

var baseAttrs = []attrSpec{
	{name: "name", kind: kString, required: true},
	{name: "distribution", kind: kEnum, required: true, enum: rules.Distributions},
	{name: "release", kind: kString, required: true},
	{name: "architecture", kind: kArch},
	{name: "mirror", kind: kString},
	{name: "repositories", kind: kStrings},
	{name: "packages", kind: kStrings, required: true},
	{name: "with_recommends", kind: kBool},
	{name: "with_docs", kind: kBool},
	{name: "extra_trees", kind: kTrees},
	{name: "skeleton_trees", kind: kTrees},
	{name: "remove_files", kind: kStrings},
	{name: "keyring", kind: kPath},
	{name: "output", kind: kEnum, enum: []string{"directory", "tar"}},
}

var extAttrs = []attrSpec{
	{name: "name", kind: kString, required: true},
	{name: "base", kind: kLabel},
	{name: "packages", kind: kStrings},
	{name: "extra_trees", kind: kTrees},
	{name: "remove_files", kind: kStrings},
	{name: "with_recommends", kind: kBool},
	{name: "with_docs", kind: kBool},
	{name: "format", kind: kEnum, enum: []string{"erofs", "squashfs"}},
	{name: "compression", kind: kString},
	{name: "verity", kind: kEnum, enum: []string{"off", "hash", "signed"}},
	{name: "key", kind: kPath},
	{name: "certificate", kind: kPath},
	{name: "version", kind: kString},
	{name: "image_id", kind: kString},
	{name: "extension_release", kind: kDict},
	{name: "scope", kind: kScope},
	{name: "partitions", kind: kPartitions},
	{name: "output", kind: kString},
	{name: "architecture", kind: kArch},
	{name: "generate_release", kind: kBool},
}

// Compressions are the compression algorithms accepted per format.
var Compressions = map[string][]string{
	"erofs":    {"deflate", "libdeflate", "lz4", "lz4hc", "lzma", "zstd"},
	"squashfs": {"gzip", "lz4", "lzma", "lzo", "xz", "zstd"},
}

var (
	releaseKeyRE = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)
	imageIDRE    = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
)

// args is a rule call's keyword arguments being converted.
type args struct {
	l     *loader
	ps    *pkgState
	rule  string
	name  string
	specs []attrSpec
	vals  map[string]starlark.Value
	order []string
}

func (a *args) errf(attr, format string, xs ...any) error {
	return &attrError{rule: a.rule, name: a.name, attr: attr, msg: fmt.Sprintf(format, xs...)}
}

// parseArgs checks keyword-only, unknown and missing attributes.
func parseArgs(l *loader, ps *pkgState, rule string, specs []attrSpec, pos starlark.Tuple, kwargs []starlark.Tuple) (*args, error) {
	a := &args{l: l, ps: ps, rule: rule, specs: specs, vals: map[string]starlark.Value{}}
	// The name first, so later errors can say which target.
	for _, kv := range kwargs {
		if string(kv[0].(starlark.String)) == "name" {
			if s, ok := kv[1].(starlark.String); ok {
				a.name = string(s)
			}
		}
	}
	if len(pos) > 0 {
		return nil, a.errf("", "attributes are keyword-only: write %s(name = ..., ...) (got %d positional argument%s)", rule, len(pos), plural(len(pos)))
	}
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.name
	}
	for _, kv := range kwargs {
		k := string(kv[0].(starlark.String))
		if !slices.Contains(names, k) {
			msg := fmt.Sprintf("unknown attribute %q", k)
			if n := nearest(k, names); n != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", n)
			}
			return nil, &attrError{rule: rule, name: a.name, attr: "", msg: msg, notes: nil, unknown: k}
		}
		if kv[1] == starlark.None {
			continue // None means "not set": macros can pass optional values through
		}
		a.vals[k] = kv[1]
		a.order = append(a.order, k)
	}
	for _, s := range specs {
		if _, ok := a.vals[s.name]; s.required && !ok {
			return nil, a.errf("", "missing required attribute %q", s.name)
		}
	}
	return a, nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func (a *args) has(k string) bool { _, ok := a.vals[k]; return ok }

func (a *args) spec(k string) attrSpec {
	for _, s := range a.specs {
		if s.name == k {
			return s
		}
	}
	panic("no spec " + k)
}

func (a *args) str(k, def string) (string, error) {
	v, ok := a.vals[k]
	if !ok {
		return def, nil
	}
	s, ok := v.(starlark.String)
	if !ok {
		return "", a.errf(k, "got %s, want string", v.Type())
	}
	sp := a.spec(k)
	switch sp.kind {
	case kEnum:
		if !slices.Contains(sp.enum, string(s)) {
			msg := fmt.Sprintf("%q is not one of %s", string(s), quoteList(sp.enum))
			if n := nearest(string(s), sp.enum); n != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", n)
			}
			return "", a.errf(k, "%s", msg)
		}
	case kScope:
		words := strings.Fields(string(s))
		if len(words) == 0 {
			return "", a.errf(k, "empty scope (want one or more of \"initrd\", \"system\", \"portable\")")
		}
		for _, w := range words {
			if w != "initrd" && w != "system" && w != "portable" {
				return "", a.errf(k, "%q is not a scope (want \"initrd\", \"system\" or \"portable\", space separated)", w)
			}
		}
		return strings.Join(words, " "), nil
	}
	if strings.ContainsAny(string(s), "\n\x00") {
		return "", a.errf(k, "must not contain a newline or NUL")
	}
	return string(s), nil
}

// arch converts an architecture in any spelling package arch knows.
func (a *args) arch(k string, def arch.Arch) (arch.Arch, error) {
	s, err := a.str(k, "")
	if err != nil || !a.has(k) {
		return def, err
	}
	v, err := arch.Parse(s)
	if err != nil {
		return arch.None, a.errf(k, "%v", err)
	}
	return v, nil
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = strconv.Quote(x)
	}
	return strings.Join(q, ", ")
}

func (a *args) boolean(k string, def bool) (bool, error) {
	v, ok := a.vals[k]
	if !ok {
		return def, nil
	}
	b, ok := v.(starlark.Bool)
	if !ok {
		return false, a.errf(k, "got %s, want bool (True or False)", v.Type())
	}
	return bool(b), nil
}

// strings converts a list of strings; a bare string is an error.
func (a *args) strings(k string) ([]string, error) {
	v, ok := a.vals[k]
	if !ok {
		return nil, nil
	}
	return listOfStrings(v, func(format string, xs ...any) error { return a.errf(k, format, xs...) }, k)
}

func listOfStrings(v starlark.Value, errf func(string, ...any) error, k string) ([]string, error) {
	if s, ok := v.(starlark.String); ok {
		return nil, errf("got string %s, want a list of strings (write %s = [%s])", s.String(), k, s.String())
	}
	it, ok := v.(starlark.Indexable)
	if !ok {
		return nil, errf("got %s, want a list of strings", v.Type())
	}
	if _, isList := v.(*starlark.List); !isList {
		if _, isTuple := v.(starlark.Tuple); !isTuple {
			return nil, errf("got %s, want a list of strings", v.Type())
		}
	}
	out := make([]string, 0, it.Len())
	for i := range it.Len() {
		e := it.Index(i)
		s, ok := e.(starlark.String)
		if !ok {
			return nil, errf("element %d: got %s, want string", i, e.Type())
		}
		if strings.ContainsAny(string(s), "\n\x00") {
			return nil, errf("element %d: must not contain a newline or NUL", i)
		}
		out = append(out, string(s))
	}
	return out, nil
}

func (a *args) labelAttr(k string) (*label.Label, string, error) {
	v, ok := a.vals[k]
	if !ok || v == starlark.None {
		return nil, "", nil
	}
	switch v := v.(type) {
	case *Target:
		lb := v.t.Label
		return &lb, lb.String(), nil
	case starlark.String:
		lb, err := label.Parse(string(v), a.ps.name)
		if err != nil {
			return nil, "", a.errf(k, "%v", err)
		}
		return &lb, string(v), nil
	}
	return nil, "", a.errf(k, "got %s, want a label string or a Target", v.Type())
}

// resolvePath turns a path written in package ps into an absolute host
// path. Relative paths are package-relative, "//x" workspace-relative; both
// must stay inside the workspace and exist. Absolute paths are host paths
// and are taken as they are.
func (l *loader) resolvePath(ps *pkgState, s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("empty path")
	}
	var p string
	switch {
	case strings.HasPrefix(s, "//"):
		p = filepath.Join(l.root, filepath.FromSlash(s[2:]))
	case filepath.IsAbs(s):
		return filepath.Clean(s), nil
	default:
		p = filepath.Join(ps.dir, filepath.FromSlash(s))
	}
	if rel, err := filepath.Rel(l.root, p); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%q leaves the workspace", s)
	}
	if _, err := os.Lstat(p); err != nil {
		return "", fmt.Errorf("%q does not exist (looked for %s)", s, l.display(p))
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("%q: %v", s, err)
	}
	rootReal, err := filepath.EvalSymlinks(l.root)
	if err != nil {
		return "", err
	}
	if rel, err := filepath.Rel(rootReal, real); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%q is a symbolic link leading out of the workspace", s)
	}
	return p, nil
}

func (a *args) path(k string) (string, error) {
	s, err := a.str(k, "")
	if err != nil || s == "" && !a.has(k) {
		return "", err
	}
	p, err := a.l.resolvePath(a.ps, s)
	if err != nil {
		return "", a.errf(k, "%v", err)
	}
	return p, nil
}

func (a *args) trees(k string) ([]rules.Tree, error) {
	ss, err := a.strings(k)
	if err != nil {
		return nil, err
	}
	var out []rules.Tree
	for i, s := range ss {
		src, dst := s, "/"
		if j := strings.IndexByte(s, ':'); j >= 0 {
			src, dst = s[:j], s[j+1:]
		}
		if !strings.HasPrefix(dst, "/") {
			return nil, a.errf(k, "element %d (%q): the target %q must be an absolute path inside the image", i, s, dst)
		}
		if slices.Contains(strings.Split(dst, "/"), "..") {
			return nil, a.errf(k, "element %d (%q): the target %q may not contain \"..\"", i, s, dst)
		}
		p, err := a.l.resolvePath(a.ps, src)
		if err != nil {
			return nil, a.errf(k, "element %d: %v", i, err)
		}
		out = append(out, rules.Tree{Source: p, Target: path.Clean(dst)})
	}
	return out, nil
}

func (a *args) imagePaths(k string) ([]string, error) {
	ss, err := a.strings(k)
	if err != nil {
		return nil, err
	}
	for i, s := range ss {
		if !strings.HasPrefix(s, "/") || slices.Contains(strings.Split(s, "/"), "..") {
			return nil, a.errf(k, "element %d (%q): want an absolute path inside the image without \"..\"", i, s)
		}
	}
	return ss, nil
}

func (a *args) dict(k string) ([]rules.KV, error) {
	v, ok := a.vals[k]
	if !ok {
		return nil, nil
	}
	d, ok := v.(*starlark.Dict)
	if !ok {
		return nil, a.errf(k, "got %s, want a dict of strings to strings", v.Type())
	}
	var out []rules.KV
	for _, item := range d.Items() {
		ks, ok := item[0].(starlark.String)
		if !ok {
			return nil, a.errf(k, "key %s: got %s, want string", item[0].String(), item[0].Type())
		}
		if !releaseKeyRE.MatchString(string(ks)) {
			return nil, a.errf(k, "key %s: want an upper-case field name like \"ID\" or \"SYSEXT_LEVEL\"", ks.String())
		}
		vs, ok := item[1].(starlark.String)
		if !ok {
			return nil, a.errf(k, "value of %s: got %s, want string", ks.String(), item[1].Type())
		}
		if strings.ContainsAny(string(vs), "\n\x00") {
			return nil, a.errf(k, "value of %s: must not contain a newline or NUL", ks.String())
		}
		out = append(out, rules.KV{Key: string(ks), Value: string(vs)})
	}
	return out, nil
}

func (a *args) partitions(k string) ([]rules.Partition, error) {
	v, ok := a.vals[k]
	if !ok {
		return nil, nil
	}
	if _, ok := v.(*Partition); ok {
		return nil, a.errf(k, "got a partition, want a list (write %s = [partition(...)])", k)
	}
	if s, ok := v.(starlark.String); ok {
		return nil, a.errf(k, "got string %s, want a list of partition() values or repart.d files (write %s = [%s])", s.String(), k, s.String())
	}
	var elems []starlark.Value
	switch v := v.(type) {
	case *starlark.List:
		for i := range v.Len() {
			elems = append(elems, v.Index(i))
		}
	case starlark.Tuple:
		elems = v
	default:
		return nil, a.errf(k, "got %s, want a list of partition() values or repart.d files", v.Type())
	}
	var out []rules.Partition
	for i, e := range elems {
		switch e := e.(type) {
		case *Partition:
			out = append(out, e.p)
		case starlark.String:
			if !strings.HasSuffix(string(e), ".conf") {
				return nil, a.errf(k, "element %d (%s): a repart.d file name must end in \".conf\"", i, e.String())
			}
			p, err := a.l.resolvePath(a.ps, string(e))
			if err != nil {
				return nil, a.errf(k, "element %d: %v", i, err)
			}
			out = append(out, rules.Partition{Pos: diag.Pos{File: a.l.display(p)}, File: p})
		default:
			return nil, a.errf(k, "element %d: got %s, want partition() or a repart.d file name", i, e.Type())
		}
	}
	return out, nil
}

// ruleBuiltin implements base_image, sysext and confext.
func ruleBuiltin(th *starlark.Thread, b *starlark.Builtin, pos starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	kind := b.Name()
	ps, err := currentPkg(th, kind)
	if err != nil {
		return nil, err
	}
	l := loaderOf(th)
	specs := extAttrs
	if kind == rules.KindBaseImage {
		specs = baseAttrs
	}
	a, err := parseArgs(l, ps, kind, specs, pos, kwargs)
	if err != nil {
		return nil, err
	}
	name, err := a.str("name", "")
	if err != nil {
		return nil, err
	}
	if err := label.ValidateName(name); err != nil {
		return nil, a.errf("name", "%v", err)
	}
	t := &rules.Target{Label: label.Label{Pkg: ps.name, Name: name}, Kind: kind}
	d := &decl{t: t}
	if kind == rules.KindBaseImage {
		t.Base, err = a.baseImage(name)
	} else {
		t.Ext, d.baseText, err = a.extension(name, kind)
		if t.Ext != nil && t.Ext.Base != nil {
			t.Deps = []label.Label{*t.Ext.Base}
		}
	}
	if err != nil {
		return nil, err
	}
	if err := l.declare(th, ps, d, a); err != nil {
		return nil, err
	}
	return &Target{t: t}, nil
}

// declare adds d to package ps, refusing duplicate names.
func (l *loader) declare(th *starlark.Thread, ps *pkgState, d *decl, a *args) error {
	frames := userFrames(th.CallStack())
	if len(frames) > 0 {
		d.call = frames[len(frames)-1].Pos
		d.stack = frames
		d.t.Pos = l.callStart(frames[0].Pos)
	}
	name := d.t.Label.Name
	if prev, dup := ps.byName[name]; dup {
		where := prev.t.Pos
		if len(prev.stack) == 1 {
			where = l.attrPos(prev.call, "name")
		}
		rule := d.t.Kind
		if a != nil {
			rule = a.rule
		}
		return &attrError{rule: rule, attr: "name", msg: fmt.Sprintf("duplicate target name %q in package //%s", name, ps.name),
			notes: []string{fmt.Sprintf("note: %q was first declared here: %s", name, where)}}
	}
	if err := l.claimOutputs(ps, d, a); err != nil {
		return err
	}
	ps.byName[name] = d
	ps.decls = append(ps.decls, d)
	return nil
}

// claimOutputs refuses an extension whose published file names (in the
// package's output directory) another target of the package already
// writes: the later build would silently replace the earlier's image.
func (l *loader) claimOutputs(ps *pkgState, d *decl, a *args) error {
	x := d.t.Ext
	if x == nil || d.t.Publish != nil {
		return nil
	}
	files := []string{x.Output + ".raw"}
	if x.Version != "" {
		files = append(files, x.Output+"_"+x.Version+".raw")
	}
	if ps.outputs == nil {
		ps.outputs = map[string]*decl{}
	}
	for _, f := range files {
		prev, dup := ps.outputs[f]
		if !dup {
			continue
		}
		rule, attr := d.t.Kind, "name"
		if a != nil {
			rule = a.rule
			if a.has("output") {
				attr = "output"
			}
		}
		return &attrError{rule: rule, name: d.t.Label.Name, attr: attr,
			msg:   fmt.Sprintf("output file %s is also written by %s in the same package; give one of them another output (or name)", f, prev.t.Label),
			notes: []string{fmt.Sprintf("note: %s was declared here: %s", prev.t.Label, prev.t.Pos)}}
	}
	for _, f := range files {
		ps.outputs[f] = d
	}
	return nil
}

func (a *args) baseImage(name string) (*rules.BaseImage, error) {
	bi := &rules.BaseImage{Name: name}
	var err error
	set := func(f func() error) {
		if err == nil {
			err = f()
		}
	}
	set(func() (e error) { bi.Distribution, e = a.str("distribution", ""); return })
	set(func() (e error) { bi.Release, e = a.str("release", ""); return })
	set(func() (e error) { bi.Architecture, e = a.arch("architecture", arch.Native()); return })
	set(func() (e error) { bi.Mirror, e = a.str("mirror", ""); return })
	set(func() (e error) { bi.Repositories, e = a.strings("repositories"); return })
	set(func() (e error) { bi.Packages, e = a.strings("packages"); return })
	set(func() (e error) { bi.WithRecommends, e = a.boolean("with_recommends", false); return })
	set(func() (e error) { bi.WithDocs, e = a.boolean("with_docs", true); return })
	set(func() (e error) { bi.ExtraTrees, e = a.trees("extra_trees"); return })
	set(func() (e error) { bi.SkeletonTrees, e = a.trees("skeleton_trees"); return })
	set(func() (e error) { bi.RemoveFiles, e = a.imagePaths("remove_files"); return })
	set(func() (e error) { bi.Keyring, e = a.path("keyring"); return })
	set(func() (e error) { bi.Output, e = a.str("output", "directory"); return })
	if err != nil {
		return nil, err
	}
	if bi.Release == "" {
		return nil, a.errf("release", "must not be empty")
	}
	if bi.Packages == nil {
		bi.Packages = []string{}
	}
	return bi, nil
}

func (a *args) extension(name, kind string) (*rules.Extension, string, error) {
	x := &rules.Extension{Name: name, Kind: kind}
	var err error
	var baseText string
	set := func(f func() error) {
		if err == nil {
			err = f()
		}
	}
	set(func() (e error) { x.Base, baseText, e = a.labelAttr("base"); return })
	set(func() (e error) { x.Packages, e = a.strings("packages"); return })
	set(func() (e error) { x.ExtraTrees, e = a.trees("extra_trees"); return })
	set(func() (e error) { x.RemoveFiles, e = a.imagePaths("remove_files"); return })
	set(func() (e error) { x.WithRecommends, e = a.boolean("with_recommends", false); return })
	set(func() (e error) { x.WithDocs, e = a.boolean("with_docs", true); return })
	set(func() (e error) { x.Format, e = a.str("format", "erofs"); return })
	set(func() (e error) { x.Compression, e = a.str("compression", ""); return })
	set(func() (e error) { x.Verity, e = a.str("verity", "off"); return })
	set(func() (e error) { x.Key, e = a.path("key"); return })
	set(func() (e error) { x.Certificate, e = a.path("certificate"); return })
	set(func() (e error) { x.Version, e = a.str("version", ""); return })
	set(func() (e error) { x.ImageID, e = a.str("image_id", ""); return })
	set(func() (e error) { x.ExtensionRelease, e = a.dict("extension_release"); return })
	set(func() (e error) { x.Scope, e = a.str("scope", ""); return })
	set(func() (e error) { x.Partitions, e = a.partitions("partitions"); return })
	set(func() (e error) { x.Output, e = a.str("output", name); return })
	set(func() (e error) { x.Architecture, e = a.arch("architecture", arch.None); return })
	set(func() (e error) {
		gen, e := a.boolean("generate_release", true)
		x.ReleaseFromTrees = !gen
		return e
	})
	if err != nil {
		return nil, "", err
	}
	if x.ReleaseFromTrees && len(x.ExtensionRelease) > 0 {
		return nil, "", a.errf("extension_release", "extension_release needs generate_release = True (with False the file comes from extra_trees as written)")
	}
	if len(x.Packages) > 0 && x.Base == nil {
		return nil, "", a.errf("packages", "packages need a base image to be installed on (set base = ...)")
	}
	if x.Compression != "" {
		alg, _, _ := strings.Cut(x.Compression, ",")
		if ok := Compressions[x.Format]; !slices.Contains(ok, alg) {
			return nil, "", a.errf("compression", "%q is not a %s compression (want one of %s)", alg, x.Format, quoteList(ok))
		}
	}
	switch {
	case x.Verity == "signed" && (x.Key == "" || x.Certificate == ""):
		return nil, "", a.errf("verity", "verity = \"signed\" needs key and certificate")
	case x.Verity != "signed" && x.Key != "":
		return nil, "", a.errf("key", "a key is only used with verity = \"signed\"")
	case x.Verity != "signed" && x.Certificate != "":
		return nil, "", a.errf("certificate", "a certificate is only used with verity = \"signed\"")
	}
	if x.Version != "" && strings.ContainsAny(x.Version, " \t") {
		return nil, "", a.errf("version", "%q must not contain spaces", x.Version)
	}
	if strings.ContainsAny(x.Version, "/\x00") {
		return nil, "", a.errf("version", "%q must not contain \"/\": it is part of the output file name", x.Version)
	}
	if x.ImageID != "" && !imageIDRE.MatchString(x.ImageID) {
		return nil, "", a.errf("image_id", "%q: only letters, digits, \".\", \"_\" and \"-\" are allowed", x.ImageID)
	}
	if err := label.ValidateName(x.Output); err != nil {
		return nil, "", a.errf("output", "%q is not a valid file name", x.Output)
	}
	return x, baseText, nil
}

// partition() attributes and their repart.d keys.
type partKind int

const (
	pString partKind = iota
	pStrings
	pBool
	pMinimize
	pIntOrString
	pInt
)

type partAttr struct {
	name, key string
	kind      partKind
	enum      []string
}

var partAttrs = []partAttr{
	{"type", "Type", pString, nil},
	{"format", "Format", pString, []string{"btrfs", "erofs", "ext2", "ext3", "ext4", "f2fs", "squashfs", "swap", "vfat", "xfs"}},
	{"copy_files", "CopyFiles", pStrings, nil},
	{"copy_blocks", "CopyBlocks", pString, nil},
	{"exclude_files", "ExcludeFiles", pStrings, nil},
	{"exclude_files_target", "ExcludeFilesTarget", pStrings, nil},
	{"make_directories", "MakeDirectories", pStrings, nil},
	{"minimize", "Minimize", pMinimize, nil},
	{"label", "Label", pString, nil},
	{"uuid", "UUID", pString, nil},
	{"verity", "Verity", pString, []string{"off", "data", "hash", "signature"}},
	{"verity_match_key", "VerityMatchKey", pString, nil},
	{"split_name", "SplitName", pString, nil},
	{"size_min", "SizeMinBytes", pIntOrString, nil},
	{"size_max", "SizeMaxBytes", pIntOrString, nil},
	{"padding_min", "PaddingMinBytes", pIntOrString, nil},
	{"padding_max", "PaddingMaxBytes", pIntOrString, nil},
	{"priority", "Priority", pInt, nil},
	{"weight", "Weight", pInt, nil},
	{"read_only", "ReadOnly", pBool, nil},
	{"no_auto", "NoAuto", pBool, nil},
	{"grow_file_system", "GrowFileSystem", pBool, nil},
	{"flags", "Flags", pIntOrString, nil},
	{"compression", "Compression", pString, nil},
	{"compression_level", "CompressionLevel", pIntOrString, nil},
}

// partitionBuiltin implements partition(): a repart.d [Partition] as a value.
func partitionBuiltin(th *starlark.Thread, b *starlark.Builtin, pos starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	errf := func(attr, format string, xs ...any) error {
		return &attrError{rule: "partition", attr: attr, msg: fmt.Sprintf(format, xs...)}
	}
	if len(pos) > 0 {
		return nil, errf("", "attributes are keyword-only: write partition(type = ..., ...) (got %d positional argument%s)", len(pos), plural(len(pos)))
	}
	var names []string
	for _, pa := range partAttrs {
		names = append(names, pa.name)
	}
	p := rules.Partition{}
	hasType := false
	for _, kv := range kwargs {
		k := string(kv[0].(starlark.String))
		v := kv[1]
		i := slices.Index(names, k)
		if i < 0 {
			msg := fmt.Sprintf("unknown attribute %q", k)
			if n := nearest(k, names); n != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", n)
			}
			return nil, &attrError{rule: "partition", msg: msg, unknown: k}
		}
		pa := partAttrs[i]
		add := func(val string) { p.Keys = append(p.Keys, rules.KV{Key: pa.key, Value: val}) }
		switch pa.kind {
		case pString:
			s, ok := v.(starlark.String)
			if !ok {
				return nil, errf(k, "got %s, want string", v.Type())
			}
			if strings.ContainsAny(string(s), "\n\x00") {
				return nil, errf(k, "must not contain a newline or NUL")
			}
			if pa.enum != nil && !slices.Contains(pa.enum, string(s)) {
				return nil, errf(k, "%s is not one of %s", s.String(), quoteList(pa.enum))
			}
			add(string(s))
		case pStrings:
			ss, err := listOfStrings(v, func(format string, xs ...any) error { return errf(k, format, xs...) }, k)
			if err != nil {
				return nil, err
			}
			for _, s := range ss {
				add(s)
			}
		case pBool:
			bv, ok := v.(starlark.Bool)
			if !ok {
				return nil, errf(k, "got %s, want bool (True or False)", v.Type())
			}
			add(map[bool]string{true: "yes", false: "no"}[bool(bv)])
		case pMinimize:
			switch v := v.(type) {
			case starlark.Bool:
				add(map[bool]string{true: "best", false: "off"}[bool(v)])
			case starlark.String:
				if s := string(v); s != "off" && s != "best" && s != "guess" {
					return nil, errf(k, "%s is not one of \"off\", \"best\", \"guess\" (or True/False)", v.String())
				}
				add(string(v))
			default:
				return nil, errf(k, "got %s, want \"off\", \"best\", \"guess\" or a bool", v.Type())
			}
		case pInt, pIntOrString:
			switch v := v.(type) {
			case starlark.Int:
				n, ok := v.Int64()
				if !ok || n < 0 {
					return nil, errf(k, "%s is out of range", v.String())
				}
				add(strconv.FormatInt(n, 10))
			case starlark.String:
				if pa.kind == pInt {
					return nil, errf(k, "got string, want int")
				}
				if string(v) == "" || strings.ContainsAny(string(v), " \n\x00") {
					return nil, errf(k, "%s is not a size or number", v.String())
				}
				add(string(v))
			default:
				return nil, errf(k, "got %s, want int or string", v.Type())
			}
		}
		if k == "type" {
			hasType = true
		}
	}
	if !hasType {
		return nil, errf("", "missing required attribute \"type\"")
	}
	// Keys follow the attribute table, not the call: reordering keyword
	// arguments (as sxb fmt does) must not change the partition.
	slices.SortStableFunc(p.Keys, func(a, b rules.KV) int {
		key := func(k string) int {
			return slices.IndexFunc(partAttrs, func(pa partAttr) bool { return pa.key == k })
		}
		return key(a.Key) - key(b.Key)
	})
	frames := userFrames(th.CallStack())
	if len(frames) > 0 {
		p.Pos = loaderOf(th).callStart(frames[len(frames)-1].Pos)
	}
	return &Partition{p: p}, nil
}

func mkosiBuiltin(th *starlark.Thread, b *starlark.Builtin, pos starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	ps, err := currentPkg(th, b.Name())
	if err != nil {
		return nil, err
	}
	l := loaderOf(th)
	a, err := parseArgs(l, ps, b.Name(), []attrSpec{{name: "directory", kind: kString}}, pos, kwargs)
	if err != nil {
		return nil, err
	}
	dir, err := a.str("directory", ".")
	if err != nil {
		return nil, err
	}
	abs, err := l.resolvePath(ps, dir)
	if err != nil {
		return nil, a.errf("directory", "%v", err)
	}
	frames := userFrames(th.CallStack())
	req := l.mkosiRequest(ps, abs)
	if len(frames) > 0 {
		req.Pos = l.callStart(frames[len(frames)-1].Pos)
	}
	ts, err := l.mkosi(req)
	if err != nil {
		if _, ok := diag.As(err); ok {
			return nil, err
		}
		return nil, a.errf("", "%v", err)
	}
	var out []starlark.Value
	for _, t := range ts {
		if err := l.declareMkosi(th, ps, t, a); err != nil {
			return nil, err
		}
		out = append(out, &Target{t: t})
	}
	return starlark.NewList(out), nil
}

func (l *loader) mkosiRequest(ps *pkgState, dir string) mkosiproject.Request {
	return mkosiproject.Request{Workspace: l.root, Package: ps.name, Dir: dir, Cwd: l.cwd, Warn: func(d *diag.Diagnostic) {
		l.printMu.Lock()
		defer l.printMu.Unlock()
		diag.Render(l.stderr, d, diag.UseColor(l.stderr))
	}}
}

// declareMkosi adds a target mkosiproject returned to package ps.
// th and a are nil for a package that is an mkosi directory.
func (l *loader) declareMkosi(th *starlark.Thread, ps *pkgState, t *rules.Target, a *args) error {
	errf := func(format string, xs ...any) error {
		if a != nil {
			return a.errf("", format, xs...)
		}
		return fmt.Errorf("package //%s: %s", ps.name, fmt.Sprintf(format, xs...))
	}
	if t.Label.Pkg == "" {
		t.Label.Pkg = ps.name
	}
	if t.Label.Pkg != ps.name {
		return errf("mkosi image %s is not in package //%s", t.Label, ps.name)
	}
	if err := label.ValidateName(t.Label.Name); err != nil {
		return errf("mkosi image: %v", err)
	}
	if t.Deps == nil && t.Ext != nil && t.Ext.Base != nil {
		t.Deps = []label.Label{*t.Ext.Base}
	}
	d := &decl{t: t}
	if t.Ext != nil && t.Ext.Base != nil {
		d.baseText = t.Ext.Base.String()
	}
	hookPos := t.Pos
	if th == nil {
		if prev, dup := ps.byName[t.Label.Name]; dup {
			return diag.Errorf(hookPos, "duplicate target name %q in package //%s (first declared at %s)", t.Label.Name, ps.name, prev.t.Pos)
		}
		ps.byName[t.Label.Name] = d
		ps.decls = append(ps.decls, d)
		return nil
	}
	if err := l.declare(th, ps, d, a); err != nil {
		return err
	}
	if hookPos.File != "" {
		t.Pos = hookPos // where the image is configured (its mkosi.conf)
	}
	return nil
}

// evalMkosiPackage declares the targets of a package that is an mkosi
// project directory, as mkosi_project(directory = ".") would.
func (l *loader) evalMkosiPackage(ps *pkgState) error {
	ts, err := l.mkosi(l.mkosiRequest(ps, ps.dir))
	if err != nil {
		return err
	}
	for _, t := range ts {
		if err := l.declareMkosi(nil, ps, t, nil); err != nil {
			return err
		}
	}
	return nil
}

// nearest returns the candidate closest to s by edit distance (with
// transpositions), if close.
func nearest(s string, candidates []string) string {
	best, bestD := "", len(s)/2+2
	for _, c := range candidates {
		if d := suggest.WithTranspositions(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	if bestD > max(2, len(s)/3) {
		return ""
	}
	return best
}

// userFrames drops built-in frames from a call stack.
func userFrames(cs starlark.CallStack) []starlark.CallFrame {
	out := make([]starlark.CallFrame, 0, len(cs))
	for _, f := range cs {
		if f.Pos.Filename() != "<builtin>" {
			out = append(out, f)
		}
	}
	return out
}
