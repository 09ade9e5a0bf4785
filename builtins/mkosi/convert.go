package mkosi

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/bazelbuild/buildtools/build"
	"github.com/sxb-build/sxb/builtins/tree"
)

// EffectiveVerity maps Verity= to what mkosi does for an extension image:
// "off", "hash", "signed" or "defer" (auto is signed when a key and
// certificate are configured, else off).
func (im *Image) EffectiveVerity() string {
	switch im.Verity {
	case "hash", "signed", "defer":
		return im.Verity
	case "auto":
		if im.VerityKey != "" && im.VerityCertificate != "" {
			return "signed"
		}
	}
	return "off"
}

// HasContent reports whether the image installs or copies anything; the
// main image of many projects only carries settings for its subimages.
func (im *Image) HasContent() bool {
	return len(im.AllPackages()) > 0 || len(im.BaseTrees) > 0 || len(im.SkeletonTrees) > 0 || len(im.ExtraTrees) > 0 ||
		len(im.RepartDirs) > 0
}

// Conversion is the result of Convert.
type Conversion struct {
	// BuildStar is the formatted BUILD.star text.
	BuildStar []byte
	// TODO lists settings that have no Starlark equivalent; each is also
	// a "# TODO(mkosi): Key=Value" comment in BuildStar.
	TODO []Setting
	// Notes are remarks about the conversion (skipped images).
	Notes []string
}

// structural settings are consumed by the conversion itself.
var structural = map[string]bool{"OutputDirectory": true, "CacheDirectory": true, "Dependencies": true,
	"Profiles": true, "Include": true, "Format": true, "PassEnvironment": true}

// universalAttrs are settings of the main image that become attributes of
// every base_image.
var universalAttrs = []string{"Distribution", "Release", "Architecture", "Mirror", "Repositories"}

type converter struct {
	p     *Project
	out   strings.Builder
	conv  *Conversion
	bases int
}

// Convert turns a loaded project into idiomatic BUILD.star: one
// base_image/sysext/confext call per image, dependencies as labels,
// mkosi.extra and mkosi.repart referenced in place.
func Convert(p *Project) (*Conversion, error) {
	c := &converter{p: p, conv: &Conversion{}}
	c.out.WriteString("# BUILD.star converted from the mkosi configuration by \"sxb convert\".\n")
	if prof := p.Main().Profiles; len(prof) > 0 {
		fmt.Fprintf(&c.out, "# Profiles applied: %s\n", strings.Join(prof, ", "))
	}
	var calls strings.Builder
	for _, im := range p.Images {
		var b strings.Builder
		c.image(&b, im)
		if b.Len() > 0 {
			calls.WriteString("\n")
			calls.WriteString(b.String())
		}
	}
	main := p.Main()
	mainTODO := c.todos(main, func(name string) bool {
		if structural[name] || name == "SysupdateDirectory" && p.SysupdateDir() != "" {
			return true // the extensions' sysupdate attribute
		}
		if main.Format == "none" || !main.HasContent() {
			// Local settings of a main image that is not built are moot;
			// inherited ones were converted with the subimages.
			if sc := settingByName[name].Scope; sc == scLocal || sc == scInherit {
				return true
			}
			return c.bases > 0 && contains(universalAttrs, name)
		}
		return true // handled with the main image's call
	}, true)
	if len(mainTODO) > 0 && (main.Format == "none" || !main.HasContent()) {
		c.out.WriteString("\n# Settings of the main image:\n")
		c.out.WriteString(strings.Join(mainTODO, ""))
	}
	c.out.WriteString(calls.String())
	f, err := build.ParseBuild("BUILD.star", []byte(c.out.String()))
	if err != nil {
		return nil, fmt.Errorf("formatting converted BUILD.star: %w\n%s", err, c.out.String())
	}
	c.conv.BuildStar = build.Format(f)
	return c.conv, nil
}

// own reports whether the setting was written in im's own files rather
// than inherited from the main image.
func (c *converter) own(im *Image, name string) bool {
	pos, ok := im.Pos[name]
	if !ok {
		return false
	}
	if im.Name == "main" {
		return true
	}
	rel, err := filepath.Rel(im.Dir, pos.File)
	if err == nil && !strings.HasPrefix(rel, "..") {
		return true
	}
	return contains(im.Files, pos.File)
}

func (c *converter) rel(p string) string {
	if r, err := filepath.Rel(c.p.Dir, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}

type attr struct {
	setting string // mkosi setting it comes from ("" for none)
	name    string
	value   string // Starlark expression
}

func q(s string) string { return strconv.Quote(s) }

func qlist(l []string) string {
	parts := make([]string, len(l))
	for i, s := range l {
		parts[i] = q(s)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func (c *converter) trees(ts []Tree) string {
	var l []string
	for _, t := range ts {
		s := c.rel(t.Source)
		if tgt := t.ImageTarget(); tgt != "/" {
			s += ":" + tgt
		}
		l = append(l, s)
	}
	return qlist(l)
}

func (c *converter) image(b *strings.Builder, im *Image) {
	consumed := map[string]bool{}
	var attrs []attr
	add := func(setting, name, value string) {
		attrs = append(attrs, attr{setting, name, value})
		consumed[setting] = true
	}
	rule := ""
	isMain := im.Name == "main"
	switch {
	case im.Format == "none":
		c.conv.Notes = append(c.conv.Notes, fmt.Sprintf("image %s has Format=none: its settings are inherited by the other images", im.Name))
		return
	case im.Name == defaultInitrdName:
		c.conv.Notes = append(c.conv.Notes, "image default-initrd is the initrd mkosi builds for a bootable image with a kernel: not converted")
		return
	case isMain && !im.HasContent():
		c.conv.Notes = append(c.conv.Notes, fmt.Sprintf("main image (Format=%s) installs nothing: not converted", im.Format))
		return
	case im.Format == "directory" || im.Format == "tar":
		rule = "base_image"
	case im.Format == "sysext" || im.Format == "confext":
		rule = im.Format
	case im.Format == "disk" && im.Overlay:
		rule = "sysext"
		if c.confextTree(im) {
			rule = "confext"
		}
		consumed["Overlay"] = true
	default:
		// No rule builds this format: the image still becomes a rule,
		// the tree it is made of, marked as not what mkosi builds.
		rule = "base_image"
	}
	name := im.Name
	if isMain {
		name = im.Output
	}
	if rule == "base_image" && im.Format != "directory" && im.Format != "tar" {
		what := fmt.Sprintf("Format=%s", im.Format)
		if im.Format == "disk" {
			what += fmt.Sprintf(" (Overlay=%s)", yesNo(im.Overlay))
		}
		c.mark(b, im, "Format", what, "has no Starlark equivalent: converted to a base_image of the image's tree, not the image mkosi builds")
	}
	add("", "name", q(name))
	if rule == "base_image" {
		c.bases++
		add("Distribution", "distribution", q(im.Distribution))
		add("Release", "release", q(im.Release))
		if im.IsExplicit("Architecture") {
			add("Architecture", "architecture", q(im.Architecture))
		}
		if im.Mirror != "" {
			add("Mirror", "mirror", q(im.Mirror))
		}
		if len(im.Repositories) > 0 {
			add("Repositories", "repositories", qlist(im.Repositories))
		}
		// A base layered on another base or on a tree.
		if base := c.baseLabel(im); base != "" {
			add("BaseTrees", "base", q(base))
		}
	} else {
		consumed["Overlay"] = true
		if base := c.baseLabel(im); base != "" {
			add("BaseTrees", "base", q(base))
		}
	}
	if pkgs := im.AllPackages(); len(pkgs) > 0 || rule == "base_image" {
		add("Packages", "packages", qlist(pkgs))
		consumed["VolatilePackages"] = true
	}
	if rule == "base_image" {
		if im.IsExplicit("WithRecommends") {
			add("WithRecommends", "with_recommends", starBool(im.WithRecommends))
		}
		if im.IsExplicit("WithDocs") {
			add("WithDocs", "with_docs", starBool(im.WithDocs))
		}
		if len(im.SkeletonTrees) > 0 {
			add("SkeletonTrees", "skeleton_trees", c.trees(im.SkeletonTrees))
		}
	}
	if len(im.ExtraTrees) > 0 {
		add("ExtraTrees", "extra_trees", c.trees(im.ExtraTrees))
	}
	if len(im.RemoveFiles) > 0 {
		add("RemoveFiles", "remove_files", qlist(im.RemoveFiles))
	}
	if rule == "base_image" && im.AppliesFirstBoot() && len(im.FirstBoot) > 0 {
		// One dict for the settings mkosi hands systemd-firstboot, keyed
		// as rules.FirstBootKeys (the snake case of the setting).
		var kv []string
		first := ""
		for _, n := range FirstBootSettings {
			if v, ok := im.FirstBoot[n]; ok {
				kv = append(kv, q(snake(n))+": "+q(v))
				if first == "" {
					first = n
				}
				consumed[n] = true
			}
		}
		add(first, "firstboot", "{"+strings.Join(kv, ", ")+"}")
	}
	if im.IsExplicit("SourceDateEpoch") && im.SourceDateEpoch != nil {
		add("SourceDateEpoch", "source_date_epoch", strconv.FormatInt(*im.SourceDateEpoch, 10))
	}
	if rule == "base_image" {
		out := im.Format
		if out != "tar" {
			out = "directory"
		}
		add("", "output", q(out))
	} else {
		overrides := im.RepartOverrides()
		switch {
		case len(im.RepartDirs) > 0:
			var globs []string
			for _, d := range im.RepartDirs {
				globs = append(globs, c.rel(filepath.Join(d, "*.conf")))
			}
			add("RepartDirectories", "partitions", "glob("+qlist(globs)+")")
			if len(overrides) > 0 {
				c.mark(b, im, "Environment", strings.Join(overrides, " "), "applies to the repart.d files when mkosi runs systemd-repart; edit their Format= instead")
			}
		case im.Format == "disk":
			// mkosi's default definition for a disk without mkosi.repart/.
			if fs := im.RootFilesystem(); fs != "erofs" && fs != "squashfs" {
				c.mark(b, im, "Format", "disk", fmt.Sprintf("without mkosi.repart/ has a %s root partition, which sxb does not write: set format to erofs or squashfs", fs))
			}
			add("Format", "partitions", fmt.Sprintf("[partition(type = \"root\", format = %s, copy_files = [\"/\"], minimize = \"guess\")]", q(im.RootFilesystem())))
		case im.RootFilesystem() != "erofs":
			add("", "format", q(im.RootFilesystem()))
		}
		add("Verity", "verity", q(im.EffectiveVerity()))
		if im.EffectiveVerity() == "signed" {
			consumed["VerityKey"], consumed["VerityCertificate"] = true, true
			attrs = append(attrs, attr{"VerityKey", "key", q(c.rel(im.VerityKey))},
				attr{"VerityCertificate", "certificate", q(c.rel(im.VerityCertificate))})
		}
		if im.ImageVersion != "" {
			add("ImageVersion", "version", q(im.ImageVersion))
		}
		switch im.CompressOutput {
		case "zstd", "xz":
			add("CompressOutput", "compress_output", q(im.CompressOutput))
		}
		if d := c.p.SysupdateDir(); d != "" {
			add("SysupdateDirectory", "sysupdate", "struct(definitions = "+q(c.rel(d))+")")
		}
		if im.ImageID != "" {
			add("ImageId", "image_id", q(im.ImageID))
		}
		switch im.Seed {
		case "":
		case "random":
			consumed["Seed"] = true // sxb's UUIDs are reproducible
		default:
			add("Seed", "seed", q(im.Seed))
		}
		scopeKey := strings.ToUpper(rule) + "_SCOPE"
		if sc, ok := im.Environment[scopeKey]; ok {
			add("", "scope", q(sc))
		}
		// The output name without the version sxb appends (mkosi's
		// default Output carries it), as the mkosi adapter names it.
		out := im.Output
		if v := im.ImageVersion; v != "" && strings.HasSuffix(out, "_"+v) && out != "_"+v {
			out = strings.TrimSuffix(out, "_"+v)
		}
		if im.IsExplicit("Output") || out != name {
			add("Output", "output", q(out))
		}
		if im.Format == "disk" {
			// mkosi writes no extension-release for Format=disk: the
			// user's file in the extra trees is taken as it is.
			add("", "generate_release", "False")
		}
	}
	c.scripts(im, add)
	todo := c.todos(im, func(n string) bool {
		if consumed[n] || structural[n] {
			return true
		}
		if n == "Environment" {
			return c.envConsumed(im, rule)
		}
		// Settings inherited from the main image are reported once, with
		// the main image.
		return !isMain && !c.own(im, n)
	}, false)
	b.WriteString(strings.Join(todo, ""))
	fmt.Fprintf(b, "%s(\n", rule)
	for _, a := range attrs {
		if a.setting != "" {
			for _, cm := range im.Comments[a.setting] {
				b.WriteString(indent(comment(cm)))
			}
		}
		fmt.Fprintf(b, "    %s = %s,\n", a.name, a.value)
	}
	b.WriteString(")\n")
}

// scriptPhases are mkosi's script phases in build order with their
// settings.
var scriptPhases = []struct{ phase, setting string }{
	{"sync", "SyncScripts"}, {"prepare", "PrepareScripts"}, {"build", "BuildScripts"},
	{"postinst", "PostInstallationScripts"}, {"finalize", "FinalizeScripts"},
	{"postoutput", "PostOutputScripts"}, {"clean", "CleanScripts"},
}

// scripts adds the script attributes of im, and what mkosi gives its
// scripts, when it has any.
func (c *converter) scripts(im *Image, add func(setting, name, value string)) {
	if len(im.Scripts) == 0 {
		return
	}
	for _, p := range scriptPhases {
		if l := im.Scripts[p.phase]; len(l) > 0 {
			var rel []string
			for _, s := range l {
				rel = append(rel, c.rel(s))
			}
			add(p.setting, p.phase+"_scripts", qlist(rel))
		}
	}
	if len(im.Scripts["build"]) > 0 {
		if len(im.BuildPackages) > 0 {
			add("BuildPackages", "build_packages", qlist(im.BuildPackages))
		}
		if im.BuildDirectory != "" {
			add("BuildDirectory", "build_dir", q(c.rel(im.BuildDirectory)))
		}
	}
	if len(im.BuildSources) > 0 {
		var l []string
		for _, t := range im.BuildSources {
			l = append(l, c.rel(t.Source)+":/"+strings.Trim(t.Target, "/"))
		}
		add("BuildSources", "build_sources", qlist(l))
	} else {
		// mkosi's $SRCDIR is the project directory.
		add("", "build_sources", qlist([]string{c.rel(c.p.Dir) + ":/"}))
	}
	if im.WithNetwork {
		add("WithNetwork", "with_network", "True")
	}
	if len(im.EnvironmentFiles) > 0 {
		var rel []string
		for _, f := range im.EnvironmentFiles {
			rel = append(rel, c.rel(f))
		}
		add("EnvironmentFiles", "environment_files", qlist(rel))
	}
	if env := im.ScriptEnvironment(); len(env) > 0 {
		keys := make([]string, 0, len(env))
		for k := range env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var kv []string
		for _, k := range keys {
			kv = append(kv, q(k)+": "+q(env[k]))
		}
		add("Environment", "environment", "{"+strings.Join(kv, ", ")+"}")
	}
}

func starBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// envConsumed reports whether Environment= holds nothing but the
// extension scope, which maps to scope=, and the repart overrides, which
// shape format or partitions.
func (c *converter) envConsumed(im *Image, rule string) bool {
	for k := range im.Environment {
		if k != strings.ToUpper(rule)+"_SCOPE" && !strings.HasPrefix(k, repartOverridePrefix) {
			return false
		}
	}
	return true
}

// confextTree reports whether the extra trees carry an
// etc/extension-release.d/ file (a hand-written confext).
func (c *converter) confextTree(im *Image) bool {
	for _, t := range im.ExtraTrees {
		if isDir(filepath.Join(t.Source, "etc/extension-release.d")) && !isDir(filepath.Join(t.Source, "usr/lib/extension-release.d")) {
			return true
		}
	}
	return false
}

// isBase reports whether im converts to a base_image (what is not an
// extension does).
func isBase(im *Image) bool {
	return im.Format != "sysext" && im.Format != "confext" && !(im.Format == "disk" && im.Overlay)
}

// baseLabel maps BaseTrees=%O/<image> to ":<image>" and a directory no
// image writes to "<dir>/".
func (c *converter) baseLabel(im *Image) string {
	if len(im.BaseTrees) != 1 {
		return ""
	}
	other := c.p.ImageAt(im.BaseTrees[0])
	switch {
	case other != nil && other != im && (other.Format == "directory" || other.Format == "tar" ||
		(other.Format == "sysext" || other.Format == "confext" || other.Format == "disk" && other.Overlay) && !isBase(im)):
		if other.Name == "main" {
			return ":" + other.Output
		}
		return ":" + other.Name
	case other == nil && isDir(im.BaseTrees[0]):
		// A tree no image builds: a directory base, written with a
		// trailing slash.
		return c.rel(im.BaseTrees[0]) + "/"
	case other == nil && tree.IsBaseFile(im.BaseTrees[0]) && !isDir(im.BaseTrees[0]):
		return c.rel(im.BaseTrees[0])
	}
	return ""
}

// ImageAt returns the image whose artifact (or its Output symlink) is at
// path, as BaseTrees=%O/base refers to the base image; nil if none.
func (p *Project) ImageAt(path string) *Image {
	for _, im := range p.Images {
		if !im.Builds() {
			continue
		}
		if filepath.Join(im.OutputDir(), im.OutputFile()) == path || filepath.Join(im.OutputDir(), im.Output) == path {
			return im
		}
	}
	return nil
}

// todos renders "# TODO(mkosi): Key=Value" lines for settings of im that
// were set explicitly and are not handled.
func (c *converter) todos(im *Image, handled func(string) bool, mainOnly bool) []string {
	var names []string
	for n := range im.Pos {
		if settingByName[n] == nil || structural[n] || handled(n) {
			continue
		}
		if mainOnly && im.Name != "main" {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	var out []string
	for _, n := range names {
		v := c.render(im, n)
		if v == "" {
			continue // a reset to nothing needs no Starlark
		}
		pos := im.Pos[n]
		s := Setting{Name: n, Value: v, Pos: pos}
		c.conv.TODO = append(c.conv.TODO, s)
		for _, cm := range im.Comments[n] {
			out = append(out, comment(cm))
		}
		out = append(out, comment(fmt.Sprintf("TODO(mkosi): %s=%s", n, v)))
	}
	return out
}

// comment renders text as Starlark comment lines: every line of a
// multi-line value (mkosi's continuation lines) gets its own "#".
func comment(text string) string {
	var b strings.Builder
	for i, line := range strings.Split(text, "\n") {
		if i > 0 {
			line = "    " + strings.TrimSpace(line)
		}
		b.WriteString(strings.TrimRight("# "+line, " ") + "\n")
	}
	return b.String()
}

// mark writes a TODO comment about im's setting that the rule below does
// not do as mkosi does, and records it.
func (c *converter) mark(b *strings.Builder, im *Image, setting, what, why string) {
	pos, ok := im.Pos[setting]
	if !ok && len(im.Files) > 0 {
		pos.File = im.Files[0]
	}
	c.conv.TODO = append(c.conv.TODO, Setting{Name: setting, Value: strings.TrimPrefix(what, setting+"="), Pos: pos, Reason: why})
	b.WriteString(comment(fmt.Sprintf("TODO(mkosi): %s %s", what, why)))
}

// indent indents comment lines to sit inside a rule call.
func indent(lines string) string {
	return "    " + strings.ReplaceAll(strings.TrimSuffix(lines, "\n"), "\n", "\n    ") + "\n"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func (c *converter) render(im *Image, name string) string {
	st := settingByName[name]
	if l, ok := im.values[st].([]string); ok && st.Kind == tScripts {
		return summarizePaths(c.p.Dir, l)
	}
	switch v := im.values[st].(type) {
	case nil:
		return ""
	case bool:
		return yesNo(v)
	case []string:
		l := make([]string, len(v))
		for i, s := range v {
			l[i] = c.rel(s)
		}
		return strings.Join(l, " ")
	case []Tree:
		l := make([]string, len(v))
		for i, t := range v {
			l[i] = c.rel(t.Source)
			if t.Target != "" {
				l[i] += ":" + t.Target
			}
		}
		return strings.Join(l, " ")
	case map[string]string:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		l := make([]string, len(keys))
		for i, k := range keys {
			l[i] = k + "=" + v[k]
		}
		return strings.Join(l, " ")
	case string:
		if filepath.IsAbs(v) {
			return c.rel(v)
		}
		return v
	default:
		return fmt.Sprint(v)
	}
}

// snake spells a setting name in snake case: LocaleMessages ->
// locale_messages.
func snake(name string) string {
	var b strings.Builder
	for i, r := range name {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
