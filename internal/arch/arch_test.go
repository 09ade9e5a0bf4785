package arch

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"runtime"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Arch
	}{
		// systemd
		{"x86-64", X86_64}, {"x86", X86}, {"arm64", ARM64}, {"arm", ARM}, {"riscv64", RISCV64},
		{"ppc64-le", PPC64LE}, {"s390x", S390X}, {"loongarch64", LoongArch64}, {"mips64-le", MIPS64LE},
		{"sparc64", SPARC64}, {"parisc", PARISC}, {"nios2", NIOS2}, {"arm64-be", ARM64BE},
		// Debian
		{"amd64", X86_64}, {"i386", X86}, {"armhf", ARM}, {"armel", ARM}, {"ppc64el", PPC64LE},
		{"mips64el", MIPS64LE}, {"mipsel", MIPSLE}, {"loong64", LoongArch64}, {"hppa", PARISC},
		{"powerpc", PPC}, {"sh4", SH},
		// rpm
		{"x86_64", X86_64}, {"aarch64", ARM64}, {"armv7hl", ARM}, {"armhfp", ARM}, {"i686", X86},
		{"i586", X86}, {"i486", X86}, {"ppc64le", PPC64LE}, {"sparcv9", SPARC},
		// pacman
		{"armv7h", ARM},
		// Go
		{"386", X86}, {"mipsle", MIPSLE}, {"mips64le", MIPS64LE},
		// uname (ambiguous endianness reads as systemd's big-endian name)
		{"armv7l", ARM}, {"aarch64_be", ARM64BE}, {"mips", MIPS}, {"mips64", MIPS64}, {"ppcle", PPCLE},
		{"sh5", SH64},
	} {
		got, err := Parse(c.in)
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func TestParseUnknown(t *testing.T) {
	for in, want := range map[string]string{
		"arm46":  `unknown architecture "arm46" (did you mean "arm64"?)`,
		"amd46":  `unknown architecture "amd46" (did you mean "amd64"?)`,
		"pdp11":  `unknown architecture "pdp11" (want a systemd architecture name such as "x86-64" or "arm64", or an alias such as "amd64")`,
		"":       `unknown architecture ""`,
		"X86-64": `unknown architecture "X86-64" (did you mean "x86-64"?)`,
	} {
		a, err := Parse(in)
		if err == nil || a != None {
			t.Errorf("Parse(%q) = %v, nil; want an error", in, a)
			continue
		}
		if !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Parse(%q): %v; want %s", in, err, want)
		}
	}
}

func TestConvert(t *testing.T) {
	type row struct{ systemd, debian, rpm, pacman, mkosi, goarch, uname string }
	for a, want := range map[Arch]row{
		X86_64:      {"x86-64", "amd64", "x86_64", "x86_64", "x86-64", "amd64", "x86_64"},
		X86:         {"x86", "i386", "i686", "i686", "x86", "386", "i686"},
		ARM64:       {"arm64", "arm64", "aarch64", "aarch64", "arm64", "arm64", "aarch64"},
		ARM:         {"arm", "armhf", "armv7hl", "armv7h", "arm", "arm", "armv7l"},
		PPC64LE:     {"ppc64-le", "ppc64el", "ppc64le", "", "ppc64-le", "ppc64le", "ppc64le"},
		S390X:       {"s390x", "s390x", "s390x", "", "s390x", "s390x", "s390x"},
		RISCV64:     {"riscv64", "riscv64", "riscv64", "riscv64", "riscv64", "riscv64", "riscv64"},
		LoongArch64: {"loongarch64", "loong64", "loongarch64", "", "loongarch64", "loong64", "loongarch64"},
		MIPS64LE:    {"mips64-le", "mips64el", "mips64el", "", "mips64-le", "mips64le", "mips64"},
		SPARC64:     {"sparc64", "sparc64", "sparc64", "", "", "", "sparc64"},
		TILEGX:      {"tilegx", "", "", "", "tilegx", "", "tilegx"},
		None:        {},
	} {
		got := row{a.Systemd(), a.Debian(), a.RPM(), a.Pacman(), a.Mkosi(), a.GOARCH(), a.Uname()}
		if got != want {
			t.Errorf("%v: got %+v, want %+v", a, got, want)
		}
	}
}

// Every tool's spelling of an architecture reads back as that
// architecture (uname's names are ambiguous for mips and so left out).
func TestRoundTrip(t *testing.T) {
	seen := map[string]bool{}
	for _, a := range All() {
		if a.Systemd() == "" || seen[a.Systemd()] {
			t.Errorf("%d: systemd name %q missing or repeated", a, a.Systemd())
		}
		seen[a.Systemd()] = true
		for _, s := range []string{a.Systemd(), a.Debian(), a.RPM(), a.Pacman(), a.Mkosi(), a.GOARCH()} {
			if s == "" {
				continue
			}
			if got, err := Parse(s); err != nil || got != a {
				t.Errorf("Parse(%q) = %v, %v; want %v", s, got, err, a)
			}
		}
	}
	if len(All()) != 33 {
		t.Errorf("%d architectures, want systemd's 33", len(All()))
	}
}

// mkosi's Architecture enum (mkosi/config.py), spelt as mkosi prints it.
func TestMkosi(t *testing.T) {
	var got []string
	for _, a := range All() {
		if m := a.Mkosi(); m != "" {
			got = append(got, m)
		}
	}
	want := "arm64 arm alpha arc x86-64 x86 ia64 loongarch64 mips64-le mips-le parisc ppc64-le ppc64 ppc riscv32 riscv64 s390x s390 tilegx"
	if strings.Join(got, " ") != want {
		t.Errorf("mkosi names:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
}

func TestNative(t *testing.T) {
	n := Native()
	if n == None || n.GOARCH() != runtime.GOARCH {
		t.Errorf("Native() = %v on GOARCH %s", n, runtime.GOARCH)
	}
}

func TestJSON(t *testing.T) {
	type s struct {
		A Arch `json:"a"`
		B Arch `json:"b,omitempty"`
	}
	b, err := json.Marshal(s{A: PPC64LE})
	if err != nil || string(b) != `{"a":"ppc64-le"}` {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
	var v s
	if err := json.Unmarshal([]byte(`{"a":"aarch64","b":""}`), &v); err != nil || v.A != ARM64 || v.B != None {
		t.Errorf("Unmarshal = %+v, %v", v, err)
	}
	if err := json.Unmarshal([]byte(`{"a":"vax"}`), &v); err == nil {
		t.Error("Unmarshal accepted an unknown architecture")
	}
}

// TestELF compares the identification of the native architecture with the
// running test binary's own ELF header.
func TestELF(t *testing.T) {
	b, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	id, ok := Native().ELF()
	if !ok {
		t.Fatalf("no ELF identification for %s", Native())
	}
	machine := binary.LittleEndian.Uint16(b[18:])
	if b[5] == 2 {
		machine = binary.BigEndian.Uint16(b[18:])
	}
	if b[4] != id.Class || b[5] != id.Data || machine != id.Machine {
		t.Errorf("%s: ELF %+v, the binary has class %d data %d machine %d", Native(), id, b[4], b[5], machine)
	}
	for _, a := range All() {
		if _, ok := a.ELF(); !ok && (a.Debian() != "" || a.RPM() != "") {
			t.Errorf("%s has Debian or rpm packages but no ELF identification", a)
		}
	}
}
