package tree

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hostileRoot is a tree with symlinks aimed out of it and a directory
// outside holding a victim file and a secret.
type hostileRoot struct {
	root    *Root
	dir     string // the root's host path
	outside string // a host directory beside the root
}

func newHostileRoot(t *testing.T) *hostileRoot {
	t.Helper()
	base := t.TempDir()
	h := &hostileRoot{dir: filepath.Join(base, "root"), outside: filepath.Join(base, "outside")}
	for _, d := range []string{h.dir, h.outside, filepath.Join(h.dir, "usr/bin"), filepath.Join(h.dir, "etc")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(h.outside, "victim"), []byte("keep"), 0o644)
	os.WriteFile(filepath.Join(h.outside, "secret"), []byte("host secret"), 0o600)
	links := map[string]string{
		"bin":          "usr/bin",                                       // merged /usr, relative
		"sbin":         "/usr/bin",                                      // absolute, means root/usr/bin
		"abs":          h.outside,                                       // absolute host path
		"up":           "../../../../../../../../../../../" + h.outside, // climbs out
		"usr/up":       "../../../../../../../../../../../" + h.outside, // from a subdirectory
		"chain1":       "chain2",                                        // a chain ending outside
		"chain2":       "usr/chain3",                                    //
		"usr/chain3":   "../up",                                         //
		"etc/passwd":   filepath.Join(h.outside, "victim"),              // last component
		"etc/secret":   filepath.Join(h.outside, "secret"),              //
		"etc/relvict":  "../../outside/victim",                          //
		"loop":         "loop",                                          // a loop
		"usr/dotdot":   "..",                                            //
		"usr/rootlink": "/",                                             //
	}
	for l, target := range links {
		if err := os.Symlink(target, filepath.Join(h.dir, l)); err != nil {
			t.Fatal(err)
		}
	}
	r, err := OpenRoot(h.dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	h.root = r
	return h
}

// untouched fails the test when anything outside the root changed.
func (h *hostileRoot) untouched(t *testing.T) {
	t.Helper()
	ents, _ := os.ReadDir(h.outside)
	if len(ents) != 2 {
		t.Fatalf("the directory outside the root changed: %v", ents)
	}
	if b, _ := os.ReadFile(filepath.Join(h.outside, "victim")); string(b) != "keep" {
		t.Fatalf("the victim outside was written: %q", b)
	}
	if fi, _ := os.Stat(filepath.Join(h.outside, "victim")); fi.Mode().Perm() != 0o644 {
		t.Fatalf("the victim's mode changed: %v", fi.Mode())
	}
	if ents, _ := os.ReadDir(filepath.Dir(h.dir)); len(ents) != 2 {
		t.Fatalf("something was written beside the root: %v", ents)
	}
}

func TestRootWritesStayInside(t *testing.T) {
	h := newHostileRoot(t)
	for _, tc := range []struct {
		rel  string
		want string // where the file lands, relative to the root; "" refused
	}{
		{"../escape", "escape"},
		{"../../../../escape2", "escape2"},
		{"usr/../../escape3", "escape3"},
		{"bin/tool", "usr/bin/tool"},
		{"sbin/tool2", "usr/bin/tool2"},
		{"usr/dotdot/usr/bin/tool3", "usr/bin/tool3"},
		{"usr/rootlink/etc/conf", "etc/conf"},
		// Symlinks to the host re-rooted: their targets do not exist in
		// the tree and are not created through the dangling link.
		{"abs/file", ""},
		{"up/file", ""},
		{"usr/up/dir/file", ""},
		{"chain1/file", ""},
		{"loop/file", ""},
	} {
		err := h.root.WriteFile(tc.rel, []byte("pwned"), 0o644)
		if tc.want == "" {
			if err == nil {
				t.Errorf("WriteFile(%q) succeeded", tc.rel)
			}
			continue
		}
		if err != nil {
			t.Errorf("WriteFile(%q): %v", tc.rel, err)
			continue
		}
		if b, err := os.ReadFile(filepath.Join(h.dir, tc.want)); err != nil || string(b) != "pwned" {
			t.Errorf("WriteFile(%q) did not land at %s: %q %v", tc.rel, tc.want, b, err)
		}
	}
	h.untouched(t)

	// Once the host path exists inside the tree, a write through the
	// absolute symlink lands there.
	if err := os.MkdirAll(filepath.Join(h.dir, h.outside), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"abs/file", "up/file2", "chain1/file3"} {
		if err := h.root.WriteFile(rel, []byte("inside"), 0o644); err != nil {
			t.Fatalf("WriteFile(%q): %v", rel, err)
		}
	}
	for _, n := range []string{"file", "file2", "file3"} {
		if b, _ := os.ReadFile(filepath.Join(h.dir, h.outside, n)); string(b) != "inside" {
			t.Errorf("%s not re-rooted: %q", n, b)
		}
	}
	// MkdirAll through the symlinked parent creates inside too.
	d, err := h.root.MkdirAll("usr/up/new/dir")
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if fi, err := os.Stat(filepath.Join(h.dir, h.outside, "new/dir")); err != nil || !fi.IsDir() {
		t.Errorf("usr/up/new/dir not created inside: %v", err)
	}
	h.untouched(t)
}

func TestRootReplacesLastSymlink(t *testing.T) {
	h := newHostileRoot(t)
	// WriteFile replaces the symlink, never writes through it.
	if err := h.root.WriteFile("etc/passwd", []byte("root:x:0:0::/root:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(filepath.Join(h.dir, "etc/passwd")); !fi.Mode().IsRegular() {
		t.Errorf("etc/passwd is %v, want a regular file", fi.Mode())
	}
	d, err := h.root.OpenDir("etc")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// Create never opens an existing name, a symlink least of all.
	if f, err := d.Create("relvict", 0o644); err == nil || !errors.Is(err, fs.ErrExist) {
		if f != nil {
			f.Close()
		}
		t.Errorf("Create over a symlink: %v", err)
	}
	// Chmod refuses a symlink rather than changing its target.
	if err := d.Chmod("relvict", 0o777); err == nil {
		t.Error("Chmod of a symlink succeeded")
	}
	if err := h.root.Chmod("etc/secret", 0o666); err == nil {
		t.Error("Root.Chmod of a symlink succeeded")
	}
	// OpenFile never opens through a symlink, nor creates.
	if f, err := h.root.OpenFile("etc/relvict", os.O_WRONLY|os.O_TRUNC); err == nil {
		f.Close()
		t.Error("OpenFile opened through a symlink")
	}
	if f, err := h.root.OpenFile("etc/new", os.O_WRONLY|os.O_CREATE); err == nil {
		f.Close()
		t.Error("OpenFile created a file")
	}
	// Remove through a symlink to the host finds nothing to remove.
	for _, rel := range []string{"abs/victim", "up/victim", "usr/up/victim"} {
		if err := h.root.Remove(rel); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Remove(%q) = %v", rel, err)
		}
	}
	// Chtimes changes the symlink itself.
	when := time.Unix(1234567890, 0)
	if err := h.root.Chtimes("etc/relvict", when); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(filepath.Join(h.dir, "etc/relvict")); !fi.ModTime().Equal(when) {
		t.Errorf("symlink mtime %v", fi.ModTime())
	}
	if fi, _ := os.Stat(filepath.Join(h.outside, "victim")); fi.ModTime().Equal(when) {
		t.Error("Chtimes followed the symlink")
	}
	// A hard link of a symlink links the symlink.
	if err := d.Link(d, "relvict", "relvict2"); err != nil {
		t.Fatal(err)
	}
	if l, err := os.Readlink(filepath.Join(h.dir, "etc/relvict2")); err != nil || l != "../../outside/victim" {
		t.Errorf("linked %q %v", l, err)
	}
	// Remove removes the symlink, not the victim.
	if err := d.Remove("relvict"); err != nil {
		t.Fatal(err)
	}
	// Rename replaces a symlink.
	f, err := d.Create("new", 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := d.Rename("new", "relvict2"); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(filepath.Join(h.dir, "etc/relvict2")); !fi.Mode().IsRegular() {
		t.Errorf("relvict2 is %v", fi.Mode())
	}
	h.untouched(t)
}

func TestRootReadsStayInside(t *testing.T) {
	h := newHostileRoot(t)
	// The host's secret is out of reach; with a file at the re-rooted
	// path, that file is read.
	for _, rel := range []string{"etc/secret", "abs/secret", "up/secret", "chain1/secret", "usr/up/secret"} {
		if b, err := h.root.ReadFile(rel); err == nil {
			t.Errorf("ReadFile(%q) = %q", rel, b)
		}
		if _, err := h.root.Lstat(rel); err == nil && rel != "etc/secret" {
			t.Errorf("Lstat(%q) found the host's file", rel)
		}
		if ents, err := h.root.ReadDir(filepath.Dir(rel)); err == nil && rel != "etc/secret" {
			t.Errorf("ReadDir(%q) listed the host: %v", filepath.Dir(rel), ents)
		}
	}
	os.MkdirAll(filepath.Join(h.dir, h.outside), 0o755)
	os.WriteFile(filepath.Join(h.dir, h.outside, "secret"), []byte("tree file"), 0o644)
	for _, rel := range []string{"etc/secret", "abs/secret", "up/secret", "chain1/secret"} {
		if b, err := h.root.ReadFile(rel); err != nil || string(b) != "tree file" {
			t.Errorf("ReadFile(%q) = %q, %v", rel, b, err)
		}
	}
	f, err := h.root.Open("up/secret")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != int64(len("tree file")) {
		t.Errorf("Open(up/secret) opened %v, %v", fi, err)
	}
	f.Close()
	// A fifo does not make Open wait for a writer.
	if err := syscall.Mkfifo(filepath.Join(h.dir, "etc/fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if f, err := h.root.Open("etc/fifo"); err != nil {
		t.Errorf("Open(fifo): %v", err)
	} else {
		f.Close()
	}
	os.Remove(filepath.Join(h.dir, "etc/fifo"))
	ents, err := h.root.ReadDir("abs")
	if err != nil || len(ents) != 1 || ents[0].Name() != "secret" {
		t.Errorf("ReadDir(abs) = %v, %v", ents, err)
	}
	// Lstat does not follow the last component.
	fi, err := h.root.Lstat("etc/secret")
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 || fi.Name() != "secret" {
		t.Errorf("Lstat(etc/secret) = %v, %v", fi, err)
	}
	if fi, err := h.root.Lstat("bin/"); err != nil || fi.Mode().Type() != fs.ModeSymlink {
		t.Errorf("Lstat(bin/) = %v, %v", fi, err)
	}
	if fi, err := h.root.Lstat(""); err != nil || !fi.IsDir() {
		t.Errorf("Lstat of the root = %v, %v", fi, err)
	}
	if _, err := h.root.ReadFile("loop"); err == nil {
		t.Error("read through a symlink loop")
	}
	h.untouched(t)
}

func TestRootNamesAreOneComponent(t *testing.T) {
	h := newHostileRoot(t)
	d, err := h.root.OpenDir("usr")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	bad := []string{"", ".", "..", "../escape", "a/b", "/abs", "x\x00y"}
	for _, n := range bad {
		checks := map[string]error{}
		if f, err := d.Create(n, 0o644); err == nil {
			f.Close()
		} else {
			checks["Create"] = err
		}
		checks["Mkdir"] = d.Mkdir(n, 0o755)
		checks["Symlink"] = d.Symlink("x", n)
		checks["Link"] = d.Link(d, "bin", n)
		checks["LinkSrc"] = d.Link(d, n, "new")
		checks["Rename"] = d.Rename("bin", n)
		checks["Remove"] = d.Remove(n)
		checks["Chmod"] = d.Chmod(n, 0o700)
		checks["Chtimes"] = d.Chtimes(n, time.Unix(0, 0))
		checks["WriteFile"] = d.WriteFile(n, nil, 0o644)
		_, checks["Lstat"] = d.Lstat(n)
		for op, err := range checks {
			if !errors.Is(err, ErrUnsafePath) {
				t.Errorf("%s(%q): %v, want ErrUnsafePath", op, n, err)
			}
		}
	}
	for _, rel := range []string{"", ".", "/", "usr/.."} {
		if err := h.root.WriteFile(rel, nil, 0o644); err == nil {
			t.Errorf("WriteFile(%q) succeeded", rel)
		}
	}
	h.untouched(t)
}

func TestRootModesIgnoreUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	h := newHostileRoot(t)
	d, err := h.root.MkdirAll("var/lib/dpkg")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, p := range []string{"var", "var/lib", "var/lib/dpkg"} {
		if fi, _ := os.Stat(filepath.Join(h.dir, p)); fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: mode %v", p, fi.Mode())
		}
	}
	f, err := d.Create("status", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("x")
	f.Close()
	if err := d.Mkdir("info", 0o750); err != nil {
		t.Fatal(err)
	}
	if err := h.root.WriteFile("var/lib/dpkg/available", nil, 0o664); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]fs.FileMode{"status": 0o644, "info": 0o750, "available": 0o664} {
		if fi, _ := os.Stat(filepath.Join(h.dir, "var/lib/dpkg", p)); fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
	if err := h.root.Chmod("var/lib/dpkg/status", 0o600); err != nil {
		t.Fatal(err)
	}
	f, err = h.root.OpenFile("var/lib/dpkg/status", os.O_WRONLY|os.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("y")
	f.Close()
	if err := h.root.Remove("var/lib/dpkg/info"); err != nil {
		t.Fatal(err)
	}
	fi, err := d.Lstat("status")
	if err != nil || fi.Mode() != 0o600 || fi.Size() != 1 || !fi.Mode().IsRegular() {
		t.Errorf("Lstat(status) = %v %v", fi, err)
	}
	// No temporary names stay behind.
	ents, _ := os.ReadDir(filepath.Join(h.dir, "var/lib/dpkg"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

func TestRootResolveNamesWhereKernelWrites(t *testing.T) {
	h := newHostileRoot(t)
	for _, rel := range []string{"bin/tool", "sbin/tool", "usr/dotdot/etc/x", "usr/rootlink/usr/bin/y", "etc/passwd"} {
		name, err := h.root.Resolve(rel)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.root.WriteFile(rel, []byte(rel), 0o644); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(h.dir, name)); err != nil || string(b) != rel {
			t.Errorf("Resolve(%q) = %q, but the write went elsewhere (%q %v)", rel, name, b, err)
		}
	}
	h.untouched(t)
}

func TestRootMkdirAllFuncReadlinkDirCache(t *testing.T) {
	h := newHostileRoot(t)
	var made []string
	d, err := h.root.MkdirAllFunc("bin/a/b", func(rel string) { made = append(made, rel) })
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	// bin is the merged-/usr link: a and b are made in usr/bin, and
	// reported by the path given.
	if strings.Join(made, ",") != "bin/a,bin/a/b" {
		t.Errorf("made %q", made)
	}
	if fi, err := os.Stat(filepath.Join(h.dir, "usr/bin/a/b")); err != nil || !fi.IsDir() {
		t.Errorf("usr/bin/a/b: %v", err)
	}
	for rel, want := range map[string]string{"sbin": "/usr/bin", "usr/dotdot/etc/secret": filepath.Join(h.outside, "secret")} {
		if got, err := h.root.Readlink(rel); err != nil || got != want {
			t.Errorf("Readlink(%q) = %q, %v; want %q", rel, got, err, want)
		}
	}
	if _, err := h.root.Readlink("abs/victim"); err == nil {
		t.Error("Readlink through a symlink to the host succeeded")
	}
	made = nil
	dc := DirCache{Root: h.root, Made: func(rel string) { made = append(made, rel) }}
	defer dc.Close()
	a, err := dc.Get("opt/x")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := dc.Get("opt/x"); err != nil || b != a {
		t.Errorf("second Get: %v %v", b, err)
	}
	if _, err := dc.Get("up/x"); err == nil {
		t.Error("DirCache created a directory through a symlink to the host")
	}
	if strings.Join(made, ",") != "opt,opt/x" {
		t.Errorf("made %q", made)
	}
	h.untouched(t)
}

func TestReadFileReadDir(t *testing.T) {
	h := newHostileRoot(t)
	os.WriteFile(filepath.Join(h.dir, "usr/bin/tool"), []byte("x"), 0o755)
	if b, err := ReadFile(h.dir, "bin/tool"); err != nil || string(b) != "x" {
		t.Errorf("ReadFile(bin/tool) = %q, %v", b, err)
	}
	if _, err := ReadFile(h.dir, "etc/secret"); err == nil {
		t.Error("ReadFile followed a symlink to the host")
	} else if !strings.Contains(err.Error(), filepath.Join(h.dir, "etc/secret")) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v does not name the host path or lost its cause", err)
	}
	if ents, err := ReadDir(h.dir, "sbin"); err != nil || len(ents) != 1 || ents[0].Name() != "tool" {
		t.Errorf("ReadDir(sbin) = %v, %v", ents, err)
	}
	if _, err := ReadDir(h.dir, "abs"); err == nil {
		t.Error("ReadDir followed a symlink to the host")
	}
	if _, err := ReadFile(filepath.Join(h.dir, "missing"), "x"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing tree: %v", err)
	}
}
