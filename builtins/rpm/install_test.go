package rpm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sxb-build/sxb/builtins/rpm/rpmtest"
	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/testenv"
	"golang.org/x/sys/unix"
)

func TestFileConflicts(t *testing.T) {
	ctx := context.Background()
	plan, err := scenarioResolve(t, "clash-a", "clash-b")
	if err != nil {
		t.Fatal(err)
	}
	err = Install(ctx, plan, t.TempDir(), tree.NewMeta(), InstallOptions{})
	if err == nil || !strings.Contains(err.Error(), "/usr/share/fx/clash conflicts") {
		t.Fatalf("conflicting files: err = %v", err)
	}
	if plan, err = scenarioResolve(t, "share-a", "share-b"); err != nil {
		t.Fatal(err)
	}
	if err := Install(ctx, plan, t.TempDir(), tree.NewMeta(), InstallOptions{}); err != nil {
		t.Fatalf("identical shared file: %v", err)
	}
}

func TestOwnerNames(t *testing.T) {
	ctx := context.Background()
	plan, err := scenarioResolve(t, "owned")
	if err != nil {
		t.Fatal(err)
	}
	var warnings []string
	warn := func(msg string) { warnings = append(warnings, msg) }
	meta := tree.NewMeta()
	if err := Install(ctx, plan, t.TempDir(), meta, InstallOptions{Warn: warn}); err != nil {
		t.Fatal(err)
	}
	o, _ := meta.Get("usr/share/fx/owned")
	if *o.UID != 0 || *o.GID != 0 || len(warnings) != 2 || !strings.Contains(warnings[0], `unknown user "svc"`) {
		t.Errorf("unknown owner: uid %d gid %d, warnings %q", *o.UID, *o.GID, warnings)
	}
	// The base's passwd and group name them.
	base := t.TempDir()
	os.MkdirAll(filepath.Join(base, "etc"), 0o755)
	os.WriteFile(filepath.Join(base, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\nsvc:x:481:480::/:/sbin/nologin\n"), 0o644)
	os.WriteFile(filepath.Join(base, "etc/group"), []byte("root:x:0:\nsvcgrp:x:480:\n"), 0o644)
	meta, warnings = tree.NewMeta(), nil
	if err := Install(ctx, plan, t.TempDir(), meta, InstallOptions{Warn: warn, BaseRoot: base}); err != nil {
		t.Fatal(err)
	}
	o, _ = meta.Get("usr/share/fx/owned")
	if *o.UID != 481 || *o.GID != 480 || *o.Mode != 0640 || len(warnings) != 0 {
		t.Errorf("owner from base: uid %d gid %d mode %o, warnings %q", *o.UID, *o.GID, *o.Mode, warnings)
	}
}

// TestFileCapsEncoding compares the xattr encoding with what setcap(8)
// writes for the same text.
func TestFileCapsEncoding(t *testing.T) {
	testenv.NeedRoot(t)
	setcap := testenv.NeedTool(t, "setcap")
	for _, text := range []string{
		"cap_net_raw=ep",
		"cap_net_raw,cap_net_admin=ep",
		"cap_sys_admin+p",
		"cap_setuid,cap_setgid+ei",
		"cap_chown=eip cap_chown-e",
		"cap_bpf,cap_perfmon,cap_checkpoint_restore=p",
		"cap_dac_override,cap_sys_ptrace+ep cap_dac_override-p",
	} {
		f := filepath.Join(t.TempDir(), "f")
		os.WriteFile(f, nil, 0o755)
		if out, err := exec.Command(setcap, text, f).CombinedOutput(); err != nil {
			t.Fatalf("setcap %s: %v\n%s", text, err, out)
		}
		buf := make([]byte, 64)
		n, err := unix.Getxattr(f, "security.capability", buf)
		if err != nil {
			t.Fatalf("getxattr after setcap %s: %v", text, err)
		}
		got, err := encodeFileCaps(text)
		if err != nil {
			t.Errorf("%s: %v", text, err)
			continue
		}
		if !bytes.Equal(got, buf[:n]) {
			t.Errorf("%s: encoded %x, setcap wrote %x", text, got, buf[:n])
		}
	}
	for _, bad := range []string{"cap_nonsense=ep", "cap_chown", "cap_chown=x"} {
		if _, err := encodeFileCaps(bad); err == nil {
			t.Errorf("%s: encoded, want an error", bad)
		}
	}
}

func TestUnknownRpmlibFeature(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"needs-rpmlib", "needs-future"} {
		plan, err := scenarioResolve(t, name)
		if err != nil {
			t.Fatal(err)
		}
		err = Install(ctx, plan, t.TempDir(), tree.NewMeta(), InstallOptions{})
		if name == "needs-rpmlib" && err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if name == "needs-future" && (err == nil || !strings.Contains(err.Error(), "rpmlib(TeleportingPayloads) <= 9.0-1")) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestDeviceNodes(t *testing.T) {
	plan, err := scenarioResolve(t, "devices")
	if err != nil {
		t.Fatal(err)
	}
	meta := tree.NewMeta()
	root := t.TempDir()
	if err := Install(context.Background(), plan, root, meta, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	n, err := tree.Load(root, tree.Options{Meta: meta, Epoch: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path         string
		kind         tree.Kind
		major, minor uint32
		mode         uint32
	}{{"dev/null", tree.CharDev, 1, 3, 0666}, {"dev/sdb1", tree.BlockDev, 8, 17, 0660}} {
		x := n.Lookup(c.path)
		if x == nil || x.Kind != c.kind || tree.Major(x.Rdev) != c.major || tree.Minor(x.Rdev) != c.minor || x.Mode != c.mode {
			t.Errorf("%s: %+v", c.path, x)
		}
	}
}

// TestInstallReproducible installs the same plan twice: the metadata
// files are byte-identical and the trees (mtimes clamped for directories
// Install creates implicitly) are equal.
func TestInstallReproducible(t *testing.T) {
	fx := seedRepo(t)
	ctx := context.Background()
	plan, err := Resolve(ctx, Request{Distribution: "opensuse", Release: "tumbleweed", Mirror: fx.mirror, Keyring: fx.keyring,
		CacheDir: t.TempDir(), Packages: []string{"systemd", "udev", "helm"}, BaseImage: true})
	if err != nil {
		t.Fatal(err)
	}
	var metas [2][]byte
	var trees [2]map[string]string
	for i := range metas {
		root := filepath.Join(t.TempDir(), "root")
		meta := tree.NewMeta()
		// The second install runs with umask 077: directories Install
		// creates implicitly were 0700 then.
		old := syscall.Umask(0o022 + 0o055*i)
		err := Install(ctx, plan, root, meta, InstallOptions{Downloads: 1 + i})
		syscall.Umask(old)
		if err != nil {
			t.Fatal(err)
		}
		mp := filepath.Join(t.TempDir(), "meta.json")
		if err := meta.Save(mp); err != nil {
			t.Fatal(err)
		}
		metas[i], _ = os.ReadFile(mp)
		n, err := tree.Load(root, tree.Options{Meta: meta, Epoch: 1700000000})
		if err != nil {
			t.Fatal(err)
		}
		trees[i] = map[string]string{}
		n.Walk(func(x *tree.Node) error {
			b := []byte(nil)
			if x.Kind == tree.Regular {
				b, _ = os.ReadFile(x.HostPath)
			}
			trees[i][x.Path] = fmt.Sprintf("%v %o %d %d %d %s %q %x", x.Kind, x.Mode, x.UID, x.GID, x.Mtime, x.Target, b, x.Xattrs["security.capability"])
			return nil
		})
	}
	if !bytes.Equal(metas[0], metas[1]) {
		t.Error("metadata differs between two installs")
	}
	for p, a := range trees[0] {
		if b := trees[1][p]; a != b {
			t.Errorf("trees differ between two installs at %q: %.200s / %.200s", p, a, b)
		}
	}
	if len(trees[0]) != len(trees[1]) {
		t.Error("trees differ between two installs")
	}
	if len(trees[0]) < 20 {
		t.Errorf("tree has only %d entries", len(trees[0]))
	}
}

// TestPayloadCompressions installs packages whose payloads rpmbuild
// compressed with each codec rpm-based distributions use or used.
func TestPayloadCompressions(t *testing.T) {
	fx := seedRepo(t)
	repo := filepath.Join(t.TempDir(), "repo")
	codecs := map[string]string{"gzip": "w9.gzdio", "xz": "w6.xzdio", "bzip2": "w9.bzdio", "lzma": "w7.lzdio", "zstd": "w19.zstdio", "none": "w.ufdio"}
	var pkgs []rpmtest.Pkg
	var names []string
	for _, name := range []string{"bzip2", "gzip", "lzma", "none", "xz", "zstd"} {
		payload := codecs[name]
		pkgs = append(pkgs, rpmtest.Pkg{Name: "codec-" + name, Version: "1", Unsigned: true, Payload: payload,
			Install: "mkdir -p %{buildroot}/usr/share/codec\nseq 1 20000 > %{buildroot}/usr/share/codec/" + name,
			Files:   "/usr/share/codec/" + name})
		names = append(names, "codec-"+name)
	}
	fx.env.Build(t, repo, pkgs)
	fx.env.CreateRepo(t, repo, false, false)
	ctx := context.Background()
	plan, err := Resolve(ctx, Request{Distribution: "opensuse", Repositories: []string{repo}, Packages: names, Insecure: true, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := Install(ctx, plan, root, tree.NewMeta(), InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for i := 1; i <= 20000; i++ {
		fmt.Fprintf(&want, "%d\n", i)
	}
	for name := range codecs {
		checkFile(t, root, "usr/share/codec/"+name, want.String())
	}
}
