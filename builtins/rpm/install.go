package rpm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	rpmutils "github.com/sassoftware/go-rpmutils"
	"github.com/sxb-build/sxb/builtins/fetch"
	"github.com/sxb-build/sxb/builtins/installer"
	"github.com/sxb-build/sxb/builtins/tree"
)

// InstallOptions change how Install unpacks packages.
type InstallOptions struct {
	// WithDocs keeps files marked %doc (licenses are always kept).
	WithDocs bool
	// Progress, when set, receives download and extraction events.
	Progress func(installer.Event)
	// Warn receives warnings (owner names the trees do not know).
	Warn func(string)
	// Downloads bounds simultaneous downloads; 0 means 8.
	Downloads int
	// BaseRoot, when set, is the base tree an extension is installed for:
	// owner names missing from the tree's etc/passwd and etc/group are
	// looked up in the base's, its packages' triggers fire and scriptlets
	// see it beneath the new tree.
	BaseRoot string

	// Scripts runs the packages' scriptlets and the triggers they set off
	// in a sandbox (see scripts.go; the program must call sandbox.Init).
	// When the tree's executables cannot run here (another architecture
	// without a binfmt_misc emulator), nothing runs and Warn says what
	// was skipped.
	Scripts bool
	// Epoch is the SOURCE_DATE_EPOCH scriptlets see.
	Epoch int64
	// ScriptOutput receives what the scriptlets print.
	ScriptOutput io.Writer
	// NotRun receives the scriptlets and triggers that did not run
	// (Scripts false, no way to run them, or ones only rpm can run:
	// lua and macro-expanded ones), as "<package> %post" and the like,
	// for the manifest.
	NotRun func([]string)
}

// RPM header tags not named by go-rpmutils.
const (
	tagFileCaps = 5010
)

// Install downloads the packages of plan (in parallel, each checked against
// the SHA-256 from the repository metadata, into the shared cache), checks
// their header signatures when plan.CheckSignatures, and unpacks them into
// root without privileges: owners, modes with setuid bits, mtimes and file
// capabilities (security.capability) are recorded in meta. Scriptlets and
// triggers run only with opts.Scripts (see scripts.go). The installed set
// is recorded at InstalledDBPath.
func Install(ctx context.Context, plan *Plan, root string, meta *tree.Meta, opts InstallOptions) error {
	if meta == nil {
		return errors.New("installing rpm packages: no tree metadata given")
	}
	var keys openpgp.EntityList
	if plan.CheckSignatures {
		var err error
		if keys, err = loadKeyring(plan.Keyring); err != nil {
			return fmt.Errorf("installing rpm packages: %w", err)
		}
		if len(keys) == 0 {
			return errors.New("installing rpm packages: package signatures must be checked but the keyring is empty")
		}
	}
	f := &fetch.Fetcher{CacheDir: plan.CacheDir, Parallel: opts.Downloads}
	if opts.Progress != nil {
		f.Progress = func(p fetch.Progress) {
			opts.Progress(installer.Event{Kind: installer.Download, Done: p.Done, Count: p.Count, Bytes: p.Bytes, Total: p.Total})
		}
	}
	items := make([]fetch.Item, len(plan.Packages))
	for i, p := range plan.Packages {
		if len(p.SHA256) != 64 {
			return fmt.Errorf("installing rpm packages: %s: no SHA-256 in the plan", p.NEVRA())
		}
		items[i] = fetch.Item{URL: p.URL, Size: p.Size, SHA256: p.SHA256}
	}
	paths, err := f.FetchAll(ctx, items)
	if err != nil {
		return fmt.Errorf("installing rpm packages: %w", err)
	}
	if err := tree.MkdirAll(root); err != nil {
		return fmt.Errorf("installing rpm packages: %w", err)
	}
	rt, err := tree.OpenRoot(root)
	if err != nil {
		return fmt.Errorf("installing rpm packages: %w", err)
	}
	defer rt.Close()
	var inst []InstalledPackage
	var sps []*scriptPkg
	owners := map[string][2]string{}
	claims := map[string]claim{}
	for i, p := range plan.Packages {
		if err := ctx.Err(); err != nil {
			return err
		}
		if opts.Progress != nil {
			opts.Progress(installer.Event{Kind: installer.Extract, Package: p.NEVRA(), Done: i, Count: len(plan.Packages)})
		}
		ip, sp, err := installOne(paths[i], rt, meta, owners, claims, p.NEVRA(), keys, plan.CheckSignatures, opts)
		if err != nil {
			return fmt.Errorf("installing %s: %w", p.NEVRA(), err)
		}
		inst = append(inst, *ip)
		sps = append(sps, sp)
	}
	// Owners are mapped once everything is unpacked, so that the tree's
	// own etc/passwd and etc/group (from any package) are known; names
	// they lack are mapped again after the scriptlets, which may add them
	// (%pre running useradd), as rpm maps them after %pre.
	pending := mapOwners(rt, meta, owners, opts.BaseRoot, nil)
	if err := writeInstalled(rt, inst); err != nil {
		return err
	}
	if err := writeFileLists(rt, sps); err != nil {
		return err
	}
	if err := runScripts(ctx, rt, meta, plan, sps, opts); err != nil {
		return fmt.Errorf("installing rpm packages: %w", err)
	}
	warn := func(msg string) {
		if opts.Warn != nil {
			opts.Warn(msg)
		}
	}
	// Names still unknown stay root, as with rpm.
	mapOwners(rt, meta, pending, opts.BaseRoot, warn)
	if opts.Progress != nil {
		opts.Progress(installer.Event{Kind: installer.Done, Done: len(plan.Packages), Count: len(plan.Packages)})
	}
	return nil
}

// mapOwners sets the ids of owners' paths in meta from the names the
// tree's (then the base's) etc/passwd and etc/group know, and returns the
// paths with a name they do not know (mapped to root). With warn, each
// unknown name is reported once. A path no longer in meta (a scriptlet
// removed it) is left out; one whose owner is no longer root (a scriptlet
// changed it) is kept as it is.
func mapOwners(rt *tree.Root, meta *tree.Meta, owners ownerMap, baseRoot string, warn func(string)) ownerMap {
	ids := loadIDs(rt)
	if baseRoot != "" {
		// A base that cannot be opened has no names to offer, like one
		// without etc/passwd.
		if base, err := tree.OpenRoot(baseRoot); err == nil {
			ids.add(base)
			base.Close()
		}
	}
	unknown := map[string]bool{}
	left := ownerMap{}
	rels := make([]string, 0, len(owners))
	for rel := range owners {
		rels = append(rels, rel)
	}
	sort.Strings(rels)
	for _, rel := range rels {
		o, ok := meta.Get(rel)
		if !ok {
			continue
		}
		if (o.UID != nil && *o.UID != 0) || (o.GID != nil && *o.GID != 0) {
			continue
		}
		u, g := owners[rel][0], owners[rel][1]
		uid, uok := ids.user(u)
		gid, gok := ids.group(g)
		if !uok || !gok {
			left[rel] = owners[rel]
		}
		if !uok && !unknown["user "+u] && warn != nil {
			unknown["user "+u] = true
			warn(fmt.Sprintf("unknown user %q (first on /%s), using root", u, rel))
		}
		if !gok && !unknown["group "+g] && warn != nil {
			unknown["group "+g] = true
			warn(fmt.Sprintf("unknown group %q (first on /%s), using root", g, rel))
		}
		o.UID, o.GID = tree.Ptr(uid), tree.Ptr(gid)
		meta.Set(rel, o)
	}
	return left
}

// VerifyPackage checks the header signature (and the payload digest) of
// the rpm file at path against keys. Unsigned packages are refused.
func VerifyPackage(path string, keys openpgp.EntityList) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	_, sigs, err := rpmutils.Verify(bufio.NewReader(fh), keys)
	if err != nil {
		return fmt.Errorf("package signature: %w", err)
	}
	if len(sigs) == 0 {
		return errors.New("package is not signed")
	}
	for _, s := range sigs {
		if s.Signer == nil {
			return fmt.Errorf("package signature by unknown key %016x", s.KeyId)
		}
	}
	return nil
}

// fileEntry is one file of a package, from its header.
type fileEntry struct {
	rel   string // clean relative path as named by the package
	mode  uint32
	flags int
	user  string
	group string
	mtime int64
	link  string
	inode [2]int
	caps  string
	rdev  uint64
	skip  bool
}

// claim records which package placed a non-directory path, and what.
type claim struct {
	pkg  string
	what string // "file <digest> <mode>" or "link <target>"
}

func installOne(path string, root *tree.Root, meta *tree.Meta, ids ownerMap, claims map[string]claim, nevra string, keys openpgp.EntityList, checkSig bool, opts InstallOptions) (ip *InstalledPackage, sp *scriptPkg, err error) {
	if checkSig {
		if err := VerifyPackage(path, keys); err != nil {
			return nil, nil, err
		}
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer fh.Close()
	r, err := rpmutils.ReadRpm(bufio.NewReaderSize(fh, 1<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("reading header: %w", err)
	}
	hdr := r.Header
	if ip, err = installedFromHeader(hdr); err != nil {
		return nil, nil, err
	}
	if err := checkRpmlib(hdr); err != nil {
		return nil, nil, err
	}
	if sp, err = scriptPkgFromHeader(hdr, ip); err != nil {
		return nil, nil, err
	}
	ip.Triggers, ip.FileTriggers = sp.scripts.triggers, sp.scripts.fileTriggers
	infos, err := hdr.GetFiles()
	if err != nil {
		return nil, nil, fmt.Errorf("reading file list: %w", err)
	}
	// go-rpmutils joins (and so cleans) directory and base names: check
	// the names as stored, refusing any that would climb out of the root.
	if err := checkRawNames(hdr); err != nil {
		return nil, nil, err
	}
	var rdevs []uint32
	if hdr.HasTag(rpmutils.FILERDEVS) {
		if rdevs, err = hdr.GetUint32s(rpmutils.FILERDEVS); err != nil {
			return nil, nil, fmt.Errorf("reading device numbers: %w", err)
		}
	}
	var caps []string
	if hdr.HasTag(tagFileCaps) {
		if caps, err = hdr.GetStrings(tagFileCaps); err != nil {
			return nil, nil, fmt.Errorf("reading file capabilities: %w", err)
		}
	}
	entries := map[string]*fileEntry{}
	groups := map[[2]int][]*fileEntry{}
	var ordered []*fileEntry
	for i, fi := range infos {
		rel, err := tree.CleanRel(fi.Name())
		if err != nil {
			return nil, nil, fmt.Errorf("file %q: %w", fi.Name(), err)
		}
		e := &fileEntry{rel: rel, mode: uint32(fi.Mode()), flags: fi.Flags(), user: fi.UserName(), group: fi.GroupName(),
			mtime: int64(fi.Mtime()), link: fi.Linkname(), inode: [2]int{fi.Device(), fi.Inode()}}
		if i < len(caps) {
			e.caps = caps[i]
		}
		if i < len(rdevs) {
			// Old-style 16/32-bit dev_t: major in bits 8-19, minor in
			// bits 0-7 and 20-31.
			r := rdevs[i]
			e.rdev = tree.Mkdev((r>>8)&0xfff, (r&0xff)|((r>>12)&0xfff00))
		}
		e.skip = rel == "" || fi.Flags()&rpmutils.RPMFILE_GHOST != 0 || (!opts.WithDocs && fi.Flags()&rpmutils.RPMFILE_DOC != 0)
		// Two packages of one installation may share a path only with
		// the same content, as rpm's file conflict check demands.
		if !e.skip && e.mode&0o170000 != 0o040000 {
			what := fmt.Sprintf("file %s %o", fi.Digest(), e.mode)
			if e.mode&0o170000 == 0o120000 {
				what = "link " + e.link
			}
			key := rel
			if r, err := root.Resolve(rel); err == nil {
				key = r
			}
			if c, ok := claims[key]; ok && c.pkg != nevra && c.what != what {
				return nil, nil, fmt.Errorf("file /%s conflicts with the one from %s", rel, c.pkg)
			}
			claims[key] = claim{pkg: nevra, what: what}
		}
		entries[fi.Name()] = e
		ordered = append(ordered, e)
		// Files rpm would not lay down (documentation left out) set
		// off no trigger; %ghost files do.
		if rel != "" && (opts.WithDocs || fi.Flags()&rpmutils.RPMFILE_DOC == 0) {
			sp.files = append(sp.files, "/"+rel)
		}
		if e.mode&0o170000 == 0o100000 && e.inode[1] != 0 {
			groups[e.inode] = append(groups[e.inode], e)
		}
	}
	pr, err := r.PayloadReaderExtended()
	if err != nil {
		return nil, nil, fmt.Errorf("reading payload: %w", err)
	}
	done := map[*fileEntry]bool{}
	for {
		fi, err := pr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("reading payload: %w", err)
		}
		e := entries[fi.Name()]
		if e == nil {
			return nil, nil, fmt.Errorf("payload file %q is not in the header", fi.Name())
		}
		done[e] = true
		if pr.IsLink() {
			continue // content comes with the last member of its group
		}
		if e.mode&0o170000 == 0o100000 && len(groups[e.inode]) > 1 {
			if err := writeLinkGroup(root, meta, ids, groups[e.inode], pr); err != nil {
				return nil, nil, err
			}
			continue
		}
		if e.skip {
			continue
		}
		if err := place(root, meta, ids, e, pr); err != nil {
			return nil, nil, err
		}
	}
	// rpm leaves only %ghost files out of the payload; directories and
	// symlinks missing from an odd payload are created from the header,
	// missing content is an error.
	for _, e := range ordered {
		if done[e] || e.skip {
			continue
		}
		switch e.mode & 0o170000 {
		case 0o040000, 0o120000:
			if err := place(root, meta, ids, e, nil); err != nil {
				return nil, nil, err
			}
		default:
			return nil, nil, fmt.Errorf("file /%s is missing from the payload", e.rel)
		}
	}
	return ip, sp, nil
}

// writeLinkGroup writes the content once, to the first wanted member, and
// hard-links the other wanted members to it.
func writeLinkGroup(root *tree.Root, meta *tree.Meta, ids ownerMap, group []*fileEntry, content io.Reader) error {
	var first string
	for _, e := range group {
		if e.skip {
			continue
		}
		if first == "" {
			rel, err := placeFile(root, meta, ids, e, content)
			if err != nil {
				return err
			}
			first = rel
			continue
		}
		if err := placeLink(root, meta, ids, e, first); err != nil {
			return err
		}
	}
	return nil
}

// placeLink places e as a hard link to the placed file first (a resolved
// path).
func placeLink(root *tree.Root, meta *tree.Meta, ids ownerMap, e *fileEntry, first string) error {
	d, name, rel, err := prepare(root, e.rel)
	if err != nil {
		return err
	}
	defer d.Close()
	src, err := root.OpenDir(path.Dir(first))
	if err != nil {
		return fmt.Errorf("hard link %s: %w", e.rel, err)
	}
	defer src.Close()
	if err := d.Link(src, path.Base(first), name); err != nil {
		return fmt.Errorf("hard link %s: %w", e.rel, err)
	}
	return record(meta, ids, d, name, rel, e)
}

// prepare resolves rel inside root, creates its parent directories and
// opens the parent: the entry is then name in d, and resolved in the tree.
func prepare(root *tree.Root, rel string) (d *tree.DirHandle, name, resolved string, err error) {
	resolved, err = root.Resolve(rel)
	if err != nil {
		return nil, "", "", fmt.Errorf("placing %s: %w", rel, err)
	}
	if resolved == "" {
		return nil, "", "", fmt.Errorf("placing %s: resolves to the root", rel)
	}
	// Parents no package lists get 0755 whatever the builder's umask.
	if d, err = root.MkdirAll(path.Dir(resolved)); err != nil {
		return nil, "", "", fmt.Errorf("placing %s: %w", rel, err)
	}
	return d, path.Base(resolved), resolved, nil
}

// removeNonDir removes what is at name in d unless it is a directory.
func removeNonDir(d *tree.DirHandle, name, rel string) error {
	fi, err := d.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("placing %s: a directory is in the way", rel)
	}
	return d.Remove(name)
}

func place(root *tree.Root, meta *tree.Meta, ids ownerMap, e *fileEntry, content io.Reader) error {
	if e.mode&0o170000 == 0o100000 {
		_, err := placeFile(root, meta, ids, e, content)
		return err
	}
	d, name, rel, err := prepare(root, e.rel)
	if err != nil {
		return err
	}
	defer d.Close()
	switch e.mode & 0o170000 {
	case 0o040000:
		fi, err := d.Lstat(name)
		switch {
		case err == nil && fi.IsDir():
		case err == nil && fi.Mode()&fs.ModeSymlink != 0:
			// A symlink in place of a directory (merged /usr) stays.
			return nil
		case err == nil:
			return fmt.Errorf("placing %s: a file is in the way of a directory", e.rel)
		default:
			if err := d.Mkdir(name, 0o755); err != nil {
				return fmt.Errorf("placing %s: %w", e.rel, err)
			}
		}
		return record(meta, ids, d, name, rel, e)
	case 0o120000:
		if err := removeNonDir(d, name, e.rel); err != nil {
			return err
		}
		if e.link == "" {
			return fmt.Errorf("placing %s: symlink without target", e.rel)
		}
		if err := d.Symlink(e.link, name); err != nil {
			return fmt.Errorf("placing %s: %w", e.rel, err)
		}
		return record(meta, ids, d, name, rel, e)
	case 0o020000, 0o060000, 0o010000, 0o140000:
		// Devices, fifos and sockets: an empty placeholder plus metadata.
		if err := removeNonDir(d, name, e.rel); err != nil {
			return err
		}
		f, err := d.Create(name, 0o600)
		if err != nil {
			return fmt.Errorf("placing %s: %w", e.rel, err)
		}
		f.Close()
		if err := record(meta, ids, d, name, rel, e); err != nil {
			return err
		}
		o, _ := meta.Get(rel)
		k := map[uint32]tree.Kind{0o020000: tree.CharDev, 0o060000: tree.BlockDev, 0o010000: tree.FIFO, 0o140000: tree.Socket}[e.mode&0o170000]
		o.Kind = &k
		if k == tree.CharDev || k == tree.BlockDev {
			o.Rdev = tree.Ptr(e.rdev)
		}
		meta.Set(rel, o)
		return nil
	}
	return fmt.Errorf("placing %s: unsupported file mode %o", e.rel, e.mode)
}

// placeFile places the regular file e with content and returns where it
// is in the tree.
func placeFile(root *tree.Root, meta *tree.Meta, ids ownerMap, e *fileEntry, content io.Reader) (string, error) {
	d, name, rel, err := prepare(root, e.rel)
	if err != nil {
		return "", err
	}
	defer d.Close()
	if err := removeNonDir(d, name, e.rel); err != nil {
		return "", err
	}
	out, err := d.Create(name, 0o600)
	if err != nil {
		return "", fmt.Errorf("placing %s: %w", e.rel, err)
	}
	if content != nil {
		if _, err := io.Copy(out, content); err != nil {
			out.Close()
			return "", fmt.Errorf("placing %s: %w", e.rel, err)
		}
	}
	if err := out.Close(); err != nil {
		return "", fmt.Errorf("placing %s: %w", e.rel, err)
	}
	return rel, record(meta, ids, d, name, rel, e)
}

// record sets the on-disk mode and mtime of the object placed at name in
// d (rel in the tree) and its metadata override.
func record(meta *tree.Meta, ids ownerMap, d *tree.DirHandle, name, rel string, e *fileEntry) error {
	isLink := e.mode&0o170000 == 0o120000
	if !isLink {
		// On disk the owner may always read and write (rootless
		// extraction); the real mode is in meta.
		disk := e.mode&0o777 | 0o600
		if e.mode&0o170000 == 0o040000 {
			disk |= 0o700
		}
		if err := d.Chmod(name, fs.FileMode(disk)); err != nil {
			return fmt.Errorf("placing %s: %w", e.rel, err)
		}
	}
	if err := d.Chtimes(name, time.Unix(e.mtime, 0)); err != nil {
		return fmt.Errorf("placing %s: %w", e.rel, err)
	}
	o := tree.Override{
		Mode:  tree.Ptr(e.mode & 0o7777),
		Mtime: tree.Ptr(e.mtime),
	}
	ids[rel] = [2]string{e.user, e.group}
	if isLink {
		o.Mode = tree.Ptr(uint32(0o777))
	}
	if e.caps != "" {
		c, err := encodeFileCaps(e.caps)
		if err != nil {
			return fmt.Errorf("placing %s: %w", e.rel, err)
		}
		o.Xattrs = map[string][]byte{"security.capability": c}
	}
	meta.Set(rel, o)
	return nil
}

// ownerMap records the user and group names of placed paths.
type ownerMap map[string][2]string

// idMap maps user and group names to ids.
type idMap struct {
	users, groups map[string]uint32
}

// wellKnown are the ids used when the tree has no passwd/group entry.
var wellKnown = map[string]uint32{"root": 0, "bin": 1, "daemon": 2}

// user maps a user name to its id; false when the name is unknown (the
// id is then 0, root, as rpm does).
func (m *idMap) user(n string) (uint32, bool) {
	if id, ok := m.users[n]; ok {
		return id, true
	}
	id, ok := wellKnown[n]
	return id, ok
}

// group maps a group name like user.
func (m *idMap) group(n string) (uint32, bool) {
	if id, ok := m.groups[n]; ok {
		return id, true
	}
	id, ok := wellKnown[n]
	return id, ok
}

// loadIDs reads etc/passwd and etc/group of the tree, if present.
func loadIDs(root *tree.Root) *idMap {
	m := &idMap{users: map[string]uint32{}, groups: map[string]uint32{}}
	m.add(root)
	return m
}

// add reads the names of root's etc/passwd and etc/group that m does not
// know yet. A file that cannot be read offers no names.
func (m *idMap) add(root *tree.Root) {
	for _, f := range []struct {
		name string
		dst  map[string]uint32
	}{{"etc/passwd", m.users}, {"etc/group", m.groups}} {
		b, err := root.ReadFile(f.name)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			parts := strings.Split(line, ":")
			if len(parts) < 3 || parts[0] == "" {
				continue
			}
			if id, err := strconv.ParseUint(parts[2], 10, 32); err == nil {
				if _, dup := f.dst[parts[0]]; !dup {
					f.dst[parts[0]] = uint32(id)
				}
			}
		}
	}
}

// installedFromHeader builds the installed-package record from a header.
func installedFromHeader(hdr *rpmutils.RpmHeader) (*InstalledPackage, error) {
	nevra, err := hdr.GetNEVRA()
	if err != nil {
		return nil, fmt.Errorf("reading header: %w", err)
	}
	evr := EVR{Epoch: nevra.Epoch, Version: nevra.Version, Release: nevra.Release}
	if evr.Epoch == "0" {
		evr.Epoch = ""
	}
	ip := &InstalledPackage{Name: nevra.Name, EVR: evr.String(), Arch: nevra.Arch}
	if hdr.HasTag(rpmutils.LICENSE) {
		ip.License, _ = hdr.GetString(rpmutils.LICENSE)
	}
	for _, t := range []struct {
		dst                  *[]Dep
		name, flags, version int
	}{
		{&ip.Provides, rpmutils.PROVIDENAME, rpmutils.PROVIDEFLAGS, rpmutils.PROVIDEVERSION},
		{&ip.Conflicts, rpmutils.CONFLICTNAME, rpmutils.CONFLICTFLAGS, rpmutils.CONFLICTVERSION},
		{&ip.Obsoletes, rpmutils.OBSOLETENAME, rpmutils.OBSOLETEFLAGS, rpmutils.OBSOLETEVERSION},
	} {
		if !hdr.HasTag(t.name) {
			continue
		}
		names, err := hdr.GetStrings(t.name)
		if err != nil {
			return nil, fmt.Errorf("reading header: %w", err)
		}
		flags, _ := hdr.GetInts(t.flags)
		vers, _ := hdr.GetStrings(t.version)
		for i, n := range names {
			d := Dep{Name: n}
			if i < len(flags) {
				d.Flags = uint8(flags[i]) & senseMask
			}
			if i < len(vers) && vers[i] != "" && d.Flags != 0 {
				d.EVR = ParseEVR(vers[i])
			}
			*t.dst = append(*t.dst, d)
		}
	}
	return ip, nil
}

// checkRawNames refuses file names that leave the root, as the header
// stores them (DIRNAMES + BASENAMES, or OLDFILENAMES).
func checkRawNames(hdr *rpmutils.RpmHeader) error {
	if !hdr.HasTag(rpmutils.DIRNAMES) {
		if !hdr.HasTag(rpmutils.OLDFILENAMES) {
			return nil
		}
		names, err := hdr.GetStrings(rpmutils.OLDFILENAMES)
		if err != nil {
			return fmt.Errorf("reading file list: %w", err)
		}
		for _, n := range names {
			if _, err := tree.CleanRel(n); err != nil {
				return fmt.Errorf("file %q: %w", n, err)
			}
		}
		return nil
	}
	dirs, err := hdr.GetStrings(rpmutils.DIRNAMES)
	if err != nil {
		return fmt.Errorf("reading file list: %w", err)
	}
	bases, err := hdr.GetStrings(rpmutils.BASENAMES)
	if err != nil {
		return fmt.Errorf("reading file list: %w", err)
	}
	idx, err := hdr.GetUint32s(rpmutils.DIRINDEXES)
	if err != nil {
		return fmt.Errorf("reading file list: %w", err)
	}
	if len(idx) != len(bases) {
		return errors.New("reading file list: dirindexes and basenames differ in length")
	}
	for i, b := range bases {
		if int(idx[i]) >= len(dirs) {
			return fmt.Errorf("reading file list: directory index %d out of range", idx[i])
		}
		n := dirs[idx[i]] + b
		if strings.Contains(b, "/") || b == ".." || b == "." {
			return fmt.Errorf("file %q: bad base name: %w", n, tree.ErrUnsafePath)
		}
		if _, err := tree.CleanRel(n); err != nil {
			return fmt.Errorf("file %q: %w", n, err)
		}
	}
	return nil
}

// checkRpmlib refuses packages that need an rpmlib() feature sxb does not
// handle (repository metadata leaves these dependencies out, so they are
// checked from the header).
func checkRpmlib(hdr *rpmutils.RpmHeader) error {
	if !hdr.HasTag(rpmutils.REQUIRENAME) {
		return nil
	}
	names, err := hdr.GetStrings(rpmutils.REQUIRENAME)
	if err != nil {
		return fmt.Errorf("reading header: %w", err)
	}
	flags, _ := hdr.GetInts(rpmutils.REQUIREFLAGS)
	vers, _ := hdr.GetStrings(rpmutils.REQUIREVERSION)
	for i, n := range names {
		if !strings.HasPrefix(n, "rpmlib(") {
			continue
		}
		d := Dep{Name: n}
		if i < len(flags) && i < len(vers) {
			d.Flags, d.EVR = uint8(flags[i])&senseMask, ParseEVR(vers[i])
		}
		v, ok := rpmlibCaps[n]
		if !ok || !overlaps(senseEqual, ParseEVR(v), d.Flags, d.EVR) {
			return fmt.Errorf("package needs %s, a package format feature sxb does not support", d.String())
		}
	}
	return nil
}
