package build

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sxb-build/sxb/builtins/deb"
	"github.com/sxb-build/sxb/builtins/extension"
	"github.com/sxb-build/sxb/builtins/repart"
	"github.com/sxb-build/sxb/builtins/sbom"
	"github.com/sxb-build/sxb/builtins/scripts"
	"github.com/sxb-build/sxb/builtins/sysupdate"
	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/arch"
	"github.com/sxb-build/sxb/rules"
)

// baseInfo is what a base image's cache entry records for the extensions
// built on it.
type baseInfo struct {
	Distribution string    `json:"distribution"`
	Release      string    `json:"release"`
	Architecture arch.Arch `json:"architecture"`
	Mirror       string    `json:"mirror,omitempty"`
	Repositories []string  `json:"repositories,omitempty"`
	Keyring      string    `json:"keyring,omitempty"`
	// AptSources and NoDefaultSources are the base's repositories
	// besides (or instead of) the distribution's.
	AptSources       []deb.Source  `json:"apt_sources,omitempty"`
	NoDefaultSources bool          `json:"no_default_sources,omitempty"`
	RepoKeys         []string      `json:"repo_keys,omitempty"`
	KeyringDir       string        `json:"keyring_dir,omitempty"`
	AptPins          []deb.Pin     `json:"apt_pins,omitempty"`
	OSRelease        extension.Env `json:"os_release"`
	Packages         []Package     `json:"packages"`
}

type baseInputs struct {
	Rule     string           `json:"rule"`
	Builtin  string           `json:"builtin"`
	Attrs    *rules.BaseImage `json:"attrs"`
	Trees    string           `json:"trees"`
	Packages []Package        `json:"packages"`
	Epoch    int64            `json:"epoch"`
	// Scripts is how maintainer scripts run ("" = not run).
	Scripts string `json:"scripts,omitempty"`
	// Lower is the key of the tree a layered base is built on.
	Lower string `json:"lower,omitempty"`
	// Hooks digests the build scripts' inputs (see hooksDigest).
	Hooks string `json:"hooks,omitempty"`
}

// lowerBase is the tree a layered base_image is built on.
type lowerBase struct {
	root, key string
	info      baseInfo
}

// lowerOf returns the tree the base_image b is layered on (nil when it is
// not): another base_image's, or a tree sxb did not build.
func (x *executor) lowerOf(ctx context.Context, b *rules.BaseImage) (*lowerBase, error) {
	switch {
	case b.BaseTree != nil:
		root, info, key, err := x.treeBase(ctx, b.BaseTree)
		if err != nil {
			return nil, err
		}
		return &lowerBase{root: root, key: key, info: info}, nil
	case b.Base == nil:
		return nil, nil
	}
	bt, e := x.g.Target(*b.Base), x.entry(b.Base.String())
	switch {
	case bt == nil || e == nil:
		return nil, fmt.Errorf("base %s was not built", b.Base)
	case bt.Kind != rules.KindBaseImage:
		return nil, fmt.Errorf("base %s is a %s: a base_image is layered on another base_image or a tree", b.Base, bt.Kind)
	}
	l := &lowerBase{root: e.Path("tree"), key: e.Key}
	if err := json.Unmarshal(e.Info, &l.info); err != nil {
		return nil, fmt.Errorf("base %s: reading its record: %w", b.Base, err)
	}
	return l, nil
}

func (x *executor) buildBase(ctx context.Context, t *rules.Target) error {
	b := t.Base
	rep := x.reporter(t)
	in, err := x.installerFor(b.Distribution)
	if err != nil {
		return err
	}
	lower, err := x.lowerOf(ctx, b)
	if err != nil {
		return err
	}
	req := InstallRequest{
		Distribution: b.Distribution, Release: b.Release, Architecture: b.Architecture, Mirror: b.Mirror,
		Repositories: b.Repositories, Packages: b.Packages, WithRecommends: b.WithRecommends,
		BaseImage: lower == nil, Keyring: b.Keyring, CacheDir: x.opts.CacheDir,
		AptSources: b.AptSources, NoDefaultSources: b.NoDefaultSources, RepoKeys: b.RepoKeys, KeyringDir: b.KeyringDir, AptPins: b.AptPins,
	}
	if lower != nil {
		// What the tree below has installed is not installed again.
		req.BaseRoot = lower.root
	}
	rep("resolving", "")
	res, err := x.resolve(ctx, t, in, req, rep)
	if err != nil {
		return fmt.Errorf("resolving packages: %w", err)
	}
	trees, err := treeDigest(append(treeSources(b.SkeletonTrees), treeSources(b.ExtraTrees)...)...)
	if err != nil {
		return fmt.Errorf("hashing trees: %w", err)
	}
	if h := b.Hooks; h != nil && len(h.Build) > 0 && len(h.BuildPackages) > 0 {
		return fmt.Errorf("build packages (BuildPackages=, build_packages) on a base image are not supported yet: build on it with an extension")
	}
	if err := x.syncScripts(ctx, t, b.Hooks, baseInfo{Distribution: b.Distribution, Release: b.Release}, b.Architecture, "", ""); err != nil {
		return err
	}
	hooks, err := hooksDigest(b.Hooks)
	if err != nil {
		return err
	}
	inputs := baseInputs{Rule: t.Kind, Builtin: builtinVersion(), Attrs: b, Trees: trees, Packages: packagesOf(res), Epoch: x.epoch(t),
		Scripts: scriptsKey(in, b.NoScripts, b.Architecture), Hooks: hooks}
	if lower != nil {
		inputs.Lower = lower.key
	}
	return x.act(ctx, t, inputs, func(st *Staging) (*Entry, error) {
		return x.runBase(ctx, t, st, in, res, inputs, lower)
	}, x.publishBase)
}

// act is the common life of a target: reuse the result of its key from
// the local cache, else from the remote cache, else run it into a staging
// area (and upload it); then publish, then record the result.
func (x *executor) act(ctx context.Context, t *rules.Target, inputs any, run func(*Staging) (*Entry, error), publish func(*rules.Target, *Entry) ([]string, error)) error {
	return x.actWith(ctx, t, inputs, nil, true, run, publish)
}

// actWith is act with another cache lookup (nil means x.lookup), and
// without the remote cache unless useRemote.
func (x *executor) actWith(ctx context.Context, t *rules.Target, inputs any, lookup func(*rules.Target, string, any) (*Entry, error), useRemote bool, run func(*Staging) (*Entry, error), publish func(*rules.Target, *Entry) ([]string, error)) error {
	if lookup == nil {
		lookup = x.lookup
	}
	key := x.actionKey(inputs)
	e, err := lookup(t, key, inputs)
	if err != nil {
		return err
	}
	cached, remote, damaged := e != nil, false, false
	if e == nil && useRemote {
		if e, damaged = x.remoteFetch(ctx, t, key, inputs); e != nil {
			cached, remote = true, true
		}
	}
	if e == nil {
		if x.opts.Explain {
			x.explain(t, inputs)
		}
		st, err := x.cache.Stage(key)
		if err != nil {
			return err
		}
		if e, err = run(st); err != nil {
			st.Abort()
			return err
		}
	}
	uploaded := useRemote && !remote && x.remoteStore(ctx, t, e, !cached, damaged)
	x.remember(t, inputs)
	outs, err := publish(t, e)
	if err != nil {
		return fmt.Errorf("publishing: %w", err)
	}
	x.finish(t, e, cached, outs)
	if remote || uploaded {
		x.mu.Lock()
		r := x.results[t.Label.String()]
		r.Remote, r.Uploaded = remote, uploaded
		x.mu.Unlock()
	}
	return nil
}

func (x *executor) runBase(ctx context.Context, t *rules.Target, st *Staging, in Installer, res Resolved, inputs baseInputs, lower *lowerBase) (*Entry, error) {
	b := t.Base
	rep := x.reporter(t)
	root := filepath.Join(st.Out(), "tree")
	if err := mkdirRoot(root); err != nil {
		return nil, err
	}
	meta := tree.NewMeta()
	opts := InstallOptions{WithDocs: b.WithDocs, Scripts: inputs.Scripts != "off", Epoch: x.epoch(t), Report: rep, Warn: x.warner(t)}
	if lower != nil {
		// The tree below first, as mkosi copies BaseTrees= in before
		// anything else; the packages then go on top of it, into the
		// same tree and package databases.
		rep("copying base", "")
		if err := copyLower(root, lower.root, meta); err != nil {
			return nil, fmt.Errorf("copying base %s: %w", lower.root, err)
		}
		opts.BaseRoot = lower.root
	}
	if err := applyTrees(root, "", b.SkeletonTrees, meta); err != nil {
		return nil, fmt.Errorf("skeleton trees: %w", err)
	}
	ir, err := in.Install(ctx, res, root, meta, opts)
	if err != nil {
		return nil, err // the installers name the step
	}
	if len(ir.ScriptsNotRun) > 0 {
		b, _ := json.MarshalIndent(ir, "", "  ")
		if err := os.WriteFile(filepath.Join(st.Out(), "scripts.json"), append(b, '\n'), 0o644); err != nil {
			return nil, err
		}
	}
	var hr *hookRun
	if !b.Hooks.Empty() {
		work, err := st.Work()
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(work)
		info := baseInfo{Distribution: b.Distribution, Release: b.Release}
		if hr, err = x.newHookRun(t, b.Hooks, info, b.Architecture, "", "", work, root, meta, ""); err != nil {
			return nil, err
		}
		if err := hr.prepareAndBuild(ctx); err != nil {
			return nil, err
		}
	}
	rep("finishing", "")
	if err := applyTrees(root, "", b.ExtraTrees, meta); err != nil {
		return nil, fmt.Errorf("extra trees: %w", err)
	}
	if hr != nil {
		if err := hr.run(ctx, scripts.PostInst, b.Hooks.PostInst, "final"); err != nil {
			return nil, err
		}
	}
	if err := x.applyFirstBoot(ctx, t, b, root, meta); err != nil {
		return nil, err
	}
	if _, err := tree.RemoveGlobs(root, b.RemoveFiles, meta); err != nil {
		return nil, err
	}
	if hr != nil {
		if err := hr.run(ctx, scripts.Finalize, b.Hooks.Finalize, ""); err != nil {
			return nil, err
		}
	}
	if err := meta.Save(tree.MetaPath(root)); err != nil {
		return nil, err
	}
	osr, err := extension.OSRelease(root)
	if err != nil {
		return nil, fmt.Errorf("reading os-release: %w", err)
	}
	info := baseInfo{
		Distribution: b.Distribution, Release: b.Release, Architecture: b.Architecture, Mirror: b.Mirror,
		Repositories: b.Repositories, Keyring: b.Keyring, OSRelease: osr, Packages: inputs.Packages,
		AptSources: b.AptSources, NoDefaultSources: b.NoDefaultSources, RepoKeys: b.RepoKeys, KeyringDir: b.KeyringDir, AptPins: b.AptPins,
	}
	if lower != nil {
		// The packages of the tree below are the image's too.
		info.Packages = append(slices.Clip(lower.info.Packages), inputs.Packages...)
	}
	if b.Output == "tar" {
		rep("writing tar", "")
		n, err := tree.LoadDir(root, tree.Options{Epoch: x.epoch(t)})
		if err != nil {
			return nil, err
		}
		if err := writeTar(filepath.Join(st.Out(), "tree.tar"), n); err != nil {
			return nil, err
		}
	}
	if hr != nil {
		if err := hr.postOutput(ctx, st.Out()); err != nil {
			return nil, err
		}
	}
	return st.Commit(t.Label.String(), info, inputs)
}

type extInputs struct {
	Rule     string           `json:"rule"`
	Builtin  string           `json:"builtin"`
	Attrs    *rules.Extension `json:"attrs"`
	Files    string           `json:"files"`
	Packages []Package        `json:"packages"`
	Base     string           `json:"base"`
	Arch     arch.Arch        `json:"architecture"`
	Epoch    int64            `json:"epoch"`
	Scripts  string           `json:"scripts,omitempty"`
	Hooks    string           `json:"hooks,omitempty"`
	// BuildPackages are the resolved build packages (build overlay only).
	BuildPackages []Package `json:"build_packages,omitempty"`
}

// extManifest is written next to every extension image.
type extManifest struct {
	Label            string       `json:"label"`
	Kind             string       `json:"kind"`
	Output           string       `json:"output"`
	Version          string       `json:"version,omitempty"`
	Architecture     arch.Arch    `json:"architecture"`
	Base             string       `json:"base,omitempty"`
	Packages         []Package    `json:"packages"`
	Files            int          `json:"files"`
	ContentBytes     int64        `json:"content_bytes"`
	ImageBytes       int64        `json:"image_bytes"`
	RootHash         string       `json:"root_hash,omitempty"`
	ExtensionRelease string       `json:"extension_release"`
	Image            *ImageResult `json:"image"`
	// ScriptsNotRun lists the packages' scripts and triggers that did
	// not run (scripts = False, or no emulator for the architecture).
	ScriptsNotRun []string `json:"scripts_not_run,omitempty"`
}

func (x *executor) buildExtension(ctx context.Context, t *rules.Target) error {
	ext := t.Ext
	// Output and version make file names in the cache entry and the
	// output directory: no path may hide in them.
	for _, v := range []struct{ what, s string }{{"output", ext.Output}, {"version", ext.Version}} {
		if strings.ContainsAny(v.s, "/\x00") || v.what == "output" && (v.s == "" || v.s == "." || v.s == "..") {
			return fmt.Errorf("%s %q is not usable in a file name", v.what, v.s)
		}
	}
	rep := x.reporter(t)
	// The tree below: a base_image's cache entry, or a tree sxb did not
	// build; baseKey identifies its content in the action key.
	var baseRoot, baseKey string
	var info baseInfo
	// resolveRoot, for an extension on an extension, holds the package
	// databases of the base and of the extensions in between.
	var resolveRoot string
	switch {
	case ext.Base != nil:
		var err error
		if baseRoot, resolveRoot, baseKey, info, err = x.extBase(ctx, *ext.Base); err != nil {
			return err
		}
	case ext.BaseTree != nil:
		var err error
		if baseRoot, info, baseKey, err = x.treeBase(ctx, ext.BaseTree); err != nil {
			return err
		}
	}
	a := ext.Architecture
	if a == arch.None {
		a = info.Architecture
	}
	if a == arch.None {
		a = arch.Native()
	}
	var res Resolved
	var in Installer
	if len(ext.Packages) > 0 {
		if baseRoot == "" {
			return fmt.Errorf("packages need a base image to resolve against (set base)")
		}
		var err error
		if in, err = x.installerFor(info.Distribution); err != nil {
			return err
		}
		rep("resolving", "")
		res, err = x.resolve(ctx, t, in, InstallRequest{
			Distribution: info.Distribution, Release: info.Release, Architecture: a, Mirror: info.Mirror,
			Repositories: info.Repositories, Packages: ext.Packages, WithRecommends: ext.WithRecommends,
			BaseRoot: baseRoot, BaseDB: resolveRoot, Keyring: info.Keyring, CacheDir: x.opts.CacheDir,
			AptSources: info.AptSources, NoDefaultSources: info.NoDefaultSources, RepoKeys: info.RepoKeys, KeyringDir: info.KeyringDir, AptPins: info.AptPins,
		}, rep)
		if err != nil {
			return fmt.Errorf("resolving packages: %w", err)
		}
	}
	files := treeSources(ext.ExtraTrees)
	for _, p := range ext.Partitions {
		if p.File != "" {
			files = append(files, p.File)
		}
	}
	for _, f := range []string{ext.Key, ext.Certificate} {
		if f != "" {
			files = append(files, f)
		}
	}
	digest, err := treeDigest(files...)
	if err != nil {
		return fmt.Errorf("hashing inputs: %w", err)
	}
	// How the image is shipped (sysupdate definitions, signing) does not
	// change it: published anew on every build, never part of the key.
	attrs := *ext
	attrs.Update = nil
	if err := x.syncScripts(ctx, t, ext.Hooks, info, a, ext.ImageID, ext.Version); err != nil {
		return err
	}
	hooks, err := hooksDigest(ext.Hooks)
	if err != nil {
		return err
	}
	var bp *buildPackages
	if h := ext.Hooks; h != nil && len(h.Build) > 0 && len(h.BuildPackages) > 0 {
		if baseRoot == "" {
			return fmt.Errorf("build packages need a base image to resolve against (set base)")
		}
		if bp, err = x.resolveBuildPackages(ctx, t, h, info, a, baseRoot, resolveRoot); err != nil {
			return err
		}
	}
	inputs := extInputs{Rule: t.Kind, Builtin: builtinVersion(), Attrs: &attrs, Files: digest, Packages: packagesOf(res), Arch: a, Epoch: x.epoch(t), Hooks: hooks}
	if bp != nil {
		inputs.BuildPackages = packagesOf(bp.res)
	}
	if res != nil {
		inputs.Scripts = scriptsKey(in, ext.NoScripts, a)
	}
	inputs.Base = baseKey
	return x.act(ctx, t, inputs, func(st *Staging) (*Entry, error) {
		return x.runExtension(ctx, t, st, baseRoot, info, in, res, inputs, bp)
	}, x.publishExtension)
}

// outputName is the image's file stem: "<output>_<version>" or "<output>".
func outputName(ext *rules.Extension) string {
	if ext.Version != "" {
		return ext.Output + "_" + ext.Version
	}
	return ext.Output
}

func (x *executor) runExtension(ctx context.Context, t *rules.Target, st *Staging, baseRoot string, info baseInfo, in Installer, res Resolved, inputs extInputs, bp *buildPackages) (*Entry, error) {
	ext := t.Ext
	rep := x.reporter(t)
	kind := extension.Kind(ext.Kind)
	work, err := st.Work()
	if err != nil {
		return nil, err
	}
	root := filepath.Join(work, "root")
	if err := mkdirRoot(root); err != nil {
		return nil, err
	}
	meta := tree.NewMeta()
	var notRun []string
	if res != nil {
		ir, err := in.Install(ctx, res, root, meta, InstallOptions{WithDocs: ext.WithDocs, Scripts: inputs.Scripts != "off",
			BaseRoot: baseRoot, Epoch: x.epoch(t), Report: rep, Warn: x.warner(t)})
		if err != nil {
			return nil, err // the installers name the step
		}
		notRun = ir.ScriptsNotRun
		// Kept for extensions built on this one (see extBase).
		if err := recordPkgDB(root, st.Out()); err != nil {
			return nil, err
		}
	}
	// Licences come from the packages' own files, before the overlay
	// delta and pruning remove them.
	var lic map[string]sbom.License
	if l, ok := in.(licenser); ok && res != nil {
		lic = l.Licenses(root, inputs.Packages)
	}
	var hr *hookRun
	if !ext.Hooks.Empty() {
		if hr, err = x.newHookRun(t, ext.Hooks, info, inputs.Arch, ext.ImageID, ext.Version, work, root, meta, baseRoot); err != nil {
			return nil, err
		}
		hr.buildPkgs, hr.noScripts = bp, ext.NoScripts
		if err := hr.prepareAndBuild(ctx); err != nil {
			return nil, err
		}
	}
	rep("assembling tree", "")
	if baseRoot != "" {
		if _, err := extension.DropExisting(root, meta, baseRoot); err != nil {
			return nil, err
		}
	}
	if err := applyTrees(root, baseRoot, ext.ExtraTrees, meta); err != nil {
		return nil, fmt.Errorf("extra trees: %w", err)
	}
	if hr != nil {
		if err := hr.run(ctx, scripts.PostInst, ext.Hooks.PostInst, "final"); err != nil {
			return nil, err
		}
	}
	if _, err := tree.RemoveGlobs(root, ext.RemoveFiles, meta); err != nil {
		return nil, err
	}
	if hr != nil {
		if err := hr.run(ctx, scripts.Finalize, ext.Hooks.Finalize, ""); err != nil {
			return nil, err
		}
	}
	relPath := extension.ReleasePath(kind, ext.Output)
	var release string
	if ext.ReleaseFromTrees {
		// As mkosi does for Format=disk: the file is the user's, as is.
		release, err = readRelease(root, relPath)
		if err != nil {
			return nil, err
		}
	} else if release, err = x.writeRelease(root, relPath, meta, ext, baseRoot != "", info, inputs); err != nil {
		return nil, err
	}
	if err := extension.Prune(root, meta, kind); err != nil {
		return nil, err
	}
	node, err := tree.Load(root, tree.Options{Meta: meta, Epoch: x.epoch(t)})
	if err != nil {
		return nil, err
	}
	var nfiles int
	var content int64
	node.Walk(func(n *tree.Node) error {
		if n.Path != "" {
			nfiles++
		}
		if n.Kind == tree.Regular && n.Link == nil {
			content += n.Size
		}
		return nil
	})
	name := outputName(ext)
	rep("writing "+ext.Format, "")
	img := filepath.Join(st.Out(), name+".raw")
	ir, err := x.opts.ImageWriter(ctx, img, ImageRequest{
		Kind: ext.Kind, Root: node, Partitions: ext.Partitions, Format: ext.Format, Compression: ext.Compression,
		Verity: ext.Verity, Key: ext.Key, Cert: ext.Certificate, Architecture: inputs.Arch,
		Seed: seedOf(ext), Epoch: x.epoch(t),
	})
	if err != nil {
		return nil, fmt.Errorf("writing image: %w", err)
	}
	fi, err := os.Stat(img)
	if err != nil {
		return nil, err
	}
	m := extManifest{
		Label: t.Label.String(), Kind: ext.Kind, Output: ext.Output, Version: ext.Version, Architecture: inputs.Arch,
		Packages: inputs.Packages, Files: nfiles, ContentBytes: content, ImageBytes: fi.Size(),
		RootHash: ir.RootHash, ExtensionRelease: release, Image: ir, ScriptsNotRun: notRun,
	}
	if ext.Base != nil {
		m.Base = ext.Base.String()
	}
	if m.Packages == nil {
		m.Packages = []Package{}
	}
	mb, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(filepath.Join(st.Out(), name+".manifest.json"), append(mb, '\n'), 0o644); err != nil {
		return nil, err
	}
	if ir.RootHash != "" {
		if err := os.WriteFile(filepath.Join(st.Out(), name+".roothash"), []byte(ir.RootHash+"\n"), 0o644); err != nil {
			return nil, err
		}
	}
	if err := writeSBOM(st.Out(), img, t, info, inputs, lic, x.epoch(t)); err != nil {
		return nil, fmt.Errorf("writing SBOM: %w", err)
	}
	if ext.CompressOutput != "" {
		rep("compressing", ext.CompressOutput)
		if err := sysupdate.CompressFile(img, filepath.Join(st.Out(), compressedName(ext)), ext.CompressOutput); err != nil {
			return nil, err
		}
	}
	if hr != nil {
		if err := hr.postOutput(ctx, st.Out()); err != nil {
			return nil, err
		}
	}
	os.RemoveAll(work)
	return st.Commit(t.Label.String(), m, inputs)
}

// writeRelease completes the extension-release file at relPath from the
// base, the attributes and what the trees already hold, and writes it.
func (x *executor) writeRelease(root, relPath string, meta *tree.Meta, ext *rules.Extension, hasBase bool, info baseInfo, inputs extInputs) (string, error) {
	kind := extension.Kind(ext.Kind)
	// The trees may hold the file behind symlinks: follow them inside the
	// tree only, never onto the host.
	relFull, err := tree.ResolveFollow(root, relPath)
	if err != nil {
		return "", err
	}
	given, err := extension.ReadEnvFile(relFull)
	if err != nil {
		return "", err
	}
	for _, kv := range ext.ExtensionRelease {
		given.Set(kv.Key, kv.Value)
	}
	if !hasBase {
		if _, ok := given.Get("ID"); !ok {
			return "", fmt.Errorf("an extension without base needs extension_release with ID (for example {\"ID\": \"_any\"}); in an mkosi project: BaseTrees=, or an extension-release file in ExtraTrees=")
		}
	}
	release, err := extension.Release(extension.ReleaseInput{
		Kind: kind, Given: given, Base: info.OSRelease, ImageID: ext.ImageID, Version: ext.Version,
		Scope: ext.Scope, Architecture: inputs.Arch.Systemd(),
	})
	if err != nil {
		return "", err
	}
	if relFull, err = tree.Resolve(root, relPath); err != nil {
		return "", err
	}
	if err := tree.MkdirAll(filepath.Dir(relFull)); err != nil {
		return "", err
	}
	os.Remove(relFull)
	if err := os.WriteFile(relFull, []byte(release), 0o644); err != nil {
		return "", err
	}
	// WriteFile applied the builder's umask.
	if err := os.Chmod(relFull, 0o644); err != nil {
		return "", err
	}
	meta.Delete(relPath)
	return release, nil
}

// readRelease returns the extension-release file at relPath inside root
// as the trees left it ("" when there is none).
func readRelease(root, relPath string) (string, error) {
	p, err := tree.ResolveFollow(root, relPath)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return "", nil
	}
	return string(b), err
}

// seedOf is the image's UUID seed: its Seed, else derived from its output
// name (see seedFor). Validate checked Seed.
func seedOf(ext *rules.Extension) [16]byte {
	if ext.Seed != "" {
		if id, err := repart.ParseID128(ext.Seed); err == nil {
			return id
		}
	}
	return seedFor(ext.Output)
}

// seedFor derives the UUID seed of an image from its output name, so that
// the same image built from a BUILD.star or from the mkosi project it was
// converted from gets the same UUIDs.
func seedFor(output string) [16]byte {
	sum := sha256.Sum256([]byte("sxb image seed\x00" + output))
	var s [16]byte
	copy(s[:], sum[:16])
	// Make it a valid version 4, variant 1 UUID like systemd's seeds.
	s[6] = s[6]&0x0f | 0x40
	s[8] = s[8]&0x3f | 0x80
	return s
}

// mkdirRoot creates the root directory of a tree with mode 0755, whatever
// the builder's umask (the root's mode is the image's root inode mode).
func mkdirRoot(root string) error {
	if err := os.Mkdir(root, 0o755); err != nil {
		return err
	}
	return os.Chmod(root, 0o755)
}

// scriptsKey says, for action keys, whether and how the packages' scripts
// run: "off" (scripts = False), "none" (nothing can execute them here: the
// stand-ins apply and a warning lists what was skipped), "native" or the
// emulator.
func scriptsKey(in Installer, off bool, a arch.Arch) string {
	if off {
		return "off"
	}
	if r := in.ScriptRunner(a); r != "" {
		return r
	}
	return "none"
}

// warner returns a function printing warnings about target t.
func (x *executor) warner(t *rules.Target) func(string) {
	return func(msg string) { fmt.Fprintf(x.opts.Log, "sxb: warning: %s: %s\n", t.Label, msg) }
}
