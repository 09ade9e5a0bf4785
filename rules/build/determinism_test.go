package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestChecksumsOfRepublishedTar: SHA256SUMS lists the digest of the tar a
// base publishes now, not the line of the previous build's tar (digests
// were looked up by cache output name, "tree.tar", and the old line of
// "base.tar" was kept).
func TestChecksumsOfRepublishedTar(t *testing.T) {
	ws := t.TempDir()
	os.MkdirAll(filepath.Join(ws, "img/etc-tree/etc/app"), 0o755)
	cache := t.TempDir()
	out := filepath.Join(ws, "sxb-out/img")
	for _, pkgs := range [][]string{{"base-files", "libc"}, {"base-files", "libc", "zlib"}} {
		g := testGraph(ws, nil)
		b := g.Targets["//img:base"].Base
		b.Output, b.Packages = "tar", pkgs
		var log bytes.Buffer
		if _, err := Build(context.Background(), g, g.Order(), Options{CacheDir: cache, Jobs: 2, Log: &log, Installers: map[string]Installer{"fake": &fakeInstaller{}}, ImageWriter: listingWriter}); err != nil {
			t.Fatalf("build: %v\n%s", err, log.String())
		}
		sums, err := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
			sum, name, _ := strings.Cut(l, "  ")
			c, err := os.ReadFile(filepath.Join(out, name))
			if err != nil {
				t.Fatal(err)
			}
			if d := sha256.Sum256(c); hex.EncodeToString(d[:]) != sum {
				t.Errorf("packages %v: SHA256SUMS line %q does not match %s", pkgs, l, name)
			}
		}
		if !strings.Contains(string(sums), "  base.tar\n") {
			t.Errorf("SHA256SUMS lacks base.tar:\n%s", sums)
		}
	}
}

// TestUmaskDoesNotReachImages: files and directories sxb itself creates in
// a tree (tree roots, extension-release) have the same modes whatever the
// builder's umask.
func TestUmaskDoesNotReachImages(t *testing.T) {
	ws := t.TempDir()
	os.MkdirAll(filepath.Join(ws, "img/etc-tree/etc/app"), 0o755)
	os.WriteFile(filepath.Join(ws, "img/etc-tree/etc/app/app.conf"), []byte("x=1\n"), 0o644)
	old := syscall.Umask(0o077)
	g := testGraph(ws, []string{"jq"})
	var log bytes.Buffer
	_, err := Build(context.Background(), g, g.Order(), Options{CacheDir: t.TempDir(), Jobs: 2, Log: &log, Installers: map[string]Installer{"fake": &fakeInstaller{}}, ImageWriter: listingWriter})
	syscall.Umask(old)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log.String())
	}
	for _, c := range []struct{ file, want string }{
		{"tool_2.0.raw", " dir 755\n"},
		{"tool_2.0.raw", "\nusr/lib/extension-release.d dir 755\n"},
		{"tool_2.0.raw", "\nusr/lib/extension-release.d/extension-release.tool file 644\n"},
		{"conf.raw", " dir 755\n"},
		{"conf.raw", "\netc/extension-release.d dir 755\n"},
		{"conf.raw", "\netc/extension-release.d/extension-release.conf file 644\n"},
	} {
		b, err := os.ReadFile(filepath.Join(ws, "sxb-out/img", c.file))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(c.want, "\n") && !strings.HasPrefix(string(b), c.want) || !strings.Contains(string(b), c.want) {
			t.Errorf("%s lacks %q:\n%s", c.file, c.want, b)
		}
	}
}

// TestLinkTreeKeepsTimes: a base published as a directory has the
// directory and symlink times of the cache entry, not the time of
// publishing.
func TestLinkTreeKeepsTimes(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(filepath.Join(src, "usr/bin"), 0o755)
	os.WriteFile(filepath.Join(src, "usr/bin/tool"), []byte("x"), 0o755)
	if err := os.Symlink("usr/bin", filepath.Join(src, "bin")); err != nil {
		t.Fatal(err)
	}
	when := time.Unix(1600000000, 0)
	for _, p := range []string{"bin", "usr/bin/tool", "usr/bin", "usr", ""} {
		ts := unix.NsecToTimespec(when.UnixNano())
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(src, p), []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
	}
	dst := filepath.Join(t.TempDir(), "dst")
	if err := linkTree(src, dst); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"", "usr", "usr/bin", "usr/bin/tool", "bin"} {
		fi, err := os.Lstat(filepath.Join(dst, p))
		if err != nil {
			t.Fatal(err)
		}
		if !fi.ModTime().Equal(when) {
			t.Errorf("%q: mtime %v, want %v", p, fi.ModTime(), when)
		}
	}
}

// TestPlaceFileTwiceLeavesNoTemporary: publishing an output that is
// already in place (same inode: rename(2) does nothing) leaves nothing
// behind.
func TestPlaceFileTwiceLeavesNoTemporary(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "entry.raw")
	os.WriteFile(src, []byte("img"), 0o644)
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o755)
	for i := 0; i < 2; i++ {
		if err := placeFile(src, filepath.Join(out, "x.raw")); err != nil {
			t.Fatal(err)
		}
	}
	ents, _ := os.ReadDir(out)
	if len(ents) != 1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("output directory holds %v, want only x.raw", names)
	}
}
