package eval

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// genWorkspace writes a workspace of npkg packages with perPkg targets each
// (one base image and perPkg-1 sysexts, declared through a load()ed macro;
// every package's first sysext also depends on package p000's base).
func genWorkspace(tb testing.TB, root string, npkg, perPkg int) {
	tb.Helper()
	must := func(err error) {
		if err != nil {
			tb.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "lib"), 0o755))
	must(os.WriteFile(filepath.Join(root, "BUILD.star"), nil, 0o644))
	must(os.WriteFile(filepath.Join(root, "lib/defs.star"), []byte(`
def image_set(prefix, n, release, arch):
    base = base_image(
        name = prefix + "-base",
        distribution = "debian",
        release = release,
        architecture = arch,
        packages = ["systemd", "udev"],
    )
    out = [base]
    for i in range(n - 1):
        out.append(sysext(
            name = "%s-ext%d" % (prefix, i),
            base = base if i > 0 else "//p000:p000-base",
            packages = ["pkg%d" % i, "tool%d" % i],
            format = "erofs" if i % 2 else "squashfs",
            extension_release = {"ID": "_any", "SYSEXT_LEVEL": "1.0"},
        ))
    return out
`), 0o644))
	for p := range npkg {
		name := fmt.Sprintf("p%03d", p)
		dir := filepath.Join(root, name)
		must(os.MkdirAll(dir, 0o755))
		src := fmt.Sprintf("load(\"//lib:defs.star\", \"image_set\")\n\nimage_set(%q, %d, \"bookworm\", %q)\n",
			name, perPkg, []string{"x86-64", "arm64"}[p%2])
		must(os.WriteFile(filepath.Join(dir, "BUILD.star"), []byte(src), 0o644))
	}
}

// BenchmarkLoad100Packages evaluates a generated workspace of 100 packages
// and 2,000 targets and links the graph (sxb query //... minus printing).
func BenchmarkLoad100Packages(b *testing.B) {
	root := b.TempDir()
	genWorkspace(b, root, 100, 20)
	b.ResetTimer()
	for b.Loop() {
		g, err := Load(context.Background(), Options{Dir: root, Patterns: []string{"//..."}})
		if err != nil {
			b.Fatal(err)
		}
		if len(g.Targets) != 2000 {
			b.Fatalf("%d targets", len(g.Targets))
		}
	}
}

// TestGeneratedWorkspace checks the benchmark's workspace loads completely.
func TestGeneratedWorkspace(t *testing.T) {
	root := t.TempDir()
	genWorkspace(t, root, 10, 20)
	g := load(t, root, "//...")
	if len(g.Targets) != 200 || len(g.Roots) != 200 {
		t.Fatalf("%d targets, %d roots", len(g.Targets), len(g.Roots))
	}
	order := g.Order()
	if !strings.HasPrefix(order[0].Label.String(), "//p000:p000-base") {
		t.Errorf("first in order: %s", order[0].Label)
	}
}
