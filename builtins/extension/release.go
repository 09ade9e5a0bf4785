package extension

import (
	"fmt"
	"strings"
)

// Kind is "sysext" or "confext".
type Kind string

// The extension kinds.
const (
	Sysext  Kind = "sysext"
	Confext Kind = "confext"
)

// ReleasePath is where the extension-release file of an extension named
// output lives inside its tree.
func ReleasePath(kind Kind, output string) string {
	if kind == Confext {
		return "etc/extension-release.d/extension-release." + output
	}
	return "usr/lib/extension-release.d/extension-release." + output
}

// ReleaseInput is what the extension-release file is made from.
type ReleaseInput struct {
	Kind Kind
	// Given holds the keys the user provided, in their order: a file
	// found in an extra tree first, then the extension_release attribute.
	Given Env
	// Base is the base tree's os-release (nil without a base).
	Base Env
	// ImageID and Version are the extension's image_id and version.
	ImageID, Version string
	// Scope overrides the default "initrd system portable".
	Scope string
	// Architecture is the systemd architecture name ("x86-64", "arm64").
	Architecture string
}

// Release builds the extension-release content the way mkosi does: every
// key the user gave is kept in order, then the missing ones are appended in
// this order: ID (the base's, else "_any"), <P>_LEVEL (from the base),
// VERSION_ID (from the base), <P>_ID (image id), <P>_VERSION_ID (version),
// <P>_SCOPE, ARCHITECTURE; <P> is SYSEXT or CONFEXT. Values are written
// unquoted, as mkosi writes them.
func Release(in ReleaseInput) (string, error) {
	prefix := "SYSEXT"
	if in.Kind == Confext {
		prefix = "CONFEXT"
	}
	env := append(Env(nil), in.Given...)
	add := func(k, v string) {
		if _, ok := env.Get(k); !ok && v != "" {
			env = append(env, KV{k, v})
		}
	}
	id, _ := in.Base.Get("ID")
	if id == "" {
		id = "_any"
	}
	add("ID", id)
	level, _ := in.Base.Get(prefix + "_LEVEL")
	add(prefix+"_LEVEL", level)
	vid, _ := in.Base.Get("VERSION_ID")
	add("VERSION_ID", vid)
	add(prefix+"_ID", in.ImageID)
	add(prefix+"_VERSION_ID", in.Version)
	scope := in.Scope
	if scope == "" {
		scope = "initrd system portable"
	}
	add(prefix+"_SCOPE", scope)
	add("ARCHITECTURE", in.Architecture)
	var b strings.Builder
	for _, kv := range env {
		if strings.ContainsAny(kv.Value, "\n") {
			return "", fmt.Errorf("extension-release: %s: value contains a newline", kv.Key)
		}
		fmt.Fprintf(&b, "%s=%s\n", kv.Key, kv.Value)
	}
	return b.String(), nil
}
