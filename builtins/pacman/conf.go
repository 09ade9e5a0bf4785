package pacman

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// ParseConf reads the repositories of the pacman.conf at name, following
// Include= (globs allowed, as pacman.d/*.conf and mirrorlist files are
// included), and returns them in pacman.conf order as Request.Repositories
// entries: "NAME=URL", the URL the repository's first Server (pacman tries
// the others only when it fails). read returns a file's content and glob
// the files a pattern matches, both by the path pacman would see. A
// SigLevel that lets packages go unchecked (Never, Optional, TrustAll),
// a repository without a Server, or a file Include= cannot find are
// errors naming the file and line.
func ParseConf(name string, read func(string) ([]byte, error), glob func(string) ([]string, error)) ([]string, error) {
	p := &confParser{read: read, glob: glob, servers: map[string]string{}}
	if err := p.file(name, 0); err != nil {
		return nil, err
	}
	var out []string
	for _, r := range p.repos {
		if p.servers[r.name] == "" {
			return nil, fmt.Errorf("%s: repository [%s] has no Server", r.pos, r.name)
		}
		out = append(out, r.name+"="+p.servers[r.name])
	}
	return out, nil
}

type confParser struct {
	read  func(string) ([]byte, error)
	glob  func(string) ([]string, error)
	repos []struct{ name, pos string }
	// section is the current section ("options" or a repository).
	section string
	servers map[string]string
}

func (p *confParser) file(name string, depth int) error {
	if depth > 10 {
		return fmt.Errorf("%s: Include= nested too deep", name)
	}
	data, err := p.read(name)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		pos := fmt.Sprintf("%s:%d", name, n)
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		if line[0] == '[' {
			if !strings.HasSuffix(line, "]") {
				return fmt.Errorf("%s: unterminated section header %q", pos, line)
			}
			p.section = strings.TrimSpace(line[1 : len(line)-1])
			if p.section != "options" && !slices.ContainsFunc(p.repos, func(r struct{ name, pos string }) bool { return r.name == p.section }) {
				p.repos = append(p.repos, struct{ name, pos string }{p.section, pos})
			}
			continue
		}
		key, value, _ := strings.Cut(line, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch key {
		case "Include":
			matches, err := p.glob(value)
			if err != nil {
				return fmt.Errorf("%s: Include = %s: %w", pos, value, err)
			}
			if len(matches) == 0 && !strings.ContainsAny(value, "*?[") {
				return fmt.Errorf("%s: Include = %s: no such file", pos, value)
			}
			for _, m := range matches {
				if err := p.file(m, depth+1); err != nil {
					return err
				}
			}
		case "Server":
			if p.section == "" || p.section == "options" {
				return fmt.Errorf("%s: Server outside of a repository section", pos)
			}
			if p.servers[p.section] == "" {
				p.servers[p.section] = value
			}
		case "SigLevel", "LocalFileSigLevel", "RemoteFileSigLevel":
			if key == "LocalFileSigLevel" {
				continue // files given on pacman -U's command line: sxb has none
			}
			for _, tok := range strings.Fields(value) {
				switch tok {
				case "Never", "Optional", "TrustAll", "PackageNever", "PackageOptional", "PackageTrustAll":
					return fmt.Errorf("%s: SigLevel %s: sxb checks the signature of every package", pos, tok)
				}
			}
		}
	}
	return sc.Err()
}
