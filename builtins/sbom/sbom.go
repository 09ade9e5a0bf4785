// Package sbom writes a software bill of materials for an image: an SPDX
// 2.3 JSON document, built and serialized with github.com/spdx/tools-golang
// (the SPDX project's own Go library; its reader is what the tests check
// the output with). Every package carries its version, architecture, a
// package URL, download location, the SHA-256 of the package file and the
// licence it declares; relationships tie the packages to the image and an
// extension to its base. The document is deterministic: its namespace is a
// digest of its content and its creation time is SOURCE_DATE_EPOCH.
package sbom

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

// Package is one installed package.
type Package struct {
	Name, Version, Arch string
	// Source is the source package name, when it differs.
	Source string
	// URL is where the package file was downloaded from.
	URL string
	// SHA256 is the lower-case hex digest of the package file.
	SHA256  string
	License License
}

// Base names the image an extension was built on.
type Base struct {
	// Label is the base target ("//pkg:name").
	Label                       string
	Distribution, Release, Arch string
}

// Image describes the image the document is about.
type Image struct {
	// Name is the image's name (the output name) and Version its version
	// ("" for none).
	Name, Version string
	// Kind is "sysext", "confext" or "base_image".
	Kind string
	// File is the image file name and SHA256 its digest ("" when not
	// known).
	File, SHA256 string
	// Architecture is the systemd architecture name.
	Architecture string
	// Distribution and Release are the packages' distribution.
	Distribution, Release string
	// Base is set for an extension built on a base image.
	Base *Base
	// Packages are the packages the image itself contains.
	Packages []Package
	// Epoch is SOURCE_DATE_EPOCH: the document's creation time.
	Epoch int64
}

// Marshal returns the SPDX 2.3 JSON document for img.
func Marshal(img *Image) ([]byte, error) {
	doc, err := Document(img)
	if err != nil {
		return nil, err
	}
	return encode(doc)
}

func encode(doc *spdx.Document) ([]byte, error) {
	var b bytes.Buffer
	if err := spdxjson.Write(doc, &b, spdxjson.Indent("  "), spdxjson.EscapeHTML(false)); err != nil {
		return nil, fmt.Errorf("writing SPDX document: %w", err)
	}
	return b.Bytes(), nil
}

// namespacePrefix is the document namespace's prefix; the namespace ends in
// a digest of the document, so that the same content names the same
// document anywhere.
const namespacePrefix = "https://sxb-build.github.io/spdx/"

// Document builds the SPDX document for img.
func Document(img *Image) (*spdx.Document, error) {
	if img.Name == "" {
		return nil, fmt.Errorf("SPDX document: the image has no name")
	}
	name := img.Name
	if img.Version != "" {
		name += "_" + img.Version
	}
	doc := &spdx.Document{
		SPDXVersion:    spdx.Version,
		DataLicense:    spdx.DataLicense,
		SPDXIdentifier: "DOCUMENT",
		DocumentName:   name,
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: "sxb"}},
			Created:  time.Unix(img.Epoch, 0).UTC().Format("2006-01-02T15:04:05Z"),
		},
	}
	imgID := common.ElementID("Image-" + sanitize(name))
	ip := &spdx.Package{
		PackageName:             img.Name,
		PackageSPDXIdentifier:   imgID,
		PackageVersion:          img.Version,
		PackageFileName:         img.File,
		PackageDownloadLocation: "NOASSERTION",
		PrimaryPackagePurpose:   "OPERATING-SYSTEM",
		PackageLicenseConcluded: "NOASSERTION",
		PackageLicenseDeclared:  "NOASSERTION",
		PackageCopyrightText:    "NOASSERTION",
		PackageComment:          fmt.Sprintf("%s image for %s", img.Kind, img.Architecture),
	}
	if img.SHA256 != "" {
		ip.PackageChecksums = []common.Checksum{{Algorithm: common.SHA256, Value: img.SHA256}}
	}
	doc.Packages = append(doc.Packages, ip)
	doc.Relationships = append(doc.Relationships, rel("DOCUMENT", string(imgID), "DESCRIBES", ""))
	if b := img.Base; b != nil {
		baseID := common.ElementID("Base-" + sanitize(b.Label))
		doc.Packages = append(doc.Packages, &spdx.Package{
			PackageName:             b.Label,
			PackageSPDXIdentifier:   baseID,
			PackageVersion:          b.Release,
			PackageDownloadLocation: "NOASSERTION",
			PrimaryPackagePurpose:   "OPERATING-SYSTEM",
			PackageLicenseConcluded: "NOASSERTION",
			PackageLicenseDeclared:  "NOASSERTION",
			PackageCopyrightText:    "NOASSERTION",
			PackageComment:          fmt.Sprintf("base image: %s %s for %s; its packages are not part of this image", b.Distribution, b.Release, b.Arch),
		})
		doc.Relationships = append(doc.Relationships, rel(string(imgID), string(baseID), "DEPENDS_ON",
			"the extension is built against this base and merged over it at run time"))
	}
	refs := map[string]string{}
	ids := map[common.ElementID]bool{}
	pkgs := append([]Package(nil), img.Packages...)
	sort.SliceStable(pkgs, func(i, j int) bool {
		return pkgs[i].Name < pkgs[j].Name || pkgs[i].Name == pkgs[j].Name && pkgs[i].Arch < pkgs[j].Arch
	})
	for _, p := range pkgs {
		id := common.ElementID("Package-" + sanitize(p.Name+"-"+p.Arch))
		for n := 2; ids[id]; n++ {
			id = common.ElementID(fmt.Sprintf("Package-%s-%d", sanitize(p.Name+"-"+p.Arch), n))
		}
		ids[id] = true
		sp := &spdx.Package{
			PackageName:             p.Name,
			PackageSPDXIdentifier:   id,
			PackageVersion:          p.Version,
			PackageDownloadLocation: p.URL,
			PrimaryPackagePurpose:   "LIBRARY",
			PackageLicenseConcluded: "NOASSERTION",
			PackageLicenseDeclared:  "NOASSERTION",
			PackageCopyrightText:    "NOASSERTION",
		}
		if sp.PackageDownloadLocation == "" {
			sp.PackageDownloadLocation = "NOASSERTION"
		}
		if i := strings.LastIndexByte(p.URL, '/'); i >= 0 {
			sp.PackageFileName = p.URL[i+1:]
		}
		if src := sourceName(p.Source); src != "" && src != p.Name {
			sp.PackageSourceInfo = "built from source package " + src
		}
		if p.SHA256 != "" {
			sp.PackageChecksums = []common.Checksum{{Algorithm: common.SHA256, Value: p.SHA256}}
		}
		if p.License.Expression != "" {
			sp.PackageLicenseDeclared = p.License.Expression
			for k, v := range p.License.Refs {
				refs[k] = v
			}
		}
		if purl := PURL(img.Distribution, img.Release, p); purl != "" {
			sp.PackageExternalReferences = []*spdx.PackageExternalReference{{Category: "PACKAGE-MANAGER", RefType: "purl", Locator: purl}}
		}
		doc.Packages = append(doc.Packages, sp)
		doc.Relationships = append(doc.Relationships, rel(string(imgID), string(id), "CONTAINS", ""))
	}
	keys := make([]string, 0, len(refs))
	for k := range refs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		doc.OtherLicenses = append(doc.OtherLicenses, &spdx.OtherLicense{LicenseIdentifier: k, ExtractedText: refs[k]})
	}
	// The namespace is a digest of everything else.
	b, err := encode(doc)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	doc.DocumentNamespace = namespacePrefix + url.PathEscape(name) + "-" + hex.EncodeToString(sum[:16])
	return doc, nil
}

func rel(a, b, typ, comment string) *spdx.Relationship {
	return &spdx.Relationship{RefA: common.MakeDocElementID("", a), RefB: common.MakeDocElementID("", b),
		Relationship: typ, RelationshipComment: comment}
}

// sanitize keeps what an SPDX identifier may hold: letters, digits, "."
// and "-".
func sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

// PURL returns the package URL (github.com/package-url/purl-spec) of a
// distribution package: pkg:deb/debian/…, pkg:rpm/fedora/…,
// pkg:alpm/arch/…, or "" for a distribution without a purl type.
func PURL(distribution, release string, p Package) string {
	var typ, ns string
	q := url.Values{}
	version := p.Version
	switch distribution {
	case "debian", "ubuntu", "kali":
		typ, ns = "deb", distribution
		if release != "" {
			q.Set("distro", distribution+"-"+release)
		}
	case "fedora", "opensuse", "centos", "rhel", "rhel-ubi", "alma", "rocky", "mageia", "openmandriva", "azure":
		typ, ns = "rpm", distribution
		if release != "" {
			q.Set("distro", distribution+"-"+release)
		}
		// rpm purls carry the epoch as a qualifier.
		if e, v, ok := strings.Cut(version, ":"); ok {
			q.Set("epoch", e)
			version = v
		}
	case "arch":
		typ, ns = "alpm", "arch"
	default:
		return ""
	}
	if p.Arch != "" {
		q.Set("arch", p.Arch)
	}
	if src := sourceName(p.Source); src != "" && src != p.Name && typ == "deb" {
		q.Set("upstream", src)
	}
	s := "pkg:" + typ + "/" + ns + "/" + purlEscape(p.Name)
	if version != "" {
		s += "@" + purlEscape(version)
	}
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	return s
}

// sourceName is the source package name of a Debian Source field, which
// carries the source version in parentheses when it differs from the
// binary's ("libonig (6.9.9-1)").
func sourceName(s string) string {
	name, _, _ := strings.Cut(s, " ")
	return name
}

// purlEscape percent-encodes a purl name or version: everything but
// letters, digits and ".-_~" (so the "+" and ":" of Debian versions too).
func purlEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
