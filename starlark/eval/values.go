package eval

import (
	"fmt"
	"strings"

	"go.starlark.net/starlark"

	"github.com/sxb-build/sxb/rules"
)

// Target is the Starlark value a rule call returns; it is accepted wherever
// a label is.
type Target struct{ t *rules.Target }

var (
	_ starlark.Value    = (*Target)(nil)
	_ starlark.HasAttrs = (*Target)(nil)
)

// String returns the target's label.
func (v *Target) String() string { return v.t.Label.String() }

// Type returns "Target".
func (v *Target) Type() string { return "Target" }

// Freeze does nothing: a Target is immutable.
func (v *Target) Freeze() {}

// Truth returns True.
func (v *Target) Truth() starlark.Bool { return starlark.True }

// Hash hashes the label.
func (v *Target) Hash() (uint32, error) { return starlark.String(v.String()).Hash() }

// Attr returns label, name, package or kind.
func (v *Target) Attr(name string) (starlark.Value, error) {
	switch name {
	case "label":
		return starlark.String(v.t.Label.String()), nil
	case "name":
		return starlark.String(v.t.Label.Name), nil
	case "package":
		return starlark.String(v.t.Label.Pkg), nil
	case "kind":
		return starlark.String(v.t.Kind), nil
	}
	return nil, nil
}

// AttrNames lists the attributes.
func (v *Target) AttrNames() []string { return []string{"kind", "label", "name", "package"} }

// Partition is the Starlark value partition() returns.
type Partition struct{ p rules.Partition }

// String describes the partition.
func (v *Partition) String() string {
	var b strings.Builder
	b.WriteString("partition(")
	for i, kv := range v.p.Keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%s", kv.Key, kv.Value)
	}
	b.WriteString(")")
	return b.String()
}

// Type returns "partition".
func (v *Partition) Type() string { return "partition" }

// Freeze does nothing: a Partition is immutable.
func (v *Partition) Freeze() {}

// Truth returns True.
func (v *Partition) Truth() starlark.Bool { return starlark.True }

// Hash fails: partitions are not hashable.
func (v *Partition) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: partition") }
