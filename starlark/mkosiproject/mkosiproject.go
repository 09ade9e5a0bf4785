// Package mkosiproject turns an mkosi project into sxb targets: the
// loading phase (package eval) calls it for mkosi_project() and for
// packages that are mkosi project directories.
//
// Each image mkosi would build becomes one target named after the image
// (the main image after its Output): Format=directory|tar a base_image,
// Format=sysext|confext an extension built on the image its BaseTrees=
// names, Format=disk with Overlay=yes and mkosi.repart/ an extension whose
// partitions are the repart.d files and whose extension-release file is
// the user's own, as mkosi leaves it. Outputs are published where mkosi
// puts them (OutputDirectory=, mkosi's artifact names). Settings sxb
// cannot honour are errors naming the setting, file and line.
package mkosiproject

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/sxb-build/sxb/builtins/image"
	"github.com/sxb-build/sxb/builtins/mkosi"
	"github.com/sxb-build/sxb/builtins/scripts"
	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/arch"
	"github.com/sxb-build/sxb/internal/diag"
	"github.com/sxb-build/sxb/internal/label"
	"github.com/sxb-build/sxb/rules"
)

// Request is what mkosi_project() (or a package that is an mkosi project
// directory) asks Targets for.
type Request struct {
	// Workspace is the absolute workspace root.
	Workspace string
	// Package is the package calling mkosi_project ("" = root).
	Package string
	// Dir is the absolute directory of the mkosi project (directory
	// attribute, package-relative, default ".").
	Dir string
	// Pos is the position of the mkosi_project call; empty for a package
	// that is an mkosi project directory without BUILD.star.
	Pos diag.Pos
	// Cwd is the directory file names in messages are shown relative to.
	Cwd string
	// Warn receives warnings about the configuration (unknown settings,
	// ...); nil drops them.
	Warn func(*diag.Diagnostic)
	// Profiles are enabled in addition to the configured ones, as with
	// mkosi --profile.
	Profiles []string
}

// Targets reads the mkosi project in req.Dir and returns one target per
// image that mkosi would build, in mkosi's build order. Each target has
// Label.Name, Kind and Base or Ext set; labels in Ext.Base are fully
// qualified. The caller fills in Label.Pkg, Pos (when empty) and Deps.
//
// An image sxb cannot build (a setting it does not support yet) is still
// a target: its Unbuildable diagnostics name the setting, file and line,
// and it keeps its dependencies, so that listing the project works and
// only building that image (or what depends on it) fails. Only a project
// mkosi itself could not read is an error.
func Targets(req Request) ([]*rules.Target, error) {
	c := &conv{req: req}
	warn := req.Warn
	if warn == nil {
		warn = func(*diag.Diagnostic) {}
	}
	p, err := mkosi.Load(req.Dir, mkosi.LoadOptions{Profiles: req.Profiles, Warn: func(d *diag.Diagnostic) { warn(c.relDiag(d)) },
		RunVersion: runVersion})
	if err != nil {
		return nil, c.relErr(err)
	}
	c.p = p
	var out []*rules.Target
	for _, im := range p.Images {
		switch {
		case im.Builds():
			out = append(out, c.targetOf(im))
		case im.MkosiBuilds():
			// mkosi builds it, sxb does not: listed, never built.
			err := errors.Join(im.NotBuilt(), im.CheckSupported())
			out = append(out, &rules.Target{
				Label: c.label(im), Kind: kindOf(im), Pos: c.rel(pos(im, "Format")), Deps: c.deps(im),
				Unbuildable: c.diags(im, err),
			})
		}
	}
	return out, nil
}

// targetOf is im's target, or, when sxb cannot build it, an unbuildable
// target of the kind the image would have, with its dependencies and the
// reasons.
func (c *conv) targetOf(im *mkosi.Image) *rules.Target {
	t, err := c.target(im)
	if err == nil {
		return t
	}
	return &rules.Target{
		Label: c.label(im), Kind: kindOf(im), Pos: c.rel(pos(im, "Format")), Deps: c.deps(im),
		Unbuildable: c.diags(im, err),
	}
}

// kindOf is the rule kind an image maps to, or rules.KindMkosiImage for
// formats sxb has no rule for.
func kindOf(im *mkosi.Image) string {
	switch {
	case im.Format == "directory" || im.Format == "tar":
		return rules.KindBaseImage
	case im.Format == "sysext" || im.Format == "confext":
		return im.Format
	case im.Format == "disk" && im.Overlay:
		if confextTree(im) {
			return rules.KindConfext
		}
		return rules.KindSysext
	}
	return rules.KindMkosiImage
}

// deps are the targets im needs built first: the images its
// Dependencies= name that build, and the image its BaseTrees= names.
func (c *conv) deps(im *mkosi.Image) []label.Label {
	out := []label.Label{}
	add := func(dep *mkosi.Image) {
		if dep == nil || dep == im || !dep.MkosiBuilds() {
			return // an image that only carries settings
		}
		if l := c.label(dep); !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	for _, b := range im.BaseTrees {
		add(c.p.ImageAt(b))
	}
	for _, d := range im.Dependencies {
		add(c.p.Image(d))
	}
	return out
}

// diags flattens err into diagnostics with relative file names; an error
// without a position is placed at the image's Format= (or first file).
func (c *conv) diags(im *mkosi.Image, err error) []*diag.Diagnostic {
	var out []*diag.Diagnostic
	for _, e := range c.flatten(err) {
		d, ok := e.(*diag.Diagnostic)
		if !ok {
			d = c.relDiag(diag.Errorf(pos(im, "Format"), "image %s: %v", im.Name, e))
		}
		out = append(out, d)
	}
	return out
}

type conv struct {
	req Request
	p   *mkosi.Project
}

// name is the target name of an image: the subimage name, or the main
// image's Output (as sxb convert names it).
func name(im *mkosi.Image) string {
	if im.Name == "main" {
		return im.Output
	}
	return im.Name
}

func (c *conv) label(im *mkosi.Image) label.Label {
	return label.Label{Pkg: c.req.Package, Name: name(im)}
}

// pos is where the first of settings that was set for im was set, or
// the image's first file.
func pos(im *mkosi.Image, settings ...string) diag.Pos {
	for _, s := range settings {
		if p, ok := im.Pos[s]; ok && p.File != "" {
			return p
		}
	}
	if len(im.Files) > 0 {
		return diag.Pos{File: im.Files[0]}
	}
	return diag.Pos{File: im.Dir}
}

// gap is an error about im at the setting named (or, when it was not set,
// the next one named in "A|B").
func gap(im *mkosi.Image, setting, format string, xs ...any) error {
	return diag.Errorf(pos(im, strings.Split(setting, "|")...), "image %s: %s", im.Name, fmt.Sprintf(format, xs...))
}

func (c *conv) target(im *mkosi.Image) (*rules.Target, error) {
	if err := im.CheckSupported(); err != nil {
		return nil, err
	}
	// SourceDateEpoch= set in the configuration is the image's own; else
	// mkosi takes $SOURCE_DATE_EPOCH, as the build's epoch is.
	var epoch *int64
	if im.IsExplicit("SourceDateEpoch") {
		epoch = im.SourceDateEpoch
	}
	t := &rules.Target{Label: c.label(im), Pos: c.rel(pos(im, "Format"))}
	switch {
	case im.Format == "directory" || im.Format == "tar":
		b, err := c.base(im)
		if err != nil {
			return nil, err
		}
		b.SourceDateEpoch = epoch
		t.Kind, t.Base = rules.KindBaseImage, b
		t.Publish = &rules.Publish{Dir: im.OutputDir(), File: im.OutputFile()}
		if im.Checksum {
			t.Publish.Checksum = im.Output + ".SHA256SUMS"
		}
	case im.Format == "sysext" || im.Format == "confext" || im.Format == "disk":
		x, err := c.extension(im)
		if err != nil {
			return nil, err
		}
		x.SourceDateEpoch = epoch
		t.Kind, t.Ext = x.Kind, x
		t.Publish = &rules.Publish{Dir: im.OutputDir(), File: im.OutputFile(), Manifest: im.Output + ".manifest.json"}
		if x.Verity != "off" && slices.Contains(im.SplitArtifacts, "roothash") {
			t.Publish.Roothash = im.Output + ".roothash"
		}
		if im.Checksum {
			t.Publish.Checksum = im.Output + ".SHA256SUMS"
		}
		for _, a := range im.SplitArtifacts {
			switch a {
			case "uki", "kernel", "initrd", "roothash":
				// Nothing to split off an extension, or handled.
			case "partitions":
				if x.CompressOutput != "" {
					return nil, gap(im, "SplitArtifacts", "SplitArtifacts=partitions with CompressOutput=%s is not supported by sxb yet", im.CompressOutput)
				}
				if err := splitNames(im, x); err != nil {
					return nil, err
				}
				t.Publish.SplitPartitions = true
			default:
				return nil, gap(im, "SplitArtifacts", "SplitArtifacts=%s is not supported by sxb yet", a)
			}
		}
		if x.Base != nil {
			t.Deps = append(t.Deps, *x.Base)
		}
	default:
		return nil, gap(im, "Format", "Format=%s is not supported by sxb yet", im.Format)
	}
	if l, _, ok := im.OutputSymlink(); ok {
		t.Publish.Symlink = l
	}
	if slices.Contains(im.ManifestFormat, "json") {
		t.Publish.MkosiManifest = mkosiManifest(im)
	}
	if im.OutputMode >= 0 {
		m := uint32(im.OutputMode)
		t.Publish.Mode = &m
	}
	for _, l := range c.deps(im) {
		if !slices.Contains(t.Deps, l) {
			t.Deps = append(t.Deps, l)
		}
	}
	if t.Deps == nil {
		t.Deps = []label.Label{}
	}
	if err := validate(im, t); err != nil {
		return nil, err
	}
	return t, nil
}

// mkosiManifest describes the <Output>.manifest mkosi writes with
// ManifestFormat=json.
func mkosiManifest(im *mkosi.Image) *rules.MkosiManifest {
	name := im.ImageID
	if name == "" {
		name = "image"
	}
	return &rules.MkosiManifest{File: im.Output + ".manifest", PackageType: im.PackageType(), Config: rules.MkosiManifestConfig{
		Name: name, Distribution: im.Distribution, Architecture: im.Architecture,
		OutputFormat: im.Format, Version: im.ImageVersion, Release: im.Release,
	}}
}

// settingOf names the mkosi setting behind each attribute the rule schema
// validates.
var settingOf = map[string]string{
	"distribution": "Distribution", "release": "Release", "architecture": "Architecture", "output": "Output|Format",
	"kind": "Format", "format": "Format", "compression": "CompressOutput|Format", "verity": "Verity",
	"key": "VerityKey|Verity", "certificate": "VerityCertificate|Verity", "version": "ImageVersion",
	"image_id": "ImageId", "scope": "Environment", "packages": "Packages", "extension_release": "ExtraTrees|Format",
}

// validate checks the target with the rule schema, so what the builtins
// cannot build is refused here, at the setting it comes from.
func validate(im *mkosi.Image, t *rules.Target) error {
	var err error
	if t.Base != nil {
		err = t.Base.Validate()
	} else {
		err = t.Ext.Validate()
	}
	var ae *rules.AttrError
	if errors.As(err, &ae) {
		setting, ok := settingOf[ae.Attr]
		if !ok {
			setting = "Format"
		}
		return gap(im, setting, "%s", ae)
	}
	return err
}

func trees(ts []mkosi.Tree) []rules.Tree {
	var out []rules.Tree
	for _, t := range ts {
		out = append(out, rules.Tree{Source: t.Source, Target: path.Clean("/" + t.ImageTarget())})
	}
	return out
}

func (c *conv) base(im *mkosi.Image) (*rules.BaseImage, error) {
	if len(im.BaseTrees) > 1 {
		return nil, gap(im, "BaseTrees", "BaseTrees= with %d trees is not supported by sxb yet (only one)", len(im.BaseTrees))
	}
	if im.Overlay {
		return nil, gap(im, "Overlay", "Overlay=yes on a Format=%s image is not supported by sxb yet", im.Format)
	}
	if im.Format == "tar" {
		switch im.CompressOutput {
		case "", "none", "zstd":
		default:
			return nil, gap(im, "CompressOutput", "CompressOutput=%s is not supported by sxb yet (only zstd and none)", im.CompressOutput)
		}
	}
	a, err := imageArch(im)
	if err != nil {
		return nil, err
	}
	b := &rules.BaseImage{
		Name: name(im), Distribution: im.Distribution, Release: im.Release, Architecture: a,
		Mirror: im.Mirror, Repositories: im.Repositories, Packages: im.AllPackages(), WithRecommends: im.WithRecommends,
		WithDocs: im.WithDocs, ExtraTrees: trees(im.ExtraTrees), SkeletonTrees: trees(im.SkeletonTrees),
		RemoveFiles: im.RemoveFiles, Output: im.Format, AptSources: im.AptSources, NoDefaultSources: im.NoDefaultSources,
		RepoKeys: im.RepoKeys, KeyringDir: im.KeyringDir, AptPins: im.AptPins,
	}
	if b.Packages == nil {
		b.Packages = []string{}
	}
	if !slices.Contains(rules.Distributions, b.Distribution) {
		return nil, gap(im, "Distribution", "Distribution=%s is not supported by sxb", b.Distribution)
	}
	if len(im.BaseTrees) == 1 {
		if b.Base, b.BaseTree, err = c.baseOf(im, a); err != nil {
			return nil, err
		}
	}
	if b.Hooks, err = c.hooks(im); err != nil {
		return nil, err
	}
	if im.AppliesFirstBoot() {
		for i, n := range mkosi.FirstBootSettings {
			if v, ok := im.FirstBoot[n]; ok {
				b.FirstBoot = append(b.FirstBoot, rules.KV{Key: rules.FirstBootKeys[i].Key, Value: v})
			}
		}
	}
	return b, nil
}

// sourcesExclude are top-level names of a project directory that are
// never build sources of its scripts' action keys: caches, outputs and
// sxb's own. Each image's outputs (named after Output=) are added.
var sourcesExclude = []string{".git", "sxb-out", "mkosi.builddir", "mkosi.cache", "mkosi.output", "mkosi.workspace",
	"mkosi.tools", "mkosi.pkgcache", "SHA256SUMS", "SHA256SUMS.gpg"}

// hooks maps the image's scripts and what mkosi gives them; nil when it
// has none.
func (c *conv) hooks(im *mkosi.Image) (*rules.Hooks, error) {
	h := &rules.Hooks{
		Sync: im.Scripts["sync"], Prepare: im.Scripts["prepare"], Build: im.Scripts["build"],
		PostInst: im.Scripts["postinst"], Finalize: im.Scripts["finalize"], PostOutput: im.Scripts["postoutput"],
		Clean: im.Scripts["clean"],
	}
	if h.Empty() && len(h.Clean) == 0 {
		return nil, nil
	}
	if len(h.Build) > 0 {
		h.BuildPackages = im.BuildPackages
	}
	h.WithNetwork = im.WithNetwork
	h.EnvironmentFiles = im.EnvironmentFiles
	h.Profiles = im.Profiles
	cfg, err := im.ConfigJSON()
	if err != nil {
		return nil, err
	}
	h.MkosiConfig = string(cfg)
	for _, st := range im.SandboxTrees {
		h.SandboxTrees = append(h.SandboxTrees, rules.Tree{Source: st.Source, Target: "/" + strings.Trim(st.Target, "/")})
	}
	env := im.ScriptEnvironment()
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		h.Environment = append(h.Environment, rules.KV{Key: k, Value: env[k]})
	}
	if len(h.Build) > 0 {
		h.BuildDir = im.BuildDirectory
	}
	for _, s := range im.BuildSources {
		t := "/" + strings.Trim(s.Target, "/")
		h.BuildSources = append(h.BuildSources, rules.Tree{Source: s.Source, Target: t})
	}
	if len(h.BuildSources) == 0 {
		// mkosi's $SRCDIR is the directory it runs in: the project's.
		h.BuildSources = []rules.Tree{{Source: c.p.Dir, Target: "/"}}
		h.SourcesExclude = append([]string(nil), sourcesExclude...)
		for _, other := range c.p.Images {
			if other.Output != "" {
				h.SourcesExclude = append(h.SourcesExclude, other.Output+"*")
			}
		}
		if rel, err := filepath.Rel(c.p.Dir, im.OutputDir()); err == nil && rel != "." && !strings.HasPrefix(rel, "..") {
			top, _, _ := strings.Cut(rel, string(filepath.Separator))
			h.SourcesExclude = append(h.SourcesExclude, top)
		}
		if rel, err := filepath.Rel(c.p.Dir, im.BuildDirectory); err == nil && im.BuildDirectory != "" && !strings.HasPrefix(rel, "..") {
			top, _, _ := strings.Cut(rel, string(filepath.Separator))
			h.SourcesExclude = append(h.SourcesExclude, top)
		}
	}
	return h, nil
}

func (c *conv) extension(im *mkosi.Image) (*rules.Extension, error) {
	kind := im.Format
	if kind == "disk" {
		if !im.Overlay {
			return nil, gap(im, "Overlay|Format", "Format=disk without Overlay=yes is a whole disk image; sxb builds Format=disk only as an extension (Overlay=yes with BaseTrees=)")
		}
		kind = rules.KindSysext
		if confextTree(im) {
			kind = rules.KindConfext
		}
	}
	if len(im.SkeletonTrees) > 0 {
		return nil, gap(im, "SkeletonTrees", "SkeletonTrees= on an extension is not supported by sxb yet")
	}
	switch im.CompressOutput {
	case "", "none", "zstd", "xz":
	default:
		return nil, gap(im, "CompressOutput", "CompressOutput=%s on a Format=%s image is not supported by sxb yet (only zstd and xz)", im.CompressOutput, im.Format)
	}
	a, err := imageArch(im)
	if err != nil {
		return nil, err
	}
	format := "erofs"
	if im.Format != "disk" {
		// mkosi's sysext/confext definitions: one root partition, Format=erofs.
		if format = im.RootFilesystem(); !slices.Contains(image.Formats(), format) {
			return nil, gap(im, "Environment", "the root file system %s (from %s) is not one sxb writes (%s)", format,
				strings.Join(im.RepartOverrides(), " "), strings.Join(image.Formats(), ", "))
		}
	}
	x := &rules.Extension{
		Name: name(im), Kind: kind, Packages: im.AllPackages(), ExtraTrees: trees(im.ExtraTrees), RemoveFiles: im.RemoveFiles,
		WithRecommends: im.WithRecommends, WithDocs: im.WithDocs, Format: format, Verity: im.EffectiveVerity(),
		Version: im.ImageVersion, ImageID: im.ImageID, Architecture: a,
		ReleaseFromTrees: im.Format == "disk",
	}
	if im.CompressOutput == "zstd" || im.CompressOutput == "xz" {
		x.CompressOutput = im.CompressOutput
	}
	// Seed=random asks for fresh UUIDs on every build; sxb keeps them
	// reproducible (derived from the output name) instead.
	if im.Seed != "random" {
		x.Seed = im.Seed
	}
	// mkosi.sysupdate/ (SysupdateDirectory=) is published beside the
	// images: the transfer definitions systemd-sysupdate reads.
	if d := c.p.SysupdateDir(); d != "" {
		x.Update = &rules.Update{Definitions: d, Verify: true}
	}
	// mkosi's default Output carries the version; sxb adds it back.
	x.Output = im.Output
	if v := im.ImageVersion; v != "" && strings.HasSuffix(im.Output, "_"+v) && im.Output != "_"+v {
		x.Output = strings.TrimSuffix(im.Output, "_"+v)
	}
	if strings.ContainsAny(x.Version, " \t") {
		return nil, gap(im, "ImageVersion", "ImageVersion=%q must not contain spaces", x.Version)
	}
	switch len(im.BaseTrees) {
	case 0:
		if len(x.Packages) > 0 {
			return nil, gap(im, "Packages", "Packages= on an extension needs BaseTrees= naming a Format=directory or tar image of this project to install on")
		}
	case 1:
		if !im.Overlay {
			return nil, gap(im, "Overlay|BaseTrees", "BaseTrees= without Overlay=yes would ship the whole base tree in the image; sxb builds only what the extension adds (set Overlay=yes)")
		}
		if x.Base, x.BaseTree, err = c.baseOf(im, a); err != nil {
			return nil, err
		}
	default:
		return nil, gap(im, "BaseTrees", "BaseTrees= with %d trees is not supported by sxb yet (only one)", len(im.BaseTrees))
	}
	if x.Verity == "signed" {
		x.Key, x.Certificate = im.VerityKey, im.VerityCertificate
		for _, f := range []struct{ setting, file string }{{"VerityKey", x.Key}, {"VerityCertificate", x.Certificate}} {
			if fi, err := os.Stat(f.file); err != nil || !fi.Mode().IsRegular() {
				return nil, gap(im, f.setting, "%s=%s: not a readable file", f.setting, f.file)
			}
		}
	}
	scopeKey := strings.ToUpper(kind) + "_SCOPE"
	if sc, ok := im.Environment[scopeKey]; ok {
		words := strings.Fields(sc)
		for _, w := range words {
			if w != "initrd" && w != "system" && w != "portable" {
				return nil, gap(im, "Environment", "%s=%s: %q is not a scope (want initrd, system or portable)", scopeKey, sc, w)
			}
		}
		if len(words) == 0 {
			return nil, gap(im, "Environment", "%s= is empty (want initrd, system or portable)", scopeKey)
		}
		x.Scope = strings.Join(words, " ")
	}
	if im.Format == "disk" {
		parts, err := c.partitions(im)
		if err != nil {
			return nil, err
		}
		x.Partitions = parts
	}
	if x.Hooks, err = c.hooks(im); err != nil {
		return nil, err
	}
	return x, nil
}

// baseOf maps the one BaseTrees= of im: an image of the project (a
// label), or a directory or tar archive no image builds (a tree whose
// packages come from the distribution the project configures, for
// architecture a).
func (c *conv) baseOf(im *mkosi.Image, a arch.Arch) (*label.Label, *rules.TreeBase, error) {
	bt := im.BaseTrees[0]
	other := c.p.ImageAt(bt)
	switch {
	case other == im:
		return nil, nil, gap(im, "BaseTrees", "BaseTrees=%s names the image itself", bt)
	case other != nil && kindOf(other) == rules.KindMkosiImage:
		return nil, nil, gap(im, "BaseTrees", "BaseTrees=%s: building on the Format=%s image %s is not supported by sxb yet (only on base trees and extensions)", bt, other.Format, other.Name)
	case other != nil && kindOf(im) == rules.KindBaseImage && kindOf(other) != rules.KindBaseImage:
		return nil, nil, gap(im, "BaseTrees", "BaseTrees=%s: a Format=%s image is layered on a Format=directory or tar image or a tree, not on the Format=%s image %s", bt, im.Format, other.Format, other.Name)
	case other != nil:
		l := c.label(other)
		return &l, nil, nil
	case isDir(bt) || isFile(bt) && tree.IsBaseFile(bt):
		// A tree sxb does not build, or a tar archive of one: a
		// prebuilt root in the repository or a path outside it.
		return nil, &rules.TreeBase{Path: bt, Distribution: im.Distribution, Release: im.Release, Mirror: im.Mirror,
			Repositories: im.Repositories, Architecture: a, AptSources: im.AptSources, NoDefaultSources: im.NoDefaultSources,
			RepoKeys: im.RepoKeys, KeyringDir: im.KeyringDir, AptPins: im.AptPins}, nil
	}
	if _, err := os.Stat(bt); err == nil {
		return nil, nil, gap(im, "BaseTrees", "BaseTrees=%s: sxb builds on directories, tar archives (%s) and images (%s) only", bt, strings.Join(tree.TarSuffixes, ", "), tree.ImageSuffix)
	}
	return nil, nil, gap(im, "BaseTrees", "BaseTrees=%s: no such directory, and no image of the project writes it", bt)
}

func isDir(p string) bool { fi, err := os.Stat(p); return err == nil && fi.IsDir() }

func isFile(p string) bool { fi, err := os.Stat(p); return err == nil && fi.Mode().IsRegular() }

// imageArch is the image's Architecture=.
func imageArch(im *mkosi.Image) (arch.Arch, error) {
	a, err := arch.Parse(im.Architecture)
	if err != nil {
		return arch.None, gap(im, "Architecture", "Architecture=%s: %v", im.Architecture, err)
	}
	return a, nil
}

// partitions lists the repart.d files of the image's RepartDirectories=,
// by file name as systemd-repart reads them.
func (c *conv) partitions(im *mkosi.Image) ([]rules.Partition, error) {
	var env []rules.KV
	for _, k := range im.RepartOverrides() {
		env = append(env, rules.KV{Key: k, Value: im.Environment[k]})
	}
	if len(im.RepartDirs) == 0 {
		// mkosi's default definitions for a disk without mkosi.repart/ (not
		// bootable): one root partition of the distribution's file system.
		fs := im.RootFilesystem()
		if !slices.Contains(image.Formats(), fs) {
			return nil, gap(im, "Format", "Format=disk without mkosi.repart/ makes mkosi's default root partition of %s (Distribution=%s), which sxb does not write; "+
				"set Environment=SYSTEMD_REPART_OVERRIDE_FSTYPE_ROOT=erofs or squashfs, or add mkosi.repart/", fs, im.Distribution)
		}
		keys := []rules.KV{{Key: "Type", Value: "root"}, {Key: "Format", Value: fs}, {Key: "CopyFiles", Value: "/"}, {Key: "Minimize", Value: "guess"}}
		return []rules.Partition{{Pos: c.rel(pos(im, "Format")), Keys: keys}}, nil
	}
	byName := map[string]string{}
	for _, d := range im.RepartDirs {
		ents, err := os.ReadDir(d)
		if err != nil {
			return nil, gap(im, "RepartDirectories", "reading %s: %v", d, err)
		}
		for _, e := range ents {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".conf") {
				continue
			}
			if prev, dup := byName[e.Name()]; dup {
				return nil, gap(im, "RepartDirectories", "%s and %s: the same repart.d file name in two RepartDirectories= is not supported by sxb yet", prev, filepath.Join(d, e.Name()))
			}
			byName[e.Name()] = filepath.Join(d, e.Name())
		}
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return nil, gap(im, "RepartDirectories", "no repart.d files (*.conf) in %s", strings.Join(im.RepartDirs, " "))
	}
	out := make([]rules.Partition, len(names))
	for i, n := range names {
		out[i] = rules.Partition{Pos: diag.Pos{File: byName[n]}, File: byName[n], Env: env}
		out[i].Pos = c.rel(out[i].Pos)
	}
	return out, nil
}

// splitNames refuses repart.d files whose SplitName= is not the default
// "%t" (the partition type), the only split name sxb writes.
func splitNames(im *mkosi.Image, x *rules.Extension) error {
	parts, err := rules.Definitions(x.Partitions)
	if err != nil {
		return err
	}
	for _, rp := range parts {
		if rp.SplitName != "%t" {
			name := rp.SplitName
			if name == "" {
				name = "-"
			}
			return gap(im, "SplitArtifacts", "SplitArtifacts=partitions with SplitName=%s in %s is not supported by sxb yet (only the default %%t)", name, rp.Pos.File)
		}
	}
	return nil
}

// confextTree reports whether the extra trees carry only an
// etc/extension-release.d/ file (a hand-written confext), as sxb convert
// decides.
func confextTree(im *mkosi.Image) bool {
	for _, t := range im.ExtraTrees {
		if isDir(filepath.Join(t.Source, "etc/extension-release.d")) && !isDir(filepath.Join(t.Source, "usr/lib/extension-release.d")) {
			return true
		}
	}
	return false
}

// rel shows p's file relative to the working directory.
func (c *conv) rel(p diag.Pos) diag.Pos {
	if c.req.Cwd != "" && filepath.IsAbs(p.File) {
		if r, err := filepath.Rel(c.req.Cwd, p.File); err == nil {
			p.File = r
		}
	}
	return p
}

// relDiag shows d's file relative to the working directory, keeping its
// source line (the file name no longer resolves from elsewhere).
func (c *conv) relDiag(d *diag.Diagnostic) *diag.Diagnostic {
	if c.req.Cwd == "" || !filepath.IsAbs(d.Pos.File) {
		return d
	}
	nd := *d
	if nd.Source == "" && nd.Pos.Line > 0 {
		nd.Source = diag.SourceLine(nd.Pos.File, nd.Pos.Line)
	}
	if r, err := filepath.Rel(c.req.Cwd, nd.Pos.File); err == nil {
		nd.Pos.File = r
	}
	return &nd
}

// relErr turns err into diagnostics with relative file names: one
// diagnostic, or an diag.ErrorList for several.
func (c *conv) relErr(err error) error {
	flat := c.flatten(err)
	if len(flat) == 1 {
		return flat[0]
	}
	return diag.ErrorList(flat)
}

// flatten unwraps joined errors, showing the file names of diagnostics
// relative to the working directory.
func (c *conv) flatten(err error) []error {
	var flat []error
	var walk func(e error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		if d, ok := e.(*diag.Diagnostic); ok {
			flat = append(flat, c.relDiag(d))
			return
		}
		flat = append(flat, e)
	}
	walk(err)
	return flat
}

// runVersion runs an executable mkosi.version in the sandbox, without
// network, on the host's tools (mkosi runs it on the host).
func runVersion(program, dir string) ([]byte, error) {
	return scripts.Output(context.Background(), program, dir)
}
