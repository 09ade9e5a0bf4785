package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// onlyNames fails unless dir holds exactly the given names (no temporaries).
func onlyNames(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if len(got) != len(names) {
		t.Fatalf("%s holds %v, want %v", dir, got, names)
	}
	for i := range names {
		if got[i] != names[i] {
			t.Fatalf("%s holds %v, want %v", dir, got, names)
		}
	}
}

func TestWriteReplacesAndLeavesNoTemporaries(t *testing.T) {
	d := t.TempDir()
	f := filepath.Join(d, "x.json")
	if err := Write(f, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(f, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(f)
	fi, _ := os.Stat(f)
	if string(b) != "two" || fi.Mode().Perm() != 0o644 {
		t.Errorf("content %q mode %v", b, fi.Mode())
	}
	onlyNames(t, d, "x.json")
	if err := Write(filepath.Join(d, "missing", "x"), nil, 0o644); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}

// TestReplacesSymlinks: a symlink at the final name is replaced by every
// writer, never written through.
func TestReplacesSymlinks(t *testing.T) {
	d, elsewhere := t.TempDir(), t.TempDir()
	victim := filepath.Join(elsewhere, "victim")
	os.WriteFile(victim, []byte("keep"), 0o644)
	src := filepath.Join(t.TempDir(), "src")
	os.WriteFile(src, []byte("new"), 0o644)
	for name, place := range map[string]func(string) error{
		"Write":      func(dst string) error { return Write(dst, []byte("new"), 0o644) },
		"LinkOrCopy": func(dst string) error { return LinkOrCopy(src, dst, 0o644) },
		"Symlink":    func(dst string) error { return Symlink("src", dst) },
		"Create": func(dst string) error {
			f, err := Create(dst, 0o644)
			if err != nil {
				return err
			}
			f.WriteString("new")
			return f.Commit()
		},
	} {
		dst := filepath.Join(d, name)
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
	onlyNames(t, d, "Create", "LinkOrCopy", "Symlink", "Write")
}

func TestCreateCommitAbort(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	d := t.TempDir()
	file := filepath.Join(d, "img")
	os.WriteFile(file, []byte("old"), 0o600)
	f, err := Create(file, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if f.Name() != file {
		t.Errorf("Name() = %q", f.Name())
	}
	// Written at offsets and read back, as the image and range writers do.
	f.Truncate(8)
	f.WriteAt([]byte("ab"), 6)
	f.WriteAt([]byte("xy"), 0)
	if b, _ := os.ReadFile(file); string(b) != "old" {
		t.Fatalf("the final name changed before Commit: %q", b)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	f.Abort() // no effect after Commit
	b, _ := os.ReadFile(file)
	fi, _ := os.Stat(file)
	if string(b) != "xy\x00\x00\x00\x00ab" || fi.Mode().Perm() != 0o644 {
		t.Errorf("content %q mode %v (umask must not matter)", b, fi.Mode())
	}
	if err := f.Commit(); err == nil {
		t.Error("a second Commit succeeded")
	}
	onlyNames(t, d, "img")

	g, err := Create(file, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	g.WriteString("half")
	g.Abort()
	if b, _ := os.ReadFile(file); string(b) != string("xy\x00\x00\x00\x00ab") {
		t.Errorf("Abort changed the file: %q", b)
	}
	if err := g.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	onlyNames(t, d, "img")

	// A commit that cannot rename (a directory is in the way) leaves
	// nothing behind.
	os.Mkdir(filepath.Join(d, "dir"), 0o755)
	os.WriteFile(filepath.Join(d, "dir", "x"), nil, 0o644)
	h, err := Create(filepath.Join(d, "dir"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Commit(); err == nil {
		t.Error("committed over a non-empty directory")
	}
	onlyNames(t, d, "dir", "img")
}

func TestLinkOrCopy(t *testing.T) {
	d := t.TempDir()
	src := filepath.Join(d, "src")
	os.WriteFile(src, []byte("payload"), 0o600)
	dst := filepath.Join(d, "dst")
	os.WriteFile(dst, []byte("old"), 0o644)
	if err := LinkOrCopy(src, dst, 0o644); err != nil {
		t.Fatal(err)
	}
	a, _ := os.Stat(src)
	b, _ := os.Stat(dst)
	if !os.SameFile(a, b) {
		t.Error("not a hard link although on one file system")
	}
	// Again: the rename onto a link of the same inode does nothing and
	// must not leave the temporary link.
	if err := LinkOrCopy(src, dst, 0o644); err != nil {
		t.Fatal(err)
	}
	onlyNames(t, d, "dst", "src")

	// Where linking fails (another file system), the content is copied.
	link = func(string, string) error { return &os.LinkError{Op: "link", Err: syscall.EXDEV} }
	defer func() { link = os.Link }()
	cp := filepath.Join(d, "copy")
	if err := LinkOrCopy(src, cp, 0o644); err != nil {
		t.Fatal(err)
	}
	c, _ := os.Stat(cp)
	got, _ := os.ReadFile(cp)
	if os.SameFile(a, c) || string(got) != "payload" || c.Mode().Perm() != 0o644 {
		t.Errorf("copy: same file %v, content %q, mode %v", os.SameFile(a, c), got, c.Mode())
	}
	if err := LinkOrCopy(filepath.Join(d, "missing"), filepath.Join(d, "x"), 0o644); err == nil {
		t.Error("linked a missing file")
	}
	onlyNames(t, d, "copy", "dst", "src")
}

func TestSymlink(t *testing.T) {
	d := t.TempDir()
	l := filepath.Join(d, "latest.raw")
	for _, target := range []string{"a_1.raw", "a_2.raw"} {
		if err := Symlink(target, l); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.Readlink(l); got != target {
			t.Errorf("link -> %q, want %q", got, target)
		}
	}
	onlyNames(t, d, "latest.raw")
}

func TestDir(t *testing.T) {
	for _, tc := range []struct {
		name     string
		exchange func(a, b string) error
	}{
		{"exchange", exchange},
		{"no-exchange", func(a, b string) error { return &os.LinkError{Op: "renameat2", Old: a, New: b, Err: unix.EINVAL} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			saved := exchange
			exchange = tc.exchange
			defer func() { exchange = saved }()
			parent := t.TempDir()
			dst := filepath.Join(parent, "tree")
			for i, content := range []string{"one", "two"} {
				d, err := CreateDir(dst, 0o750)
				if err != nil {
					t.Fatal(err)
				}
				os.WriteFile(filepath.Join(d.Path(), "f"+content), []byte(content), 0o644)
				if i == 1 {
					if b, _ := os.ReadFile(filepath.Join(dst, "fone")); string(b) != "one" {
						t.Fatal("the old tree changed before Commit")
					}
				}
				if err := d.Commit(); err != nil {
					t.Fatal(err)
				}
				d.Abort()
				onlyNames(t, dst, "f"+content)
				onlyNames(t, parent, "tree")
				if fi, _ := os.Stat(dst); fi.Mode().Perm() != 0o750 {
					t.Errorf("mode %v", fi.Mode())
				}
			}
			d, err := CreateDir(dst, 0o755)
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(d.Path(), "x"), nil, 0o644)
			d.Abort()
			if err := d.Commit(); err == nil {
				t.Error("Commit after Abort succeeded")
			}
			onlyNames(t, dst, "ftwo")
			onlyNames(t, parent, "tree")
		})
	}
	if _, err := CreateDir(filepath.Join(t.TempDir(), "missing", "x"), 0o755); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("CreateDir in a missing directory: %v", err)
	}
}
