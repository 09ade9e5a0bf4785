package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sxb-build/sxb/builtins/scripts"
	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/arch"
	"github.com/sxb-build/sxb/rules"
)

// hooksDigest covers, for an action key, what the scripts of h depend on
// beyond the attributes: every script's content, the build sources' files
// (less SourcesExclude at their top) and the environment the user gives
// them, resolved (passed host variables, environment files). "" when h
// runs nothing.
func hooksDigest(h *rules.Hooks) (string, error) {
	if h.Empty() {
		return "", nil
	}
	hs := sha256.New()
	for _, l := range [][]string{h.Sync, h.Prepare, h.Build, h.PostInst, h.Finalize, h.PostOutput} {
		for _, s := range l {
			o, err := digestOutput(s, false)
			if err != nil {
				return "", fmt.Errorf("script %s: %w", s, err)
			}
			fi, err := os.Stat(s)
			if err != nil {
				return "", err
			}
			// Whether it is executable decides whether it runs at all.
			fmt.Fprintf(hs, "script %s %s %v\n", filepath.Base(s), o.Digest, fi.Mode()&0o111 != 0)
		}
	}
	for _, src := range h.BuildSources {
		d, err := sourceDigest(src.Source, h.SourcesExclude)
		if err != nil {
			return "", fmt.Errorf("build source %s: %w", src.Source, err)
		}
		fmt.Fprintf(hs, "source %s %s\n", src.Target, d)
	}
	env, err := scriptConfig(h, baseInfo{}, arch.None, "", "", 0).UserEnv()
	if err != nil {
		return "", err
	}
	for _, kv := range env {
		fmt.Fprintf(hs, "env %q\n", kv)
	}
	if h.MkosiConfig != "" {
		fmt.Fprintf(hs, "mkosi-config %x\n", sha256.Sum256([]byte(h.MkosiConfig)))
	}
	for _, st := range h.SandboxTrees {
		d, err := sourceDigest(st.Source, nil)
		if err != nil {
			return "", fmt.Errorf("sandbox tree %s: %w", st.Source, err)
		}
		fmt.Fprintf(hs, "sandbox-tree %s %s\n", st.Target, d)
	}
	return hex.EncodeToString(hs.Sum(nil)), nil
}

// sourceDigest digests a build source, leaving out the top-level names in
// exclude (a project directory's outputs and caches).
func sourceDigest(dir string, exclude []string) (string, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() || len(exclude) == 0 {
		return treeDigest(dir)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	var paths []string
	for _, e := range ents {
		if !excluded(e.Name(), exclude) {
			paths = append(paths, filepath.Join(dir, e.Name()))
		}
	}
	h := sha256.New()
	for _, p := range paths {
		d, err := treeDigest(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %s\n", filepath.Base(p), d)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// excluded says whether name matches a pattern of exclude (a name, or a
// prefix ending in "*").
func excluded(name string, exclude []string) bool {
	for _, x := range exclude {
		if p, ok := strings.CutSuffix(x, "*"); ok && strings.HasPrefix(name, p) || name == x {
			return true
		}
	}
	return false
}

// scriptConfig is the scripts' view of an image.
func scriptConfig(h *rules.Hooks, info baseInfo, a arch.Arch, imageID, version string, epoch int64) *scripts.Config {
	c := &scripts.Config{
		Distribution: info.Distribution, Release: info.Release, Architecture: a, ImageID: imageID,
		ImageVersion: version, Profiles: h.Profiles, PassEnvironment: h.PassEnvironment,
		EnvironmentFiles: h.EnvironmentFiles, Epoch: epoch, WithNetwork: h.WithNetwork,
		UID: os.Getuid(), GID: os.Getgid(),
	}
	for _, kv := range h.Environment {
		c.Environment = append(c.Environment, kv.Key+"="+kv.Value)
	}
	if h.MkosiConfig != "" {
		c.MkosiConfig = []byte(h.MkosiConfig)
	}
	for _, t := range h.SandboxTrees {
		c.SandboxTrees = append(c.SandboxTrees, scripts.SandboxTree{Source: t.Source, Target: t.Target})
	}
	return c
}

// hookRun runs the scripts of one image build.
type hookRun struct {
	x    *executor
	t    *rules.Target
	h    *rules.Hooks
	cfg  *scripts.Config
	work string // scratch space, on the tree's file system
	// root and meta are the image tree; lower and lowerMeta what lies
	// beneath it (the base).
	root      string
	meta      *tree.Meta
	lower     []string
	lowerMeta []*tree.Meta
	src       string // $SRCDIR's host directory ("" none)
	// buildPkgs are installed in the build overlay (nil: none);
	// noScripts turns their maintainer scripts off.
	buildPkgs *buildPackages
	noScripts bool
	buildDir  string // $BUILDDIR's host directory ("" none)
	outDir    string // $OUTPUTDIR's host directory
}

// newHookRun prepares the scripts of t for a build whose tree is root
// (meta) over the base tree baseRoot ("" none), with scratch space in work.
func (x *executor) newHookRun(t *rules.Target, h *rules.Hooks, info baseInfo, a arch.Arch, imageID, version, work, root string, meta *tree.Meta, baseRoot string) (*hookRun, error) {
	r := &hookRun{x: x, t: t, h: h, cfg: scriptConfig(h, info, a, imageID, version, x.epoch(t)),
		work: work, root: root, meta: meta}
	if a != arch.Native() {
		for _, l := range [][]string{h.Prepare, h.Build, h.PostInst, h.Finalize} {
			for _, s := range l {
				if strings.HasSuffix(s, ".chroot") {
					return nil, fmt.Errorf("script %s: .chroot scripts for another architecture (%s) are not supported yet", filepath.Base(s), a)
				}
			}
		}
	}
	if baseRoot != "" {
		bm, err := tree.LoadMeta(tree.MetaPath(baseRoot))
		if err != nil {
			return nil, err
		}
		r.lower, r.lowerMeta = []string{baseRoot}, []*tree.Meta{bm}
	}
	r.outDir = filepath.Join(work, "scripts-out")
	if err := os.Mkdir(r.outDir, 0o755); err != nil {
		return nil, err
	}
	switch {
	case len(h.BuildSources) == 1 && h.BuildSources[0].Target == "/":
		r.src = h.BuildSources[0].Source
	case len(h.BuildSources) > 0:
		// Several sources, or one below $SRCDIR: a copy, so that no mount
		// point is ever made in a host directory.
		r.src = filepath.Join(work, "scripts-src")
		if err := os.Mkdir(r.src, 0o755); err != nil {
			return nil, err
		}
		if err := applyTrees(r.src, "", h.BuildSources, tree.NewMeta()); err != nil {
			return nil, fmt.Errorf("build sources: %w", err)
		}
	}
	if h.BuildDir != "" && len(h.Build) > 0 {
		r.buildDir = filepath.Join(h.BuildDir, fmt.Sprintf("%s~%s~%s", info.Distribution, info.Release, a.Systemd()))
		if err := os.MkdirAll(r.buildDir, 0o755); err != nil {
			return nil, fmt.Errorf("build directory: %w", err)
		}
	}
	return r, nil
}

// run runs one phase's scripts on the image tree.
func (r *hookRun) run(ctx context.Context, p scripts.Phase, list []string, arg string) error {
	rep := r.x.reporter(r.t)
	for _, s := range list {
		rep("running "+string(p)+" script", filepath.Base(s))
		res, err := r.cfg.Execute(ctx, scripts.Run{Phase: p, Script: s, Arg: arg, Tree: r.root, Meta: r.meta,
			Lower: r.lower, LowerMeta: r.lowerMeta, SrcDir: r.src, BuildDir: r.buildDir, OutputDir: r.outDir})
		if err != nil {
			return err
		}
		if res != nil && len(res.Removed) > 0 && len(r.lower) > 0 {
			r.x.warner(r.t)(fmt.Sprintf("%s script %s removed %d files of the base (%s); an extension cannot remove them", p, filepath.Base(s), len(res.Removed), strings.Join(first(res.Removed, 3), ", ")))
		}
	}
	return nil
}

func first(l []string, n int) []string {
	if len(l) > n {
		return append(slices.Clone(l[:n]), "...")
	}
	return l
}

// prepareAndBuild runs what follows package installation in mkosi: the
// prepare scripts ("final"), then, when there are build scripts, prepare
// ("build") and the build scripts in a throw-away overlay over the image,
// and copies $DESTDIR into the image.
func (r *hookRun) prepareAndBuild(ctx context.Context) error {
	dest, err := r.prepareAndBuildDest(ctx)
	if err != nil || dest == "" {
		return err
	}
	// $DESTDIR's files are the image's, owned by root as mkosi copies
	// them.
	return applyTrees(r.root, "", []rules.Tree{{Source: dest, Target: "/"}}, r.meta)
}

// prepareAndBuildDest is prepareAndBuild leaving $DESTDIR where it is: it
// returns its host directory ("" without build scripts).
func (r *hookRun) prepareAndBuildDest(ctx context.Context) (string, error) {
	if err := r.run(ctx, scripts.Prepare, r.h.Prepare, "final"); err != nil {
		return "", err
	}
	if len(r.h.Build) == 0 {
		return "", nil
	}
	overlay := filepath.Join(r.work, "build-overlay")
	dest := filepath.Join(r.work, "destdir")
	for _, d := range []string{overlay, dest} {
		if err := mkdirRoot(d); err != nil {
			return "", err
		}
	}
	defer os.RemoveAll(overlay)
	b := *r
	b.root, b.meta = overlay, tree.NewMeta()
	b.lower = append([]string{r.root}, r.lower...)
	b.lowerMeta = append([]*tree.Meta{r.meta}, r.lowerMeta...)
	if bp := r.buildPkgs; bp != nil {
		// The build packages: a layer of their own over the image,
		// installed against the base (whose packages they need), never
		// part of the image.
		layer := filepath.Join(r.work, "build-packages")
		if err := mkdirRoot(layer); err != nil {
			return "", err
		}
		defer os.RemoveAll(layer)
		lm := tree.NewMeta()
		var base string
		if len(r.lower) > 0 {
			base = r.lower[0]
		}
		if _, err := bp.in.Install(ctx, bp.res, layer, lm, InstallOptions{Scripts: !r.noScripts, BaseRoot: base,
			Epoch: r.x.epoch(r.t), Report: r.x.reporter(r.t), Warn: r.x.warner(r.t)}); err != nil {
			return "", fmt.Errorf("installing build packages: %w", err)
		}
		b.lower = append([]string{layer}, b.lower...)
		b.lowerMeta = append([]*tree.Meta{lm}, b.lowerMeta...)
	}
	if err := b.run(ctx, scripts.Prepare, r.h.Prepare, "build"); err != nil {
		return "", err
	}
	rep := r.x.reporter(r.t)
	for _, s := range r.h.Build {
		rep("running build script", filepath.Base(s))
		if _, err := b.cfg.Execute(ctx, scripts.Run{Phase: scripts.Build, Script: s, Tree: b.root, Meta: b.meta,
			Lower: b.lower, LowerMeta: b.lowerMeta, SrcDir: r.src, BuildDir: r.buildDir, DestDir: dest}); err != nil {
			return "", err
		}
	}
	return dest, nil
}

// postOutput runs the postoutput scripts with $OUTPUTDIR holding the
// outputs in out (linked, not to be changed), then moves what the
// scripts and the earlier ones wrote to $OUTPUTDIR into out.
func (r *hookRun) postOutput(ctx context.Context, out string) error {
	ents, err := os.ReadDir(out)
	if err != nil {
		return err
	}
	ours := map[string]bool{}
	for _, e := range ents {
		if e.Type().IsRegular() {
			if err := os.Link(filepath.Join(out, e.Name()), filepath.Join(r.outDir, e.Name())); err != nil {
				return err
			}
		}
		ours[e.Name()] = true
	}
	for _, s := range r.h.PostOutput {
		r.x.reporter(r.t)("running postoutput script", filepath.Base(s))
		if _, err := r.cfg.Execute(ctx, scripts.Run{Phase: scripts.PostOutput, Script: s, SrcDir: r.src, OutputDir: r.outDir}); err != nil {
			return err
		}
	}
	made, err := os.ReadDir(r.outDir)
	if err != nil {
		return err
	}
	for _, e := range made {
		if ours[e.Name()] {
			continue
		}
		if err := os.Rename(filepath.Join(r.outDir, e.Name()), filepath.Join(out, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// sync runs the sync scripts, before anything of the image is built or
// looked up (they may update the build sources); they have the network,
// as in mkosi.
func (x *executor) syncScripts(ctx context.Context, t *rules.Target, h *rules.Hooks, info baseInfo, a arch.Arch, imageID, version string) error {
	if h == nil || len(h.Sync) == 0 {
		return nil
	}
	cfg := scriptConfig(h, info, a, imageID, version, x.epoch(t))
	cfg.WithNetwork = true
	var src string
	if len(h.BuildSources) == 1 && h.BuildSources[0].Target == "/" {
		src = h.BuildSources[0].Source
	}
	for _, s := range h.Sync {
		x.reporter(t)("running sync script", filepath.Base(s))
		if _, err := cfg.Execute(ctx, scripts.Run{Phase: scripts.Sync, Script: s, Arg: "final", SrcDir: src}); err != nil {
			return err
		}
	}
	return nil
}

// buildPackagesSuffix names the lock file entry of a target's build
// packages: "<target>~build-packages".
const buildPackagesSuffix = "~build-packages"

// buildPackages are the resolved build packages of an image and their
// installer.
type buildPackages struct {
	in  Installer
	res Resolved
}

// resolveBuildPackages resolves h.BuildPackages against the base tree
// baseRoot, whose installed packages (read from baseDB instead when set:
// an extension's merged package databases) count as installed.
func (x *executor) resolveBuildPackages(ctx context.Context, t *rules.Target, h *rules.Hooks, info baseInfo, a arch.Arch, baseRoot, baseDB string) (*buildPackages, error) {
	in, err := x.installerFor(info.Distribution)
	if err != nil {
		return nil, err
	}
	// Pinned apart from the image's own packages, under the target's
	// name with buildPackagesSuffix in its package's lock file.
	bt := *t
	bt.Label.Name += buildPackagesSuffix
	res, err := x.resolve(ctx, &bt, in, InstallRequest{
		Distribution: info.Distribution, Release: info.Release, Architecture: a, Mirror: info.Mirror,
		Repositories: info.Repositories, Packages: h.BuildPackages, BaseRoot: baseRoot, BaseDB: baseDB, Keyring: info.Keyring,
		CacheDir: x.opts.CacheDir, AptSources: info.AptSources, NoDefaultSources: info.NoDefaultSources,
		AptPins: info.AptPins, RepoKeys: info.RepoKeys, KeyringDir: info.KeyringDir,
	}, x.reporter(t))
	if err != nil {
		return nil, fmt.Errorf("resolving build packages: %w", err)
	}
	return &buildPackages{in: in, res: res}, nil
}

// RunCleanScripts runs the clean scripts of every buildable target of g
// that has them (sxb clean, as mkosi clean does after removing the
// outputs), with $OUTPUTDIR the target's output directory: its Publish.Dir,
// else outDir/<package>. Progress lines go to log.
func RunCleanScripts(ctx context.Context, g *rules.Graph, outDir string, epoch int64, log io.Writer) error {
	for _, t := range g.Order() {
		var h *rules.Hooks
		var info baseInfo
		var a arch.Arch
		var imageID, version string
		switch {
		case len(t.Unbuildable) > 0:
			continue
		case t.Base != nil:
			h, a = t.Base.Hooks, t.Base.Architecture
			info.Distribution, info.Release = t.Base.Distribution, t.Base.Release
		case t.Ext != nil:
			h, a, imageID, version = t.Ext.Hooks, t.Ext.Architecture, t.Ext.ImageID, t.Ext.Version
			for l := t.Ext.Base; l != nil; {
				bt := g.Target(*l)
				if bt == nil {
					break
				}
				if bt.Base != nil {
					info.Distribution, info.Release = bt.Base.Distribution, bt.Base.Release
					if a == arch.None {
						a = bt.Base.Architecture
					}
					break
				}
				if bt.Ext == nil {
					break
				}
				l = bt.Ext.Base
			}
			if a == arch.None {
				a = arch.Native()
			}
		}
		if h == nil || len(h.Clean) == 0 {
			continue
		}
		out := filepath.Join(outDir, filepath.FromSlash(t.Label.Pkg))
		if t.Publish != nil {
			out = t.Publish.Dir
		}
		if err := os.MkdirAll(out, 0o755); err != nil {
			return err
		}
		var src string
		if len(h.BuildSources) == 1 && h.BuildSources[0].Target == "/" {
			src = h.BuildSources[0].Source
		}
		cfg := scriptConfig(h, info, a, imageID, version, epoch)
		for _, s := range h.Clean {
			fmt.Fprintf(log, "%s: running clean script %s\n", t.Label, filepath.Base(s))
			if _, err := cfg.Execute(ctx, scripts.Run{Phase: scripts.Clean, Script: s, SrcDir: src, OutputDir: out}); err != nil {
				return fmt.Errorf("%s: %w", t.Label, err)
			}
		}
	}
	return nil
}
