package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sxb-build/sxb/builtins/tree"
)

// The keeper owns one run: it shows the tree's Meta on disk, starts the
// sandbox's init, waits for it and settles the tree afterwards. As root it
// runs in the calling process; for another user it is a re-executed process
// in a new user namespace (see runKeeper), because only there the sandbox's
// ids can be changed.

// keeperConfig is one run as the keeper sees it.
type keeperConfig struct {
	Upper string `json:"upper"`
	// Work holds the overlay's work directory and the init's staging
	// mount point; it is a sibling of Upper.
	Work      string                   `json:"work"`
	Lower     []string                 `json:"lower"`
	Meta      map[string]tree.Override `json:"meta"`
	LowerMeta map[string]tree.Override `json:"lower_meta"`
	IDs       IDMode                   `json:"ids"`
	Container containerConfig          `json:"container"`
}

// keeperReport is the outcome of a run.
type keeperReport struct {
	Code    int                      `json:"code"`
	Signal  int                      `json:"signal"`
	Err     string                   `json:"err"`
	Meta    map[string]tree.Override `json:"meta"`
	Removed []string                 `json:"removed"`
	Opaque  []string                 `json:"opaque"`
}

// keep runs cfg. An error means the tree could not be settled; a failed
// setup or command is reported in the report.
func keep(ctx context.Context, cfg *keeperConfig, st streams) (*keeperReport, error) {
	rep := &keeperReport{}
	before, err := shown(cfg.Upper, cfg.Meta, cfg.IDs != IDsRootOnly)
	if err != nil {
		rep.Err = err.Error()
	} else {
		rep.Code, rep.Signal, err = runInit(ctx, cfg, st)
		if err != nil {
			rep.Err = err.Error()
		}
	}
	s, err := settle(cfg.Upper, cfg.Meta, cfg.LowerMeta, before)
	if err != nil {
		return nil, fmt.Errorf("sandbox: settling the tree: %w", err)
	}
	rep.Meta, rep.Removed, rep.Opaque = s.meta, s.removed, s.opaque
	return rep, nil
}

// runInit starts the sandbox's init, hands it the configuration (and, as
// root, the idmapped layers) and waits for it.
func runInit(ctx context.Context, cfg *keeperConfig, st streams) (code, sig int, err error) {
	work := filepath.Join(cfg.Work, "work")
	if err := os.Mkdir(work, 0o700); err != nil {
		return 0, 0, err
	}
	c := cfg.Container
	c.Lower, c.Upper, c.Work = cfg.Lower, cfg.Upper, work
	if c.Network {
		if _, err := os.Stat("/etc/resolv.conf"); err == nil {
			c.Binds = append(c.Binds, Bind{Source: "/etc/resolv.conf", Target: "/etc/resolv.conf"})
		}
	}
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, 0, err
	}
	mine := os.NewFile(uintptr(sp[0]), "sandbox-init")
	defer mine.Close()
	theirs := os.NewFile(uintptr(sp[1]), "sandbox-init")
	flags := uintptr(unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS)
	if !c.Network {
		flags |= unix.CLONE_NEWNET
	}
	attr := &syscall.SysProcAttr{Cloneflags: flags, Pdeathsig: syscall.SIGKILL}
	if cfg.IDs == IDsForeign {
		attr.Cloneflags |= unix.CLONE_NEWUSER
		attr.UidMappings, attr.GidMappings = foreignMappings(), foreignMappings()
		attr.GidMappingsEnableSetgroups = true
		// Become the namespace's root: the host id of the process is still
		// root's, which the namespace does not map.
		attr.Credential = &syscall.Credential{Uid: 0, Gid: 0}
		c.Cloned = true
	}
	cmd := &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        []string{roleInit},
		Env:         []string{},
		ExtraFiles:  []*os.File{theirs},
		SysProcAttr: attr,
	}
	setStreams(cmd, st)
	if err := cmd.Start(); err != nil {
		theirs.Close()
		return 0, 0, fmt.Errorf("starting the sandbox: %w", err)
	}
	theirs.Close()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			cmd.Process.Kill()
		case <-done:
		}
	}()
	var fds []int
	if c.Cloned {
		fds, err = cloneAsRoot(cmd.Process.Pid, &c)
		defer closeAll(fds...)
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return 0, 0, err
		}
	}
	b, err := json.Marshal(c)
	if err == nil {
		var oob []byte
		if len(fds) > 0 {
			oob = unix.UnixRights(fds...)
		}
		err = unix.Sendmsg(sp[0], b, oob, nil, 0)
	}
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return 0, 0, fmt.Errorf("configuring the sandbox: %w", err)
	}
	var msg *initMessage
	buf := make([]byte, 64<<10)
	for {
		n, _, _, _, err := unix.Recvmsg(sp[0], buf, nil, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			break
		}
		var m initMessage
		if json.Unmarshal(buf[:n], &m) == nil {
			msg = &m
		}
	}
	werr := cmd.Wait()
	switch {
	case msg == nil && ctx.Err() != nil:
		return 0, 0, fmt.Errorf("cancelled")
	case msg == nil:
		return 0, 0, fmt.Errorf("the sandbox's init died: %v", werr)
	case msg.Error != "":
		return 0, 0, errors.New(msg.Error)
	}
	return msg.Exit, msg.Signal, nil
}

// setStreams gives cmd the command's streams (nil: /dev/null).
func setStreams(cmd *exec.Cmd, st streams) {
	if st.in != nil {
		cmd.Stdin = st.in
	}
	if st.out != nil {
		cmd.Stdout = st.out
	}
	if st.err != nil {
		cmd.Stderr = st.err
	}
}

// cloneAsRoot makes the mounts the init in process pid needs, as root, in
// containerConfig's order: every lower tree and the upper tree's parent
// directory (the upper tree and the work directory must be on one mount) as
// idmapped mounts with the init's user namespace, so that an id n on disk is
// n inside, then the binds (idmapped too where their file system allows).
// The sandbox's ids could not look up most of these paths (a root-only cache
// directory, say), and only root may idmap.
func cloneAsRoot(pid int, c *containerConfig) ([]int, error) {
	ns, err := unix.Open(fmt.Sprintf("/proc/%d/ns/user", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the sandbox's user namespace: %w", err)
	}
	defer unix.Close(ns)
	var out []int
	add := func(src string, ro, mustMap bool) error {
		fd, err := cloneMount(src, ro, ns)
		if err != nil && !mustMap {
			// Not every file system can be idmapped: then the bind shows
			// root's files as the overflow id.
			fd, err = cloneMount(src, ro, -1)
		}
		if err != nil {
			return err
		}
		out = append(out, fd)
		return nil
	}
	for _, l := range c.Lower {
		if err := add(l, true, true); err != nil {
			closeAll(out...)
			return nil, err
		}
	}
	if err := add(filepath.Dir(c.Upper), false, true); err != nil {
		closeAll(out...)
		return nil, err
	}
	for _, b := range c.Binds {
		if err := add(b.Source, !b.Writable, false); err != nil {
			closeAll(out...)
			return nil, err
		}
	}
	return out, nil
}
