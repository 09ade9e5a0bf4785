package erofs

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strings"
)

// xattr name indexes (EROFS_XATTR_INDEX_*). A name is stored as its index
// plus the suffix after the prefix.
var xattrPrefixes = []struct {
	prefix string
	index  uint8
	exact  bool // the whole name is the prefix (POSIX ACLs)
}{
	{"user.", 1, false},
	{"system.posix_acl_access", 2, true},
	{"system.posix_acl_default", 3, true},
	{"trusted.", 4, false},
	{"security.", 6, false},
}

// encodeXattrs returns the inline xattr body of an inode (the 12-byte
// ibody header, then 4-byte aligned entries sorted by name) or nil.
func encodeXattrs(xs map[string][]byte) ([]byte, error) {
	if len(xs) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(xs))
	for k := range xs {
		names = append(names, k)
	}
	sort.Strings(names)
	b := make([]byte, 12, 64)
	for _, name := range names {
		v := xs[name]
		idx, suffix, err := splitXattr(name)
		if err != nil {
			return nil, err
		}
		if len(v) > math.MaxUint16 {
			return nil, fmt.Errorf("xattr %q: value of %d bytes exceeds 65535", name, len(v))
		}
		var e [4]byte
		e[0] = uint8(len(suffix))
		e[1] = idx
		binary.LittleEndian.PutUint16(e[2:], uint16(len(v)))
		b = append(b, e[:]...)
		b = append(b, suffix...)
		b = append(b, v...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
	}
	if (len(b)-12)/4+1 > math.MaxUint16 {
		return nil, fmt.Errorf("xattrs take %d bytes, more than an inode can hold", len(b))
	}
	return b, nil
}

func splitXattr(name string) (uint8, string, error) {
	for _, p := range xattrPrefixes {
		if p.exact {
			if name == p.prefix {
				return p.index, "", nil
			}
			continue
		}
		if suffix, ok := strings.CutPrefix(name, p.prefix); ok {
			if suffix == "" || len(suffix) > maxNameLen {
				return 0, "", fmt.Errorf("xattr %q: invalid name length", name)
			}
			return p.index, suffix, nil
		}
	}
	return 0, "", fmt.Errorf("xattr %q: erofs stores only user., trusted., security. and POSIX ACL attributes", name)
}
