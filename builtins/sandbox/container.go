package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// containerConfig is what the keeper tells the sandbox's init.
type containerConfig struct {
	Args     []string `json:"args"`
	Env      []string `json:"env"`
	Dir      string   `json:"dir"`
	Hostname string   `json:"hostname"`
	Network  bool     `json:"network"`
	Binds    []Bind   `json:"binds"`
	// TreeAt and Links: see Options.
	TreeAt string `json:"tree_at,omitempty"`
	Links  []Link `json:"links,omitempty"`
	// Chroot: see Options; the tree is then at chrootPath.
	Chroot bool `json:"chroot,omitempty"`
	// Lower, Upper and Work are the overlay's layers (host paths).
	Lower []string `json:"lower"`
	Upper string   `json:"upper"`
	Work  string   `json:"work"`
	// Cloned says the keeper (as root) made the mounts of the lower trees,
	// the upper tree's parent and the binds: the message carries them, in
	// this order, as detached mounts.
	Cloned bool `json:"cloned"`
}

// stagePath is where the init mounts its private tmpfs (in its own mount
// namespace, once it holds everything it needs from the host): a directory
// every host has.
const stagePath = "/tmp"

// chrootPath is where the tree is, below the init's own root, when the
// command runs chrooted (Options.Chroot).
const chrootPath = "/root"

// initMessage is what the init reports to the keeper: a setup error, or the
// command's exit status.
type initMessage struct {
	Error  string `json:"error,omitempty"`
	Exit   int    `json:"exit"`
	Signal int    `json:"signal,omitempty"`
}

// initFD is the init's end of its socket to the keeper.
const initFD = 3

// initMain is the sandbox's init: PID 1 of the new PID namespace, in its own
// mount, IPC, UTS (and network) namespaces. It builds the root, pivots into
// it, runs the command, reaps every process and reports the command's
// status. It never returns.
func initMain() {
	unix.CloseOnExec(initFD)
	report := func(m initMessage) {
		b, _ := json.Marshal(m)
		unix.Sendmsg(initFD, b, nil, nil, 0)
	}
	cfg, fds, err := receiveConfig()
	if err == nil {
		err = setupRoot(cfg, fds)
	}
	if err != nil {
		report(initMessage{Error: err.Error()})
		os.Exit(1)
	}
	report(runCommand(cfg))
	os.Exit(0)
}

// receiveConfig reads the keeper's one message: the configuration and any
// file descriptors.
func receiveConfig() (*containerConfig, []int, error) {
	buf := make([]byte, 1<<20)
	oob := make([]byte, unix.CmsgSpace(256*4))
	n, oobn, _, _, err := unix.Recvmsg(initFD, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the sandbox configuration: %w", err)
	}
	var cfg containerConfig
	if err := json.Unmarshal(buf[:n], &cfg); err != nil {
		return nil, nil, fmt.Errorf("reading the sandbox configuration: %w", err)
	}
	var fds []int
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err == nil && len(msgs) > 0 {
			fds, err = unix.ParseUnixRights(&msgs[0])
		}
		if err != nil {
			return nil, nil, fmt.Errorf("reading the sandbox's mounts: %w", err)
		}
	}
	return &cfg, fds, nil
}

// setupRoot assembles the sandbox's root on a private tmpfs and makes it the
// root of the mount namespace.
func setupRoot(cfg *containerConfig, fds []int) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	ofd, bindFDs, rels, err := mountRoot(cfg, fds)
	if err != nil {
		return err
	}
	root := filepath.Join(stagePath, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		return err
	}
	if cfg.TreeAt != "" {
		// The root is a tmpfs of its own; everything mounted on it gets
		// its mount point made there.
		if err := unix.Mount("tmpfs", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
			return fmt.Errorf("mounting the sandbox's root: %w", err)
		}
		rels = nil
		for _, p := range standardPoints {
			rels = append(rels, p.Rel)
		}
		for _, b := range cfg.Binds {
			rels = append(rels, strings.TrimPrefix(b.Target, "/"))
		}
		for _, p := range standardPoints {
			if err := os.MkdirAll(filepath.Join(root, p.Rel), 0o755); err != nil {
				return err
			}
		}
		at := filepath.Join(root, cfg.TreeAt)
		if err := os.MkdirAll(at, 0o755); err != nil {
			return err
		}
		if err := unix.MoveMount(ofd, "", unix.AT_FDCWD, at, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return fmt.Errorf("attaching the overlay at %s: %w", cfg.TreeAt, err)
		}
		for _, l := range cfg.Links {
			p := filepath.Join(root, l.Path)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return fmt.Errorf("link %s: %w", l.Path, err)
			}
			if err := os.Symlink(l.Target, p); err != nil {
				return fmt.Errorf("link %s: %w", l.Path, err)
			}
		}
	} else if err := unix.MoveMount(ofd, "", unix.AT_FDCWD, root, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("attaching the overlay: %w", err)
	}
	at := func(i int) string { return filepath.Join(root, filepath.FromSlash(rels[i])) }
	const noSuidDevExec = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	if err := unix.Mount("proc", at(0), "proc", noSuidDevExec, ""); err != nil {
		return fmt.Errorf("mounting /proc: %w", err)
	}
	if err := setupDev(at(1)); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", at(2), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil {
		return fmt.Errorf("mounting /tmp: %w", err)
	}
	if err := unix.Mount("tmpfs", at(3), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		return fmt.Errorf("mounting /run: %w", err)
	}
	for i, b := range cfg.Binds {
		dst := at(len(standardPoints) + i)
		if err := bindTarget(dst, rels[len(standardPoints)+i], bindFDs[i], cfg.TreeAt != ""); err != nil {
			return fmt.Errorf("bind %s on %s: %w", b.Source, b.Target, err)
		}
		if err := unix.MoveMount(bindFDs[i], "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return fmt.Errorf("bind %s on %s: %w", b.Source, b.Target, err)
		}
	}
	if cfg.Chroot {
		// The init's root: an empty tmpfs holding only the tree. A
		// command escaping its chroot finds nothing else.
		outer := filepath.Join(stagePath, "outer")
		if err := os.Mkdir(outer, 0o755); err != nil {
			return err
		}
		if err := unix.Mount("tmpfs", outer, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
			return fmt.Errorf("mounting the init's root: %w", err)
		}
		at := filepath.Join(outer, chrootPath)
		if err := os.Mkdir(at, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(root, at, "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("moving the tree below the init's root: %w", err)
		}
		root = outer
	}
	if err := os.Chdir(root); err != nil {
		return err
	}
	// pivot_root with the same directory twice stacks the old root on top
	// of the new one; detaching it leaves the host's tree unreachable.
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the host's root: %w", err)
	}
	if err := os.Chdir("/"); err != nil {
		return err
	}
	if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
		return fmt.Errorf("setting the host name: %w", err)
	}
	if !cfg.Network {
		if err := loopbackUp(); err != nil {
			return fmt.Errorf("bringing up loopback: %w", err)
		}
	}
	unix.Umask(0o022)
	return nil
}

// mountStage mounts the init's private tmpfs.
func mountStage() error {
	if err := unix.Mount("tmpfs", stagePath, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0700"); err != nil {
		return fmt.Errorf("mounting the staging tmpfs: %w", err)
	}
	return nil
}

// mountRoot mounts the overlay, detached, and returns it with the binds'
// detached mounts and the resolved mount points. The layers and binds come
// from the keeper (fds, as root) or are opened here by path.
func mountRoot(cfg *containerConfig, fds []int) (int, []int, []string, error) {
	var bindFDs []int
	ls := &layerSet{userxattr: true, names: cfg.Lower, upper: -1, work: -1, scaffold: -1}
	fail := func(err error) (int, []int, []string, error) {
		closeAll(fds...)
		closeAll(bindFDs...)
		closeAll(ls.lower...)
		closeAll(ls.upper, ls.work, ls.scaffold)
		return -1, nil, nil, err
	}
	n := len(cfg.Lower)
	if cfg.Cloned {
		if len(fds) != n+1+len(cfg.Binds) {
			return fail(fmt.Errorf("got %d mounts for %d layers and binds", len(fds), n+1+len(cfg.Binds)))
		}
		bindFDs, fds = fds[n+1:], fds[:n+1]
		if err := mountStage(); err != nil {
			return fail(err)
		}
		// Attached in this namespace, the clones may be overlay layers.
		for i, fd := range fds {
			dir := filepath.Join(stagePath, fmt.Sprintf("layer%d", i))
			if err := os.Mkdir(dir, 0o700); err != nil {
				return fail(err)
			}
			if err := unix.MoveMount(fd, "", unix.AT_FDCWD, dir, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
				return fail(fmt.Errorf("attaching a layer: %w", err))
			}
			var rel string
			switch {
			case i < n:
				rel = "."
			case i == n:
				rel = filepath.Base(cfg.Upper)
			}
			lfd, err := openDir(unix.AT_FDCWD, filepath.Join(dir, rel))
			if err != nil {
				return fail(err)
			}
			if i < n {
				ls.lower = append(ls.lower, lfd)
				continue
			}
			ls.upper = lfd
			workRel, _ := filepath.Rel(filepath.Dir(cfg.Upper), cfg.Work)
			if ls.work, err = openDir(unix.AT_FDCWD, filepath.Join(dir, workRel)); err != nil {
				return fail(err)
			}
		}
		closeAll(fds...)
		fds = nil
	} else {
		for _, b := range cfg.Binds {
			fd, err := cloneMount(b.Source, !b.Writable, -1)
			if err != nil {
				return fail(err)
			}
			bindFDs = append(bindFDs, fd)
		}
		for _, l := range cfg.Lower {
			fd, err := openDir(unix.AT_FDCWD, l)
			if err != nil {
				return fail(err)
			}
			ls.lower = append(ls.lower, fd)
		}
		var err error
		if ls.upper, err = openDir(unix.AT_FDCWD, cfg.Upper); err != nil {
			return fail(err)
		}
		if ls.work, err = openDir(unix.AT_FDCWD, cfg.Work); err != nil {
			return fail(err)
		}
		// Everything from the host is open: the staging tmpfs may hide it.
		if err := mountStage(); err != nil {
			return fail(err)
		}
	}
	ls.scaffoldPath = filepath.Join(stagePath, "scaffold")
	if err := os.Mkdir(ls.scaffoldPath, 0o755); err != nil {
		return fail(err)
	}
	var err error
	if ls.scaffold, err = openDir(unix.AT_FDCWD, ls.scaffoldPath); err != nil {
		return fail(err)
	}
	bindDirs := make([]bool, len(bindFDs))
	for i, fd := range bindFDs {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return fail(err)
		}
		bindDirs[i] = st.Mode&unix.S_IFMT == unix.S_IFDIR
	}
	ofd, rels, err := prepareRoot(ls, pointsFor(cfg, bindDirs))
	if err != nil {
		return fail(err)
	}
	closeAll(ls.lower...)
	closeAll(ls.upper, ls.work, ls.scaffold)
	return ofd, bindFDs, rels, nil
}

// bindTarget makes sure the bind target dst exists. The scaffold layer holds
// targets in the tree; a target below one of the sandbox's own tmpfs mounts
// (/tmp, /run, /dev) is made there.
func bindTarget(dst, rel string, fd int, anywhere bool) error {
	if _, err := os.Lstat(dst); err == nil {
		return nil
	}
	top, _, _ := strings.Cut(rel, "/")
	if !anywhere && top != "tmp" && top != "run" && top != "dev" {
		return fmt.Errorf("the target is missing")
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return os.Mkdir(dst, 0o755)
	}
	return os.WriteFile(dst, nil, 0o644)
}

// devNodes are the host device nodes bound into the sandbox's /dev.
var devNodes = []string{"null", "zero", "full", "random", "urandom", "tty"}

// setupDev mounts a tmpfs on dev with the minimal set of devices, a private
// devpts and shm.
func setupDev(dev string) error {
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0755"); err != nil {
		return fmt.Errorf("mounting /dev: %w", err)
	}
	for _, n := range devNodes {
		p := filepath.Join(dev, n)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			return err
		}
		if err := unix.Mount("/dev/"+n, p, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("binding /dev/%s: %w", n, err)
		}
	}
	for _, d := range []string{"pts", "shm"} {
		if err := os.Mkdir(filepath.Join(dev, d), 0o755); err != nil {
			return err
		}
	}
	if err := unix.Mount("devpts", filepath.Join(dev, "pts"), "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"); err != nil {
		return fmt.Errorf("mounting /dev/pts: %w", err)
	}
	if err := unix.Mount("tmpfs", filepath.Join(dev, "shm"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil {
		return fmt.Errorf("mounting /dev/shm: %w", err)
	}
	for name, target := range map[string]string{
		"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
		"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2",
	} {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return err
		}
	}
	return nil
}

// loopbackUp brings the new network namespace's "lo" up.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// runCommand starts the command as PID 2, reaps every process until it has
// exited, then kills whatever it left behind.
func runCommand(cfg *containerConfig) initMessage {
	top := "/"
	if cfg.Chroot {
		top = chrootPath
	}
	bin, err := lookPath(top, cfg.Args[0], cfg.Env)
	if err != nil {
		return initMessage{Error: err.Error()}
	}
	if err := os.Chdir(filepath.Join(top, cfg.Dir)); err != nil {
		return initMessage{Error: fmt.Sprintf("working directory: %v", err)}
	}
	attr := &os.ProcAttr{
		Env:   cfg.Env,
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	}
	if cfg.Chroot {
		// The child chroots, then changes to Dir inside.
		attr.Sys.Chroot, attr.Dir = chrootPath, cfg.Dir
	}
	// Best effort: without the filter (a kernel without seccomp) the
	// command only runs slower.
	installNoSync()
	proc, err := os.StartProcess(bin, cfg.Args, attr)
	if err != nil {
		return initMessage{Error: fmt.Sprintf("starting %s: %v", cfg.Args[0], err)}
	}
	var msg initMessage
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			msg.Error = fmt.Sprintf("waiting for %s: %v", cfg.Args[0], err)
			break
		}
		if pid != proc.Pid {
			continue
		}
		if ws.Signaled() {
			msg.Exit, msg.Signal = -1, int(ws.Signal())
		} else {
			msg.Exit = ws.ExitStatus()
		}
		break
	}
	// Daemons the command started die with the PID namespace anyway; kill
	// them now so nothing writes to the tree after the report.
	unix.Kill(-1, unix.SIGKILL)
	return msg
}

// lookPath finds name in the PATH of env, inside the sandbox.
// top is where the command's root is in the init's view ("/", or
// chrootPath); the path returned is the command's.
func lookPath(top, name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	var pathVar string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathVar = v
		}
	}
	for _, dir := range filepath.SplitList(pathVar) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(filepath.Join(top, p)); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
		if top != "/" {
			// An absolute link resolves inside the chroot only: exec
			// tells whether it is a command.
			if st, err := os.Lstat(filepath.Join(top, p)); err == nil && st.Mode()&os.ModeSymlink != 0 {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("%s: %w", name, errors.New("command not found in the sandbox's PATH"))
}
