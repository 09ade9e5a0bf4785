package mkosi

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/sxb-build/sxb/builtins/deb"
	"github.com/sxb-build/sxb/internal/diag"
)

// LoadOptions tune how a project is read.
type LoadOptions struct {
	// Profiles are extra profiles, as with mkosi --profile (appended after
	// the configured ones).
	Profiles []string
	// Environment replaces the process environment for $VAR expansion in
	// paths, Environment=KEY without value, SOURCE_DATE_EPOCH and
	// MKOSI_HOST_DISTRIBUTION; nil means os.Environ.
	Environment map[string]string
	// HostDistribution and HostRelease are the host's distribution and
	// release (defaults of Distribution= and Release=); empty means read
	// /etc/os-release.
	HostDistribution, HostRelease string
	// HostArchitecture is the native architecture in mkosi's spelling
	// ("x86-64"); empty means the running one.
	HostArchitecture string
	// SystemdVersion is the host systemd version for SystemdVersion=
	// matches; empty means ask systemctl.
	SystemdVersion string
	// Warn receives warnings (unknown settings, wrong sections, unset
	// specifiers). nil drops them.
	Warn func(*diag.Diagnostic)
	// Resources is the resources directory of an installed mkosi, where
	// its built-in configurations (mkosi-initrd/, mkosi-vm/, ...) live;
	// "" means look for one, NoResources means there is none.
	Resources string
	// RunVersion runs an executable mkosi.version with dir as its working
	// directory and returns its standard output (the image version); nil
	// makes an executable mkosi.version an error.
	RunVersion func(program, dir string) ([]byte, error)
}

// Project is a parsed mkosi project.
type Project struct {
	// Dir is the directory the project was loaded from (%D).
	Dir string
	// ConfigDir is Dir or its mkosi/ subdirectory when the configuration
	// lives there.
	ConfigDir string
	// Images are the images to build in dependency order, the main image
	// last, as mkosi orders them.
	Images []*Image
}

// Main returns the main image (always the last one).
func (p *Project) Main() *Image { return p.Images[len(p.Images)-1] }

// SysupdateDir is the project's systemd-sysupdate definitions directory
// (SysupdateDirectory=, by default mkosi.sysupdate/), or "" when there is
// none.
func (p *Project) SysupdateDir() string {
	m := p.Main()
	d, _ := m.values[settingByName["SysupdateDirectory"]].(string)
	if d == "" {
		return ""
	}
	// The setting is kept raw (it is a [Runtime] setting mkosi only uses
	// for its sysupdate verb): resolve it as mkosi does, against the
	// directory of the file that set it. The default mkosi.sysupdate/ is
	// recorded with its own path.
	if pos := m.Pos["SysupdateDirectory"]; !filepath.IsAbs(d) {
		switch {
		case pos.Line == 0 && pos.File != "":
			d = pos.File
		case pos.File != "":
			d = filepath.Join(filepath.Dir(pos.File), d)
		default:
			d = filepath.Join(m.config, d)
		}
	}
	if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
		return ""
	}
	return d
}

// Image returns the image called name, or nil.
func (p *Project) Image(name string) *Image {
	for _, im := range p.Images {
		if im.Name == name {
			return im
		}
	}
	return nil
}

// Setting is one assignment of a setting, with where it was made.
type Setting struct {
	Name  string
	Value string
	Pos   diag.Pos
	// Reason, for an unsupported setting, says what sxb lacks; empty
	// means "is not supported by sxb yet".
	Reason string
}

// Image is the final configuration of one mkosi image, with mkosi's
// defaults applied. Paths are absolute.
type Image struct {
	// Name is the subimage name, or "main" for the main image.
	Name string
	// Dir is the directory of the image's configuration.
	Dir string
	// Files are the configuration files that were read, in order.
	Files []string

	Format       string // "sysext", "confext", "directory", "tar", "disk", "none", ...
	Distribution string // "debian", "ubuntu", "fedora", ...
	Release      string
	Architecture string // mkosi's (systemd's) spelling: "x86-64", "arm64"
	Mirror       string
	LocalMirror  string
	Repositories []string

	Packages []string // sorted as mkosi sorts them
	// VolatilePackages are installed after the build scripts (and never
	// cached by mkosi); without build scripts that is the same image as
	// Packages= (see AllPackages).
	VolatilePackages []string
	BuildPackages    []string
	RemovePackages   []string
	WithDocs         bool
	WithRecommends   bool
	BaseTrees        []string
	SkeletonTrees    []Tree
	ExtraTrees       []Tree
	RemoveFiles      []string
	Bootable         string // "auto", "enabled" or "disabled"
	// SandboxTrees configure the package manager (mkosi.sandbox/,
	// mkosi.pkgmngr/); AptSources are the apt repositories they add and
	// NoDefaultSources says they replace mkosi's default ones.
	// For rpm distributions the .repo files' repositories go into
	// Repositories (as URLs) and their gpgkey= files into RepoKeys; for
	// Arch, pacman.conf's repositories into Repositories (NAME=URL).
	SandboxTrees     []Tree
	AptSources       []deb.Source
	AptPins          []deb.Pin
	RepoKeys         []string
	NoDefaultSources bool
	// KeyringDir is a pacman keyring directory the sandbox trees bring
	// (usr/share/pacman/keyrings, which pacman-key --populate reads).
	KeyringDir string

	Overlay         bool
	Output          string // base name without extension
	OutputExtension string // "raw", "tar", ""
	OutputDirectory string // "" means the configuration directory
	CacheDirectory  string
	CompressOutput  string // "none", "zstd", "xz", ...
	CompressLevel   int64
	// OutputMode is the access mode of the output files (-1: as made).
	OutputMode   int64
	ImageID      string
	ImageVersion string
	// Seed is Seed=: the UUID systemd-repart derives partition UUIDs and
	// the verity salt from, "random", or "" when not set.
	Seed           string
	SplitArtifacts []string
	// ManifestFormat lists "json" and "changelog": the manifests mkosi
	// writes beside the image.
	ManifestFormat []string
	RepartDirs     []string
	// Checksum: mkosi writes <Output>.SHA256SUMS, the digests of the
	// image's artifacts.
	Checksum bool

	Verity                string // "disabled", "hash", "signed", "defer", "auto"
	VerityKey             string
	VerityCertificate     string
	SecureBootKey         string
	SecureBootCertificate string
	SourceDateEpoch       *int64

	Environment     map[string]string
	PassEnvironment []string
	Dependencies    []string
	Profiles        []string

	// Scripts are the image's scripts by phase ("sync", "prepare",
	// "build", "postinst", "finalize", "postoutput", "clean"; mkosi's
	// file suffixes), absolute paths in the order mkosi runs them.
	Scripts map[string][]string
	// BuildSources are BuildSources= ("" Target: $SRCDIR itself); none
	// means the project directory. BuildDirectory is BuildDirectory= or
	// mkosi.builddir ("" none). EnvironmentFiles are EnvironmentFiles=
	// and mkosi.env.
	BuildSources []Tree
	// FirstBoot are the first-boot settings mkosi hands systemd-firstboot
	// (Locale=, LocaleMessages=, Keymap=, Timezone=, Hostname=), by
	// setting name, for a base tree; mkosi applies none to extensions or
	// Overlay=yes images (see AppliesFirstBoot).
	FirstBoot        map[string]string
	BuildDirectory   string
	WithNetwork      bool
	EnvironmentFiles []string

	// Unsupported lists settings this image uses that sxb cannot honour;
	// building must fail with CheckSupported's error.
	Unsupported []Setting
	// Pos maps setting names to where they were last set (Line 0 for
	// default files such as mkosi.extra/).
	Pos map[string]diag.Pos
	// Comments maps setting names to comments attached to their lines.
	Comments map[string][]string

	values map[*setting]any
	config string // ConfigDir of the project
}

// OutputDir is where the image's artifacts go: OutputDirectory= or the
// configuration directory.
func (im *Image) OutputDir() string {
	if im.OutputDirectory != "" {
		return im.OutputDirectory
	}
	return im.config
}

// OutputFile is the file name of the main artifact as mkosi names it
// ("helm_1.2.raw", "base" for a directory, "img.tar.zst").
func (im *Image) OutputFile() string {
	out := im.Output
	if im.OutputExtension != "" {
		out += "." + im.OutputExtension
	}
	switch im.Format {
	case "tar", "cpio", "disk", "sysext", "confext", "portable":
		if im.CompressOutput != "" && im.CompressOutput != "none" {
			ext := im.CompressOutput
			if ext == "zstd" {
				ext = "zst"
			}
			out += "." + ext
		}
	}
	return out
}

// OutputSymlink returns the symlink mkosi creates next to the artifact
// (Output pointing to OutputFile) when the two names differ.
func (im *Image) OutputSymlink() (name, target string, ok bool) {
	if f := im.OutputFile(); f != im.Output {
		return im.Output, f, true
	}
	return "", "", false
}

// Builds reports whether building the project produces this image:
// Format=none images only carry settings, and a main image that installs
// nothing (the implicit Format=disk main image of projects that only
// build subimages) is skipped as well.
func (im *Image) Builds() bool {
	return im.Format != "none" && (im.Name != "main" || im.HasContent())
}

// MkosiBuilds reports whether "mkosi build" builds the image: every image
// but a Format=none one without build scripts (mkosi has nothing to do
// for it). An image mkosi builds and sxb does not (see Builds) is still
// a target, one that cannot be built; NotBuilt says why.
func (im *Image) MkosiBuilds() bool {
	scripts, _ := im.values[settingByName["BuildScripts"]].([]string)
	return im.Format != "none" || len(scripts) > 0
}

// NotBuilt is why sxb builds no image where mkosi builds one (MkosiBuilds
// and not Builds), at the setting responsible; nil otherwise.
func (im *Image) NotBuilt() error {
	switch {
	case im.Builds() || !im.MkosiBuilds():
		return nil
	case im.Format == "none":
		p := im.Pos["Format"]
		if p.File == "" {
			p = im.Pos["BuildScripts"]
		}
		return diag.Errorf(p, "image %s: Format=none with BuildScripts=: an image whose only output is what its build scripts write is not supported by sxb yet", im.Name)
	}
	p := im.Pos["Format"]
	if p.File == "" && len(im.Files) > 0 {
		p = diag.Pos{File: im.Files[0]}
	}
	return diag.Errorf(p, "image %s: the main image installs nothing (no Packages=, BaseTrees=, SkeletonTrees=, ExtraTrees= or mkosi.repart/): "+
		"mkosi would build an almost empty %s image, sxb builds none (Format=none says there is no main image)", im.Name, im.Format)
}

// IsExplicit reports whether the setting was set in a file (or a default
// file) rather than left at its default.
func (im *Image) IsExplicit(name string) bool { _, ok := im.Pos[name]; return ok }

// CheckSupported returns an error naming every setting of the image sxb
// cannot honour, with file and line, or nil.
func (im *Image) CheckSupported() error {
	if len(im.Unsupported) == 0 {
		return nil
	}
	var errs []error
	for _, u := range im.Unsupported {
		if u.Reason != "" {
			errs = append(errs, diag.Errorf(u.Pos, "image %s: %s=%s: %s", im.Name, u.Name, u.Value, u.Reason))
			continue
		}
		errs = append(errs, diag.Errorf(u.Pos, "image %s: %s=%s is not supported by sxb yet", im.Name, u.Name, u.Value))
	}
	return errors.Join(errs...)
}

type loader struct {
	dir     string
	opts    LoadOptions
	resOnce sync.Once
	res     string
}

// FindConfigDir returns the directory holding mkosi.conf for dir: dir
// itself or its mkosi/ subdirectory, as mkosi decides.
func FindConfigDir(dir string) string {
	if !exists(filepath.Join(dir, "mkosi.conf")) && !exists(filepath.Join(dir, "mkosi.tools.conf")) {
		if fi, err := os.Stat(filepath.Join(dir, "mkosi", "mkosi.conf")); err == nil && fi.Mode().IsRegular() {
			return filepath.Join(dir, "mkosi")
		}
	}
	return dir
}

// IsProject reports whether dir holds an mkosi project.
func IsProject(dir string) bool {
	c := FindConfigDir(dir)
	return exists(filepath.Join(c, "mkosi.conf")) || isDir(filepath.Join(c, "mkosi.conf.d")) ||
		isDir(filepath.Join(c, "mkosi.images")) || isDir(filepath.Join(c, "mkosi.profiles"))
}

// Load reads the mkosi project in dir as "mkosi summary" would.
func Load(dir string, opts LoadOptions) (*Project, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if !isDir(abs) {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	if !IsProject(abs) {
		return nil, fmt.Errorf("no mkosi configuration found in %s", dir)
	}
	l := &loader{dir: abs, opts: opts}
	configdir := FindConfigDir(abs)
	c := newCtx(l, "main")
	c.cwd = configdir
	if len(opts.Profiles) > 0 {
		c.cli[settingByName["Profiles"]] = append([]string{}, opts.Profiles...)
	}
	if _, err := c.parseOne(configdir, true, true); err != nil {
		return nil, err
	}
	mainVals, err := c.finalize()
	if err != nil {
		return nil, err
	}
	depSet := settingByName["Dependencies"]
	_, d1 := c.cli[depSet]
	_, d2 := c.config[depSet]
	explicitDeps := d1 || d2
	var defaultDeps []string

	// Settings forced on subimages look like command line settings there.
	cli := map[*setting]any{}
	for _, s := range settings {
		if s.Scope == scUniversal || s.Scope == scMultiversal {
			cli[s] = mainVals[s]
		}
	}
	var subs []*Image
	imagesDir := filepath.Join(configdir, "mkosi.images")
	if ents, err := os.ReadDir(imagesDir); err == nil {
		names := make([]string, 0, len(ents))
		for _, e := range ents {
			names = append(names, e.Name())
		}
		sort.Strings(names)
		for _, n := range names {
			p := filepath.Join(imagesDir, n)
			dirImage := isDir(p)
			if !dirImage && filepath.Ext(n) != ".conf" {
				continue
			}
			name := strings.TrimSuffix(n, ".conf")
			if name == "" {
				return nil, diag.Errorf(diag.Pos{File: p}, "%s is not a valid image name", n)
			}
			sc := newCtx(l, name)
			sc.cwd = configdir
			for s, v := range cli {
				sc.cli[s] = v
				if pos, ok := c.pos[s.Name]; ok {
					sc.pos[s.Name] = pos
					sc.comments[s.Name] = c.comments[s.Name]
				}
			}
			for _, s := range settings {
				if s.Scope == scInherit {
					sc.config[s] = mainVals[s]
					if pos, ok := c.pos[s.Name]; ok {
						sc.pos[s.Name] = pos
					}
				}
			}
			env := map[string]string{}
			mainEnv, _ := mainVals[settingByName["Environment"]].(map[string]string)
			for _, k := range mainVals[settingByName["PassEnvironment"]].([]string) {
				if v, ok := mainEnv[k]; ok {
					env[k] = v
				}
			}
			sc.config[settingByName["Environment"]] = env
			var ok bool
			if dirImage {
				sc.cwd = p
			}
			ok, err = sc.parseOne(p, dirImage, true)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			vals, err := sc.finalize()
			if err != nil {
				return nil, err
			}
			imDir := p
			if !dirImage {
				imDir = imagesDir
			}
			subs = append(subs, newImage(sc, vals, imDir, configdir))
			defaultDeps = append(defaultDeps, name)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("reading %s: %w", imagesDir, err)
	}
	if !explicitDeps {
		if defaultDeps == nil {
			defaultDeps = []string{}
		}
		mainVals[depSet] = defaultDeps
	}
	main := newImage(c, mainVals, configdir, configdir)
	if err := l.addDefaultInitrd(c, mainVals, configdir, main, &subs); err != nil {
		return nil, err
	}
	ordered, err := resolveDeps(subs, main)
	if err != nil {
		return nil, err
	}
	return &Project{Dir: abs, ConfigDir: configdir, Images: append(ordered, main)}, nil
}

// addDefaultInitrd adds the "default-initrd" image mkosi synthesizes when
// an image is bootable with a kernel, as a dependency of those images.
func (l *loader) addDefaultInitrd(c *pctx, mainVals map[*setting]any, configdir string, main *Image, subs *[]*Image) error {
	var want []*Image
	for _, im := range append(append([]*Image{}, *subs...), main) {
		if wantDefaultInitrd(im) {
			want = append(want, im)
		}
	}
	if len(want) == 0 {
		return nil
	}
	at := want[0].Pos["Bootable"]
	if at.File == "" {
		at = want[0].Pos["Packages"]
	}
	initrd, err := l.defaultInitrd(mainVals, c, configdir, at)
	if err != nil {
		return err
	}
	dep := settingByName["Dependencies"]
	for _, im := range want {
		im.Dependencies = append(im.Dependencies, initrd.Name)
		im.values[dep] = slices.Clone(im.Dependencies)
	}
	*subs = append(*subs, initrd)
	return nil
}

// resolveDeps keeps the subimages main depends on (transitively) and
// orders them like Python's graphlib.TopologicalSorter.static_order.
func resolveDeps(subs []*Image, main *Image) ([]*Image, error) {
	byName := map[string]*Image{}
	for _, s := range subs {
		byName[s.Name] = s
	}
	for _, d := range main.Dependencies {
		if byName[d] == nil {
			return nil, diag.Errorf(main.Pos["Dependencies"], "no image found with name %s", d)
		}
	}
	keep := map[string]bool{}
	queue := append([]string{}, main.Dependencies...)
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if keep[n] {
			continue
		}
		keep[n] = true
		im := byName[n]
		for _, d := range im.Dependencies {
			if byName[d] == nil {
				return nil, diag.Errorf(im.Pos["Dependencies"], "image %s depends on %s, but no image has that name", n, d)
			}
		}
		queue = append(queue, im.Dependencies...)
	}
	var graph []*Image
	for _, s := range subs {
		if keep[s.Name] {
			graph = append(graph, s)
		}
	}
	// graphlib: nodes in insertion order, each node then its predecessors.
	type info struct {
		npred int
		succ  []string
	}
	infos := map[string]*info{}
	var order []string
	get := func(n string) *info {
		if infos[n] == nil {
			infos[n] = &info{}
			order = append(order, n)
		}
		return infos[n]
	}
	for _, im := range graph {
		ni := get(im.Name)
		for _, d := range im.Dependencies {
			pi := get(d)
			ni.npred++
			pi.succ = append(pi.succ, im.Name)
		}
	}
	var ready, result []string
	for _, n := range order {
		if infos[n].npred == 0 {
			ready = append(ready, n)
		}
	}
	for len(ready) > 0 {
		group := ready
		ready = nil
		result = append(result, group...)
		for _, n := range group {
			for _, s := range infos[n].succ {
				infos[s].npred--
				if infos[s].npred == 0 {
					ready = append(ready, s)
				}
			}
		}
	}
	if len(result) != len(order) {
		return nil, cycleError(graph, byName)
	}
	idx := map[string]int{}
	for i, n := range result {
		idx[n] = i
	}
	sort.SliceStable(graph, func(i, j int) bool { return idx[graph[i].Name] < idx[graph[j].Name] })
	return graph, nil
}

func cycleError(graph []*Image, byName map[string]*Image) error {
	state := map[string]int{}
	var stack []string
	var found []string
	var visit func(n string) bool
	visit = func(n string) bool {
		state[n] = 1
		stack = append(stack, n)
		for _, d := range byName[n].Dependencies {
			if state[d] == 1 {
				for i, s := range stack {
					if s == d {
						found = append(append([]string{}, stack[i:]...), d)
					}
				}
				return true
			}
			if state[d] == 0 && visit(d) {
				return true
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = 2
		return false
	}
	for _, im := range graph {
		if state[im.Name] == 0 && visit(im.Name) {
			break
		}
	}
	im := byName[found[0]]
	return diag.Errorf(im.Pos["Dependencies"], "image dependency cycle detected: %s", strings.Join(found, " => "))
}

func newImage(c *pctx, vals map[*setting]any, dir, configdir string) *Image {
	get := func(n string) any { return vals[settingByName[n]] }
	str := func(n string) string { s, _ := get(n).(string); return s }
	list := func(n string) []string { l, _ := get(n).([]string); return append([]string{}, l...) }
	trees := func(n string) []Tree { l, _ := get(n).([]Tree); return append([]Tree{}, l...) }
	boolean := func(n string) bool { b, _ := get(n).(bool); return b }
	im := &Image{
		Name: c.image, Dir: dir, Files: c.files,
		Format: str("Format"), Distribution: str("Distribution"), Release: str("Release"),
		Architecture: str("Architecture"), Mirror: str("Mirror"), LocalMirror: str("LocalMirror"),
		Repositories: list("Repositories"), Packages: list("Packages"), BuildPackages: list("BuildPackages"),
		RemovePackages: list("RemovePackages"), WithDocs: boolean("WithDocs"), WithRecommends: boolean("WithRecommends"),
		BaseTrees: list("BaseTrees"), SkeletonTrees: trees("SkeletonTrees"), ExtraTrees: trees("ExtraTrees"),
		RemoveFiles: list("RemoveFiles"), Bootable: str("Bootable"), Overlay: boolean("Overlay"), SandboxTrees: trees("SandboxTrees"),
		Output: str("Output"), OutputExtension: str("OutputExtension"), OutputDirectory: str("OutputDirectory"),
		CacheDirectory: str("CacheDirectory"), CompressOutput: str("CompressOutput"),
		ImageID: str("ImageId"), ImageVersion: str("ImageVersion"), Seed: str("Seed"), SplitArtifacts: list("SplitArtifacts"), ManifestFormat: list("ManifestFormat"),
		Checksum: boolean("Checksum"), RepartDirs: list("RepartDirectories"), Verity: str("Verity"), VerityKey: str("VerityKey"),
		VerityCertificate: str("VerityCertificate"), SecureBootKey: str("SecureBootKey"),
		SecureBootCertificate: str("SecureBootCertificate"), PassEnvironment: list("PassEnvironment"),
		Dependencies: list("Dependencies"), Profiles: list("Profiles"),
		Environment: map[string]string{}, Pos: c.pos, Comments: c.comments, values: vals, config: configdir,
	}
	im.OutputMode = -1
	if n, ok := get("OutputMode").(int64); ok {
		im.OutputMode = n
	}
	if n, ok := get("CompressLevel").(int64); ok {
		im.CompressLevel = n
	}
	if n, ok := get("SourceDateEpoch").(int64); ok {
		im.SourceDateEpoch = &n
	}
	if m, ok := get("Environment").(map[string]string); ok {
		for k, v := range m {
			im.Environment[k] = v
		}
	}
	im.Scripts = map[string][]string{}
	for phase, setting := range scriptSettings {
		if l := list(setting); len(l) > 0 {
			im.Scripts[phase] = l
		}
	}
	im.EnvironmentFiles = list("EnvironmentFiles")
	im.VolatilePackages = list("VolatilePackages")
	im.FirstBoot = map[string]string{}
	for _, n := range FirstBootSettings {
		if v := str(n); v != "" {
			im.FirstBoot[n] = v
		}
	}
	if v := str("WithNetwork"); v != "" {
		im.WithNetwork, _ = parseBoolean(v) // checked in unsupported
	}
	if v := str("BuildDirectory"); v != "" {
		im.BuildDirectory = absIn(configdir, v)
	}
	// The default, the project directory as $SRCDIR itself, counts as
	// none: the project's own outputs are then kept out of its digest.
	if srcs := trees("BuildSources"); !(len(srcs) == 1 && srcs[0].Source == c.directory && srcs[0].Target == "") {
		im.BuildSources = srcs
	}
	im.Unsupported = append(append(unsupported(im, vals), c.missing...), im.readSandbox()...)
	return im
}

func unsupported(im *Image, vals map[*setting]any) []Setting {
	var out []Setting
	addWhy := func(name, value, reason string) {
		pos := im.Pos[name]
		if pos.File == "" {
			// A default value: name the image's configuration.
			pos.File = im.Dir
			if len(im.Files) > 0 {
				pos.File = im.Files[0]
			}
		}
		out = append(out, Setting{Name: name, Value: value, Pos: pos, Reason: reason})
	}
	add := func(name, value string) { addWhy(name, value, "") }
	noFirstBoot := !im.AppliesFirstBoot()
	for _, s := range settings {
		if s.How != hGap || s.FirstBoot && noFirstBoot {
			continue
		}
		if _, set := im.Pos[s.Name]; !set {
			continue
		}
		switch v := vals[s].(type) {
		case nil:
		case string:
			if !contains(s.Neutral, strings.ToLower(v)) {
				add(s.Name, v)
			}
		case []string:
			if s.Kind == tScripts && len(v) > 0 {
				addWhy(s.Name, summarizePaths(im.config, v), "configure scripts are not supported by sxb yet")
			} else if len(v) > 0 {
				add(s.Name, strings.Join(v, " "))
			}
		case []Tree:
			if len(v) > 0 {
				add(s.Name, fmt.Sprint(v))
			}
		case int64:
			add(s.Name, fmt.Sprint(v))
		}
	}
	if len(im.VolatilePackages) > 0 && len(im.Scripts["build"]) > 0 {
		addWhy("VolatilePackages", strings.Join(im.VolatilePackages, " "),
			"packages installed after the build scripts (often the ones they built into $PACKAGEDIR) are not supported by sxb yet")
	}
	if v, ok := vals[settingByName["WithNetwork"]].(string); ok && v != "" {
		if _, err := parseBoolean(v); err != nil {
			addWhy("WithNetwork", v, err.Error())
		}
	}
	switch im.Format {
	case "cpio", "esp", "portable", "uki", "oci", "addon":
		add("Format", im.Format)
	}
	if im.Format == "disk" && !im.Overlay && len(im.RepartDirs) == 0 && !(im.Name == "main" && !im.HasContent()) {
		add("Format", "disk (without mkosi.repart/, mkosi's default partition layout)")
	}
	if im.Bootable == "enabled" {
		add("Bootable", "yes")
	}
	if contains(im.ManifestFormat, "changelog") {
		addWhy("ManifestFormat", strings.Join(im.ManifestFormat, ","), "the changelog report (<output>.changelog) is not supported by sxb yet")
	}
	if (im.Format == "directory" || im.Format == "tar") && vals[settingByName["CleanPackageMetadata"]] == "enabled" {
		addWhy("CleanPackageMetadata", "yes", "removing the package manager's metadata from a base tree is not supported by sxb yet (extensions never carry it)")
	}
	for _, t := range append(append([]Tree{}, im.SkeletonTrees...), im.ExtraTrees...) {
		if exists(t.Source) && t.Archive() {
			name := "ExtraTrees"
			if contains(treeSources(im.SkeletonTrees), t.Source) {
				name = "SkeletonTrees"
			}
			add(name, t.String()+" (archives and disk images are not supported, only directories and files)")
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func treeSources(ts []Tree) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Source)
	}
	return out
}

// maxListed is how many paths an unsupported list setting shows before
// summarising the rest.
const maxListed = 3

// summarizePaths shows paths relative to dir (when inside it), the first
// maxListed of them and how many more there are.
func summarizePaths(dir string, paths []string) string {
	l := make([]string, 0, maxListed)
	for i, p := range paths {
		if i == maxListed {
			break
		}
		if r, err := filepath.Rel(dir, p); err == nil && !strings.HasPrefix(r, "..") {
			p = r
		}
		l = append(l, p)
	}
	s := strings.Join(l, " ")
	if n := len(paths) - maxListed; n > 0 {
		s += fmt.Sprintf(" (and %d more)", n)
	}
	return s
}

// scriptSettings maps mkosi's script phases to their settings.
var scriptSettings = map[string]string{
	"sync": "SyncScripts", "prepare": "PrepareScripts", "build": "BuildScripts",
	"postinst": "PostInstallationScripts", "finalize": "FinalizeScripts",
	"postoutput": "PostOutputScripts", "clean": "CleanScripts",
}

// absIn makes p absolute relative to dir.
func absIn(dir, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(dir, p)
}

// ScriptEnvironment is the environment the image's scripts get from its
// configuration: Environment=, and $SUBIMAGE (the image's name) for an
// image of mkosi.images/, as mkosi sets it; Environment= wins.
func (im *Image) ScriptEnvironment() map[string]string {
	env := map[string]string{}
	if im.Name != "main" {
		env["SUBIMAGE"] = im.Name
	}
	for k, v := range im.Environment {
		env[k] = v
	}
	return env
}

// FirstBootSettings are the first-boot settings sxb applies to a base
// tree, in the order of rules.FirstBootKeys.
var FirstBootSettings = []string{"Locale", "LocaleMessages", "Keymap", "Timezone", "Hostname"}

// AppliesFirstBoot says whether mkosi applies first-boot settings to the
// image: never to an extension, a portable service or an Overlay=yes image
// (mkosi's run_firstboot).
func (im *Image) AppliesFirstBoot() bool {
	return !im.Overlay && im.Format != "sysext" && im.Format != "confext" && im.Format != "portable"
}

// AllPackages are the packages the image installs: Packages= then the
// VolatilePackages= it does not already name. Without build scripts
// (see unsupported) installing them together gives mkosi's image.
func (im *Image) AllPackages() []string {
	out := slices.Clone(im.Packages)
	for _, p := range im.VolatilePackages {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}
