package build

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sxb-build/sxb/internal/label"
	"github.com/sxb-build/sxb/rules"
)

// tamper rewrites the record of entry e with fn applied to its outputs.
func tamper(t *testing.T, e *Entry, fn func([]Output) []Output) {
	t.Helper()
	e.Outputs = fn(e.Outputs)
	b, _ := json.Marshal(e)
	if err := os.WriteFile(filepath.Join(e.Dir(), "entry.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestGetRefusesEntriesReachingOutside: a tampered (or shared, hostile)
// cache entry must not make sxb read or publish files outside the entry: an
// output name with "..", an output that is a symlink to a host file, and a
// FIFO (which made Get block forever) are all corrupt entries.
func TestGetRefusesEntriesReachingOutside(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("host secret"), 0o600)
	sum, err := digestOutput(secret, false)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(t *testing.T, e *Entry){
		"dotdot name": func(t *testing.T, e *Entry) {
			rel, _ := filepath.Rel(filepath.Join(e.Dir(), "out"), secret)
			tamper(t, e, func([]Output) []Output {
				return []Output{{Name: rel, Size: sum.Size, Digest: sum.Digest}}
			})
		},
		"symlinked output": func(t *testing.T, e *Entry) {
			os.Remove(e.Path("x.raw"))
			os.Symlink(secret, e.Path("x.raw"))
			tamper(t, e, func([]Output) []Output {
				return []Output{{Name: "x.raw", Size: sum.Size, Digest: sum.Digest}}
			})
		},
		"symlinked tree": func(t *testing.T, e *Entry) {
			os.Symlink(filepath.Dir(secret), e.Path("tree"))
			d, _ := digestOutput(e.Path("tree"), true)
			d.Name = "tree"
			tamper(t, e, func(o []Output) []Output { return append(o, d) })
		},
		"fifo output": func(t *testing.T, e *Entry) {
			os.Remove(e.Path("x.raw"))
			if err := syscall.Mkfifo(e.Path("x.raw"), 0o644); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, fn := range cases {
		t.Run(name, func(t *testing.T) {
			c := &Cache{Dir: t.TempDir()}
			k := Key(name)
			put(t, c, k, 10, time.Now())
			e, err := c.Get(k)
			if err != nil || e == nil {
				t.Fatalf("Get = %v, %v", e, err)
			}
			fn(t, e)
			done := make(chan struct{})
			go func() {
				defer close(done)
				if e, err := c.Get(k); e != nil || err == nil {
					t.Errorf("tampered entry returned: %+v %v", e, err)
				}
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Get blocked")
			}
		})
	}
	if b, _ := os.ReadFile(secret); !strings.Contains(string(b), "host secret") {
		t.Error("the host file was touched")
	}
}

// TestChecksumsIgnoreTamperedSums: SHA256SUMS is read back to reuse
// digests; a line with a short "digest" made the sort slice past its end.
// Such sums are recomputed instead.
func TestChecksumsIgnoreTamperedSums(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.raw"), []byte("a"), 0o644)
	os.WriteFile(filepath.Join(dir, "b.raw"), []byte("b"), 0o644)
	os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte("x  a.raw\nzz  b.raw\n"), 0o644)
	x := &executor{entries: map[string]*Entry{}, pubDirs: map[string]bool{dir: true}}
	if err := x.writeChecksums(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	want := "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb  a.raw\n" +
		"3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d  b.raw\n"
	if string(b) != want {
		t.Errorf("SHA256SUMS:\n%s\nwant:\n%s", b, want)
	}
}

// TestPublishReplacesSymlinks: an output that is a symlink to a file
// elsewhere is replaced, never written through; the lock file is not
// followed either.
func TestPublishReplacesSymlinks(t *testing.T) {
	dir, elsewhere := t.TempDir(), t.TempDir()
	victim := filepath.Join(elsewhere, "victim")
	os.WriteFile(victim, []byte("keep"), 0o644)
	src := filepath.Join(t.TempDir(), "src")
	os.WriteFile(src, []byte("new"), 0o644)
	// internal/atomicfile tests its other writers the same way.
	places := map[string]func(dst string) error{
		"placeFile": func(dst string) error { return placeFile(src, dst) },
		"placeZstd": func(dst string) error { return placeZstd(src, dst) },
	}
	for name, place := range places {
		dst := filepath.Join(dir, name)
		os.Symlink(victim, dst)
		if err := place(dst); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if l, _ := os.Readlink(dst); l == victim {
			t.Errorf("%s: the symlink is still there", name)
		}
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Errorf("written through a symlink: victim holds %q", b)
	}
	lockTarget := filepath.Join(elsewhere, "created")
	os.Symlink(lockTarget, filepath.Join(dir, ".sxb.lock"))
	if unlock, err := lockDir(context.Background(), dir, io.Discard); err == nil {
		unlock()
	}
	if _, err := os.Lstat(lockTarget); err == nil {
		t.Error("the lock file was created through a symlink")
	}
}

// TestApplyFileTreeOverSymlink: a package may ship /etc/app.conf as a
// symlink to a file elsewhere (absolute, so harmless inside the image);
// a user's file tree aimed at /etc/app.conf used to be written through it,
// onto the host. The symlink (or a hard link into a cache) is replaced.
func TestApplyFileTreeOverSymlink(t *testing.T) {
	root := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("host file"), 0o644)
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.Symlink(victim, filepath.Join(root, "etc/app.conf"))
	shared := filepath.Join(t.TempDir(), "cached")
	os.WriteFile(shared, []byte("cached payload"), 0o644)
	os.Link(shared, filepath.Join(root, "etc/linked.conf"))
	src := filepath.Join(t.TempDir(), "app.conf")
	os.WriteFile(src, []byte("user config"), 0o644)
	err := applyTrees(root, "", []rules.Tree{{Source: src, Target: "/etc/app.conf"}, {Source: src, Target: "/etc/linked.conf"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"etc/app.conf", "etc/linked.conf"} {
		if b, err := os.ReadFile(filepath.Join(root, p)); err != nil || string(b) != "user config" {
			t.Errorf("%s: %q %v", p, b, err)
		}
	}
	if b, _ := os.ReadFile(victim); string(b) != "host file" {
		t.Errorf("written through the symlink: the host file holds %q", b)
	}
	if b, _ := os.ReadFile(shared); string(b) != "cached payload" {
		t.Errorf("written through the hard link: the cached file holds %q", b)
	}
}

// TestVersionWithPathIsRefused: the version is part of the output file
// name; one with "/" and ".." used to place the image (and the published
// copy) outside the cache entry and the output directory.
func TestVersionWithPathIsRefused(t *testing.T) {
	ws, cache := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(ws, "s/tree/usr/bin"), 0o755)
	os.WriteFile(filepath.Join(ws, "s/tree/usr/bin/tool"), []byte("#!/bin/sh\n"), 0o755)
	escape := filepath.Join(t.TempDir(), "escaped")
	rel, _ := filepath.Rel(filepath.Join(ws, "sxb-out/s"), escape)
	for _, v := range []string{"1/" + rel, "1\x00"} {
		l := label.Label{Pkg: "s", Name: "s"}
		g := &rules.Graph{Workspace: ws, Targets: map[string]*rules.Target{}}
		g.Targets[l.String()] = &rules.Target{Label: l, Kind: rules.KindSysext, Ext: &rules.Extension{
			Name: "s", Kind: "sysext", Format: "erofs", Verity: "off", Output: "s", Version: v,
			ExtraTrees: []rules.Tree{{Source: filepath.Join(ws, "s/tree"), Target: "/"}}, ExtensionRelease: []rules.KV{{Key: "ID", Value: "_any"}}}}
		if _, err := Build(context.Background(), g, g.Order(), Options{CacheDir: cache, ImageWriter: listingWriter}); err == nil || !strings.Contains(err.Error(), "version") {
			t.Errorf("version %q: err = %v", v, err)
		}
	}
	if m, _ := filepath.Glob(escape + "*"); len(m) > 0 {
		t.Errorf("written outside the output directory: %v", m)
	}
}

// TestPublishNamesArePlain: publish locations name files in their
// directory; a name with a path is refused before anything is written.
func TestPublishNamesArePlain(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []*rules.Publish{
		{Dir: dir, File: "../x.raw"},
		{Dir: dir, File: "x.raw", Symlink: "../../x"},
		{Dir: dir, File: "x.raw", Manifest: ".."},
		{Dir: dir, File: ""},
	} {
		x := &executor{pubDirs: map[string]bool{}}
		if _, err := x.pkgOutputDir(&rules.Target{Publish: p}); err == nil {
			t.Errorf("%+v accepted", p)
		}
	}
	x := &executor{pubDirs: map[string]bool{}}
	if d, err := x.pkgOutputDir(&rules.Target{Publish: &rules.Publish{Dir: dir, File: "x.raw", Symlink: "x"}}); err != nil || d != dir {
		t.Errorf("plain names: %s %v", d, err)
	}
}
