package eval

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/internal/arch"
	"github.com/sxb-build/sxb/internal/diag"
	"github.com/sxb-build/sxb/internal/label"
	"github.com/sxb-build/sxb/rules"
	"github.com/sxb-build/sxb/starlark/mkosiproject"
)

// copyTree copies directory src into dst.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// expectation is a `### "regexp"` marker: an error is expected at that
// file and line whose message matches.
type expectation struct {
	file string
	line int
	re   *regexp.Regexp
	seen bool
}

var markerRE = regexp.MustCompile("###\\s*(\"(?:[^\"\\\\]|\\\\.)*\"|`[^`]*`)")

func markers(t *testing.T, root string) []*expectation {
	var out []*expectation
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".star") {
			return err
		}
		b, _ := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		for i, line := range strings.Split(string(b), "\n") {
			m := markerRE.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			pat := m[1][1 : len(m[1])-1]
			if m[1][0] == '"' {
				var err error
				if pat, err = strconv.Unquote(m[1]); err != nil {
					t.Fatalf("%s:%d: bad marker: %v", rel, i+1, err)
				}
			}
			out = append(out, &expectation{file: rel, line: i + 1, re: regexp.MustCompile(pat)})
		}
		return nil
	})
	return out
}

func diagnostics(err error) []error {
	if err == nil {
		return nil
	}
	if l, ok := err.(diag.ErrorList); ok {
		return l
	}
	return []error{err}
}

// TestFixtures evaluates each testdata/fixtures entry — a .star file (used as
// the root BUILD.star of a workspace made from testdata/skeleton) or a
// directory (a whole workspace) — and checks the diagnostics against the
// `### "regexp"` markers beside the offending lines. No marker: no error.
func TestFixtures(t *testing.T) {
	entries, err := os.ReadDir("testdata/fixtures")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".star")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			src := filepath.Join("testdata/fixtures", e.Name())
			if e.IsDir() {
				copyTree(t, src, root)
			} else {
				copyTree(t, "testdata/skeleton", root)
				b, err := os.ReadFile(src)
				if err != nil {
					t.Fatal(err)
				}
				os.WriteFile(filepath.Join(root, "BUILD.star"), b, 0o644)
			}
			want := markers(t, root)
			var stderr bytes.Buffer
			_, err := Load(context.Background(), Options{Dir: root, Patterns: []string{"//..."}, Stderr: &stderr, MaxSteps: 100_000})
			for _, e := range diagnostics(err) {
				d, ok := e.(*diag.Diagnostic)
				if !ok {
					t.Errorf("unexpected non-diagnostic error: %v", e)
					continue
				}
				if d.Pos.Col == 0 && !strings.Contains(name, "syntax") {
					t.Errorf("%s: no column", d)
				}
				matched := false
				for _, w := range want {
					if w.file == d.Pos.File && w.line == d.Pos.Line && w.re.MatchString(d.Msg) {
						w.seen, matched = true, true
					}
				}
				if !matched {
					t.Errorf("unexpected error: %s %q", d, d.Notes)
				}
			}
			for _, w := range want {
				if !w.seen {
					t.Errorf("%s:%d: expected error matching %q; got %v", w.file, w.line, w.re, err)
				}
			}
		})
	}
}

func load(t *testing.T, dir string, patterns ...string) *rules.Graph {
	t.Helper()
	g, err := Load(context.Background(), Options{Dir: dir, Patterns: patterns})
	if err != nil {
		var b bytes.Buffer
		RenderError(&b, err, false)
		t.Fatalf("Load(%s, %q):\n%s", dir, patterns, b.String())
	}
	return g
}

func labels(ts []*rules.Target) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Label.String())
	}
	return out
}

// TestExamples loads the repository's examples.
func TestExamples(t *testing.T) {
	root, _ := filepath.Abs("../..")
	g := load(t, root, "//examples/...")
	if g.Workspace != root {
		t.Errorf("workspace = %s, want %s", g.Workspace, root)
	}
	n := map[string]int{}
	matrix := 0
	for _, r := range g.Roots {
		n[r.Pkg]++
		if strings.HasPrefix(r.Pkg, "examples/matrix/") {
			matrix++
		}
	}
	if matrix != 40 || n["examples/matrix/debian"] != 16 || n["examples/matrix/arch"] != 8 {
		t.Errorf("examples/matrix/... has %d targets (debian %d, arch %d), want 40 (5 releases x 2 architectures x (1 base + 3 sysexts)), 16 for debian, 8 for arch",
			matrix, n["examples/matrix/debian"], n["examples/matrix/arch"])
	}
	jq := g.Target(label.Label{Pkg: "examples/debian", Name: "jq"})
	if jq == nil || jq.Ext == nil || jq.Ext.Base == nil || jq.Ext.Base.String() != "//examples/debian:bookworm" || jq.Ext.Format != "erofs" {
		t.Fatalf("//examples/debian:jq = %+v", jq)
	}
	bw := g.Target(*jq.Ext.Base).Base
	if strings.Join(bw.Packages, " ") != "systemd udev" || !bw.WithDocs || bw.Output != "directory" {
		t.Errorf("bookworm = %+v", bw)
	}
	if jq.Ext.Architecture != bw.Architecture || bw.Architecture != arch.Native() {
		t.Errorf("architectures: jq %q, base %q, host %q", jq.Ext.Architecture, bw.Architecture, arch.Native())
	}
	hs := g.Target(label.Label{Pkg: "examples/opensuse", Name: "helm-squashfs"}).Ext
	if len(hs.Partitions) != 1 || hs.Format != "squashfs" {
		t.Fatalf("helm-squashfs = %+v", hs)
	}
	var keys []string
	for _, kv := range hs.Partitions[0].Keys {
		keys = append(keys, kv.Key+"="+kv.Value)
	}
	if got, want := strings.Join(keys, " "), "Type=root Format=squashfs CopyFiles=/opt/ CopyFiles=/usr/ Minimize=best"; got != want {
		t.Errorf("partition keys = %s, want %s", got, want)
	}
	rel, err := os.ReadFile(filepath.Join(hs.ExtraTrees[0].Source, "usr/lib/extension-release.d/extension-release.helm-squashfs"))
	if err != nil || !strings.Contains(string(rel), "ID=_any") {
		t.Errorf("helm-squashfs extension-release: %q, %v", rel, err)
	}
	st := g.Target(label.Label{Pkg: "examples/static", Name: "hello"}).Ext
	if st.Base != nil || len(st.ExtensionRelease) != 1 || st.ExtensionRelease[0] != (rules.KV{Key: "ID", Value: "_any"}) ||
		st.ExtraTrees[0].Source != filepath.Join(root, "examples/static/tree") || st.ExtraTrees[0].Target != "/" {
		t.Errorf("static hello = %+v", st)
	}
	// examples/scripts: a tree() shared by two sysexts, by label.
	bin := g.Target(label.Label{Pkg: "examples/scripts", Name: "hello-bin"})
	if bin == nil || bin.Kind != rules.KindTree || bin.Tree.Base.String() != "//examples/scripts:bookworm" ||
		strings.Join(bin.Tree.Hooks.BuildPackages, " ") != "gcc libc6-dev" ||
		len(bin.Tree.Hooks.Build) != 1 || bin.Tree.Hooks.Build[0] != filepath.Join(root, "examples/scripts/build.chroot") ||
		len(bin.Tree.Hooks.BuildSources) != 1 || bin.Tree.Hooks.BuildSources[0].Source != filepath.Join(root, "examples/scripts/src") {
		t.Errorf("hello-bin = %+v", bin)
	}
	opt := g.Target(label.Label{Pkg: "examples/scripts", Name: "hello-opt"})
	if tr := opt.Ext.ExtraTrees; len(tr) != 1 || tr[0].Label == nil || tr[0].Label.String() != "//examples/scripts:hello-bin" ||
		tr[0].Target != "/opt/hello" || tr[0].Source != "" || !slices.Contains(opt.Deps, bin.Label) || len(opt.Ext.Hooks.PostInst) != 1 {
		t.Errorf("hello-opt = %+v, deps %v", opt.Ext, opt.Deps)
	}
	// Dependency order: every base before its extensions.
	order := g.Order()
	at := map[string]int{}
	for i, t := range order {
		at[t.Label.String()] = i
	}
	for _, tg := range order {
		for _, d := range tg.Deps {
			if at[d.String()] >= at[tg.Label.String()] {
				t.Errorf("%s ordered before its dependency %s", tg.Label, d)
			}
		}
	}
}

// TestPatternsAndClosure checks which targets patterns match and that
// dependencies in other packages are loaded.
func TestPatternsAndClosure(t *testing.T) {
	root := t.TempDir()
	copyTree(t, "testdata/fixtures/cross_package", root)
	g := load(t, filepath.Join(root, "b"), ":layer")
	if got := labels(g.RootTargets()); strings.Join(got, " ") != "//b:layer" {
		t.Errorf("roots = %v", got)
	}
	if got := strings.Join(labels(g.Closure(g.Roots)), " "); got != "//a:base //b:ext //b:layer" {
		t.Errorf("closure = %s", got)
	}
	layer := g.Target(label.Label{Pkg: "b", Name: "layer"}).Ext
	if layer.Architecture != arch.ARM64 {
		t.Errorf("layer architecture = %q, want the base's arm64", layer.Architecture)
	}
	for _, tc := range []struct {
		dir, pat, want string
	}{
		{"", "//...", "//a:base //b:ext //b:layer"},
		{"b", "...", "//b:ext //b:layer"},
		{"b", ":all", "//b:ext //b:layer"},
		{"", "//b:*", "//b:ext //b:layer"},
		{"", "a:base", "//a:base"},
		{"a", "//a", ""},
	} {
		g, err := Load(context.Background(), Options{Dir: filepath.Join(root, tc.dir), Patterns: []string{tc.pat}})
		got := ""
		if err != nil {
			got = "error: " + err.Error()
		} else {
			got = strings.Join(labels(g.RootTargets()), " ")
		}
		if tc.want == "" {
			if !strings.Contains(got, `pattern //a:a: no target "a" in package //a`) {
				t.Errorf("%s in %s: %s; want a no-such-target error", tc.pat, tc.dir, got)
			}
			continue
		}
		if got != tc.want {
			t.Errorf("%s in /%s = %s, want %s", tc.pat, tc.dir, got, tc.want)
		}
	}
	if _, err := Load(context.Background(), Options{Dir: root, Patterns: []string{"//a//b"}}); !errors.As(err, new(*label.Error)) {
		t.Errorf("malformed pattern: %v, want *label.Error", err)
	}
	if _, err := Load(context.Background(), Options{Dir: root, Patterns: []string{"//nope:x"}}); err == nil || !strings.Contains(err.Error(), "no such package //nope") {
		t.Errorf("missing package: %v", err)
	}
}

// TestLoadOncePrint checks that a loaded file runs once per Load even when
// many packages load it in parallel, and print() goes to Stderr with
// file:line.
func TestLoadOncePrint(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "WORKSPACE.star"), nil, 0o644)
	os.MkdirAll(filepath.Join(root, "lib"), 0o755)
	os.WriteFile(filepath.Join(root, "lib/once.star"), []byte("print(\"loading once\")\nX = 1\n"), 0o644)
	for i := range 20 {
		d := filepath.Join(root, "p"+strconv.Itoa(i))
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "BUILD.star"), []byte("load(\"//lib:once.star\", \"X\")\nprint(\"in\", package_name())\n"), 0o644)
	}
	var stderr bytes.Buffer
	if _, err := Load(context.Background(), Options{Dir: root, Patterns: []string{"//..."}, Stderr: &stderr, Jobs: 4}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(stderr.String(), "lib/once.star:1: loading once\n"); n != 1 {
		t.Errorf("once.star ran %d times:\n%s", n, stderr.String())
	}
	if !strings.Contains(stderr.String(), "p7/BUILD.star:2: in p7\n") {
		t.Errorf("print output lacks file:line prefix:\n%s", stderr.String())
	}
}

// TestCancel checks that cancelling the context stops a long evaluation.
func TestCancel(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "BUILD.star"), []byte("n = 0\nfor i in range(1 << 40):\n    n += i\n"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := Load(ctx, Options{Dir: root, Patterns: []string{"//..."}, MaxSteps: 1 << 62})
		done <- err
	}()
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

// TestSymlinkOutOfWorkspace checks that a tree reached through a symbolic
// link leading outside the workspace is refused.
func TestSymlinkOutOfWorkspace(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	os.Symlink(outside, filepath.Join(root, "escape"))
	os.WriteFile(filepath.Join(root, "BUILD.star"), []byte("sysext(name = \"a\", extra_trees = [\"escape\"])\n"), 0o644)
	_, err := Load(context.Background(), Options{Dir: root, Patterns: []string{"//..."}})
	if err == nil || !strings.Contains(err.Error(), "symbolic link leading out of the workspace") {
		t.Errorf("err = %v", err)
	}
}

// TestMkosiHook checks that the hook's targets join the package.
func TestMkosiHook(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "BUILD.star"), []byte("ts = mkosi_project()\nif len(ts) != 2 or ts[1].name != \"helm\":\n    fail(ts)\n"), 0o644)
	mkosi := func(req mkosiproject.Request) ([]*rules.Target, error) {
		if req.Dir != root || req.Package != "" || req.Pos.Line != 1 {
			t.Errorf("request = %+v", req)
		}
		base := label.Label{Name: "base"}
		return []*rules.Target{
			{Label: base, Kind: rules.KindBaseImage, Base: &rules.BaseImage{Name: "base", Distribution: "opensuse", Release: "tumbleweed", Architecture: arch.X86_64}},
			{Label: label.Label{Name: "helm"}, Kind: rules.KindSysext, Pos: diag.Pos{File: "mkosi.images/helm/mkosi.conf", Line: 1},
				Ext: &rules.Extension{Name: "helm", Kind: rules.KindSysext, Base: &base}},
		}, nil
	}
	g, err := Load(context.Background(), Options{Dir: root, Patterns: []string{"//..."}, MkosiProject: mkosi})
	if err != nil {
		t.Fatal(err)
	}
	helm := g.Target(label.Label{Name: "helm"})
	if helm == nil || len(helm.Deps) != 1 || helm.Ext.Architecture != arch.X86_64 {
		t.Fatalf("helm = %+v", helm)
	}
	if helm.Pos.File != "mkosi.images/helm/mkosi.conf" {
		t.Errorf("helm position = %s, want the hook's", helm.Pos)
	}
	if b := g.Target(label.Label{Name: "base"}); b.Pos.String() != "BUILD.star:1:6" {
		t.Errorf("base position = %s, want the mkosi_project call", b.Pos)
	}
}

// TestImageTestDependsOnImagesAndBase: an image_test depends on its images
// and on the base they are merged onto, taken from the images.
func TestImageTestDependsOnImagesAndBase(t *testing.T) {
	root := t.TempDir()
	copyTree(t, "testdata/skeleton", root)
	b, err := os.ReadFile("testdata/fixtures/image_test_ok.star")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "BUILD.star"), b, 0o644)
	g := load(t, root, "//...")
	tt := g.Target(label.Label{Name: "t"})
	if tt == nil || tt.Test == nil {
		t.Fatalf("t = %+v", tt)
	}
	var deps []string
	for _, d := range tt.Deps {
		deps = append(deps, d.String())
	}
	if got := strings.Join(deps, " "); got != "//:base //:conf //:jq" {
		t.Errorf("deps = %s", got)
	}
	it := tt.Test
	if it.Base == nil || it.Base.String() != "//:base" || it.Timeout != 60 || len(it.Env) != 1 || !strings.HasSuffix(it.Script, "/lib/macros.star") {
		t.Errorf("test = %+v", it)
	}
	if got := g.Order(); got[len(got)-1].Label.Name != "t" {
		t.Errorf("the test is not built after its images: %v", got)
	}
}
