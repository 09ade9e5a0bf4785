package pacman

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// pkgInfo is a package's .PKGINFO: what the local database records.
type pkgInfo struct {
	Name, Base, Version, Desc, URL, Packager, Arch string
	BuildDate, Size                                int64
	// hasURL tells an empty "url =" line from none.
	hasURL bool
	// Lists keep the order of the file.
	Licenses, Groups, Replaces, Depends, OptDepends, Conflicts, Provides, Backup, XData []string
}

// parsePkgInfo reads "key = value" lines (comments start with "#").
func parsePkgInfo(b []byte) (*pkgInfo, error) {
	p := &pkgInfo{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	line := 0
	for sc.Scan() {
		line++
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			return nil, fmt.Errorf(".PKGINFO line %d: not \"key = value\"", line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		var err error
		switch k {
		case "pkgname":
			p.Name = v
		case "pkgbase":
			p.Base = v
		case "pkgver":
			p.Version = v
		case "pkgdesc":
			p.Desc = v
		case "url":
			p.URL, p.hasURL = v, true
		case "packager":
			p.Packager = v
		case "arch":
			p.Arch = v
		case "builddate":
			p.BuildDate, err = strconv.ParseInt(v, 10, 64)
		case "size":
			p.Size, err = strconv.ParseInt(v, 10, 64)
		case "license":
			p.Licenses = append(p.Licenses, v)
		case "group":
			p.Groups = append(p.Groups, v)
		case "replaces":
			p.Replaces = append(p.Replaces, v)
		case "depend":
			p.Depends = append(p.Depends, v)
		case "optdepend":
			p.OptDepends = append(p.OptDepends, v)
		case "conflict":
			p.Conflicts = append(p.Conflicts, v)
		case "provides":
			p.Provides = append(p.Provides, v)
		case "backup":
			p.Backup = append(p.Backup, v)
		case "xdata":
			p.XData = append(p.XData, v)
		}
		if err != nil {
			return nil, fmt.Errorf(".PKGINFO line %d: %s %q is not a number", line, k, v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if p.Name == "" || p.Version == "" {
		return nil, fmt.Errorf(".PKGINFO has no pkgname or pkgver")
	}
	return p, nil
}
