package rpm

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sxb-build/sxb/builtins/installer"
	"github.com/sxb-build/sxb/builtins/tree"
)

func TestLock(t *testing.T) {
	fx := seedRepo(t)
	ctx := context.Background()
	req := Request{Distribution: "opensuse", Release: "tumbleweed", Mirror: fx.mirror, Keyring: fx.keyring,
		CacheDir: t.TempDir(), Packages: []string{"helm"}}
	plan, err := Resolve(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Resolve(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Key() != again.Key() {
		t.Fatal("plan key is not stable")
	}
	lockBytes, err := LockOf(plan).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	lock, err := ParseLock(lockBytes, "rpm.lock")
	if err != nil {
		t.Fatal(err)
	}
	// With the lock no metadata is read: a mirror without repositories works.
	locked := req
	locked.Lock, locked.Mirror = lock, t.TempDir()
	lp, err := Resolve(ctx, locked)
	if err != nil {
		t.Fatal(err)
	}
	if lp.Key() != plan.Key() {
		t.Errorf("locked plan differs:\n%v\n%v", lp.Packages, plan.Packages)
	}
	root := t.TempDir()
	if err := Install(ctx, lp, root, tree.NewMeta(), InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	checkFile(t, root, "usr/bin/helm", "helm-3.16.2\n")
	locked.Packages = []string{"helm", "udev"}
	if _, err := Resolve(ctx, locked); err == nil || !strings.Contains(err.Error(), `"udev" is not in the lock`) {
		t.Errorf("request outside the lock: err = %v", err)
	}
	locked.Packages = []string{"helm < 3.16"}
	if _, err := Resolve(ctx, locked); err == nil || !strings.Contains(err.Error(), "the lock pins helm-3.16.2-1.1.x86_64") {
		t.Errorf("request the lock contradicts: err = %v", err)
	}
	for _, bad := range []string{`{"version": 2}`, `{"version": 1, "packages": [{"name": "a"}]}`, `{"version": 1, "extra": 1}`} {
		if _, err := ParseLock([]byte(bad), "x.lock"); err == nil {
			t.Errorf("ParseLock(%s) accepted", bad)
		}
	}
}

// TestHTTPMirror serves the seed mirror over HTTP on the loopback
// interface: resolution, parallel downloads and install work the same.
func TestHTTPMirror(t *testing.T) {
	fx := seedRepo(t)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.FileServer(http.Dir(fx.mirror)).ServeHTTP(w, r)
	}))
	defer srv.Close()
	ctx := context.Background()
	cache := t.TempDir()
	var phases []string
	req := Request{Distribution: "opensuse", Release: "tumbleweed", Mirror: srv.URL, Keyring: fx.keyring,
		CacheDir: cache, Packages: []string{"helm"}, Progress: func(p installer.Event) { phases = append(phases, string(p.Kind)+" "+p.Package) }}
	plan, err := Resolve(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if want := "index " + srv.URL + "/tumbleweed/repo/oss/,index " + srv.URL + "/update/tumbleweed/,resolved "; strings.Join(phases, ",") != want {
		t.Errorf("progress %q, want %q", strings.Join(phases, ","), want)
	}
	if !strings.HasPrefix(plan.Packages[0].URL, srv.URL+"/") {
		t.Fatalf("package URL %s", plan.Packages[0].URL)
	}
	root := t.TempDir()
	if err := Install(ctx, plan, root, tree.NewMeta(), InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	checkFile(t, root, "usr/bin/helm", "helm-3.16.2\n")
	// A second install is served from the shared cache.
	before := hits.Load()
	if err := Install(ctx, plan, t.TempDir(), tree.NewMeta(), InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != before {
		t.Errorf("second install downloaded %d files again", hits.Load()-before)
	}
}
