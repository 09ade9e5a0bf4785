// Package merge runs a command on extension images merged onto a base tree
// the way systemd-sysext and systemd-confext merge them on a host: each
// image is unpacked (inspect.Extract: no mount, no root), refused when
// systemd would refuse it (its extension-release checked against the
// base's os-release with extension.CheckRelease, a /usr/lib/os-release of
// its own), cut down to the hierarchies systemd merges (/usr and /opt of a
// sysext, /etc of a confext), and stacked in systemd's order: sorted by
// name, the last on top. The command runs in the sandbox (package sandbox)
// on an overlay of the images over the base, under a writable layer that is
// thrown away afterwards: neither the images, the base nor the host change,
// and every run starts from the built images, as mkosi's --ephemeral does.
//
// One difference from a host: systemd mounts merged hierarchies read-only,
// here they are writable (into the thrown-away layer).
package merge

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sxb-build/sxb/builtins/extension"
	"github.com/sxb-build/sxb/builtins/inspect"
	"github.com/sxb-build/sxb/builtins/sandbox"
	"github.com/sxb-build/sxb/builtins/tree"
)

// Image is one extension image to merge.
type Image struct {
	// Path is the image file (a GPT disk image or a bare erofs/squashfs).
	Path string
	// Name is the image name systemd knows it by (the file name without
	// ".raw" and without "_VERSION"); it names the extension-release file.
	Name string
	// Kind is extension.Sysext or extension.Confext.
	Kind extension.Kind
}

// Options describe a command run on merged images.
type Options struct {
	// Base is the tree the images are merged onto and BaseMeta its
	// metadata sidecar (may be nil).
	Base     string
	BaseMeta *tree.Meta
	// Architecture is the base's systemd architecture name ("x86-64"): an
	// image for another one is refused, as systemd refuses it.
	Architecture string
	Images       []Image
	// Args, Env, Dir, the streams, Network and Binds are the sandbox's
	// (see sandbox.Options).
	Args    []string
	Env     []string
	Dir     string
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
	Network bool
	Binds   []sandbox.Bind
	// Work is where images are unpacked and the throw-away layer lives;
	// "" means a new directory in os.TempDir(). It is emptied afterwards.
	Work string
}

// Run merges the images onto the base and runs opts.Args there. A command
// that exits with a status other than 0 gives a *sandbox.ExitError; an
// image systemd would not merge gives an error saying why, before
// anything runs.
func Run(ctx context.Context, opts Options) error {
	work := opts.Work
	if work == "" {
		var err error
		if work, err = os.MkdirTemp("", "sxb-merge-"); err != nil {
			return err
		}
		defer os.RemoveAll(work)
	} else {
		defer clearDir(work)
	}
	lower, metas, err := Prepare(ctx, opts, work)
	if err != nil {
		return err
	}
	upper := filepath.Join(work, "upper")
	if err := os.Mkdir(upper, 0o755); err != nil {
		return err
	}
	_, err = sandbox.Run(ctx, sandbox.Options{
		Root: upper, Meta: tree.NewMeta(),
		Lower: append(lower, opts.Base), LowerMeta: append(metas, opts.BaseMeta),
		Args: opts.Args, Env: opts.Env, Dir: opts.Dir,
		Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr,
		Network: opts.Network, Binds: opts.Binds,
	})
	return err
}

// Prepare unpacks and checks the images into work and returns them as
// overlay layers over the base, top-most first, with their metadata.
func Prepare(ctx context.Context, opts Options, work string) ([]string, []*tree.Meta, error) {
	osRelease, err := extension.OSRelease(opts.Base)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the base's os-release: %w", err)
	}
	if len(osRelease) == 0 {
		return nil, nil, fmt.Errorf("the base has no os-release (usr/lib/os-release or etc/os-release): systemd merges no extension onto it")
	}
	host := extension.Host{OSRelease: osRelease, Architecture: opts.Architecture, Scope: "system"}
	images := slices.Clone(opts.Images)
	// systemd merges in the order of the image names, the last one on
	// top; sysexts and confexts touch different hierarchies.
	slices.SortStableFunc(images, func(a, b Image) int { return strings.Compare(a.Name, b.Name) })
	seen := map[string]bool{}
	var lower []string
	var metas []*tree.Meta
	for i, im := range images {
		key := string(im.Kind) + "/" + im.Name
		if seen[key] {
			return nil, nil, fmt.Errorf("two %s images are named %q: systemd merges only one of them", im.Kind, im.Name)
		}
		seen[key] = true
		dir := filepath.Join(work, fmt.Sprintf("image-%d", i))
		meta := tree.NewMeta()
		if _, err := inspect.Extract(ctx, im.Path, dir, meta); err != nil {
			return nil, nil, fmt.Errorf("%s %q: %w", im.Kind, im.Name, err)
		}
		if err := check(dir, im, host); err != nil {
			return nil, nil, err
		}
		if err := keepHierarchies(dir, meta, im.Kind); err != nil {
			return nil, nil, fmt.Errorf("%s %q: %w", im.Kind, im.Name, err)
		}
		lower = append([]string{dir}, lower...)
		metas = append([]*tree.Meta{meta}, metas...)
	}
	return lower, metas, nil
}

// check applies systemd's refusals to the unpacked image in dir.
func check(dir string, im Image, host extension.Host) error {
	if p, err := tree.ResolveFollow(dir, "usr/lib/os-release"); err == nil {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%s %q contains /usr/lib/os-release, which systemd refuses to merge", im.Kind, im.Name)
		}
	}
	rel := extension.ReleasePath(im.Kind, im.Name)
	full, err := tree.ResolveFollow(dir, rel)
	if err != nil {
		return fmt.Errorf("%s %q: %w", im.Kind, im.Name, err)
	}
	var release extension.Env
	if fi, err := os.Stat(full); err == nil && fi.Mode().IsRegular() {
		if release, err = extension.ReadEnvFile(full); err != nil {
			return fmt.Errorf("%s %q: %w", im.Kind, im.Name, err)
		}
	}
	if err := extension.CheckRelease(im.Name, im.Kind, release, host); err != nil {
		return fmt.Errorf("systemd-%s would not merge it: %w", im.Kind, err)
	}
	return nil
}

// keepHierarchies removes from the unpacked image what systemd does not
// merge: everything but usr and opt (sysext) or etc (confext).
func keepHierarchies(dir string, meta *tree.Meta, kind extension.Kind) error {
	keep := extension.TopDirs(kind)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if slices.Contains(keep, e.Name()) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
		for _, p := range meta.Paths() {
			if p == e.Name() || strings.HasPrefix(p, e.Name()+"/") {
				meta.Delete(p)
			}
		}
	}
	return nil
}

// clearDir removes what is inside dir.
func clearDir(dir string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}
