package sandbox

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Inside the sandbox, fsync, fdatasync, syncfs, sync and sync_file_range
// succeed at once without writing anything back. The command writes a
// throwaway build tree that sxb reads back through the same page cache:
// durability is not its concern. dpkg fsyncs its database after every
// package it configures (about 500 calls for a bookworm base with systemd,
// a tenth of the time its maintainer scripts take here), as do
// update-shells, useradd and many build systems. This is what eatmydata
// does with a preloaded library; a seccomp filter also covers static
// binaries and emulated ones (qemu-user issues the host's calls).

// syncCalls are the host's numbers of the calls made into no-ops.
func syncCalls() (auditArch uint32, nrs []uint32, ok bool) {
	calls := []uint32{unix.SYS_FSYNC, unix.SYS_FDATASYNC, unix.SYS_SYNC, unix.SYS_SYNCFS, unix.SYS_SYNC_FILE_RANGE}
	switch runtime.GOARCH {
	case "amd64":
		return unix.AUDIT_ARCH_X86_64, calls, true
	case "arm64":
		return unix.AUDIT_ARCH_AARCH64, calls, true
	}
	return 0, nil, false
}

// noSyncFilter is the classic BPF program of the filter: calls of another
// architecture (a 32-bit binary on a 64-bit host) and every other call are
// allowed; the sync calls return 0.
func noSyncFilter(auditArch uint32, nrs []uint32) []unix.SockFilter {
	n := len(nrs)
	if n > 250 {
		panic("sandbox: too many calls for one jump")
	}
	prog := []unix.SockFilter{
		// seccomp_data: nr at offset 0, arch at offset 4.
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 4},
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: auditArch, Jt: 0, Jf: uint8(n + 1)},
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0},
	}
	for i, nr := range nrs {
		prog = append(prog, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: nr, Jt: uint8(n - i), Jf: 0})
	}
	return append(prog,
		unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
		// SECCOMP_RET_ERRNO with errno 0: the call returns 0.
		unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ERRNO | 0},
	)
}

// installNoSync installs the filter on every thread of the calling process;
// the processes it starts afterwards inherit it. The sandbox's init calls it
// as root of its user namespace, which lets it install a filter without
// no_new_privs (which would disable setuid programs in the sandbox).
func installNoSync() error {
	auditArch, nrs, ok := syncCalls()
	if !ok {
		return nil
	}
	prog := noSyncFilter(auditArch, nrs)
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC,
		uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if errno != 0 {
		return fmt.Errorf("installing the no-sync filter: %w", errno)
	}
	return nil
}
