package main

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	spdxjson "github.com/spdx/tools-golang/json"

	"github.com/sxb-build/sxb/internal/testenv"
)

// listImage lists every path of the image's root file system, one per
// line, relative: systemd-dissect mounts it read-only on mnt in a private
// mount namespace (needs root).
func listImage(img, mnt string) ([]byte, error) {
	script := "set -e; systemd-dissect -r -m " + img + " " + mnt + "; cd " + mnt + "; find . -mindepth 1 | sed 's|^\\./||' | sort"
	return exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script).Output()
}

// davServers are the nginx processes davserver started, per script.
var davServers sync.Map // *testscript.TestScript -> *exec.Cmd

// scriptCommands are the custom commands of the CLI scripts.
var scriptCommands = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	// require root|exec:PROG...: fail the script unless it runs as root
	// and each program is on PATH. (A script that may be skipped on
	// purpose says so first: [allowskip] [!root] skip.)
	"require": func(ts *testscript.TestScript, neg bool, args []string) {
		for _, a := range args {
			ok, err := scriptCondition(a)
			ts.Check(err)
			if !ok {
				ts.Fatalf("needs %s: run the suite with the README test command (.ci/test), as root", a)
			}
		}
	},
	// example NAME...: copy the repository's examples/NAME into
	// $WORK/examples/NAME (modes kept), so that a script builds the
	// examples as they are.
	"example": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) == 0 || neg {
			ts.Fatalf("usage: example NAME...")
		}
		repo, err := filepath.Abs("../..")
		ts.Check(err)
		for _, n := range args {
			dst := ts.MkAbs(filepath.Join("examples", n))
			ts.Check(os.MkdirAll(filepath.Dir(dst), 0o755))
			if out, err := exec.Command("cp", "-a", filepath.Join(repo, "examples", n), dst).CombinedOutput(); err != nil {
				ts.Fatalf("copying examples/%s: %v: %s", n, err, out)
			}
		}
	},
	// tcplisten FILE...: listen on a free port of the host's loopback
	// until the script ends, accepting connections (and saying "hello"),
	// and write "PORT=<port>" to each FILE (an mkosi.env, say).
	"tcplisten": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) == 0 || neg {
			ts.Fatalf("usage: tcplisten FILE...")
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		ts.Check(err)
		ts.Defer(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Write([]byte("hello\n"))
				c.Close()
			}
		}()
		for _, f := range args {
			ts.Check(os.WriteFile(ts.MkAbs(f), fmt.Appendf(nil, "PORT=%d\n", ln.Addr().(*net.TCPAddr).Port), 0o644))
		}
	},
	// chrootrun ROOT CMD...: run CMD chrooted into ROOT in a private mount
	// namespace with /proc, /dev and a tmpfs /run mounted (needs root).
	"chrootrun": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) < 2 {
			ts.Fatalf("usage: chrootrun ROOT CMD...")
		}
		root := ts.MkAbs(args[0])
		script := `set -e; R="$1"; shift; mount -t proc proc "$R/proc"; mount -t tmpfs tmpfs "$R/run"; mount --rbind /dev "$R/dev"; exec chroot "$R" "$@"`
		cmd := exec.Command("unshare", append([]string{"-m", "--propagation", "private", "sh", "-c", script, "sh", root}, args[1:]...)...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		ts.Stdout().Write([]byte(stdout.String()))
		ts.Stderr().Write([]byte(stderr.String()))
		if (err == nil) == neg {
			ts.Fatalf("chrootrun: %v", err)
		}
	},
	// spdxcheck SPDX MANIFEST: the SPDX document parses with tools-golang's
	// reader and lists exactly the manifest's packages (name, version,
	// download URL, SHA-256, a purl), each contained in the image.
	"spdxcheck": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 2 || neg {
			ts.Fatalf("usage: spdxcheck SPDX MANIFEST")
		}
		b, err := os.ReadFile(ts.MkAbs(args[0]))
		ts.Check(err)
		doc, err := spdxjson.Read(bytes.NewReader(b))
		if err != nil {
			ts.Fatalf("tools-golang cannot read %s: %v", args[0], err)
		}
		mb, err := os.ReadFile(ts.MkAbs(args[1]))
		ts.Check(err)
		var m struct {
			Packages []struct{ Name, Version, URL, SHA256 string }
		}
		ts.Check(json.Unmarshal(mb, &m))
		want := map[string]bool{}
		for _, p := range m.Packages {
			want[p.Name+" "+p.Version+" "+p.URL+" "+p.SHA256] = true
		}
		contained := map[string]bool{}
		for _, r := range doc.Relationships {
			if r.Relationship == "CONTAINS" {
				contained[string(r.RefB.ElementRefID)] = true
			}
		}
		got := map[string]bool{}
		for _, p := range doc.Packages {
			if !strings.HasPrefix(string(p.PackageSPDXIdentifier), "Package-") {
				continue
			}
			sum := ""
			if len(p.PackageChecksums) == 1 && p.PackageChecksums[0].Algorithm == "SHA256" {
				sum = p.PackageChecksums[0].Value
			}
			got[p.PackageName+" "+p.PackageVersion+" "+p.PackageDownloadLocation+" "+sum] = true
			if len(p.PackageExternalReferences) != 1 || !strings.HasPrefix(p.PackageExternalReferences[0].Locator, "pkg:") {
				ts.Fatalf("%s: no purl", p.PackageName)
			}
			if !contained[string(p.PackageSPDXIdentifier)] {
				ts.Fatalf("%s: the image does not CONTAIN it", p.PackageName)
			}
		}
		if len(want) == 0 || len(got) != len(want) {
			ts.Fatalf("SPDX lists %d packages, the manifest %d", len(got), len(want))
		}
		for k := range want {
			if !got[k] {
				ts.Fatalf("manifest package %q missing from the SPDX document", k)
			}
		}
	},
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
	// davserver conf|start|stop [readonly]: nginx with WebDAV serving
	// $WORK/dav-root on a free loopback port, as a remote cache. conf
	// writes $WORK/dav/nginx.conf and sets $REMOTE (its URL) and
	// $NGINX_ARGS (to start it by hand, e.g. in a network namespace);
	// start also starts it (stopped when the script ends); stop stops it.
	"davserver": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) < 1 || neg {
			ts.Fatalf("usage: davserver conf|start|stop [readonly]")
		}
		if args[0] == "stop" {
			if c, ok := davServers.LoadAndDelete(ts); ok {
				c.(*exec.Cmd).Process.Kill()
				c.(*exec.Cmd).Wait()
			}
			return
		}
		dir, root := ts.MkAbs("dav"), ts.MkAbs("dav-root")
		ts.Check(os.MkdirAll(dir, 0o755))
		ts.Check(os.MkdirAll(root, 0o755))
		port, err := testenv.FreePort()
		ts.Check(err)
		nargs, err := testenv.NginxConf(dir, root, port, testenv.NginxOptions{ReadOnly: len(args) > 1 && args[1] == "readonly"})
		ts.Check(err)
		ts.Setenv("REMOTE", fmt.Sprintf("http://127.0.0.1:%d", port))
		ts.Setenv("NGINX_ARGS", strings.Join(nargs, " "))
		if args[0] != "start" {
			return
		}
		c := exec.Command("nginx", nargs...)
		ts.Check(c.Start())
		davServers.Store(ts, c)
		ts.Defer(func() {
			if c, ok := davServers.LoadAndDelete(ts); ok {
				c.(*exec.Cmd).Process.Kill()
				c.(*exec.Cmd).Wait()
			}
		})
		ts.Check(testenv.WaitPort(port, 10*time.Second))
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
