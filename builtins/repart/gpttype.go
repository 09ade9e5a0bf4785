package repart

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/sxb-build/sxb/internal/arch"
)

// ID128 is a 128-bit identifier in the byte order of its textual form
// (systemd's sd_id128_t): byte 0 is the first two hex digits of the UUID.
// GPT stores the first three UUID fields little-endian; the table writer
// converts.
type ID128 [16]byte

// ParseID128 accepts the 36-character UUID form and the 32-hex-digit form,
// in either case, as sd_id128_from_string does.
func ParseID128(s string) (ID128, error) {
	var id ID128
	h := s
	if len(s) == 36 {
		if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
			return id, fmt.Errorf("invalid UUID %q", s)
		}
		h = strings.ReplaceAll(s, "-", "")
	}
	if len(h) != 32 {
		return id, fmt.Errorf("invalid UUID %q", s)
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return id, fmt.Errorf("invalid UUID %q", s)
	}
	copy(id[:], b)
	return id, nil
}

// String formats the identifier as a lower-case UUID.
func (id ID128) String() string {
	h := hex.EncodeToString(id[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// IsZero reports whether every byte is zero.
func (id ID128) IsZero() bool { return id == ID128{} }

// Designators of the partition types systemd gives a meaning to.
const (
	Root          = "root"
	RootVerity    = "root-verity"
	RootVeritySig = "root-verity-sig"
	Usr           = "usr"
	UsrVerity     = "usr-verity"
	UsrVeritySig  = "usr-verity-sig"
	ESP           = "esp"
	XBootLdr      = "xbootldr"
	Swap          = "swap"
	Home          = "home"
	Srv           = "srv"
	Var           = "var"
	Tmp           = "tmp"
)

var archDesignators = [6]string{Root, RootVerity, RootVeritySig, Usr, UsrVerity, UsrVeritySig}

// Type is a GPT partition type as systemd-repart understands it.
type Type struct {
	// Name is systemd's canonical name ("root-x86-64", "esp", ...) or, for
	// a type systemd does not know, the UUID.
	Name string
	UUID ID128
	// Arch is the architecture of root/usr types, else arch.None.
	Arch arch.Arch
	// Designator is one of the constants above, or "" (linux-generic,
	// user-home, unknown types).
	Designator string
}

type typeEntry struct {
	name string
	t    Type
}

var typeTable []typeEntry

func init() {
	for _, a := range archTypes {
		for _, name := range append([]string{a.arch.Systemd()}, a.aliases...) {
			for i, d := range archDesignators {
				id, err := ParseID128(a.uuids[i])
				if err != nil {
					panic(err)
				}
				canon := archTypeName(d, a.arch.Systemd())
				alias := archTypeName(d, name)
				typeTable = append(typeTable, typeEntry{alias, Type{Name: canon, UUID: id, Arch: a.arch, Designator: d}})
			}
		}
	}
	for _, o := range otherTypes {
		id, err := ParseID128(o.uuid)
		if err != nil {
			panic(err)
		}
		typeTable = append(typeTable, typeEntry{o.name, Type{Name: o.name, UUID: id, Designator: o.designator}})
	}
}

// archTypeName names the type of designator d for arch: "root-x86-64",
// "usr-arm64-verity-sig".
func archTypeName(d, arch string) string {
	if i := strings.IndexByte(d, '-'); i >= 0 {
		return d[:i] + "-" + arch + d[i:]
	}
	return d + "-" + arch
}

// Architectures returns the architectures the Discoverable Partitions
// Specification defines root and usr partition types for: those an
// extension image can be built for.
func Architectures() []arch.Arch {
	out := make([]arch.Arch, 0, len(archTypes))
	for _, a := range archTypes {
		out = append(out, a.arch)
	}
	return out
}

// ParseType resolves a Type= value: a name from systemd's table (with the
// architecture-less "root", "usr", "root-verity", ... meaning the native
// architecture) or a UUID.
func ParseType(s string) (Type, error) {
	for _, d := range archDesignators {
		if s == d {
			return ParseType(archTypeName(d, arch.Native().Systemd()))
		}
	}
	for _, e := range typeTable {
		if e.name == s {
			return e.t, nil
		}
	}
	id, err := ParseID128(s)
	if err != nil {
		return Type{}, fmt.Errorf("unknown partition type %q", s)
	}
	return TypeForUUID(id), nil
}

// TypeForUUID returns the known type with this UUID, or an anonymous Type.
func TypeForUUID(id ID128) Type {
	for _, e := range typeTable {
		if e.t.UUID == id {
			return e.t
		}
	}
	return Type{Name: id.String(), UUID: id}
}

// WithArch returns the type with the same designator for a, or t itself
// when there is none (systemd's gpt_partition_type_override_architecture).
func (t Type) WithArch(a arch.Arch) Type {
	if t.Designator == "" || t.Arch == arch.None {
		return t
	}
	for _, e := range typeTable {
		if e.t.Designator == t.Designator && e.t.Arch == a {
			return e.t
		}
	}
	return t
}

// Known reports whether systemd knows the type by name.
func (t Type) Known() bool { return t.Name != t.UUID.String() }

func (t Type) in(ds ...string) bool {
	for _, d := range ds {
		if t.Designator == d {
			return true
		}
	}
	return false
}

// KnowsReadOnly reports whether GPT attribute bit 60 means read-only for t.
func (t Type) KnowsReadOnly() bool {
	return t.in(Root, Usr, RootVerity, UsrVerity, Home, Srv, Var, Tmp, XBootLdr)
}

// KnowsGrowFS reports whether GPT attribute bit 59 (grow file system) applies.
func (t Type) KnowsGrowFS() bool {
	return t.in(Root, Usr, Home, Srv, Var, Tmp, XBootLdr)
}

// KnowsNoAuto reports whether GPT attribute bit 63 (no-auto) applies.
func (t Type) KnowsNoAuto() bool {
	return t.in(Root, RootVerity, Usr, UsrVerity, Home, Srv, Var, Tmp, XBootLdr, Swap)
}

// IsVerity reports whether t is a root/usr verity hash partition type.
func (t Type) IsVerity() bool { return t.in(RootVerity, UsrVerity) }

// IsVeritySig reports whether t is a root/usr verity signature type.
func (t Type) IsVeritySig() bool { return t.in(RootVeritySig, UsrVeritySig) }

// GPT attribute bits systemd defines.
const (
	FlagReadOnly uint64 = 1 << 60
	FlagNoAuto   uint64 = 1 << 63
	FlagGrowFS   uint64 = 1 << 59
)
