package deb

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/sxb-build/sxb/builtins/sandbox"
	"github.com/sxb-build/sxb/builtins/tree"
)

// Maintainer scripts and triggers. With InstallOptions.Scripts, Install
// unpacks natively as always, then records the new packages in the dpkg
// database as unpacked (and indexes and activates triggers, see
// triggers.go) and runs, in one sandbox over the tree (over the base tree
// for an extension, which stays read-only): every new package's "preinst
// install", in dependency order, then the tree's own dpkg with --configure
// --pending (each postinst "configure", in dpkg's order, and the triggers
// of base packages the new files set off) and --triggers-only --pending
// (what the configuration set off). Files are unpacked before preinst runs,
// as with mmdebstrap's extraction of the essential set.
//
// The stand-ins for what scripts do (users and groups, base-files' first
// install, update-alternatives) are then not run: the scripts do it
// themselves, exactly. The merged-/usr links and the dpkg database are
// still written natively (the scripts need them).

// findScriptEmulator says how the maintainer scripts of an architecture run on
// this host: natively (nil, nil), through the returned binfmt_misc
// emulator, or not at all (an error wrapping sandbox.ErrNoEmulator).
// Tests replace it.
var findScriptEmulator = sandbox.EmulatorForArchName

// scriptPlan is what runScripts needs to know about the packages.
type scriptPlan struct {
	// preinst lists "<info base name>\t<package>\t<arch>" of the new
	// packages with a preinst, in dependency order.
	preinst []string
	// notRun names every script and trigger a run would execute.
	notRun []string
	// status is the rewritten dpkg status; triggers the index files.
	status   []byte
	triggers map[string][]byte
	// emulator runs the tree's executables (nil: natively).
	emulator *sandbox.Emulator
}

// infoBase is the name of a package's files in var/lib/dpkg/info.
func infoBase(name, arch string, control []byte) string {
	if strings.EqualFold(parseOne(control).Get("Multi-Arch"), "same") {
		return name + ":" + arch
	}
	return name
}

// planScripts indexes triggers, activates what the new packages set off and
// rewrites the status with the new packages unpacked. baseInfo reads a
// base package's info file ("" when the tree has no base).
func (r *root) planScripts(plan *Plan, results []*unpacked, baseInfo func(string) ([]byte, error)) (*scriptPlan, error) {
	status, err := r.readFile("var/lib/dpkg/status")
	if err != nil {
		return nil, err
	}
	idx := &triggerIndex{file: map[string][]trigInterest{}, explicit: map[string][]trigInterest{}}
	isNew := map[string]bool{}
	for i, u := range results {
		p := plan.Packages[i]
		isNew[p.Name] = true
		idx.add(p.Name, parseTriggers(u.info["triggers"]))
	}
	// The interests of every installed package, the base's included.
	var installed []string
	err = parseParagraphs(status, func(_ int, p *Paragraph) error {
		name := p.Get("Package")
		if isNew[name] || !strings.HasSuffix(p.Get("Status"), " installed") {
			return nil
		}
		installed = append(installed, name)
		base := infoBase(name, p.Get("Architecture"), []byte("Multi-Arch: "+p.Get("Multi-Arch")+"\n"))
		b, err := r.readFile("var/lib/dpkg/info/" + base + ".triggers")
		if err != nil && baseInfo != nil {
			b, err = baseInfo(base + ".triggers")
		}
		if err == nil {
			idx.add(name, parseTriggers(b))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the dpkg status: %w", err)
	}
	pending := map[string][]string{}
	for _, u := range results {
		idx.activate(u.list, parseTriggers(u.info["triggers"]).activates, pending)
	}
	sp := &scriptPlan{triggers: idx.files()}
	edits := map[string]statusEdit{}
	for i, u := range results {
		p := plan.Packages[i]
		edits[p.Name+":"+p.Arch] = statusEdit{status: "install ok unpacked"}
		for _, s := range []string{"preinst", "postinst"} {
			if _, ok := u.info[s]; ok {
				sp.notRun = append(sp.notRun, p.Name+"."+s)
			}
		}
	}
	for _, name := range installed {
		if t := pending[name]; len(t) > 0 {
			edits[name] = statusEdit{status: "install ok triggers-pending", pending: t}
			for _, n := range t {
				sp.notRun = append(sp.notRun, fmt.Sprintf("%s trigger %s", name, n))
			}
		}
	}
	sort.Strings(sp.notRun)
	if sp.status, err = editStatus(status, edits); err != nil {
		return nil, err
	}
	for _, i := range dependencyOrder(plan, results) {
		p, u := plan.Packages[i], results[i]
		if _, ok := u.info["preinst"]; ok {
			sp.preinst = append(sp.preinst, infoBase(p.Name, p.Arch, u.control)+"\t"+p.Name+"\t"+p.Arch)
		}
	}
	return sp, nil
}

// dependencyOrder returns the indexes of the plan's packages so that a
// package comes after what it (pre-)depends on, where that is in the plan;
// cycles are broken in name order.
func dependencyOrder(plan *Plan, results []*unpacked) []int {
	byName := map[string]int{}
	provides := map[string][]int{}
	for i, p := range plan.Packages {
		byName[p.Name] = i
		for _, alt := range mustDeps(parseOne(results[i].control).Get("Provides"), p.Arch) {
			for _, d := range alt {
				provides[d.Name] = append(provides[d.Name], i)
			}
		}
	}
	state := make([]int, len(plan.Packages)) // 0 new, 1 visiting, 2 done
	var out []int
	var visit func(i int)
	visit = func(i int) {
		if state[i] != 0 {
			return
		}
		state[i] = 1
		ctrl := parseOne(results[i].control)
		for _, field := range []string{"Pre-Depends", "Depends"} {
			for _, alt := range mustDeps(ctrl.Get(field), plan.Packages[i].Arch) {
				for _, d := range alt {
					if j, ok := byName[d.Name]; ok {
						visit(j)
						break
					}
					if js := provides[d.Name]; len(js) > 0 {
						visit(js[0])
						break
					}
				}
			}
		}
		state[i] = 2
		out = append(out, i)
	}
	for i := range plan.Packages {
		visit(i)
	}
	return out
}

func mustDeps(s, arch string) []Alt {
	alts, _ := parseDeps(s, arch)
	return alts
}

// runnerScript is the shell program run in the sandbox: the preinst
// scripts with dpkg's arguments and environment, then dpkg.
func runnerScript(sp *scriptPlan, dpkgVersion string) []byte {
	var b bytes.Buffer
	b.WriteString(`set -e
export DPKG_ADMINDIR=/var/lib/dpkg DPKG_ROOT= DPKG_RUNNING_VERSION=` + shellQuote(dpkgVersion) + ` DPKG_MAINTSCRIPT_PACKAGE_REFCOUNT=1 DPKG_FORCE=
preinst() {
	DPKG_MAINTSCRIPT_PACKAGE=$2 DPKG_MAINTSCRIPT_ARCH=$3 DPKG_MAINTSCRIPT_NAME=preinst \
		/var/lib/dpkg/info/$1.preinst install || {
		echo "sxb: $2: the preinst script failed (exit status $?)" >&2
		exit 1
	}
}
`)
	for _, p := range sp.preinst {
		f := strings.Split(p, "\t")
		b.WriteString("preinst " + shellQuote(f[0]) + " " + shellQuote(f[1]) + " " + shellQuote(f[2]) + "\n")
	}
	b.WriteString(`dpkg --log=/dev/null --force-unsafe-io --configure --pending
dpkg --log=/dev/null --force-unsafe-io --triggers-only --pending
`)
	return b.Bytes()
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// policyRC keeps invoke-rc.d from starting services (mmdebstrap and
// debootstrap install the same during installation).
const policyRC = "#!/bin/sh\nexit 101\n"

// Paths inside the sandbox of the files runScripts binds in.
const (
	runnerPath   = "/run/sxb/maintainer-scripts"
	policyRCPath = "/usr/sbin/policy-rc.d"
)

// runScripts runs sp in a sandbox over the tree. base, when not "", is the
// read-only base tree beneath it.
func (r *root) runScripts(ctx context.Context, sp *scriptPlan, base string, opts InstallOptions) error {
	if err := r.writeFile("var/lib/dpkg/status", sp.status, 0o644); err != nil {
		return err
	}
	for name, content := range sp.triggers {
		if err := r.writeFile("var/lib/dpkg/triggers/"+name, content, 0o644); err != nil {
			return err
		}
	}
	tmp, err := os.MkdirTemp("", "sxb-maintscripts-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	runner := filepath.Join(tmp, "runner")
	policy := filepath.Join(tmp, "policy-rc.d")
	if err := os.WriteFile(runner, runnerScript(sp, r.dpkgVersion(base)), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(policy, []byte(policyRC), 0o755); err != nil {
		return err
	}
	os.Chmod(tmp, 0o755)
	so := sandbox.Options{
		Root: r.t.Path(), Meta: r.meta, Chroot: true, // as dpkg --root runs them
		Args: []string{"/bin/sh", runnerPath},
		Env: []string{"DEBIAN_FRONTEND=noninteractive", "DEBCONF_NONINTERACTIVE_SEEN=true",
			"SOURCE_DATE_EPOCH=" + strconv.FormatInt(opts.Epoch, 10)},
		Binds: []sandbox.Bind{{Source: runner, Target: runnerPath}, {Source: policy, Target: policyRCPath}},
	}
	if base != "" {
		bm, err := tree.LoadMeta(tree.MetaPath(base))
		if err != nil {
			return err
		}
		so.Lower, so.LowerMeta = []string{base}, []*tree.Meta{bm}
	}
	if sp.emulator != nil && !sp.emulator.Fixed() {
		so.Binds = append(so.Binds, sp.emulator.Bind())
	}
	var out scriptLog
	so.Stdout = &out
	if opts.ScriptOutput != nil {
		so.Stdout = io.MultiWriter(&out, opts.ScriptOutput)
	}
	so.Stderr = so.Stdout
	if _, err := sandbox.Run(ctx, so); err != nil {
		return fmt.Errorf("running maintainer scripts: %s: %w", out.summary(), err)
	}
	return r.scrubScriptOutput()
}

// dpkgVersion is the version of the tree's (or the base's) dpkg.
func (r *root) dpkgVersion(base string) string {
	b, err := r.readFile("var/lib/dpkg/status")
	if err != nil && base != "" {
		b, err = tree.ReadFile(base, "var/lib/dpkg/status")
	}
	v := ""
	if err == nil {
		parseParagraphs(b, func(_ int, p *Paragraph) error {
			if p.Get("Package") == "dpkg" {
				v = p.Get("Version")
			}
			return nil
		})
	}
	return v
}

// scrubScriptOutput removes what maintainer scripts leave that differs
// from run to run (see sandbox.Scrub): dpkg's and update-alternatives'
// logs and ldconfig's auxiliary cache; /etc/machine-id is left empty.
func (r *root) scrubScriptOutput() error {
	return sandbox.Scrub(r.t, r.meta, "var/log/alternatives.log", "var/log/dpkg.log", "var/cache/ldconfig/aux-cache")
}

// scriptLog keeps what the scripts print for an error message: the last
// lines, and every package dpkg or the preinst runner reports failed, with
// the lines just before (usually the script's own complaint).
type scriptLog struct {
	tail     sandbox.Tail
	failures []string
}

func (l *scriptLog) Write(p []byte) (int, error) {
	if l.tail.Line == nil {
		l.tail.Max, l.tail.Line = 40, l.line
	}
	return l.tail.Write(p)
}

// line notes a failure dpkg or the runner reports; recent are the lines
// before s.
func (l *scriptLog) line(s string, recent []string) bool {
	if len(recent) > 0 && strings.HasPrefix(recent[len(recent)-1], "dpkg: error processing package ") {
		// "dpkg: error processing package P (--configure):" then the
		// reason, after the lines the script printed.
		pkg := strings.TrimPrefix(recent[len(recent)-1], "dpkg: error processing package ")
		pkg, _, _ = strings.Cut(pkg, " ")
		f := pkg + ": " + strings.TrimSpace(s)
		if n := len(recent); n >= 2 && !strings.HasPrefix(recent[n-2], "Setting up ") && !strings.HasPrefix(recent[n-2], "dpkg: ") {
			f += " (" + strings.TrimSpace(recent[n-2]) + ")"
		}
		l.failures = append(l.failures, f)
	}
	if strings.HasPrefix(s, "sxb: ") {
		l.failures = append(l.failures, strings.TrimPrefix(s, "sxb: "))
	}
	return true
}

// summary is the failures, or the last lines when none was recognised.
func (l *scriptLog) summary() string {
	if len(l.failures) > 0 {
		return strings.Join(l.failures, "; ")
	}
	return l.tail.String()
}

// scriptsPossible decides whether Install runs maintainer scripts: asked
// for, and the tree's executables can run here. Otherwise it reports what
// is not run (with a warning when scripts were asked for).
func (r *root) scriptsPossible(plan *Plan, results []*unpacked, baseInfo func(string) ([]byte, error), opts InstallOptions) (*scriptPlan, bool, error) {
	sp, err := r.planScripts(plan, results, baseInfo)
	if err != nil {
		return nil, false, fmt.Errorf("planning maintainer scripts: %w", err)
	}
	if !opts.Scripts {
		if opts.NotRun != nil {
			opts.NotRun(sp.notRun)
		}
		return sp, false, nil
	}
	if sp.emulator, err = findScriptEmulator(plan.Arch); err != nil {
		if opts.NotRun != nil {
			opts.NotRun(sp.notRun)
		}
		if opts.Warn != nil && len(sp.notRun) > 0 {
			opts.Warn(fmt.Sprintf("not running %d maintainer scripts and triggers (%v); installed with sxb's stand-ins instead: %s",
				len(sp.notRun), err, strings.Join(sp.notRun, ", ")))
		}
		return sp, false, nil
	}
	return sp, true, nil
}

// baseInfoReader reads the dpkg info files of the base tree base ("" for
// none).
func baseInfoReader(base string) func(string) ([]byte, error) {
	if base == "" {
		return nil
	}
	return func(name string) ([]byte, error) {
		return tree.ReadFile(base, "var/lib/dpkg/info/"+name)
	}
}
