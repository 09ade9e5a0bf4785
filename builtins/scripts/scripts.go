// Package scripts runs mkosi's image build scripts (mkosi.prepare,
// mkosi.build, mkosi.postinst, mkosi.finalize, mkosi.postoutput, mkosi.sync,
// mkosi.clean and their .chroot variants) with mkosi's contract: the same
// arguments, environment variables, working directory and mounts, through
// builtins/sandbox.
//
// A script named *.chroot runs inside the image tree (the tree is the
// root, $BUILDROOT is "/"). Any other script runs on an otherwise empty
// root holding the host's tools read-only (/usr and the merged-/usr links,
// a few /etc files), with the tree mounted at /buildroot — as mkosi runs
// scripts when no tools tree is configured. In both cases the script is at
// /work/<phase>, the sources at /work/src (read-only; the working
// directory), $DESTDIR at /work/dest, $BUILDDIR at /work/build and
// $OUTPUTDIR at /work/out. Only those last three are writable host paths,
// and only in the phases mkosi makes them writable in. Without
// Config.WithNetwork the script has loopback only and cannot reach the
// host's.
package scripts

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/sxb-build/sxb/builtins/sandbox"
	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/arch"
)

// Phase is when a script runs; its name is mkosi's file suffix.
type Phase string

// The phases, in the order of a build.
const (
	Sync       Phase = "sync"
	Prepare    Phase = "prepare"
	Build      Phase = "build"
	PostInst   Phase = "postinst"
	Finalize   Phase = "finalize"
	PostOutput Phase = "postoutput"
	Clean      Phase = "clean"
)

// Phases lists every phase in build order (clean last).
var Phases = []Phase{Sync, Prepare, Build, PostInst, Finalize, PostOutput, Clean}

// hasTree says whether scripts of the phase see the image ($BUILDROOT).
func (p Phase) hasTree() bool {
	return p == Prepare || p == Build || p == PostInst || p == Finalize
}

// scriptPath is where the script is bound inside the sandbox (mkosi's).
func (p Phase) scriptPath() string {
	if p == Build {
		return "/work/build-script"
	}
	return "/work/" + string(p)
}

// Paths inside the sandbox, as mkosi mounts them.
const (
	BuildRoot = "/buildroot"
	SrcDir    = "/work/src"
	DestDir   = "/work/dest"
	BuildDir  = "/work/build"
	OutputDir = "/work/out"
)

// Config is what the scripts of one image are told about it.
type Config struct {
	Distribution string
	Release      string
	Architecture arch.Arch
	ImageID      string
	ImageVersion string
	Profiles     []string
	// Environment is Environment= (NAME=value, in order; a later one
	// wins). PassEnvironment names host variables passed on when set;
	// EnvironmentFiles are files of NAME=value lines read first.
	Environment      []string
	PassEnvironment  []string
	EnvironmentFiles []string
	// Epoch is $SOURCE_DATE_EPOCH.
	Epoch       int64
	WithNetwork bool
	WithDocs    bool
	// UID and GID are $MKOSI_UID and $MKOSI_GID: the builder's ids.
	UID, GID int
	// MkosiConfig, when set, is the image's configuration as mkosi dumps
	// it (one image of "mkosi --json summary"): bound read-only at
	// ConfigPath and named by $MKOSI_CONFIG.
	MkosiConfig []byte
	// SandboxTrees are host directories whose files and links the scripts
	// that run on the host's tools see at their Target (mkosi's
	// SandboxTrees=: configuration the tools read, such as /etc/apt).
	SandboxTrees []SandboxTree
}

// SandboxTree is a host directory (Source) seen at Target ("" or "/":
// the root) by scripts that run on the host's tools.
type SandboxTree struct{ Source, Target string }

// ConfigPath is where $MKOSI_CONFIG points inside the sandbox (mkosi's).
const ConfigPath = "/work/config.json"

// UserEnv is the environment the user configured, resolved: the
// environment files, the passed host variables, then Environment.
// It is what an action key must cover of the user's environment.
func (c *Config) UserEnv() ([]string, error) {
	var env []string
	for _, f := range c.EnvironmentFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("environment file: %w", err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, v, ok := strings.Cut(line, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("%s:%d: %q is not NAME=value", f, i+1, line)
			}
			env = append(env, k+"="+unquote(v))
		}
	}
	for _, name := range c.PassEnvironment {
		if v, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}
	return append(env, c.Environment...), nil
}

// unquote removes one level of matching quotes, as an environment file
// line may have.
func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}

// efiArch is the UEFI name of an architecture ("" when it has none).
var efiArch = map[string]string{"x86-64": "x64", "x86": "ia32", "arm64": "aa64", "arm": "arm",
	"riscv64": "riscv64", "loongarch64": "loongarch64"}

// distArch is the architecture as the distribution's package manager
// spells it.
func (c *Config) distArch() string {
	switch c.Distribution {
	case "debian", "ubuntu", "kali":
		return c.Architecture.Debian()
	case "arch":
		return c.Architecture.Pacman()
	}
	return c.Architecture.RPM()
}

// Environ is the environment of a script of phase p (chroot: a .chroot
// script), as mkosi sets it; withBuildDir says a build directory is
// mounted. The user's environment (UserEnv) is added last by Execute.
func (c *Config) Environ(p Phase, chroot, withBuildDir bool) []string {
	env := map[string]string{
		"DISTRIBUTION": c.Distribution, "RELEASE": c.Release,
		"ARCHITECTURE": c.Architecture.Mkosi(), "DISTRIBUTION_ARCHITECTURE": c.distArch(),
		"SRCDIR": SrcDir, "MKOSI_UID": strconv.Itoa(c.UID), "MKOSI_GID": strconv.Itoa(c.GID),
		"MKOSI_DEBUG": "0",
	}
	if e := efiArch[c.Architecture.Systemd()]; e != "" {
		env["EFI_ARCHITECTURE"] = e
	}
	if c.ImageID != "" {
		env["IMAGE_ID"] = c.ImageID
	}
	if c.ImageVersion != "" {
		env["IMAGE_VERSION"] = c.ImageVersion
	}
	if len(c.Profiles) > 0 && p != PostOutput {
		env["PROFILES"] = strings.Join(c.Profiles, " ")
	}
	if p != Sync && p != PostOutput {
		env["SOURCE_DATE_EPOCH"] = strconv.FormatInt(c.Epoch, 10)
	}
	if p.hasTree() {
		env["BUILDROOT"] = BuildRoot
		env["CHROOT_SRCDIR"] = SrcDir
		env["SCRIPT"] = p.scriptPath()
		env["CHROOT_SCRIPT"] = p.scriptPath()
		env["WITH_NETWORK"] = oneZero(c.WithNetwork)
		if chroot {
			env["BUILDROOT"] = "/"
			env["container"] = "mkosi"
			env["HOME"] = "/"
			env["PATH"] = "/usr/bin:/usr/sbin"
		}
	}
	if p == Prepare || p == Build {
		env["WITH_DOCS"] = oneZero(c.WithDocs)
		env["WITH_TESTS"] = "1"
	}
	if p == Build {
		env["DESTDIR"], env["CHROOT_DESTDIR"] = DestDir, DestDir
	}
	if withBuildDir && (p == Build || p == PostInst || p == Finalize) {
		env["BUILDDIR"] = BuildDir
		if p == Build {
			env["CHROOT_BUILDDIR"] = BuildDir
		}
	}
	if p == PostInst || p == Finalize || p == PostOutput || p == Clean {
		env["OUTPUTDIR"] = OutputDir
		if p == PostInst || p == Finalize {
			env["CHROOT_OUTPUTDIR"] = OutputDir
		}
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

func oneZero(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// Run is one script run.
type Run struct {
	Phase Phase
	// Script is the script's host path.
	Script string
	// Arg is the script's argument ("final" or "build" for prepare;
	// mkosi gives postinst and sync "final" too), "" for none.
	Arg string
	// Tree is the image tree (the overlay's writable upper layer) for
	// the phases that see it, with its Meta, and Lower/LowerMeta beneath
	// it (a base image, or the image itself under a throw-away build
	// overlay).
	Tree      string
	Meta      *tree.Meta
	Lower     []string
	LowerMeta []*tree.Meta
	// SrcDir is mounted read-only at /work/src ("" : an empty
	// directory).
	SrcDir string
	// DestDir (build), BuildDir and OutputDir are host directories
	// mounted at $DESTDIR, $BUILDDIR and $OUTPUTDIR. BuildDir is writable
	// for build scripts only.
	DestDir, BuildDir, OutputDir string
	// Output receives the script's stdout and stderr (nil: discarded);
	// the last lines are kept for the error either way.
	Output io.Writer
}

// Error is a script that did not succeed.
type Error struct {
	Phase  Phase
	Script string
	// Err is the sandbox's error (a *sandbox.ExitError when the script
	// ran and failed).
	Err error
	// Tail are the script's last output lines.
	Tail []string
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s script %s %v", e.Phase, filepath.Base(e.Script), e.Err)
	if len(e.Tail) > 0 {
		s += "; its last output lines:\n    " + strings.Join(e.Tail, "\n    ")
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// TailLines is how many output lines an Error keeps.
const TailLines = 20

// Execute runs r's script with c's contract. A script that fails gives an
// *Error.
func (c *Config) Execute(ctx context.Context, r Run) (*sandbox.Result, error) {
	if r.Script == "" {
		return nil, fmt.Errorf("%s script: no script given", r.Phase)
	}
	st, err := os.Stat(r.Script)
	if err != nil {
		return nil, fmt.Errorf("%s script: %w", r.Phase, err)
	}
	if !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("%s script %s is not an executable file", r.Phase, r.Script)
	}
	chroot := strings.HasSuffix(r.Script, ".chroot")
	if chroot && !r.Phase.hasTree() {
		return nil, fmt.Errorf("%s script %s: only prepare, build, postinst and finalize scripts may run in the image (.chroot)", r.Phase, r.Script)
	}
	if r.Phase.hasTree() && r.Tree == "" {
		return nil, fmt.Errorf("%s script %s: no image tree given", r.Phase, r.Script)
	}
	user, err := c.UserEnv()
	if err != nil {
		return nil, err
	}
	scratch, err := os.MkdirTemp("", "sxb-script-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	os.Chmod(scratch, 0o755)
	src := r.SrcDir
	if src == "" {
		src = filepath.Join(scratch, "src")
		if err := os.Mkdir(src, 0o755); err != nil {
			return nil, err
		}
	}
	binds := []sandbox.Bind{
		{Source: r.Script, Target: r.Phase.scriptPath()},
		{Source: src, Target: SrcDir},
	}
	if r.Phase == Build {
		if r.DestDir == "" {
			return nil, fmt.Errorf("build script %s: no $DESTDIR given", r.Script)
		}
		binds = append(binds, sandbox.Bind{Source: r.DestDir, Target: DestDir, Writable: true})
	}
	if r.BuildDir != "" && (r.Phase == Build || r.Phase == PostInst || r.Phase == Finalize) {
		binds = append(binds, sandbox.Bind{Source: r.BuildDir, Target: BuildDir, Writable: r.Phase == Build})
	}
	if r.OutputDir != "" && (r.Phase == PostInst || r.Phase == Finalize || r.Phase == PostOutput || r.Phase == Clean) {
		binds = append(binds, sandbox.Bind{Source: r.OutputDir, Target: OutputDir, Writable: true})
	}
	env := c.Environ(r.Phase, chroot, r.BuildDir != "")
	if len(c.MkosiConfig) > 0 {
		f := filepath.Join(scratch, "config.json")
		if err := os.WriteFile(f, c.MkosiConfig, 0o644); err != nil {
			return nil, err
		}
		binds = append(binds, sandbox.Bind{Source: f, Target: ConfigPath})
		env = append(env, "MKOSI_CONFIG="+ConfigPath)
	}
	opts := sandbox.Options{
		Args: []string{r.Phase.scriptPath()}, Dir: SrcDir, Network: c.WithNetwork,
		Env: append(env, user...),
	}
	if r.Arg != "" {
		opts.Args = append(opts.Args, r.Arg)
	}
	switch {
	case chroot:
		opts.Root, opts.Meta, opts.Lower, opts.LowerMeta = r.Tree, r.Meta, r.Lower, r.LowerMeta
		opts.Binds = binds
	case r.Phase.hasTree():
		opts.Root, opts.Meta, opts.Lower, opts.LowerMeta = r.Tree, r.Meta, r.Lower, r.LowerMeta
		opts.TreeAt = BuildRoot
		opts.Binds, opts.Links = HostTools()
		if opts.Binds, opts.Links, err = c.withSandboxTrees(opts.Binds, opts.Links); err != nil {
			return nil, err
		}
		opts.Binds = append(opts.Binds, binds...)
	default:
		// No image: a scratch directory is the tree, at /var/tmp.
		vt := filepath.Join(scratch, "var-tmp")
		if err := os.Mkdir(vt, 0o755); err != nil {
			return nil, err
		}
		opts.Root, opts.TreeAt = vt, "/var/tmp"
		opts.Binds, opts.Links = HostTools()
		if opts.Binds, opts.Links, err = c.withSandboxTrees(opts.Binds, opts.Links); err != nil {
			return nil, err
		}
		opts.Binds = append(opts.Binds, binds...)
	}
	tail := &sandbox.Tail{Max: TailLines}
	var out io.Writer = tail
	if r.Output != nil {
		out = io.MultiWriter(tail, r.Output)
	}
	opts.Stdout, opts.Stderr = out, out
	res, err := sandbox.Run(ctx, opts)
	if err != nil {
		return res, &Error{Phase: r.Phase, Script: r.Script, Err: err, Tail: tail.Lines()}
	}
	return res, nil
}

// hostEtc are the host's /etc entries the host's tools need (users,
// name service, alternatives, certificates), bound read-only when they
// exist.
var hostEtc = []string{"alternatives", "group", "passwd", "nsswitch.conf", "ld.so.cache", "ssl", "ca-certificates", "ca-certificates.conf", "services", "protocols"}

// HostTools returns the binds and links that show the host's tools,
// read-only: /usr, the top-level directories merged into it (a link
// where the host has one, else a bind) and some of /etc.
func HostTools() ([]sandbox.Bind, []sandbox.Link) {
	binds := []sandbox.Bind{{Source: "/usr", Target: "/usr"}}
	var links []sandbox.Link
	for _, d := range []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"} {
		p := "/" + d
		fi, err := os.Lstat(p)
		switch {
		case err != nil:
		case fi.Mode()&os.ModeSymlink != 0:
			if target, err := os.Readlink(p); err == nil {
				links = append(links, sandbox.Link{Path: p, Target: target})
			}
		case fi.IsDir():
			binds = append(binds, sandbox.Bind{Source: p, Target: p})
		}
	}
	for _, e := range hostEtc {
		p := "/etc/" + e
		if _, err := os.Stat(p); err == nil {
			binds = append(binds, sandbox.Bind{Source: p, Target: p})
		}
	}
	return binds, links
}

// withSandboxTrees adds the files and links of c.SandboxTrees to the host
// tools' binds and links: each file is bound read-only at its place (a
// later tree's file, or a tree's, replaces an earlier one or the host's);
// directories exist as the files need them. What a tree has below /usr
// (and the merged-/usr links) is left out: the host's /usr is bound whole.
// Places the sandbox owns (the image at /buildroot, /work, /proc, /dev,
// /var/tmp) are refused.
func (c *Config) withSandboxTrees(binds []sandbox.Bind, links []sandbox.Link) ([]sandbox.Bind, []sandbox.Link, error) {
	// The host's /usr is bound read-only as a whole: what a tree has
	// there (package managers' keyrings, mostly) cannot be placed in it
	// and is left out.
	hostUsr := []string{"/usr"}
	for _, l := range links {
		hostUsr = append(hostUsr, l.Path)
	}
	reserved := []string{BuildRoot, "/work", "/proc", "/dev", "/var/tmp"}
	for _, st := range c.SandboxTrees {
		top := path.Join("/", st.Target)
		err := filepath.WalkDir(st.Source, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(st.Source, p)
			target := path.Join(top, filepath.ToSlash(rel))
			for _, r := range hostUsr {
				if target == r || strings.HasPrefix(target, r+"/") {
					if d.IsDir() {
						return filepath.SkipDir
					}
					return nil
				}
			}
			for _, r := range reserved {
				if target == r || strings.HasPrefix(target, r+"/") {
					return fmt.Errorf("%s: scripts take %s from the sandbox (the image, mkosi's /work, the kernel's file systems), not from a sandbox tree", p, r)
				}
			}
			switch {
			case d.IsDir():
				return nil
			case d.Type()&fs.ModeSymlink != 0:
				lt, err := os.Readlink(p)
				if err != nil {
					return err
				}
				binds = slices.DeleteFunc(binds, func(b sandbox.Bind) bool { return b.Target == target })
				links = append(slices.DeleteFunc(links, func(l sandbox.Link) bool { return l.Path == target }), sandbox.Link{Path: target, Target: lt})
			case d.Type().IsRegular():
				links = slices.DeleteFunc(links, func(l sandbox.Link) bool { return l.Path == target })
				binds = append(slices.DeleteFunc(binds, func(b sandbox.Bind) bool { return b.Target == target }), sandbox.Bind{Source: p, Target: target})
			default:
				return fmt.Errorf("%s: not a file, directory or symbolic link", p)
			}
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("sandbox tree %s: %w", st.Source, err)
		}
	}
	return binds, links, nil
}

// Output runs program (an executable host file, such as mkosi.version)
// on the host's tools in the sandbox, without network, with srcDir
// read-only at /work/src as its working directory, and returns its
// standard output. A failure is an *Error with its last lines of standard
// error.
func Output(ctx context.Context, program, srcDir string) ([]byte, error) {
	st, err := os.Stat(program)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("%s is not an executable file", program)
	}
	scratch, err := os.MkdirTemp("", "sxb-program-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	os.Chmod(scratch, 0o755)
	vt := filepath.Join(scratch, "var-tmp")
	if err := os.Mkdir(vt, 0o755); err != nil {
		return nil, err
	}
	const at = "/work/program"
	binds, links := HostTools()
	binds = append(binds, sandbox.Bind{Source: program, Target: at}, sandbox.Bind{Source: srcDir, Target: SrcDir})
	var out bytes.Buffer
	tail := &sandbox.Tail{Max: TailLines}
	_, err = sandbox.Run(ctx, sandbox.Options{Root: vt, TreeAt: "/var/tmp", Binds: binds, Links: links,
		Args: []string{at}, Dir: SrcDir, Stdout: &out, Stderr: tail})
	if err != nil {
		return nil, &Error{Phase: "version", Script: program, Err: err, Tail: tail.Lines()}
	}
	return out.Bytes(), nil
}
