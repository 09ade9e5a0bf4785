package mkosi

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sxb-build/sxb/builtins/deb"
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

// packageManagerConfigs are the sandbox files each package manager reads
// its repositories from, by distribution family.
var packageManagerConfigs = map[string][]string{
	"rpm": {"etc/yum.repos.d/", "etc/zypp/repos.d/", "etc/dnf/"},
	"pkg": {"etc/pacman.conf", "etc/pacman.d/"},
}

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
	if pt := im.PackageType(); pt != "deb" {
		for _, n := range names {
			for _, prefix := range packageManagerConfigs[pt] {
				if n == prefix || strings.HasPrefix(n, prefix) && strings.HasSuffix(prefix, "/") {
					gap(n, "repository configuration for "+im.Distribution+" in the sandbox trees is not supported by sxb yet")
					return gaps
				}
			}
		}
		return gaps
	}
	var trusted string
	for _, n := range names {
		switch {
		case n == "etc/apt/preferences" || strings.HasPrefix(n, "etc/apt/preferences.d/"):
			gap(n, "apt pinning is not supported by sxb yet")
		case strings.HasPrefix(n, "etc/apt/trusted.gpg.d/") && trusted == "":
			trusted = filepath.Dir(files[n])
		}
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
