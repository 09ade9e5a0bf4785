package extension

import (
	"fmt"
	"slices"
	"strings"
)

// Host is what systemd-sysext and systemd-confext compare an extension's
// release file with: the os-release of the system it is merged into, its
// architecture (a systemd name such as "x86-64") and the scope being
// merged ("system" for systemd-sysext merge).
type Host struct {
	OSRelease    Env
	Architecture string
	Scope        string
}

// CheckRelease reports whether systemd would merge the extension named name
// (its image name: the file name without ".raw") of kind kind, whose
// extension-release file holds release, into host. It returns nil when it
// would, and otherwise an error giving systemd's reason. The rules are
// systemd's (extension-util.c): the scope must be listed in SYSEXT_SCOPE /
// CONFEXT_SCOPE (default "system portable"); ARCHITECTURE, unless absent
// or "_any", must be the host's; ID must be "_any", the host's ID or one of
// its ID_LIKE; then, unless the host has neither VERSION_ID nor a level,
// SYSEXT_LEVEL / CONFEXT_LEVEL must match the host's when both declare
// one, else VERSION_ID must equal the host's.
func CheckRelease(name string, kind Kind, release Env, host Host) error {
	if len(release) == 0 {
		return fmt.Errorf("extension %q carries no release data (no %s)", name, ReleasePath(kind, name))
	}
	levelKey, scopeKey := "SYSEXT_LEVEL", "SYSEXT_SCOPE"
	if kind == Confext {
		levelKey, scopeKey = "CONFEXT_LEVEL", "CONFEXT_SCOPE"
	}
	if host.Scope != "" {
		scopes := []string{"system", "portable"}
		if s, ok := release.Get(scopeKey); ok {
			scopes = strings.Fields(s)
		}
		if !slices.Contains(scopes, host.Scope) {
			return fmt.Errorf("extension %q is not suitable for scope %s (%s=%s)", name, host.Scope, scopeKey, strings.Join(scopes, " "))
		}
	}
	if a, _ := release.Get("ARCHITECTURE"); a != "" && a != "_any" && a != host.Architecture {
		return fmt.Errorf("extension %q is for architecture %q, but deployed on top of %q", name, a, host.Architecture)
	}
	hostID, _ := host.OSRelease.Get("ID")
	id, _ := release.Get("ID")
	if id == "" {
		return fmt.Errorf("extension %q does not contain ID in release file but requested to match %q or be \"_any\"", name, hostID)
	}
	if id == "_any" {
		return nil
	}
	like, _ := host.OSRelease.Get("ID_LIKE")
	if id != hostID && !slices.Contains(strings.Fields(like), id) {
		return fmt.Errorf("extension %q is for OS %q, but deployed on top of %q", name, id, hostID)
	}
	hostVersion, _ := host.OSRelease.Get("VERSION_ID")
	hostLevel, _ := host.OSRelease.Get(levelKey)
	if hostVersion == "" && hostLevel == "" {
		return nil // a rolling release: the ID is enough
	}
	if level, _ := release.Get(levelKey); hostLevel != "" && level != "" {
		if level != hostLevel {
			return fmt.Errorf("extension %q is for API level %q, but running on API level %q", name, level, hostLevel)
		}
		return nil
	}
	if hostVersion == "" {
		return nil
	}
	version, _ := release.Get("VERSION_ID")
	if version == "" {
		return fmt.Errorf("extension %q does not contain VERSION_ID in release file but requested to match %q", name, hostVersion)
	}
	if version != hostVersion {
		return fmt.Errorf("extension %q is for OS version %q, but deployed on top of %q", name, version, hostVersion)
	}
	return nil
}
