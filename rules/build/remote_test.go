package build

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sxb-build/sxb/builtins/remotecache"
	"github.com/sxb-build/sxb/internal/testenv"
)

// machine is one build host: its own workspace checkout (at its own path)
// and its own cache.
type machine struct {
	ws, cache string
	fake      *fakeInstaller
}

func newMachine(t *testing.T, fake *fakeInstaller) machine {
	ws := t.TempDir()
	os.MkdirAll(filepath.Join(ws, "img/etc-tree/etc/app"), 0o755)
	os.WriteFile(filepath.Join(ws, "img/etc-tree/etc/app/app.conf"), []byte("x=1\n"), 0o644)
	return machine{ws: ws, cache: t.TempDir(), fake: fake}
}

func (m machine) build(t *testing.T, remote *remotecache.Client, upload bool) ([]*Result, string) {
	t.Helper()
	g := testGraph(m.ws, []string{"libc", "jq"})
	var log bytes.Buffer
	res, err := Build(context.Background(), g, g.Order(), Options{CacheDir: m.cache, Jobs: 2, Log: &log, Explain: true,
		Installers: map[string]Installer{"fake": m.fake}, ImageWriter: listingWriter, Remote: remote, RemoteUpload: upload})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log.String())
	}
	return res, log.String()
}

func remoteClient(t *testing.T, url string) *remotecache.Client {
	t.Helper()
	c, err := remotecache.New(remotecache.Options{URL: url, Timeout: 2 * time.Second, ChunkSize: 4 << 10, TempDir: t.TempDir(),
		NetrcFile: filepath.Join(t.TempDir(), "none")})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// outputsOf lists the published outputs of a machine, with contents, the
// base tree and its sidecar included (diff -r is the oracle).
func sameOutputs(t *testing.T, a, b machine) {
	t.Helper()
	out, err := exec.Command("diff", "-r", "--no-dereference", filepath.Join(a.ws, "sxb-out"), filepath.Join(b.ws, "sxb-out")).CombinedOutput()
	if err != nil {
		t.Fatalf("outputs differ between machines: %v\n%s", err, out)
	}
}

func TestRemoteCacheSharesResultsBetweenMachines(t *testing.T) {
	fake := &fakeInstaller{}
	srv := testenv.StartNginx(t, testenv.NginxOptions{})

	// Machine A builds and uploads.
	a := newMachine(t, fake)
	res, log := a.build(t, remoteClient(t, srv.URL), true)
	for _, r := range res {
		if r.Cached || r.Remote || !r.Uploaded {
			t.Errorf("machine A: %+v, want built and uploaded", r)
		}
	}
	if !strings.Contains(log, "explain: //img:base: remote cache miss") {
		t.Errorf("--explain does not say the remote missed:\n%s", log)
	}
	acs, _ := filepath.Glob(filepath.Join(srv.Root, "ac", "*"))
	if len(acs) != 3 {
		t.Fatalf("action results on the server: %d, want 3", len(acs))
	}

	// Machine B, its checkout elsewhere and its cache empty, reads only:
	// everything comes from the remote, nothing is installed or uploaded.
	b := newMachine(t, fake)
	fake.installs = nil
	before := countFiles(t, srv.Root)
	c := remoteClient(t, srv.URL)
	res, log = b.build(t, c, false)
	for _, r := range res {
		if !r.Remote || r.Uploaded {
			t.Errorf("machine B: %+v, want from the remote cache\n%s", r, log)
		}
	}
	if len(fake.installs) != 0 {
		t.Errorf("machine B installed %v", fake.installs)
	}
	if n := countFiles(t, srv.Root); n != before {
		t.Errorf("a read-only build changed the server: %d files, then %d", before, n)
	}
	if c.Stats().Downloaded.Load() == 0 {
		t.Error("no bytes counted as downloaded")
	}
	sameOutputs(t, a, b)
	// The next build on B is a local hit and asks the remote nothing.
	res, _ = b.build(t, c, false)
	for _, r := range res {
		if !r.Cached || r.Remote {
			t.Errorf("machine B again: %+v, want a local hit", r)
		}
	}

	// A machine with a warm local cache fills an empty remote, once.
	srv2 := testenv.StartNginx(t, testenv.NginxOptions{})
	res, _ = a.build(t, remoteClient(t, srv2.URL), true)
	for _, r := range res {
		if !r.Cached || !r.Uploaded {
			t.Errorf("warm machine with a new remote: %+v, want cached and uploaded", r)
		}
	}
	c2 := remoteClient(t, srv2.URL)
	a.build(t, c2, true)
	if n := c2.Stats().Downloaded.Load() + c2.Stats().Uploaded.Load(); n != 0 {
		t.Errorf("a no-op build moved %d bytes to or from the remote", n)
	}
}

func countFiles(t *testing.T, dir string) int {
	n := 0
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n++
		}
		return nil
	})
	return n
}

func TestRemoteCacheFaults(t *testing.T) {
	fake := &fakeInstaller{}
	srv := testenv.StartNginx(t, testenv.NginxOptions{})
	a := newMachine(t, fake)
	a.build(t, remoteClient(t, srv.URL), true)

	// Every blob of the server damaged: each target detects it, builds
	// locally, publishes what it built (the same as A's) and, uploading,
	// repairs the server.
	cas, _ := filepath.Glob(filepath.Join(srv.Root, "cas", "*"))
	for _, p := range cas {
		b, _ := os.ReadFile(p)
		if len(b) > 0 {
			b[0] ^= 0xff
			os.WriteFile(p, b, 0o644)
		}
	}
	b := newMachine(t, fake)
	fake.installs = nil
	res, log := b.build(t, remoteClient(t, srv.URL), true)
	for _, r := range res {
		if r.Remote {
			t.Errorf("%s came from a damaged remote", r.Label)
		}
	}
	if !strings.Contains(log, "does not match its digest") || len(fake.installs) == 0 {
		t.Errorf("damage not detected, or nothing rebuilt (installed %v):\n%s", fake.installs, log)
	}
	sameOutputs(t, a, b)
	c := newMachine(t, fake)
	res, log = c.build(t, remoteClient(t, srv.URL), false)
	for _, r := range res {
		if !r.Remote {
			t.Errorf("after the repair, %s did not come from the remote:\n%s", r.Label, log)
		}
	}

	// Server down: one warning, everything built locally.
	srv.Stop()
	d := newMachine(t, fake)
	res, log = d.build(t, remoteClient(t, srv.URL), true)
	if n := strings.Count(log, "warning"); n != 1 || !strings.Contains(log, "building locally without it") {
		t.Errorf("server down: %d warnings, want 1:\n%s", n, log)
	}
	for _, r := range res {
		if r.Cached || r.Remote || r.Uploaded {
			t.Errorf("server down: %+v", r)
		}
	}
	sameOutputs(t, a, d)

	// A server refusing uploads: one warning, the build goes on.
	ro := testenv.StartNginx(t, testenv.NginxOptions{ReadOnly: true})
	e := newMachine(t, fake)
	res, log = e.build(t, remoteClient(t, ro.URL), true)
	if n := strings.Count(log, "refuses uploads"); n != 1 {
		t.Errorf("read-only server: %d warnings, want 1:\n%s", n, log)
	}
	if len(res) != 3 {
		t.Errorf("read-only server: %d results", len(res))
	}
}

func TestActionKeysIgnoreTheWorkspaceLocation(t *testing.T) {
	a, b := newMachine(t, nil), newMachine(t, nil)
	ga, gb := testGraph(a.ws, nil), testGraph(b.ws, nil)
	xa, xb := &executor{g: ga}, &executor{g: gb}
	ta, tb := ga.Targets["//img:conf"], gb.Targets["//img:conf"]
	ka := xa.actionKey(extInputs{Attrs: ta.Ext})
	if kb := xb.actionKey(extInputs{Attrs: tb.Ext}); ka != kb {
		t.Errorf("keys differ by checkout location: %s %s", ka, kb)
	}
	tb.Ext.ExtraTrees[0].Source = filepath.Join(b.ws, "img/other-tree")
	if kb := xb.actionKey(extInputs{Attrs: tb.Ext}); ka == kb {
		t.Error("a different tree gives the same key")
	}
	if got := string(relocate([]byte(`["/w","/w/x","/wx","//w/x"]`), "/w", "$W")); got != `["$W","$W/x","/wx","//w/x"]` {
		t.Errorf("relocate: %s", got)
	}
}
