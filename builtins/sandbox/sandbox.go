// Package sandbox runs a command with an image tree as its root file system,
// in fresh user, mount, PID, IPC, UTS and (unless asked otherwise) network
// namespaces, without any external tool: the running binary re-executes
// itself as the namespace's init. A program that uses Run must call Init
// first thing in main (and test binaries in TestMain).
//
// # The file system
//
// The root is an overlay: the tree being built (Options.Root) is the
// writable upper layer, Options.Lower are read-only layers beneath it (a
// base image), and at the very bottom a private scaffold layer holds the
// mount points the sandbox needs (proc, dev, tmp, run, bind targets), so
// none of them is ever created in the tree. Inside, /proc is the sandbox's
// own, /dev a tmpfs with null, zero, full, random, urandom and tty bound
// from the host plus a private devpts, shm and the usual symlinks, /tmp and
// /run are empty tmpfs. Nothing else of the host is visible but the
// directories and files a caller binds (read-only unless Bind.Writable).
//
// What the command deletes from a lower layer becomes an overlay whiteout
// in the upper tree. A rootless tree cannot hold whiteouts (they are device
// nodes), and an extension image must not either (mkosi's Overlay=yes drops
// them too), so after the run every whiteout is removed from the tree and
// reported in Result.Removed; directories the command replaced (overlay
// "opaque" directories) are reported in Result.Opaque and lose the marker.
// Deleting what exists in the upper tree only simply deletes it.
//
// # Users and ownership
//
// Trees are rootless: files on disk belong to the builder and owners,
// setuid bits and devices live in the tree's tree.Meta. Before the run the
// Meta's owners and modes are applied to the upper tree, so the command sees
// them; after it, the tree is walked, what the command left (owners, modes,
// security.capability and user.* extended attributes) is recorded in the
// Meta and the files are given back to the builder. The Meta therefore ends
// up the same whoever ran the build, given the same ids could be mapped:
//
//   - As root, the sandbox's ids 0-65535 are the host's "foreign" range
//     (ForeignUIDBase, as systemd defines it), never host root, and every
//     layer is an idmapped mount, so on-disk id n is id n inside.
//   - As another user with a range in /etc/subuid and /etc/subgid and
//     newuidmap/newgidmap installed, the user is root inside and the range
//     provides ids 1 and up (up to 65535).
//   - Without such a range only root exists inside: the Meta's other owners
//     are kept but not shown, and a chown to another id fails; ExitError says
//     why.
//
// Lower layers are not written to; their Meta is consulted for files the
// command copies up (Options.LowerMeta).
//
// # Environment and network
//
// The command's environment is exactly BaseEnv plus Options.Env (which wins
// on a name both set). Without Options.Network the sandbox has its own
// network namespace with only a loopback interface: no host socket,
// abstract or TCP, is reachable. With it, the command shares the host's
// network namespace and sees the host's resolv.conf; an isolated namespace
// with only loopback and the host's resolver would need a user-mode network
// stack (slirp4netns, pasta), which this package deliberately does not
// depend on.
//
// Cancelling the context kills every process of the sandbox (the PID
// namespace goes with its init); the tree is still given back to the
// builder before Run returns.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sxb-build/sxb/builtins/tree"
)

// BaseEnv is the environment every command starts from; Options.Env adds to
// it and overrides it. Nothing of the builder's environment is passed on.
var BaseEnv = []string{
	"HOME=/root",
	"LANG=C.UTF-8",
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"TZ=UTC",
}

// Bind makes a host file or directory visible inside the sandbox.
type Bind struct {
	// Source is the host path (a directory or a file).
	Source string
	// Target is the absolute path inside the sandbox. Symlinks in it are
	// resolved inside the tree; what is missing is created in the
	// scaffold layer, never in the tree.
	Target string
	// Writable allows writes; binds are read-only otherwise.
	Writable bool
}

// Link is a symbolic link made in the sandbox's own root (Options.TreeAt).
type Link struct {
	// Path is the absolute path of the link inside the sandbox.
	Path string `json:"path"`
	// Target is what the link points to, as written.
	Target string `json:"target"`
}

// Options describe one command run.
type Options struct {
	// Root is the writable tree (the overlay's upper layer), a host
	// directory. Required.
	Root string
	// Meta is Root's metadata sidecar; it is applied before the run and
	// updated after it. May be nil when the tree has none (a new one is
	// not created: then what the command changed of owners is lost).
	Meta *tree.Meta
	// Lower are read-only trees beneath Root, the top-most first.
	Lower []string
	// LowerMeta are the sidecars of Lower (same order, entries may be
	// nil): a file the command copies up from a lower tree keeps the
	// owner and mode the lower tree's Meta records for it.
	LowerMeta []*tree.Meta
	// Args is the command and its arguments. A name without a slash is
	// looked up in the PATH of the command's environment, inside.
	Args []string
	// Env is added to BaseEnv ("NAME=value").
	Env []string
	// Dir is the working directory inside (default "/").
	Dir string
	// Stdin, Stdout and Stderr are the command's streams; nil means
	// /dev/null.
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Network shares the host's network namespace (see the package
	// comment); by default the sandbox has loopback only.
	Network bool
	// Binds are host paths made visible inside.
	Binds []Bind
	// Hostname is the sandbox's host name (default "sxb").
	Hostname string
	// TreeAt, when set, mounts the tree (Root over Lower) at that absolute
	// path instead of at "/": the sandbox's root is then an empty tmpfs
	// with /proc, /dev, /tmp, /run, the binds and Links, so a command
	// from the host's tools (bound read-only) can work on the tree, as
	// mkosi runs scripts on $BUILDROOT. Binds may not target the tree.
	TreeAt string
	// Links are symbolic links made in the sandbox's root (TreeAt only),
	// such as /bin -> usr/bin beside a bound /usr.
	Links []Link
	// Chroot runs the command chrooted into the tree while the sandbox's
	// init keeps a root of its own (an otherwise empty tmpfs), as a
	// package manager installing into --root runs scripts: ischroot(1) and
	// systemd-detect-virt --chroot then see a chroot, and scripts skip
	// what only a running system needs (Debian's libc6 postinst no longer
	// re-executes init and sleeps a second). Not with TreeAt.
	Chroot bool
}

// Result tells what a run did besides writing the tree.
type Result struct {
	// Removed lists the paths (relative, slash-separated, sorted) the
	// command deleted from a lower layer. Their whiteouts were dropped from
	// the tree, so the tree alone does not delete them.
	Removed []string
	// Opaque lists directories of the tree that hid a lower directory's
	// entries (the command removed the directory and made a new one).
	Opaque []string
	// IDs says which ids existed inside.
	IDs IDMode
}

// IDMode says which user and group ids a sandbox could use.
type IDMode int

// The id mappings Run uses.
const (
	// IDsForeign: run by root, ids 0-65535 are the host's foreign range.
	IDsForeign IDMode = iota
	// IDsSubordinate: run by another user with a subordinate id range.
	IDsSubordinate
	// IDsRootOnly: only root exists inside.
	IDsRootOnly
)

func (m IDMode) String() string {
	switch m {
	case IDsForeign:
		return "foreign range (run as root)"
	case IDsSubordinate:
		return "subordinate ids"
	case IDsRootOnly:
		return "root only"
	}
	return fmt.Sprintf("IDMode(%d)", int(m))
}

// ExitError is returned when the command ran but did not exit with status 0.
type ExitError struct {
	// Code is the exit status, or -1 when a signal killed the command.
	Code int
	// Signal is the signal that killed the command, 0 if none.
	Signal int
	// IDs says which ids existed inside; with IDsRootOnly a failed chown
	// is a likely cause and Error says so.
	IDs IDMode
	// User is the builder's user name (for the hint in Error).
	User string
}

// Error describes the exit status and, when only root was mapped, why a
// command that changes owners cannot work.
func (e *ExitError) Error() string {
	var s string
	if e.Signal != 0 {
		s = fmt.Sprintf("killed by signal %d", e.Signal)
	} else {
		s = fmt.Sprintf("exited with status %d", e.Code)
	}
	if e.IDs == IDsRootOnly {
		s += fmt.Sprintf(" (only root exists in the sandbox, so changing a file's owner to another user fails: give %s a range of 65536 ids in /etc/subuid and /etc/subgid and install newuidmap/newgidmap, or build as root)", e.User)
	}
	return s
}

// ErrNotInitialized is returned by Run when the program did not call Init.
var ErrNotInitialized = errors.New("sandbox: Init was not called at the start of main (or TestMain)")

// Run runs opts.Args in a sandbox and waits for it. A command that exits
// with a status other than 0 gives an *ExitError, with the Result of the run
// (the tree was changed all the same).
func Run(ctx context.Context, opts Options) (*Result, error) {
	if !initCalled {
		return nil, ErrNotInitialized
	}
	if opts.Root == "" || len(opts.Args) == 0 {
		return nil, errors.New("sandbox: a root tree and a command are required")
	}
	if opts.LowerMeta != nil && len(opts.LowerMeta) != len(opts.Lower) {
		return nil, errors.New("sandbox: LowerMeta must have one entry per lower tree")
	}
	cfg, err := newKeeperConfig(opts)
	if err != nil {
		return nil, err
	}
	// The overlay needs a work directory on the upper tree's file system.
	w, err := os.MkdirTemp(filepath.Dir(cfg.Upper), ".sxb-work-")
	if err != nil {
		return nil, fmt.Errorf("sandbox: making the overlay work directory: %w", err)
	}
	cfg.Work = w
	defer removeWorkDir(w)
	ids, err := chooseIDs()
	if err != nil {
		return nil, err
	}
	cfg.IDs = ids.mode
	var rep *keeperReport
	if ids.mode == IDsForeign {
		rep, err = keep(ctx, cfg, streams{opts.Stdin, opts.Stdout, opts.Stderr})
	} else {
		rep, err = runKeeper(ctx, cfg, ids, streams{opts.Stdin, opts.Stdout, opts.Stderr})
	}
	if err != nil {
		return nil, err
	}
	res := &Result{Removed: rep.Removed, Opaque: rep.Opaque, IDs: ids.mode}
	if opts.Meta != nil {
		for _, p := range opts.Meta.Paths() {
			opts.Meta.Delete(p)
		}
		for p, o := range rep.Meta {
			opts.Meta.Set(p, o)
		}
	}
	if rep.Err != "" {
		if ctx.Err() != nil {
			return res, fmt.Errorf("sandbox: %s: %w", rep.Err, ctx.Err())
		}
		return res, fmt.Errorf("sandbox: %s", rep.Err)
	}
	if rep.Signal != 0 || rep.Code != 0 {
		code := rep.Code
		if rep.Signal != 0 {
			code = -1
		}
		return res, &ExitError{Code: code, Signal: rep.Signal, IDs: ids.mode, User: ids.user}
	}
	return res, nil
}

// newKeeperConfig checks opts and turns them into what the keeper needs.
func newKeeperConfig(opts Options) (*keeperConfig, error) {
	upper, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	if st, err := os.Stat(upper); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("sandbox: root tree %s is not a directory", opts.Root)
	}
	cfg := &keeperConfig{Upper: upper, Meta: metaMap(opts.Meta), LowerMeta: map[string]tree.Override{}}
	// The top-most lower tree's entry wins, as its file does.
	for i := len(opts.LowerMeta) - 1; i >= 0; i-- {
		for p, o := range metaMap(opts.LowerMeta[i]) {
			cfg.LowerMeta[p] = o
		}
	}
	for _, l := range opts.Lower {
		a, err := filepath.Abs(l)
		if err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		if st, err := os.Stat(a); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("sandbox: lower tree %s is not a directory", l)
		}
		cfg.Lower = append(cfg.Lower, a)
	}
	c := &cfg.Container
	c.Args = append([]string(nil), opts.Args...)
	c.Env = mergeEnv(BaseEnv, opts.Env)
	c.Dir = opts.Dir
	if c.Dir == "" {
		c.Dir = "/"
	}
	if !strings.HasPrefix(c.Dir, "/") {
		return nil, fmt.Errorf("sandbox: working directory %q is not absolute", opts.Dir)
	}
	c.Hostname = opts.Hostname
	if c.Hostname == "" {
		c.Hostname = "sxb"
	}
	c.Network = opts.Network
	c.Chroot = opts.Chroot
	if opts.Chroot && opts.TreeAt != "" {
		return nil, errors.New("sandbox: Chroot and TreeAt exclude each other")
	}
	if opts.TreeAt != "" {
		c.TreeAt = path.Clean(opts.TreeAt)
		if !strings.HasPrefix(c.TreeAt, "/") || c.TreeAt == "/" {
			return nil, fmt.Errorf("sandbox: TreeAt %q is not an absolute path below /", opts.TreeAt)
		}
	}
	for _, l := range opts.Links {
		if c.TreeAt == "" {
			return nil, errors.New("sandbox: Links need TreeAt (the tree is the root otherwise)")
		}
		if !strings.HasPrefix(l.Path, "/") || path.Clean(l.Path) == "/" {
			return nil, fmt.Errorf("sandbox: link %q is not an absolute path below /", l.Path)
		}
		if under(path.Clean(l.Path), c.TreeAt) {
			return nil, fmt.Errorf("sandbox: link %s is inside the tree at %s", l.Path, c.TreeAt)
		}
		c.Links = append(c.Links, Link{Path: path.Clean(l.Path), Target: l.Target})
	}
	for _, b := range opts.Binds {
		src, err := filepath.Abs(b.Source)
		if err != nil {
			return nil, fmt.Errorf("sandbox: bind %s: %w", b.Source, err)
		}
		if _, err := os.Stat(src); err != nil {
			return nil, fmt.Errorf("sandbox: bind: %w", err)
		}
		if !strings.HasPrefix(b.Target, "/") {
			return nil, fmt.Errorf("sandbox: bind target %q is not absolute", b.Target)
		}
		if c.TreeAt != "" && under(path.Clean(b.Target), c.TreeAt) {
			return nil, fmt.Errorf("sandbox: bind target %s is inside the tree at %s", b.Target, c.TreeAt)
		}
		c.Binds = append(c.Binds, Bind{Source: src, Target: b.Target, Writable: b.Writable})
	}
	return cfg, nil
}

// under says whether the clean absolute path p is dir or below it.
func under(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// metaMap copies m's entries (none for nil).
func metaMap(m *tree.Meta) map[string]tree.Override {
	out := map[string]tree.Override{}
	if m == nil {
		return out
	}
	for _, p := range m.Paths() {
		out[p], _ = m.Get(p)
	}
	return out
}

// mergeEnv returns base with extra applied: a later NAME= replaces an
// earlier one, in place; the result is sorted by name.
func mergeEnv(base, extra []string) []string {
	m := map[string]string{}
	for _, kv := range append(append([]string(nil), base...), extra...) {
		name, _, _ := strings.Cut(kv, "=")
		m[name] = kv
	}
	out := make([]string, 0, len(m))
	for _, kv := range m {
		out = append(out, kv)
	}
	sort.Strings(out)
	return out
}

// removeWorkDir removes an overlay work directory, whose "work" subdirectory
// the kernel leaves without permissions.
func removeWorkDir(dir string) {
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700) // before WalkDir reads it
		}
		return nil
	})
	os.RemoveAll(dir)
}

// streams are the command's standard streams.
type streams struct {
	in       io.Reader
	out, err io.Writer
}
