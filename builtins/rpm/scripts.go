package rpm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	rpmutils "github.com/sassoftware/go-rpmutils"
	"github.com/sxb-build/sxb/builtins/sandbox"
	"github.com/sxb-build/sxb/builtins/tree"
)

// Running scriptlets. Install unpacks natively as always; then, with
// InstallOptions.Scripts, the steps planScripts lists run in one sandbox
// over the tree (over the base tree for an extension, read-only beneath
// it): a shell program of the tree's /bin/sh calls each interpreter as rpm
// does (argv: the interpreter with its arguments, the body's file, then
// the counts; no counts for a scriptlet without body), with PATH
// /sbin:/bin:/usr/sbin:/usr/bin, in /, with umask 022 and the file list on
// stdin for file triggers. A tree without /bin/sh runs each step in a
// sandbox of its own. A failing scriptlet fails the installation, naming
// the package, the scriptlet and its exit status.

// FileListsPath is where Install records the files of each installed
// package (in install order), for the file triggers of packages installed
// later on top of the tree.
const FileListsPath = "usr/lib/sysimage/sxb/rpm-files.json"

type fileLists struct {
	Format   int           `json:"format"`
	Packages []packageList `json:"packages"`
}

type packageList struct {
	Name  string   `json:"name"`
	Files []string `json:"files"`
}

// scriptPkgFromHeader reads what planScripts needs of a package header
// (its files are added while unpacking).
func scriptPkgFromHeader(hdr *rpmutils.RpmHeader, ip *InstalledPackage) (*scriptPkg, error) {
	hs, err := readScripts(hdr)
	if err != nil {
		return nil, err
	}
	sp := &scriptPkg{name: ip.Name, evr: ParseEVR(ip.EVR), scripts: *hs, provides: ip.Provides, isNew: true}
	if hdr.HasTag(rpmutils.REQUIRENAME) {
		names, err := hdr.GetStrings(rpmutils.REQUIRENAME)
		if err != nil {
			return nil, fmt.Errorf("reading header: %w", err)
		}
		flags, _ := hdr.GetUint32s(rpmutils.REQUIREFLAGS)
		for i, n := range names {
			d := Dep{Name: n}
			if i < len(flags) {
				d.Pre = flags[i]&senseScriptPrereq != 0
			}
			sp.requires = append(sp.requires, d)
		}
	}
	return sp, nil
}

// writeFileLists appends the new packages' file lists to FileListsPath
// (a package of the same name replaces its old entry).
func writeFileLists(rt *tree.Root, sps []*scriptPkg) error {
	old, err := readFileLists(rt)
	if err != nil {
		return err
	}
	fl := fileLists{Format: 1}
	isNew := map[string]bool{}
	for _, sp := range sps {
		sort.Strings(sp.files)
		isNew[sp.name] = true
	}
	for _, p := range old {
		if !isNew[p.Name] {
			fl.Packages = append(fl.Packages, p)
		}
	}
	for _, sp := range sps {
		fl.Packages = append(fl.Packages, packageList{Name: sp.name, Files: append([]string{}, sp.files...)})
	}
	b, err := json.Marshal(fl)
	if err != nil {
		return err
	}
	// writeInstalled made (and checked) the directory.
	if err := rt.WriteFile(FileListsPath, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing file lists: %w", err)
	}
	return nil
}

func readFileLists(rt *tree.Root) ([]packageList, error) {
	b, err := rt.ReadFile(FileListsPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading file lists: %w", err)
	}
	var fl fileLists
	if err := json.Unmarshal(b, &fl); err != nil || fl.Format != 1 {
		return nil, fmt.Errorf("reading file lists %s: not a format 1 record", filepath.Join(rt.Path(), FileListsPath))
	}
	return fl.Packages, nil
}

// basePackages returns the packages installed in the base tree at dir as
// planScripts sees them, in their install order.
func basePackages(dir string) ([]*scriptPkg, error) {
	if dir == "" {
		return nil, nil
	}
	rt, err := tree.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the base: %w", err)
	}
	defer rt.Close()
	inst, err := readInstalled(rt)
	if err != nil {
		return nil, err
	}
	lists, err := readFileLists(rt)
	if err != nil {
		return nil, err
	}
	byName := map[string]*scriptPkg{}
	var out []*scriptPkg
	for _, ip := range inst {
		byName[ip.Name] = &scriptPkg{name: ip.Name, evr: ParseEVR(ip.EVR),
			scripts: headerScripts{triggers: ip.Triggers, fileTriggers: ip.FileTriggers}}
	}
	for _, l := range lists {
		if p := byName[l.Name]; p != nil {
			p.files = l.Files
			out = append(out, p)
			delete(byName, l.Name)
		}
	}
	// Packages without a list (a record sxb wrote before it kept lists)
	// come after, by name.
	for _, ip := range inst {
		if p := byName[ip.Name]; p != nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// findScriptEmulator says how the scriptlets of an architecture run here
// (tests replace it): natively (nil, nil), through an emulator, or not at
// all (an error wrapping sandbox.ErrNoEmulator).
var findScriptEmulator = sandbox.EmulatorForArchName

// runScripts plans the scriptlets and triggers of installing sps and
// runs them when opts asks for it and the host can; what does not run is
// reported through opts.NotRun.
func runScripts(ctx context.Context, rt *tree.Root, meta *tree.Meta, plan *Plan, sps []*scriptPkg, opts InstallOptions) error {
	base, err := basePackages(opts.BaseRoot)
	if err != nil {
		return err
	}
	ordered := make([]*scriptPkg, 0, len(sps))
	for _, i := range installOrder(sps) {
		ordered = append(ordered, sps[i])
	}
	steps := planScripts(base, ordered)
	var all, cannot []string
	var runnable []step
	for _, s := range steps {
		all = append(all, s.describe())
		if s.s.why() != "" {
			cannot = append(cannot, s.describe())
		} else {
			runnable = append(runnable, s)
		}
	}
	notRun := func(l []string) {
		if opts.NotRun != nil && len(l) > 0 {
			opts.NotRun(l)
		}
	}
	warn := func(msg string) {
		if opts.Warn != nil {
			opts.Warn(msg)
		}
	}
	if !opts.Scripts {
		notRun(all)
		return nil
	}
	emu, err := findScriptEmulator(plan.Arch)
	if err != nil {
		notRun(all)
		if len(all) > 0 {
			warn(fmt.Sprintf("not running %d scriptlets and triggers (%v): %s", len(all), err, strings.Join(all, ", ")))
		}
		return nil
	}
	if len(cannot) > 0 {
		notRun(cannot)
		warn(fmt.Sprintf("%d scriptlets and triggers only rpm can run were not run: %s", len(cannot), strings.Join(cannot, ", ")))
	}
	if len(runnable) == 0 {
		return nil
	}
	if err := execSteps(ctx, rt, meta, runnable, emu, opts); err != nil {
		return err
	}
	return scrubScriptOutput(rt, meta)
}

// Paths inside the sandbox.
const (
	stepsDir   = "/run/sxb/rpm-scripts"
	driverPath = stepsDir + "/run"
)

// execSteps runs steps in a sandbox over the tree.
func execSteps(ctx context.Context, rt *tree.Root, meta *tree.Meta, steps []step, emu *sandbox.Emulator, opts InstallOptions) error {
	tmp, err := os.MkdirTemp("", "sxb-rpm-scripts-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	argvs := make([][]string, len(steps))
	for i, s := range steps {
		argv := append([]string(nil), s.s.Prog...)
		if s.s.Body != "" {
			name := "s" + strconv.Itoa(i)
			if err := os.WriteFile(filepath.Join(tmp, name), []byte(s.s.Body), 0o644); err != nil {
				return err
			}
			argv = append(argv, stepsDir+"/"+name)
			for _, a := range s.args {
				argv = append(argv, strconv.Itoa(a))
			}
		}
		argvs[i] = argv
		if s.input != nil {
			if err := os.WriteFile(filepath.Join(tmp, "i"+strconv.Itoa(i)), []byte(strings.Join(s.input, "\n")+"\n"), 0o644); err != nil {
				return err
			}
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, "run"), driver(steps, argvs), 0o644); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	so := sandbox.Options{
		Root: rt.Path(), Meta: meta, Chroot: true, // as rpm --root runs them
		Env:   []string{"PATH=/sbin:/bin:/usr/sbin:/usr/bin", "SOURCE_DATE_EPOCH=" + strconv.FormatInt(opts.Epoch, 10)},
		Binds: []sandbox.Bind{{Source: tmp, Target: stepsDir}},
	}
	if opts.BaseRoot != "" {
		bm, err := tree.LoadMeta(tree.MetaPath(opts.BaseRoot))
		if err != nil {
			return err
		}
		so.Lower, so.LowerMeta = []string{opts.BaseRoot}, []*tree.Meta{bm}
	}
	if emu != nil && !emu.Fixed() {
		so.Binds = append(so.Binds, emu.Bind())
	}
	var out stepLog
	so.Stdout = &out
	if opts.ScriptOutput != nil {
		so.Stdout = io.MultiWriter(&out, opts.ScriptOutput)
	}
	so.Stderr = so.Stdout
	if hasShell(rt, opts.BaseRoot) {
		so.Args = []string{"/bin/sh", driverPath}
		if _, err := sandbox.Run(ctx, so); err != nil {
			return fmt.Errorf("running scriptlets: %s", out.summary(err))
		}
		return nil
	}
	// No shell to drive them: one sandbox per step.
	for i, s := range steps {
		so.Args, so.Stdin = argvs[i], nil
		if s.input != nil {
			so.Stdin = strings.NewReader(strings.Join(s.input, "\n") + "\n")
		}
		if _, err := sandbox.Run(ctx, so); err != nil {
			var exit *sandbox.ExitError
			if errors.As(err, &exit) {
				return fmt.Errorf("running scriptlets: %s scriptlet failed (%v)%s", s.describe(), exit, out.tail())
			}
			return fmt.Errorf("running scriptlets: %s: %w", s.describe(), err)
		}
	}
	return nil
}

// hasShell says whether /bin/sh exists in the tree or the base (a link
// counts: the shell reports a dangling one itself).
func hasShell(rt *tree.Root, base string) bool {
	if _, err := rt.Lstat("bin/sh"); err == nil {
		return true
	}
	if base == "" {
		return false
	}
	b, err := tree.OpenRoot(base)
	if err != nil {
		return false
	}
	defer b.Close()
	_, err = b.Lstat("bin/sh")
	return err == nil
}

// driver is the shell program that runs the steps in order and stops at
// the first failure, saying which.
func driver(steps []step, argvs [][]string) []byte {
	var b bytes.Buffer
	b.WriteString(`cd / || exit 1
umask 022
failed() {
	echo "sxb: $1 scriptlet failed (exit status $2)" >&2
	exit 1
}
`)
	for i, s := range steps {
		q := make([]string, len(argvs[i]))
		for j, a := range argvs[i] {
			q[j] = shellQuote(a)
		}
		in := "/dev/null"
		if s.input != nil {
			in = stepsDir + "/i" + strconv.Itoa(i)
		}
		fmt.Fprintf(&b, "%s <%s || failed %s $?\n", strings.Join(q, " "), in, shellQuote(s.describe()))
	}
	return b.Bytes()
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// scrubScriptOutput removes what scriptlets leave that differs from run to
// run: ldconfig's auxiliary cache (inode numbers and times).
func scrubScriptOutput(rt *tree.Root, meta *tree.Meta) error {
	for _, rel := range []string{"var/cache/ldconfig/aux-cache"} {
		if err := rt.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		meta.Delete(rel)
	}
	return nil
}

// stepLog keeps the last lines the scriptlets print and the driver's
// failure report, for the error message.
type stepLog struct {
	out     sandbox.Tail
	failure string
}

func (l *stepLog) Write(p []byte) (int, error) {
	if l.out.Line == nil {
		l.out.Max = 10
		l.out.Line = func(s string, _ []string) bool {
			f, ok := strings.CutPrefix(s, "sxb: ")
			if ok {
				l.failure = f
			}
			return !ok
		}
	}
	return l.out.Write(p)
}

// tail is the last lines printed, to follow a message.
func (l *stepLog) tail() string {
	if t := l.out.String(); t != "" {
		return ":\n" + t
	}
	return ""
}

// summary describes a failed run.
func (l *stepLog) summary(err error) string {
	if l.failure != "" {
		return l.failure + l.tail()
	}
	return err.Error() + l.tail()
}
