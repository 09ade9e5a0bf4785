package mkosi

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/sxb-build/sxb/internal/arch"
)

// Defaults computed from the host and other settings.

func defaultDistribution(c *pctx) (any, error) {
	d, _ := c.l.host()
	if d == "" {
		return "custom", nil
	}
	return d, nil
}

var defaultReleases = map[string]string{"fedora": "rawhide", "debian": "testing", "kali": "kali-rolling",
	"ubuntu": "devel", "postmarketos": "edge", "arch": "rolling", "opensuse": "tumbleweed", "mageia": "cauldron",
	"centos": "10", "rhel": "10", "rhel-ubi": "10", "openmandriva": "cooker", "rocky": "10", "alma": "10",
	"azure": "3.0", "custom": ""}

func defaultRelease(c *pctx) (any, error) {
	d, err := c.valueOf("Distribution")
	if err != nil {
		return nil, err
	}
	hd, hr := c.l.host()
	if d == hd && hr != "" {
		return hr, nil
	}
	ds, _ := d.(string)
	return defaultReleases[ds], nil
}

func distFilesystem(d string) string {
	switch d {
	case "fedora", "opensuse":
		return "btrfs"
	case "centos", "rhel", "rhel-ubi", "rocky", "alma":
		return "xfs"
	}
	return "ext4"
}

// defaultBuildSources: the project directory, mounted where the build
// scripts start.
func defaultBuildSources(c *pctx) (any, error) {
	if c.directory == "" {
		return []Tree{}, nil
	}
	return []Tree{{Source: c.directory}}, nil
}

func defaultArchitecture(c *pctx) (any, error) { return c.l.hostArch(), nil }

func defaultOutput(c *pctx) (any, error) {
	out := c.image
	if c.image == "main" {
		out = c.str("ImageId")
		if out == "" {
			out = "image"
		}
	}
	if v := c.str("ImageVersion"); v != "" {
		out += "_" + v
	}
	// The default name is used as a file name in the output directory.
	if !validFilename(out) || strings.ContainsRune(out, 0) {
		return nil, fmt.Errorf("ImageVersion=%s: the output name %q would not be a file name", c.str("ImageVersion"), out)
	}
	return out, nil
}

var formatExtensions = map[string]string{"confext": "raw", "cpio": "cpio", "disk": "raw", "esp": "raw",
	"portable": "raw", "sysext": "raw", "tar": "tar", "uki": "efi", "addon": "efi"}

func defaultExtension(c *pctx) (any, error) { return formatExtensions[c.str("Format")], nil }

func defaultCompression(c *pctx) (any, error) {
	switch c.str("Format") {
	case "tar", "cpio", "uki", "esp", "addon":
		return "zstd", nil
	case "oci":
		return "gz", nil
	}
	return "none", nil
}

func defaultEpoch(c *pctx) (any, error) {
	// mkosi looks for SOURCE_DATE_EPOCH= among the keys of Environment=,
	// which never matches, so effectively only the process environment
	// counts.
	return parseEpoch(c, c.getenv("SOURCE_DATE_EPOCH"), nil)
}

// Host facts.

func (l *loader) host() (string, string) {
	if l.opts.HostDistribution != "" {
		return l.opts.HostDistribution, l.opts.HostRelease
	}
	if d := l.env("MKOSI_HOST_DISTRIBUTION"); d != "" && contains(distributions, d) {
		if r := l.env("MKOSI_HOST_RELEASE"); r != "" {
			return d, r
		}
	}
	return detectDistribution("/")
}

func (l *loader) env(k string) string {
	if l.opts.Environment != nil {
		return l.opts.Environment[k]
	}
	return os.Getenv(k)
}

// detectDistribution reads os-release like mkosi's detect_distribution.
func detectDistribution(root string) (string, string) {
	data, err := os.ReadFile(filepath.Join(root, "etc/os-release"))
	if err != nil {
		if data, err = os.ReadFile(filepath.Join(root, "usr/lib/os-release")); err != nil {
			return "", ""
		}
	}
	kv := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok {
			kv[k] = strings.Trim(v, `"'`)
		}
	}
	id := kv["ID"]
	version := kv["VERSION_ID"]
	if id == "opensuse-tumbleweed" {
		version = "tumbleweed"
	}
	d := ""
	for _, cand := range append([]string{id}, strings.Fields(kv["ID_LIKE"])...) {
		if cand == "azurelinux" {
			cand = "azure"
		}
		if contains(distributions, cand) {
			d = cand
			break
		}
	}
	if d == "" {
		return "", ""
	}
	if (d == "debian" || d == "ubuntu" || d == "kali") && kv["VERSION_CODENAME"] != "" {
		version = kv["VERSION_CODENAME"]
	}
	if version == "" {
		version = defaultReleases[d]
	}
	return d, version
}

func (l *loader) hostArch() string {
	if l.opts.HostArchitecture != "" {
		return l.opts.HostArchitecture
	}
	return arch.Native().Mkosi()
}

func (l *loader) systemdVersion() (string, error) {
	if l.opts.SystemdVersion != "" {
		return l.opts.SystemdVersion, nil
	}
	out, err := exec.Command("systemctl", "--version").Output()
	if err != nil {
		return "", fmt.Errorf("running systemctl --version: %w", err)
	}
	f := strings.Fields(string(out))
	if len(f) < 2 {
		return "", fmt.Errorf("unexpected systemctl --version output")
	}
	return f[1], nil
}
