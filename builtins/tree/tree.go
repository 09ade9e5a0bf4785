// Package tree describes a file-system tree as it is to appear inside an
// image, independent of who extracted it and with which privileges.
//
// A tree is a directory on the host plus an optional Meta sidecar. Package
// extraction runs without root, so the directory cannot carry root
// ownership, setuid bits on files we do not own, device nodes or security
// xattrs; the extractor records those facts in Meta and the image writers
// read the merged view through Load. A file that Meta does not mention is
// owned by root (uid 0, gid 0) with the permission bits it has on disk, the
// way a rootless image builder must present a tree it copied.
package tree

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// Kind is the type of a file-system object.
type Kind uint8

// The kinds of objects a tree can hold.
const (
	Regular Kind = iota
	Dir
	Symlink
	CharDev
	BlockDev
	FIFO
	Socket
)

func (k Kind) String() string {
	switch k {
	case Regular:
		return "file"
	case Dir:
		return "dir"
	case Symlink:
		return "symlink"
	case CharDev:
		return "chardev"
	case BlockDev:
		return "blockdev"
	case FIFO:
		return "fifo"
	case Socket:
		return "socket"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Node is one object of a loaded tree. Children of a directory are sorted
// by name, byte-wise, so every walk of a tree visits nodes in the same order.
type Node struct {
	// Name is the last path element; "" for the root.
	Name string
	// Path is slash-separated and relative to the root; "" for the root.
	Path string
	Kind Kind
	// Mode holds the permission bits including setuid, setgid and sticky
	// (mask 07777), never the type bits.
	Mode     uint32
	UID, GID uint32
	// Mtime is the modification time in seconds since the epoch.
	Mtime int64
	// Size is the content length of regular files, the target length of
	// symlinks and 0 otherwise.
	Size int64
	// Target is the symlink target, stored verbatim (it may dangle).
	Target string
	// Rdev is the device number of character and block devices, in the
	// Linux encoding (see Mkdev).
	Rdev uint64
	// Xattrs are extended attributes, for example "security.capability".
	Xattrs map[string][]byte
	// HostPath is where the content of a regular file is read from.
	HostPath string
	// Link, when not nil, makes this node a hard link to an earlier node
	// (in walk order) that carries the content; Link itself has Link nil.
	Link *Node
	// Nlink counts the names of this inode (hard links included) for
	// regular files and other non-directories; for directories it is
	// 2 + the number of subdirectories.
	Nlink uint32
	// Children of a directory, sorted by Name.
	Children []*Node
	// Parent is nil for the root.
	Parent *Node
}

// Walk calls fn for n and every descendant in depth-first pre-order with
// children in name order. It stops at the first error fn returns.
func (n *Node) Walk(fn func(*Node) error) error {
	if err := fn(n); err != nil {
		return err
	}
	for _, c := range n.Children {
		if err := c.Walk(fn); err != nil {
			return err
		}
	}
	return nil
}

// Open returns the content of a regular file (of the node it links to, for a
// hard link).
func (n *Node) Open() (io.ReadCloser, error) {
	t := n
	if t.Link != nil {
		t = t.Link
	}
	if t.Kind != Regular {
		return nil, fmt.Errorf("%s: not a regular file", n.Path)
	}
	if t.HostPath == "" {
		return io.NopCloser(strings.NewReader("")), nil
	}
	return os.Open(t.HostPath)
}

// Mkdev encodes a major and minor device number as Linux does.
func Mkdev(major, minor uint32) uint64 {
	return uint64(major&0xfff)<<8 | uint64(major&^0xfff)<<32 |
		uint64(minor&0xff) | uint64(minor&^0xff)<<12
}

// Major returns the major number of a device number made by Mkdev.
func Major(dev uint64) uint32 { return uint32((dev>>8)&0xfff | (dev>>32)&^0xfff) }

// Minor returns the minor number of a device number made by Mkdev.
func Minor(dev uint64) uint32 { return uint32(dev&0xff | (dev>>12)&^0xff) }

// Options change how Load reads a directory.
type Options struct {
	// Meta overrides what the directory says about its objects. May be nil.
	Meta *Meta
	// Epoch, when not negative, clamps every modification time to at most
	// this value (SOURCE_DATE_EPOCH semantics).
	Epoch int64
	// KeepOwner uses the uid/gid found on disk for objects Meta does not
	// mention, instead of root. Useful for trees built as root.
	KeepOwner bool
	// Filter, when set, is called with each relative path (and whether it is a
	// directory); returning false leaves the object (and everything below it)
	// out.
	Filter func(rel string, isDir bool) bool
}

// Load reads the directory root into a Node tree, applying opts.
func Load(root string, opts Options) (*Node, error) {
	fi, err := os.Lstat(root)
	if err != nil {
		return nil, fmt.Errorf("loading tree: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("loading tree: %s is not a directory", root)
	}
	l := &loader{opts: opts, inodes: map[[2]uint64]*Node{}}
	n, err := l.node(root, "", "", fi, nil)
	if err != nil {
		return nil, err
	}
	return n, nil
}

type loader struct {
	opts   Options
	inodes map[[2]uint64]*Node
}

func (l *loader) node(host, rel, name string, fi fs.FileInfo, parent *Node) (*Node, error) {
	n := &Node{Name: name, Path: rel, Parent: parent, Mode: uint32(fi.Mode().Perm())}
	m := fi.Mode()
	if m&fs.ModeSetuid != 0 {
		n.Mode |= 04000
	}
	if m&fs.ModeSetgid != 0 {
		n.Mode |= 02000
	}
	if m&fs.ModeSticky != 0 {
		n.Mode |= 01000
	}
	n.Mtime = fi.ModTime().Unix()
	st, _ := fi.Sys().(*syscall.Stat_t)
	if l.opts.KeepOwner && st != nil {
		n.UID, n.GID = st.Uid, st.Gid
	}
	switch {
	case m.IsRegular():
		n.Kind, n.Size, n.HostPath = Regular, fi.Size(), host
	case m.IsDir():
		n.Kind = Dir
	case m&fs.ModeSymlink != 0:
		t, err := os.Readlink(host)
		if err != nil {
			return nil, fmt.Errorf("loading tree: %w", err)
		}
		n.Kind, n.Target, n.Size = Symlink, t, int64(len(t))
	case m&fs.ModeNamedPipe != 0:
		n.Kind = FIFO
	case m&fs.ModeSocket != 0:
		n.Kind = Socket
	case m&fs.ModeDevice != 0:
		n.Kind = BlockDev
		if m&fs.ModeCharDevice != 0 {
			n.Kind = CharDev
		}
		if st != nil {
			n.Rdev = uint64(st.Rdev)
		}
	default:
		return nil, fmt.Errorf("loading tree: %s: unsupported file type %v", host, m.Type())
	}
	if l.opts.Meta != nil {
		if o, ok := l.opts.Meta.Get(rel); ok {
			if err := o.apply(n); err != nil {
				return nil, fmt.Errorf("loading tree: %s: %w", rel, err)
			}
		}
	}
	if l.opts.Epoch >= 0 && n.Mtime > l.opts.Epoch {
		n.Mtime = l.opts.Epoch
	}
	n.Nlink = 1
	if n.Kind != Dir && st != nil && st.Nlink > 1 {
		key := [2]uint64{uint64(st.Dev), uint64(st.Ino)}
		if first, ok := l.inodes[key]; ok && first.Kind == n.Kind {
			n.Link = first
			first.Nlink++
		} else {
			l.inodes[key] = n
		}
	}
	if n.Kind != Dir {
		return n, nil
	}
	ents, err := os.ReadDir(host)
	if err != nil {
		return nil, fmt.Errorf("loading tree: %w", err)
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	n.Nlink = 2
	for _, e := range ents {
		crel := e.Name()
		if rel != "" {
			crel = rel + "/" + e.Name()
		}
		if l.opts.Filter != nil && !l.opts.Filter(crel, e.IsDir()) {
			continue
		}
		cfi, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("loading tree: %w", err)
		}
		c, err := l.node(filepath.Join(host, e.Name()), crel, e.Name(), cfi, n)
		if err != nil {
			return nil, err
		}
		if c.Kind == Dir {
			n.Nlink++
		}
		n.Children = append(n.Children, c)
	}
	// Nlink of hard-linked nodes is shared: propagate the final count.
	return n, nil
}

// Lookup finds the node at the slash-separated relative path p.
func (n *Node) Lookup(p string) *Node {
	p = strings.Trim(path.Clean("/"+p), "/")
	if p == "" {
		return n
	}
	cur := n
	for _, part := range strings.Split(p, "/") {
		i := sort.Search(len(cur.Children), func(i int) bool { return cur.Children[i].Name >= part })
		if i == len(cur.Children) || cur.Children[i].Name != part {
			return nil
		}
		cur = cur.Children[i]
	}
	return cur
}

// LinkCount returns the number of names of n's inode.
func (n *Node) LinkCount() uint32 {
	if n.Link != nil {
		return n.Link.Nlink
	}
	return n.Nlink
}

// ErrUnsafePath is returned for paths that would leave the tree.
var ErrUnsafePath = errors.New("path escapes the tree")

// CleanRel turns an archive member name such as "./usr/bin/jq" or
// "/usr/bin/jq" into a clean relative path ("usr/bin/jq"), and refuses names
// that would leave the root ("../etc/passwd", "usr/../../x").
func CleanRel(name string) (string, error) {
	name = strings.TrimPrefix(name, "./")
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("%q: %w", name, ErrUnsafePath)
		}
	}
	c := strings.Trim(path.Clean("/"+name), "/")
	return c, nil
}
