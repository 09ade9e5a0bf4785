package rules

import (
	"strings"
	"testing"

	"github.com/sxb-build/sxb/internal/diag"
)

func TestClosureOrder(t *testing.T) {
	l := func(s string) Label { p, n, _ := strings.Cut(s, ":"); return Label{Pkg: p, Name: n} }
	g := &Graph{Targets: map[string]*Target{}}
	add := func(name string, deps ...string) {
		t := &Target{Label: l(name)}
		for _, d := range deps {
			t.Deps = append(t.Deps, l(d))
		}
		g.Targets[t.Label.String()] = t
	}
	add("b:z", "a:base")
	add("b:y", "b:z")
	add("a:base")
	add("c:x", "a:base")
	add("c:alone")
	names := func(ts []*Target) string {
		var s []string
		for _, t := range ts {
			s = append(s, t.Label.String())
		}
		return strings.Join(s, " ")
	}
	if got, want := names(g.Closure([]Label{l("b:y")})), "//a:base //b:z //b:y"; got != want {
		t.Errorf("Closure(//b:y) = %s, want %s", got, want)
	}
	if got, want := names(g.Order()), "//a:base //b:z //b:y //c:alone //c:x"; got != want {
		t.Errorf("Order() = %s, want %s", got, want)
	}
	g.Roots = []Label{l("c:x"), l("nope:x")}
	if got := names(g.RootTargets()); got != "//c:x" {
		t.Errorf("RootTargets = %s", got)
	}
}

// TestBuildError checks that an unbuildable target blocks itself and what
// depends on it, and nothing else.
func TestBuildError(t *testing.T) {
	l := func(s string) Label { p, n, _ := strings.Cut(s, ":"); return Label{Pkg: p, Name: n} }
	g := &Graph{Targets: map[string]*Target{}}
	add := func(name string, why string, deps ...string) {
		t := &Target{Label: l(name), Pos: diag.Pos{File: name + ".conf", Line: 1}}
		for _, d := range deps {
			t.Deps = append(t.Deps, l(d))
		}
		if why != "" {
			t.Unbuildable = []*diag.Diagnostic{diag.Errorf(diag.Pos{File: "mkosi.conf", Line: 3}, "%s", why)}
		}
		g.Targets[t.Label.String()] = t
	}
	add("p:base", "Hostname=x is not supported")
	add("p:ext", "", "p:base")
	add("p:other", "")
	if err := g.BuildError(l("p:other")); err != nil || g.BlockedBy(l("p:other")) != nil {
		t.Errorf("other: %v", err)
	}
	if err := g.BuildError(l("p:base")); err == nil || err.Error() != "mkosi.conf:3: error: Hostname=x is not supported" {
		t.Errorf("base: %v", err)
	}
	err := g.BuildError(l("p:ext"))
	want := "p:ext.conf:1: error: //p:ext cannot be built: it depends on //p:base, which cannot be built\nmkosi.conf:3: error: Hostname=x is not supported"
	if err == nil || err.Error() != want {
		t.Errorf("ext: %v\nwant %s", err, want)
	}
	if b := g.BlockedBy(l("p:ext")); b == nil || b.Label != l("p:base") {
		t.Errorf("ext blocked by %v", b)
	}
}
