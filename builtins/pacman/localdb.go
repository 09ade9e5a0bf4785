package pacman

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// localDBVersion is what libalpm 13 (pacman 6) writes to
// var/lib/pacman/local/ALPM_DB_VERSION.
const localDBVersion = "9\n"

// descWriter writes desc-format sections.
type descWriter struct{ strings.Builder }

func (w *descWriter) section(key string, values ...string) {
	w.WriteString("%" + key + "%\n")
	for _, v := range values {
		w.WriteString(v + "\n")
	}
	w.WriteString("\n")
}

func (w *descWriter) list(key string, values []string) {
	if len(values) > 0 {
		w.section(key, values...)
	}
}

// localDesc is the desc file of a package's local database entry, in the
// order and with the sections libalpm's _alpm_local_db_write uses.
func localDesc(pf *pkgFile, installDate int64, insecure bool) string {
	in := pf.info
	var w descWriter
	w.section("NAME", in.Name)
	w.section("VERSION", in.Version)
	if in.Base != "" {
		w.section("BASE", in.Base)
	}
	if in.Desc != "" {
		w.section("DESC", in.Desc)
	}
	if in.hasURL {
		w.section("URL", in.URL)
	}
	if in.Arch != "" {
		w.section("ARCH", in.Arch)
	}
	if in.BuildDate != 0 {
		w.section("BUILDDATE", strconv.FormatInt(in.BuildDate, 10))
	}
	if installDate != 0 {
		w.section("INSTALLDATE", strconv.FormatInt(installDate, 10))
	}
	if in.Packager != "" {
		w.section("PACKAGER", in.Packager)
	}
	if in.Size != 0 {
		w.section("SIZE", strconv.FormatInt(in.Size, 10))
	}
	if !pf.pkg.Explicit {
		w.section("REASON", "1")
	}
	w.list("GROUPS", in.Groups)
	w.list("LICENSE", in.Licenses)
	// What libalpm checked: the signature, and the SHA-256 too unless the
	// signature came with the database.
	switch {
	case insecure:
		w.section("VALIDATION", "sha256")
	case pf.pkg.Signature != "":
		w.section("VALIDATION", "pgp")
	default:
		w.section("VALIDATION", "sha256", "pgp")
	}
	w.list("REPLACES", in.Replaces)
	w.list("DEPENDS", in.Depends)
	w.list("OPTDEPENDS", in.OptDepends)
	w.list("CONFLICTS", in.Conflicts)
	w.list("PROVIDES", in.Provides)
	w.list("XDATA", in.XData)
	return w.String()
}

// localFiles is the files file of a package's local database entry: the
// payload's paths, sorted, and the backup files with their MD5.
func localFiles(pf *pkgFile) string {
	var w descWriter
	files := append([]string{}, pf.files...)
	sort.Strings(files)
	w.list("FILES", files)
	var backup []string
	for _, b := range pf.info.Backup {
		if sum, ok := pf.backup[b]; ok {
			backup = append(backup, b+"\t"+sum)
		}
	}
	w.list("BACKUP", backup)
	return w.String()
}

// writeLocalDB writes the local database entries of the installed
// packages (and ALPM_DB_VERSION) into the tree.
func writeLocalDB(r *root, pfs []*pkgFile, insecure bool) error {
	if err := r.writeFile(LocalDBPath+"/ALPM_DB_VERSION", []byte(localDBVersion), 0o644); err != nil {
		return err
	}
	for _, pf := range pfs {
		dir := LocalDBPath + "/" + pf.info.Name + "-" + pf.info.Version
		files := []struct {
			name    string
			content []byte
		}{
			{"desc", []byte(localDesc(pf, pf.info.BuildDate, insecure))},
			{"files", []byte(localFiles(pf))},
		}
		if pf.mtree != nil {
			files = append(files, struct {
				name    string
				content []byte
			}{"mtree", pf.mtree})
		}
		if pf.install != nil {
			files = append(files, struct {
				name    string
				content []byte
			}{"install", pf.install})
		}
		for _, f := range files {
			if err := r.writeFile(dir+"/"+f.name, f.content, 0o644); err != nil {
				return fmt.Errorf("writing the local database: %w", err)
			}
		}
	}
	return nil
}
