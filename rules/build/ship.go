package build

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sxb-build/sxb/builtins/deb"
	"github.com/sxb-build/sxb/builtins/rpm"
	"github.com/sxb-build/sxb/builtins/sbom"
	"github.com/sxb-build/sxb/builtins/sysupdate"
	"github.com/sxb-build/sxb/internal/atomicfile"
	"github.com/sxb-build/sxb/rules"
)

// Shipping an extension: its compressed form and SBOM (made with the image,
// cached) and its systemd-sysupdate definitions and SHA256SUMS signature
// (made when publishing).

// licenser is implemented by installers that can tell the declared licence
// of each package they installed into a tree.
type licenser interface {
	Licenses(root string, pkgs []Package) map[string]sbom.License
}

// Licenses reads each package's DEP-5 copyright file in the tree.
func (debInstaller) Licenses(root string, pkgs []Package) map[string]sbom.License {
	out := map[string]sbom.License{}
	for _, p := range pkgs {
		if c, ok := deb.ReadCopyright(root, p.Name); ok {
			out[p.Name] = sbom.DebianLicense(c, p.Name)
		}
	}
	return out
}

// Licenses reads the License tags recorded in the tree's installed-package
// record.
func (rpmInstaller) Licenses(root string, pkgs []Package) map[string]sbom.License {
	out := map[string]sbom.License{}
	inst, err := rpm.ReadInstalled(root)
	if err != nil {
		return out
	}
	for _, p := range inst {
		if p.License != "" {
			out[p.Name] = sbom.ExpressionLicense(p.License)
		}
	}
	return out
}

// writeSBOM writes <name>.spdx.json for the extension image img into the
// staging directory out.
func writeSBOM(out, img string, t *rules.Target, info baseInfo, inputs extInputs, lic map[string]sbom.License, epoch int64) error {
	ext := t.Ext
	digest, err := sysupdate.FileDigest(img)
	if err != nil {
		return err
	}
	si := &sbom.Image{Name: ext.Output, Version: ext.Version, Kind: ext.Kind, File: filepath.Base(img), SHA256: digest,
		Architecture: inputs.Arch.String(), Distribution: info.Distribution, Release: info.Release, Epoch: epoch}
	if ext.Base != nil {
		si.Base = &sbom.Base{Label: ext.Base.String(), Distribution: info.Distribution, Release: info.Release, Arch: info.Architecture.String()}
	}
	for _, p := range inputs.Packages {
		si.Packages = append(si.Packages, sbom.Package{Name: p.Name, Version: p.Version, Arch: p.Arch, Source: p.Source,
			URL: p.URL, SHA256: p.SHA256, License: lic[p.Name]})
	}
	b, err := sbom.Marshal(si)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, strings.TrimSuffix(filepath.Base(img), ".raw")+".spdx.json"), b, 0o644)
}

// compressedName is the published image name of an extension: the cached
// <stem>.raw, or <stem>.raw.zst / .raw.xz when compressed.
func compressedName(ext *rules.Extension) string {
	name := outputName(ext) + ".raw"
	if sfx, err := sysupdate.Suffix(ext.CompressOutput); err == nil {
		name += "." + sfx
	}
	return name
}

// publishUpdate writes the extension's sysupdate definitions into dir and
// remembers its signing key; it returns the names written.
func (x *executor) publishUpdate(t *rules.Target, dir string) ([]string, error) {
	u := t.Ext.Update
	if u == nil {
		return nil, nil
	}
	if u.SignKey != "" {
		x.pubMu.Lock()
		prev, ok := x.signKeys[dir]
		x.signKeys[dir] = u.SignKey
		x.pubMu.Unlock()
		if ok && prev != u.SignKey {
			return nil, fmt.Errorf("%s: sign_key %s, but another target publishing there signs with %s", dir, u.SignKey, prev)
		}
	}
	files := map[string][]byte{}
	if u.Definitions != "" {
		ents, err := os.ReadDir(u.Definitions)
		if err != nil {
			return nil, fmt.Errorf("reading sysupdate definitions: %w", err)
		}
		for _, e := range ents {
			n := e.Name()
			if !e.Type().IsRegular() || !(strings.HasSuffix(n, ".transfer") || strings.HasSuffix(n, ".conf") || strings.HasSuffix(n, ".feature")) {
				continue
			}
			b, err := os.ReadFile(filepath.Join(u.Definitions, n))
			if err != nil {
				return nil, fmt.Errorf("reading sysupdate definitions: %w", err)
			}
			files[n] = b
		}
	}
	if u.URL != "" {
		tr := &sysupdate.Transfer{Name: t.Ext.Output, Kind: t.Ext.Kind, URL: u.URL, TargetPath: u.TargetPath,
			CurrentSymlink: u.CurrentSymlink, InstancesMax: u.InstancesMax, Verify: u.Verify,
			MinVersion: u.MinVersion, ProtectVersion: u.ProtectVersion, Mode: u.Mode}
		if t.Ext.CompressOutput == "zstd" {
			// Hosts updating this image need a systemd-pull that
			// decompresses zstd (newer than 257).
			tr.Compressions = []string{"xz", "zst"}
		}
		if u.Feature != "" {
			tr.Features = []string{u.Feature}
			b, err := (&sysupdate.Feature{Name: u.Feature, Description: u.FeatureDescription, Enabled: u.FeatureEnabled}).Render()
			if err != nil {
				return nil, err
			}
			files[u.Feature+".feature"] = b
		}
		b, err := tr.Render()
		if err != nil {
			return nil, err
		}
		files[sysupdate.FileName(t.Ext.Output, u.LegacyNaming)] = b
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		dst := filepath.Join(dir, n)
		if old, err := os.ReadFile(dst); err == nil && bytes.Equal(old, files[n]) {
			x.notePublished(dst, "")
			continue
		}
		if err := atomicfile.Write(dst, files[n], 0o644); err != nil {
			return nil, err
		}
		x.notePublished(dst, "")
	}
	return names, nil
}

// signChecksums signs dir/SHA256SUMS with the key for dir (--sign-key, or
// a target's sign_key). Without a key, a SHA256SUMS.gpg left from an
// earlier build is removed when SHA256SUMS changed: it no longer matches.
func (x *executor) signChecksums(dir string, changed bool) error {
	keyFile := x.opts.SignKey
	if keyFile == "" {
		keyFile = x.signKeys[dir]
	}
	if keyFile == "" {
		if changed {
			if _, err := os.Stat(filepath.Join(dir, sysupdate.SignatureFile)); err == nil {
				fmt.Fprintf(x.opts.Log, "sxb: removing %s: SHA256SUMS changed and no signing key is set\n", filepath.Join(dir, sysupdate.SignatureFile))
				return sysupdate.SignDir(dir, nil, 0)
			}
		}
		return nil
	}
	k, err := sysupdate.LoadSigningKey(keyFile, x.opts.SignPassphrase)
	if err != nil {
		return err
	}
	return sysupdate.SignDir(dir, k, x.opts.Epoch)
}
