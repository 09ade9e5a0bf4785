package deb

import (
	"fmt"

	"github.com/sxb-build/sxb/internal/arch"
)

// Distributions are the distributions Resolve installs from.
var Distributions = []string{"debian", "ubuntu"}

// SupportsArch reports whether Debian has a port for a.
func SupportsArch(a arch.Arch) bool { return a.Debian() != "" }

// DebianArch returns the Debian port for an architecture in any spelling
// package arch reads ("x86-64", "amd64", "aarch64", ...).
func DebianArch(name string) (string, error) {
	a, err := arch.Parse(name)
	if err != nil {
		return "", err
	}
	if !SupportsArch(a) {
		return "", fmt.Errorf("architecture %s has no Debian port", a)
	}
	return a.Debian(), nil
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
