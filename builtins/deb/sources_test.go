package deb

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

func TestParseSources(t *testing.T) {
	list := `# comment
deb [signed-by=/usr/share/keyrings/x.gpg arch=amd64,arm64] https://repo.example/debian bookworm main contrib
deb-src https://repo.example/debian bookworm main
deb http://deb.debian.org/debian bookworm-backports main # trailing
`
	got, err := ParseSources("x.list", []byte(list), false)
	if err != nil {
		t.Fatal(err)
	}
	if want := "[{https://repo.example/debian [bookworm] [main contrib] /usr/share/keyrings/x.gpg [amd64 arm64]} {http://deb.debian.org/debian [bookworm-backports] [main]  []}]"; fmt.Sprint(got) != want {
		t.Errorf("one-line: %v\nwant %s", got, want)
	}
	deb822 := `Types: deb deb-src
URIs: https://a.example/debian https://b.example/debian
Suites: trixie trixie-updates
Components: main
Signed-By: /etc/apt/keyrings/a.asc

# disabled
Types: deb
URIs: https://c.example/
Suites: sid
Enabled: no

Types: deb-src
URIs: https://d.example/
Suites: sid
`
	got, err = ParseSources("x.sources", []byte(deb822), true)
	if err != nil {
		t.Fatal(err)
	}
	if want := "[{https://a.example/debian [trixie trixie-updates] [main] /etc/apt/keyrings/a.asc []} {https://b.example/debian [trixie trixie-updates] [main] /etc/apt/keyrings/a.asc []}]"; fmt.Sprint(got) != want {
		t.Errorf("deb822: %v\nwant %s", got, want)
	}
	for _, bad := range []struct {
		text   string
		deb822 bool
		want   string
	}{
		{"deb https://x/ ./\n", false, "x.list:1: flat repository"},
		{"rpm x y\n", false, `x.list:1: "rpm" is not a deb`},
		{"deb [signed-by=x https://x/ sid\n", false, "unterminated"},
		{"Types: deb\nURIs: https://x/\nSuites: sid\nSigned-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n", true, "inline"},
	} {
		if _, err := ParseSources("x.list", []byte(bad.text), bad.deb822); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: %v, want %s", bad.text, err, bad.want)
		}
	}
}

// TestResolveSources reads packages from a second repository signed with
// its own key (Signed-By), besides the default one, or instead of it.
func TestResolveSources(t *testing.T) {
	one := buildRepo(t, "stable", []fpkg{{name: "a", version: "1", fields: "Depends: b\n"}})
	two := buildRepo(t, "extra", []fpkg{{name: "b", version: "2"}})
	req := one.request(t, "stable", "a")
	req.Suites = []string{"stable"}
	req.Sources = []Source{{URI: "file://" + two.dir, Suites: []string{"extra"}, Keyring: two.keyring}}
	plan, err := Resolve(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range plan.Packages {
		got = append(got, p.Name+"="+p.Version+"@"+strings.TrimPrefix(p.URL, "file://"+two.dir))
	}
	if len(got) != 2 || !strings.HasPrefix(got[1], "b=2@/pool/main/") {
		t.Errorf("plan %v", got)
	}
	// The second repository's own key signs it: the default keyring
	// does not.
	req.Sources[0].Keyring = ""
	if _, err := Resolve(context.Background(), req); err == nil {
		t.Error("a repository signed by another key was accepted")
	}
	req = one.request(t, "stable", "b")
	req.NoDefaultSources = true
	req.Keyring = "/nonexistent" // not needed: every source has its own
	req.Sources = []Source{{URI: "file://" + two.dir, Suites: []string{"extra"}, Keyring: two.keyring}}
	if _, err := Resolve(context.Background(), req); err != nil {
		t.Errorf("only the extra repository: %v", err)
	}
	req.Packages = []string{"a"}
	if _, err := Resolve(context.Background(), req); err == nil {
		t.Error("the default repository was read with NoDefaultSources")
	}
}
