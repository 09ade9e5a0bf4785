package sbom

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	spdxjson "github.com/spdx/tools-golang/json"

	"github.com/sxb-build/sxb/builtins/deb"
)

const dep5 = `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: jq
Source: https://github.com/jqlang/jq

Files: *
Copyright: 2012 Stephen Dolan
License: Expat

Files: src/decNumber/*
Copyright: IBM
License: ICU

Files: debian/*
Copyright: 2013 Simon Elsbrock
License: GPL-2+ or Artistic, and BSD-3-clause
 The text of the licences follows.

Files: m4/*
License: GPL-3+ with Autoconf-data exception

License: ICU
 ICU License - ICU 1.8.1 and later
 .
 Permission is hereby granted...

License: Expat
 Permission is hereby granted, free of charge...
`

func TestDebianLicense(t *testing.T) {
	c, ok := deb.ParseCopyright([]byte(dep5))
	if !ok {
		t.Fatal("DEP-5 file not recognized")
	}
	l := DebianLicense(c, "jq")
	want := "MIT AND LicenseRef-ICU AND ((GPL-2.0-or-later OR Artistic-1.0-Perl) AND BSD-3-Clause) AND LicenseRef-GPL-3-with-Autoconf-data-exception"
	if l.Expression != want {
		t.Errorf("expression\n got %s\nwant %s", l.Expression, want)
	}
	if !strings.Contains(l.Refs["LicenseRef-ICU"], "ICU License") {
		t.Errorf("LicenseRef-ICU text = %q, want the standalone License paragraph", l.Refs["LicenseRef-ICU"])
	}
	if !strings.Contains(l.Refs["LicenseRef-GPL-3-with-Autoconf-data-exception"], "/usr/share/doc/jq/copyright") {
		t.Errorf("exception text = %q", l.Refs["LicenseRef-GPL-3-with-Autoconf-data-exception"])
	}
	if _, ok := deb.ParseCopyright([]byte("This package was debianized by someone.\n\nCopyright: GPL\n")); ok {
		t.Error("a free-form copyright file was taken as DEP-5")
	}
	for in, want := range map[string]string{"GPL-2": "GPL-2.0-only", "LGPL-2.1+": "LGPL-2.1-or-later", "AGPL-3+": "AGPL-3.0-or-later",
		"GPL-2.0-or-later": "GPL-2.0-or-later", "expat": "MIT", "BSD-2-clause": "BSD-2-Clause", "Frobnitz": ""} {
		if got := spdxName(in); got != want {
			t.Errorf("spdxName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReadCopyrightStaysInTree(t *testing.T) {
	root := t.TempDir()
	outside := filepath.Join(t.TempDir(), "copyright")
	os.WriteFile(outside, []byte(dep5), 0o644)
	os.MkdirAll(filepath.Join(root, "usr/share/doc/evil"), 0o755)
	os.Symlink(outside, filepath.Join(root, "usr/share/doc/evil/copyright"))
	if _, ok := deb.ReadCopyright(root, "evil"); ok {
		t.Error("a copyright symlink to a host file was read")
	}
	os.MkdirAll(filepath.Join(root, "usr/share/doc/jq"), 0o755)
	os.WriteFile(filepath.Join(root, "usr/share/doc/jq/copyright"), []byte(dep5), 0o644)
	os.Symlink("jq", filepath.Join(root, "usr/share/doc/libjq1"))
	if _, ok := deb.ReadCopyright(root, "libjq1"); !ok {
		t.Error("a doc directory symlinked inside the tree was not followed")
	}
	if _, ok := deb.ReadCopyright(root, "../../../etc"); ok {
		t.Error("a package name with slashes was used as a path")
	}
}

func TestPURL(t *testing.T) {
	for _, c := range []struct {
		dist, rel string
		p         Package
		want      string
	}{
		{"debian", "bookworm", Package{Name: "jq", Version: "1.6-2.1", Arch: "amd64"}, "pkg:deb/debian/jq@1.6-2.1?arch=amd64&distro=debian-bookworm"},
		{"debian", "trixie", Package{Name: "libc6", Version: "2:2.41-12", Arch: "amd64", Source: "glibc"}, "pkg:deb/debian/libc6@2%3A2.41-12?arch=amd64&distro=debian-trixie&upstream=glibc"},
		{"debian", "trixie", Package{Name: "libonig5", Version: "6.9.9-1+b1", Arch: "amd64", Source: "libonig (6.9.9-1)"}, "pkg:deb/debian/libonig5@6.9.9-1%2Bb1?arch=amd64&distro=debian-trixie&upstream=libonig"},
		{"fedora", "41", Package{Name: "bash", Version: "1:5.2.32-1.fc41", Arch: "x86_64"}, "pkg:rpm/fedora/bash@5.2.32-1.fc41?arch=x86_64&distro=fedora-41&epoch=1"},
		{"arch", "", Package{Name: "pacman", Version: "7.0.0.r6.gc685ae6-2", Arch: "x86_64"}, "pkg:alpm/arch/pacman@7.0.0.r6.gc685ae6-2?arch=x86_64"},
		{"custom", "", Package{Name: "x"}, ""},
	} {
		if got := PURL(c.dist, c.rel, c.p); got != c.want {
			t.Errorf("PURL(%s %+v)\n got %s\nwant %s", c.dist, c.p, got, c.want)
		}
	}
}

func TestExpressionAndPacmanLicense(t *testing.T) {
	if l := ExpressionLicense("GPL-2.0-or-later AND (MIT OR Apache-2.0)"); l.Expression != "GPL-2.0-or-later AND (MIT OR Apache-2.0)" || len(l.Refs) != 0 {
		t.Errorf("SPDX expression changed: %+v", l)
	}
	if l := ExpressionLicense("GPL v2, see COPYING"); !strings.HasPrefix(l.Expression, "LicenseRef-") || l.Refs[l.Expression] != "GPL v2, see COPYING" {
		t.Errorf("free text: %+v", l)
	}
	desc := "%NAME%\npacman\n\n%LICENSE%\nGPL-2.0-or-later\nMIT\n\n%ARCH%\nx86_64\n"
	if l := PacmanLicense([]byte(desc)); l.Expression != "GPL-2.0-or-later AND MIT" {
		t.Errorf("pacman licence = %+v", l)
	}
}

// TestDocumentParses writes a document and reads it back with
// tools-golang's reader: every package with its digest, purl and licence,
// the relationships, a namespace from content and a creation time from
// the epoch; the same input gives the same bytes.
func TestDocumentParses(t *testing.T) {
	c, _ := deb.ParseCopyright([]byte(dep5))
	img := &Image{Name: "jq", Version: "1.0", Kind: "sysext", File: "jq_1.0.raw", SHA256: strings.Repeat("ab", 32),
		Architecture: "x86-64", Distribution: "debian", Release: "bookworm", Epoch: 1700000000,
		Base: &Base{Label: "//img:bookworm", Distribution: "debian", Release: "bookworm", Arch: "x86-64"},
		Packages: []Package{
			{Name: "libjq1", Version: "1.6-2.1", Arch: "amd64", Source: "jq", URL: "http://deb.debian.org/debian/pool/main/j/jq/libjq1_1.6-2.1_amd64.deb", SHA256: strings.Repeat("11", 32)},
			{Name: "jq", Version: "1.6-2.1", Arch: "amd64", URL: "http://deb.debian.org/debian/pool/main/j/jq/jq_1.6-2.1_amd64.deb", SHA256: strings.Repeat("22", 32), License: DebianLicense(c, "jq")},
		}}
	b, err := Marshal(img)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Marshal(img)
	if !bytes.Equal(b, again) {
		t.Error("two documents of the same image differ")
	}
	doc, err := spdxjson.Read(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("tools-golang cannot read the document: %v\n%s", err, b)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.CreationInfo.Created != "2023-11-14T22:13:20Z" || !strings.HasPrefix(doc.DocumentNamespace, namespacePrefix+"jq_1.0-") {
		t.Errorf("version %s, created %s, namespace %s", doc.SPDXVersion, doc.CreationInfo.Created, doc.DocumentNamespace)
	}
	got := map[string]string{}
	for _, p := range doc.Packages {
		if !strings.HasPrefix(string(p.PackageSPDXIdentifier), "Package-") {
			continue
		}
		if len(p.PackageChecksums) != 1 || p.PackageChecksums[0].Algorithm != "SHA256" {
			t.Errorf("%s: checksums %+v", p.PackageName, p.PackageChecksums)
			continue
		}
		got[p.PackageName] = p.PackageChecksums[0].Value
		if p.PackageName == "jq" {
			if p.PackageLicenseDeclared != DebianLicense(c, "jq").Expression || p.PackageExternalReferences[0].Locator != "pkg:deb/debian/jq@1.6-2.1?arch=amd64&distro=debian-bookworm" {
				t.Errorf("jq: licence %q, refs %+v", p.PackageLicenseDeclared, p.PackageExternalReferences[0])
			}
			if p.PackageDownloadLocation != img.Packages[1].URL || p.PackageFileName != "jq_1.6-2.1_amd64.deb" {
				t.Errorf("jq: download %q file %q", p.PackageDownloadLocation, p.PackageFileName)
			}
		}
	}
	if len(got) != 2 || got["jq"] != strings.Repeat("22", 32) || got["libjq1"] != strings.Repeat("11", 32) {
		t.Errorf("packages %v", got)
	}
	if len(doc.Packages) != 4 {
		t.Errorf("%d SPDX packages, want 4 (image, base, jq, libjq1)", len(doc.Packages))
	}
	rels := map[string]int{}
	for _, r := range doc.Relationships {
		rels[r.Relationship]++
	}
	if rels["DESCRIBES"] != 1 || rels["CONTAINS"] != 2 || rels["DEPENDS_ON"] != 1 {
		t.Errorf("relationships %v", rels)
	}
	if len(doc.OtherLicenses) != 2 {
		t.Errorf("%d extracted licences, want 2 (ICU and the exception)", len(doc.OtherLicenses))
	}
	// A different package set is a different document.
	img.Packages = img.Packages[:1]
	other, _ := Marshal(img)
	d2, _ := spdxjson.Read(bytes.NewReader(other))
	if d2.DocumentNamespace == doc.DocumentNamespace {
		t.Error("the namespace does not change with the content")
	}
}
