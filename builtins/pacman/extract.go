package pacman

import (
	"archive/tar"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sxb-build/sxb/builtins/tree"
)

// pkgFile is one downloaded, verified package and what its metadata
// entries say.
type pkgFile struct {
	pkg     Package
	path    string // in the download cache
	info    *pkgInfo
	mtree   []byte // .MTREE as shipped (gzip)
	entries map[string]mtreeEntry
	install []byte // .INSTALL
	// Filled by extraction: the payload's names as pacman lists them
	// (directories end in "/"), and the MD5 of each backup file.
	files  []string
	backup map[string]string
}

// openPackage returns a tar reader of a package file, decompressed, and
// the function that closes it.
func openPackage(file string) (*tar.Reader, func(), error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, nil, err
	}
	rd, done, err := tree.Decompress(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("reading package: %w", err)
	}
	return tar.NewReader(rd), func() { done(); f.Close() }, nil
}

// readMeta reads the metadata entries of a package (.PKGINFO, .MTREE,
// .INSTALL), which makepkg puts before the payload.
func readMeta(file string) (*pkgFile, error) {
	tr, done, err := openPackage(file)
	if err != nil {
		return nil, err
	}
	defer done()
	pf := &pkgFile{path: file}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading package: %w", err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		if !strings.HasPrefix(name, ".") || strings.Contains(name, "/") {
			if pf.info != nil {
				break // the payload starts; the metadata came first
			}
			continue
		}
		if h.Typeflag != tar.TypeReg || h.Size > 64<<20 {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("reading package: %s: %w", name, err)
		}
		switch name {
		case ".PKGINFO":
			if pf.info, err = parsePkgInfo(b); err != nil {
				return nil, err
			}
		case ".MTREE":
			pf.mtree = b
			if pf.entries, err = parseMTree(b); err != nil {
				return nil, err
			}
		case ".INSTALL":
			pf.install = b
		}
	}
	if pf.info == nil {
		return nil, fmt.Errorf("not a pacman package: no .PKGINFO")
	}
	return pf, nil
}

type namedPath struct {
	pkg string
	dir bool
}

// checkNamed refuses a payload path another package of the installation
// (or of the base) ships in a way that conflicts, as pacman's file
// conflict check does: only directories may be shared.
func (x *extractor) checkNamed(pkg, rel string, dir bool) error {
	if o, ok := x.named[rel]; ok && o.pkg != pkg && !(o.dir && dir) {
		return fmt.Errorf("file conflict: it exists in both %s and %s", o.pkg, pkg)
	}
	if o, ok := x.baseFiles[rel]; ok {
		return fmt.Errorf("file conflict: %s ships it and the base's %s has it", pkg, o)
	}
	if _, ok := x.named[rel]; !ok {
		x.named[rel] = namedPath{pkg: pkg, dir: dir}
	}
	return nil
}

// checkConflicts runs checkNamed over every path the packages' .MTREE
// files list, in install order, before anything is unpacked: pacman's
// "checking for file conflicts" step. Extraction checks again (packages
// without an .MTREE, paths that only conflict through symlinks).
func (x *extractor) checkConflicts(pfs []*pkgFile) error {
	for _, pf := range pfs {
		for _, rel := range sortedKeys(pf.entries) {
			if rel == "." || strings.HasPrefix(rel, ".") && !strings.Contains(rel, "/") {
				continue // the metadata entries
			}
			if err := x.checkNamed(pf.pkg.Name, rel, pf.entries[rel].typ == "dir"); err != nil {
				return fmt.Errorf("installing %s %s: /%s: %w", pf.pkg.Name, pf.pkg.Version, rel, err)
			}
		}
	}
	return nil
}

// dirMd is the metadata of a directory the installation created.
type dirMd struct {
	mode     uint32
	uid, gid uint32
	mtime    int64
}

// extractor unpacks packages into a root, one after the other in install
// order, as pacman does.
type extractor struct {
	r    *root
	meta *tree.Meta
	// owner names the package that placed each non-directory path (as
	// resolved in the tree).
	owner map[string]string
	// named records, per path as the packages name it, who ships it and
	// whether as a directory: pacman's file conflict check compares the
	// packages' file lists, so a directory where another package has a
	// symlink conflicts even though it would resolve through it.
	named map[string]namedPath
	// dirs are the directories the installation created: the first
	// package to create one decides its mode, owner and time, as pacman
	// leaves an existing directory alone.
	dirs map[string]dirMd
	// baseFiles are the files of the base's packages (extensions).
	baseFiles map[string]string
	withDocs  bool
	buf       []byte
	// time of the entry being extracted, for directories made on the way
	mtime int64
}

func newExtractor(r *root, meta *tree.Meta, baseFiles map[string]string, withDocs bool) *extractor {
	x := &extractor{r: r, meta: meta, owner: map[string]string{}, named: map[string]namedPath{}, dirs: map[string]dirMd{}, baseFiles: baseFiles,
		withDocs: withDocs, buf: make([]byte, 256<<10)}
	r.created = func(rel string) {
		if _, ok := x.dirs[rel]; !ok {
			x.dirs[rel] = dirMd{mode: 0o755, mtime: x.mtime}
		}
	}
	return x
}

// noExtract reports whether with_docs = False leaves a payload path out:
// mkosi's NoExtract lines for Arch (usr/share/{doc,man,groff,gtk-doc,
// info}/*, which match the directories themselves too).
func noExtract(name string) bool {
	for _, p := range []string{"usr/share/doc/", "usr/share/man/", "usr/share/groff/", "usr/share/gtk-doc/", "usr/share/info/"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// mtreeType is the .MTREE type of a tar entry.
func mtreeType(h *tar.Header) string {
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeLink:
		return "file"
	case tar.TypeDir:
		return "dir"
	case tar.TypeSymlink:
		return "link"
	case tar.TypeChar:
		return "char"
	case tar.TypeBlock:
		return "block"
	case tar.TypeFifo:
		return "fifo"
	}
	return "?"
}

// checkMTree refuses a payload entry its package's .MTREE does not
// describe the same way (type, mode, owner, link target, size).
func checkMTree(pf *pkgFile, rel string, h *tar.Header) error {
	if pf.entries == nil {
		return nil
	}
	e, ok := pf.entries[rel]
	if !ok {
		return fmt.Errorf("payload entry /%s is not in the package's .MTREE", rel)
	}
	typ := mtreeType(h)
	var diff []string
	if e.typ != "" && e.typ != typ {
		diff = append(diff, fmt.Sprintf("type %s, .MTREE %s", typ, e.typ))
	}
	if e.hasMode && typ != "link" && uint32(h.Mode)&0o7777 != e.mode {
		diff = append(diff, fmt.Sprintf("mode %o, .MTREE %o", h.Mode&0o7777, e.mode))
	}
	if uint32(h.Uid) != e.uid || uint32(h.Gid) != e.gid {
		diff = append(diff, fmt.Sprintf("owner %d:%d, .MTREE %d:%d", h.Uid, h.Gid, e.uid, e.gid))
	}
	if typ == "link" && h.Linkname != e.link {
		diff = append(diff, fmt.Sprintf("target %q, .MTREE %q", h.Linkname, e.link))
	}
	if h.Typeflag == tar.TypeReg && h.Size != e.size {
		diff = append(diff, fmt.Sprintf("size %d, .MTREE %d", h.Size, e.size))
	}
	if len(diff) > 0 {
		return fmt.Errorf("payload entry /%s disagrees with the package's .MTREE: %s", rel, strings.Join(diff, "; "))
	}
	return nil
}

// extract unpacks the payload of pf.
func (x *extractor) extract(pf *pkgFile) error {
	tr, done, err := openPackage(pf.path)
	if err != nil {
		return err
	}
	defer done()
	backup := map[string]bool{}
	for _, b := range pf.info.Backup {
		backup[b] = true
	}
	pf.backup = map[string]string{}
	dc := tree.DirCache{Root: x.r.t, Made: x.r.created}
	defer dc.Close()
	written := map[string]string{} // payload path -> resolved path, for hard links
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading package: %w", err)
		}
		if strings.HasPrefix(h.Name, ".") && !strings.HasPrefix(h.Name, "./") && !strings.Contains(strings.TrimSuffix(h.Name, "/"), "/") {
			continue // .PKGINFO, .MTREE, .INSTALL, .BUILDINFO, ...
		}
		rel, err := tree.CleanRel(h.Name)
		if err != nil {
			return fmt.Errorf("refusing payload entry %q: %w", h.Name, err)
		}
		if rel == "" {
			continue
		}
		pf.files = append(pf.files, h.Name)
		if err := checkMTree(pf, rel, h); err != nil {
			return err
		}
		if !x.withDocs && noExtract(h.Name) {
			if backup[rel] {
				if pf.backup[rel], err = md5Of(tr); err != nil {
					return fmt.Errorf("/%s: %w", rel, err)
				}
			}
			continue
		}
		var sum hash.Hash
		var content io.Reader = tr
		if backup[rel] && h.Typeflag == tar.TypeReg {
			sum = md5.New()
			content = io.TeeReader(tr, sum)
		}
		x.mtime = h.ModTime.Unix()
		if err := x.entry(pf, h, rel, content, &dc, written); err != nil {
			return fmt.Errorf("/%s: %w", rel, err)
		}
		if sum != nil {
			pf.backup[rel] = hex.EncodeToString(sum.Sum(nil))
		}
	}
	return nil
}

func md5Of(r io.Reader) (string, error) {
	h := md5.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// entry places one payload entry.
func (x *extractor) entry(pf *pkgFile, h *tar.Header, rel string, content io.Reader, dc *tree.DirCache, written map[string]string) error {
	name := pf.pkg.Name
	mode := uint32(h.Mode) & 0o7777
	if err := x.checkNamed(name, rel, h.Typeflag == tar.TypeDir); err != nil {
		return err
	}
	if h.Typeflag == tar.TypeDir {
		res, err := x.r.resolveDir(rel)
		if err != nil {
			return err
		}
		if o, ok := x.owner[res]; ok {
			return fmt.Errorf("%s ships a directory where %s has a file", name, o)
		}
		_, known := x.dirs[res]
		d, err := x.r.t.OpenDir(orDot(res))
		exists := err == nil
		if exists {
			d.Close()
		} else if !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("%s ships a directory where the tree has something else (%v)", name, errors.Unwrap(err))
		}
		if d, err = x.r.mkdirAll(res); err != nil {
			return err
		}
		d.Close()
		if !exists && !known {
			x.dirs[res] = dirMd{mode: mode, uid: uint32(h.Uid), gid: uint32(h.Gid), mtime: h.ModTime.Unix()}
		}
		return nil
	}
	parentRel := path.Dir(rel)
	if parentRel == "." {
		parentRel = ""
	}
	resParent, err := x.r.resolveDir(parentRel)
	if err != nil {
		return err
	}
	base := path.Base(rel)
	res := base
	if resParent != "" {
		res = resParent + "/" + base
	}
	if o, ok := x.owner[res]; ok {
		return fmt.Errorf("file conflict: it exists in both %s and %s", o, name)
	}
	if o, ok := x.baseFiles[res]; ok {
		return fmt.Errorf("file conflict: %s ships it and the base's %s has it", name, o)
	}
	if _, ok := x.dirs[res]; ok {
		return fmt.Errorf("%s ships a file where another package has a directory", name)
	}
	pd, err := dc.Get(orDot(resParent))
	if err != nil {
		return fmt.Errorf("%s: %w", orDot(resParent), err)
	}
	var ov tree.Override
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		perm := mode&0o777 | 0o600
		out, err := pd.Create(base, fs.FileMode(perm))
		if err != nil {
			return x.placeError(name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.CopyBuffer(onlyWriter{out}, content, x.buf); err != nil {
				out.Close()
				pd.Remove(base)
				return err
			}
		}
		err = pd.Chtimes(base, h.ModTime)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			pd.Remove(base)
			return err
		}
		if mode != perm {
			ov.Mode = tree.Ptr(mode)
		}
		switch h.Typeflag {
		case tar.TypeChar, tar.TypeBlock:
			k := tree.CharDev
			if h.Typeflag == tar.TypeBlock {
				k = tree.BlockDev
			}
			ov.Kind, ov.Rdev, ov.Mode = &k, tree.Ptr(tree.Mkdev(uint32(h.Devmajor), uint32(h.Devminor))), tree.Ptr(mode)
		case tar.TypeFifo:
			ov.Kind, ov.Mode = tree.Ptr(tree.FIFO), tree.Ptr(mode)
		}
		for k, v := range h.PAXRecords {
			if a, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				if ov.Xattrs == nil {
					ov.Xattrs = map[string][]byte{}
				}
				ov.Xattrs[a] = []byte(v)
			}
		}
	case tar.TypeSymlink:
		if err := pd.Symlink(h.Linkname, base); err != nil {
			return x.placeError(name, err)
		}
		pd.Chtimes(base, h.ModTime)
	case tar.TypeLink:
		src, err := tree.CleanRel(h.Linkname)
		if err != nil {
			return fmt.Errorf("refusing hard link to %q: %w", h.Linkname, err)
		}
		srcRes, ok := written[src]
		if !ok {
			return fmt.Errorf("refusing hard link to %q, which this package did not unpack before", h.Linkname)
		}
		sd, err := x.r.t.OpenDir(path.Dir(srcRes))
		if err != nil {
			return err
		}
		err = pd.Link(sd, path.Base(srcRes), base)
		sd.Close()
		if err != nil {
			return x.placeError(name, err)
		}
		if o, ok := x.meta.Get(srcRes); ok {
			x.meta.Set(res, o)
		}
		x.owner[res] = name
		written[rel] = res
		return nil
	default:
		return fmt.Errorf("unsupported tar entry type %q", h.Typeflag)
	}
	if h.Uid != 0 {
		ov.UID = tree.Ptr(uint32(h.Uid))
	}
	if h.Gid != 0 {
		ov.GID = tree.Ptr(uint32(h.Gid))
	}
	if ov.Kind != nil || ov.Mode != nil || ov.UID != nil || ov.GID != nil || len(ov.Xattrs) > 0 {
		x.meta.Set(res, ov)
	} else {
		x.meta.Delete(res)
	}
	x.owner[res] = name
	written[rel] = res
	return nil
}

// placeError words a failure to create a payload entry: something is in
// the way that no package of the installation put there.
func (x *extractor) placeError(pkg string, err error) error {
	if errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("%s ships it but the tree already has it (from a skeleton tree?): pacman does not overwrite files no package owns", pkg)
	}
	return err
}

// onlyWriter hides ReadFrom so CopyBuffer uses the given buffer.
type onlyWriter struct{ w io.Writer }

// Write writes to the wrapped writer.
func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }

// finishDirs gives the directories the installation created their mode
// (owner-writable on disk, the real one in meta), owner and time, deepest
// first so that setting a parent's time is not undone.
func (x *extractor) finishDirs() error {
	rels := sortedKeys(x.dirs)
	for i := len(rels) - 1; i >= 0; i-- {
		rel := rels[i]
		d := x.dirs[rel]
		perm := d.mode&0o777 | 0o700
		// Resolved inside the root and not through a symlink: the chmod
		// lands on the directory the installation made.
		err := x.r.t.Chmod(orDot(rel), fs.FileMode(perm))
		if err == nil {
			err = x.r.t.Chtimes(orDot(rel), time.Unix(d.mtime, 0))
		}
		if err != nil {
			return fmt.Errorf("%s: %w", orDot(rel), err)
		}
		var ov tree.Override
		if d.mode != perm {
			ov.Mode = tree.Ptr(d.mode)
		}
		if d.uid != 0 {
			ov.UID = tree.Ptr(d.uid)
		}
		if d.gid != 0 {
			ov.GID = tree.Ptr(d.gid)
		}
		if ov.Mode != nil || ov.UID != nil || ov.GID != nil {
			x.meta.Set(rel, ov)
		}
	}
	return nil
}
