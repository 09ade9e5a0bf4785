package mkosi

import (
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/sxb-build/sxb/builtins/repart"
	"github.com/sxb-build/sxb/internal/diag"
)

// builtinConfigs are the configurations mkosi ships in its resources
// directory; Include=mkosi-vm names one.
var builtinConfigs = []string{"mkosi-tools", "mkosi-initrd", "mkosi-vm", "mkosi-addon", "mkosi-obs"}

// NoResources as LoadOptions.Resources means: no installed mkosi.
const NoResources = "-"

// defaultInitrdName is the name of the image mkosi synthesizes as the
// initrd of bootable images.
const defaultInitrdName = "default-initrd"

// resources returns the resources directory of an installed mkosi (the
// one holding mkosi-initrd/, mkosi-vm/, ...), or "" when there is none.
func (l *loader) resources() string {
	l.resOnce.Do(func() {
		switch r := l.opts.Resources; r {
		case NoResources:
		case "":
			l.res = findResources(l.env("HOME"))
		default:
			l.res = r
		}
	})
	return l.res
}

// findResources looks for an installed mkosi's resources: the Python
// package directory mkosi/resources/ in the system's and the user's
// site-packages, in the virtual environment or checkout the mkosi on PATH
// belongs to. (sxb does not run mkosi or Python to ask; where pip, pipx,
// Debian and a git checkout put it is known.)
func findResources(home string) string {
	var roots []string
	if exe, err := exec.LookPath("mkosi"); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		prefix := filepath.Dir(filepath.Dir(exe))
		roots = append(roots, prefix) // a checkout: bin/mkosi next to mkosi/
		roots = append(roots, globSorted(filepath.Join(prefix, "lib/python3*/site-packages"))...)
	}
	roots = append(roots, "/usr/lib/python3/dist-packages")
	for _, pat := range []string{"/usr/local/lib/python3*/dist-packages", "/usr/local/lib/python3*/site-packages",
		"/usr/lib/python3*/site-packages", "/usr/lib64/python3*/site-packages"} {
		roots = append(roots, globSorted(pat)...)
	}
	if home != "" {
		roots = append(roots, globSorted(filepath.Join(home, ".local/lib/python3*/site-packages"))...)
		roots = append(roots, globSorted(filepath.Join(home, ".local/share/pipx/venvs/mkosi/lib/python3*/site-packages"))...)
	}
	for _, r := range roots {
		if d := filepath.Join(r, "mkosi/resources"); isDir(filepath.Join(d, "mkosi-initrd")) {
			return d
		}
	}
	return ""
}

// globSorted returns the matches of pattern, newest Python last.
func globSorted(pattern string) []string {
	m, _ := filepath.Glob(pattern)
	sort.Strings(m)
	slices.Reverse(m)
	return m
}

// builtinInclude resolves Include=<name> of a built-in configuration to
// its directory, or records that the image cannot be built without it
// and returns "".
func (c *pctx) builtinInclude(name string, pos diag.Pos) string {
	if r := c.l.resources(); r != "" && isDir(filepath.Join(r, name)) {
		return filepath.Join(r, name)
	}
	for _, m := range c.missing {
		if m.Value == name {
			return ""
		}
	}
	c.missing = append(c.missing, Setting{Name: "Include", Value: name, Pos: pos,
		Reason: "mkosi's built-in configuration; no installed mkosi was found to read it from (install mkosi, or set its resources directory)"})
	return ""
}

// wantDefaultInitrd reports whether mkosi builds its default initrd for
// im: a bootable image with a kernel and no Initrds= (mkosi's
// want_default_initrd).
func wantDefaultInitrd(im *Image) bool {
	switch im.Format {
	case "uki", "esp":
		return false
	}
	if im.Bootable == "disabled" {
		return false
	}
	if im.Bootable == "auto" && (im.Format == "cpio" || im.Format == "sysext" || im.Format == "confext" ||
		im.Format == "addon" || im.Format == "portable" || im.Overlay) {
		return false
	}
	if v, _ := im.values[settingByName["Initrds"]].(string); v != "" {
		return false
	}
	if im.Bootable == "enabled" {
		return true
	}
	vol, _ := im.values[settingByName["VolatilePackages"]].([]string)
	for _, p := range append(append([]string{}, im.Packages...), vol...) {
		if isKernelPackage(im.Distribution, p) {
			return true
		}
	}
	return false
}

// defaultInitrd parses the "default-initrd" image mkosi synthesizes:
// universal settings forced from the main image, inherited ones passed
// down, then mkosi's built-in mkosi-initrd configuration. Without an
// installed mkosi, the image keeps the initrd's format and name and is
// marked as unbuildable.
func (l *loader) defaultInitrd(mainVals map[*setting]any, main *pctx, configdir string, at diag.Pos) (*Image, error) {
	c := newCtx(l, defaultInitrdName)
	c.cwd = configdir
	for _, s := range settings {
		switch s.Scope {
		case scUniversal, scMultiversal:
			c.cli[s] = mainVals[s]
		case scInherit, scInitrdInherit:
			c.config[s] = mainVals[s]
			if pos, set := main.pos[s.Name]; set {
				c.pos[s.Name] = pos
			}
		}
	}
	// InitrdPackages= and friends become the initrd's own settings, in
	// the namespace they were set in for the main image (appended to by
	// what mkosi-initrd's configuration adds).
	for from, to := range map[string]string{"InitrdPackages": "Packages", "InitrdVolatilePackages": "VolatilePackages", "InitrdProfiles": "Profiles"} {
		f, t := settingByName[from], settingByName[to]
		v := slices.Clone(mainVals[f].([]string))
		switch _, inCli := main.cli[f]; {
		case inCli:
			c.cli[t] = v
		case main.config[f] != nil:
			c.config[t] = v
		default:
			c.defaults[t] = v
		}
	}
	env := map[string]string{}
	mainEnv, _ := mainVals[settingByName["Environment"]].(map[string]string)
	for _, k := range mainVals[settingByName["PassEnvironment"]].([]string) {
		if v, ok := mainEnv[k]; ok {
			env[k] = v
		}
	}
	c.config[settingByName["Environment"]] = env
	res := l.resources()
	if res != "" && isDir(filepath.Join(res, "mkosi-initrd")) {
		dir := filepath.Join(res, "mkosi-initrd")
		c.cwd = dir
		if _, err := c.parseOne(dir, true, false); err != nil {
			return nil, err
		}
		c.cwd = configdir
	} else {
		// What mkosi-initrd/mkosi.conf sets first.
		c.cli[settingByName["Format"]] = "cpio"
		c.cli[settingByName["Output"]] = "initrd"
		c.cli[settingByName["Bootable"]] = "disabled"
		c.missing = append(c.missing, Setting{Name: "Include", Value: "mkosi-initrd", Pos: at,
			Reason: "mkosi's built-in configuration of the default initrd; no installed mkosi was found to read it from"})
	}
	vals, err := c.finalize()
	if err != nil {
		return nil, err
	}
	im := newImage(c, vals, configdir, configdir)
	for i := range im.Unsupported {
		if u := &im.Unsupported[i]; u.Name == "Format" {
			u.Pos, u.Reason = at, "the default initrd mkosi builds for a bootable image with a kernel is not supported by sxb yet"
		}
	}
	return im, nil
}

// kernelPackages tells, per distribution, which packages its installer
// counts as a kernel (mkosi's is_kernel_package); a distribution not
// listed has none.
var kernelPackages = map[string]func(p string) bool{
	"debian": func(p string) bool { return strings.HasPrefix(p, "linux-image-") },
	"kali":   func(p string) bool { return strings.HasPrefix(p, "linux-image-") },
	"ubuntu": func(p string) bool {
		return strings.HasPrefix(p, "linux-") && !strings.HasPrefix(p, "linux-tools-")
	},
	"fedora":   isRPMKernel,
	"centos":   isRPMKernel,
	"rhel":     isRPMKernel,
	"rhel-ubi": isRPMKernel,
	"rocky":    isRPMKernel,
	"alma":     isRPMKernel,
	"azure":    isRPMKernel,
	"opensuse": func(p string) bool { return p == "kernel-default" || p == "kernel-kvmsmall" },
	"arch": func(p string) bool {
		return slices.Contains([]string{"linux", "linux-lts", "linux-zen", "linux-hardened", "linux-rt", "linux-rt-lts"}, p)
	},
}

func isRPMKernel(p string) bool { return p == "kernel" || p == "kernel-core" }

// packageTypes is the package format of each distribution, as mkosi's
// manifest names it.
var packageTypes = map[string]string{
	"debian": "deb", "ubuntu": "deb", "kali": "deb",
	"fedora": "rpm", "centos": "rpm", "rhel": "rpm", "rhel-ubi": "rpm", "rocky": "rpm", "alma": "rpm",
	"azure": "rpm", "opensuse": "rpm", "mageia": "rpm", "openmandriva": "rpm",
	"arch": "pkg", "postmarketos": "apk",
}

// PackageType is the package format of the image's distribution ("deb",
// "rpm", "pkg", "apk"), or "" for none (custom).
func (im *Image) PackageType() string { return packageTypes[im.Distribution] }

// isKernelPackage reports whether the distribution's installer counts p
// as a kernel package.
func isKernelPackage(dist, p string) bool {
	f := kernelPackages[dist]
	return f != nil && f(p)
}

// repartOverridePrefix starts the environment variables systemd-repart
// reads to override partition settings; mkosi runs repart with the
// image's Environment=.
const repartOverridePrefix = "SYSTEMD_REPART_OVERRIDE_"

// RepartOverrides returns the SYSTEMD_REPART_OVERRIDE_* variables of the
// image's Environment=, sorted by name.
func (im *Image) RepartOverrides() []string {
	var out []string
	for k := range im.Environment {
		if strings.HasPrefix(k, repartOverridePrefix) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// RootFilesystem is the file system systemd-repart gives the root
// partition of mkosi's default partition definitions for the image:
// Format=erofs for extensions, the distribution's file system (ext4,
// btrfs, xfs) for Format=disk, unless Environment= overrides it
// (SYSTEMD_REPART_OVERRIDE_FSTYPE_ROOT=squashfs).
func (im *Image) RootFilesystem() string {
	fs := "erofs"
	if im.Format == "disk" {
		fs = distFilesystem(im.Distribution)
	}
	t, _ := repart.ParseType(repart.Root)
	getenv := func(k string) (string, bool) { v, ok := im.Environment[k]; return v, ok }
	if o := repart.FSTypeOverride(&repart.Partition{Type: t, Format: fs}, getenv); o != "" {
		return o
	}
	return fs
}
