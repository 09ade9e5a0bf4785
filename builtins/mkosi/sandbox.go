package mkosi

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/sxb-build/sxb/builtins/deb"
	"github.com/sxb-build/sxb/builtins/pacman"
	"github.com/sxb-build/sxb/builtins/rpm"
)

// sandboxFiles maps the paths of the image's sandbox (as the package
// manager sees them, "etc/apt/sources.list") to the host files of the
// SandboxTrees= that provide them, a later tree replacing an earlier one
// as mkosi copies them in order. Archives are reported as unsupported.
func (im *Image) sandboxFiles() (map[string]string, []Setting) {
	files := map[string]string{}
	var gaps []Setting
	for _, t := range im.SandboxTrees {
		if !isDir(t.Source) {
			gaps = append(gaps, Setting{Name: "SandboxTrees", Value: t.String(), Pos: im.Pos["SandboxTrees"],
				Reason: "archives are not supported as sandbox trees by sxb yet (only directories)"})
			continue
		}
		target := strings.Trim(t.Target, "/")
		filepath.WalkDir(t.Source, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			rel, _ := filepath.Rel(t.Source, p)
			files[path.Join(target, filepath.ToSlash(rel))] = p
			return nil
		})
	}
	return files, gaps
}

// repoDirs is where each rpm distribution's package manager reads .repo
// files from in the sandbox: zypper's for openSUSE, dnf's for Fedora.
var repoDirs = map[string]string{"opensuse": "etc/zypp/repos.d/", "fedora": "etc/yum.repos.d/"}

// readSandbox fills the image's apt repositories from its sandbox trees
// (mkosi.sandbox/, mkosi.pkgmngr/): sources.list and sources.list.d/*.list
// and *.sources extend mkosi's default repositories, a
// sources.list.d/mkosi.sources replaces them (mkosi writes its defaults
// there unless it exists). What sxb cannot honour is returned as
// unsupported settings.
func (im *Image) readSandbox() []Setting {
	if len(im.SandboxTrees) == 0 {
		return nil
	}
	files, gaps := im.sandboxFiles()
	gap := func(value, reason string) {
		gaps = append(gaps, Setting{Name: "SandboxTrees", Value: value, Pos: im.Pos["SandboxTrees"], Reason: reason})
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	switch im.PackageType() {
	case "rpm":
		return append(gaps, im.readRepoFiles(files, names)...)
	case "pkg":
		return append(gaps, im.readPacmanConf(files, names)...)
	case "deb":
	default:
		return gaps
	}
	var trusted string
	var prefs []string
	for _, n := range names {
		switch {
		case n == "etc/apt/preferences":
			prefs = append([]string{n}, prefs...)
		case strings.HasPrefix(n, "etc/apt/preferences.d/") && aptPartName(path.Base(n), ".pref"):
			prefs = append(prefs, n)
		case strings.HasPrefix(n, "etc/apt/trusted.gpg.d/") && trusted == "":
			trusted = filepath.Dir(files[n])
		}
	}
	// apt's order: preferences, then preferences.d/ by name.
	for _, n := range prefs {
		data, err := os.ReadFile(files[n])
		if err == nil {
			var pins []deb.Pin
			if pins, err = deb.ParsePreferences(files[n], data); err == nil {
				im.AptPins = append(im.AptPins, pins...)
				continue
			}
		}
		gap(n, err.Error())
	}
	// apt's order: sources.list, then sources.list.d/ by name.
	var srcFiles []string
	if _, ok := files["etc/apt/sources.list"]; ok {
		srcFiles = append(srcFiles, "etc/apt/sources.list")
	}
	for _, n := range names {
		if dir, base := path.Split(n); dir == "etc/apt/sources.list.d/" && (strings.HasSuffix(base, ".list") || strings.HasSuffix(base, ".sources")) {
			srcFiles = append(srcFiles, n)
			if base == "mkosi.sources" {
				im.NoDefaultSources = true
			}
		}
	}
	for _, n := range srcFiles {
		data, err := os.ReadFile(files[n])
		if err != nil {
			gap(n, err.Error())
			continue
		}
		srcs, err := deb.ParseSources(files[n], data, strings.HasSuffix(n, ".sources"))
		if err != nil {
			gap(n, err.Error())
			continue
		}
		for _, s := range srcs {
			switch {
			case s.Keyring != "":
				// Signed-By names a path in the sandbox: the trees', else
				// the host's (mkosi's tools tree is the host here).
				k := strings.TrimPrefix(path.Clean(s.Keyring), "/")
				if p, ok := files[k]; ok {
					s.Keyring = p
				} else if _, err := os.Stat(s.Keyring); err != nil {
					gap(n, "Signed-By="+s.Keyring+": not found in the sandbox trees or on the host")
					continue
				}
			case trusted != "":
				s.Keyring = trusted
			}
			im.AptSources = append(im.AptSources, s)
		}
	}
	return gaps
}

// sandboxPath returns the host file behind the sandbox path p: the
// sandbox trees', else the host's own (mkosi's tools tree is the host
// here); "" when neither has it.
func sandboxPath(files map[string]string, p string) string {
	if f, ok := files[strings.TrimPrefix(path.Clean(p), "/")]; ok {
		return f
	}
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
		return p
	}
	return ""
}

// readRepoFiles reads the .repo files the distribution's package manager
// reads from the sandbox: the repositories they enable are added to the
// default ones (as URLs, their variables expanded), or replace them when
// one is mkosi.repo (mkosi writes its defaults there unless it exists);
// their gpgkey= files are trusted.
func (im *Image) readRepoFiles(files map[string]string, names []string) []Setting {
	var gaps []Setting
	gap := func(value, reason string) {
		gaps = append(gaps, Setting{Name: "SandboxTrees", Value: value, Pos: im.Pos["SandboxTrees"], Reason: reason})
	}
	dir := repoDirs[im.Distribution]
	var urls, keys []string
	replace := false
	for _, n := range names {
		d, base := path.Split(n)
		if d != dir || !strings.HasSuffix(base, ".repo") {
			continue
		}
		replace = replace || base == "mkosi.repo"
		data, err := os.ReadFile(files[n])
		if err != nil {
			gap(n, err.Error())
			continue
		}
		repos, err := rpm.ParseRepoFile(files[n], data)
		if err != nil {
			gap(n, err.Error())
			continue
		}
		for _, r := range repos {
			if !r.Enabled {
				continue
			}
			u, err := rpm.Expand(r.BaseURL, im.Release, im.Architecture)
			if err != nil {
				gap(n, fmt.Sprintf("repository [%s]: baseurl=%v", r.ID, err))
				continue
			}
			urls = append(urls, u)
			for _, k := range r.GPGKeys {
				if f := sandboxPath(files, k); f != "" {
					keys = append(keys, f)
				} else {
					gap(n, fmt.Sprintf("repository [%s]: gpgkey=file://%s: not found in the sandbox trees or on the host", r.ID, k))
				}
			}
		}
	}
	if len(urls) == 0 && !replace {
		return gaps
	}
	if !replace {
		// Repositories= naming none means all of the defaults: with URLs
		// alongside, they are named.
		repos := im.Repositories
		if len(repos) == 0 {
			var err error
			if repos, err = rpm.DefaultRepoNames(im.Distribution, im.Release, im.Architecture); err != nil {
				gap(dir, err.Error())
				return gaps
			}
		}
		urls = append(slices.Clip(repos), urls...)
	} else if len(urls) == 0 {
		gap(dir+"mkosi.repo", "it replaces the default repositories but enables none")
		return gaps
	}
	im.Repositories, im.RepoKeys, im.NoDefaultSources = urls, keys, replace
	return gaps
}

// readPacmanConf reads pacman's configuration from the sandbox: an
// etc/pacman.conf replaces mkosi's (and so the default repositories), as
// mkosi uses it as it is; without one, the repositories of
// etc/pacman.d/*.conf come before the default ones, as mkosi includes
// them first.
func (im *Image) readPacmanConf(files map[string]string, names []string) []Setting {
	read := func(p string) ([]byte, error) {
		f := sandboxPath(files, p)
		if f == "" {
			return nil, fmt.Errorf("%s: not found in the sandbox trees or on the host", p)
		}
		return os.ReadFile(f)
	}
	glob := func(pattern string) ([]string, error) {
		var out []string
		for _, n := range names {
			if ok, err := path.Match(strings.TrimPrefix(pattern, "/"), n); err != nil {
				return nil, err
			} else if ok {
				out = append(out, "/"+n)
			}
		}
		if len(out) == 0 && !strings.ContainsAny(pattern, "*?[") && sandboxPath(files, pattern) != "" {
			out = append(out, pattern)
		}
		return out, nil
	}
	for _, n := range names {
		if d, base := path.Split(n); d == "usr/share/pacman/keyrings/" && strings.HasSuffix(base, ".gpg") {
			im.KeyringDir = filepath.Dir(files[n])
			break
		}
	}
	conf := "/etc/pacman.conf"
	if _, ok := files["etc/pacman.conf"]; !ok {
		included, _ := glob("/etc/pacman.d/*.conf")
		if len(included) == 0 {
			return nil
		}
		// What mkosi's own pacman.conf includes.
		repos := []string{}
		for _, f := range included {
			r, err := pacman.ParseConf(f, read, glob)
			if err != nil {
				return []Setting{{Name: "SandboxTrees", Value: strings.TrimPrefix(f, "/"), Pos: im.Pos["SandboxTrees"], Reason: err.Error()}}
			}
			repos = append(repos, r...)
		}
		im.Repositories = append(repos, im.Repositories...)
		return nil
	}
	repos, err := pacman.ParseConf(conf, read, glob)
	if err != nil {
		return []Setting{{Name: "SandboxTrees", Value: "etc/pacman.conf", Pos: im.Pos["SandboxTrees"], Reason: err.Error()}}
	}
	im.Repositories, im.NoDefaultSources = repos, true
	return nil
}

// aptPartName reports whether apt reads the file name of a .d directory:
// letters, digits, "_", "-" and ".", with no extension or ext.
func aptPartName(name, ext string) bool {
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return name != "" && (!strings.Contains(name, ".") || strings.HasSuffix(name, ext))
}
