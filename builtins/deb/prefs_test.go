package deb

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/internal/testenv"
)

const fixturePrefs = `Package: *
Pin: release a=extra
Pin-Priority: 100

Package: b
Pin: version 2.*
Pin-Priority: 600

Package: /^d$/
Pin: origin ""
Pin-Priority: -10

Package: e*
Pin: release n=extra, c=main
Pin-Priority: 700
`

// TestPinsMatchApt resolves from two signed local repositories with apt
// preferences and checks the candidates against apt-get install -s with
// the same sources and preferences: a general pin lowering a suite, a
// version pin raising a package above it, a negative pin removing a
// package, a glob with several release conditions.
func TestPinsMatchApt(t *testing.T) {
	testenv.NeedTool(t, "apt-get")
	stable := buildRepo(t, "stable", []fpkg{{name: "a", version: "1.0"}, {name: "b", version: "1.0"}, {name: "c", version: "1.0"}, {name: "e", version: "1.0"}, {name: "f", version: "1.0"}})
	extra := buildRepo(t, "extra", []fpkg{{name: "a", version: "2.0"}, {name: "b", version: "2.0"}, {name: "c", version: "2.0"}, {name: "d", version: "1.0"}, {name: "e", version: "2.0"}})
	// A backports-like release: NotAutomatic with ButAutomaticUpgrades
	// gives its packages priority 100, below stable's 500.
	bp := buildRepo(t, "bp", []fpkg{{name: "f", version: "2.0"}, {name: "g", version: "1.0"}})
	bp.sign(t, "bp", "NotAutomatic=yes", "ButAutomaticUpgrades=yes")
	if rel, _ := os.ReadFile(filepath.Join(bp.dir, "dists/bp/Release")); !strings.Contains(string(rel), "NotAutomatic: yes") {
		t.Fatalf("bp Release:\n%s", rel)
	}
	pins, err := ParsePreferences("pins", []byte(fixturePrefs))
	if err != nil {
		t.Fatal(err)
	}
	req := stable.request(t, "stable", "a", "b", "c", "e", "f", "g")
	req.Sources = []Source{{URI: "file://" + extra.dir, Suites: []string{"extra"}, Components: []string{"main"}, Keyring: extra.keyring},
		{URI: "file://" + bp.dir, Suites: []string{"bp"}, Components: []string{"main"}, Keyring: bp.keyring}}
	req.Pins = pins
	plan, err := Resolve(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	got := planSet(plan)
	if want := []string{"a 1.0", "b 2.0", "c 1.0", "e 2.0", "f 1.0", "g 1.0"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("sxb: %v, want %v", got, want)
	}
	req.Packages = []string{"d"}
	if _, err := Resolve(context.Background(), req); err == nil {
		t.Errorf("d, pinned below 0, was resolved")
	}

	// apt agrees.
	d := t.TempDir()
	for _, p := range []string{"etc/apt/sources.list.d", "etc/apt/preferences.d", "etc/apt/apt.conf.d", "lists/partial", "cache/archives/partial"} {
		os.MkdirAll(filepath.Join(d, p), 0o755)
	}
	os.WriteFile(filepath.Join(d, "etc/apt/sources.list"), []byte(fmt.Sprintf("deb [signed-by=%s] file://%s stable main\ndeb [signed-by=%s] file://%s extra main\ndeb [signed-by=%s] file://%s bp main\n",
		stable.keyring, stable.dir, extra.keyring, extra.dir, bp.keyring, bp.dir)), 0o644)
	os.WriteFile(filepath.Join(d, "etc/apt/preferences.d/pins"), []byte(fixturePrefs), 0o644)
	conf := filepath.Join(d, "apt.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("Dir::Etc \"%[1]s/etc/apt\";\nDir::State::Lists \"%[1]s/lists\";\nDir::Cache \"%[1]s/cache\";\n"+
		"APT::Architecture \"amd64\";\nAPT::Architectures \"amd64\";\nAcquire::Languages \"none\";\nAPT::Sandbox::User \"root\";\n", d)), 0o644)
	status := filepath.Join(d, "status")
	os.WriteFile(status, nil, 0o644)
	apt := func(args ...string) (string, error) {
		cmd := exec.Command("apt-get", append(args[:1:1], append([]string{"-q", "-o", "Dir::State::Status=" + status}, args[1:]...)...)...)
		cmd.Env = append(os.Environ(), "APT_CONFIG="+conf)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := apt("update"); err != nil {
		t.Fatalf("apt-get update: %v\n%s", err, out)
	}
	out, err := apt("install", "-s", "a", "b", "c", "e", "f", "g")
	if err != nil {
		t.Fatalf("apt-get install -s: %v\n%s", err, out)
	}
	var aptGot []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == "Inst" {
			aptGot = append(aptGot, f[1]+" "+strings.TrimPrefix(f[2], "("))
		}
	}
	sort.Strings(aptGot)
	if strings.Join(aptGot, ",") != strings.Join(got, ",") {
		t.Errorf("apt installs %v, sxb %v", aptGot, got)
	}
	if out, err := apt("install", "-s", "d"); err == nil {
		t.Errorf("apt installs d:\n%s", out)
	}
}

func TestParsePreferencesErrors(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"Package: a\nPin: release v=12\nPin-Priority: 1\n", "p:1: Pin: release v=: not supported"},
		{"Package: a\nPin: release a=x\n", "p:1: Pin-Priority: \"\" is not an integer"},
		{"Package: *\nPin: version 1.*\nPin-Priority: 1\n", "p:1: Pin: version needs named packages"},
		{"Package: a\nPin: label x\nPin-Priority: 1\n", "p:1: Pin: label: want release, version or origin"},
		{"Package: a\nPin-Priority: 1\n\nPackage: /(/\nPin: version 1\nPin-Priority: 1\n", "p:1: record without a Pin field"},
		{"Package: /(/\nPin: version 1\nPin-Priority: 1\n", "p:1: Package: /(/"},
	} {
		if _, err := ParsePreferences("p", []byte(c.text)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err = %v, want %q", c.text, err, c.want)
		}
	}
}
