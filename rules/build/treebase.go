package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sxb-build/sxb/builtins/extension"
	"github.com/sxb-build/sxb/builtins/inspect"
	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/atomicfile"
	"github.com/sxb-build/sxb/rules"
)

// treeBase describes a tree sxb did not build as the base of an
// extension: the directory to build on (the tree itself, or an archive's
// content extracted into the cache), where packages come from (as given,
// else from its os-release) and a key of its content for the action key
// (every file is hashed: the tree may change between builds without sxb
// knowing).
func (x *executor) treeBase(ctx context.Context, b *rules.TreeBase) (string, baseInfo, string, error) {
	fi, err := os.Stat(b.Path)
	if err != nil {
		return "", baseInfo{}, "", fmt.Errorf("base tree: %w", err)
	}
	root, key := b.Path, ""
	switch {
	case fi.IsDir():
		digest, err := treeDigest(b.Path)
		if err != nil {
			return "", baseInfo{}, "", fmt.Errorf("hashing base tree %s: %w", b.Path, err)
		}
		key = "tree:" + digest
	case fi.Mode().IsRegular() && tree.IsBaseFile(b.Path):
		o, err := digestOutput(b.Path, false)
		if err != nil {
			return "", baseInfo{}, "", fmt.Errorf("hashing base %s: %w", b.Path, err)
		}
		extract := func(dst string, meta *tree.Meta) error { return extractTar(b.Path, dst, meta) }
		if !tree.IsTarName(b.Path) {
			extract = func(dst string, meta *tree.Meta) error {
				_, err := inspect.Extract(ctx, b.Path, dst, meta)
				return err
			}
		}
		if root, err = x.extractBase(o.Digest, extract); err != nil {
			return "", baseInfo{}, "", fmt.Errorf("base %s: %w", b.Path, err)
		}
		key = "file:" + o.Digest
	default:
		return "", baseInfo{}, "", fmt.Errorf("base tree %s: neither a directory, a tar archive (%s) nor an image (%s)", b.Path, strings.Join(tree.TarSuffixes, ", "), tree.ImageSuffix)
	}
	osr, err := extension.OSRelease(root)
	if err != nil {
		return "", baseInfo{}, "", fmt.Errorf("base tree %s: reading os-release: %w", b.Path, err)
	}
	info := baseInfo{Distribution: b.Distribution, Release: b.Release, Architecture: b.Architecture, Mirror: b.Mirror,
		Repositories: b.Repositories, OSRelease: osr, AptSources: b.AptSources, NoDefaultSources: b.NoDefaultSources, RepoKeys: b.RepoKeys,
		KeyringDir: b.KeyringDir, AptPins: b.AptPins}
	if info.Distribution == "" {
		if id, _ := osr.Get("ID"); slices.Contains(rules.Distributions, id) {
			info.Distribution = id
		}
	}
	if info.Release == "" {
		info.Release, _ = osr.Get("VERSION_CODENAME")
		if info.Release == "" {
			info.Release, _ = osr.Get("VERSION_ID")
		}
	}
	return root, info, key, nil
}

// extractBase returns the tree of the base file whose content has the
// given digest, extracting it into the cache the first time (with its
// metadata sidecar: owners, devices and modes a rootless extraction cannot
// set). The directory appears whole or not at all.
func (x *executor) extractBase(digest string, extract func(dst string, meta *tree.Meta) error) (string, error) {
	x.baseMu.Lock()
	defer x.baseMu.Unlock()
	dir := filepath.Join(x.opts.CacheDir, "tree-bases", digest)
	root := filepath.Join(dir, "tree")
	if _, err := os.Stat(root); err == nil {
		touchDir(dir)
		return root, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	d, err := atomicfile.CreateDir(dir, 0o755)
	if err != nil {
		return "", err
	}
	defer d.Abort()
	tmpRoot := filepath.Join(d.Path(), "tree")
	if err := mkdirRoot(tmpRoot); err != nil {
		return "", err
	}
	meta := tree.NewMeta()
	if err := extract(tmpRoot, meta); err != nil {
		return "", err
	}
	if err := meta.Save(tree.MetaPath(tmpRoot)); err != nil {
		return "", err
	}
	if err := d.Commit(); err != nil {
		return "", err
	}
	return root, nil
}

// extractTar extracts the tar archive file (compressed or not) into dst;
// like an image (inspect.Extract), it may expand to 1 GiB plus 100 times
// its size.
func extractTar(file, dst string, meta *tree.Meta) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	r, done, err := tree.Decompress(f)
	if err != nil {
		return fmt.Errorf("decompressing: %w", err)
	}
	defer done()
	return tree.ExtractTar(r, dst, meta, 1<<30+100*fi.Size())
}

// copyLower copies the tree lower (a base the image is layered on) into
// root, with what its metadata sidecar records (owners, devices, modes a
// rootless tree cannot hold), when it has one.
func copyLower(root, lower string, meta *tree.Meta) error {
	if err := tree.CopyInto(root, lower, "/", meta); err != nil {
		return err
	}
	lm, err := tree.LoadMeta(tree.MetaPath(lower)) // none: empty
	if err != nil {
		return err
	}
	meta.Merge(lm)
	return nil
}
