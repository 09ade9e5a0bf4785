package rules

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/internal/arch"
	"github.com/sxb-build/sxb/internal/diag"
)

func TestBaseImageValidate(t *testing.T) {
	ok := func() BaseImage {
		return BaseImage{Name: "b", Distribution: "debian", Release: "bookworm", Architecture: arch.X86_64, Output: "directory"}
	}
	for _, c := range []struct {
		name       string
		edit       func(*BaseImage)
		attr, want string // "" attr: valid
	}{
		{"ok", func(*BaseImage) {}, "", ""},
		{"armhf", func(b *BaseImage) { b.Architecture = arch.ARM }, "", ""},
		{"fedora arm64", func(b *BaseImage) { b.Distribution, b.Architecture = "fedora", arch.ARM64 }, "", ""},
		{"arch", func(b *BaseImage) { b.Distribution, b.Release, b.Architecture = "arch", "rolling", arch.ARM64 }, "", ""},
		{"arch release", func(b *BaseImage) { b.Distribution = "arch" }, "release", `Arch Linux has one release, "rolling" (got "bookworm")`},
		{"arch architecture", func(b *BaseImage) { b.Distribution, b.Release, b.Architecture = "arch", "rolling", arch.PPC64LE }, "architecture", "ppc64-le is not built by Arch Linux"},
		{"other distribution, any arch", func(b *BaseImage) { b.Distribution, b.Architecture = "alma", arch.TILEGX }, "", ""},
		{"unknown distribution", func(b *BaseImage) { b.Distribution = "gentoo" }, "distribution", `"gentoo" is not one of`},
		{"no release", func(b *BaseImage) { b.Release = "" }, "release", "must not be empty"},
		{"no arch", func(b *BaseImage) { b.Architecture = arch.None }, "architecture", "not given"},
		{"no Debian port", func(b *BaseImage) { b.Architecture = arch.TILEGX }, "architecture", "tilegx has no Debian port"},
		{"rpm arch", func(b *BaseImage) { b.Distribution, b.Architecture = "opensuse", arch.MIPSLE }, "architecture", "sxb installs opensuse packages for"},
		{"output", func(b *BaseImage) { b.Output = "cpio" }, "output", `"cpio" is not one of "directory", "tar"`},
	} {
		b := ok()
		c.edit(&b)
		checkAttrErr(t, c.name, b.Validate(), c.attr, c.want)
	}
}

func TestExtensionValidate(t *testing.T) {
	base := Label{Name: "base"}
	ok := func() Extension {
		return Extension{Name: "x", Kind: KindSysext, Format: "erofs", Verity: "off", Output: "x"}
	}
	for _, c := range []struct {
		name       string
		edit       func(*Extension)
		attr, want string
	}{
		{"ok", func(*Extension) {}, "", ""},
		{"squashfs xz", func(x *Extension) { x.Format, x.Compression = "squashfs", "xz" }, "", ""},
		{"signed", func(x *Extension) { x.Verity, x.Key, x.Certificate = "signed", "/k", "/c" }, "", ""},
		{"kind", func(x *Extension) { x.Kind = KindBaseImage }, "kind", `"base_image" is not "sysext" or "confext"`},
		{"release both ways", func(x *Extension) { x.ReleaseFromTrees, x.ExtensionRelease = true, []KV{{"ID", "x"}} }, "extension_release", "needs generate_release = True"},
		{"packages need base", func(x *Extension) { x.Packages = []string{"jq"} }, "packages", "need a base image"},
		{"packages with base", func(x *Extension) { x.Packages, x.Base = []string{"jq"}, &base }, "", ""},
		{"format", func(x *Extension) { x.Format = "ext4" }, "format", `"ext4" is not one of "erofs", "squashfs"`},
		{"erofs xz", func(x *Extension) { x.Compression = "xz" }, "compression", `"xz" is not a erofs compression`},
		{"squashfs lzo", func(x *Extension) { x.Format, x.Compression = "squashfs", "lzo" }, "compression", `"lzo" is not a squashfs compression`},
		{"verity", func(x *Extension) { x.Verity = "yes" }, "verity", `"yes" is not one of "off", "hash", "signed"`},
		{"signed without key", func(x *Extension) { x.Verity = "signed" }, "verity", "needs key and certificate"},
		{"key without signed", func(x *Extension) { x.Key = "/k" }, "key", "only used with verity"},
		{"version spaces", func(x *Extension) { x.Version = "1 2" }, "version", "must not contain spaces"},
		{"version slash", func(x *Extension) { x.Version = "1/2" }, "version", `must not contain "/"`},
		{"seed", func(x *Extension) { x.Seed = "not-a-uuid" }, "seed", `invalid UUID "not-a-uuid"`},
		{"image id", func(x *Extension) { x.ImageID = "a b" }, "image_id", "only letters"},
		{"scope", func(x *Extension) { x.Scope = "system host" }, "scope", `"host" is not a scope`},
		{"output", func(x *Extension) { x.Output = "../x" }, "output", "not a valid file name"},
		{"arm", func(x *Extension) { x.Architecture = arch.ARM }, "", ""},
		{"sparc64", func(x *Extension) { x.Architecture = arch.SPARC64 }, "architecture", "sparc64 has no Discoverable Partitions"},
	} {
		x := ok()
		c.edit(&x)
		checkAttrErr(t, c.name, x.Validate(), c.attr, c.want)
	}
}

func checkAttrErr(t *testing.T, name string, err error, attr, want string) {
	t.Helper()
	var ae *AttrError
	switch {
	case attr == "" && err != nil:
		t.Errorf("%s: %v, want no error", name, err)
	case attr == "":
	case !errors.As(err, &ae):
		t.Errorf("%s: %v, want an AttrError about %s", name, err, attr)
	case ae.Attr != attr || !strings.Contains(ae.Msg, want):
		t.Errorf("%s: %v, want %s: ...%s...", name, err, attr, want)
	}
}

// Errors inside partition definitions are diagnostics where they are
// written: the repart.d line, or the partition() value's position.
func TestExtensionValidatePartitions(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "10-root.conf")
	os.WriteFile(conf, []byte("[Partition]\nType=root\nFormat=squashfs\nCompression=lzo\nCopyFiles=/usr\n"), 0o644)
	at := diag.Pos{File: "BUILD.star", Line: 7, Col: 3}
	inline := func(kv ...string) Partition {
		p := Partition{Pos: at}
		for i := 0; i < len(kv); i += 2 {
			p.Keys = append(p.Keys, KV{kv[i], kv[i+1]})
		}
		return p
	}
	data := inline("Type", "root", "Format", "erofs", "CopyFiles", "/usr", "Verity", "data", "VerityMatchKey", "root")
	hash := inline("Type", "root-verity", "Verity", "hash", "VerityMatchKey", "root")
	sig := inline("Type", "root-verity-sig", "Verity", "signature", "VerityMatchKey", "root")
	for _, c := range []struct {
		name  string
		parts []Partition
		key   bool
		pos   diag.Pos
		want  string
	}{
		{"file", []Partition{{File: conf}}, false, diag.Pos{File: conf, Line: 4, Col: 1}, `"lzo" is not a squashfs compression`},
		{"type", []Partition{inline("Type", "root-vax")}, false, at, "Failed to parse partition type: root-vax"},
		{"layout", []Partition{data}, false, at, "Missing verity hash partition"},
		{"signature without key", []Partition{data, hash, sig}, false, at, "no private key and certificate"},
		{"signature with key", []Partition{data, hash, sig}, true, diag.Pos{}, ""},
	} {
		x := Extension{Name: "x", Kind: KindSysext, Format: "erofs", Verity: "off", Output: "x", Partitions: c.parts}
		if c.key {
			x.Verity, x.Key, x.Certificate = "signed", "/k", "/c"
		}
		err := x.Validate()
		d, ok := diag.As(err)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want == "":
		case !ok:
			t.Errorf("%s: %v, want a diagnostic", c.name, err)
		case d.Pos != c.pos || !strings.Contains(d.Msg, c.want):
			t.Errorf("%s: %s, want %s: ...%s...", c.name, d, c.pos, c.want)
		}
	}
}
