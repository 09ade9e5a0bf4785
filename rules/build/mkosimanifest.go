package build

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"

	"github.com/sxb-build/sxb/internal/atomicfile"
	"github.com/sxb-build/sxb/rules"
)

// mkosiPackage is one package of mkosi's manifest: the well-known keys of
// systemd's package metadata, in mkosi's order.
type mkosiPackage struct {
	Type         string `json:"type"`
	Name         string `json:"name"`
	Version      string `json:"version"`
	Architecture string `json:"architecture"`
}

// mkosiManifestJSON renders mkosi's manifest (manifest_version 1) as
// mkosi's json.dump(indent=2) writes it: keys in mkosi's order, no
// trailing newline. The packages are the ones the image installed, sorted
// by name as mkosi lists them.
func mkosiManifestJSON(m *rules.MkosiManifest, pkgs []Package) ([]byte, error) {
	// Structs, not maps: encoding/json sorts map keys, mkosi does not.
	doc := struct {
		ManifestVersion int                       `json:"manifest_version"`
		Config          rules.MkosiManifestConfig `json:"config"`
		Packages        []mkosiPackage            `json:"packages"`
	}{ManifestVersion: 1, Config: m.Config, Packages: []mkosiPackage{}}
	for _, p := range pkgs {
		doc.Packages = append(doc.Packages, mkosiPackage{m.PackageType, p.Name, p.Version, p.Arch})
	}
	sort.SliceStable(doc.Packages, func(i, j int) bool { return doc.Packages[i].Name < doc.Packages[j].Name })
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// publishMkosiManifest writes mkosi's manifest of t into dir when its
// Publish asks for one and the image has packages (mkosi writes none
// otherwise). It returns the file name written, or "".
func (x *executor) publishMkosiManifest(t *rules.Target, dir string, e *Entry) (string, error) {
	if t.Publish == nil || t.Publish.MkosiManifest == nil {
		return "", nil
	}
	m := t.Publish.MkosiManifest
	var info struct {
		Packages []Package `json:"packages"`
	}
	if err := json.Unmarshal(e.Info, &info); err != nil {
		return "", fmt.Errorf("reading the package record: %w", err)
	}
	if len(info.Packages) == 0 {
		return "", nil
	}
	b, err := mkosiManifestJSON(m, info.Packages)
	if err != nil {
		return "", err
	}
	dst := filepath.Join(dir, m.File)
	x.notePublished(dst, "")
	return m.File, atomicfile.Write(dst, b, 0o644)
}
