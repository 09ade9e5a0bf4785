package rpm

import (
	"strings"
	"testing"
)

func TestParseRepoFile(t *testing.T) {
	repos, err := ParseRepoFile("x.repo", []byte(`# mkosi writes gpgkey lists so
[oss]
name=oss
baseurl=file:///srv/mirror/$releasever/repo/oss/
gpgcheck=1
enabled=1
gpgkey=file:///etc/keys/a.asc
       file:///etc/keys/b.asc

[debug]
baseurl=https://example.org/$basearch/
enabled=0
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(repos) != 2 || repos[0].ID != "oss" || repos[0].BaseURL != "file:///srv/mirror/$releasever/repo/oss/" ||
		strings.Join(repos[0].GPGKeys, " ") != "/etc/keys/a.asc /etc/keys/b.asc" || !repos[0].Enabled || repos[1].Enabled {
		t.Errorf("got %+v", repos)
	}
	u, err := Expand(repos[1].BaseURL, "tumbleweed", "x86-64")
	if err != nil || u != "https://example.org/x86_64/" {
		t.Errorf("Expand = %q, %v", u, err)
	}
	if _, err := Expand("https://example.org/$contentdir/", "41", "x86-64"); err == nil || !strings.Contains(err.Error(), "$contentdir") {
		t.Errorf("unknown variable: %v", err)
	}
	for _, c := range []struct{ text, want string }{
		{"[a]\nmirrorlist=https://example.org/list\n", "x.repo:2: repository [a]: mirrorlist= without baseurl="},
		{"[a]\nmetalink=https://example.org/m\n", "x.repo:2: repository [a]: metalink= without baseurl="},
		{"[a]\nbaseurl=https://a/\ngpgkey=https://example.org/key\n", "x.repo:3: repository [a]: gpgkey=https://example.org/key: sxb reads keys from local files only"},
		{"[a]\nbaseurl=https://a/\ngpgcheck=0\n", "x.repo:3: repository [a]: gpgcheck=0"},
		{"[a]\nbaseurl=https://a/ https://b/\n", "x.repo:2: repository [a]: more than one baseurl"},
		{"baseurl=https://a/\n", "x.repo:1: baseurl= outside of a [repository] section"},
		{"[a\n", "x.repo:1: unterminated section header"},
	} {
		if _, err := ParseRepoFile("x.repo", []byte(c.text)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err = %v, want %q", c.text, err, c.want)
		}
	}
}
