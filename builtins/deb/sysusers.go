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
	a := parseAccounts(pw, gr)
	a.low, a.high = dynamicRange(items)
	a.searchG, a.searchU = a.high, a.high
	// systemd-sysusers creates the groups of g lines first; the group of
	// a u line is created with its user, just before it.
	if err := a.addGroups(items); err != nil {
		return err
	}
	for _, it := range items {
		if it.typ == 'u' && !a.users[it.name] {
			if err := a.addUser(it); err != nil {
				return err
			}
		}
	}
	groupAdd, gshadowAdd := a.addMembers(items)
	if a.passwdAdd.Len() == 0 && len(groupAdd) == 0 && len(a.addedMembers) == 0 {
		return nil
	}
	return r.writeAccounts(a, pw, groupAdd, gshadowAdd)
}

// accounts is the user and group database of the tree while sysusers.d
// is applied to it.
type accounts struct {
	users      map[string]bool
	uids, gids map[int]bool
	// groupLines are the lines of etc/group; groups indexes them by name.
	groupLines []string
	groups     map[string]int
	// newGroups are the groups created, in order; gidOf maps their names.
	newGroups []newGroup
	gidOf     map[string]int
	// low..high is the dynamic ID range; IDs are searched downwards from
	// searchG (groups) and searchU (users).
	low, high        int
	searchG, searchU int
	// passwdAdd and shadowAdd are the lines of the new users.
	passwdAdd, shadowAdd bytes.Buffer
	// addedMembers are the members added to existing groups, by group.
	addedMembers map[string][]string
}

type newGroup struct {
	name string
	id   int
}

// parseAccounts reads the users, groups and their IDs of etc/passwd (pw)
// and etc/group (gr).
func parseAccounts(pw, gr []byte) *accounts {
	a := &accounts{users: map[string]bool{}, groups: map[string]int{}, uids: map[int]bool{}, gids: map[int]bool{},
		gidOf: map[string]int{}, addedMembers: map[string][]string{}}
	for _, l := range strings.Split(string(pw), "\n") {
		if f := strings.Split(l, ":"); len(f) >= 4 {
			a.users[f[0]] = true
			if n, err := strconv.Atoi(f[2]); err == nil {
				a.uids[n] = true
			}
		}
	}
	for _, l := range strings.Split(strings.TrimRight(string(gr), "\n"), "\n") {
		a.groupLines = append(a.groupLines, l)
		if f := strings.Split(l, ":"); len(f) >= 4 {
			if n, err := strconv.Atoi(f[2]); err == nil {
				a.groups[f[0]] = len(a.groupLines) - 1
				a.gids[n] = true
			}
		}
	}
	return a
}

// dynamicRange is the range IDs are allocated from: 1..999, or what the
// first "r - LOW-HIGH" line says.
func dynamicRange(items []sysusersItem) (low, high int) {
	low, high = 1, sysIDMax
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
	return low, high
}

// alloc returns the highest ID from *search down to the range's low end
// that free accepts, and moves *search below it; -1 when there is none.
func (a *accounts) alloc(search *int, free func(int) bool) int {
	for id := *search; id >= a.low; id-- {
		if free(id) {
			*search = id - 1
			return id
		}
	}
	return -1
}

// addGroup creates the group name, with the ID want when it is free.
func (a *accounts) addGroup(name string, want int) (int, error) {
	id := -1
	if want >= 0 && !a.gids[want] {
		id = want
	} else {
		id = a.alloc(&a.searchG, func(n int) bool { return !a.gids[n] && !a.uids[n] })
	}
	if id < 0 {
		return -1, fmt.Errorf("sysusers: no free group ID for %s", name)
	}
	a.gids[id] = true
	a.gidOf[name] = id
	a.newGroups = append(a.newGroups, newGroup{name: name, id: id})
	return id, nil
}

// gid returns the ID of the existing or created group name.
func (a *accounts) gid(name string) (int, bool) {
	if i, ok := a.groups[name]; ok {
		n, err := strconv.Atoi(strings.Split(a.groupLines[i], ":")[2])
		return n, err == nil
	}
	n, ok := a.gidOf[name]
	return n, ok
}

// addGroups creates the groups of the g lines that do not exist.
func (a *accounts) addGroups(items []sysusersItem) error {
	for _, it := range items {
		if it.typ != 'g' {
			continue
		}
		if _, ok := a.gid(it.name); ok {
			continue
		}
		want := -1
		if n, err := strconv.Atoi(it.id); err == nil {
			want = n
		}
		if _, err := a.addGroup(it.name, want); err != nil {
			return err
		}
	}
	return nil
}

// addUser creates the user of the u line it, with its group unless the
// line names one ("u name uid:group").
func (a *accounts) addUser(it sysusersItem) error {
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
		} else if n, ok := a.gid(gidS); ok {
			gid = n
		} else {
			return fmt.Errorf("sysusers: user %s names the unknown group %s", it.name, gidS)
		}
	default:
		if n, ok := a.gid(it.name); ok {
			gid = n
		} else {
			n, err := a.addGroup(it.name, wantUID)
			if err != nil {
				return err
			}
			gid = n
		}
	}
	// A uid is usable when no user has it and no other group has it as
	// its number.
	uidOK := func(n int) bool {
		if a.uids[n] {
			return false
		}
		return !a.gids[n] || (n == gid && !hasColon)
	}
	uid := -1
	switch {
	case wantUID >= 0 && uidOK(wantUID):
		uid = wantUID
	case !hasColon && uidOK(gid):
		uid = gid
	default:
		uid = a.alloc(&a.searchU, func(n int) bool { return !a.uids[n] && !a.gids[n] })
	}
	if uid < 0 {
		return fmt.Errorf("sysusers: no free user ID for %s", it.name)
	}
	a.uids[uid] = true
	a.users[it.name] = true
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
	fmt.Fprintf(&a.passwdAdd, "%s:x:%d:%d:%s:%s:%s\n", it.name, uid, gid, gecos, home, shell)
	fmt.Fprintf(&a.shadowAdd, "%s:!*:::::::\n", it.name)
	return nil
}

// addMembers applies the m lines: members of created groups go into their
// new lines (returned for etc/group and etc/gshadow), members of existing
// groups into groupLines and addedMembers.
func (a *accounts) addMembers(items []sysusersItem) (groupAdd, gshadowAdd []byte) {
	members := map[string][]string{}
	for _, it := range items {
		if it.typ == 'm' {
			members[it.member] = append(members[it.member], it.name)
		}
	}
	var ga, gsa bytes.Buffer
	for _, g := range a.newGroups {
		m := strings.Join(members[g.name], ",")
		delete(members, g.name)
		fmt.Fprintf(&ga, "%s:x:%d:%s\n", g.name, g.id, m)
		fmt.Fprintf(&gsa, "%s:!*::%s\n", g.name, m)
	}
	for name, ms := range members {
		i, ok := a.groups[name]
		if !ok {
			continue
		}
		f := strings.Split(a.groupLines[i], ":")
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
				a.addedMembers[name] = append(a.addedMembers[name], x)
			}
		}
		f[3] = strings.Join(list, ",")
		a.groupLines[i] = strings.Join(f, ":")
	}
	return ga.Bytes(), gsa.Bytes()
}

// writeAccounts writes etc/passwd (pw plus the new users), etc/group and,
// where the tree has them, etc/shadow and etc/gshadow.
func (r *root) writeAccounts(a *accounts, pw, groupAdd, gshadowAdd []byte) error {
	if err := r.appendTo("etc/passwd", pw, a.passwdAdd.Bytes(), 0o644); err != nil {
		return err
	}
	newGroupFile := []byte(strings.Join(a.groupLines, "\n") + "\n")
	if err := r.writeFile("etc/group", append(newGroupFile, groupAdd...), 0o644); err != nil {
		return err
	}
	for _, f := range []struct {
		rel string
		add []byte
	}{{"etc/shadow", a.shadowAdd.Bytes()}, {"etc/gshadow", gshadowAdd}} {
		if !r.exists(f.rel) || (len(f.add) == 0 && (f.rel != "etc/gshadow" || len(a.addedMembers) == 0)) {
			continue
		}
		b, err := r.readFile(f.rel)
		if err != nil {
			return err
		}
		if f.rel == "etc/gshadow" && len(a.addedMembers) > 0 {
			b = addGshadowMembers(b, a.addedMembers)
		}
		o, _ := r.meta.Get(f.rel)
		if err := r.appendTo(f.rel, b, f.add, 0o640); err != nil {
			return err
		}
		r.meta.Set(f.rel, o)
	}
	return nil
}

// addGshadowMembers adds members to the member lists of an etc/gshadow.
func addGshadowMembers(b []byte, added map[string][]string) []byte {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	for i, l := range lines {
		fs := strings.Split(l, ":")
		if add := added[fs[0]]; len(add) > 0 && len(fs) >= 4 {
			if fs[3] == "" {
				fs[3] = strings.Join(add, ",")
			} else {
				fs[3] += "," + strings.Join(add, ",")
			}
			lines[i] = strings.Join(fs, ":")
		}
	}
	return []byte(strings.Join(lines, "\n") + "\n")
}

// appendTo writes rel as base (ended by a newline) followed by add.
func (r *root) appendTo(rel string, base, add []byte, mode uint32) error {
	if len(base) > 0 && base[len(base)-1] != '\n' {
		base = append(base, '\n')
	}
	return r.writeFile(rel, append(append([]byte{}, base...), add...), mode)
}
