package eval

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/sxb-build/sxb/builtins/sysupdate"
	"github.com/sxb-build/sxb/internal/suggest"
	"github.com/sxb-build/sxb/rules"
)

// sysupdateKeys are the fields of the sysupdate attribute, a struct() or a
// dict: what each must be.
var sysupdateKeys = map[string]string{
	"definitions": "path", "target_path": "string", "current_symlink": "string", "instances_max": "int",
	"verify": "bool", "min_version": "string", "protect_version": "string", "mode": "string",
	"feature": "string", "feature_description": "string", "feature_enabled": "bool",
	"naming": "string", "sign_key": "path",
}

// shipping reads compress_output, update_url and sysupdate: how the image
// is published and updated. x must have Output and Version set.
func (a *args) shipping(x *rules.Extension) (string, *rules.Update, error) {
	comp, err := a.str("compress_output", "none")
	if err != nil {
		return "", nil, err
	}
	if comp == "none" {
		comp = ""
	}
	url, err := a.str("update_url", "")
	if err != nil {
		return "", nil, err
	}
	fields, err := a.sysupdateFields()
	if err != nil {
		return "", nil, err
	}
	if url == "" && !a.has("update_url") && fields == nil {
		return comp, nil, nil
	}
	u := &rules.Update{URL: url, Verify: true}
	errf := func(k, format string, xs ...any) error {
		return a.errf("sysupdate", "%s: %s", k, fmt.Sprintf(format, xs...))
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := fields[k]
		switch sysupdateKeys[k] {
		case "string", "path":
			s, ok := v.(starlark.String)
			if !ok {
				return "", nil, errf(k, "got %s, want string", v.Type())
			}
			if strings.ContainsAny(string(s), "\n\x00") {
				return "", nil, errf(k, "must not contain a newline or NUL")
			}
			str := string(s)
			if sysupdateKeys[k] == "path" {
				if str, err = a.l.resolvePath(a.ps, str); err != nil {
					return "", nil, errf(k, "%v", err)
				}
			}
			switch k {
			case "definitions":
				u.Definitions = str
			case "target_path":
				u.TargetPath = str
			case "current_symlink":
				u.CurrentSymlink = str
			case "min_version":
				u.MinVersion = str
			case "protect_version":
				u.ProtectVersion = str
			case "mode":
				u.Mode = str
			case "feature":
				u.Feature = str
			case "feature_description":
				u.FeatureDescription = str
			case "sign_key":
				u.SignKey = str
			case "naming":
				if str != "transfer" && str != "conf" {
					return "", nil, errf(k, "%q is not \"transfer\" (systemd 257 and later) or \"conf\" (older)", str)
				}
				u.LegacyNaming = str == "conf"
			}
		case "int":
			n, err := starlark.AsInt32(v)
			if err != nil {
				return "", nil, errf(k, "got %s, want int", v.Type())
			}
			u.InstancesMax = n
		case "bool":
			b, ok := v.(starlark.Bool)
			if !ok {
				return "", nil, errf(k, "got %s, want bool (True or False)", v.Type())
			}
			if k == "verify" {
				u.Verify = bool(b)
			} else {
				u.FeatureEnabled = bool(b)
			}
		}
	}
	// Only signing and shipped definitions make sense without a URL.
	if u.URL == "" {
		for _, k := range keys {
			if k != "sign_key" && k != "definitions" {
				return "", nil, errf(k, "needs update_url (the directory hosts download the images from)")
			}
		}
		return comp, u, nil
	}
	if x.Version == "" {
		return "", nil, a.errf("update_url", "systemd-sysupdate needs versioned images (<output>_<version>.raw): set version")
	}
	if u.Definitions != "" {
		return "", nil, errf("definitions", "ships definitions as written, and update_url generates one: use one of them")
	}
	if u.Feature == "" && (u.FeatureDescription != "" || u.FeatureEnabled) {
		return "", nil, errf("feature", "feature_description and feature_enabled need feature (its name)")
	}
	t := &sysupdate.Transfer{Name: x.Output, Kind: x.Kind, URL: u.URL, TargetPath: u.TargetPath,
		CurrentSymlink: u.CurrentSymlink, InstancesMax: u.InstancesMax, Verify: u.Verify,
		MinVersion: u.MinVersion, ProtectVersion: u.ProtectVersion, Mode: u.Mode}
	if u.Feature != "" {
		t.Features = []string{u.Feature}
	}
	if err := t.Check(); err != nil {
		return "", nil, a.errf("update_url", "%v", err)
	}
	return comp, u, nil
}

// sysupdateFields returns the fields of the sysupdate attribute (nil when
// not set), refusing unknown ones.
func (a *args) sysupdateFields() (map[string]starlark.Value, error) {
	v, ok := a.vals["sysupdate"]
	if !ok {
		return nil, nil
	}
	fields := map[string]starlark.Value{}
	switch v := v.(type) {
	case *starlark.Dict:
		for _, it := range v.Items() {
			k, ok := it[0].(starlark.String)
			if !ok {
				return nil, a.errf("sysupdate", "key %s: got %s, want string", it[0].String(), it[0].Type())
			}
			fields[string(k)] = it[1]
		}
	case *starlarkstruct.Struct:
		for _, k := range v.AttrNames() {
			fields[k], _ = v.Attr(k)
		}
	default:
		return nil, a.errf("sysupdate", "got %s, want struct(...) or a dict", v.Type())
	}
	names := make([]string, 0, len(sysupdateKeys))
	for k := range sysupdateKeys {
		names = append(names, k)
	}
	sort.Strings(names)
	for k := range fields {
		if !slices.Contains(names, k) {
			msg := fmt.Sprintf("unknown field %q (known: %s)", k, strings.Join(names, ", "))
			if n := suggest.Nearest(k, names); n != "" {
				msg = fmt.Sprintf("unknown field %q (did you mean %q?)", k, n)
			}
			return nil, a.errf("sysupdate", "%s", msg)
		}
	}
	return fields, nil
}
