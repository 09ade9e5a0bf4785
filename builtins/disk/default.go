package disk

import (
	"fmt"

	"github.com/sxb-build/sxb/builtins/repart"
	"github.com/sxb-build/sxb/internal/diag"
)

// DefaultLayout returns the partitions systemd-repart --make-ddi=KIND uses
// (its sysext.repart.d / confext.repart.d definitions): a root partition
// with the file system (CopyFiles=/usr/ and /opt/ for a sysext, /etc/ for a
// confext, Minimize=best) and, per verity mode, its root-verity
// ("hash") and root-verity-sig ("signed") siblings. With verity "off" it is
// mkosi's sysext-unsigned/confext-unsigned definition: no ReadOnly=, so
// repart's defaults give the partition the grow-file-system flag and not
// the read-only one (the file system is read-only either way).
func DefaultLayout(kind, format, verityMode string) ([]*repart.Partition, error) {
	var copyFiles []string
	switch kind {
	case "sysext":
		copyFiles = []string{"/usr/", "/opt/"}
	case "confext":
		copyFiles = []string{"/etc/"}
	default:
		return nil, fmt.Errorf("unknown extension kind %q (want sysext or confext)", kind)
	}
	if format != "erofs" && format != "squashfs" {
		return nil, fmt.Errorf("unsupported format %q (want erofs or squashfs)", format)
	}
	pos := diag.Pos{File: "<default " + kind + " layout>"}
	root := []repart.KV{{Key: "Type", Value: "root"}, {Key: "Format", Value: format}}
	for _, c := range copyFiles {
		root = append(root, repart.KV{Key: "CopyFiles", Value: c})
	}
	var defs [][]repart.KV
	var names []string
	switch verityMode {
	case "off":
		root = append(root, repart.KV{Key: "Minimize", Value: "best"})
		defs, names = [][]repart.KV{root}, []string{"10-root.conf"}
	case "hash", "signed", "defer":
		root = append(root, repart.KV{Key: "Verity", Value: "data"}, repart.KV{Key: "VerityMatchKey", Value: "root"},
			repart.KV{Key: "Minimize", Value: "best"})
		hash := []repart.KV{{Key: "Type", Value: "root-verity"}, {Key: "Verity", Value: "hash"},
			{Key: "VerityMatchKey", Value: "root"}, {Key: "Minimize", Value: "best"}}
		defs, names = [][]repart.KV{root, hash}, []string{"10-root.conf", "20-root-verity.conf"}
		if verityMode == "signed" || verityMode == "defer" { // defer: reserved, signed later
			defs = append(defs, []repart.KV{{Key: "Type", Value: "root-verity-sig"}, {Key: "Verity", Value: "signature"},
				{Key: "VerityMatchKey", Value: "root"}})
			names = append(names, "30-root-verity-sig.conf")
		}
	default:
		return nil, fmt.Errorf("unknown verity mode %q (want off, hash, signed or defer)", verityMode)
	}
	var parts []*repart.Partition
	for i, kv := range defs {
		p, err := repart.FromKeys(pos, names[i], kv)
		if err != nil {
			return nil, err
		}
		parts = append(parts, p)
	}
	if err := repart.CheckLayout(parts); err != nil {
		return nil, err
	}
	return parts, nil
}
