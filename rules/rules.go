// Package rules holds the declared targets of a workspace — base images,
// system and configuration extensions — with their typed, validated
// attributes, and the target graph linking them.
//
// The loading phase (package starlark/eval) fills a Graph from BUILD.star
// files; the executor (package rules/build) walks it. Paths in attributes are
// absolute host paths, already checked to stay inside the workspace.
package rules

import (
	"sort"

	"github.com/sxb-build/sxb/builtins/deb"

	"github.com/sxb-build/sxb/internal/arch"
	"github.com/sxb-build/sxb/internal/diag"
	"github.com/sxb-build/sxb/internal/label"
)

// Label names a target; see package label.
type Label = label.Label

// Rule kinds.
const (
	KindBaseImage = "base_image"
	KindSysext    = "sysext"
	KindConfext   = "confext"
	KindImageTest = "image_test"
	KindTree      = "tree"
	// KindMkosiImage is an mkosi image of a format sxb has no rule for
	// (a bootable disk, a UKI, ...): always Unbuildable.
	KindMkosiImage = "mkosi_image"
)

// Target is one declared target.
type Target struct {
	Label Label `json:"label"`
	// Kind is KindBaseImage, KindSysext or KindConfext.
	Kind string `json:"kind"`
	// Pos is where the target was declared: the rule call in the package's
	// BUILD.star (the outermost call when a load()ed macro declared it).
	Pos diag.Pos `json:"-"`
	// Deps are the targets this one needs built first, sorted.
	Deps []Label `json:"deps"`
	// Base is set for KindBaseImage.
	Base *BaseImage `json:"base_image,omitempty"`
	// Ext is set for KindSysext and KindConfext.
	Ext *Extension `json:"extension,omitempty"`
	// Test is set for KindImageTest.
	Test *ImageTest `json:"image_test,omitempty"`
	// Tree is set for KindTree.
	Tree *TreeRule `json:"tree,omitempty"`
	// Publish, when set, says where the target's outputs are placed
	// instead of <output dir>/<package>/ (an mkosi project's
	// OutputDirectory, with mkosi's artifact names).
	Publish *Publish `json:"publish,omitempty"`
	// Unbuildable, when not empty, says why sxb cannot build the target:
	// one diagnostic per reason, each naming the setting, file and line (an
	// mkosi image using a setting sxb does not support yet). Such a target
	// is listed and can be depended on, like Bazel's incompatible targets;
	// building it, or a target that depends on it, is an error. Base, Ext
	// and Test may be nil then.
	Unbuildable []*diag.Diagnostic `json:"-"`
}

// BlockedBy returns the first target, in dependency order, of t's closure
// in g (t included) that cannot be built, or nil when all can.
func (g *Graph) BlockedBy(l Label) *Target {
	for _, t := range g.Closure([]Label{l}) {
		if len(t.Unbuildable) > 0 {
			return t
		}
	}
	return nil
}

// BuildError explains why the target l cannot be built: its own reasons,
// or, when a dependency is unbuildable, a diagnostic naming that
// dependency followed by its reasons. nil means l can be built.
func (g *Graph) BuildError(l Label) error {
	b := g.BlockedBy(l)
	if b == nil {
		return nil
	}
	var out diag.ErrorList
	if b.Label != l {
		pos := diag.Pos{}
		if t := g.Target(l); t != nil {
			pos = t.Pos
		}
		out = append(out, diag.Errorf(pos, "%s cannot be built: it depends on %s, which cannot be built", l, b.Label))
	}
	for _, d := range b.Unbuildable {
		out = append(out, d)
	}
	if len(out) == 1 {
		return out[0]
	}
	return out
}

// ImageTest is an image_test target: a script run with /bin/sh inside
// extension images merged onto their base, as systemd-sysext and
// systemd-confext would merge them; exit status 0 passes.
type ImageTest struct {
	Name string `json:"name"`
	// Images are the sysext and confext targets to merge.
	Images []Label `json:"images"`
	// Base is the tree the images are merged onto; nil means the base the
	// images are built on (they must agree).
	Base *Label `json:"base,omitempty"`
	// Script is the absolute path of the test script.
	Script string `json:"script"`
	// Env is added to the script's environment, in order.
	Env []KV `json:"env,omitempty"`
	// Network lets the script reach the network (default: loopback only).
	Network bool `json:"network,omitempty"`
	// Timeout is how long the script may run, in seconds.
	Timeout int `json:"timeout"`
}

// Publish is a target's own output location and artifact names.
type Publish struct {
	// Dir is the absolute directory outputs go to.
	Dir string `json:"dir"`
	// File is the main artifact's name in Dir: the image ("jq_1.2.raw"),
	// the tree directory ("base") or the archive ("base.tar").
	File string `json:"file"`
	// Symlink, when set, is the name of a symbolic link in Dir pointing
	// to File.
	Symlink string `json:"symlink,omitempty"`
	// Manifest, when set, is the name the build manifest is published
	// under (extensions only).
	Manifest string `json:"manifest,omitempty"`
	// Roothash, when set, is the name the dm-verity root hash file is
	// published under (extensions with verity only).
	Roothash string `json:"roothash,omitempty"`
	// SplitPartitions also writes each partition of the image to its own
	// file, "<File without .raw>.<partition type>.raw", as
	// systemd-repart --split=yes names them (extensions only).
	SplitPartitions bool `json:"split_partitions,omitempty"`
	// Checksum, when set, is the name of a file listing the SHA-256 of the
	// image and its split artifacts (the root hash, partitions) as
	// mkosi's Checksum=yes writes <Output>.SHA256SUMS ("<hex> *<name>",
	// by name).
	Checksum string `json:"checksum,omitempty"`
	// Mode, when set, is the access mode of every file published (mkosi's
	// OutputMode=); a file the cache shares is then copied.
	Mode *uint32 `json:"mode,omitempty"`
	// MkosiManifest, when set, also writes mkosi's package manifest
	// (ManifestFormat=json).
	MkosiManifest *MkosiManifest `json:"mkosi_manifest,omitempty"`
}

// MkosiManifest is what mkosi's <Output>.manifest says about the image
// besides its packages.
type MkosiManifest struct {
	// File is the manifest's name in Publish.Dir ("<Output>.manifest").
	File string `json:"file"`
	// PackageType is "deb", "rpm" or "pkg": the type of every package.
	PackageType string `json:"package_type"`
	// Config is the manifest's "config" object.
	Config MkosiManifestConfig `json:"config"`
}

// MkosiManifestConfig is the "config" object of mkosi's manifest
// (manifest_version 1), its fields in mkosi's order.
type MkosiManifestConfig struct {
	// Name is ImageId= or "image"; Distribution, Architecture (mkosi's
	// spelling), OutputFormat, Version (ImageVersion=, may be empty) and
	// Release describe the image.
	Name         string `json:"name"`
	Distribution string `json:"distribution"`
	Architecture string `json:"architecture"`
	OutputFormat string `json:"output_format"`
	Version      string `json:"version,omitempty"`
	Release      string `json:"release,omitempty"`
}

// TreeRule is a tree target: build scripts run on a base (with build
// packages), and what they install into $DESTDIR is a directory other
// targets take in extra_trees. It is built once however many images use
// it.
type TreeRule struct {
	Name string `json:"name"`
	// Base is the base_image or extension the scripts run on.
	Base  *Label `json:"base"`
	Hooks *Hooks `json:"hooks"`
}

// Tree is a host directory (or file) copied into an image.
type Tree struct {
	// Source is the absolute host path; empty when Label is set.
	Source string `json:"source,omitempty"`
	// Label names a tree target whose output is the source.
	Label *Label `json:"label,omitempty"`
	// Target is the absolute path inside the image ("/" by default).
	Target string `json:"target"`
}

// KV is one key=value pair; lists of KV keep the user's order.
type KV struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// FirstBootKeys are the keys of BaseImage.FirstBoot in the order they
// apply, each with the systemd-firstboot option it is and the credential
// mkosi also stores in /usr/lib/credstore ("" none).
var FirstBootKeys = []struct{ Key, Option, Credential string }{
	{"locale", "--locale", "firstboot.locale"},
	{"locale_messages", "--locale-messages", "firstboot.locale-messages"},
	{"keymap", "--keymap", "firstboot.keymap"},
	{"timezone", "--timezone", "firstboot.timezone"},
	{"hostname", "--hostname", ""},
}

// BaseImage is a root file system assembled from distribution packages.
type BaseImage struct {
	Name         string `json:"name"`
	Distribution string `json:"distribution"`
	Release      string `json:"release"`
	// Architecture is the packages' architecture (a systemd name in
	// JSON); the host's when not given.
	Architecture   arch.Arch `json:"architecture"`
	Mirror         string    `json:"mirror,omitempty"`
	Repositories   []string  `json:"repositories,omitempty"`
	Packages       []string  `json:"packages"`
	WithRecommends bool      `json:"with_recommends"`
	// WithDocs defaults to true.
	WithDocs bool `json:"with_docs"`
	// NoScripts turns off running the packages' maintainer scripts and
	// triggers (scripts = False); native stand-ins are used instead.
	NoScripts bool `json:"no_scripts,omitempty"`
	// SourceDateEpoch, when set, is the image's own SOURCE_DATE_EPOCH
	// (mkosi's SourceDateEpoch=): time stamps are clamped to it and
	// scripts see it, instead of the build's.
	SourceDateEpoch *int64   `json:"source_date_epoch,omitempty"`
	ExtraTrees      []Tree   `json:"extra_trees,omitempty"`
	SkeletonTrees   []Tree   `json:"skeleton_trees,omitempty"`
	RemoveFiles     []string `json:"remove_files,omitempty"`
	// Keyring is an absolute path, or "" for the distribution's default.
	Keyring string `json:"keyring,omitempty"`
	// AptSources are more apt repositories to install from (an mkosi
	// project's sandbox sources.list.d); NoDefaultSources installs from
	// them only (mkosi.sources replaces mkosi's default repositories).
	AptSources       []deb.Source `json:"apt_sources,omitempty"`
	NoDefaultSources bool         `json:"no_default_sources,omitempty"`
	// AptPins are apt preferences (an mkosi project's sandbox
	// etc/apt/preferences*).
	AptPins []deb.Pin `json:"apt_pins,omitempty"`
	// RepoKeys are more key files trusted for the repositories (the
	// gpgkey= files of an mkosi project's sandbox .repo files).
	RepoKeys []string `json:"repo_keys,omitempty"`
	// KeyringDir is a pacman keyring directory used instead of the
	// host's (an mkosi project's sandbox usr/share/pacman/keyrings).
	KeyringDir string `json:"keyring_dir,omitempty"`
	// Output is "directory" (default) or "tar".
	Output string `json:"output"`
	// Base, or BaseTree, is a tree the image is layered on (mkosi's
	// BaseTrees= on a Format=directory|tar image): its content comes
	// first, the packages are installed on top and resolved against what
	// it has installed. Base names another base_image.
	Base     *Label    `json:"base,omitempty"`
	BaseTree *TreeBase `json:"base_tree,omitempty"`
	// Hooks are the image's build scripts; nil: none.
	// FirstBoot are systemd-firstboot settings applied to the tree after
	// the postinst scripts, as mkosi applies Locale=, Keymap= and the like
	// (keys: FirstBootKeys, each at most once, in that order).
	FirstBoot []KV   `json:"firstboot,omitempty"`
	Hooks     *Hooks `json:"hooks,omitempty"`
}

// Hooks are an image's build scripts and what they are given, as mkosi
// runs them (see builtins/scripts): each list holds absolute host paths of
// executable scripts, run in order; a name ending in ".chroot" runs inside
// the image.
type Hooks struct {
	Sync       []string `json:"sync,omitempty"`
	Prepare    []string `json:"prepare,omitempty"`
	Build      []string `json:"build,omitempty"`
	PostInst   []string `json:"postinst,omitempty"`
	Finalize   []string `json:"finalize,omitempty"`
	PostOutput []string `json:"postoutput,omitempty"`
	Clean      []string `json:"clean,omitempty"`
	// BuildPackages are installed in the build overlay only (never in
	// the image) for prepare "build" and build scripts.
	BuildPackages []string `json:"build_packages,omitempty"`
	// BuildSources are mounted at $SRCDIR (/work/src), Target relative
	// to it ("/" is $SRCDIR itself). SourcesExclude are top-level names
	// of a source that do not enter the action key (outputs and caches
	// living in a project directory).
	BuildSources   []Tree   `json:"build_sources,omitempty"`
	SourcesExclude []string `json:"sources_exclude,omitempty"`
	// BuildDir is an absolute host directory kept between builds; the
	// build scripts get its <distribution>~<release>~<architecture>
	// subdirectory as $BUILDDIR. It never enters the action key.
	BuildDir string `json:"-"`
	// WithNetwork lets the scripts reach the network (default: loopback
	// only).
	WithNetwork bool `json:"with_network,omitempty"`
	// Environment (in order), PassEnvironment (host variables by name)
	// and EnvironmentFiles (absolute paths) make the scripts' own
	// environment; Profiles is $PROFILES.
	Environment      []KV     `json:"environment,omitempty"`
	PassEnvironment  []string `json:"pass_environment,omitempty"`
	EnvironmentFiles []string `json:"environment_files,omitempty"`
	Profiles         []string `json:"profiles,omitempty"`
	// MkosiConfig is the image's configuration as mkosi dumps it for
	// $MKOSI_CONFIG (mkosi projects only; "" none).
	MkosiConfig string `json:"mkosi_config,omitempty"`
	// SandboxTrees are host directories whose files the scripts that run
	// on the host's tools see at Target (mkosi's SandboxTrees=).
	SandboxTrees []Tree `json:"sandbox_trees,omitempty"`
}

// Empty says h runs no script.
func (h *Hooks) Empty() bool {
	return h == nil || len(h.Sync)+len(h.Prepare)+len(h.Build)+len(h.PostInst)+len(h.Finalize)+len(h.PostOutput) == 0
}

// Extension is a system extension (Kind "sysext", /usr and /opt) or a
// configuration extension (Kind "confext", /etc).
type Extension struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// Base is the image the extension's packages are installed on top of;
	// nil means none (the extension is built from its trees alone). It
	// names a base_image, or another extension (then the extension is built
	// on that extension's base with that extension applied).
	Base           *Label   `json:"base,omitempty"`
	Packages       []string `json:"packages,omitempty"`
	ExtraTrees     []Tree   `json:"extra_trees,omitempty"`
	RemoveFiles    []string `json:"remove_files,omitempty"`
	WithRecommends bool     `json:"with_recommends"`
	WithDocs       bool     `json:"with_docs"`
	// NoScripts: see BaseImage.NoScripts.
	NoScripts bool `json:"no_scripts,omitempty"`
	// SourceDateEpoch: see BaseImage.SourceDateEpoch.
	SourceDateEpoch *int64 `json:"source_date_epoch,omitempty"`
	// Format is "erofs" (default) or "squashfs".
	Format      string `json:"format"`
	Compression string `json:"compression,omitempty"`
	// Verity is "off" (default), "hash" or "signed".
	Verity string `json:"verity"`
	// Key and Certificate are absolute paths (for Verity "signed").
	Key         string `json:"key,omitempty"`
	Certificate string `json:"certificate,omitempty"`
	Version     string `json:"version,omitempty"`
	ImageID     string `json:"image_id,omitempty"`
	// ExtensionRelease are extra extension-release fields, in the order
	// written.
	ExtensionRelease []KV `json:"extension_release,omitempty"`
	// Scope is the SYSEXT_SCOPE/CONFEXT_SCOPE value ("" = not set).
	Scope      string      `json:"scope,omitempty"`
	Partitions []Partition `json:"partitions,omitempty"`
	// Output is the output's base name; the target name by default.
	Output string `json:"output"`
	// Architecture is the image's architecture (a systemd name in JSON);
	// by default the base's (following extension bases), arch.None when
	// there is no base.
	Architecture arch.Arch `json:"architecture,omitempty"`
	// ReleaseFromTrees takes the extension-release file from the extra
	// trees exactly as written, adding no field and failing on none
	// missing (mkosi's Format=disk). By default sxb completes the file
	// (ID, VERSION_ID, ARCHITECTURE, ...) from the base and attributes.
	ReleaseFromTrees bool `json:"release_from_trees,omitempty"`
	// CompressOutput is "" (none), "zstd" or "xz": the image is published
	// compressed, as <stem>.raw.zst or <stem>.raw.xz (mkosi's
	// CompressOutput=), instead of <stem>.raw.
	CompressOutput string `json:"compress_output,omitempty"`
	// Update, when set, publishes systemd-sysupdate definitions beside the
	// image and may sign the directory's SHA256SUMS. It does not change the
	// image.
	Update *Update `json:"update,omitempty"`
	// BaseTree, when set (Base is then nil), is a tree sxb did not build
	// that the extension is built on: a directory such as a prebuilt root
	// kept in the workspace or an mkosi BaseTrees= path.
	BaseTree *TreeBase `json:"base_tree,omitempty"`
	// Seed is the UUID every partition UUID and the verity salt derive
	// from, as systemd-repart --seed (mkosi's Seed=); "" derives it from
	// Output.
	Seed string `json:"seed,omitempty"`
	// Hooks are the image's build scripts; nil: none.
	Hooks *Hooks `json:"hooks,omitempty"`
}

// TreeBase is a directory tree an extension is built on: its installed
// packages (dpkg status, rpm database) satisfy the extension's
// dependencies, its files are left out of the extension, its os-release
// completes the extension-release file.
type TreeBase struct {
	// Path is the absolute directory, or a tar archive (tree.TarSuffixes)
	// or image (tree.ImageSuffix) of
	// the tree.
	Path string `json:"path"`
	// Distribution, Release, Mirror and Repositories say where the
	// extension's packages come from; empty Distribution and Release are
	// read from the tree's os-release (ID, VERSION_CODENAME or
	// VERSION_ID).
	Distribution string   `json:"distribution,omitempty"`
	Release      string   `json:"release,omitempty"`
	Mirror       string   `json:"mirror,omitempty"`
	Repositories []string `json:"repositories,omitempty"`
	// AptSources, NoDefaultSources, RepoKeys, KeyringDir and AptPins are
	// as for a BaseImage.
	AptSources       []deb.Source `json:"apt_sources,omitempty"`
	NoDefaultSources bool         `json:"no_default_sources,omitempty"`
	RepoKeys         []string     `json:"repo_keys,omitempty"`
	KeyringDir       string       `json:"keyring_dir,omitempty"`
	AptPins          []deb.Pin    `json:"apt_pins,omitempty"`
	// Architecture is the packages' architecture; arch.None means the
	// extension's, else the host's.
	Architecture arch.Arch `json:"architecture,omitempty"`
}

// Update is how an extension is shipped to hosts running
// systemd-sysupdate.
type Update struct {
	// URL is the directory the images are served from; it turns on the
	// generated <output>.transfer (needs a version).
	URL string `json:"url,omitempty"`
	// Definitions is an absolute directory whose *.transfer, *.conf and
	// *.feature files are published as they are (mkosi.sysupdate/).
	Definitions string `json:"definitions,omitempty"`
	// TargetPath, CurrentSymlink, InstancesMax, Verify, MinVersion,
	// ProtectVersion and Mode shape the generated transfer (see
	// builtins/sysupdate.Transfer).
	TargetPath     string `json:"target_path,omitempty"`
	CurrentSymlink string `json:"current_symlink,omitempty"`
	InstancesMax   int    `json:"instances_max,omitempty"`
	Verify         bool   `json:"verify"`
	MinVersion     string `json:"min_version,omitempty"`
	ProtectVersion string `json:"protect_version,omitempty"`
	Mode           string `json:"mode,omitempty"`
	// Feature, when set, makes the transfer part of that optional feature
	// and writes <feature>.feature.
	Feature            string `json:"feature,omitempty"`
	FeatureDescription string `json:"feature_description,omitempty"`
	FeatureEnabled     bool   `json:"feature_enabled,omitempty"`
	// LegacyNaming names the transfer <output>.conf, for systemd before
	// 257.
	LegacyNaming bool `json:"legacy_naming,omitempty"`
	// SignKey is an absolute path to an OpenPGP secret key signing the
	// output directory's SHA256SUMS into SHA256SUMS.gpg.
	SignKey string `json:"sign_key,omitempty"`
}

// Partition is one repart.d [Partition] section: either written inline with
// partition() (Keys set, in the user's order; list attributes repeat the
// key) or a repart.d file (File set, Keys nil).
type Partition struct {
	Pos  diag.Pos `json:"-"`
	File string   `json:"file,omitempty"`
	Keys []KV     `json:"keys,omitempty"`
	// Env are the SYSTEMD_REPART_OVERRIDE_* variables systemd-repart
	// reads the definition under (mkosi passes its Environment=), in
	// order.
	Env []KV `json:"env,omitempty"`
}

// Graph is the set of loaded targets.
type Graph struct {
	// Workspace is the absolute workspace root.
	Workspace string
	// Targets maps label strings ("//pkg:name") to targets. It holds every
	// target of every package that was loaded: those the patterns named and
	// those their dependencies live in.
	Targets map[string]*Target
	// Roots are the targets the patterns matched, sorted by label.
	Roots []Label
	// Named holds the label strings of the roots a pattern named
	// explicitly ("//pkg:name"), as opposed to those a wildcard ("//...",
	// ":all") matched: an unbuildable target named explicitly is an error
	// to build, one a wildcard matched is skipped with a note.
	Named map[string]bool
}

// Target returns the target with label l, or nil.
func (g *Graph) Target(l Label) *Target { return g.Targets[l.String()] }

// RootTargets returns the targets of Roots, in the order of Roots.
func (g *Graph) RootTargets() []*Target {
	out := make([]*Target, 0, len(g.Roots))
	for _, l := range g.Roots {
		if t := g.Target(l); t != nil {
			out = append(out, t)
		}
	}
	return out
}

// Order returns every target of the graph in dependency order (see
// Closure). The graph must be acyclic
// (the loader guarantees it).
func (g *Graph) Order() []*Target {
	all := make([]Label, 0, len(g.Targets))
	for _, t := range g.Targets {
		all = append(all, t.Label)
	}
	return g.Closure(all)
}

// Closure returns roots and everything they depend on, transitively, in
// dependency order: every target after its dependencies. The order is
// deterministic (a depth-first walk from the roots sorted by label, each
// target's Deps in their sorted order).
func (g *Graph) Closure(roots []Label) []*Target {
	rs := append([]Label(nil), roots...)
	sort.Slice(rs, func(i, j int) bool { return rs[i].Less(rs[j]) })
	seen := map[string]bool{}
	var out []*Target
	var visit func(l Label)
	visit = func(l Label) {
		k := l.String()
		if seen[k] {
			return
		}
		seen[k] = true
		t := g.Targets[k]
		if t == nil {
			return
		}
		for _, d := range t.Deps {
			visit(d)
		}
		out = append(out, t)
	}
	for _, l := range rs {
		visit(l)
	}
	return out
}

// Distributions are the distribution names a base image may name (mkosi's).
var Distributions = []string{"alma", "arch", "azure", "centos", "custom", "debian", "fedora", "kali",
	"mageia", "openmandriva", "opensuse", "postmarketos", "rhel", "rhel-ubi", "rocky", "ubuntu"}
