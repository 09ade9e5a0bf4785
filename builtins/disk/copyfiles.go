package disk

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/sxb-build/sxb/builtins/repart"
	"github.com/sxb-build/sxb/builtins/tree"
)

// PartitionTree builds the file-system tree of a partition from the input
// tree the way systemd-repart populates it: each CopyFiles= source
// (symlinks resolved inside root; a missing source is skipped) is merged
// into its target, a directory's contents into the target directory and a
// regular file to the target path; ExcludeFiles= paths are left out
// (a trailing slash keeps the directory but not its contents); then
// MakeDirectories= are created. Directories created on the way get mode
// 0755, root ownership and mtime epoch. Nodes are shared with root where
// unchanged except for Path, Parent and Children, which are new.
func PartitionTree(root *tree.Node, p *repart.Partition, epoch int64) (*tree.Node, error) {
	out := &tree.Node{Kind: tree.Dir, Mode: 0o755, Mtime: epoch}
	// The first directory copied to "/" gives the root its metadata.
	for _, cf := range p.CopyFiles {
		if cf.Target != "/" {
			continue
		}
		if n, err := resolve(root, cf.Source); err == nil && n != nil && n.Kind == tree.Dir {
			out.Mode, out.UID, out.GID, out.Mtime, out.Xattrs = n.Mode, n.UID, n.GID, n.Mtime, n.Xattrs
			break
		}
	}
	orig := map[*tree.Node]srcRef{}
	exclude := map[string]bool{}     // source paths left out entirely
	excludeKids := map[string]bool{} // source dirs whose contents are left out
	for _, e := range p.ExcludeFiles {
		c := strings.Trim(path.Clean(e), "/")
		if strings.HasSuffix(e, "/") {
			excludeKids[c] = true
		} else {
			exclude[c] = true
		}
	}
	for entry, cf := range p.CopyFiles {
		srcRel := strings.Trim(cf.Source, "/")
		if exclude[srcRel] {
			continue
		}
		src, err := resolve(root, cf.Source)
		if err != nil {
			return nil, fmt.Errorf("CopyFiles=%s:%s: %w", cf.Source, cf.Target, err)
		}
		if src == nil {
			continue // repart: "Failed to open source file ..., skipping"
		}
		switch src.Kind {
		case tree.Dir:
			dst, err := mkdirAll(out, cf.Target, epoch, src)
			if err != nil {
				return nil, err
			}
			if !excludeKids[srcRel] {
				if err := mergeDir(dst, src, srcRel, exclude, excludeKids, orig, entry); err != nil {
					return nil, err
				}
			}
		case tree.Regular:
			dir, name := path.Split(cf.Target)
			if name == "" {
				return nil, fmt.Errorf("CopyFiles=%s:%s: target path refers to a directory, but source path refers to a regular file", cf.Source, cf.Target)
			}
			parent, err := mkdirAll(out, dir, epoch, nil)
			if err != nil {
				return nil, err
			}
			if child(parent, name) != nil {
				return nil, fmt.Errorf("CopyFiles=%s:%s: target file exists", cf.Source, cf.Target)
			}
			c := *src
			c.Children, c.Name = nil, name
			orig[&c] = srcRef{entry: entry, node: src, single: true}
			addChild(parent, &c)
			parent.Mtime = epoch
		default:
			return nil, fmt.Errorf("CopyFiles=%s: source is a %s, not a file or directory", cf.Source, src.Kind)
		}
	}
	for _, d := range p.MakeDirectories {
		if _, err := mkdirAll(out, d, epoch, nil); err != nil {
			return nil, err
		}
	}
	finish(out, orig)
	return out, nil
}

// resolve finds the node at abs inside root, following symlinks confined to
// root (an absolute link target means root). It returns nil, nil when the
// path does not exist.
func resolve(root *tree.Node, abs string) (*tree.Node, error) {
	parts := strings.Split(strings.Trim(path.Clean(abs), "/"), "/")
	hops := 0
	var stack []*tree.Node // ancestors of cur
	cur := root
	for len(parts) > 0 {
		p := parts[0]
		parts = parts[1:]
		switch p {
		case "", ".":
			continue
		case "..":
			if len(stack) > 0 {
				cur, stack = stack[len(stack)-1], stack[:len(stack)-1]
			}
			continue
		}
		if cur.Kind != tree.Dir {
			return nil, nil
		}
		n := child(cur, p)
		if n == nil {
			return nil, nil
		}
		if n.Kind == tree.Symlink {
			hops++
			if hops > 40 {
				return nil, fmt.Errorf("%s: too many levels of symbolic links", abs)
			}
			t := n.Target
			if strings.HasPrefix(t, "/") {
				cur, stack = root, nil
			}
			parts = append(strings.Split(t, "/"), parts...)
			continue
		}
		stack = append(stack, cur)
		cur = n
	}
	return cur, nil
}

func child(dir *tree.Node, name string) *tree.Node {
	i := sort.Search(len(dir.Children), func(i int) bool { return dir.Children[i].Name >= name })
	if i < len(dir.Children) && dir.Children[i].Name == name {
		return dir.Children[i]
	}
	return nil
}

func addChild(dir, c *tree.Node) {
	i := sort.Search(len(dir.Children), func(i int) bool { return dir.Children[i].Name >= c.Name })
	if i < len(dir.Children) && dir.Children[i].Name == c.Name {
		dir.Children[i] = c
		return
	}
	dir.Children = append(dir.Children, nil)
	copy(dir.Children[i+1:], dir.Children[i:])
	dir.Children[i] = c
}

// mkdirAll returns the directory at abs in out, creating missing ones;
// the last one created takes meta's metadata when meta is not nil.
func mkdirAll(out *tree.Node, abs string, epoch int64, meta *tree.Node) (*tree.Node, error) {
	cur := out
	parts := strings.Split(strings.Trim(path.Clean("/"+abs), "/"), "/")
	for i, p := range parts {
		if p == "" {
			continue
		}
		n := child(cur, p)
		if n == nil {
			n = &tree.Node{Name: p, Kind: tree.Dir, Mode: 0o755, Mtime: epoch}
			if meta != nil && i == len(parts)-1 {
				n.Mode, n.UID, n.GID, n.Mtime, n.Xattrs = meta.Mode, meta.UID, meta.GID, meta.Mtime, meta.Xattrs
			}
			addChild(cur, n)
			cur.Mtime = epoch
		} else if n.Kind != tree.Dir {
			return nil, fmt.Errorf("cannot create directory /%s: a %s is in the way", strings.Join(parts[:i+1], "/"), n.Kind)
		}
		cur = n
	}
	return cur, nil
}

// mergeDir copies the children of src (at source path rel) into dst,
// replacing non-directories and merging directories.
func mergeDir(dst, src *tree.Node, rel string, exclude, excludeKids map[string]bool, orig map[*tree.Node]srcRef, entry int) error {
	for _, c := range src.Children {
		crel := c.Name
		if rel != "" {
			crel = rel + "/" + c.Name
		}
		if exclude[crel] {
			continue
		}
		existing := child(dst, c.Name)
		if c.Kind == tree.Dir {
			d := existing
			if d == nil || d.Kind != tree.Dir {
				cp := *c
				cp.Children = nil
				d = &cp
				addChild(dst, d)
			}
			if excludeKids[crel] {
				continue
			}
			if err := mergeDir(d, c, crel, exclude, excludeKids, orig, entry); err != nil {
				return err
			}
			continue
		}
		cp := *c
		cp.Children = nil
		orig[&cp] = srcRef{entry: entry, node: c}
		addChild(dst, &cp)
	}
	return nil
}

// finish sets Path, Parent and link counts of the new tree and re-forms
// hard-link groups: the first member in walk order carries the content.
// orig maps copied nodes to the source nodes they copy and the CopyFiles=
// entry that copied them: like repart's copy_tree, hard links are kept
// within one entry, and a single copied file is a new inode.
func finish(root *tree.Node, orig map[*tree.Node]srcRef) {
	root.Name, root.Path, root.Parent = "", "", nil
	carriers := map[srcRef]*tree.Node{} // source inode per entry -> carrier in the new tree
	var walk func(n *tree.Node)
	walk = func(n *tree.Node) {
		if n.Kind == tree.Dir {
			n.Nlink = 2
			for _, c := range n.Children {
				c.Parent = n
				c.Path = c.Name
				if n.Path != "" {
					c.Path = n.Path + "/" + c.Name
				}
				if c.Kind == tree.Dir {
					n.Nlink++
				}
				walk(c)
			}
			return
		}
		o, copied := orig[n]
		var key srcRef
		switch {
		case !copied:
		case n.Link != nil:
			key = srcRef{entry: o.entry, node: n.Link}
		case o.node.Nlink > 1:
			key = o
		}
		if o.single || key.node == nil {
			if n.Link != nil {
				n.HostPath, n.Size = n.Link.HostPath, n.Link.Size
			}
			n.Link, n.Nlink = nil, 1
			return
		}
		if car, ok := carriers[key]; ok {
			n.Link = car
			car.Nlink++
			return
		}
		carriers[key] = n
		if n.Link != nil {
			n.HostPath, n.Size = n.Link.HostPath, n.Link.Size
		}
		n.Link, n.Nlink = nil, 1
	}
	walk(root)
	_ = root.Walk(func(n *tree.Node) error {
		if n.Link != nil {
			n.Nlink = n.Link.Nlink
		}
		return nil
	})
}

// srcRef names a source node copied by CopyFiles= entry number entry;
// single marks a file copied on its own (a new inode).
type srcRef struct {
	entry  int
	node   *tree.Node
	single bool
}
