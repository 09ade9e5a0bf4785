package merge

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/builtins/extension"
	"github.com/sxb-build/sxb/builtins/image"
	"github.com/sxb-build/sxb/builtins/sandbox"
	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/arch"
	"github.com/sxb-build/sxb/internal/testenv"
)

func TestMain(m *testing.M) {
	sandbox.Init()
	os.Exit(m.Run())
}

func write(t *testing.T, root, rel, content string, mode os.FileMode) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// baseTree is a tiny "debian 12" with a static busybox as its shell.
func baseTree(t *testing.T) string {
	t.Helper()
	bb := testenv.NeedTool(t, "busybox")
	root := filepath.Join(t.TempDir(), "base")
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	write(t, root, "bin/busybox", string(data), 0o755)
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" {
			os.Symlink("busybox", filepath.Join(root, "bin", a))
		}
	}
	write(t, root, "usr/lib/os-release", "ID=debian\nVERSION_ID=12\n", 0o644)
	write(t, root, "usr/share/base.txt", "from the base\n", 0o644)
	write(t, root, "etc/base.conf", "base=1\n", 0o644)
	return root
}

// img writes an extension image of the given files with sxb's writer.
func img(t *testing.T, kind extension.Kind, name string, files map[string]string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "tree")
	for rel, content := range files {
		write(t, root, rel, content, 0o755)
	}
	n, err := tree.Load(root, tree.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), name+".raw")
	if _, err := image.Build(context.Background(), out, n, image.Request{Kind: string(kind), Format: "erofs", Verity: "off", Architecture: arch.X86_64}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRunMergesLikeSystemd(t *testing.T) {
	base := baseTree(t)
	rel := func(kind extension.Kind, name, body string) (string, string) {
		return extension.ReleasePath(kind, name), body
	}
	r1, b1 := rel(extension.Sysext, "aa", "ID=debian\nVERSION_ID=12\n")
	r2, b2 := rel(extension.Sysext, "bb", "ID=_any\n")
	r3, b3 := rel(extension.Confext, "cc", "ID=debian\nVERSION_ID=12\n")
	images := []Image{
		// Given out of order: systemd stacks by name, bb over aa.
		{Path: img(t, extension.Sysext, "bb", map[string]string{r2: b2, "usr/bin/tool": "#!/bin/sh\necho tool from bb\n", "etc/ignored": "x"}), Name: "bb", Kind: extension.Sysext},
		{Path: img(t, extension.Sysext, "aa", map[string]string{r1: b1, "usr/bin/tool": "#!/bin/sh\necho tool from aa\n", "opt/aa/data": "aa data\n"}), Name: "aa", Kind: extension.Sysext},
		{Path: img(t, extension.Confext, "cc", map[string]string{r3: b3, "etc/app.conf": "app=1\n"}), Name: "cc", Kind: extension.Confext},
	}
	var out bytes.Buffer
	err := Run(context.Background(), Options{Base: base, Architecture: "x86-64", Images: images, Stdout: &out, Stderr: &out,
		Args: []string{"/bin/sh", "-c", "tool; cat /opt/aa/data /etc/app.conf /usr/share/base.txt; ls /etc; echo new > /usr/share/base.txt; echo scribble > /usr/x"}})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{"tool from bb\n", "aa data\n", "app=1\n", "from the base\n", "base.conf"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "ignored") {
		t.Errorf("a sysext's /etc was merged:\n%s", got)
	}
	// Ephemeral: the base is untouched, and the next run starts afresh.
	if b, _ := os.ReadFile(filepath.Join(base, "usr/share/base.txt")); string(b) != "from the base\n" {
		t.Errorf("base changed: %q", b)
	}
	out.Reset()
	err = Run(context.Background(), Options{Base: base, Architecture: "x86-64", Images: images[:1], Stdout: &out, Stderr: &out,
		Args: []string{"/bin/sh", "-c", "cat /usr/share/base.txt; test ! -e /usr/x && echo fresh; exit 3"}})
	var ee *sandbox.ExitError
	if !errors.As(err, &ee) || ee.Code != 3 || out.String() != "from the base\nfresh\n" {
		t.Errorf("second run: %v %q", err, out.String())
	}
}

func TestRunRefusesWhatSystemdRefuses(t *testing.T) {
	base := baseTree(t)
	for _, c := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"other-os", map[string]string{extension.ReleasePath(extension.Sysext, "other-os"): "ID=fedora\nVERSION_ID=41\n"},
			`is for OS "fedora", but deployed on top of "debian"`},
		{"other-version", map[string]string{extension.ReleasePath(extension.Sysext, "other-version"): "ID=debian\nVERSION_ID=13\n"},
			`is for OS version "13", but deployed on top of "12"`},
		{"arm", map[string]string{extension.ReleasePath(extension.Sysext, "arm"): "ID=_any\nARCHITECTURE=arm64\n"},
			`is for architecture "arm64", but deployed on top of "x86-64"`},
		{"norelease", map[string]string{"usr/bin/x": "x"}, "carries no release data"},
		{"osrelease", map[string]string{extension.ReleasePath(extension.Sysext, "osrelease"): "ID=_any\n", "usr/lib/os-release": "ID=evil\n"},
			"contains /usr/lib/os-release"},
	} {
		im := Image{Path: img(t, extension.Sysext, c.name, c.files), Name: c.name, Kind: extension.Sysext}
		var out bytes.Buffer
		err := Run(context.Background(), Options{Base: base, Architecture: "x86-64", Images: []Image{im}, Stdout: &out,
			Args: []string{"/bin/sh", "-c", "echo ran"}})
		if err == nil || !strings.Contains(err.Error(), c.want) || out.Len() > 0 {
			t.Errorf("%s: err = %v, output %q; want refusal %q", c.name, err, out.String(), c.want)
		}
	}
}
