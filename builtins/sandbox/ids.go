package sandbox

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
)

// ForeignUIDBase is the first host id of the range a sandbox run by root
// uses for its ids 0-65535: systemd's "foreign" range (0x7FFE0000), set
// aside for files and processes of images that belong to no host user. Host
// root never appears inside a sandbox, so kernel interfaces that trust uid 0
// (sysctls, /proc/sysrq-trigger) stay out of reach.
const ForeignUIDBase = 0x7FFE0000

// idCount is how many ids a sandbox maps at most: 0-65535, the ids Debian and
// Fedora packages use for system users and groups.
const idCount = 65536

// idPlan is how the sandbox's ids map to the host's.
type idPlan struct {
	mode IDMode
	user string
	// uid and gid are the builder's; for IDsSubordinate, sub* are the
	// ranges from /etc/subuid and /etc/subgid.
	uid, gid                 int
	subUID, subGID           [2]int // start, count (count <= idCount-1)
	newuidmap, newgidmap     string
	uidMappings, gidMappings []syscall.SysProcIDMap
}

// foreignMappings maps the sandbox's ids 0-65535 to the foreign range.
func foreignMappings() []syscall.SysProcIDMap {
	return []syscall.SysProcIDMap{{ContainerID: 0, HostID: ForeignUIDBase, Size: idCount}}
}

// chooseIDs decides the id mapping for the current process (see the package
// comment).
func chooseIDs() (*idPlan, error) {
	p := &idPlan{uid: os.Geteuid(), gid: os.Getegid()}
	if u, err := user.LookupId(strconv.Itoa(p.uid)); err == nil {
		p.user = u.Username
	} else {
		p.user = strconv.Itoa(p.uid)
	}
	if p.uid == 0 {
		p.mode = IDsForeign
		p.user = "root"
		p.uidMappings, p.gidMappings = foreignMappings(), foreignMappings()
		return p, nil
	}
	p.mode = IDsRootOnly
	p.uidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: p.uid, Size: 1}}
	p.gidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: p.gid, Size: 1}}
	// shadow's newuidmap and newgidmap look both files up by the user.
	su, errU := subordinateRange("/etc/subuid", p.user, p.uid)
	sg, errG := subordinateRange("/etc/subgid", p.user, p.uid)
	if errU != nil || errG != nil {
		return p, nil
	}
	nu, errU := exec.LookPath("newuidmap")
	ng, errG := exec.LookPath("newgidmap")
	if errU != nil || errG != nil {
		return p, nil
	}
	p.mode = IDsSubordinate
	p.subUID, p.subGID = su, sg
	p.newuidmap, p.newgidmap = nu, ng
	p.uidMappings, p.gidMappings = nil, nil
	return p, nil
}

// subordinateRange finds the first range of user (by name or uid) in a
// subuid/subgid file, capped to idCount-1 ids.
func subordinateRange(file, name string, uid int) ([2]int, error) {
	f, err := os.Open(file)
	if err != nil {
		return [2]int{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Split(line, ":")
		if len(parts) != 3 || (parts[0] != name && parts[0] != strconv.Itoa(uid)) {
			continue
		}
		start, err1 := strconv.Atoi(parts[1])
		count, err2 := strconv.Atoi(parts[2])
		if err1 != nil || err2 != nil || start < 0 || count < 1 {
			continue
		}
		return [2]int{start, min(count, idCount-1)}, nil
	}
	if err := sc.Err(); err != nil {
		return [2]int{}, err
	}
	return [2]int{}, fmt.Errorf("%s: no range for %s", file, name)
}

// writeSubordinateMaps maps the process pid's new user namespace through
// newuidmap and newgidmap: the builder is root, the range provides 1 and up.
func (p *idPlan) writeSubordinateMaps(pid int) error {
	for _, m := range []struct {
		tool  string
		own   int
		rng   [2]int
		which string
	}{{p.newuidmap, p.uid, p.subUID, "uid"}, {p.newgidmap, p.gid, p.subGID, "gid"}} {
		args := []string{strconv.Itoa(pid), "0", strconv.Itoa(m.own), "1", "1", strconv.Itoa(m.rng[0]), strconv.Itoa(m.rng[1])}
		if out, err := exec.Command(m.tool, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("sandbox: mapping %s ids with %s: %v: %s", m.which, m.tool, err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}
