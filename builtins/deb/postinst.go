package deb

import (
	"bytes"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/sxb-build/sxb/builtins/tree"
)

// groupID looks a group up in the tree's /etc/group (or base-passwd's
// master file), falling back to def.
func (r *root) groupID(name string, def uint32) uint32 {
	for _, f := range []string{"etc/group", "usr/share/base-passwd/group.master"} {
		b, err := r.readFile(f)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if fs := strings.Split(l, ":"); len(fs) >= 3 && fs[0] == name {
				if g, err := strconv.ParseUint(fs[2], 10, 32); err == nil {
					return uint32(g)
				}
			}
		}
	}
	return def
}

func (r *root) exists(rel string) bool {
	_, err := r.t.Lstat(rel)
	return err == nil
}

// ensureDir creates rel (mode, group) when it does not exist.
func (r *root) ensureDir(rel string, mode int64, gid uint32, mtime int64) error {
	if r.exists(rel) {
		return nil
	}
	d, err := r.t.MkdirAll(rel)
	if err != nil {
		return err
	}
	d.Close()
	r.mu.Lock()
	r.dirs[rel] = dirMd{mode: mode, gid: int(gid), mtime: mtime}
	r.mu.Unlock()
	return nil
}

// ensureSymlink makes rel a symlink to target unless rel is a symlink
// already; an empty directory in its place is replaced (base-files'
// migrate_directory).
func (r *root) ensureSymlink(rel, target string) error {
	d, err := r.t.MkdirAll(path.Dir(rel))
	if err != nil {
		return err
	}
	defer d.Close()
	name := path.Base(rel)
	if fi, err := d.Lstat(name); err == nil {
		if !fi.IsDir() {
			return nil // a symlink already, or a file to keep
		}
		if err := d.Remove(name); err != nil {
			return nil // not empty: keep it, as base-files' rmdir would fail
		}
		r.mu.Lock()
		delete(r.dirs, rel)
		r.mu.Unlock()
	}
	if err := d.Symlink(target, name); err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	r.mu.Lock()
	r.made = append(r.made, rel)
	r.mu.Unlock()
	return nil
}

// baseFiles does natively what base-files' postinst does on a first
// install: default dot files, /var/run and /var/lock as symlinks into
// /run, the FHS directories and the login accounting files.
func (r *root) baseFiles(mtime int64) error {
	if !r.exists("usr/share/base-files") {
		return nil
	}
	for _, c := range [][2]string{{"dot.profile", "root/.profile"}, {"dot.bashrc", "root/.bashrc"}, {"profile", "etc/profile"}, {"motd", "etc/motd"}} {
		b, err := r.readFile("usr/share/base-files/" + c[0])
		if err != nil || r.exists(c[1]) {
			continue
		}
		if err := r.writeFile(c[1], b, 0o644); err != nil {
			return err
		}
	}
	if r.exists("etc/dpkg/origins/debian") {
		if err := r.ensureSymlink("etc/dpkg/origins/default", "debian"); err != nil {
			return err
		}
	}
	for _, d := range []string{"mnt", "srv", "opt", "etc/opt", "var/opt", "media"} {
		if err := r.ensureDir(d, 0o755, 0, mtime); err != nil {
			return err
		}
	}
	if err := r.ensureDir("var/mail", 0o2775, r.groupID("mail", 8), mtime); err != nil {
		return err
	}
	if err := r.ensureSymlink("var/spool/mail", "../mail"); err != nil {
		return err
	}
	if err := r.ensureDir("run/lock", 0o1777, 0, mtime); err != nil {
		return err
	}
	if err := r.ensureSymlink("var/run", "/run"); err != nil {
		return err
	}
	if err := r.ensureSymlink("var/lock", "/run/lock"); err != nil {
		return err
	}
	for _, d := range []string{"usr/local", "usr/local/share", "usr/local/share/man", "usr/local/bin", "usr/local/games",
		"usr/local/lib", "usr/local/include", "usr/local/sbin", "usr/local/src", "usr/local/etc"} {
		if err := r.ensureDir(d, 0o755, 0, mtime); err != nil {
			return err
		}
	}
	if err := r.ensureSymlink("usr/local/man", "share/man"); err != nil {
		return err
	}
	utmp := r.groupID("utmp", 43)
	for _, f := range []struct {
		rel  string
		mode uint32
	}{{"var/log/wtmp", 0o664}, {"var/log/btmp", 0o660}, {"var/log/lastlog", 0o664}} {
		if r.exists(f.rel) {
			continue
		}
		if err := r.writeFile(f.rel, nil, f.mode); err != nil {
			return err
		}
		r.meta.Set(f.rel, tree.Override{GID: tree.Ptr(utmp)})
	}
	return nil
}

// alternative is one "update-alternatives --install" of a postinst.
type alternative struct {
	link, name, path string
	priority         int
	slaves           [][3]string // link, name, path
	order            int
}

// parseAlternatives finds the literal update-alternatives --install calls
// of a maintainer script. Calls using shell variables are skipped.
func parseAlternatives(script []byte) []alternative {
	text := strings.ReplaceAll(string(script), "\\\n", " ")
	var out []alternative
	for _, line := range strings.Split(text, "\n") {
		i := strings.Index(line, "update-alternatives ")
		if i < 0 {
			continue
		}
		var args []string
		for _, f := range strings.Fields(line[i+len("update-alternatives "):]) {
			if f == "||" || f == "&&" || f == ";" || f == "|" || strings.HasPrefix(f, "#") {
				break
			}
			args = append(args, strings.Trim(f, `"'`))
		}
		if strings.Contains(strings.Join(args, " "), "$") {
			continue
		}
		for len(args) > 0 && args[0] != "--install" {
			if strings.HasPrefix(args[0], "--") && args[0] != "--install" {
				args = args[1:]
				continue
			}
			break
		}
		if len(args) < 5 || args[0] != "--install" {
			continue
		}
		prio, err := strconv.Atoi(args[4])
		if err != nil {
			continue
		}
		a := alternative{link: args[1], name: args[2], path: args[3], priority: prio}
		rest := args[5:]
		for len(rest) >= 4 && rest[0] == "--slave" {
			a.slaves = append(a.slaves, [3]string{rest[1], rest[2], rest[3]})
			rest = rest[4:]
		}
		out = append(out, a)
	}
	return out
}

// alternatives sets up the update-alternatives links the postinst scripts
// of the installed packages register (for example /usr/bin/awk ->
// /etc/alternatives/awk -> /usr/bin/mawk), choosing the highest priority
// as update-alternatives' auto mode does, and writes its administrative
// files in var/lib/dpkg/alternatives.
func (r *root) alternatives(plan *Plan, results []*unpacked) error {
	groups := map[string][]alternative{}
	n := 0
	for _, u := range results {
		for _, a := range parseAlternatives(u.info["postinst"]) {
			a.order = n
			n++
			groups[a.name] = append(groups[a.name], a)
		}
	}
	names := make([]string, 0, len(groups))
	for k := range groups {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		if r.exists("var/lib/dpkg/alternatives/" + name) {
			continue // managed already (a base layer)
		}
		alts := groups[name]
		var avail []alternative
		for _, a := range alts {
			if r.exists(strings.TrimPrefix(a.path, "/")) {
				avail = append(avail, a)
			}
		}
		if len(avail) == 0 {
			continue
		}
		best := avail[0]
		for _, a := range avail[1:] {
			if a.priority > best.priority {
				best = a
			}
		}
		if err := r.ensureSymlink("etc/alternatives/"+name, best.path); err != nil {
			return err
		}
		if err := r.ensureSymlink(strings.TrimPrefix(best.link, "/"), "/etc/alternatives/"+name); err != nil {
			return err
		}
		// Slaves: every slave name any alternative declares.
		var slaveNames []string
		slaveLink := map[string]string{}
		for _, a := range avail {
			for _, s := range a.slaves {
				if _, ok := slaveLink[s[1]]; !ok {
					slaveNames = append(slaveNames, s[1])
					slaveLink[s[1]] = s[0]
				}
			}
		}
		for _, s := range best.slaves {
			if !r.exists(strings.TrimPrefix(s[2], "/")) {
				continue
			}
			if err := r.ensureSymlink("etc/alternatives/"+s[1], s[2]); err != nil {
				return err
			}
			if err := r.ensureSymlink(strings.TrimPrefix(s[0], "/"), "/etc/alternatives/"+s[1]); err != nil {
				return err
			}
		}
		var b bytes.Buffer
		b.WriteString("auto\n" + best.link + "\n")
		for _, sn := range slaveNames {
			b.WriteString(sn + "\n" + slaveLink[sn] + "\n")
		}
		b.WriteString("\n")
		for _, a := range avail {
			b.WriteString(a.path + "\n" + strconv.Itoa(a.priority) + "\n")
			for _, sn := range slaveNames {
				p := ""
				for _, s := range a.slaves {
					if s[1] == sn {
						p = s[2]
					}
				}
				b.WriteString(p + "\n")
			}
		}
		b.WriteString("\n")
		if err := r.writeFile("var/lib/dpkg/alternatives/"+name, b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}
