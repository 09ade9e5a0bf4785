package extension

import (
	"strings"
	"testing"
)

func env(kv ...string) Env {
	var e Env
	for i := 0; i+1 < len(kv); i += 2 {
		e = append(e, KV{Key: kv[i], Value: kv[i+1]})
	}
	return e
}

func TestCheckReleaseFollowsSystemd(t *testing.T) {
	debian := Host{OSRelease: env("ID", "debian", "VERSION_ID", "12"), Architecture: "x86-64", Scope: "system"}
	ubuntu := Host{OSRelease: env("ID", "ubuntu", "ID_LIKE", "debian", "VERSION_ID", "24.04"), Architecture: "x86-64", Scope: "system"}
	arch := Host{OSRelease: env("ID", "arch"), Architecture: "x86-64", Scope: "system"}
	leveled := Host{OSRelease: env("ID", "fedora", "VERSION_ID", "41", "SYSEXT_LEVEL", "1.0", "CONFEXT_LEVEL", "2"), Architecture: "arm64", Scope: "system"}
	for _, c := range []struct {
		name    string
		kind    Kind
		release Env
		host    Host
		err     string // "" = merged
	}{
		{"same version", Sysext, env("ID", "debian", "VERSION_ID", "12"), debian, ""},
		{"_any", Sysext, env("ID", "_any", "ARCHITECTURE", "x86-64"), debian, ""},
		{"no release", Sysext, nil, debian, "carries no release data"},
		{"no ID", Sysext, env("VERSION_ID", "12"), debian, `does not contain ID in release file but requested to match "debian"`},
		{"other ID", Sysext, env("ID", "fedora", "VERSION_ID", "12"), debian, `is for OS "fedora", but deployed on top of "debian"`},
		{"ID_LIKE", Sysext, env("ID", "debian", "VERSION_ID", "24.04"), ubuntu, ""},
		{"other version", Sysext, env("ID", "debian", "VERSION_ID", "13"), debian, `is for OS version "13", but deployed on top of "12"`},
		{"no version", Sysext, env("ID", "debian"), debian, `does not contain VERSION_ID`},
		{"rolling host", Sysext, env("ID", "arch", "VERSION_ID", "whatever"), arch, ""},
		{"architecture", Sysext, env("ID", "debian", "VERSION_ID", "12", "ARCHITECTURE", "arm64"), debian, `is for architecture "arm64", but deployed on top of "x86-64"`},
		{"architecture _any", Sysext, env("ID", "debian", "VERSION_ID", "12", "ARCHITECTURE", "_any"), debian, ""},
		{"scope", Sysext, env("ID", "_any", "SYSEXT_SCOPE", "initrd portable"), debian, "not suitable for scope system"},
		{"scope listed", Sysext, env("ID", "_any", "SYSEXT_SCOPE", "initrd system portable"), debian, ""},
		{"confext scope key", Confext, env("ID", "_any", "SYSEXT_SCOPE", "initrd"), debian, ""},
		{"level matches, version ignored", Sysext, env("ID", "fedora", "SYSEXT_LEVEL", "1.0", "VERSION_ID", "40"), leveled, ""},
		{"level differs", Sysext, env("ID", "fedora", "SYSEXT_LEVEL", "1.1", "VERSION_ID", "41"), leveled, `is for API level "1.1", but running on API level "1.0"`},
		{"confext level", Confext, env("ID", "fedora", "CONFEXT_LEVEL", "2"), leveled, ""},
		{"no level: version", Sysext, env("ID", "fedora", "VERSION_ID", "41"), leveled, ""},
	} {
		err := CheckRelease("x", c.kind, c.release, c.host)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v, want merged", c.name, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: err = %v, want %q", c.name, err, c.err)
		}
	}
}
