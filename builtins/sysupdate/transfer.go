// Package sysupdate writes what systemd-sysupdate needs to update an
// extension image from a web server: transfer definitions (sysupdate.d(5)),
// optional feature definitions (sysupdate.features(5)), detached OpenPGP
// signatures of SHA256SUMS manifests (SHA256SUMS.gpg, checked by
// `systemd-sysupdate --verify=yes`), and byte-reproducible compressed
// images (.raw.zst, .raw.xz) that sysupdate decompresses while downloading.
package sysupdate

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// Transfer describes the update of one extension image: a url-file source
// offering <Name>_<version>.raw (plain or compressed) and a regular-file
// target in the extensions directory of its kind.
type Transfer struct {
	// Name is the image name: files are <Name>_<version>.raw.
	Name string
	// Kind is "sysext" or "confext"; it picks the default target
	// directory.
	Kind string
	// URL is the HTTP or HTTPS directory serving SHA256SUMS and the images.
	URL string
	// TargetPath is where versions are installed; default
	// /var/lib/extensions/ (sysext) or /var/lib/confexts/ (confext).
	TargetPath string
	// CurrentSymlink names the symlink to the newest version; relative to
	// TargetPath. Default <Name>.raw; "-" writes none.
	CurrentSymlink string
	// InstancesMax is how many versions are kept (at least 2; default 3,
	// systemd's own default for files).
	InstancesMax int
	// Verify false writes Verify=no (SHA256SUMS.gpg is then not checked).
	Verify bool
	// Features lists the optional features the transfer belongs to.
	Features []string
	// MinVersion and ProtectVersion are written when set.
	MinVersion, ProtectVersion string
	// Mode is the target file mode written as Mode= (e.g. "0444"); "" for
	// none.
	Mode string
	// Compressions are the suffixes of compressed images the source
	// matches besides the plain .raw; nil means DefaultCompressions.
	Compressions []string
}

// DefaultCompressions are the compressed images a source matches by
// default: xz only. systemd-pull, which systemd-sysupdate downloads with,
// decompresses xz, gzip and bzip2 in systemd 257 (Debian trixie) but not
// zstd, which later versions added: a .raw.zst would be installed still
// compressed. Transfers for zstd images add "zst" explicitly.
var DefaultCompressions = []string{"xz"}

var (
	nameRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.+-]*$`)
	versionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.+~^-]*$`)
	featureRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	modeRE    = regexp.MustCompile(`^0?[0-7]{3}$`)
)

// DefaultTarget is the directory systemd-sysext or systemd-confext reads
// images of kind from.
func DefaultTarget(kind string) string {
	if kind == "confext" {
		return "/var/lib/confexts/"
	}
	return "/var/lib/extensions/"
}

// Check reports the first value that would make a broken or ambiguous
// definition: an image name with "_" (systemd cuts image names at the
// first "_"), a URL that is not HTTP(S), a relative target, characters
// sysupdate would expand ("%" specifiers, "@" wildcards) or newlines.
func (t *Transfer) Check() error {
	if !nameRE.MatchString(t.Name) {
		return fmt.Errorf("image name %q: want letters, digits, \".\", \"+\" and \"-\" (no \"_\": it separates the version)", t.Name)
	}
	if t.Kind != "sysext" && t.Kind != "confext" {
		return fmt.Errorf("kind %q: want sysext or confext", t.Kind)
	}
	if !strings.HasPrefix(t.URL, "https://") && !strings.HasPrefix(t.URL, "http://") {
		return fmt.Errorf("update URL %q: want an http:// or https:// URL", t.URL)
	}
	for _, v := range []struct{ what, s string }{{"update URL", t.URL}, {"target path", t.TargetPath},
		{"current symlink", t.CurrentSymlink}, {"min version", t.MinVersion}, {"protect version", t.ProtectVersion}} {
		if strings.ContainsAny(v.s, "\n\r\x00 \t%@\\\"'") {
			return fmt.Errorf("%s %q: must not contain spaces, quotes, backslashes, \"%%\" or \"@\"", v.what, v.s)
		}
	}
	if t.TargetPath != "" && !path.IsAbs(t.TargetPath) {
		return fmt.Errorf("target path %q: want an absolute path", t.TargetPath)
	}
	if t.InstancesMax != 0 && t.InstancesMax < 2 {
		return fmt.Errorf("instances max %d: systemd-sysupdate needs at least 2", t.InstancesMax)
	}
	for _, f := range t.Features {
		if !featureRE.MatchString(f) {
			return fmt.Errorf("feature %q: want letters, digits, \".\", \"_\" and \"-\"", f)
		}
	}
	for _, v := range []string{t.MinVersion, t.ProtectVersion} {
		if v != "" && !versionRE.MatchString(v) {
			return fmt.Errorf("version %q is not a version systemd-sysupdate accepts", v)
		}
	}
	if t.Mode != "" && !modeRE.MatchString(t.Mode) {
		return fmt.Errorf("mode %q: want an octal file mode such as \"0444\"", t.Mode)
	}
	return nil
}

// SourcePatterns are the source MatchPattern= values: the plain image and
// its compressed variants.
func (t *Transfer) SourcePatterns() []string {
	out := []string{t.Name + "_@v.raw"}
	cs := t.Compressions
	if cs == nil {
		cs = DefaultCompressions
	}
	for _, c := range cs {
		out = append(out, t.Name+"_@v.raw."+c)
	}
	return out
}

// Render returns the transfer definition file.
func (t *Transfer) Render() ([]byte, error) {
	if err := t.Check(); err != nil {
		return nil, err
	}
	target := t.TargetPath
	if target == "" {
		target = DefaultTarget(t.Kind)
	}
	link := t.CurrentSymlink
	if link == "" {
		link = t.Name + ".raw"
	}
	n := t.InstancesMax
	if n == 0 {
		n = 3
	}
	url := t.URL
	if !strings.HasSuffix(url, "/") {
		url += "/"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# systemd-sysupdate transfer for the %s %s, written by sxb.\n", t.Kind, t.Name)
	b.WriteString("[Transfer]\n")
	if !t.Verify {
		b.WriteString("Verify=no\n")
	}
	if len(t.Features) > 0 {
		fmt.Fprintf(&b, "Features=%s\n", strings.Join(t.Features, " "))
	}
	if t.MinVersion != "" {
		fmt.Fprintf(&b, "MinVersion=%s\n", t.MinVersion)
	}
	if t.ProtectVersion != "" {
		fmt.Fprintf(&b, "ProtectVersion=%s\n", t.ProtectVersion)
	}
	b.WriteString("\n[Source]\nType=url-file\n")
	fmt.Fprintf(&b, "Path=%s\n", url)
	fmt.Fprintf(&b, "MatchPattern=%s\n", strings.Join(t.SourcePatterns(), " "))
	b.WriteString("\n[Target]\nType=regular-file\n")
	fmt.Fprintf(&b, "Path=%s\n", target)
	fmt.Fprintf(&b, "MatchPattern=%s_@v.raw\n", t.Name)
	if t.Mode != "" {
		fmt.Fprintf(&b, "Mode=%s\n", t.Mode)
	}
	if link != "-" {
		fmt.Fprintf(&b, "CurrentSymlink=%s\n", link)
	}
	fmt.Fprintf(&b, "InstancesMax=%d\n", n)
	return []byte(b.String()), nil
}

// Feature is an optional feature definition (sysupdate.features(5)).
type Feature struct {
	// Name is the feature name: the file is <Name>.feature.
	Name string
	// Description is a short human-readable label.
	Description string
	// Documentation is a URL, written when set.
	Documentation string
	// Enabled is the default state (features are off unless enabled).
	Enabled bool
}

// Render returns the feature definition file.
func (f *Feature) Render() ([]byte, error) {
	if !featureRE.MatchString(f.Name) {
		return nil, fmt.Errorf("feature %q: want letters, digits, \".\", \"_\" and \"-\"", f.Name)
	}
	for _, s := range []string{f.Description, f.Documentation} {
		if strings.ContainsAny(s, "\n\r\x00%\\") {
			return nil, fmt.Errorf("feature %s: %q must not contain newlines, \"%%\" or backslashes", f.Name, s)
		}
	}
	var b strings.Builder
	b.WriteString("[Feature]\n")
	if f.Description != "" {
		fmt.Fprintf(&b, "Description=%s\n", f.Description)
	}
	if f.Documentation != "" {
		fmt.Fprintf(&b, "Documentation=%s\n", f.Documentation)
	}
	fmt.Fprintf(&b, "Enabled=%t\n", f.Enabled)
	return []byte(b.String()), nil
}

// FileName is the transfer file name: <name>.transfer, or <name>.conf for
// systemd before 257 (legacy naming).
func FileName(name string, legacy bool) string {
	if legacy {
		return name + ".conf"
	}
	return name + ".transfer"
}
