package rpm

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// capNames are Linux capability names in number order (linux/capability.h).
var capNames = []string{
	"chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill",
	"setgid", "setuid", "setpcap", "linux_immutable", "net_bind_service",
	"net_broadcast", "net_admin", "net_raw", "ipc_lock", "ipc_owner",
	"sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct",
	"sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time",
	"sys_tty_config", "mknod", "lease", "audit_write", "audit_control",
	"setfcap", "mac_override", "mac_admin", "syslog", "wake_alarm",
	"block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
}

// encodeFileCaps turns a textual capability set as rpm stores it
// (cap_to_text form: "cap_net_raw=ep", "cap_a,cap_b+ep cap_c+i") into the
// security.capability xattr value: struct vfs_cap_data revision 2, little
// endian: magic_etc (0x02000000 | effective bit), then permitted and
// inheritable for capabilities 0-31 and 32-63.
func encodeFileCaps(text string) ([]byte, error) {
	var perm, inh, eff uint64
	for _, clause := range strings.Fields(text) {
		i := strings.IndexAny(clause, "=+-")
		if i < 0 {
			return nil, fmt.Errorf("capabilities %q: clause %q has no operator", text, clause)
		}
		var set uint64
		if names := clause[:i]; names != "" && names != "all" {
			for _, n := range strings.Split(names, ",") {
				b, err := capBit(n)
				if err != nil {
					return nil, fmt.Errorf("capabilities %q: %w", text, err)
				}
				set |= 1 << b
			}
		} else {
			set = 1<<uint(len(capNames)) - 1
		}
		rest := clause[i:]
		for len(rest) > 0 {
			op := rest[0]
			j := 1
			for j < len(rest) && !strings.ContainsRune("=+-", rune(rest[j])) {
				j++
			}
			flags := rest[1:j]
			rest = rest[j:]
			if op == '=' {
				perm, inh, eff = perm&^set, inh&^set, eff&^set
				op = '+'
			}
			for _, f := range flags {
				var p *uint64
				switch f {
				case 'p':
					p = &perm
				case 'i':
					p = &inh
				case 'e':
					p = &eff
				default:
					return nil, fmt.Errorf("capabilities %q: unknown flag %q", text, f)
				}
				if op == '+' {
					*p |= set
				} else {
					*p &^= set
				}
			}
		}
	}
	b := make([]byte, 20)
	magic := uint32(0x02000000)
	if eff != 0 {
		magic |= 1
	}
	binary.LittleEndian.PutUint32(b[0:], magic)
	binary.LittleEndian.PutUint32(b[4:], uint32(perm))
	binary.LittleEndian.PutUint32(b[8:], uint32(inh))
	binary.LittleEndian.PutUint32(b[12:], uint32(perm>>32))
	binary.LittleEndian.PutUint32(b[16:], uint32(inh>>32))
	return b, nil
}

func capBit(n string) (uint, error) {
	n = strings.ToLower(strings.TrimPrefix(strings.ToLower(n), "cap_"))
	for i, c := range capNames {
		if c == n {
			return uint(i), nil
		}
	}
	if v, err := strconv.ParseUint(n, 10, 6); err == nil {
		return uint(v), nil
	}
	return 0, fmt.Errorf("unknown capability %q", n)
}
