package rpm

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sxb-build/sxb/internal/arch"
)

// Default mirrors. A Request's Mirror replaces them; "file:///srv/mirror"
// (or a plain absolute path) points at a local copy laid out the same way.
const (
	DefaultOpenSUSEMirror = "https://download.opensuse.org"
	DefaultFedoraMirror   = "https://dl.fedoraproject.org/pub"
)

// Distributions are the distributions Resolve installs from.
var Distributions = []string{"opensuse", "fedora"}

// arches are the architectures Resolve installs packages of.
var arches = []arch.Arch{arch.X86_64, arch.ARM64, arch.PPC64LE, arch.S390X, arch.RISCV64, arch.X86}

// SupportsArch reports whether Resolve installs packages of a.
func SupportsArch(a arch.Arch) bool { return slices.Contains(arches, a) }

// rpmArch maps an architecture in any spelling package arch reads (systemd's,
// rpm's, ...) to the rpm architecture; "" is x86_64.
func rpmArch(name string) (string, error) {
	if name == "" {
		return arch.X86_64.RPM(), nil
	}
	a, err := arch.Parse(name)
	if err != nil || !SupportsArch(a) {
		return "", fmt.Errorf("unsupported architecture %q", name)
	}
	return a.RPM(), nil
}

// compatibleArch reports whether packages of arch pa install on arch a.
func compatibleArch(a, pa string) bool {
	if pa == "noarch" || pa == a {
		return true
	}
	if a == "i686" {
		return pa == "i586" || pa == "i486" || pa == "i386"
	}
	return false
}

// repoSpec is one default repository of a distribution release.
type repoSpec struct {
	Name string
	Path string // below the mirror
}

// defaultRepos returns the repositories of a distribution release:
//
//	opensuse tumbleweed (x86_64):  tumbleweed/repo/oss/, update/tumbleweed/
//	opensuse tumbleweed (other):   ports/<arch>/tumbleweed/repo/oss/
//	opensuse leap-15.6:            distribution/leap/15.6/repo/oss/,
//	                               update/leap/15.6/oss/, update/leap/15.6/sle/,
//	                               update/leap/15.6/backports/
//	fedora 41:                     fedora/linux/releases/41/Everything/<arch>/os/,
//	                               fedora/linux/updates/41/Everything/<arch>/
//	fedora rawhide:                fedora/linux/development/rawhide/Everything/<arch>/os/
func defaultRepos(distro, release, arch string) ([]repoSpec, error) {
	switch distro {
	case "opensuse":
		switch {
		case release == "" || release == "tumbleweed":
			if arch == "x86_64" || arch == "i686" {
				return []repoSpec{{"oss", "tumbleweed/repo/oss/"}, {"update", "update/tumbleweed/"}}, nil
			}
			return []repoSpec{{"oss", "ports/" + arch + "/tumbleweed/repo/oss/"}}, nil
		case strings.HasPrefix(release, "leap-") || isLeapVersion(release):
			v := strings.TrimPrefix(release, "leap-")
			return []repoSpec{
				{"oss", "distribution/leap/" + v + "/repo/oss/"},
				{"update", "update/leap/" + v + "/oss/"},
				{"sle", "update/leap/" + v + "/sle/"},
				{"backports", "update/leap/" + v + "/backports/"},
			}, nil
		}
		return nil, fmt.Errorf("unknown openSUSE release %q (want tumbleweed or leap-15.6)", release)
	case "fedora":
		switch {
		case release == "rawhide":
			return []repoSpec{{"release", "fedora/linux/development/rawhide/Everything/" + arch + "/os/"}}, nil
		case allDigits(release):
			return []repoSpec{
				{"release", "fedora/linux/releases/" + release + "/Everything/" + arch + "/os/"},
				{"updates", "fedora/linux/updates/" + release + "/Everything/" + arch + "/"},
			}, nil
		}
		return nil, fmt.Errorf("unknown Fedora release %q (want a number or rawhide)", release)
	}
	return nil, fmt.Errorf("unknown rpm distribution %q (want opensuse or fedora)", distro)
}

func isLeapVersion(s string) bool {
	a, b, ok := strings.Cut(s, ".")
	return ok && allDigits(a) && allDigits(b)
}

// defaultKeyring lists the host places holding a distribution's keys.
func defaultKeyring(distro, release, arch string) []string {
	var cands []string
	switch distro {
	case "opensuse":
		cands = []string{
			"/usr/share/distribution-gpg-keys/opensuse",
			"/usr/lib/rpm/gnupg/keys",
		}
	case "fedora":
		cands = []string{
			"/usr/share/distribution-gpg-keys/fedora/RPM-GPG-KEY-fedora-" + release + "-primary",
			"/etc/pki/rpm-gpg/RPM-GPG-KEY-fedora-" + release + "-" + arch,
			"/etc/pki/rpm-gpg/RPM-GPG-KEY-fedora-" + release + "-primary",
		}
	}
	var out []string
	for _, c := range cands {
		if _, err := os.Stat(c); err == nil {
			out = append(out, c)
		}
	}
	if distro == "opensuse" && len(out) == 0 {
		if m, _ := filepath.Glob("/etc/pki/rpm-gpg/*opensuse*"); len(m) > 0 {
			out = append(out, m...)
		}
	}
	return out
}
