package pacman

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sxb-build/sxb/builtins/pacman/pacmantest"
	"github.com/sxb-build/sxb/builtins/tree"
)

// oracle installs targets with Debian's pacman into a new root, as mkosi
// runs it (--noconfirm, scriptlets off), and returns the root, the
// output and pacman's error.
func oracle(t *testing.T, conf, gpgdir string, targets []string, extra ...string) (string, string, error) {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	os.MkdirAll(filepath.Join(root, "var/lib/pacman"), 0o755)
	args := []string{"--root", root, "--dbpath", filepath.Join(root, "var/lib/pacman"), "--config", conf,
		"--gpgdir", gpgdir, "--cachedir", filepath.Join(dir, "cache"), "--logfile", filepath.Join(dir, "pacman.log"),
		"--hookdir", filepath.Join(root, "etc/pacman.d/hooks"), "--noconfirm", "--noscriptlet", "--noprogressbar"}
	args = append(append(args, extra...), append([]string{"-Sy"}, targets...)...)
	out, err := exec.Command("pacman", args...).CombinedOutput()
	return root, string(out), err
}

// fixtureRequest is a request for the fixture's mirror.
func fixtureRequest(t *testing.T, fx *pacmantest.Fixture, mirror string, targets ...string) Request {
	return Request{Mirror: "file://" + mirror, KeyringDir: fx.KeyringDir, CacheDir: filepath.Join(t.TempDir(), "cache"), Packages: targets}
}

// sxbInstall resolves and installs req into a new tree.
func sxbInstall(t *testing.T, req Request, withDocs bool) (string, *tree.Meta, *Plan, *Result) {
	t.Helper()
	plan, err := Resolve(context.Background(), req)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	root := filepath.Join(t.TempDir(), "tree")
	meta := tree.NewMeta()
	res, err := Install(context.Background(), plan, root, meta, InstallOptions{WithDocs: withDocs})
	if err != nil {
		t.Fatalf("Install: %v", err)
	}
	return root, meta, plan, res
}

// entry is what the comparison looks at for one path.
type entry struct {
	kind     string
	mode     uint32
	uid, gid uint32
	content  string // SHA-256 of a file, target of a link
	mtime    int64  // files and links only: pacman touches directories
}

func (e entry) String() string {
	return fmt.Sprintf("%s %04o %d:%d %s mtime=%d", e.kind, e.mode, e.uid, e.gid, e.content, e.mtime)
}

// snapshot describes the tree at root below prefix-free paths, leaving
// out the package database and what pacman keeps beside the image
// (var/lib/pacman). meta nil means the tree's owners are real (pacman's
// root); otherwise they and the real modes are in meta.
func snapshot(t *testing.T, root string, meta *tree.Meta) map[string]entry {
	t.Helper()
	opts := tree.Options{Meta: meta, Epoch: -1, KeepOwner: meta == nil}
	if meta == nil {
		opts.Meta = tree.NewMeta()
	}
	n, err := tree.Load(root, opts)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]entry{}
	n.Walk(func(n *tree.Node) error {
		if n.Path == "" || n.Path == "var/lib/pacman" || strings.HasPrefix(n.Path, "var/lib/pacman/") {
			return nil
		}
		e := entry{kind: n.Kind.String(), mode: n.Mode, uid: n.UID, gid: n.GID}
		switch n.Kind {
		case tree.Regular:
			f, err := n.Open()
			if err == nil {
				h := sha256.New()
				b, _ := readAll(f)
				h.Write(b)
				f.Close()
				e.content = hex.EncodeToString(h.Sum(nil))[:16]
			}
			e.mtime = n.Mtime
		case tree.Symlink:
			e.content, e.mtime = n.Target, n.Mtime
		}
		out[n.Path] = e
		return nil
	})
	return out
}

func readAll(f interface{ Read([]byte) (int, error) }) ([]byte, error) {
	var out []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := f.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return out, nil
		}
	}
}

// diffTrees reports every path whose entry differs.
func diffTrees(t *testing.T, want, got map[string]entry) {
	t.Helper()
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		w, wok := want[k]
		g, gok := got[k]
		switch {
		case !gok:
			t.Errorf("/%s: pacman has %v, sxb nothing", k, w)
		case !wok:
			t.Errorf("/%s: sxb has %v, pacman nothing", k, g)
		case w != g:
			t.Errorf("/%s: pacman %v, sxb %v", k, w, g)
		}
	}
}

// queried is pacman -Q on a root's local database.
func queried(t *testing.T, root string) string {
	t.Helper()
	out, err := exec.Command("pacman", "--root", root, "--dbpath", filepath.Join(root, "var/lib/pacman"), "-Q").CombinedOutput()
	if err != nil {
		t.Fatalf("pacman -Q in %s: %v\n%s", root, err, out)
	}
	return string(out)
}

var installDate = regexp.MustCompile(`%INSTALLDATE%\n[0-9]+\n`)

// compareLocalDB compares the local database entries (desc without the
// install date, files, mtree, install) of two roots.
func compareLocalDB(t *testing.T, want, got string) {
	t.Helper()
	wl, _ := filepath.Glob(filepath.Join(want, LocalDBPath, "*", "*"))
	gl, _ := filepath.Glob(filepath.Join(got, LocalDBPath, "*", "*"))
	rel := func(l []string, root string) []string {
		var out []string
		for _, p := range l {
			r, _ := filepath.Rel(root, p)
			out = append(out, r)
		}
		return out
	}
	if w, g := strings.Join(rel(wl, want), "\n"), strings.Join(rel(gl, got), "\n"); w != g {
		t.Errorf("local database files differ:\npacman:\n%s\nsxb:\n%s", w, g)
		return
	}
	for _, p := range rel(wl, want) {
		w, _ := os.ReadFile(filepath.Join(want, p))
		g, _ := os.ReadFile(filepath.Join(got, p))
		ws, gs := installDate.ReplaceAllString(string(w), ""), installDate.ReplaceAllString(string(g), "")
		if ws != gs {
			t.Errorf("%s differs:\npacman:\n%s\nsxb:\n%s", p, ws, gs)
		}
	}
	w, _ := os.ReadFile(filepath.Join(want, LocalDBPath, "ALPM_DB_VERSION"))
	g, _ := os.ReadFile(filepath.Join(got, LocalDBPath, "ALPM_DB_VERSION"))
	if string(w) != string(g) {
		t.Errorf("ALPM_DB_VERSION: pacman %q, sxb %q", w, g)
	}
}

// TestCrossCheckPacman installs target sets with pacman and with sxb from
// the same signed repositories and compares the package sets (pacman -Q
// on both roots), every file's type, mode, owner, content and mtime, and
// the local database.
func TestCrossCheckPacman(t *testing.T) {
	fx := pacmantest.Get(t)
	cases := []struct {
		name     string
		targets  []string
		withDocs bool
	}{
		{"tool", []string{"fx-tool", "fx-hook", "fx-extra-dep", "fx-xz"}, true},
		{"group", []string{"fx-group"}, true},
		{"virtual", []string{"fx-virtual"}, true},
		{"first-repository-wins", []string{"fx-dup", "fx-x86"}, true},
		{"repository-prefix", []string{"extra/fx-dup"}, true},
		{"versioned", []string{"fx-lib>=2.0", "fx-epoch>1:0.4"}, true},
		{"conflict-provides", []string{"fx-new", "fx-old"}, true},
		{"replaced-not-upgraded", []string{"fx-old"}, true},
		{"repository-provider", []string{"core/fx-old"}, true},
		{"no-docs", []string{"fx-tool", "fx-lib"}, false},
		{"base-layout", []string{"filesystem", "fx-tool"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conf := fx.PacmanConf
			if !c.withDocs {
				conf = fx.PacmanConfFor(t, fx.Mirror, "NoExtract = usr/share/doc/*", "NoExtract = usr/share/man/*",
					"NoExtract = usr/share/groff/*", "NoExtract = usr/share/gtk-doc/*", "NoExtract = usr/share/info/*")
			}
			want, out, err := oracle(t, conf, fx.PacmanGnuPG, c.targets)
			if err != nil {
				t.Fatalf("pacman: %v\n%s", err, out)
			}
			got, meta, _, _ := sxbInstall(t, fixtureRequest(t, fx, fx.Mirror, c.targets...), c.withDocs)
			if w, g := queried(t, want), queried(t, got); w != g {
				t.Errorf("pacman -Q differs:\npacman:\n%s\nsxb:\n%s", w, g)
			}
			diffTrees(t, snapshot(t, want, nil), snapshot(t, got, meta))
			compareLocalDB(t, want, got)
		})
	}
}

var _ = time.Now

// TestFileConflictsLikePacman installs a package whose directory usr/sbin
// is a symlink in filesystem, in one transaction and on a base that has
// filesystem: pacman refuses both as file conflicts, and so must sxb.
func TestFileConflictsLikePacman(t *testing.T) {
	fx := pacmantest.Get(t)
	if _, out, err := oracle(t, fx.PacmanConf, fx.PacmanGnuPG, []string{"filesystem", "fx-sbin"}); err == nil || !strings.Contains(out, "exists in both") {
		t.Fatalf("pacman did not refuse the transaction: %v\n%s", err, out)
	}
	err := refused(t, fixtureRequest(t, fx, fx.Mirror, "filesystem", "fx-sbin"))
	if err == nil || !strings.Contains(err.Error(), "/usr/sbin: file conflict: it exists in both filesystem and fx-sbin") {
		t.Errorf("one transaction: %v", err)
	}
	base, _, _, _ := sxbInstall(t, fixtureRequest(t, fx, fx.Mirror, "filesystem"), true)
	req := fixtureRequest(t, fx, fx.Mirror, "fx-sbin")
	req.BaseRoot = base
	err = refused(t, req)
	if err == nil || !strings.Contains(err.Error(), "/usr/sbin: file conflict: fx-sbin ships it and the base's filesystem has it") {
		t.Errorf("on a base: %v", err)
	}
}
