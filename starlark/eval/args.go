package eval

import (
	"fmt"
	"slices"
	"strings"

	"go.starlark.net/starlark"

	"github.com/sxb-build/sxb/internal/arch"
	"github.com/sxb-build/sxb/internal/label"
	"github.com/sxb-build/sxb/internal/suggest"
	"github.com/sxb-build/sxb/rules"
)

// attrError is an error about a rule call, optionally about one attribute;
// it is positioned at that attribute's value in the call.
type attrError struct {
	rule, name, attr string
	msg              string
	notes            []string
	// unknown is an attribute name that is not allowed; the error points at
	// the name rather than the value.
	unknown string
}

func (e *attrError) Error() string {
	who := e.rule
	if e.name != "" {
		who += fmt.Sprintf(" %q", e.name)
	}
	if e.attr != "" {
		return fmt.Sprintf("%s: %s: %s", who, e.attr, e.msg)
	}
	return who + ": " + e.msg
}

// args is a rule call's keyword arguments being converted.
type args struct {
	l     *loader
	ps    *pkgState
	rule  string
	name  string
	specs []attrSpec
	vals  map[string]starlark.Value
	order []string
}

func (a *args) errf(attr, format string, xs ...any) error {
	return &attrError{rule: a.rule, name: a.name, attr: attr, msg: fmt.Sprintf(format, xs...)}
}

// parseArgs checks keyword-only, unknown and missing attributes.
func parseArgs(l *loader, ps *pkgState, rule string, specs []attrSpec, pos starlark.Tuple, kwargs []starlark.Tuple) (*args, error) {
	a := &args{l: l, ps: ps, rule: rule, specs: specs, vals: map[string]starlark.Value{}}
	// The name first, so later errors can say which target.
	for _, kv := range kwargs {
		if string(kv[0].(starlark.String)) == "name" {
			if s, ok := kv[1].(starlark.String); ok {
				a.name = string(s)
			}
		}
	}
	if len(pos) > 0 {
		return nil, a.errf("", "attributes are keyword-only: write %s(name = ..., ...) (got %d positional argument%s)", rule, len(pos), plural(len(pos)))
	}
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.name
	}
	for _, kv := range kwargs {
		k := string(kv[0].(starlark.String))
		if !slices.Contains(names, k) {
			msg := fmt.Sprintf("unknown attribute %q", k)
			if n := suggest.Nearest(k, names); n != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", n)
			}
			return nil, &attrError{rule: rule, name: a.name, attr: "", msg: msg, notes: nil, unknown: k}
		}
		if kv[1] == starlark.None {
			continue // None means "not set": macros can pass optional values through
		}
		a.vals[k] = kv[1]
		a.order = append(a.order, k)
	}
	for _, s := range specs {
		if _, ok := a.vals[s.name]; s.required && !ok {
			return nil, a.errf("", "missing required attribute %q", s.name)
		}
	}
	return a, nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func (a *args) has(k string) bool { _, ok := a.vals[k]; return ok }

func (a *args) spec(k string) attrSpec {
	for _, s := range a.specs {
		if s.name == k {
			return s
		}
	}
	panic("no spec " + k)
}

func (a *args) str(k, def string) (string, error) {
	v, ok := a.vals[k]
	if !ok {
		return def, nil
	}
	s, ok := v.(starlark.String)
	if !ok {
		return "", a.errf(k, "got %s, want string", v.Type())
	}
	sp := a.spec(k)
	switch sp.kind {
	case kEnum:
		if !slices.Contains(sp.enum, string(s)) {
			return "", a.errf(k, "%s", suggest.NotOneOf(string(s), sp.enum))
		}
	case kScope:
		words := strings.Fields(string(s))
		if len(words) == 0 {
			return "", a.errf(k, "empty scope (want one or more of \"initrd\", \"system\", \"portable\")")
		}
		for _, w := range words {
			if w != "initrd" && w != "system" && w != "portable" {
				return "", a.errf(k, "%q is not a scope (want \"initrd\", \"system\" or \"portable\", space separated)", w)
			}
		}
		return strings.Join(words, " "), nil
	}
	if strings.ContainsAny(string(s), "\n\x00") {
		return "", a.errf(k, "must not contain a newline or NUL")
	}
	return string(s), nil
}

// arch converts an architecture in any spelling package arch knows.
func (a *args) arch(k string, def arch.Arch) (arch.Arch, error) {
	s, err := a.str(k, "")
	if err != nil || !a.has(k) {
		return def, err
	}
	v, err := arch.Parse(s)
	if err != nil {
		return arch.None, a.errf(k, "%v", err)
	}
	return v, nil
}

func (a *args) boolean(k string, def bool) (bool, error) {
	v, ok := a.vals[k]
	if !ok {
		return def, nil
	}
	b, ok := v.(starlark.Bool)
	if !ok {
		return false, a.errf(k, "got %s, want bool (True or False)", v.Type())
	}
	return bool(b), nil
}

// epoch reads a SOURCE_DATE_EPOCH: seconds since 1970, nil when unset.
func (a *args) epoch(k string) (*int64, error) {
	v, ok := a.vals[k]
	if !ok {
		return nil, nil
	}
	n, ok := v.(starlark.Int)
	secs, exact := n.Int64()
	if !ok || !exact || secs < 0 {
		return nil, a.errf(k, "got %s, want a number of seconds since 1970-01-01 (0 or more)", v.String())
	}
	return &secs, nil
}

// strings converts a list of strings; a bare string is an error.
func (a *args) strings(k string) ([]string, error) {
	v, ok := a.vals[k]
	if !ok {
		return nil, nil
	}
	return listOfStrings(v, func(format string, xs ...any) error { return a.errf(k, format, xs...) }, k)
}

func listOfStrings(v starlark.Value, errf func(string, ...any) error, k string) ([]string, error) {
	if s, ok := v.(starlark.String); ok {
		return nil, errf("got string %s, want a list of strings (write %s = [%s])", s.String(), k, s.String())
	}
	it, ok := v.(starlark.Indexable)
	if !ok {
		return nil, errf("got %s, want a list of strings", v.Type())
	}
	if _, isList := v.(*starlark.List); !isList {
		if _, isTuple := v.(starlark.Tuple); !isTuple {
			return nil, errf("got %s, want a list of strings", v.Type())
		}
	}
	out := make([]string, 0, it.Len())
	for i := range it.Len() {
		e := it.Index(i)
		s, ok := e.(starlark.String)
		if !ok {
			return nil, errf("element %d: got %s, want string", i, e.Type())
		}
		if strings.ContainsAny(string(s), "\n\x00") {
			return nil, errf("element %d: must not contain a newline or NUL", i)
		}
		out = append(out, string(s))
	}
	return out, nil
}

func (a *args) labelAttr(k string) (*label.Label, string, error) {
	v, ok := a.vals[k]
	if !ok || v == starlark.None {
		return nil, "", nil
	}
	switch v := v.(type) {
	case *Target:
		lb := v.t.Label
		return &lb, lb.String(), nil
	case starlark.String:
		lb, err := label.Parse(string(v), a.ps.name)
		if err != nil {
			return nil, "", a.errf(k, "%v", err)
		}
		return &lb, string(v), nil
	}
	return nil, "", a.errf(k, "got %s, want a label string or a Target", v.Type())
}

func (a *args) dict(k string) ([]rules.KV, error) {
	return a.stringDict(k, releaseKeyRE.MatchString, `an upper-case field name like "ID" or "SYSEXT_LEVEL"`)
}

// stringDict reads a dict of strings to one-line strings, in its order,
// whose keys keyOK accepts (want says which keys it takes).
func (a *args) stringDict(k string, keyOK func(string) bool, want string) ([]rules.KV, error) {
	v, ok := a.vals[k]
	if !ok {
		return nil, nil
	}
	d, ok := v.(*starlark.Dict)
	if !ok {
		return nil, a.errf(k, "got %s, want a dict of strings to strings", v.Type())
	}
	var out []rules.KV
	for _, item := range d.Items() {
		ks, ok := item[0].(starlark.String)
		if !ok {
			return nil, a.errf(k, "key %s: got %s, want string", item[0].String(), item[0].Type())
		}
		if !keyOK(string(ks)) {
			return nil, a.errf(k, "key %s: want %s", ks.String(), want)
		}
		vs, ok := item[1].(starlark.String)
		if !ok {
			return nil, a.errf(k, "value of %s: got %s, want string", ks.String(), item[1].Type())
		}
		if strings.ContainsAny(string(vs), "\n\x00") {
			return nil, a.errf(k, "value of %s: must not contain a newline or NUL", ks.String())
		}
		out = append(out, rules.KV{Key: string(ks), Value: string(vs)})
	}
	return out, nil
}

// firstboot reads base_image's firstboot dict: systemd-firstboot settings
// by rules.FirstBootKeys name, returned in that order.
func (a *args) firstboot() ([]rules.KV, error) {
	var names []string
	for _, fk := range rules.FirstBootKeys {
		names = append(names, fk.Key)
	}
	kvs, err := a.stringDict("firstboot", func(n string) bool { return slices.Contains(names, n) }, "one of "+strings.Join(names, ", "))
	if err != nil {
		return nil, err
	}
	var out []rules.KV
	for _, n := range names {
		for _, kv := range kvs {
			if kv.Key == n {
				if kv.Value == "" {
					return nil, a.errf("firstboot", "value of %q: want a non-empty string", n)
				}
				out = append(out, kv)
			}
		}
	}
	return out, nil
}
