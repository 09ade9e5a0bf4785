package deb

import (
	"strings"
	"testing"
	"time"
)

func TestDebianArch(t *testing.T) {
	for in, want := range map[string]string{"x86-64": "amd64", "arm64": "arm64", "arm": "armhf", "x86": "i386",
		"ppc64-le": "ppc64el", "s390x": "s390x", "riscv64": "riscv64", "mips64-le": "mips64el", "loongarch64": "loong64", "amd64": "amd64"} {
		if got, err := DebianArch(in); err != nil || got != want {
			t.Errorf("DebianArch(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := DebianArch("vax"); err == nil {
		t.Error("unknown architecture accepted")
	}
}

func TestParseDeps(t *testing.T) {
	got, err := parseDeps("libc6 (>= 2.34), perl:any, foo [!amd64] | bar:native (<< 2~), baz [amd64] <!nocheck>", "amd64")
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, a := range got {
		s = append(s, a.String())
	}
	want := "libc6 (>= 2.34); perl:any; bar:native (<< 2~); baz"
	if strings.Join(s, "; ") != want {
		t.Errorf("got %q, want %q", strings.Join(s, "; "), want)
	}
	if _, err := parseDeps("foo (>= )", "amd64"); err == nil {
		t.Error("missing version accepted")
	}
}

func TestVersionRelations(t *testing.T) {
	for _, tc := range []struct {
		have, op, want string
		ok             bool
	}{
		{"1.6-2.1+deb12u3", ">=", "1.6", true},
		{"1:1.0", ">>", "9.9", true},
		{"2.0~rc1", "<<", "2.0", true},
		{"2.0", "=", "2.0-0", true}, // dpkg: an absent revision equals "0"
		{"2.0", "=", "2.0-1", false},
		{"1.0", "<=", "1.0", true},
	} {
		if got := relationHolds(tc.have, tc.op, tc.want); got != tc.ok {
			t.Errorf("%s %s %s = %v", tc.have, tc.op, tc.want, got)
		}
	}
}

func TestParseRelease(t *testing.T) {
	r, err := parseRelease([]byte("Suite: stable-security\nCodename: bookworm-security\nValid-Until: Sat, 02 Dec 2023 08:19:36 UTC\nAcquire-By-Hash: yes\nSHA256:\n " +
		strings.Repeat("a", 64) + " 123 main/binary-amd64/Packages.xz\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !r.ByHash || r.ValidUntil.IsZero() || r.ValidUntil.After(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("release = %+v", r)
	}
	if fs := r.files["main/binary-amd64/Packages.xz"]; fs.size != 123 {
		t.Errorf("files = %v", r.files)
	}
	if _, err := parseRelease([]byte("Suite: x\nSHA256:\n zz 1 a\n")); err == nil {
		t.Error("malformed hash accepted")
	}
}

func TestParseStatus(t *testing.T) {
	st := "Package: a\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\nProvides: v (= 2)\n\n" +
		"Package: gone\nStatus: deinstall ok config-files\nVersion: 1\nArchitecture: amd64\n\n" +
		"Package: foreign\nStatus: install ok installed\nVersion: 1\nArchitecture: arm64\n"
	nodes, err := parseStatus([]byte(st), "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 1 || nodes[0].name != "a" || len(nodes[0].info.prov) != 1 || nodes[0].info.prov[0].version != "2" {
		t.Errorf("nodes = %+v", nodes)
	}
}

func TestSources(t *testing.T) {
	str := func(r Request, arch string) string {
		var s []string
		for _, src := range r.sources(arch) {
			s = append(s, src.base+" "+src.suite)
		}
		return strings.Join(s, "; ")
	}
	for _, tc := range []struct {
		req  Request
		arch string
		want string
	}{
		{Request{Distribution: "debian", Release: "bookworm"}, "amd64",
			"http://deb.debian.org/debian bookworm; http://deb.debian.org/debian bookworm-updates; http://deb.debian.org/debian-security bookworm-security"},
		{Request{Distribution: "ubuntu", Release: "noble"}, "amd64",
			"http://archive.ubuntu.com/ubuntu noble; http://archive.ubuntu.com/ubuntu noble-updates; http://security.ubuntu.com/ubuntu noble-security"},
		{Request{Distribution: "ubuntu", Release: "noble"}, "arm64",
			"http://ports.ubuntu.com/ubuntu-ports noble; http://ports.ubuntu.com/ubuntu-ports noble-updates; http://ports.ubuntu.com/ubuntu-ports noble-security"},
		{Request{Distribution: "debian", Release: "bookworm", Mirror: "http://ftp.de.debian.org/debian/"}, "amd64",
			"http://ftp.de.debian.org/debian bookworm; http://ftp.de.debian.org/debian bookworm-updates; http://deb.debian.org/debian-security bookworm-security"},
		{Request{Distribution: "debian", Release: "fix", Mirror: "file:///srv/repo"}, "amd64",
			"file:///srv/repo fix; file:///srv/repo fix-updates; file:///srv/repo fix-security"},
		{Request{Distribution: "debian", Release: "sid"}, "amd64", "http://deb.debian.org/debian sid"},
	} {
		if got := str(tc.req, tc.arch); got != tc.want {
			t.Errorf("%+v %s:\ngot  %s\nwant %s", tc.req, tc.arch, got, tc.want)
		}
	}
}
