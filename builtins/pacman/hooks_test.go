package pacman

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseHook(t *testing.T) {
	const action = "\n[Action]\nWhen = PostTransaction\nExec = /usr/bin/x\n"
	cases := []struct {
		name, text string
		want       *hook // nil: an error containing err
		err        string
	}{
		{name: "full", text: `# comment
[Trigger]
Operation = Install
Operation = Upgrade
Type = Path
Target = usr/lib/*.so*
Target = !usr/lib/skip.so

[Trigger]
Type = File
Operation = Remove
Target = etc/x

[Action]
Description = Doing things...
When = PreTransaction
Exec = /usr/bin/sh -c 'echo "a b"' "c d" e\"f
Depends = coreutils
Depends = sh>=5
NeedsTargets
AbortOnFail
`, want: &hook{name: "x.hook", path: "d/x.hook", desc: "Doing things...",
			triggers: []trigger{{ops: opInstall | opUpgrade, typ: "Path", targets: []string{"usr/lib/*.so*", "!usr/lib/skip.so"}},
				{ops: opRemove, typ: "Path", targets: []string{"etc/x"}}},
			when: "PreTransaction", exec: `/usr/bin/sh -c 'echo "a b"' "c d" e\"f`,
			argv:    []string{"/usr/bin/sh", "-c", `echo "a b"`, "c d", `e"f`},
			depends: []string{"coreutils", "sh>=5"}, needsTargets: true, abortOnFail: true}},
		{name: "mask", text: "", want: &hook{name: "x.hook", path: "d/x.hook"}},
		{name: "mask with action", text: action, want: &hook{name: "x.hook", path: "d/x.hook", when: "PostTransaction", exec: "/usr/bin/x", argv: []string{"/usr/bin/x"}}},
		{name: "bad operation", text: "[Trigger]\nOperation = Delete\n", err: `hook d/x.hook line 2: invalid value "Delete" for Operation`},
		{name: "bad type", text: "[Trigger]\nType = Directory\n", err: "line 2: invalid value"},
		{name: "bad when", text: "[Trigger]\n[Action]\nWhen = Later\n", err: "line 3: invalid value \"Later\" for When"},
		{name: "unknown option", text: "[Trigger]\nTargets = x\n", err: "line 2: invalid option Targets"},
		{name: "unknown section", text: "[Triggers]\n", err: "line 1: invalid section Triggers"},
		{name: "outside a section", text: "Exec = /x\n", err: "line 1: invalid option Exec (outside a section)"},
		{name: "unbalanced quote", text: "[Action]\nExec = /bin/sh -c 'x\n", err: "line 2: invalid value"},
		{name: "missing", text: "[Trigger]\nOperation = Install\n[Action]\nExec = /x\n", err: "hook d/x.hook: missing Target in [Trigger] 1, Type in [Trigger] 1, When"},
		{name: "no exec", text: "[Trigger]\nOperation = Install\nType = Package\nTarget = x\n[Action]\nWhen = PostTransaction\n", err: "missing Exec"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, err := parseHook("d/x.hook", []byte(c.text))
			if c.want == nil {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(h, c.want) {
				t.Errorf("parsed\n%+v\nwant\n%+v", h, c.want)
			}
		})
	}
}

func TestWordSplit(t *testing.T) {
	cases := map[string][]string{
		`/usr/bin/a b  c`:            {"/usr/bin/a", "b", "c"},
		`  a  `:                      {"a"},
		`a 'b c' "d 'e'"`:            {"a", "b c", "d 'e'"},
		`x'y z'w`:                    {"xy zw"},
		`'it\'s' "say \"hi\""`:       {"it's", `say "hi"`},
		`a\"b c\d`:                   {`a"b`, `c\d`},
		`''`:                         {""},
		"/usr/bin/x\t--flag=\"1 2\"": {"/usr/bin/x", "--flag=1 2"},
	}
	for in, want := range cases {
		got, err := wordSplit(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("wordSplit(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`a 'b`, `"`, `x"y\"`} {
		if got, err := wordSplit(bad); err == nil {
			t.Errorf("wordSplit(%q) = %q, want an error", bad, got)
		}
	}
}

// TestHookOrderAndOverrides reads hooks from an extension tree over a
// base: /etc/pacman.d/hooks wins over /usr/share/libalpm/hooks, the
// upper tree over the lower, a symlink to /dev/null masks, a broken hook
// is an error naming it, and the order is libalpm's (names compared
// without ".hook": "a" before "a-b").
func TestHookOrderAndOverrides(t *testing.T) {
	base, ext := t.TempDir(), t.TempDir()
	hook := func(when, exec string) string {
		return "[Trigger]\nOperation = Install\nType = Package\nTarget = *\n[Action]\nWhen = " + when + "\nExec = " + exec + "\n"
	}
	write := func(root, rel, content string) {
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	usr, etc := "usr/share/libalpm/hooks/", "etc/pacman.d/hooks/"
	write(base, usr+"a.hook", hook("PostTransaction", "/base/a"))
	write(base, usr+"a-b.hook", hook("PostTransaction", "/base/a-b"))
	write(base, usr+"masked.hook", hook("PostTransaction", "/base/masked"))
	write(base, usr+"over.hook", hook("PostTransaction", "/base/over"))
	write(base, usr+"pre.hook", hook("PreTransaction", "/base/pre"))
	write(base, usr+"README", "not a hook")
	write(ext, usr+"over.hook", hook("PostTransaction", "/ext/over"))
	write(base, etc+"over.hook", hook("PostTransaction", "/base/etc/over"))
	os.MkdirAll(filepath.Join(ext, etc), 0o755)
	if err := os.Symlink("/dev/null", filepath.Join(ext, etc, "masked.hook")); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(ext, usr, "dir.hook"), 0o755)
	txn := []txnPackage{{name: "p"}}
	steps, skipped, errs := hookSteps([]string{ext, base}, "PostTransaction", txn, nil)
	if len(errs) > 0 || len(skipped) > 0 {
		t.Fatalf("errors %v, skipped %v", errs, skipped)
	}
	var got []string
	for _, s := range steps {
		got = append(got, s.Hook+"="+s.Exec)
	}
	want := []string{"a.hook=/base/a", "a-b.hook=/base/a-b", "over.hook=/base/etc/over"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("hooks %v, want %v", got, want)
	}
	write(ext, usr+"broken.hook", "[Trigger]\nOperation = Sometimes\n")
	if _, _, errs := hookSteps([]string{ext, base}, "PreTransaction", txn, nil); len(errs) != 1 ||
		errs[0].Error() != `hook usr/share/libalpm/hooks/broken.hook line 2: invalid value "Sometimes" for Operation` {
		t.Errorf("errors %v", errs)
	}
}

// TestHookMatches checks libalpm's trigger semantics: paths installed,
// upgraded (in the old and the new file list) and removed (only in the
// old one), package installs and upgrades, NeedsTargets collecting the
// sorted union of what matched, Depends checked against what is
// installed.
func TestHookMatches(t *testing.T) {
	txn := []txnPackage{
		{name: "new", files: []string{"usr/", "usr/lib/", "usr/lib/a.so", "usr/lib/b.so"}},
		{name: "up", files: []string{"usr/lib/c.so", "usr/lib/d.so"}, upgrade: true, oldFiles: []string{"usr/lib/c.so", "usr/lib/gone.so"}},
	}
	mk := func(ops hookOp, typ string, targets ...string) *hook {
		return &hook{triggers: []trigger{{ops: ops, typ: typ, targets: targets}}, needsTargets: true}
	}
	cases := []struct {
		name string
		h    *hook
		want []string // nil: not triggered
	}{
		{"install paths", mk(opInstall, "Path", "usr/lib/*"), []string{"usr/lib/", "usr/lib/a.so", "usr/lib/b.so", "usr/lib/d.so"}},
		{"upgrade paths", mk(opUpgrade, "Path", "usr/lib/*"), []string{"usr/lib/c.so"}},
		{"remove paths", mk(opRemove, "Path", "usr/lib/*"), []string{"usr/lib/gone.so"}},
		{"directories", mk(opInstall, "Path", "usr/*/"), []string{"usr/lib/"}},
		{"negation", mk(opInstall|opUpgrade, "Path", "usr/lib/*", "!usr/lib/[ab].so"), []string{"usr/lib/", "usr/lib/c.so", "usr/lib/d.so"}},
		{"no match", mk(opInstall, "Path", "etc/*"), nil},
		{"install packages", mk(opInstall, "Package", "*"), []string{"new"}},
		{"upgrade packages", mk(opUpgrade, "Package", "*"), []string{"up"}},
		{"remove packages", mk(opRemove, "Package", "*"), nil},
	}
	for _, c := range cases {
		ok, got := c.h.matches(txn)
		if ok != (c.want != nil) || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %v %q, want %q", c.name, ok, got, c.want)
		}
	}
	// Two triggers: the union, sorted, once each.
	h := &hook{triggers: []trigger{{ops: opInstall, typ: "Path", targets: []string{"usr/lib/b.so", "usr/lib/a.so"}},
		{ops: opInstall, typ: "Path", targets: []string{"usr/lib/a.so"}}}, needsTargets: true}
	if ok, got := h.matches(txn); !ok || !reflect.DeepEqual(got, []string{"usr/lib/a.so", "usr/lib/b.so"}) {
		t.Errorf("two triggers: %v %q", ok, got)
	}
	// Without NeedsTargets, no targets.
	h.needsTargets = false
	if ok, got := h.matches(txn); !ok || got != nil {
		t.Errorf("without NeedsTargets: %v %q", ok, got)
	}
	have := []*installed{{Name: "sh", Version: "5.2-1", Provides: []Dep{{Name: "shell"}}}}
	for deps, want := range map[string]string{"": "", "sh": "", "shell": "", "sh>=5": "", "sh>=6": "sh>=6", "sh,coreutils": "coreutils"} {
		var l []string
		if deps != "" {
			l = strings.Split(deps, ",")
		}
		if got := unsatisfied(l, have); got != want {
			t.Errorf("unsatisfied(%q) = %q, want %q", deps, got, want)
		}
	}
}

func TestScriptletsLikeLibalpm(t *testing.T) {
	pf := &pkgFile{info: &pkgInfo{Name: "p", Version: "1-1"}, install: []byte(`# post_install is only named in this comment
pre_install() {
	true # pre_upgrade in a comment too
}
post_upgrade() { echo post_install; }
`)}
	pre, post := scriptlets(pf, "")
	if pre == nil || pre.Function != "pre_install" || pre.Version != "1-1" || post == nil || post.Function != "post_install" {
		t.Errorf("install: %+v %+v", pre, post)
	}
	pre, post = scriptlets(pf, "0.9-1")
	if pre != nil || post == nil || post.Function != "post_upgrade" || post.OldVersion != "0.9-1" {
		t.Errorf("upgrade: %+v %+v", pre, post)
	}
	if pre, post := scriptlets(&pkgFile{info: pf.info}, ""); pre != nil || post != nil {
		t.Errorf("no .INSTALL: %+v %+v", pre, post)
	}
	got := string(runnerScript([]Step{*post, {Kind: "ldconfig"},
		{Kind: "hook", When: "PreTransaction", Argv: []string{"x", "it's"}, NeedsTargets: true, AbortOnFail: true}}))
	for _, want := range []string{
		`run 0 /dev/null /usr/bin/bash /usr/bin/bash -c '. /run/sxb/pacman/0/.INSTALL; post_upgrade 1-1 0.9-1'`,
		`if [ -e /etc/ld.so.conf ] && [ -x /usr/bin/ldconfig ]; then run 1 /dev/null /usr/bin/ldconfig ldconfig; fi`,
		`run 2 /run/sxb/pacman/2.targets './x' 'x' 'it'\''s' || exit 0`,
	} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("runner lacks %q:\n%s", want, got)
		}
	}
}
