package eval

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.starlark.net/starlark"

	"github.com/sxb-build/sxb/internal/suggest"
	"github.com/sxb-build/sxb/rules"
)

// partitionBuiltin implements partition(): a repart.d [Partition] as a value.
func partitionBuiltin(th *starlark.Thread, b *starlark.Builtin, pos starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	errf := func(attr, format string, xs ...any) error {
		return &attrError{rule: "partition", attr: attr, msg: fmt.Sprintf(format, xs...)}
	}
	if len(pos) > 0 {
		return nil, errf("", "attributes are keyword-only: write partition(type = ..., ...) (got %d positional argument%s)", len(pos), plural(len(pos)))
	}
	var names []string
	for _, pa := range partAttrs {
		names = append(names, pa.name)
	}
	p := rules.Partition{}
	hasType := false
	for _, kv := range kwargs {
		k := string(kv[0].(starlark.String))
		v := kv[1]
		i := slices.Index(names, k)
		if i < 0 {
			msg := fmt.Sprintf("unknown attribute %q", k)
			if n := suggest.Nearest(k, names); n != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", n)
			}
			return nil, &attrError{rule: "partition", msg: msg, unknown: k}
		}
		pa := partAttrs[i]
		add := func(val string) { p.Keys = append(p.Keys, rules.KV{Key: pa.key, Value: val}) }
		switch pa.kind {
		case pString:
			s, ok := v.(starlark.String)
			if !ok {
				return nil, errf(k, "got %s, want string", v.Type())
			}
			if strings.ContainsAny(string(s), "\n\x00") {
				return nil, errf(k, "must not contain a newline or NUL")
			}
			if pa.enum != nil && !slices.Contains(pa.enum, string(s)) {
				return nil, errf(k, "%s is not one of %s", s.String(), suggest.Quote(pa.enum))
			}
			add(string(s))
		case pStrings:
			ss, err := listOfStrings(v, func(format string, xs ...any) error { return errf(k, format, xs...) }, k)
			if err != nil {
				return nil, err
			}
			for _, s := range ss {
				add(s)
			}
		case pBool:
			bv, ok := v.(starlark.Bool)
			if !ok {
				return nil, errf(k, "got %s, want bool (True or False)", v.Type())
			}
			add(map[bool]string{true: "yes", false: "no"}[bool(bv)])
		case pMinimize:
			switch v := v.(type) {
			case starlark.Bool:
				add(map[bool]string{true: "best", false: "off"}[bool(v)])
			case starlark.String:
				if s := string(v); s != "off" && s != "best" && s != "guess" {
					return nil, errf(k, "%s is not one of \"off\", \"best\", \"guess\" (or True/False)", v.String())
				}
				add(string(v))
			default:
				return nil, errf(k, "got %s, want \"off\", \"best\", \"guess\" or a bool", v.Type())
			}
		case pInt, pIntOrString:
			switch v := v.(type) {
			case starlark.Int:
				n, ok := v.Int64()
				if !ok || n < 0 {
					return nil, errf(k, "%s is out of range", v.String())
				}
				add(strconv.FormatInt(n, 10))
			case starlark.String:
				if pa.kind == pInt {
					return nil, errf(k, "got string, want int")
				}
				if string(v) == "" || strings.ContainsAny(string(v), " \n\x00") {
					return nil, errf(k, "%s is not a size or number", v.String())
				}
				add(string(v))
			default:
				return nil, errf(k, "got %s, want int or string", v.Type())
			}
		}
		if k == "type" {
			hasType = true
		}
	}
	if !hasType {
		return nil, errf("", "missing required attribute \"type\"")
	}
	// Keys follow the attribute table, not the call: reordering keyword
	// arguments (as sxb fmt does) must not change the partition.
	slices.SortStableFunc(p.Keys, func(a, b rules.KV) int {
		key := func(k string) int {
			return slices.IndexFunc(partAttrs, func(pa partAttr) bool { return pa.key == k })
		}
		return key(a.Key) - key(b.Key)
	})
	frames := userFrames(th.CallStack())
	if len(frames) > 0 {
		p.Pos = loaderOf(th).callStart(frames[len(frames)-1].Pos)
	}
	return &Partition{p: p}, nil
}
