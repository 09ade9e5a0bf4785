package rules

import (
	"strings"
	"testing"
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
