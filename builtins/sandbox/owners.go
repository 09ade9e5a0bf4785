package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sxb-build/sxb/builtins/tree"
)

// Ownership round trip. Before the run, shown applies the tree's Meta
// (owners, modes) to the upper directory so the command sees the image as it
// will be; after it, settle walks the upper directory, records what the
// command left in a new Meta and gives every file back to the builder with
// the modes a rootless extraction would have written (owner rw, directories
// rwx), which is what tree.Load expects. Both run where the sandbox's ids are
// the numbers on disk: in the keeper, inside the user namespace for a user,
// or as root on the host, where the sandbox sees the disk through idmapped
// mounts.

// shownState is what shown recorded of one Meta path.
type shownState struct {
	ino uint64
	// owner tells whether the Meta's owner is on disk (false when the id is
	// not mapped: the file then shows as root's).
	owner bool
}

// shown applies meta to the upper directory and returns what it found per
// path. mapped says whether ids other than 0 exist.
func shown(upper string, meta map[string]tree.Override, mapped bool) (map[string]shownState, error) {
	ufd, err := unix.Open(upper, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the tree: %w", err)
	}
	defer unix.Close(ufd)
	paths := make([]string, 0, len(meta))
	for p := range meta {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	out := map[string]shownState{}
	for _, rel := range paths {
		o := meta[rel]
		pfd, base, err := openParent(ufd, rel)
		if err != nil {
			continue // gone, or behind a symlink: not this tree's path
		}
		var st unix.Stat_t
		if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			unix.Close(pfd)
			continue
		}
		s := shownState{ino: st.Ino, owner: o.UID == nil && o.GID == nil}
		if !s.owner && mapped {
			uid, gid := 0, 0
			if o.UID != nil {
				uid = int(*o.UID)
			}
			if o.GID != nil {
				gid = int(*o.GID)
			}
			if err := unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err == nil {
				s.owner = true
			} else if !errors.Is(err, unix.EINVAL) {
				unix.Close(pfd)
				return out, fmt.Errorf("showing the owner of %s: %w", rel, err)
			}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			// Also after a chown, which clears setuid and setgid.
			mode := st.Mode & 0o7777
			if o.Mode != nil {
				mode = *o.Mode & 0o7777
			}
			if err := unix.Fchmodat(pfd, base, mode, 0); err != nil {
				unix.Close(pfd)
				return out, fmt.Errorf("showing the mode of %s: %w", rel, err)
			}
		}
		unix.Close(pfd)
		out[rel] = s
	}
	return out, nil
}

// openParent opens the directory holding rel below the directory dirfd,
// refusing symlinks on the way, and returns it with rel's last element.
func openParent(dirfd int, rel string) (int, string, error) {
	dir, base := path.Split(rel)
	dir = strings.TrimSuffix(dir, "/")
	if base == "" {
		base = "."
	}
	if dir == "" {
		dir = "."
	}
	fd, err := unix.Openat2(dirfd, dir, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	})
	return fd, base, err
}

// observed is what settle saw of one inode.
type observed struct {
	uid, gid uint32
	mode     uint32
	xattrs   map[string][]byte
}

// settled is the outcome of settle.
type settled struct {
	meta    map[string]tree.Override
	removed []string
	opaque  []string
}

// settle records what the command left in the upper directory and gives the
// tree back to the builder. before is shown's result for meta; lowerMeta
// has the Meta of lower trees, for files the command copied up.
func settle(upper string, meta, lowerMeta map[string]tree.Override, before map[string]shownState) (*settled, error) {
	res := &settled{meta: map[string]tree.Override{}}
	byIno := map[uint64]*observed{}
	var firstErr error
	keepErr := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
	}
	err := filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			keepErr(err)
			return nil
		}
		rel, _ := filepath.Rel(upper, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			rel = ""
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			keepErr(err)
			return nil
		}
		typ := st.Mode & unix.S_IFMT
		if typ == unix.S_IFCHR && st.Rdev == 0 {
			// An overlay whiteout: the command deleted a lower file.
			if err := os.Remove(p); err != nil {
				keepErr(fmt.Errorf("removing the whiteout %s: %w", rel, err))
			}
			res.removed = append(res.removed, rel)
			return nil
		}
		ob := byIno[st.Ino]
		if ob == nil {
			ob = &observed{uid: st.Uid, gid: st.Gid, mode: st.Mode & 0o7777}
			xa, opaque, err := takeXattrs(p)
			if err != nil {
				keepErr(fmt.Errorf("extended attributes of %s: %w", rel, err))
			}
			if opaque {
				res.opaque = append(res.opaque, rel)
			}
			ob.xattrs = xa
			if typ != unix.S_IFDIR && st.Nlink > 1 {
				byIno[st.Ino] = ob
			}
			if err := giveBack(p, &st); err != nil {
				keepErr(fmt.Errorf("giving %s back to the builder: %w", rel, err))
			}
		}
		o := record(rel, &st, ob, meta, lowerMeta, before)
		if !emptyOverride(o) {
			res.meta[rel] = o
		}
		return nil
	})
	if err != nil {
		keepErr(err)
	}
	sort.Strings(res.removed)
	sort.Strings(res.opaque)
	return res, firstErr
}

// diskPerm is the permission a rootless extraction leaves on disk for mode:
// the owner can always read and write, and search directories.
func diskPerm(typ, mode uint32) uint32 {
	if typ == unix.S_IFDIR {
		return mode&0o777 | 0o700
	}
	return mode&0o777 | 0o600
}

// giveBack makes p the builder's again, with its disk permission.
func giveBack(p string, st *unix.Stat_t) error {
	typ := st.Mode & unix.S_IFMT
	if st.Uid != 0 || st.Gid != 0 {
		if err := unix.Lchown(p, 0, 0); err != nil {
			return err
		}
	}
	if typ == unix.S_IFLNK {
		return nil
	}
	if perm := diskPerm(typ, st.Mode); perm != st.Mode&0o7777 || st.Uid != 0 || st.Gid != 0 {
		return unix.Chmod(p, perm)
	}
	return nil
}

// record computes the Meta entry of rel from what was observed, the Meta
// entry it had before the run and the lower trees' Meta.
func record(rel string, st *unix.Stat_t, ob *observed, meta, lowerMeta map[string]tree.Override, before map[string]shownState) tree.Override {
	typ := st.Mode & unix.S_IFMT
	var o tree.Override
	old, had := meta[rel]
	b, seen := before[rel]
	same := had && seen && b.ino == st.Ino
	emptyFile := typ == unix.S_IFREG && st.Size == 0
	if same {
		// The same object as before the run: what Meta knew and the disk
		// cannot show stays.
		o.Mtime = old.Mtime
		o.Xattrs = copyXattrs(old.Xattrs)
		if old.Kind != nil && emptyFile {
			o.Kind, o.Rdev = old.Kind, old.Rdev
		}
	}
	uid, gid := ob.uid, ob.gid
	if same && !b.owner && uid == 0 && gid == 0 {
		// The owner could not be shown (its id is not mapped).
		o.UID, o.GID = old.UID, old.GID
	} else {
		if uid != 0 {
			o.UID = tree.Ptr(uid)
		}
		if gid != 0 {
			o.GID = tree.Ptr(gid)
		}
	}
	if typ != unix.S_IFLNK && (ob.mode != diskPerm(typ, ob.mode) || o.Kind != nil) {
		o.Mode = tree.Ptr(ob.mode)
	}
	if !had && uid == 0 && gid == 0 {
		// Copied up from a lower tree: the lower tree's Meta describes it,
		// unless the command changed its mode since.
		if lo, ok := lowerMeta[rel]; ok {
			o.UID, o.GID = lo.UID, lo.GID
			if lo.Mode != nil && diskPerm(typ, *lo.Mode) == ob.mode {
				o.Mode = lo.Mode
			}
			if lo.Kind != nil && emptyFile {
				o.Kind, o.Rdev, o.Mode = lo.Kind, lo.Rdev, lo.Mode
			}
			if len(lo.Xattrs) > 0 && len(o.Xattrs) == 0 {
				o.Xattrs = copyXattrs(lo.Xattrs)
			}
		}
	}
	for k, v := range ob.xattrs {
		if o.Xattrs == nil {
			o.Xattrs = map[string][]byte{}
		}
		o.Xattrs[k] = v
	}
	return o
}

func copyXattrs(x map[string][]byte) map[string][]byte {
	if len(x) == 0 {
		return nil
	}
	out := make(map[string][]byte, len(x))
	for k, v := range x {
		out[k] = append([]byte(nil), v...)
	}
	return out
}

func emptyOverride(o tree.Override) bool {
	return o.Kind == nil && o.Mode == nil && o.UID == nil && o.GID == nil && o.Mtime == nil && o.Rdev == nil && len(o.Xattrs) == 0
}

// takeXattrs removes the extended attributes the command or the overlay put
// on p and returns those that belong in the image (file capabilities and
// user.* attributes), and whether p was an opaque overlay directory.
// Security labels the host may add (security.selinux and the like) stay on
// disk and out of the image.
func takeXattrs(p string) (map[string][]byte, bool, error) {
	names, err := listXattrs(p)
	if err != nil || len(names) == 0 {
		return nil, false, err
	}
	var out map[string][]byte
	opaque := false
	for _, name := range names {
		overlay := strings.HasPrefix(name, "user.overlay.") || strings.HasPrefix(name, "trusted.overlay.")
		if !overlay && name != "security.capability" && !strings.HasPrefix(name, "user.") {
			continue
		}
		val, err := getXattr(p, name)
		if err != nil {
			return out, opaque, err
		}
		if err := unix.Lremovexattr(p, name); err != nil {
			return out, opaque, err
		}
		if overlay {
			if strings.HasSuffix(name, ".opaque") && string(val) == "y" {
				opaque = true
			}
			continue
		}
		if name == "security.capability" {
			val = capabilityV2(val)
		}
		if out == nil {
			out = map[string][]byte{}
		}
		out[name] = val
	}
	return out, opaque, nil
}

// capabilityV2 turns a namespaced (revision 3) file capability, which names
// the host id of the namespace's root, into the plain revision 2 form an
// image carries.
func capabilityV2(v []byte) []byte {
	const rev3, rev2 = 0x03000000, 0x02000000
	if len(v) != 24 {
		return v
	}
	magic := uint32(v[0]) | uint32(v[1])<<8 | uint32(v[2])<<16 | uint32(v[3])<<24
	if magic&0xFF000000 != rev3 {
		return v
	}
	magic = magic&^0xFF000000 | rev2
	out := append([]byte(nil), v[:20]...)
	out[0], out[1], out[2], out[3] = byte(magic), byte(magic>>8), byte(magic>>16), byte(magic>>24)
	return out
}

func listXattrs(p string) ([]string, error) {
	for size := 256; ; size *= 4 {
		buf := make([]byte, size)
		n, err := unix.Llistxattr(p, buf)
		if err == unix.ERANGE && size < 1<<20 {
			continue
		}
		if err == unix.ENOTSUP {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		var names []string
		for _, s := range strings.Split(string(buf[:n]), "\x00") {
			if s != "" {
				names = append(names, s)
			}
		}
		return names, nil
	}
}

func getXattr(p, name string) ([]byte, error) {
	for size := 256; ; size *= 4 {
		buf := make([]byte, size)
		n, err := unix.Lgetxattr(p, name, buf)
		if err == unix.ERANGE && size < 1<<20 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}
