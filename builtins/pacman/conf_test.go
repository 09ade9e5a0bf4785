package pacman

import (
	"os"
	"path"
	"strings"
	"testing"
)

func TestParseConf(t *testing.T) {
	files := map[string]string{
		"/etc/pacman.conf": `[options]
SigLevel = Required DatabaseOptional
LocalFileSigLevel = Optional
Include = /etc/pacman.d/*.conf

[core]
Include = /etc/pacman.d/mirrorlist

[extra]
Server = file:///srv/$repo/os/$arch  # local
Server = https://second.example/$repo
`,
		"/etc/pacman.d/mirrorlist":  "## comment\nServer = https://mirror.example/$repo/os/$arch\n",
		"/etc/pacman.d/custom.conf": "[custom]\nSigLevel = Required\nServer = https://custom.example/$arch\n",
	}
	read := func(p string) ([]byte, error) {
		if s, ok := files[p]; ok {
			return []byte(s), nil
		}
		return nil, os.ErrNotExist
	}
	glob := func(pat string) ([]string, error) {
		var out []string
		for p := range files {
			if ok, _ := path.Match(pat, p); ok {
				out = append(out, p)
			}
		}
		return out, nil
	}
	got, err := ParseConf("/etc/pacman.conf", read, glob)
	if err != nil {
		t.Fatal(err)
	}
	want := "custom=https://custom.example/$arch core=https://mirror.example/$repo/os/$arch extra=file:///srv/$repo/os/$arch"
	if strings.Join(got, " ") != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	for _, c := range []struct{ conf, want string }{
		{"[core]\nSigLevel = Never\nServer = x\n", "/etc/pacman.conf:2: SigLevel Never"},
		{"[options]\nSigLevel = PackageOptional\n", "/etc/pacman.conf:2: SigLevel PackageOptional"},
		{"[core]\n", "/etc/pacman.conf:1: repository [core] has no Server"},
		{"[core]\nInclude = /etc/pacman.d/missing\n", "/etc/pacman.conf:2: Include = /etc/pacman.d/missing: no such file"},
		{"Server = x\n", "/etc/pacman.conf:1: Server outside of a repository section"},
	} {
		files["/etc/pacman.conf"] = c.conf
		if _, err := ParseConf("/etc/pacman.conf", read, glob); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err = %v, want %q", c.conf, err, c.want)
		}
	}
}
