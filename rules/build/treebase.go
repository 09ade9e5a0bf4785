package build

import (
	"fmt"
	"os"
	"slices"

	"github.com/sxb-build/sxb/builtins/extension"
	"github.com/sxb-build/sxb/rules"
)

// treeBaseInfo describes a tree sxb did not build as the base of an
// extension: where packages come from (as given, else from its
// os-release) and a key of its content for the action key (every file is
// hashed: the tree may change between builds without sxb knowing).
func treeBaseInfo(b *rules.TreeBase) (baseInfo, string, error) {
	fi, err := os.Stat(b.Path)
	if err != nil {
		return baseInfo{}, "", fmt.Errorf("base tree: %w", err)
	}
	if !fi.IsDir() {
		return baseInfo{}, "", fmt.Errorf("base tree %s: not a directory (archives are not supported as bases yet)", b.Path)
	}
	osr, err := extension.OSRelease(b.Path)
	if err != nil {
		return baseInfo{}, "", fmt.Errorf("base tree %s: reading os-release: %w", b.Path, err)
	}
	info := baseInfo{Distribution: b.Distribution, Release: b.Release, Architecture: b.Architecture, Mirror: b.Mirror,
		Repositories: b.Repositories, OSRelease: osr, AptSources: b.AptSources, NoDefaultSources: b.NoDefaultSources}
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
	digest, err := treeDigest(b.Path)
	if err != nil {
		return baseInfo{}, "", fmt.Errorf("hashing base tree %s: %w", b.Path, err)
	}
	return info, "tree:" + digest, nil
}
