package sandbox

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/internal/arch"
	"github.com/sxb-build/sxb/internal/testenv"
)

// elfHeader returns the first bytes of a 64-bit little-endian executable
// for the ELF machine number.
func elfHeader(machine uint16) []byte {
	h := make([]byte, 64)
	copy(h, "\x7fELF\x02\x01\x01")
	binary.LittleEndian.PutUint16(h[16:], 2) // ET_EXEC
	binary.LittleEndian.PutUint16(h[18:], machine)
	binary.LittleEndian.PutUint32(h[20:], 1)
	return h
}

// aarch64Hello is a complete static aarch64 Linux executable that writes
// "hello\n" and exits 0: one loadable segment holding the code and the text.
func aarch64Hello() []byte {
	const base = 0x400000
	code := []uint32{
		0xd2800020, // mov x0, #1
		0x100000e1, // adr x1, msg (28 bytes on)
		0xd28000c2, // mov x2, #6
		0xd2800808, // mov x8, #64 (write)
		0xd4000001, // svc #0
		0xd2800000, // mov x0, #0
		0xd2800ba8, // mov x8, #93 (exit)
		0xd4000001, // svc #0
	}
	var body bytes.Buffer
	for _, c := range code {
		binary.Write(&body, binary.LittleEndian, c)
	}
	body.WriteString("hello\n")
	h := elfHeader(183) // EM_AARCH64
	le := binary.LittleEndian
	le.PutUint64(h[24:], base+64+56) // entry
	le.PutUint64(h[32:], 64)         // program headers
	le.PutUint16(h[52:], 64)         // header size
	le.PutUint16(h[54:], 56)         // program header size
	le.PutUint16(h[56:], 1)          // one program header
	ph := make([]byte, 56)
	size := uint64(64 + 56 + body.Len())
	le.PutUint32(ph[0:], 1) // PT_LOAD
	le.PutUint32(ph[4:], 5) // R+X
	le.PutUint64(ph[16:], base)
	le.PutUint64(ph[24:], base)
	le.PutUint64(ph[32:], size)
	le.PutUint64(ph[40:], size)
	le.PutUint64(ph[48:], 0x10000)
	return append(append(h, ph...), body.Bytes()...)
}

func writeBinfmt(t *testing.T, dir string, entries map[string]string) {
	t.Helper()
	for name, text := range entries {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFindEmulator reads binfmt_misc entries as the kernel shows them.
func TestFindEmulator(t *testing.T) {
	dir := t.TempDir()
	writeBinfmt(t, dir, map[string]string{
		"status":   "enabled\n",
		"register": "",
		"qemu-aarch64": "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\noffset 0\n" +
			"magic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n",
		"qemu-riscv64": "enabled\ninterpreter /usr/bin/qemu-riscv64\nflags: \noffset 0\n" +
			"magic 7f454c460201010000000000000000000200f300\nmask ffffffffffffff00fffffffffffffffffeffffff\n",
		"qemu-arm": "disabled\ninterpreter /usr/libexec/qemu-binfmt/arm-binfmt-P\nflags: PF\noffset 0\n" +
			"magic 7f454c4601010100000000000000000002002800\nmask ffffffffffffff00fffffffffffffffffeffffff\n",
		"jar": "enabled\ninterpreter /usr/bin/jexec\nflags: \nextension .jar\n",
	})
	host := elfHeader(62)
	emu, err := findEmulator(dir, elfHeader(183), host)
	if err != nil || emu == nil || emu.Name != "qemu-aarch64" || emu.Interpreter != "/usr/libexec/qemu-binfmt/aarch64-binfmt-P" || !emu.Fixed() {
		t.Errorf("aarch64: %+v, %v", emu, err)
	}
	// ET_DYN matches too (the mask clears the lowest bit of e_type).
	dyn := elfHeader(183)
	dyn[16] = 3
	if emu, err := findEmulator(dir, dyn, host); err != nil || emu == nil || emu.Name != "qemu-aarch64" {
		t.Errorf("aarch64 PIE: %+v, %v", emu, err)
	}
	if emu, err := findEmulator(dir, elfHeader(243), host); err != nil || emu.Fixed() || emu.Bind().Source != "/usr/bin/qemu-riscv64" {
		t.Errorf("riscv64 (no F flag): %+v, %v", emu, err)
	}
	arm := elfHeader(40)
	arm[4] = 1
	if _, err := findEmulator(dir, arm, host); !errors.Is(err, ErrNoEmulator) {
		t.Errorf("arm (disabled handler): %v", err)
	}
	for _, m := range []uint16{62, 3} {
		if emu, err := findEmulator(dir, elfHeader(m), host); emu != nil || err != nil {
			t.Errorf("machine %d on x86-64 must be native: %+v, %v", m, emu, err)
		}
	}
	if _, err := findEmulator(dir, []byte("#!/bin/sh\n"), host); err == nil {
		t.Error("a script is not an ELF executable")
	}
	writeBinfmt(t, dir, map[string]string{"status": "disabled\n"})
	if _, err := findEmulator(dir, elfHeader(183), host); !errors.Is(err, ErrNoEmulator) {
		t.Errorf("binfmt_misc disabled: %v", err)
	}
	if _, err := findEmulator(t.TempDir(), elfHeader(183), host); !errors.Is(err, ErrNoEmulator) || !strings.Contains(err.Error(), "not mounted") {
		t.Errorf("binfmt_misc not mounted: %v", err)
	}
}

// needAarch64Emulator makes sure the host has qemu-user-static's aarch64
// handler registered (mounting binfmt_misc and enabling the handler if
// needed, as root).
func needAarch64Emulator(t *testing.T) {
	t.Helper()
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "qemu-aarch64-static")
	update := testenv.NeedTool(t, "update-binfmts")
	if _, err := os.Stat(filepath.Join(BinfmtDir, "status")); err != nil {
		if out, err := exec.Command("mount", "-t", "binfmt_misc", "binfmt_misc", BinfmtDir).CombinedOutput(); err != nil {
			t.Fatalf("mounting binfmt_misc: %v: %s", err, out)
		}
	}
	if _, err := os.Stat(filepath.Join(BinfmtDir, "qemu-aarch64")); err != nil {
		if out, err := exec.Command(update, "--enable", "qemu-aarch64").CombinedOutput(); err != nil {
			t.Fatalf("update-binfmts --enable qemu-aarch64: %v: %s", err, out)
		}
	}
}

// TestForeignExecutable runs an aarch64 executable in a sandbox on this
// host through the registered emulator, which the sandbox cannot see.
func TestForeignExecutable(t *testing.T) {
	needAarch64Emulator(t)
	root := busyboxTree(t)
	if err := os.WriteFile(filepath.Join(root, "usr/bin/hello"), aarch64Hello(), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Symlink("/usr/bin/hello", filepath.Join(root, "bin/hello-link"))
	emu, err := EmulatorFor(root, "bin/hello-link")
	if err != nil || emu == nil || !strings.HasPrefix(emu.Name, "qemu-aarch64") {
		t.Fatalf("EmulatorFor: %+v, %v", emu, err)
	}
	if !emu.Fixed() {
		t.Fatalf("%v: without flag F it would need a bind", emu)
	}
	if native, err := EmulatorFor(root, "bin/busybox"); native != nil || err != nil {
		t.Errorf("busybox is native: %+v, %v", native, err)
	}
	if byArch, err := EmulatorForArch(arch.ARM64); err != nil || byArch == nil || byArch.Name != emu.Name {
		t.Errorf("EmulatorForArch(arm64) = %+v, %v; want %s", byArch, err, emu.Name)
	}
	if native, err := EmulatorForArch(arch.Native()); native != nil || err != nil {
		t.Errorf("EmulatorForArch(native) = %+v, %v", native, err)
	}
	var out strings.Builder
	if _, err := Run(context.Background(), Options{Root: root, Args: []string{"hello"}, Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "hello\n" {
		t.Errorf("output %q", out.String())
	}
	// The interpreter is not in the sandbox.
	if o, _, err := sh(t, Options{Root: root}, "test -e "+emu.Interpreter+" && echo visible; true"); err != nil || o != "" {
		t.Errorf("interpreter: %q, %v", o, err)
	}
}
