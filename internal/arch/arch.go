// Package arch names CPU architectures once for every tool sxb speaks to.
// An Arch is one of systemd's architectures (src/basic/architecture.c:
// the names of os-release's ARCHITECTURE= and ConditionArchitecture=);
// Parse accepts the spellings of systemd, Debian, rpm, pacman, mkosi, Go
// and uname, and the methods give each tool's spelling back.
//
// Several spellings may name one Arch: Debian's armhf and armel are both
// systemd's arm (whose Debian port is armhf), uname's mips is big- or
// little-endian depending on the kernel (Parse reads it as systemd's mips).
// Which architectures have Discoverable Partitions types is repart's
// concern: see repart.Architectures.
package arch

import (
	"fmt"
	"runtime"
	"slices"

	"github.com/sxb-build/sxb/internal/suggest"
)

// Arch is a CPU architecture. The zero value, None, is "not given".
type Arch uint8

// The architectures systemd knows, in the order of its architecture table.
const (
	None Arch = iota
	ARM64
	ARM64BE
	ARM
	ARMBE
	Alpha
	ARC
	ARCBE
	CRIS
	X86_64
	X86
	IA64
	LoongArch64
	M68K
	MIPS64LE
	MIPS64
	MIPSLE
	MIPS
	NIOS2
	PARISC64
	PARISC
	PPC64LE
	PPC64
	PPC
	PPCLE
	RISCV32
	RISCV64
	S390X
	S390
	SH64
	SH
	SPARC64
	SPARC
	TILEGX
	count
)

// spellings are the names of one architecture; "" where a tool has none.
type spellings struct {
	systemd string
	debian  string // Debian port (dpkg --print-architecture)
	rpm     string // rpm's canonical arch (what packages of it are built for)
	pacman  string // Arch Linux and its ports (pacman.conf Architecture=)
	goarch  string // runtime.GOARCH
	uname   string // uname -m of a kernel running it
	mkosi   bool   // mkosi's Architecture= enum has it (spelt as systemd does)
	// other are further names Parse accepts: older or variant machine and
	// package names.
	other []string
}

// The spellings come from dpkg's cputable/ports list, rpm's rpmrc
// (arch_canon), pacman.conf of Arch Linux and its ports, Go's GOARCH list,
// the machine names of systemd's uname_architecture() and mkosi's
// Architecture enum.
var table = [count]spellings{
	ARM64:       {systemd: "arm64", debian: "arm64", rpm: "aarch64", pacman: "aarch64", goarch: "arm64", uname: "aarch64", mkosi: true},
	ARM64BE:     {systemd: "arm64-be", uname: "aarch64_be"},
	ARM:         {systemd: "arm", debian: "armhf", rpm: "armv7hl", pacman: "armv7h", goarch: "arm", uname: "armv7l", mkosi: true, other: []string{"armel", "armhfp", "armv6l", "armv8l"}},
	ARMBE:       {systemd: "arm-be", uname: "armv7b"},
	Alpha:       {systemd: "alpha", debian: "alpha", rpm: "alpha", uname: "alpha", mkosi: true},
	ARC:         {systemd: "arc", uname: "arc", mkosi: true},
	ARCBE:       {systemd: "arc-be", uname: "arceb"},
	CRIS:        {systemd: "cris", uname: "crisv32"},
	X86_64:      {systemd: "x86-64", debian: "amd64", rpm: "x86_64", pacman: "x86_64", goarch: "amd64", uname: "x86_64", mkosi: true},
	X86:         {systemd: "x86", debian: "i386", rpm: "i686", pacman: "i686", goarch: "386", uname: "i686", mkosi: true, other: []string{"i486", "i586"}},
	IA64:        {systemd: "ia64", debian: "ia64", rpm: "ia64", uname: "ia64", mkosi: true},
	LoongArch64: {systemd: "loongarch64", debian: "loong64", rpm: "loongarch64", goarch: "loong64", uname: "loongarch64", mkosi: true},
	M68K:        {systemd: "m68k", debian: "m68k", rpm: "m68k", uname: "m68k"},
	MIPS64LE:    {systemd: "mips64-le", debian: "mips64el", rpm: "mips64el", goarch: "mips64le", uname: "mips64", mkosi: true},
	MIPS64:      {systemd: "mips64", rpm: "mips64", goarch: "mips64", uname: "mips64"},
	MIPSLE:      {systemd: "mips-le", debian: "mipsel", rpm: "mipsel", goarch: "mipsle", uname: "mips", mkosi: true},
	MIPS:        {systemd: "mips", rpm: "mips", goarch: "mips", uname: "mips"},
	NIOS2:       {systemd: "nios2", uname: "nios2"},
	PARISC64:    {systemd: "parisc64", uname: "parisc64"},
	PARISC:      {systemd: "parisc", debian: "hppa", uname: "parisc", mkosi: true},
	PPC64LE:     {systemd: "ppc64-le", debian: "ppc64el", rpm: "ppc64le", goarch: "ppc64le", uname: "ppc64le", mkosi: true},
	PPC64:       {systemd: "ppc64", debian: "ppc64", rpm: "ppc64", goarch: "ppc64", uname: "ppc64", mkosi: true},
	PPC:         {systemd: "ppc", debian: "powerpc", rpm: "ppc", uname: "ppc", mkosi: true},
	PPCLE:       {systemd: "ppc-le", uname: "ppcle"},
	RISCV32:     {systemd: "riscv32", uname: "riscv32", mkosi: true},
	RISCV64:     {systemd: "riscv64", debian: "riscv64", rpm: "riscv64", pacman: "riscv64", goarch: "riscv64", uname: "riscv64", mkosi: true},
	S390X:       {systemd: "s390x", debian: "s390x", rpm: "s390x", goarch: "s390x", uname: "s390x", mkosi: true},
	S390:        {systemd: "s390", rpm: "s390", uname: "s390", mkosi: true},
	SH64:        {systemd: "sh64", uname: "sh5"},
	SH:          {systemd: "sh", debian: "sh4", rpm: "sh4", uname: "sh4"},
	SPARC64:     {systemd: "sparc64", debian: "sparc64", rpm: "sparc64", uname: "sparc64"},
	SPARC:       {systemd: "sparc", rpm: "sparcv9", uname: "sparc"},
	TILEGX:      {systemd: "tilegx", uname: "tilegx", mkosi: true},
}

// byName maps every spelling Parse accepts to its Arch. Where spellings
// collide the earlier kind wins: systemd, Debian, rpm, pacman, Go, uname,
// other.
var byName = func() map[string]Arch {
	m := map[string]Arch{}
	kinds := []func(s spellings) []string{
		func(s spellings) []string { return []string{s.systemd} },
		func(s spellings) []string { return []string{s.debian} },
		func(s spellings) []string { return []string{s.rpm} },
		func(s spellings) []string { return []string{s.pacman} },
		func(s spellings) []string { return []string{s.goarch} },
		func(s spellings) []string { return []string{s.uname} },
		func(s spellings) []string { return s.other },
	}
	for _, names := range kinds {
		for a := ARM64; a < count; a++ {
			for _, n := range names(table[a]) {
				if _, taken := m[n]; n != "" && !taken {
					m[n] = a
				}
			}
		}
	}
	return m
}()

// Parse returns the architecture s names, in any spelling the package
// knows ("x86-64", "amd64", "x86_64", "aarch64", "armhf", "ppc64el", ...).
// An unknown name is an error with a did-you-mean hint.
func Parse(s string) (Arch, error) {
	if a, ok := byName[s]; ok {
		return a, nil
	}
	msg := fmt.Sprintf("unknown architecture %q", s)
	if n := suggest.Nearest(s, Names()); n != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", n)
	} else {
		msg += fmt.Sprintf(" (want a systemd architecture name such as %q or %q, or an alias such as %q)", "x86-64", "arm64", "amd64")
	}
	return None, fmt.Errorf("%s", msg)
}

// Names returns every spelling Parse accepts, sorted.
func Names() []string {
	out := make([]string, 0, len(byName))
	for n := range byName {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// All returns every architecture, in systemd's order.
func All() []Arch {
	out := make([]Arch, 0, count-1)
	for a := ARM64; a < count; a++ {
		out = append(out, a)
	}
	return out
}

// Native is the architecture of the machine sxb runs on, as Go was built
// for it; None when systemd has no name for it.
func Native() Arch {
	for a := ARM64; a < count; a++ {
		if table[a].goarch == runtime.GOARCH {
			return a
		}
	}
	return None
}

func (a Arch) spell() spellings {
	if a >= count {
		return spellings{}
	}
	return table[a]
}

// Systemd returns systemd's name ("x86-64", "arm64", "ppc64-le"); "" for
// None.
func (a Arch) Systemd() string { return a.spell().systemd }

// String returns systemd's name.
func (a Arch) String() string { return a.Systemd() }

// Debian returns the Debian port ("amd64", "armhf", "ppc64el"), or "" when
// Debian has none.
func (a Arch) Debian() string { return a.spell().debian }

// RPM returns rpm's architecture ("x86_64", "aarch64", "armv7hl", "i686"),
// or "" when rpm has none.
func (a Arch) RPM() string { return a.spell().rpm }

// Pacman returns the architecture of Arch Linux or its port ("x86_64",
// "aarch64", "armv7h"), or "" when there is none.
func (a Arch) Pacman() string { return a.spell().pacman }

// Mkosi returns mkosi's name (the systemd name) when mkosi's Architecture=
// accepts it, else "".
func (a Arch) Mkosi() string {
	if s := a.spell(); s.mkosi {
		return s.systemd
	}
	return ""
}

// GOARCH returns Go's name ("amd64", "arm64", "386"), or "" when Go has no
// port.
func (a Arch) GOARCH() string { return a.spell().goarch }

// Uname returns the machine name uname -m prints on a kernel running a
// ("x86_64", "aarch64", "armv7l").
func (a Arch) Uname() string { return a.spell().uname }

// MarshalText returns systemd's name, so an Arch is a JSON string.
func (a Arch) MarshalText() ([]byte, error) { return []byte(a.Systemd()), nil }

// UnmarshalText parses any spelling Parse accepts; "" is None.
func (a *Arch) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*a = None
		return nil
	}
	p, err := Parse(string(b))
	if err != nil {
		return err
	}
	*a = p
	return nil
}

// ELFID is how an architecture's executables identify themselves in their
// ELF header.
type ELFID struct {
	// Class is 1 for 32-bit and 2 for 64-bit executables (EI_CLASS).
	Class uint8
	// Data is 1 for little- and 2 for big-endian executables (EI_DATA).
	Data uint8
	// Machine is e_machine.
	Machine uint16
}

// elf holds the ELF identification of the architectures Linux distributions
// build for, from the System V ABI and Linux's include/uapi/linux/elf-em.h.
var elf = map[Arch]ELFID{
	ARM64: {2, 1, 183}, ARM64BE: {2, 2, 183}, ARM: {1, 1, 40}, ARMBE: {1, 2, 40},
	Alpha: {2, 1, 0x9026}, X86_64: {2, 1, 62}, X86: {1, 1, 3}, IA64: {2, 1, 50},
	LoongArch64: {2, 1, 258}, M68K: {1, 2, 4},
	MIPS64LE: {2, 1, 8}, MIPS64: {2, 2, 8}, MIPSLE: {1, 1, 8}, MIPS: {1, 2, 8},
	PARISC: {1, 2, 15}, PPC64LE: {2, 1, 21}, PPC64: {2, 2, 21}, PPC: {1, 2, 20},
	RISCV32: {1, 1, 243}, RISCV64: {2, 1, 243}, S390X: {2, 2, 22}, S390: {1, 2, 22},
	SH: {1, 1, 42}, SPARC64: {2, 2, 43}, SPARC: {1, 2, 2},
}

// ELF returns the ELF identification of a's executables; false when the
// package does not know it.
func (a Arch) ELF() (ELFID, bool) {
	id, ok := elf[a]
	return id, ok
}
