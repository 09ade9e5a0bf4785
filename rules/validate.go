package rules

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/sxb-build/sxb/builtins/deb"
	"github.com/sxb-build/sxb/builtins/disk"
	"github.com/sxb-build/sxb/builtins/image"
	"github.com/sxb-build/sxb/builtins/pacman"
	"github.com/sxb-build/sxb/builtins/repart"
	"github.com/sxb-build/sxb/builtins/rpm"
	"github.com/sxb-build/sxb/internal/arch"
	"github.com/sxb-build/sxb/internal/diag"
	"github.com/sxb-build/sxb/internal/label"
	"github.com/sxb-build/sxb/internal/suggest"
)

// BaseOutputs are the values of BaseImage.Output.
var BaseOutputs = []string{"directory", "tar"}

// Scopes are the words of Extension.Scope.
var Scopes = []string{"initrd", "system", "portable"}

var imageIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// AttrError is a Validate failure about one attribute, named as in
// BUILD.star ("compression", "architecture"); the caller knows where the
// attribute was written.
type AttrError struct {
	Attr string
	Msg  string
}

// Error returns "attr: msg".
func (e *AttrError) Error() string { return e.Attr + ": " + e.Msg }

func attrErr(attr, format string, xs ...any) error {
	return &AttrError{Attr: attr, Msg: fmt.Sprintf(format, xs...)}
}

// Validate checks the base image against what the builtins implement: the
// enums, and an architecture the distribution's installer serves. Errors
// are *AttrError.
func (b *BaseImage) Validate() error {
	switch {
	case !slices.Contains(Distributions, b.Distribution):
		return attrErr("distribution", "%s", suggest.NotOneOf(b.Distribution, Distributions))
	case b.Release == "":
		return attrErr("release", "must not be empty")
	case b.Architecture == arch.None:
		return attrErr("architecture", "not given, and this machine's (Go's %s) has no systemd name", arch.Native().GOARCH())
	case slices.Contains(deb.Distributions, b.Distribution) && !deb.SupportsArch(b.Architecture):
		return attrErr("architecture", "%s has no Debian port", b.Architecture)
	case slices.Contains(rpm.Distributions, b.Distribution) && !rpm.SupportsArch(b.Architecture):
		return attrErr("architecture", "%s: sxb installs %s packages for %s only", b.Architecture, b.Distribution, rpmArches())
	case slices.Contains(pacman.Distributions, b.Distribution) && b.Release != "rolling":
		return attrErr("release", "Arch Linux has one release, \"rolling\" (got %q)", b.Release)
	case slices.Contains(pacman.Distributions, b.Distribution) && !pacman.SupportsArch(b.Architecture):
		return attrErr("architecture", "%s is not built by Arch Linux (x86-64, arm64 and arm are)", b.Architecture)
	case !slices.Contains(BaseOutputs, b.Output):
		return attrErr("output", "%s", suggest.NotOneOf(b.Output, BaseOutputs))
	case b.Base != nil && b.BaseTree != nil:
		return attrErr("base", "a base target and a base tree at once")
	}
	return nil
}

func rpmArches() string {
	var out []string
	for _, a := range arch.All() {
		if rpm.SupportsArch(a) {
			out = append(out, a.Systemd())
		}
	}
	return strings.Join(out, ", ")
}

// Validate checks the extension against what the builtins implement, so a
// combination the image writer cannot honour fails before anything is
// built: the enums, attributes that need each other, an architecture with
// Discoverable Partitions types, and the partition layout (x.Partitions,
// or the default one) with each file system's compression. Errors about
// one attribute are *AttrError; errors inside a partition definition are
// *diag.Diagnostic positioned there.
func (x *Extension) Validate() error {
	if err := x.validateAttrs(); err != nil {
		return err
	}
	parts, err := Definitions(x.Partitions)
	if err != nil {
		return err
	}
	return x.validateLayout(parts)
}

func (x *Extension) validateAttrs() error {
	if x.Kind != KindSysext && x.Kind != KindConfext {
		return attrErr("kind", "%q is not %q or %q", x.Kind, KindSysext, KindConfext)
	}
	if x.ReleaseFromTrees && len(x.ExtensionRelease) > 0 {
		return attrErr("extension_release", "extension_release needs generate_release = True (with False the file comes from extra_trees as written)")
	}
	if len(x.Packages) > 0 && x.Base == nil && x.BaseTree == nil {
		return attrErr("packages", "packages need a base image to be installed on (set base = ...)")
	}
	if x.Base != nil && x.BaseTree != nil {
		return attrErr("base", "a base target and a base tree at once")
	}
	if !slices.Contains(image.Formats(), x.Format) {
		return attrErr("format", "%s", suggest.NotOneOf(x.Format, image.Formats()))
	}
	if x.Compression != "" && len(x.Partitions) == 0 {
		if err := image.CheckCompression(x.Format, x.Compression, ""); err != nil {
			return attrErr("compression", "%v", err)
		}
	}
	switch {
	case !slices.Contains(image.VerityModes, x.Verity):
		return attrErr("verity", "%s", suggest.NotOneOf(x.Verity, image.VerityModes))
	case x.Verity == "signed" && (x.Key == "" || x.Certificate == ""):
		return attrErr("verity", "verity = \"signed\" needs key and certificate")
	case x.Verity != "signed" && x.Key != "":
		return attrErr("key", "a key is only used with verity = \"signed\"")
	case x.Verity != "signed" && x.Certificate != "":
		return attrErr("certificate", "a certificate is only used with verity = \"signed\"")
	}
	if x.Seed != "" {
		if _, err := repart.ParseID128(x.Seed); err != nil {
			return attrErr("seed", "%v", err)
		}
	}
	if x.Version != "" && strings.ContainsAny(x.Version, " \t") {
		return attrErr("version", "%q must not contain spaces", x.Version)
	}
	if strings.ContainsAny(x.Version, "/\x00") {
		return attrErr("version", "%q must not contain \"/\": it is part of the output file name", x.Version)
	}
	if x.ImageID != "" && !imageIDRE.MatchString(x.ImageID) {
		return attrErr("image_id", "%q: only letters, digits, \".\", \"_\" and \"-\" are allowed", x.ImageID)
	}
	for _, w := range strings.Fields(x.Scope) {
		if !slices.Contains(Scopes, w) {
			return attrErr("scope", "%q is not a scope (want \"initrd\", \"system\" or \"portable\", space separated)", w)
		}
	}
	if err := label.ValidateName(x.Output); err != nil {
		return attrErr("output", "%q is not a valid file name", x.Output)
	}
	return x.ValidateArchitecture()
}

// ValidateArchitecture is the part of Validate that checks the
// architecture, for a caller that sets it later (from the base): it must
// have Discoverable Partitions types, or be arch.None (the host's).
func (x *Extension) ValidateArchitecture() error {
	if x.Architecture != arch.None && !slices.Contains(repart.Architectures(), x.Architecture) {
		return attrErr("architecture", "%s has no Discoverable Partitions root/usr partition types, so no extension image can be built for it", x.Architecture)
	}
	return nil
}

// validateLayout checks what the image writer needs of the partitions
// (the default layout when parts is empty): a writer for each file
// system's compression and a key for verity signature partitions (unless
// signing is deferred).
func (x *Extension) validateLayout(parts []*repart.Partition) error {
	if len(parts) == 0 {
		v := x.Verity
		if v == "defer" {
			v = "hash" // the signature partition is reserved, unsigned: no key
		}
		var err error
		if parts, err = disk.DefaultLayout(x.Kind, x.Format, v); err != nil {
			return err
		}
	}
	for _, p := range parts {
		if p.Verity == repart.VeritySignature && x.Verity != "defer" && (x.Key == "" || x.Certificate == "") {
			return diag.Errorf(p.KeyPos("Verity"), "%v (set verity = \"signed\", key and certificate)", repart.ErrNoKey)
		}
		if p.Format == "" {
			continue
		}
		c := p.Compression
		if c == "" {
			c = x.Compression
		}
		if err := image.CheckCompression(p.Format, c, p.CompressionLevel); err != nil {
			if p.Compression == "" && p.CompressionLevel == "" {
				return attrErr("compression", "%s (partition %s)", err, p.Name)
			}
			return diag.Errorf(p.KeyPos("Compression"), "%v", err)
		}
	}
	return nil
}

// Definitions parses partitions as systemd-repart reads them (inline ones
// named "10-partition.conf", "20-partition.conf", ... by their place) and
// checks them as a layout; none gives nil.
func Definitions(partitions []Partition) ([]*repart.Partition, error) {
	var parts []*repart.Partition
	for i, p := range partitions {
		var rp *repart.Partition
		var err error
		getenv := func(k string) (string, bool) {
			for _, kv := range p.Env {
				if kv.Key == k {
					return kv.Value, true
				}
			}
			return "", false
		}
		if p.File != "" {
			rp, err = repart.ParseFileEnv(p.File, getenv)
		} else {
			kvs := make([]repart.KV, len(p.Keys))
			for j, kv := range p.Keys {
				kvs[j] = repart.KV{Key: kv.Key, Value: kv.Value}
			}
			rp, err = repart.FromKeysEnv(p.Pos, fmt.Sprintf("%02d-partition.conf", (i+1)*10), kvs, getenv)
		}
		if err != nil {
			return nil, err
		}
		parts = append(parts, rp)
	}
	if len(parts) > 0 {
		if err := repart.CheckLayout(parts); err != nil {
			return nil, err
		}
	}
	return parts, nil
}
