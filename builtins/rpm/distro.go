package rpm

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Default mirrors. A Request's Mirror replaces them; "file:///srv/mirror"
// (or a plain absolute path) points at a local copy laid out the same way.
const (
	DefaultOpenSUSEMirror = "https://download.opensuse.org"
	DefaultFedoraMirror   = "https://dl.fedoraproject.org/pub"
)

// rpmArch maps a systemd architecture name (or an rpm one) to the rpm
// architecture.
func rpmArch(a string) (string, error) {
	switch a {
	case "", "x86-64", "x86_64", "amd64":
		return "x86_64", nil
	case "arm64", "aarch64":
		return "aarch64", nil
	case "ppc64-le", "ppc64le":
		return "ppc64le", nil
	case "s390x":
		return "s390x", nil
	case "riscv64":
		return "riscv64", nil
	case "x86", "i686", "i586", "i386":
		return "i686", nil
	}
	return "", fmt.Errorf("unsupported architecture %q", a)
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
