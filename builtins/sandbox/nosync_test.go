package sandbox

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/internal/testenv"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// runFilter runs the no-sync program on a seccomp_data for call nr of
// architecture auditArch and returns the action.
func runFilter(t *testing.T, prog []unix.SockFilter, auditArch, nr uint32) uint32 {
	t.Helper()
	raw := make([]bpf.Instruction, len(prog))
	for i, f := range prog {
		raw[i] = bpf.RawInstruction{Op: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}.Disassemble()
	}
	vm, err := bpf.NewVM(raw)
	if err != nil {
		t.Fatalf("the filter is not a valid program: %v", err)
	}
	// struct seccomp_data: int nr; u32 arch; u64 ip; u64 args[6] (host
	// byte order; the VM loads big-endian words, so the test writes them
	// that way).
	data := make([]byte, 64)
	binary.BigEndian.PutUint32(data[0:], nr)
	binary.BigEndian.PutUint32(data[4:], auditArch)
	ret, err := vm.Run(data)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(ret)
}

// The filter makes exactly the sync calls of the host's architecture
// return 0, and allows everything else.
func TestNoSyncFilter(t *testing.T) {
	arch, nrs, ok := syncCalls()
	if !ok {
		t.Fatalf("no sync calls known for this architecture")
	}
	prog := noSyncFilter(arch, nrs)
	for _, nr := range nrs {
		if got := runFilter(t, prog, arch, nr); got != unix.SECCOMP_RET_ERRNO {
			t.Errorf("call %d: action %#x, want ERRNO 0 (%#x)", nr, got, unix.SECCOMP_RET_ERRNO)
		}
		// The same number on another architecture is another call.
		if got := runFilter(t, prog, 0x40000003, nr); got != unix.SECCOMP_RET_ALLOW {
			t.Errorf("call %d of i386: action %#x, want ALLOW", nr, got)
		}
	}
	for _, nr := range []uint32{unix.SYS_READ, unix.SYS_WRITE, unix.SYS_OPENAT, unix.SYS_RENAMEAT2, unix.SYS_EXECVE} {
		if got := runFilter(t, prog, arch, nr); got != unix.SECCOMP_RET_ALLOW {
			t.Errorf("call %d: action %#x, want ALLOW", nr, got)
		}
	}
}

// In the sandbox, the command runs under the filter (one seccomp filter,
// not strict mode) and sync calls succeed; what it writes is in the tree.
func TestSandboxSyncIsNoOp(t *testing.T) {
	testenv.NeedRoot(t)
	root := busyboxTree(t)
	out, _ := mustSh(t, Options{Root: root}, `grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; echo data > /f; sync; sync -f /f && sync -d /f && echo synced`)
	for _, want := range []string{"Seccomp:\t2", "NoNewPrivs:\t0", "synced"} {
		if !strings.Contains(out, want) {
			t.Errorf("sandbox output lacks %q:\n%s", want, out)
		}
	}
	if b, err := os.ReadFile(filepath.Join(root, "f")); err != nil || string(b) != "data\n" {
		t.Errorf("the tree holds %q (%v)", b, err)
	}
}
