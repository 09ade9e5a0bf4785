package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/sxb-build/sxb/internal/testenv"
)

// listImage lists every path of the image's root file system, one per
// line, relative: systemd-dissect mounts it read-only on mnt in a private
// mount namespace (needs root).
func listImage(img, mnt string) ([]byte, error) {
	script := "set -e; systemd-dissect -r -m " + img + " " + mnt + "; cd " + mnt + "; find . -mindepth 1 | sed 's|^\\./||' | sort"
	return exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script).Output()
}

// scriptCommands are the custom commands of the CLI scripts.
var scriptCommands = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	// pgpkey DIR: a fresh OpenPGP signing key, DIR/secret.asc and the
	// keyring DIR/pubring.gpg (made without gpg, so no agent is left).
	"pgpkey": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 1 || neg {
			ts.Fatalf("usage: pgpkey DIR")
		}
		dir := ts.MkAbs(args[0])
		ts.Check(os.MkdirAll(dir, 0o755))
		_, _, err := testenv.PGPKey(dir)
		ts.Check(err)
	},
	// elfmachine FILE MACHINE: FILE is an ELF binary for MACHINE
	// (as debug/elf names it, e.g. EM_AARCH64, EM_X86_64).
	"elfmachine": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 2 {
			ts.Fatalf("usage: elfmachine FILE MACHINE")
		}
		f, err := elf.Open(ts.MkAbs(args[0]))
		ts.Check(err)
		defer f.Close()
		got := f.Machine.String()
		if (got == args[1]) == neg {
			ts.Fatalf("%s: machine %s, want %s%s", args[0], got, map[bool]string{true: "not "}[neg], args[1])
		}
	},
	// imagefiles IMG: list every path of the image's root partition, one per
	// line, relative (mounted read-only by systemd-dissect in a private
	// mount namespace; needs root).
	"imagefiles": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 1 || neg {
			ts.Fatalf("usage: imagefiles IMG")
		}
		dir := ts.MkAbs("imagefiles.mnt")
		ts.Check(os.MkdirAll(dir, 0o755))
		out, err := listImage(ts.MkAbs(args[0]), dir)
		if err != nil {
			ts.Fatalf("imagefiles: %v", err)
		}
		ts.Stdout().Write(out)
	},
	// sysextmerge ROOT CMD...: merge ROOT/var/lib/extensions into ROOT with
	// systemd-sysext in a private mount namespace, then run CMD chrooted
	// into ROOT; its output goes to stdout.
	"sysextmerge": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) < 2 {
			ts.Fatalf("usage: sysextmerge ROOT CMD...")
		}
		root := ts.MkAbs(args[0])
		script := "set -e; mount -t tmpfs tmpfs /run; mount --bind " + root + " " + root +
			"; mount --make-rshared " + root + "; systemd-sysext merge --root=" + root +
			" >&2; chroot " + root + " " + strings.Join(args[1:], " ")
		cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script)
		cmd.Env = os.Environ()
		out, err := cmd.CombinedOutput()
		ts.Logf("%s", out)
		if (err == nil) == neg {
			ts.Fatalf("sysextmerge: %v", err)
		}
		ts.Stdout().Write(out)
	},
}
