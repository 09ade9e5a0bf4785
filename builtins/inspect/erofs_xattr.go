package inspect

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// erofsShortPrefixes are the xattr name prefixes by name index
// (EROFS_XATTR_INDEX_*); the POSIX ACL indexes name the whole attribute.
var erofsShortPrefixes = [...]string{1: "user.", 2: "system.posix_acl_access", 3: "system.posix_acl_default",
	4: "trusted.", 5: "lustre.", 6: "security."}

// xattrs reads the inline xattr area of an inode: the shared attributes it
// refers to, then its own entries.
func (e *erofsFS) xattrs(in *erofsInode) (map[string][]byte, error) {
	if in.xsize < 12 {
		return nil, fmt.Errorf("xattr area of %d bytes", in.xsize)
	}
	b := make([]byte, in.xsize)
	if err := e.readAt(b, in.off+in.isize, "xattrs"); err != nil {
		return nil, err
	}
	shared := int(b[4])
	if 12+4*shared > len(b) {
		return nil, fmt.Errorf("%d shared xattrs do not fit the %d-byte xattr area", shared, len(b))
	}
	out := map[string][]byte{}
	total := 0
	add := func(ent []byte) (int, error) {
		if len(ent) < 4 {
			return 0, fmt.Errorf("truncated xattr entry")
		}
		nlen, idx, vlen := int(ent[0]), ent[1], int(binary.LittleEndian.Uint16(ent[2:]))
		if 4+nlen+vlen > len(ent) {
			return 0, fmt.Errorf("xattr entry of %d bytes overruns its area", 4+nlen+vlen)
		}
		prefix, err := e.xattrPrefix(idx)
		if err != nil {
			return 0, err
		}
		name := prefix + string(ent[4:4+nlen])
		if strings.IndexByte(name, 0) >= 0 {
			return 0, fmt.Errorf("xattr name %q contains NUL", name)
		}
		if total += len(name) + vlen; total > maxXattrsPerInode {
			return 0, fmt.Errorf("xattrs of more than %d bytes", maxXattrsPerInode)
		}
		out[name] = append([]byte{}, ent[4+nlen:4+nlen+vlen]...)
		return (4 + nlen + vlen + 3) &^ 3, nil
	}
	for i := 0; i < shared; i++ {
		id := int64(binary.LittleEndian.Uint32(b[12+4*i:]))
		at := e.xattrAddr + 4*id
		h := make([]byte, 4)
		if err := e.readAt(h, at, "shared xattr"); err != nil {
			return nil, err
		}
		ent := make([]byte, 4+int(h[0])+int(binary.LittleEndian.Uint16(h[2:])))
		if err := e.readAt(ent, at, "shared xattr"); err != nil {
			return nil, err
		}
		if _, err := add(ent); err != nil {
			return nil, fmt.Errorf("shared xattr %d: %w", id, err)
		}
	}
	for rest := b[12+4*shared:]; len(rest) > 0; {
		n, err := add(rest)
		if err != nil {
			return nil, err
		}
		rest = rest[min(n, len(rest)):]
	}
	return out, nil
}

// xattrPrefix returns the name prefix of a name index: a short prefix, or
// with bit 7 set, an entry of the long prefix table.
func (e *erofsFS) xattrPrefix(idx uint8) (string, error) {
	if idx&0x80 != 0 {
		if int(idx&0x7f) >= len(e.prefixes) {
			return "", fmt.Errorf("long xattr prefix %d beyond the %d in the superblock", idx&0x7f, len(e.prefixes))
		}
		return e.prefixes[idx&0x7f], nil
	}
	if int(idx) >= len(erofsShortPrefixes) || erofsShortPrefixes[idx] == "" {
		return "", fmt.Errorf("xattr name index %d unknown", idx)
	}
	return erofsShortPrefixes[idx], nil
}

// readPrefixes reads the long xattr name prefix table: count records of a
// 16-bit length, the base name index and the infix, each 4-byte aligned,
// at pos of the packed inode's content or, without one, of the image.
func (e *erofsFS) readPrefixes(count int, pos int64) error {
	var src interface {
		ReadAt([]byte, int64) (int, error)
	} = e.r
	end := e.size
	if e.packedNid != 0 {
		in, err := e.inode(e.packedNid)
		if err != nil {
			return fmt.Errorf("erofs: packed inode: %w", err)
		}
		d, err := e.data(in)
		if err != nil {
			return fmt.Errorf("erofs: packed inode: %w", err)
		}
		src, end = d, in.o.size
	}
	for i := 0; i < count; i++ {
		h := make([]byte, 2)
		if pos < 0 || pos+2 > end {
			return fmt.Errorf("erofs: long xattr prefix %d lies outside its area", i)
		}
		if _, err := src.ReadAt(h, pos); err != nil {
			return fmt.Errorf("erofs: long xattr prefix %d: %w", i, err)
		}
		n := int64(binary.LittleEndian.Uint16(h))
		if n < 1 || n > 256 || pos+2+n > end {
			return fmt.Errorf("erofs: long xattr prefix %d of %d bytes invalid", i, n)
		}
		b := make([]byte, n)
		if _, err := src.ReadAt(b, pos+2); err != nil {
			return fmt.Errorf("erofs: long xattr prefix %d: %w", i, err)
		}
		if int(b[0]) >= len(erofsShortPrefixes) || erofsShortPrefixes[b[0]] == "" {
			return fmt.Errorf("erofs: long xattr prefix %d: base index %d unknown", i, b[0])
		}
		e.prefixes = append(e.prefixes, erofsShortPrefixes[b[0]]+string(b[1:]))
		pos += (2 + n + 3) &^ 3
	}
	return nil
}
