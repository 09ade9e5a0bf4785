package build

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sxb-build/sxb/internal/atomicfile"
	"github.com/sxb-build/sxb/rules"
)

// extStatusFile is the dpkg database of an extension's own packages, kept
// in its cache entry (not published) for extensions built on it.
const extStatusFile = "dpkg-status"

// extBase describes the base l of an extension: the tree below (a
// base_image's, or for an extension the tree its own base chain starts
// from), the directory to resolve packages against when l is an
// extension ("" otherwise: resolve against root), the key of l's result
// and the base's record. An extension on an extension resolves against the
// base's installed packages and those of every extension in between
// (Debian and Ubuntu: their dpkg databases; an extension's files are never
// installed again since its packages count as installed).
func (x *executor) extBase(l rules.Label) (root, resolveRoot, key string, info baseInfo, err error) {
	bt := x.g.Target(l)
	e := x.entry(l.String())
	if bt == nil || e == nil {
		return "", "", "", info, fmt.Errorf("base %s was not built", l)
	}
	switch {
	case bt.Kind == rules.KindBaseImage:
		if err := json.Unmarshal(e.Info, &info); err != nil {
			return "", "", "", info, fmt.Errorf("base %s: reading its record: %w", l, err)
		}
		return e.Path("tree"), "", e.Key, info, nil
	case bt.Ext == nil:
		return "", "", "", info, fmt.Errorf("base %s is a %s, not an image", l, bt.Kind)
	}
	// An extension: its own base chain, then its packages on top.
	var lowerDB string
	switch {
	case bt.Ext.Base != nil:
		var lowerResolve string
		if root, lowerResolve, _, info, err = x.extBase(*bt.Ext.Base); err != nil {
			return "", "", "", info, err
		}
		lowerDB = filepath.Join(root, "var/lib/dpkg/status")
		if lowerResolve != "" {
			lowerDB = filepath.Join(lowerResolve, "var/lib/dpkg/status")
		}
	case bt.Ext.BaseTree != nil:
		if info, _, err = treeBaseInfo(bt.Ext.BaseTree); err != nil {
			return "", "", "", info, err
		}
		root = bt.Ext.BaseTree.Path
		lowerDB = filepath.Join(root, "var/lib/dpkg/status")
	default:
		return "", "", "", info, fmt.Errorf("base %s has no base of its own: there is nothing to install on", l)
	}
	// The database of both: written once per result of l, under a name
	// derived from it, so that resolving stays memoised.
	resolveRoot = filepath.Join(x.opts.CacheDir, "extension-bases", e.Key)
	db := filepath.Join(resolveRoot, "var/lib/dpkg/status")
	if _, err := os.Stat(db); err == nil {
		return root, resolveRoot, e.Key, info, nil
	}
	lower, err := os.ReadFile(lowerDB)
	if os.IsNotExist(err) {
		return root, "", e.Key, info, nil // no dpkg database: resolve against the tree (rpm)
	}
	if err != nil {
		return "", "", "", info, err
	}
	own, err := os.ReadFile(e.Path(extStatusFile))
	if err != nil && !os.IsNotExist(err) {
		return "", "", "", info, err
	}
	both := append(bytes.TrimRight(lower, "\n"), "\n\n"...)
	both = append(both, own...)
	if err := os.MkdirAll(filepath.Dir(db), 0o755); err != nil {
		return "", "", "", info, err
	}
	if err := atomicfile.Write(db, both, 0o644); err != nil {
		return "", "", "", info, err
	}
	return root, resolveRoot, e.Key, info, nil
}
