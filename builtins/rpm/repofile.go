package rpm

import (
	"bufio"
	"bytes"
	"fmt"
	"net/url"
	"path"
	"strings"
)

// RepoFile is one repository of a dnf or zypper .repo file
// (/etc/yum.repos.d/*.repo, /etc/zypp/repos.d/*.repo).
type RepoFile struct {
	// ID is the section name.
	ID string
	// BaseURL is the baseurl, with $releasever, $basearch and $arch not
	// yet expanded (see Expand).
	BaseURL string
	// GPGKeys are the absolute paths the file:// gpgkey= URLs name.
	GPGKeys []string
	// Enabled is enabled= (default true).
	Enabled bool
}

// ParseRepoFile reads the .repo file data (name is for errors). sxb reads
// repositories from a baseurl and keys from local files only: mirrorlist=
// or metalink= without a baseurl, a remote gpgkey=, more than one baseurl
// or gpgcheck=0 are errors naming the line.
func ParseRepoFile(name string, data []byte) ([]RepoFile, error) {
	var out []RepoFile
	var cur *RepoFile
	var key string // the key a continuation line extends
	var lists map[string]int
	errf := func(line int, format string, a ...any) error {
		return fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, a...))
	}
	finish := func(line int) error {
		if cur == nil {
			return nil
		}
		if cur.BaseURL == "" {
			if l, ok := lists["mirrorlist"]; ok {
				return errf(l, "repository [%s]: mirrorlist= without baseurl= is not supported by sxb (give the baseurl)", cur.ID)
			}
			if l, ok := lists["metalink"]; ok {
				return errf(l, "repository [%s]: metalink= without baseurl= is not supported by sxb (give the baseurl)", cur.ID)
			}
			return errf(line, "repository [%s] has no baseurl=", cur.ID)
		}
		out = append(out, *cur)
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			if !strings.HasSuffix(line, "]") {
				return nil, errf(n, "unterminated section header %q", line)
			}
			if err := finish(n); err != nil {
				return nil, err
			}
			cur = &RepoFile{ID: strings.TrimSpace(line[1 : len(line)-1]), Enabled: true}
			lists, key = map[string]int{}, ""
			continue
		}
		var value string
		if raw[0] == ' ' || raw[0] == '\t' {
			// A continuation of the previous key's list (gpgkey=a\n       b).
			if key == "" {
				return nil, errf(n, "continuation line without a key")
			}
			value = line
		} else {
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				return nil, errf(n, "want key=value, got %q", line)
			}
			key, value = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		}
		if cur == nil {
			return nil, errf(n, "%s= outside of a [repository] section", key)
		}
		switch key {
		case "baseurl":
			for _, u := range strings.Fields(strings.ReplaceAll(value, ",", " ")) {
				if cur.BaseURL != "" {
					return nil, errf(n, "repository [%s]: more than one baseurl is not supported by sxb", cur.ID)
				}
				cur.BaseURL = u
			}
		case "gpgkey":
			for _, u := range strings.Fields(strings.ReplaceAll(value, ",", " ")) {
				pu, err := url.Parse(u)
				if err != nil || pu.Scheme != "file" || !path.IsAbs(pu.Path) {
					return nil, errf(n, "repository [%s]: gpgkey=%s: sxb reads keys from local files only (file:///...)", cur.ID, u)
				}
				cur.GPGKeys = append(cur.GPGKeys, pu.Path)
			}
		case "enabled":
			cur.Enabled = value != "0" && !strings.EqualFold(value, "false") && !strings.EqualFold(value, "no")
		case "gpgcheck", "pkg_gpgcheck":
			if value == "0" || strings.EqualFold(value, "false") || strings.EqualFold(value, "no") {
				return nil, errf(n, "repository [%s]: %s=%s: sxb checks every package's signature (sign the repository)", cur.ID, key, value)
			}
		case "mirrorlist", "metalink":
			lists[key] = n
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := finish(0); err != nil {
		return nil, err
	}
	return out, nil
}

// Expand replaces the variables dnf and zypper expand in repository URLs:
// $releasever, $basearch and $arch (also written ${name}), for release
// and the architecture a in any spelling package arch reads.
func Expand(s, release, a string) (string, error) {
	ra, err := rpmArch(a)
	if err != nil {
		return "", err
	}
	for _, v := range [][2]string{{"releasever", release}, {"basearch", ra}, {"arch", ra}} {
		s = strings.ReplaceAll(s, "${"+v[0]+"}", v[1])
		s = strings.ReplaceAll(s, "$"+v[0], v[1])
	}
	if i := strings.IndexByte(s, '$'); i >= 0 {
		return "", fmt.Errorf("%s: unknown variable at %q", s, s[i:])
	}
	return s, nil
}

// DefaultRepoNames are the names of the default repositories of a
// distribution release (Request.Repositories), for arch a.
func DefaultRepoNames(distro, release, a string) ([]string, error) {
	ra, err := rpmArch(a)
	if err != nil {
		return nil, err
	}
	specs, err := defaultRepos(distro, release, ra)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range specs {
		out = append(out, s.Name)
	}
	return out, nil
}
