package deb

import (
	"fmt"
	"sort"
	"strings"
)

// archs maps systemd architecture names (as in ConditionArchitecture= and
// os-release) to Debian port names.
var archs = map[string]string{
	"x86-64":      "amd64",
	"x86":         "i386",
	"arm64":       "arm64",
	"arm":         "armhf",
	"ppc64-le":    "ppc64el",
	"ppc64":       "ppc64",
	"s390x":       "s390x",
	"riscv64":     "riscv64",
	"mips64-le":   "mips64el",
	"mips-le":     "mipsel",
	"loongarch64": "loong64",
	"alpha":       "alpha",
	"sparc64":     "sparc64",
	"ia64":        "ia64",
	"parisc":      "hppa",
	"m68k":        "m68k",
	"sh":          "sh4",
}

// DebianArch returns the Debian port for a systemd architecture name. Debian
// names (amd64, armhf, ...) are accepted unchanged.
func DebianArch(systemd string) (string, error) {
	if d, ok := archs[systemd]; ok {
		return d, nil
	}
	for _, d := range archs {
		if d == systemd {
			return d, nil
		}
	}
	var names []string
	for k := range archs {
		names = append(names, k)
	}
	sort.Strings(names)
	return "", fmt.Errorf("unknown architecture %q (known: %s)", systemd, strings.Join(names, ", "))
}

// SystemdArch returns the systemd name for a Debian port, or "" when
// unknown.
func SystemdArch(debian string) string {
	for k, v := range archs {
		if v == debian {
			return k
		}
	}
	return ""
}

// mergedUsrLinks are the top-level symlinks of a merged-/usr tree for a
// Debian architecture, in creation order: name -> target.
func mergedUsrLinks(arch string) [][2]string {
	l := [][2]string{{"bin", "usr/bin"}, {"sbin", "usr/sbin"}, {"lib", "usr/lib"}}
	switch arch {
	case "amd64", "ppc64", "ppc64el", "s390x", "sparc64", "loong64", "riscv64":
		l = append(l, [2]string{"lib64", "usr/lib64"})
	case "i386":
		l = append(l, [2]string{"lib32", "usr/lib32"}, [2]string{"lib64", "usr/lib64"})
	case "mips64el", "mipsel":
		l = append(l, [2]string{"lib32", "usr/lib32"}, [2]string{"lib64", "usr/lib64"})
	}
	return l
}
