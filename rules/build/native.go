package build

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/sxb-build/sxb/builtins/deb"
	"github.com/sxb-build/sxb/builtins/extension"
	"github.com/sxb-build/sxb/builtins/image"
	"github.com/sxb-build/sxb/builtins/installer"
	"github.com/sxb-build/sxb/builtins/merge"
	"github.com/sxb-build/sxb/builtins/pacman"
	"github.com/sxb-build/sxb/builtins/rpm"
	"github.com/sxb-build/sxb/builtins/sandbox"
	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/arch"
	"github.com/sxb-build/sxb/rules"
)

// NativeInstallers returns the installers sxb builds with by default, by
// distribution name: the Debian family (builtins/deb), the rpm family
// (builtins/rpm) and Arch Linux (builtins/pacman). The Debian installer
// keeps the repositories it read in memory for the resolutions of one
// build: call NativeInstallers once per build.
func NativeInstallers() map[string]Installer {
	d := debInstaller{indexes: &deb.Indexes{}}
	return map[string]Installer{
		"debian": d, "ubuntu": d,
		"opensuse": rpmInstaller{}, "fedora": rpmInstaller{},
		"arch": pacmanInstaller{},
	}
}

func mb(n int64) string { return fmt.Sprintf("%.1f", float64(n)/(1<<20)) }

type debInstaller struct {
	// indexes is shared by the resolutions of one build.
	indexes *deb.Indexes
}

type debResolved struct{ plan *deb.Plan }

func (r debResolved) Packages() []Package {
	out := make([]Package, 0, len(r.plan.Packages))
	for _, p := range r.plan.Packages {
		out = append(out, Package{Name: p.Name, Version: p.Version, Arch: p.Arch, Source: p.Source, URL: p.URL, SHA256: p.SHA256, Size: p.Size})
	}
	return out
}

// installProgress turns the events of the native installers into steps.
func installProgress(report func(string, string)) func(installer.Event) {
	return func(ev installer.Event) {
		switch ev.Kind {
		case installer.Index:
			report("resolving", "index "+ev.Package)
		case installer.Download:
			report("downloading", fmt.Sprintf("%d/%d packages, %s/%s MB", ev.Done, ev.Count, mb(ev.Bytes), mb(ev.Total)))
		case installer.Extract:
			report("extracting", fmt.Sprintf("%d/%d %s", ev.Done, ev.Count, ev.Package))
		case installer.Scripts:
			report("running scripts", fmt.Sprintf("%d packages", ev.Count))
		}
	}
}

func (d debInstaller) Resolve(ctx context.Context, req InstallRequest, report func(string, string)) (Resolved, error) {
	dr := deb.Request{
		Distribution: req.Distribution, Release: req.Release, Arch: req.Architecture.Systemd(), Mirror: req.Mirror,
		Components: req.Repositories, Packages: req.Packages, WithRecommends: req.WithRecommends,
		BaseImage: req.BaseImage, BaseRoot: cmp.Or(req.BaseDB, req.BaseRoot), Keyring: req.Keyring, CacheDir: req.CacheDir,
		Sources: req.AptSources, NoDefaultSources: req.NoDefaultSources, Pins: req.AptPins, Progress: installProgress(report),
		Indexes: d.indexes,
	}
	if len(req.Pin) > 0 {
		l, err := deb.ParseLock(req.Pin, "pin")
		if err != nil {
			return nil, err
		}
		dr.Lock = l
	}
	plan, err := deb.Resolve(ctx, dr)
	if err != nil {
		return nil, err
	}
	return debResolved{plan}, nil
}

func (debInstaller) Install(ctx context.Context, r Resolved, root string, meta *tree.Meta, opts InstallOptions) (*InstallReport, error) {
	rep := &InstallReport{}
	err := deb.Install(ctx, r.(debResolved).plan, root, meta, deb.InstallOptions{
		WithDocs: opts.WithDocs, Progress: installProgress(opts.Report),
		Scripts: opts.Scripts, BaseRoot: opts.BaseRoot, Epoch: opts.Epoch, Warn: opts.Warn,
		NotRun: func(s []string) { rep.ScriptsNotRun = s },
	})
	return rep, err
}

// ScriptRunner implements Installer: dpkg's scripts run natively, through
// a registered emulator, or not.
func (debInstaller) ScriptRunner(a arch.Arch) string { return scriptRunner(a) }

// scriptRunner says how packages' code of architecture a runs here:
// "native", the binfmt_misc emulator, or "" when it cannot.
func scriptRunner(a arch.Arch) string {
	emu, err := sandbox.EmulatorForArch(a)
	switch {
	case err != nil:
		return ""
	case emu == nil:
		return "native"
	}
	return emu.String()
}

func (debInstaller) Pin(r Resolved) ([]byte, error) {
	return deb.LockOf(r.(debResolved).plan).Marshal()
}

type rpmInstaller struct{}

func (rpmInstaller) Pin(r Resolved) ([]byte, error) {
	return rpm.LockOf(r.(rpmResolved).plan).Marshal()
}

type rpmResolved struct {
	plan *rpm.Plan
	// baseRoot names owners the extension's tree does not list.
	baseRoot string
}

func (r rpmResolved) Packages() []Package {
	out := make([]Package, 0, len(r.plan.Packages))
	for _, p := range r.plan.Packages {
		out = append(out, Package{Name: p.Name, Version: p.EVR, Arch: p.Arch, URL: p.URL, SHA256: p.SHA256, Size: p.Size})
	}
	return out
}

func (rpmInstaller) Resolve(ctx context.Context, req InstallRequest, report func(string, string)) (Resolved, error) {
	report("resolving", "")
	rr := rpm.Request{
		Distribution: req.Distribution, Release: req.Release, Arch: req.Architecture.Systemd(), Mirror: req.Mirror,
		Repositories: req.Repositories, Packages: req.Packages, WithRecommends: req.WithRecommends,
		BaseImage: req.BaseImage, BaseRoot: req.BaseRoot, InstalledRoot: req.BaseDB, Keyring: req.Keyring, Keys: req.RepoKeys, CacheDir: req.CacheDir,
		Progress: installProgress(report),
	}
	if len(req.Pin) > 0 {
		l, err := rpm.ParseLock(req.Pin, "pin")
		if err != nil {
			return nil, err
		}
		rr.Lock = l
	}
	plan, err := rpm.Resolve(ctx, rr)
	if err != nil {
		return nil, err
	}
	return rpmResolved{plan: plan, baseRoot: req.BaseRoot}, nil
}

func (rpmInstaller) Install(ctx context.Context, r Resolved, root string, meta *tree.Meta, opts InstallOptions) (*InstallReport, error) {
	rr := r.(rpmResolved)
	base := opts.BaseRoot
	if base == "" {
		base = rr.baseRoot
	}
	rep := &InstallReport{}
	err := rpm.Install(ctx, rr.plan, root, meta, rpm.InstallOptions{
		WithDocs: opts.WithDocs, BaseRoot: base, Progress: installProgress(opts.Report),
		Scripts: opts.Scripts, Epoch: opts.Epoch, Warn: opts.Warn,
		NotRun: func(s []string) { rep.ScriptsNotRun = s },
	})
	return rep, err
}

// ScriptRunner implements Installer: rpm scriptlets run natively, through
// a registered emulator, or not.
func (rpmInstaller) ScriptRunner(a arch.Arch) string {
	return scriptRunner(a)
}

type pacmanInstaller struct{}

type pacmanResolved struct{ plan *pacman.Plan }

func (r pacmanResolved) Packages() []Package {
	out := make([]Package, 0, len(r.plan.Packages))
	for _, p := range r.plan.Packages {
		out = append(out, Package{Name: p.Name, Version: p.Version, Arch: p.Arch, URL: p.URL, SHA256: p.SHA256, Size: p.Size})
	}
	return out
}

func (pacmanInstaller) Resolve(ctx context.Context, req InstallRequest, report func(string, string)) (Resolved, error) {
	pr := pacman.Request{
		Release: req.Release, Arch: req.Architecture.Systemd(), Mirror: req.Mirror, Repositories: req.Repositories,
		Packages: req.Packages, BaseImage: req.BaseImage, BaseRoot: req.BaseRoot, BaseDB: req.BaseDB, CacheDir: req.CacheDir,
		NoDefaultRepos: req.NoDefaultSources, KeyringDir: req.KeyringDir,
		Progress: installProgress(report),
	}
	if req.Keyring != "" {
		pr.Keyring = []string{req.Keyring}
	}
	if len(req.Pin) > 0 {
		l, err := pacman.ParseLock(req.Pin, "pin")
		if err != nil {
			return nil, err
		}
		pr.Lock = l
	}
	plan, err := pacman.Resolve(ctx, pr)
	if err != nil {
		return nil, err
	}
	return pacmanResolved{plan}, nil
}

// Install unpacks the plan and runs the .INSTALL scriptlets, ldconfig and
// libalpm hooks in the sandbox as pacman would, unless scripts are off
// or cannot run here.
func (pacmanInstaller) Install(ctx context.Context, r Resolved, root string, meta *tree.Meta, opts InstallOptions) (*InstallReport, error) {
	rep := &InstallReport{}
	_, err := pacman.Install(ctx, r.(pacmanResolved).plan, root, meta, pacman.InstallOptions{
		WithDocs: opts.WithDocs, Progress: installProgress(opts.Report),
		Scripts: opts.Scripts, Epoch: opts.Epoch, Warn: opts.Warn,
		NotRun: func(s []string) { rep.ScriptsNotRun = s },
	})
	return rep, err
}

// ScriptRunner implements Installer: pacman's scriptlets and hooks run
// natively, through a registered emulator, or not.
func (pacmanInstaller) ScriptRunner(a arch.Arch) string { return scriptRunner(a) }

func (pacmanInstaller) Pin(r Resolved) ([]byte, error) {
	return pacman.LockOf(r.(pacmanResolved).plan).Marshal()
}

// NativeImage writes extension images with package image (the default
// Options.ImageWriter).
func NativeImage(ctx context.Context, out string, req ImageRequest) (*ImageResult, error) {
	parts, err := rules.Definitions(req.Partitions)
	if err != nil {
		return nil, err
	}
	key, cert := req.Key, req.Cert
	if req.Verity != "signed" && len(req.Partitions) == 0 {
		key, cert = "", ""
	}
	res, err := image.Build(ctx, out, req.Root, image.Request{
		Kind: req.Kind, Format: req.Format, Verity: req.Verity, Compression: req.Compression,
		KeyFile: key, CertFile: cert, Architecture: req.Architecture, Partitions: parts,
		Seed: req.Seed, Epoch: req.Epoch,
	})
	if err != nil {
		return nil, err
	}
	ir := &ImageResult{}
	if len(res.RootHash) > 0 {
		ir.RootHash = hex.EncodeToString(res.RootHash)
	}
	type partJSON struct {
		Type   string `json:"type"`
		Label  string `json:"label"`
		UUID   string `json:"uuid"`
		Offset int64  `json:"offset"`
		Size   int64  `json:"size"`
		Format string `json:"format,omitempty"`
		Verity string `json:"verity,omitempty"`
	}
	var ps []partJSON
	for _, p := range res.Partitions {
		ps = append(ps, partJSON{Type: p.Type.Name, Label: p.Label, UUID: p.UUID.String(), Offset: p.Offset, Size: p.Size, Format: p.Format, Verity: p.Verity})
	}
	ir.Partitions = ps
	return ir, nil
}

// testScript is where an image_test's script is visible inside the merged
// images.
const testScript = "/run/sxb-test/test.sh"

// NativeTestRunner runs an image_test with package merge: the images
// merged onto the base in the sandbox, the script run with /bin/sh (the
// default Options.TestRunner).
func NativeTestRunner(ctx context.Context, req TestRequest) (int, error) {
	var baseMeta *tree.Meta
	if req.BaseMeta != "" {
		var err error
		if baseMeta, err = tree.LoadMeta(req.BaseMeta); err != nil {
			return 0, err
		}
	}
	var images []merge.Image
	for _, im := range req.Images {
		images = append(images, merge.Image{Path: im.Path, Name: im.Name, Kind: extension.Kind(im.Kind)})
	}
	err := merge.Run(ctx, merge.Options{
		Base: req.Base, BaseMeta: baseMeta, Architecture: req.Architecture.String(), Images: images,
		Args: []string{"/bin/sh", testScript}, Env: req.Env, Stdout: req.Output, Stderr: req.Output,
		Network: req.Network, Binds: []sandbox.Bind{{Source: req.Script, Target: testScript}},
	})
	var exit *sandbox.ExitError
	if errors.As(err, &exit) {
		if exit.Signal != 0 {
			return 128 + exit.Signal, nil
		}
		return exit.Code, nil
	}
	return 0, err
}
