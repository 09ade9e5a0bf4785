package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// Roles of a re-executed binary, passed as argv[0] (a name no real program
// is started with).
const (
	roleUserns = "sxb-sandbox:userns" // waits to be mapped, then becomes the keeper
	roleKeeper = "sxb-sandbox:keeper" // the keeper of an unprivileged run
	roleInit   = "sxb-sandbox:init"   // PID 1 of the sandbox
)

// File descriptors of the keeper process.
const (
	keeperConfigFD = 3 // configuration in (after one go-ahead byte)
	keeperReportFD = 4 // report out
)

var initCalled bool

// Init must be called first thing in main, before anything else runs (and
// in TestMain of tests that use Run). In a process the sandbox started it
// does that process's work and exits; otherwise it returns at once.
func Init() {
	initCalled = true
	switch os.Args[0] {
	case roleInit:
		initMain()
	case roleUserns:
		usernsMain()
	case roleKeeper:
		keeperMain()
	}
}

// runKeeper runs the keeper in a new user namespace mapped as plan says,
// for a builder that is not root.
func runKeeper(ctx context.Context, cfg *keeperConfig, plan *idPlan, st streams) (*keeperReport, error) {
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer cfgW.Close()
	repR, repW, err := os.Pipe()
	if err != nil {
		cfgR.Close()
		return nil, err
	}
	defer repR.Close()
	attr := &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER, Pdeathsig: syscall.SIGKILL}
	if plan.mode == IDsRootOnly {
		attr.UidMappings, attr.GidMappings = plan.uidMappings, plan.gidMappings
	}
	cmd := &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        []string{roleUserns},
		Env:         []string{},
		ExtraFiles:  []*os.File{cfgR, repW},
		SysProcAttr: attr,
	}
	setStreams(cmd, st)
	err = cmd.Start()
	cfgR.Close()
	repW.Close()
	if err != nil {
		return nil, fmt.Errorf("sandbox: starting a user namespace: %w", err)
	}
	fail := func(err error) (*keeperReport, error) {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, err
	}
	if plan.mode == IDsSubordinate {
		if err := plan.writeSubordinateMaps(cmd.Process.Pid); err != nil {
			return fail(err)
		}
	}
	// One byte says the ids are mapped; the configuration follows.
	if _, err := cfgW.Write([]byte{1}); err != nil {
		return fail(fmt.Errorf("sandbox: configuring the keeper: %w", err))
	}
	if err := json.NewEncoder(cfgW).Encode(cfg); err != nil {
		return fail(fmt.Errorf("sandbox: configuring the keeper: %w", err))
	}
	cfgW.Close()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			// The keeper kills the sandbox and settles the tree.
			cmd.Process.Signal(syscall.SIGTERM)
		case <-done:
		}
	}()
	var rep keeperReport
	b, rerr := io.ReadAll(repR)
	werr := cmd.Wait()
	if rerr == nil && len(b) > 0 {
		rerr = json.Unmarshal(b, &rep)
	}
	if rerr != nil || len(b) == 0 {
		return nil, fmt.Errorf("sandbox: the keeper failed (%v): no report", werr)
	}
	if rep.Meta == nil {
		// Not a run's report: the keeper failed before or after it.
		return nil, fmt.Errorf("sandbox: %s", rep.Err)
	}
	return &rep, nil
}

// usernsMain waits until the parent has mapped the user namespace, then
// executes the binary again as the keeper: capabilities in a user namespace
// are granted when a process executes as its root, and this process was
// not root yet when it started.
func usernsMain() {
	var b [1]byte
	if n, err := unix.Read(keeperConfigFD, b[:]); n != 1 || err != nil {
		os.Exit(1)
	}
	err := unix.Exec("/proc/self/exe", []string{roleKeeper}, []string{})
	fmt.Fprintf(os.NewFile(keeperReportFD, "report"), `{"err":%q}`, "re-executing in the user namespace: "+err.Error())
	os.Exit(1)
}

// keeperMain is the keeper of an unprivileged run: it reads the
// configuration, runs it and writes the report.
func keeperMain() {
	unix.CloseOnExec(keeperConfigFD)
	unix.CloseOnExec(keeperReportFD)
	out := os.NewFile(keeperReportFD, "report")
	var cfg keeperConfig
	if err := json.NewDecoder(os.NewFile(keeperConfigFD, "config")).Decode(&cfg); err != nil {
		fmt.Fprintf(out, `{"err":%q}`, "reading the configuration: "+err.Error())
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	rep, err := keep(ctx, &cfg, streams{os.Stdin, os.Stdout, os.Stderr})
	if err != nil {
		fmt.Fprintf(out, `{"err":%q}`, err.Error())
		os.Exit(1)
	}
	json.NewEncoder(out).Encode(rep)
	os.Exit(0)
}
