package deb

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/testenv"
)

// TestSysusersMatchesSystemd applies sysusers.d files natively and with
// the host's systemd-sysusers --root to two copies of a tree and compares
// the account files.
func TestSysusersMatchesSystemd(t *testing.T) {
	testenv.NeedTool(t, "systemd-sysusers")
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n" +
			"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		"etc/group":   "root:x:0:\ndaemon:x:1:\nadm:x:4:\nshadow:x:42:\nnogroup:x:65534:\n",
		"etc/shadow":  "root:*::0:99999:7:::\ndaemon:*::0:99999:7:::\nnobody:*::0:99999:7:::\n",
		"etc/gshadow": "root:*::\ndaemon:*::\nadm:*::\nshadow:*::\nnogroup:*::\n",
		"usr/lib/sysusers.d/a.conf": "g systemd-journal - -\nu systemd-network - \"systemd Network Management\"\n" +
			"g fixed 1234 -\nu svc 998 \"Service\" /var/lib/svc\nm svc adm\n",
		"usr/lib/sysusers.d/b.conf": "u messagebus - - /nonexistent\nu withgrp -:adm\ng adm 4 -\nr - 500-900\n",
		"usr/lib/sysusers.d/c.conf": "u daemon 1 - /usr/sbin\nu clash 4 \"Takes uid 4\"\n",
	}
	mk := func() string {
		d := filepath.Join(t.TempDir(), "root")
		for p, c := range files {
			os.MkdirAll(filepath.Join(d, filepath.Dir(p)), 0o755)
			os.WriteFile(filepath.Join(d, p), []byte(c), 0o644)
		}
		return d
	}
	ours, theirs := mk(), mk()
	r, err := openRoot(ours, tree.NewMeta(), "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.applySysusers(); err != nil {
		t.Fatal(err)
	}
	r.close()
	cmd := exec.Command("systemd-sysusers", "--root="+theirs)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("systemd-sysusers: %v\n%s", err, out)
	}
	lastchg := regexp.MustCompile(`(?m)^([^:]*:[^:]*:)[0-9]*:`)
	for _, f := range []string{"etc/passwd", "etc/group", "etc/shadow", "etc/gshadow"} {
		a, _ := os.ReadFile(filepath.Join(ours, f))
		b, _ := os.ReadFile(filepath.Join(theirs, f))
		if f == "etc/shadow" {
			a, b = lastchg.ReplaceAll(a, []byte("$1:")), lastchg.ReplaceAll(b, []byte("$1:"))
		}
		if string(a) != string(b) {
			t.Errorf("%s differs\nsxb:\n%s\nsystemd-sysusers:\n%s", f, a, b)
		}
	}
}
