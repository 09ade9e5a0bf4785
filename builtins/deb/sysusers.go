package deb

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// Dynamic system IDs are allocated downwards from here, as systemd-sysusers
// does with Debian's configuration (SYS_UID_MAX, SYS_GID_MAX).
const sysIDMax = 999

// sysusersItem is one u/g/m line of a sysusers.d file.
type sysusersItem struct {
	typ                   byte
	name, id, gecos, home string
	shell, member         string
}

// splitQuoted splits a sysusers.d line into fields, honouring double
// quotes.
func splitQuoted(s string) []string {
	var out []string
	var cur strings.Builder
	inQ, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQ, have = !inQ, true
		case unicode.IsSpace(r) && !inQ:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

// readSysusers reads usr/lib/sysusers.d and etc/sysusers.d (a file in /etc
// replaces the one of the same name in /usr/lib), in file name order.
func (r *root) readSysusers() []sysusersItem {
	files := map[string]string{}
	for _, d := range []string{"usr/lib/sysusers.d", "etc/sysusers.d"} {
		ents, _ := r.t.ReadDir(d)
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".conf") {
				files[e.Name()] = d + "/" + e.Name()
			}
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var items []sysusersItem
	for _, n := range names {
		b, err := r.readFile(files[n])
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || line[0] == '#' {
				continue
			}
			f := splitQuoted(line)
			for len(f) < 6 {
				f = append(f, "-")
			}
			it := sysusersItem{typ: f[0][0], name: f[1], id: f[2], gecos: f[3], home: f[4], shell: f[5]}
			if it.typ == 'm' {
				it.member = f[2]
			}
			if len(f[0]) != 1 || strings.IndexByte("ugmr", it.typ) < 0 {
				continue // unknown types
			}
			items = append(items, it)
		}
	}
	return items
}

// applySysusers creates the users and groups sysusers.d declares, as
// systemd-sysusers --root would (systemd's postinst runs it), when the tree
// has an /etc/passwd. IDs given in the files are used when free; others
// are allocated downwards from 999, preferring the same number for a user
// and its group.
func (r *root) applySysusers() error {
	if !r.exists("etc/passwd") || !r.exists("etc/group") {
		return nil
	}
	items := r.readSysusers()
	if len(items) == 0 {
		return nil
	}
	pw, err := r.readFile("etc/passwd")
	if err != nil {
		return err
	}
	gr, err := r.readFile("etc/group")
	if err != nil {
		return err
	}
	users, groups := map[string]bool{}, map[string]int{}
	uids, gids := map[int]bool{}, map[int]bool{}
	for _, l := range strings.Split(string(pw), "\n") {
		if f := strings.Split(l, ":"); len(f) >= 4 {
			users[f[0]] = true
			if n, err := strconv.Atoi(f[2]); err == nil {
				uids[n] = true
			}
		}
	}
	var groupLines []string
	for _, l := range strings.Split(strings.TrimRight(string(gr), "\n"), "\n") {
		groupLines = append(groupLines, l)
		if f := strings.Split(l, ":"); len(f) >= 4 {
			if n, err := strconv.Atoi(f[2]); err == nil {
				groups[f[0]] = len(groupLines) - 1
				gids[n] = true
			}
		}
	}
	// Groups come first: the g lines and the group of each u line without
	// an explicit group, in file order.
	type newGroup struct {
		name string
		id   int
	}
	var ng []newGroup
	gidOf := map[string]int{}
	// An "r - LOW-HIGH" line moves the dynamic range.
	low, high := 1, sysIDMax
	for _, it := range items {
		if it.typ == 'r' && it.name == "-" {
			a, b, _ := strings.Cut(it.id, "-")
			if l, err1 := strconv.Atoi(a); err1 == nil {
				if h, err2 := strconv.Atoi(b); err2 == nil && h >= l {
					low, high = l, h
				}
			}
			break
		}
	}
	searchG := high
	alloc := func(search *int, free func(int) bool) int {
		for id := *search; id >= low; id-- {
			if free(id) {
				*search = id - 1
				return id
			}
		}
		return -1
	}
	// systemd-sysusers creates the groups of g lines first; the group of
	// a u line is created with its user, just before it.
	addGroup := func(name string, want int) (int, error) {
		id := -1
		if want >= 0 && !gids[want] {
			id = want
		} else {
			id = alloc(&searchG, func(n int) bool { return !gids[n] && !uids[n] })
		}
		if id < 0 {
			return -1, fmt.Errorf("sysusers: no free group ID for %s", name)
		}
		gids[id] = true
		gidOf[name] = id
		ng = append(ng, newGroup{name: name, id: id})
		return id, nil
	}
	existingGID := func(name string) (int, bool) {
		if i, ok := groups[name]; ok {
			n, err := strconv.Atoi(strings.Split(groupLines[i], ":")[2])
			return n, err == nil
		}
		n, ok := gidOf[name]
		return n, ok
	}
	for _, it := range items {
		if it.typ != 'g' {
			continue
		}
		if _, ok := existingGID(it.name); ok {
			continue
		}
		want := -1
		if n, err := strconv.Atoi(it.id); err == nil {
			want = n
		}
		if _, err := addGroup(it.name, want); err != nil {
			return err
		}
	}
	var passwdAdd, shadowAdd bytes.Buffer
	searchU := high
	for _, it := range items {
		if it.typ != 'u' || users[it.name] {
			continue
		}
		uidS, gidS, hasColon := strings.Cut(it.id, ":")
		wantUID := -1
		if n, err := strconv.Atoi(uidS); err == nil {
			wantUID = n
		}
		gid := -1
		switch {
		case hasColon:
			if n, err := strconv.Atoi(gidS); err == nil {
				gid = n
			} else if n, ok := existingGID(gidS); ok {
				gid = n
			} else {
				return fmt.Errorf("sysusers: user %s names the unknown group %s", it.name, gidS)
			}
		default:
			if n, ok := existingGID(it.name); ok {
				gid = n
			} else {
				n, err := addGroup(it.name, wantUID)
				if err != nil {
					return err
				}
				gid = n
			}
		}
		// A uid is usable when no user has it and no other group has it
		// as its number.
		uidOK := func(n int) bool {
			if uids[n] {
				return false
			}
			return !gids[n] || (n == gid && !hasColon)
		}
		uid := -1
		switch {
		case wantUID >= 0 && uidOK(wantUID):
			uid = wantUID
		case !hasColon && uidOK(gid):
			uid = gid
		default:
			uid = alloc(&searchU, func(n int) bool { return !uids[n] && !gids[n] })
		}
		if uid < 0 {
			return fmt.Errorf("sysusers: no free user ID for %s", it.name)
		}
		uids[uid] = true
		users[it.name] = true
		gecos, home, shell := it.gecos, it.home, it.shell
		if gecos == "-" {
			gecos = ""
		}
		if home == "-" || home == "" {
			home = "/"
		}
		if shell == "-" || shell == "" {
			shell = "/usr/sbin/nologin"
			if uid == 0 {
				shell = "/bin/sh"
			}
		}
		fmt.Fprintf(&passwdAdd, "%s:x:%d:%d:%s:%s:%s\n", it.name, uid, gid, gecos, home, shell)
		fmt.Fprintf(&shadowAdd, "%s:!*:::::::\n", it.name)
	}
	// Members.
	members := map[string][]string{}
	for _, it := range items {
		if it.typ == 'm' {
			members[it.member] = append(members[it.member], it.name)
		}
	}
	var groupAdd, gshadowAdd bytes.Buffer
	for _, g := range ng {
		m := strings.Join(members[g.name], ",")
		delete(members, g.name)
		fmt.Fprintf(&groupAdd, "%s:x:%d:%s\n", g.name, g.id, m)
		fmt.Fprintf(&gshadowAdd, "%s:!*::%s\n", g.name, m)
	}
	changedGroups := false
	addedMembers := map[string][]string{}
	for name, ms := range members {
		i, ok := groups[name]
		if !ok {
			continue
		}
		f := strings.Split(groupLines[i], ":")
		have := map[string]bool{}
		var list []string
		if f[3] != "" {
			list = strings.Split(f[3], ",")
		}
		for _, x := range list {
			have[x] = true
		}
		for _, x := range ms {
			if !have[x] {
				list = append(list, x)
				addedMembers[name] = append(addedMembers[name], x)
				changedGroups = true
			}
		}
		f[3] = strings.Join(list, ",")
		groupLines[i] = strings.Join(f, ":")
	}
	if passwdAdd.Len() == 0 && groupAdd.Len() == 0 && !changedGroups {
		return nil
	}
	appendTo := func(rel string, base []byte, add []byte, mode uint32) error {
		if len(base) > 0 && base[len(base)-1] != '\n' {
			base = append(base, '\n')
		}
		return r.writeFile(rel, append(append([]byte{}, base...), add...), mode)
	}
	if err := appendTo("etc/passwd", pw, passwdAdd.Bytes(), 0o644); err != nil {
		return err
	}
	newGroupFile := []byte(strings.Join(groupLines, "\n") + "\n")
	if err := r.writeFile("etc/group", append(newGroupFile, groupAdd.Bytes()...), 0o644); err != nil {
		return err
	}
	for _, f := range []struct {
		rel string
		add []byte
	}{{"etc/shadow", shadowAdd.Bytes()}, {"etc/gshadow", gshadowAdd.Bytes()}} {
		if !r.exists(f.rel) || (len(f.add) == 0 && (f.rel != "etc/gshadow" || len(addedMembers) == 0)) {
			continue
		}
		b, err := r.readFile(f.rel)
		if err != nil {
			return err
		}
		if f.rel == "etc/gshadow" && len(addedMembers) > 0 {
			lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
			for i, l := range lines {
				fs := strings.Split(l, ":")
				if add := addedMembers[fs[0]]; len(add) > 0 && len(fs) >= 4 {
					if fs[3] == "" {
						fs[3] = strings.Join(add, ",")
					} else {
						fs[3] += "," + strings.Join(add, ",")
					}
					lines[i] = strings.Join(fs, ":")
				}
			}
			b = []byte(strings.Join(lines, "\n") + "\n")
		}
		o, _ := r.meta.Get(f.rel)
		if err := appendTo(f.rel, b, f.add, 0o640); err != nil {
			return err
		}
		r.meta.Set(f.rel, o)
	}
	return nil
}
