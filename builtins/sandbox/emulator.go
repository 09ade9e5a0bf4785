package sandbox

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/arch"
)

// BinfmtDir is where the kernel's binfmt_misc file system is mounted.
const BinfmtDir = "/proc/sys/fs/binfmt_misc"

// ErrNoEmulator says the host cannot run a tree's executables: they are for
// another architecture and no binfmt_misc handler is registered for it.
var ErrNoEmulator = errors.New("no binfmt_misc emulator for the architecture")

// Emulator is a binfmt_misc handler through which the kernel runs
// executables of another architecture (qemu-user-static registers them on
// Debian).
type Emulator struct {
	// Name is the handler's entry, e.g. "qemu-aarch64".
	Name string
	// Interpreter is the program the kernel starts, e.g.
	// "/usr/libexec/qemu-binfmt/aarch64-binfmt-P".
	Interpreter string
	// Flags are the handler's flags, e.g. "PF".
	Flags string
}

// Fixed tells whether the kernel opened the interpreter when the handler was
// registered (flag F): then it runs inside a sandbox that cannot see it. A
// handler without F needs Bind() in the sandbox.
func (e *Emulator) Fixed() bool { return strings.Contains(e.Flags, "F") }

// Bind makes the interpreter visible inside a sandbox at the path the kernel
// looks it up, for a handler without flag F.
func (e *Emulator) Bind() Bind { return Bind{Source: e.Interpreter, Target: e.Interpreter} }

// String names the handler and its interpreter, for messages and cache keys.
func (e *Emulator) String() string {
	return fmt.Sprintf("%s (%s, flags %q)", e.Name, e.Interpreter, e.Flags)
}

// EmulatorFor tells how the host runs the executable rel of the tree root
// (symlinks are followed inside the tree, as the kernel would inside a
// sandbox): natively (nil, nil), through a registered emulator, or not at
// all (an error wrapping ErrNoEmulator).
func EmulatorFor(root, rel string) (*Emulator, error) {
	p, err := tree.ResolveFollow(root, rel)
	if err != nil {
		return nil, fmt.Errorf("finding an emulator for %s: %w", rel, err)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("finding an emulator for %s: %w", rel, err)
	}
	defer f.Close()
	header := make([]byte, 128)
	n, err := io.ReadFull(f, header)
	if err != nil && err != io.ErrUnexpectedEOF {
		return nil, fmt.Errorf("finding an emulator for %s: %w", rel, err)
	}
	emu, err := FindEmulator(header[:n])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rel, err)
	}
	return emu, nil
}

// EmulatorForArch is EmulatorFor for the executables of an architecture,
// before any tree of it exists (for cache keys, say).
func EmulatorForArch(a arch.Arch) (*Emulator, error) {
	id, ok := a.ELF()
	if !ok {
		return nil, fmt.Errorf("%w: the ELF identification of %s is not known", ErrNoEmulator, a)
	}
	h := make([]byte, 20)
	copy(h, "\x7fELF")
	h[4], h[5], h[6] = id.Class, id.Data, 1
	order := binary.ByteOrder(binary.LittleEndian)
	if id.Data == 2 {
		order = binary.BigEndian
	}
	order.PutUint16(h[16:], 2) // ET_EXEC
	order.PutUint16(h[18:], id.Machine)
	return FindEmulator(h)
}

// EmulatorForArchName is EmulatorForArch for an architecture in any
// spelling internal/arch reads (a package index's, say): nil, nil when
// its executables run natively.
func EmulatorForArchName(name string) (*Emulator, error) {
	a, err := arch.Parse(name)
	if err != nil {
		return nil, err
	}
	return EmulatorForArch(a)
}

// FindEmulator is EmulatorFor for the first bytes of an ELF executable.
func FindEmulator(header []byte) (*Emulator, error) {
	self, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("reading this program's ELF header: %w", err)
	}
	host := make([]byte, 64)
	_, err = io.ReadFull(self, host)
	self.Close()
	if err != nil {
		return nil, fmt.Errorf("reading this program's ELF header: %w", err)
	}
	return findEmulator(BinfmtDir, header, host)
}

// ELF identification: class, data encoding and machine.
type elfID struct {
	class, data byte
	machine     uint16
}

func readELFID(h []byte) (elfID, bool) {
	if len(h) < 20 || !bytes.HasPrefix(h, []byte("\x7fELF")) {
		return elfID{}, false
	}
	id := elfID{class: h[4], data: h[5]}
	switch id.data {
	case 1:
		id.machine = binary.LittleEndian.Uint16(h[18:])
	case 2:
		id.machine = binary.BigEndian.Uint16(h[18:])
	default:
		return elfID{}, false
	}
	return id, true
}

// ELF machine numbers the native check needs.
const (
	emI386  = 3
	emX8664 = 62
)

// findEmulator decides for header on a host whose own executable starts with
// host, with binfmt_misc at dir.
func findEmulator(dir string, header, host []byte) (*Emulator, error) {
	want, ok := readELFID(header)
	if !ok {
		return nil, errors.New("not an ELF executable")
	}
	have, ok := readELFID(host)
	if !ok {
		return nil, errors.New("this program is not an ELF executable")
	}
	// x86-64 kernels run i386 executables themselves.
	if want == have || (have.machine == emX8664 && want.machine == emI386 && want.data == have.data) {
		return nil, nil
	}
	handlers, err := readBinfmt(dir)
	if err != nil {
		return nil, fmt.Errorf("%w (machine %d): %v", ErrNoEmulator, want.machine, err)
	}
	for _, h := range handlers {
		if h.matches(header) {
			return &h.Emulator, nil
		}
	}
	return nil, fmt.Errorf("%w (ELF machine %d): none of the %d handlers in %s matches", ErrNoEmulator, want.machine, len(handlers), dir)
}

// binfmtEntry is one enabled magic-number handler.
type binfmtEntry struct {
	Emulator
	offset      int
	magic, mask []byte
}

// matches applies the kernel's test: every byte of the magic equals the
// file's byte at offset under the mask.
func (b *binfmtEntry) matches(header []byte) bool {
	if b.offset+len(b.magic) > len(header) {
		return false
	}
	for i, m := range b.magic {
		mask := byte(0xff)
		if i < len(b.mask) {
			mask = b.mask[i]
		}
		if (header[b.offset+i]^m)&mask != 0 {
			return false
		}
	}
	return true
}

// readBinfmt reads the enabled magic-number handlers registered at dir,
// sorted by name.
func readBinfmt(dir string) ([]binfmtEntry, error) {
	status, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return nil, fmt.Errorf("binfmt_misc is not mounted at %s (mount -t binfmt_misc none %s)", dir, dir)
	}
	if strings.TrimSpace(string(status)) != "enabled" {
		return nil, fmt.Errorf("binfmt_misc is disabled (%s/status)", dir)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []binfmtEntry
	for _, e := range ents {
		if e.Name() == "status" || e.Name() == "register" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if ent, ok := parseBinfmt(e.Name(), string(b)); ok {
			out = append(out, ent)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// parseBinfmt reads one entry as the kernel shows it:
//
//	enabled
//	interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P
//	flags: PF
//	offset 0
//	magic 7f454c46...
//	mask ffffffff...
//
// Disabled entries and extension handlers are not returned.
func parseBinfmt(name, text string) (binfmtEntry, bool) {
	e := binfmtEntry{Emulator: Emulator{Name: name}}
	enabled := false
	for _, line := range strings.Split(text, "\n") {
		key, val, _ := strings.Cut(strings.TrimSpace(line), " ")
		val = strings.TrimSpace(val)
		var err error
		switch key {
		case "enabled":
			enabled = true
		case "interpreter":
			e.Interpreter = val
		case "flags:":
			e.Flags = val
		case "offset":
			e.offset, err = strconv.Atoi(val)
		case "magic":
			e.magic, err = hex.DecodeString(val)
		case "mask":
			e.mask, err = hex.DecodeString(val)
		}
		if err != nil {
			return binfmtEntry{}, false
		}
	}
	if !enabled || len(e.magic) == 0 || e.Interpreter == "" || e.offset < 0 {
		return binfmtEntry{}, false
	}
	return e, true
}
