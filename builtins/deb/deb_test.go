package deb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/sxb-build/sxb/builtins/fetch"
	"github.com/sxb-build/sxb/builtins/installer"
	"github.com/sxb-build/sxb/builtins/tree"
)

var fixturePkgs = []fpkg{
	// Alternatives: b is not in the archive, so c is taken.
	{name: "app", version: "1.0", fields: "Pre-Depends: early\nDepends: b | c, virt, lib (>= 2), vv (>= 2), usrmerge | usr-is-merged\n",
		files: map[string]string{"usr/bin/app": "#!/bin/sh\n", "bin/legacy": "legacy\n", "usr/bin/app-link": "->app", "etc/app.conf": "x=1\n",
			"usr/share/doc/app/README": "doc", "usr/share/doc/app/copyright": "c", "usr/share/man/man1/app.1": "man"}},
	{name: "c", version: "1", files: map[string]string{"usr/share/c/c.txt": "c"}},
	// Virtual package with two providers: the Priority: required one wins.
	{name: "prov-opt", version: "1", fields: "Provides: virt\nPriority: optional\n"},
	{name: "prov-req", version: "1", fields: "Provides: virt\nPriority: required\n"},
	// Two versions; the newest is the candidate.
	{name: "lib", version: "1.0", files: map[string]string{"usr/lib/lib.so": "v1"}},
	{name: "lib", version: "2.1", files: map[string]string{"usr/lib/lib.so": "v2"}},
	// Versioned provides.
	{name: "vv-old", version: "1", fields: "Provides: vv (= 1)\n"},
	{name: "vv-new", version: "1", fields: "Provides: vv (= 3)\n"},
	// Pre-Depends target with a zstd payload.
	{name: "early", version: "1", zstd: true, files: map[string]string{"usr/lib/early/z": "zstd payload"}},
	{name: "usrmerge", version: "1"},
	{name: "usr-is-merged", version: "1"},
	// Conflicts.
	{name: "x", version: "1", fields: "Conflicts: y\n"},
	{name: "y", version: "1"},
	{name: "z", version: "1", fields: "Depends: y | w\nBreaks: y (<< 2)\n"},
	{name: "w", version: "1"},
	// Unsatisfiable chains.
	{name: "jq", version: "1", fields: "Depends: libjq1 (>= 1.6)\n"},
	{name: "libjq1", version: "1.5"},
	{name: "top", version: "1", fields: "Depends: mid\n"},
	{name: "mid", version: "1", fields: "Depends: gone\n"},
	{name: "ess", version: "1", fields: "Essential: yes\nPriority: required\n"},
	// Two packages ship the same file; the one with Replaces owns it
	// although it comes first in plan order.
	{name: "over-a", version: "1", fields: "Replaces: over-b\n", files: map[string]string{"usr/share/same": "A"}},
	{name: "over-b", version: "1", files: map[string]string{"usr/share/same": "B"}},
}

func names(p *Plan) string { return strings.Join(p.Names(), " ") }

func TestResolveFixture(t *testing.T) {
	r := buildRepo(t, "fix", fixturePkgs)
	ctx := context.Background()
	plan, err := Resolve(ctx, r.request(t, "fix", "app"))
	if err != nil {
		t.Fatal(err)
	}
	want := "app c early lib prov-req usr-is-merged vv-new"
	if got := names(plan); got != want {
		t.Fatalf("plan = %q, want %q", got, want)
	}
	for _, p := range plan.Packages {
		if p.Name == "lib" && p.Version != "2.1" {
			t.Errorf("lib version %s, want the candidate 2.1", p.Version)
		}
		if !strings.HasPrefix(p.URL, "file://"+r.dir+"/pool/main/") || len(p.SHA256) != 64 || p.Size <= 0 {
			t.Errorf("bad package record %+v", p)
		}
	}
	// A base package too old for a versioned dependency is upgraded in
	// the layer; one that is recent enough is not installed again.
	base := t.TempDir()
	os.MkdirAll(filepath.Join(base, "var/lib/dpkg"), 0o755)
	os.WriteFile(filepath.Join(base, "var/lib/dpkg/status"), []byte(
		"Package: lib\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n\n"+
			"Package: c\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n"), 0o644)
	breq := r.request(t, "fix", "app")
	breq.BaseRoot = base
	plan, err = Resolve(ctx, breq)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(plan); got != "app early lib prov-req usr-is-merged vv-new" {
		t.Fatalf("plan over base = %q", got)
	}
	// Breaks y (<< 2) makes z take w instead of y.
	plan, err = Resolve(ctx, r.request(t, "fix", "z"))
	if err != nil {
		t.Fatal(err)
	}
	if got := names(plan); got != "w z" {
		t.Fatalf("z plan = %q, want \"w z\"", got)
	}
	req := r.request(t, "fix", "ess")
	req.BaseImage = true
	if plan, err = Resolve(ctx, req); err != nil || names(plan) != "ess" {
		t.Fatalf("base image plan %v, %v", plan, err)
	}
	for _, tc := range []struct {
		pkgs []string
		want string
	}{
		{[]string{"x", "y"}, "conflicts with x 1 (y)"},
		{[]string{"jq"}, "jq -> libjq1 (>= 1.6) -> only version 1.5 available in fix/main amd64"},
		{[]string{"top"}, "top -> mid -> gone -> not found in fix/main amd64"},
		{[]string{"nosuch"}, "nosuch -> not found in fix/main amd64"},
	} {
		_, err := Resolve(ctx, r.request(t, "fix", tc.pkgs...))
		var ue *UnsatisfiableError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Resolve(%v) error = %v, want %q", tc.pkgs, err, tc.want)
		}
	}
}

func TestInstallFixture(t *testing.T) {
	r := buildRepo(t, "fix", fixturePkgs)
	ctx := context.Background()
	req := r.request(t, "fix", "app")
	plan, err := Resolve(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "root")
	meta := tree.NewMeta()
	var events []installer.Event
	if err := Install(ctx, plan, dir, meta, InstallOptions{Progress: func(e installer.Event) { events = append(events, e) }}); err != nil {
		t.Fatal(err)
	}
	if len(events) == 0 || events[len(events)-1].Kind != installer.Done {
		t.Errorf("no done event: %v", events)
	}
	if l, _ := os.Readlink(filepath.Join(dir, "bin")); l != "usr/bin" {
		t.Errorf("bin -> %q, want usr/bin", l)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "usr/bin/legacy")); err != nil || string(b) != "legacy\n" {
		t.Errorf("bin/legacy did not land in usr/bin: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "usr/bin/app")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("usr/bin/app: %v %v", fi, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "usr/lib/early/z")); string(b) != "zstd payload" {
		t.Errorf("zstd payload: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "usr/lib/lib.so")); string(b) != "v2" {
		t.Errorf("lib.so from the wrong version: %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "usr/share/man/man1/app.1")); !os.IsNotExist(err) {
		t.Errorf("man page kept without with_docs")
	}
	if _, err := os.Stat(filepath.Join(dir, "usr/share/doc/app/README")); !os.IsNotExist(err) {
		t.Errorf("doc kept without with_docs")
	}
	if _, err := os.Stat(filepath.Join(dir, "usr/share/doc/app/copyright")); err != nil {
		t.Errorf("copyright dropped: %v", err)
	}
	status, err := os.ReadFile(filepath.Join(dir, "var/lib/dpkg/status"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Package: app\nStatus: install ok installed\n", "Conffiles:\n /etc/app.conf ", "Package: vv-new\n"} {
		if !strings.Contains(string(status), want) {
			t.Errorf("status lacks %q:\n%s", want, status)
		}
	}
	list, _ := os.ReadFile(filepath.Join(dir, "var/lib/dpkg/info/app.list"))
	if !strings.Contains(string(list), "/bin/legacy\n") || !strings.HasPrefix(string(list), "/.\n") {
		t.Errorf("app.list:\n%s", list)
	}
	// dpkg itself accepts the database.
	out := run(t, nil, dir, "dpkg-query", "--admindir="+filepath.Join(dir, "var/lib/dpkg"), "-W", "-f", "${Package} ${Status}\n")
	if !strings.Contains(out, "app install ok installed") || strings.Count(out, "\n") != len(plan.Packages) {
		t.Errorf("dpkg-query:\n%s", out)
	}
	// Loaded as a tree, everything is root-owned.
	n, err := tree.Load(dir, tree.Options{Meta: meta, Epoch: -1})
	if err != nil {
		t.Fatal(err)
	}
	if a := n.Lookup("usr/bin/app"); a == nil || a.UID != 0 || a.Mode != 0o755 {
		t.Errorf("tree node usr/bin/app = %+v", a)
	}

	// A second install (from the cached uncompressed payloads) makes the
	// same tree.
	dir2 := filepath.Join(t.TempDir(), "root")
	meta2 := tree.NewMeta()
	if err := Install(ctx, plan, dir2, meta2, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	if a, b := treeDigest(t, dir, meta), treeDigest(t, dir2, meta2); a != b {
		t.Errorf("second install differs:\n%s\n---\n%s", a, b)
	}
	tars, _ := filepath.Glob(filepath.Join(req.CacheDir, "deb-data", "*.tar"))
	if len(tars) != len(plan.Packages) {
		t.Errorf("tar cache holds %d entries, want %d", len(tars), len(plan.Packages))
	}
	// A damaged cached payload (same size, other bytes) is not used: the
	// .deb is unpacked again and the tree is the same.
	for _, tf := range tars {
		b, _ := os.ReadFile(tf)
		b[600] ^= 0xff // inside the second member's header
		os.WriteFile(tf, b, 0o644)
	}
	dir3 := filepath.Join(t.TempDir(), "root")
	meta3 := tree.NewMeta()
	if err := Install(ctx, plan, dir3, meta3, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	if a, b := treeDigest(t, dir, meta), treeDigest(t, dir3, meta3); a != b {
		t.Errorf("install from a damaged payload cache differs:\n%s\n---\n%s", a, b)
	}

	// The builder's umask and the unpack parallelism change nothing
	// (umask 077 made the dpkg database's directories 0700).
	old := syscall.Umask(0o077)
	dir4 := filepath.Join(t.TempDir(), "root")
	meta4 := tree.NewMeta()
	err = Install(ctx, inCache(plan, t.TempDir()), dir4, meta4, InstallOptions{Unpackers: 1, NoTarCache: true})
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := treeDigest(t, dir, meta), treeDigest(t, dir4, meta4); a != b {
		t.Errorf("install with umask 077 differs:\n%s\n---\n%s", a, b)
	}

	// Replaces decides who owns a path two packages ship.
	planO, err := Resolve(ctx, r.request(t, "fix", "over-a", "over-b"))
	if err != nil {
		t.Fatal(err)
	}
	dirO := filepath.Join(t.TempDir(), "o")
	if err := Install(ctx, inCache(planO, req.CacheDir), dirO, tree.NewMeta(), InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dirO, "usr/share/same")); string(b) != "A" {
		t.Errorf("usr/share/same = %q, want the replacing package's \"A\"", b)
	}

	// Two builds sharing a cold cache at once both succeed identically.
	shared := t.TempDir()
	var wg sync.WaitGroup
	dirs := []string{filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")}
	metas := []*tree.Meta{tree.NewMeta(), tree.NewMeta()}
	errs := make([]error, 2)
	for i := range dirs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = Install(ctx, inCache(plan, shared), dirs[i], metas[i], InstallOptions{})
		}(i)
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("concurrent installs: %v, %v", errs[0], errs[1])
	}
	if treeDigest(t, dirs[0], metas[0]) != treeDigest(t, dirs[1], metas[1]) {
		t.Error("concurrent installs differ")
	}

	// A second layer resolves against the first and does not reinstall.
	req2 := r.request(t, "fix", "app", "z")
	req2.BaseRoot = dir
	req2.CacheDir = req.CacheDir
	plan2, err := Resolve(ctx, req2)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(plan2); got != "w z" {
		t.Fatalf("layer plan = %q, want \"w z\"", got)
	}
	// Same inputs, same plan; the lock reproduces it without indexes.
	plan1b, _ := Resolve(ctx, req)
	if plan1b.Key() != plan.Key() {
		t.Errorf("plan key not stable")
	}
	lockBytes, err := LockOf(plan).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	lock, err := ParseLock(lockBytes, "sxb.lock")
	if err != nil {
		t.Fatal(err)
	}
	req3 := req
	req3.Lock = lock
	req3.Mirror = "file:///nonexistent"
	plan3, err := Resolve(ctx, req3)
	if err != nil || names(plan3) != names(plan) {
		t.Fatalf("locked plan %v, %v", plan3, err)
	}
	req3.Packages = []string{"app", "x"}
	if _, err := Resolve(ctx, req3); err == nil || !strings.Contains(err.Error(), "not in the lock") {
		t.Errorf("request outside the lock: %v", err)
	}
	// The archive drops a locked file: the build fails and names it.
	os.Rename(filepath.Join(r.dir, "pool/main/c_1_amd64.deb"), filepath.Join(r.dir, "pool/main/c_1_amd64.deb.gone"))
	err = Install(ctx, inCache(plan3, t.TempDir()), t.TempDir(), tree.NewMeta(), InstallOptions{})
	if err == nil || !strings.Contains(err.Error(), "no longer serves c 1") {
		t.Errorf("missing locked file: %v", err)
	}
}

func TestSignatures(t *testing.T) {
	r := buildRepo(t, "fix", fixturePkgs[:2])
	ctx := context.Background()
	// Wrong key.
	_, wrong := newGPG(t, "other@example.invalid")
	req := r.request(t, "fix", "c")
	req.Keyring = wrong
	if _, err := Resolve(ctx, req); !errors.Is(err, ErrSignature) {
		t.Errorf("wrong key: err = %v", err)
	}
	// Tampered InRelease.
	in := filepath.Join(r.dir, "dists/fix/InRelease")
	b, _ := os.ReadFile(in)
	os.WriteFile(in, []byte(strings.Replace(string(b), "Suite: fix", "Suite: fiy", 1)), 0o644)
	if _, err := Resolve(ctx, r.request(t, "fix", "c")); !errors.Is(err, ErrSignature) {
		t.Errorf("tampered InRelease: err = %v", err)
	}
	// Without InRelease the detached signature is used.
	os.Remove(in)
	if _, err := Resolve(ctx, r.request(t, "fix", "c")); err != nil {
		t.Errorf("Release + Release.gpg: %v", err)
	}
	// Unsigned: refused unless insecure.
	os.Remove(filepath.Join(r.dir, "dists/fix/Release.gpg"))
	if _, err := Resolve(ctx, r.request(t, "fix", "c")); !errors.Is(err, ErrSignature) {
		t.Errorf("unsigned: err = %v", err)
	}
	req = r.request(t, "fix", "c")
	req.Insecure = true
	plan, err := Resolve(ctx, req)
	if err != nil {
		t.Fatalf("insecure: %v", err)
	}
	// A Packages index that does not match the Release hash is refused.
	r.sign(t, "fix")
	os.WriteFile(filepath.Join(r.dir, "dists/fix/main/binary-amd64/Packages.xz"), []byte("garbage"), 0o644)
	if _, err := Resolve(ctx, r.request(t, "fix", "c")); !errors.Is(err, fetch.ErrChecksum) {
		t.Errorf("tampered index: err = %v", err)
	}
	// A .deb that does not match the index is refused.
	os.WriteFile(filepath.Join(r.dir, "pool/main/c_1_amd64.deb"), []byte("evil"), 0o644)
	err = Install(ctx, inCache(plan, t.TempDir()), t.TempDir(), tree.NewMeta(), InstallOptions{})
	if !errors.Is(err, fetch.ErrChecksum) {
		t.Errorf("tampered .deb: err = %v", err)
	}
}

// treeDigest lists every object of a tree with its metadata and content.
func treeDigest(t *testing.T, dir string, meta *tree.Meta) string {
	t.Helper()
	return treeDigestAt(t, dir, meta, -1)
}

// treeDigestAt is treeDigest with modification times clamped to epoch (as
// an image has them), unless it is -1.
func treeDigestAt(t *testing.T, dir string, meta *tree.Meta, epoch int64) string {
	t.Helper()
	n, err := tree.Load(dir, tree.Options{Meta: meta, Epoch: epoch})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	n.Walk(func(n *tree.Node) error {
		content := n.Target
		if n.Kind == tree.Regular && n.Link == nil {
			c, _ := os.ReadFile(n.HostPath)
			content = string(c)
		}
		fmt.Fprintf(&b, "%s %v %o %d:%d %d %q\n", n.Path, n.Kind, n.Mode, n.UID, n.GID, n.Mtime, content)
		return nil
	})
	return b.String()
}

// inCache returns a copy of plan that downloads into the cache dir.
func inCache(plan *Plan, dir string) *Plan {
	p := *plan
	p.CacheDir = dir
	return &p
}
