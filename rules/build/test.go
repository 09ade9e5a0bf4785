package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sxb-build/sxb/internal/arch"
	"github.com/sxb-build/sxb/internal/atomicfile"
	"github.com/sxb-build/sxb/rules"
)

// TestImage is one extension image a test merges.
type TestImage struct {
	// Path is the image file.
	Path string
	// Name is the image name systemd knows it by (the output name), which
	// names its extension-release file.
	Name string
	// Kind is "sysext" or "confext".
	Kind string
}

// TestRequest asks a TestRunner to run one image_test.
type TestRequest struct {
	// Base is the base image's tree and BaseMeta its metadata sidecar
	// (may be "" when there is none).
	Base, BaseMeta string
	// Architecture is the base's.
	Architecture arch.Arch
	// Images are merged onto Base as systemd-sysext/confext would.
	Images []TestImage
	// Script is run with /bin/sh inside.
	Script string
	// Env is added to the script's environment ("NAME=value").
	Env     []string
	Network bool
	// Output receives the script's stdout and stderr.
	Output io.Writer
}

// TestRunner runs a test and returns the script's exit status (a status
// other than 0 is a failed test, not an error); err is for a test that
// could not run.
type TestRunner func(ctx context.Context, req TestRequest) (status int, err error)

// TestFailure is the error of a test whose script exited with a status
// other than 0 (or ran out of time).
type TestFailure struct {
	// Label is the test's.
	Label   string
	Status  int
	Timeout time.Duration // set when the test was stopped after this long
	// Log is the test's output and LogFile where it was published.
	Log     []byte
	LogFile string
}

func (e *TestFailure) Error() string {
	if e.Timeout > 0 {
		return fmt.Sprintf("test timed out after %s (log: %s)", e.Timeout, e.LogFile)
	}
	return fmt.Sprintf("test failed: exit status %d (log: %s)", e.Status, e.LogFile)
}

type testInputs struct {
	Rule    string           `json:"rule"`
	Builtin string           `json:"builtin"`
	Attrs   *rules.ImageTest `json:"attrs"`
	Script  string           `json:"script"` // digest of the script's content
	Images  []string         `json:"images"` // action keys of the images
	Base    string           `json:"base"`   // action key of the base
	Epoch   int64            `json:"epoch"`
}

// testLog is the name of a test's log in its cache entry and, with the
// test's name before it, in the output directory.
const testLog = "test.log"

func (x *executor) runTest(ctx context.Context, t *rules.Target) error {
	it := t.Test
	baseEntry := x.entry(it.Base.String())
	baseT := x.g.Target(*it.Base)
	if baseEntry == nil || baseT == nil || baseT.Base == nil {
		return fmt.Errorf("base %s was not built", it.Base)
	}
	script, err := os.ReadFile(it.Script)
	if err != nil {
		return fmt.Errorf("reading script: %w", err)
	}
	sum := sha256.Sum256(script)
	attrs := *it
	attrs.Script = filepath.Base(it.Script) // the content counts, not where the workspace is
	inputs := testInputs{Rule: t.Kind, Builtin: builtinVersion(), Attrs: &attrs, Script: hex.EncodeToString(sum[:]),
		Base: baseEntry.Key, Epoch: x.opts.Epoch}
	req := TestRequest{Base: baseEntry.Path("tree"), Architecture: baseT.Base.Architecture, Script: it.Script, Network: it.Network}
	if _, err := os.Stat(baseEntry.Path("tree.meta.json")); err == nil {
		req.BaseMeta = baseEntry.Path("tree.meta.json")
	}
	for _, l := range it.Images {
		e, et := x.entry(l.String()), x.g.Target(l)
		if e == nil || et == nil || et.Ext == nil {
			return fmt.Errorf("image %s was not built", l)
		}
		inputs.Images = append(inputs.Images, e.Key)
		name := outputName(et.Ext)
		req.Images = append(req.Images, TestImage{Path: e.Path(name + ".raw"), Name: et.Ext.Output, Kind: et.Ext.Kind})
	}
	for _, kv := range it.Env {
		req.Env = append(req.Env, kv.Key+"="+kv.Value)
	}
	run := func(st *Staging) (*Entry, error) {
		rep := x.reporter(t)
		rep("testing", "")
		if err := os.MkdirAll(st.Out(), 0o755); err != nil {
			return nil, err
		}
		var log bytes.Buffer
		req.Output = &log
		tctx, cancel := context.WithTimeout(ctx, time.Duration(it.Timeout)*time.Second)
		defer cancel()
		status, err := x.opts.TestRunner(tctx, req)
		timedOut := tctx.Err() == context.DeadlineExceeded && ctx.Err() == nil
		if err != nil && !timedOut {
			return nil, err
		}
		if status != 0 || timedOut {
			f := &TestFailure{Label: t.Label.String(), Status: status, Log: log.Bytes()}
			if timedOut {
				f.Timeout = time.Duration(it.Timeout) * time.Second
			}
			f.LogFile, err = x.publishTestLog(t, log.Bytes())
			if err != nil {
				return nil, err
			}
			return nil, f
		}
		if err := os.WriteFile(filepath.Join(st.Out(), testLog), log.Bytes(), 0o644); err != nil {
			return nil, err
		}
		return st.Commit(t.Label.String(), nil, inputs)
	}
	var lookup func(*rules.Target, string, any) (*Entry, error)
	if x.opts.RerunTests {
		lookup = func(*rules.Target, string, any) (*Entry, error) { return nil, nil }
	}
	// Test results stay local: the key does not cover the test host.
	return x.actWith(ctx, t, inputs, lookup, false, run, func(t *rules.Target, e *Entry) ([]string, error) {
		b, err := os.ReadFile(e.Path(testLog))
		if err != nil {
			return nil, err
		}
		f, err := x.publishTestLog(t, b)
		return []string{f}, err
	})
}

// publishTestLog writes a test's log to <name>.test.log in its package's
// output directory and returns the path.
func (x *executor) publishTestLog(t *rules.Target, log []byte) (string, error) {
	dir, err := x.pkgOutputDir(t)
	if err != nil {
		return "", err
	}
	f := filepath.Join(dir, t.Label.Name+".test.log")
	return f, atomicfile.Write(f, log, 0o644)
}

// LastLines returns at most n trailing lines of b.
func LastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
