package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sxb-build/sxb/internal/arch"
	"github.com/sxb-build/sxb/internal/label"
	"github.com/sxb-build/sxb/rules"
)

// testWithTest is testGraph plus an image_test of //img:tool and
// //img:conf running script.
func testWithTest(ws, script string, timeout int) *rules.Graph {
	g := testGraph(ws, []string{"jq"})
	bl := label.Label{Pkg: "img", Name: "base"}
	tl := label.Label{Pkg: "img", Name: "t"}
	imgs := []label.Label{{Pkg: "img", Name: "conf"}, {Pkg: "img", Name: "tool"}}
	g.Targets[tl.String()] = &rules.Target{Label: tl, Kind: rules.KindImageTest, Deps: append([]label.Label{bl}, imgs...),
		Test: &rules.ImageTest{Name: "t", Images: imgs, Base: &bl, Script: script, Env: []rules.KV{{Key: "FOO", Value: "bar"}}, Timeout: timeout}}
	return g
}

func TestImageTestsRunCacheAndFail(t *testing.T) {
	ws, cache := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(ws, "img/etc-tree/etc/app"), 0o755)
	script := filepath.Join(ws, "img/check.sh")
	os.WriteFile(script, []byte("exit 0\n"), 0o644)
	var calls atomic.Int32
	status := 0
	runner := func(ctx context.Context, req TestRequest) (int, error) {
		calls.Add(1)
		if _, err := os.Stat(filepath.Join(req.Base, "var/lib/dpkg/status")); err != nil {
			return 0, fmt.Errorf("base tree: %v", err)
		}
		if len(req.Images) != 2 || req.Images[0].Name != "conf" || req.Images[0].Kind != "confext" || req.Images[1].Name != "tool" {
			return 0, fmt.Errorf("images %+v", req.Images)
		}
		for _, im := range req.Images {
			if _, err := os.Stat(im.Path); err != nil {
				return 0, err
			}
		}
		if req.Script != script || len(req.Env) != 1 || req.Env[0] != "FOO=bar" || req.Architecture != arch.X86_64 {
			return 0, fmt.Errorf("request %+v", req)
		}
		fmt.Fprintf(req.Output, "running check\nstatus %d\n", status)
		if status < 0 {
			<-ctx.Done()
			return -1, ctx.Err()
		}
		return status, nil
	}
	test := func(opts Options) ([]*Result, error) {
		g := testWithTest(ws, script, 1)
		opts.CacheDir, opts.RunTests, opts.TestRunner = cache, true, runner
		opts.Installers, opts.ImageWriter = map[string]Installer{"fake": &fakeInstaller{}}, listingWriter
		return Build(context.Background(), g, []*rules.Target{g.Targets["//img:t"]}, opts)
	}
	res, err := test(Options{})
	if err != nil || calls.Load() != 1 {
		t.Fatalf("first run: %v, %d calls", err, calls.Load())
	}
	log, _ := os.ReadFile(filepath.Join(ws, "sxb-out/img/t.test.log"))
	if !strings.Contains(string(log), "running check") || res[len(res)-1].Label != "//img:t" || res[len(res)-1].Cached {
		t.Errorf("log %q, results %+v", log, res[len(res)-1])
	}
	// Same inputs: the passing result is reused; --cache-test-results=no reruns.
	if res, err = test(Options{}); err != nil || calls.Load() != 1 || !res[len(res)-1].Cached {
		t.Errorf("second run: %v, %d calls", err, calls.Load())
	}
	if _, err = test(Options{RerunTests: true}); err != nil || calls.Load() != 2 {
		t.Errorf("rerun: %v, %d calls", err, calls.Load())
	}
	// A changed script reruns; a failure is not cached and carries the log.
	os.WriteFile(script, []byte("exit 3\n"), 0o644)
	status = 3
	for i := 0; i < 2; i++ {
		_, err = test(Options{})
		var f *TestFailure
		if !errors.As(err, &f) || f.Status != 3 || f.Label != "//img:t" || !bytes.Contains(f.Log, []byte("status 3")) {
			t.Fatalf("failing run %d: %v", i, err)
		}
		if log, _ := os.ReadFile(f.LogFile); !bytes.Contains(log, []byte("status 3")) {
			t.Errorf("published log %q", log)
		}
	}
	if calls.Load() != 4 {
		t.Errorf("%d calls, want the failure run twice", calls.Load())
	}
	// A test that outlives its timeout fails as such.
	os.WriteFile(script, []byte("sleep 100\n"), 0o644)
	status = -1
	_, err = test(Options{})
	var f *TestFailure
	if !errors.As(err, &f) || f.Timeout == 0 || !strings.Contains(err.Error(), "timed out after 1s") {
		t.Errorf("timeout: %v", err)
	}
	// sxb build (no RunTests) builds what a test needs, not the test.
	before := calls.Load()
	g := testWithTest(ws, script, 1)
	res, err = Build(context.Background(), g, g.Order(), Options{CacheDir: cache, TestRunner: runner,
		Installers: map[string]Installer{"fake": &fakeInstaller{}}, ImageWriter: listingWriter})
	if err != nil || calls.Load() != before {
		t.Errorf("build: %v, test ran %d times", err, calls.Load()-before)
	}
	for _, r := range res {
		if r.Kind == rules.KindImageTest {
			t.Errorf("build ran the test: %+v", r)
		}
	}
}
