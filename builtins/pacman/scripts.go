package pacman

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/sxb-build/sxb/builtins/sandbox"
	"github.com/sxb-build/sxb/builtins/tree"
)

// .INSTALL scriptlets, ldconfig and libalpm hooks. With
// InstallOptions.Scripts, Install runs what pacman -S runs during a
// transaction, in libalpm 6's order, inside a sandbox whose root is the
// tree (over the base tree for an extension, which stays read-only):
//
//  1. before anything is unpacked, the PreTransaction hooks of the tree
//     (an extension's base) the transaction triggers; one with
//     AbortOnFail that fails aborts the installation;
//  2. per package, in install order, pre_install and post_install (or
//     pre_upgrade/post_upgrade for a package the base has), each sourced
//     from the package's .INSTALL by /usr/bin/bash as
//     `. .INSTALL; post_install VERSION [OLD]`, run only when the
//     function's name appears in the file outside comments, as libalpm
//     decides;
//  3. ldconfig, when the tree has /etc/ld.so.conf and /usr/bin/ldconfig;
//  4. the PostTransaction hooks the transaction triggers, now including
//     those the new packages ship.
//
// One deliberate difference: sxb unpacks every package natively before
// step 2 (as it runs dpkg's preinst after unpacking), so a pre_install
// already sees its own package's files. Like pacman, a failing
// scriptlet, ldconfig or PostTransaction hook does not stop the
// installation: it is reported (InstallOptions.Warn) and the rest runs.
// Commands run with umask 022 in / with no input, hooks that need
// targets get them on stdin, one a line.

// Step is a scriptlet function, ldconfig or a libalpm hook pacman would
// run during the installation.
type Step struct {
	// Kind is "scriptlet", "ldconfig" or "hook".
	Kind string `json:"kind"`
	// Package and Function name a scriptlet: the package's .INSTALL
	// function, called with Version (and OldVersion when upgrading).
	// Script is the install file in the local database, relative to the
	// root.
	Package    string `json:"package,omitempty"`
	Function   string `json:"function,omitempty"`
	Version    string `json:"version,omitempty"`
	OldVersion string `json:"old_version,omitempty"`
	Script     string `json:"script,omitempty"`
	// Hook is the hook's file name and HookPath where it was read from
	// (relative to the tree it is in); When is PreTransaction or
	// PostTransaction; Exec the command as written, Argv as run; Targets
	// what triggered it, passed on stdin when NeedsTargets.
	Hook         string   `json:"hook,omitempty"`
	HookPath     string   `json:"hook_path,omitempty"`
	When         string   `json:"when,omitempty"`
	Exec         string   `json:"exec,omitempty"`
	Argv         []string `json:"argv,omitempty"`
	Depends      []string `json:"depends,omitempty"`
	NeedsTargets bool     `json:"needs_targets,omitempty"`
	AbortOnFail  bool     `json:"abort_on_fail,omitempty"`
	Targets      []string `json:"targets,omitempty"`

	// install is the .INSTALL file a scriptlet sources.
	install []byte
}

// String names the step for messages and the manifest.
func (s Step) String() string {
	switch s.Kind {
	case "scriptlet":
		return s.Function + " of " + s.Package
	case "ldconfig":
		return "ldconfig"
	}
	return fmt.Sprintf("hook %s (%s)", s.Hook, s.When)
}

// ScriptletShell is the shell libalpm sources scriptlets with on Arch
// Linux, and LDConfig the ldconfig it runs after the packages.
const (
	ScriptletShell = "/usr/bin/bash"
	LDConfig       = "/usr/bin/ldconfig"
)

// findScriptEmulator says how the scriptlets and hooks of an architecture run on
// this host: natively (nil, nil), through the returned binfmt_misc
// emulator, or not at all (an error wrapping sandbox.ErrNoEmulator).
// Tests replace it.
var findScriptEmulator = sandbox.EmulatorForArchName

// scriptlets lists the .INSTALL functions pacman calls for pf: pre_ and
// post_ install (upgrade when old is the version it replaces). libalpm
// calls a function when its name appears in the file on a line, before
// any "#": a plain text search, which this repeats.
func scriptlets(pf *pkgFile, old string) (pre, post *Step) {
	if pf.install == nil {
		return nil, nil
	}
	op := "install"
	if old != "" {
		op = "upgrade"
	}
	mentioned := func(fn string) bool {
		for _, l := range bytes.Split(pf.install, []byte("\n")) {
			if i := bytes.IndexByte(l, '#'); i >= 0 {
				l = l[:i]
			}
			if bytes.Contains(l, []byte(fn)) {
				return true
			}
		}
		return false
	}
	mk := func(fn string) *Step {
		if !mentioned(fn) {
			return nil
		}
		return &Step{Kind: "scriptlet", Package: pf.info.Name, Function: fn, Version: pf.info.Version, OldVersion: old,
			Script: LocalDBPath + "/" + pf.info.Name + "-" + pf.info.Version + "/install", install: pf.install}
	}
	return mk("pre_" + op), mk("post_" + op)
}

// hookSteps lists the hooks in effect in trees (the top-most first) that
// the transaction triggers at when, in libalpm's order. A hook whose
// Depends the installed packages do not satisfy is not run and reported
// in skipped. Hooks that cannot be read or parsed are returned in errs.
func hookSteps(trees []string, when string, txn []txnPackage, have []*installed) (steps []Step, skipped []string, errs []error) {
	hooks, errs := readHooks(trees)
	for _, h := range hooks {
		if h.when != when || len(h.triggers) == 0 {
			continue
		}
		ok, targets := h.matches(txn)
		if !ok {
			continue
		}
		if dep := unsatisfied(h.depends, have); dep != "" {
			msg := fmt.Sprintf("hook %s was not run: its dependency %s is not installed", h.name, dep)
			if h.abortOnFail && when == "PreTransaction" {
				errs = append(errs, errors.New(msg))
			}
			skipped = append(skipped, msg)
			continue
		}
		steps = append(steps, Step{Kind: "hook", Hook: h.name, HookPath: h.path, When: h.when, Exec: h.exec,
			Argv: h.argv, Depends: h.depends, NeedsTargets: h.needsTargets, AbortOnFail: h.abortOnFail, Targets: targets})
	}
	return steps, skipped, errs
}

// unsatisfied returns the first of deps no package of have satisfies.
func unsatisfied(deps []string, have []*installed) string {
	for _, s := range deps {
		d, err := ParseDep(s)
		if err != nil {
			return s
		}
		found := false
		for _, p := range have {
			if d.satisfiedBy(p.Name, p.Version, p.Provides) {
				found = true
				break
			}
		}
		if !found {
			return s
		}
	}
	return ""
}

// Paths inside the sandbox of what runSteps binds in.
const (
	stepsDir    = "/run/sxb/pacman"
	stepsOutDir = "/run/sxb/pacman-out"
)

// runnerScript is the bash program that runs steps in the sandbox: each
// command's output goes to $out/N.log, a failure is appended to
// $out/failed as "N STATUS". abort ends the run after a failing
// PreTransaction hook with AbortOnFail, as libalpm stops there.
func runnerScript(steps []Step) []byte {
	var b bytes.Buffer
	b.WriteString(`unset BASH_ENV
umask 022
cd /
out=` + stepsOutDir + `
run() { # run N STDIN PATH ARGV0 ARGS...
	local n=$1 in=$2 path=$3 name=$4
	shift 4
	(exec -a "$name" "$path" "$@") <"$in" >"$out/$n.log" 2>&1
	local s=$?
	[ "$s" = 0 ] || echo "$n $s" >>"$out/failed"
	return "$s"
}
`)
	for i, s := range steps {
		n := strconv.Itoa(i)
		switch s.Kind {
		case "scriptlet":
			call := s.Function + " " + s.Version
			if s.OldVersion != "" {
				call += " " + s.OldVersion
			}
			fmt.Fprintf(&b, "run %s /dev/null %s %s -c %s\n", n, ScriptletShell, ScriptletShell,
				shellQuote(". "+stepsDir+"/"+n+"/.INSTALL; "+call))
		case "ldconfig":
			fmt.Fprintf(&b, "if [ -e /etc/ld.so.conf ] && [ -x %s ]; then run %s /dev/null %s ldconfig; fi\n", LDConfig, n, LDConfig)
		case "hook":
			in := "/dev/null"
			if s.NeedsTargets {
				in = stepsDir + "/" + n + ".targets"
			}
			// libalpm execs the command without a PATH search, from /.
			path := s.Argv[0]
			if !strings.Contains(path, "/") {
				path = "./" + path
			}
			args := make([]string, len(s.Argv))
			for j, a := range s.Argv {
				args[j] = shellQuote(a)
			}
			fmt.Fprintf(&b, "run %s %s %s %s", n, in, shellQuote(path), strings.Join(args, " "))
			if s.When == "PreTransaction" && s.AbortOnFail {
				b.WriteString(" || exit 0")
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("exit 0\n") // failures are in $out/failed
	return b.Bytes()
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// stepFailure is a step that failed: its exit status and the end of what
// it printed.
type stepFailure struct {
	step   Step
	status int
	output string
}

func (f stepFailure) Error() string {
	msg := fmt.Sprintf("%s failed (exit status %d)", f.step, f.status)
	if f.output != "" {
		msg += ": " + f.output
	}
	return msg
}

// scriptRun is what runSteps needs besides the steps.
type scriptRun struct {
	dir, base string
	meta      *tree.Meta
	emulator  *sandbox.Emulator
	opts      InstallOptions
}

// runSteps runs steps in one sandbox over the tree and returns the steps
// that failed. The tree is given back with what the commands changed
// recorded in its Meta.
func (sr *scriptRun) runSteps(ctx context.Context, steps []Step) ([]stepFailure, error) {
	if len(steps) == 0 {
		return nil, nil
	}
	tmp, err := os.MkdirTemp("", "sxb-pacman-scripts-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	in, out := filepath.Join(tmp, "in"), filepath.Join(tmp, "out")
	for _, d := range []string{in, out} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, err
		}
	}
	os.Chmod(tmp, 0o755)
	for i, s := range steps {
		n := strconv.Itoa(i)
		switch {
		case s.Kind == "scriptlet":
			if err := os.MkdirAll(filepath.Join(in, n), 0o755); err != nil {
				return nil, err
			}
			if err := os.WriteFile(filepath.Join(in, n, ".INSTALL"), s.install, 0o644); err != nil {
				return nil, err
			}
		case s.Kind == "hook" && s.NeedsTargets:
			var t bytes.Buffer
			for _, x := range s.Targets {
				t.WriteString(x + "\n")
			}
			if err := os.WriteFile(filepath.Join(in, n+".targets"), t.Bytes(), 0o644); err != nil {
				return nil, err
			}
		}
	}
	if err := os.WriteFile(filepath.Join(in, "runner"), runnerScript(steps), 0o644); err != nil {
		return nil, err
	}
	// The sandbox maps ids: the output directory must be writable by
	// root inside whoever that is outside.
	os.Chmod(out, 0o777)
	so := sandbox.Options{
		Root: sr.dir, Meta: sr.meta, Chroot: true, // as pacman --root runs them
		Args:  []string{ScriptletShell, stepsDir + "/runner"},
		Env:   []string{"SOURCE_DATE_EPOCH=" + strconv.FormatInt(sr.opts.Epoch, 10)},
		Binds: []sandbox.Bind{{Source: in, Target: stepsDir}, {Source: out, Target: stepsOutDir, Writable: true}},
	}
	if sr.base != "" {
		bm, err := tree.LoadMeta(tree.MetaPath(sr.base))
		if err != nil {
			return nil, err
		}
		so.Lower, so.LowerMeta = []string{sr.base}, []*tree.Meta{bm}
	}
	if sr.emulator != nil && !sr.emulator.Fixed() {
		so.Binds = append(so.Binds, sr.emulator.Bind())
	}
	var runnerOut bytes.Buffer
	so.Stdout, so.Stderr = &runnerOut, &runnerOut
	_, runErr := sandbox.Run(ctx, so)
	// What the commands wrote to out is theirs: read it confined to out,
	// so that a symlink they left cannot make sxb read a host file.
	o, err := tree.OpenRoot(out)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	for i := range steps {
		if b, err := o.ReadFile(strconv.Itoa(i) + ".log"); err == nil && sr.opts.ScriptOutput != nil {
			sr.opts.ScriptOutput.Write(b)
		}
	}
	if runErr != nil {
		if t := tail(runnerOut.Bytes(), 5); t != "" {
			return nil, fmt.Errorf("running pacman's scriptlets and hooks: %w (%s)", runErr, t)
		}
		return nil, fmt.Errorf("running pacman's scriptlets and hooks: %w", runErr)
	}
	failed, _ := o.ReadFile("failed")
	var fails []stepFailure
	for _, l := range strings.Split(string(failed), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		i, err1 := strconv.Atoi(f[0])
		status, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil || i < 0 || i >= len(steps) {
			continue
		}
		b, _ := o.ReadFile(f[0] + ".log")
		fails = append(fails, stepFailure{step: steps[i], status: status, output: strings.TrimSpace(tail(b, 3))})
	}
	sort.SliceStable(fails, func(a, b int) bool { return fails[a].step.String() < fails[b].step.String() })
	return fails, nil
}

// tail returns the last n lines of b joined by "; ".
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, "; "))
}

// overlayStat returns what rel (symlinks followed inside each tree) is
// in the overlay of trees, the top-most first, or nil.
func overlayStat(trees []string, rel string) fs.FileInfo {
	for _, t := range trees {
		if t == "" {
			continue
		}
		r, err := tree.OpenRoot(t)
		if err != nil {
			continue
		}
		f, err := r.Open(rel)
		r.Close()
		if err == nil {
			st, err := f.Stat()
			f.Close()
			if err != nil {
				return nil
			}
			return st
		}
	}
	return nil
}

// hasRunnerShell reports whether the overlay of trees has pacman's
// scriptlet shell, which the runner needs.
func hasRunnerShell(trees []string) bool {
	st := overlayStat(trees, strings.TrimPrefix(ScriptletShell, "/"))
	return st != nil && st.Mode().IsRegular()
}

// hasLDConfig reports whether libalpm would run ldconfig in the overlay
// of trees.
func hasLDConfig(trees []string) bool {
	return overlayStat(trees, "etc/ld.so.conf") != nil && overlayStat(trees, strings.TrimPrefix(LDConfig, "/")) != nil
}

// transaction describes the packages to hooks, in install order, with
// the file lists their .MTREE gives (extraction replaces them by what
// was unpacked). upgraded maps the names of base packages the
// transaction replaces to them.
func transaction(baseRoot string, base []*installed, pfs []*pkgFile, upgraded map[string]*installed, withDocs bool) ([]txnPackage, error) {
	txn := make([]txnPackage, len(pfs))
	for i, pf := range pfs {
		var names []string
		for _, rel := range sortedKeys(pf.entries) {
			if rel == "." || strings.HasPrefix(rel, ".") && !strings.Contains(rel, "/") {
				continue // the metadata entries
			}
			if pf.entries[rel].typ == "dir" {
				rel += "/"
			}
			names = append(names, rel)
		}
		txn[i] = txnPackage{name: pf.info.Name, files: installedNames(names, withDocs)}
		if old := upgraded[pf.info.Name]; old != nil {
			d, err := readTreeDesc(baseRoot, LocalDBPath+"/"+old.entry+"/files")
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
			txn[i].upgrade, txn[i].oldVersion, txn[i].oldFiles = true, old.Version, d["FILES"]
		}
	}
	return txn, nil
}

// installedNames leaves out of a file list what NoExtract leaves out
// (libalpm's Path triggers do not see those files).
func installedNames(files []string, withDocs bool) []string {
	if withDocs {
		return files
	}
	var out []string
	for _, f := range files {
		if !noExtract(f) {
			out = append(out, f)
		}
	}
	return out
}

// afterTransaction is what is installed once pfs are: the base's
// packages but those upgraded, and pfs.
func afterTransaction(base []*installed, pfs []*pkgFile, upgraded map[string]*installed) []*installed {
	var out []*installed
	for _, b := range base {
		if upgraded[b.Name] == nil {
			out = append(out, b)
		}
	}
	for _, pf := range pfs {
		provides, _ := parseDeps(pf.info.Provides, "provides")
		out = append(out, &installed{Name: pf.info.Name, Version: pf.info.Version, Provides: provides})
	}
	return out
}

// scriptRunner returns what runs the steps of the installation, or nil
// and why not.
func scriptRunner(plan *Plan, dir string, meta *tree.Meta, opts InstallOptions) (*scriptRun, error) {
	if !opts.Scripts {
		return nil, nil
	}
	emu, err := findScriptEmulator(plan.Arch)
	if err != nil {
		return nil, err
	}
	return &scriptRun{dir: dir, base: plan.baseRoot, meta: meta, emulator: emu, opts: opts}, nil
}

// notRun reports steps that are not run: to opts.NotRun, and in a warning
// when scripts were asked for (why says what prevents them).
func notRun(steps []Step, why error, opts InstallOptions) {
	if len(steps) == 0 {
		return
	}
	names := make([]string, len(steps))
	for i, s := range steps {
		names[i] = s.String()
	}
	if opts.NotRun != nil {
		opts.NotRun(names)
	}
	if opts.Scripts && opts.Warn != nil {
		opts.Warn(fmt.Sprintf("not running %d pacman scriptlets and hooks (%v): %s", len(names), why, strings.Join(names, ", ")))
	}
}

func (sr *scriptRun) warn(msg string) {
	if sr.opts.Warn != nil {
		sr.opts.Warn(msg)
	}
}

// runPre runs the PreTransaction hooks. One with AbortOnFail that fails
// (or cannot run: skipped) aborts the installation, as it aborts
// pacman's transaction; other failures are warnings.
func (sr *scriptRun) runPre(ctx context.Context, steps []Step, skipped []string) error {
	return sr.run(ctx, steps, skipped, func(f stepFailure) error {
		if f.step.AbortOnFail {
			return fmt.Errorf("%v; pacman aborts the transaction when a PreTransaction hook with AbortOnFail fails", f)
		}
		return nil
	})
}

// runPost runs the steps after the packages are unpacked; failures are
// warnings, as pacman goes on after them. What the commands leave that
// differs from run to run is then removed (see sandbox.Scrub).
func (sr *scriptRun) runPost(ctx context.Context, steps []Step, skipped []string, r *root) error {
	if err := sr.run(ctx, steps, skipped, func(stepFailure) error { return nil }); err != nil || len(steps) == 0 {
		return err
	}
	return sandbox.Scrub(r.t, sr.meta, "var/cache/ldconfig/aux-cache")
}

// run warns about skipped, runs steps and hands each failure to fatal:
// its error ends the installation, otherwise the failure is a warning.
func (sr *scriptRun) run(ctx context.Context, steps []Step, skipped []string, fatal func(stepFailure) error) error {
	for _, s := range skipped {
		sr.warn(s)
	}
	fails, err := sr.runSteps(ctx, steps)
	if err != nil {
		return err
	}
	for _, f := range fails {
		if err := fatal(f); err != nil {
			return err
		}
		sr.warn(f.Error())
	}
	return nil
}
