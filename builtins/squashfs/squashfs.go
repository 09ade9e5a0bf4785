// Package squashfs writes squashfs 4.0 images from a tree.Node, in pure Go.
//
// Images carry everything the kernel and unsquashfs read: data blocks
// compressed with gzip (zlib streams), xz, zstd or lz4 and stored raw when
// compression does not help; all-zero blocks (and holes of sparse host
// files) stored as sparse blocks; tails of files and small files packed into
// fragment blocks, the small files grouped by extension and name so that
// similar contents compress together; identical files stored once; 8 KiB
// metadata blocks; directory indexes for listings that span metadata
// blocks; extended inodes where needed (xattrs, hard links, large or sparse
// files); an id table; an xattr table with large and repeated values stored
// out of line as mksquashfs does; compressor options; and an NFS export
// table (mksquashfs writes one by default; it costs 8 bytes per inode). The
// image is padded to 4096 bytes.
//
// We do not use the go-diskfs squashfs writer: on real trees (v1.9.4) it
// drops directory entries, panics on xattrs, loses setuid bits and writes
// lz4/xz blocks the kernel rejects (an xz dictionary larger than the block
// size and a CRC64 check, which the kernel's xz decoder refuses). This
// package is written from the on-disk format as the kernel's
// fs/squashfs/squashfs_fs.h and squashfs-tools define it; for xz it uses a
// CRC32 check and a dictionary of exactly the block size, for zstd
// single-segment frames whose window is the block's own size.
//
// Output is deterministic: the same tree and Options give the same bytes
// whatever the number of workers. Data blocks are compressed in parallel but
// written in a fixed order; file contents are streamed, so memory holds the
// metadata plus a bounded number of blocks in flight (4 per worker).
package squashfs

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/bits"
	"runtime"
	"sort"
	"strings"

	"github.com/sxb-build/sxb/builtins/tree"
)

// Options select how an image is written. The zero value writes a
// gzip-compressed image with 128 KiB blocks.
type Options struct {
	// Compression is "gzip" (the default when empty), "xz", "zstd" or "lz4".
	Compression string
	// Level is the compression level; 0 selects the default (gzip 9,
	// zstd 15, lz4 plain; xz takes no level). For lz4, 1..9 selects the
	// high-compression mode.
	Level int
	// BlockSize is the data block size, a power of two from 4096 to
	// 1048576; 0 means 131072.
	BlockSize int
	// Epoch is SOURCE_DATE_EPOCH: the superblock's creation time in
	// seconds since the epoch.
	Epoch int64
	// NoFragments stores the tails of files as short blocks instead of
	// packing them into fragment blocks.
	NoFragments bool
	// Workers is the number of parallel compressors; 0 means GOMAXPROCS.
	Workers int
}

const (
	magic          = 0x73717368
	superblockSize = 96
	noXattr        = 0xffffffff
	maxNameLen     = 256
	devBlockSize   = 4096
)

// Superblock flags.
const (
	flagNoFragments = 0x0010
	flagDuplicates  = 0x0040
	flagExportable  = 0x0080
	flagNoXattrs    = 0x0200
	flagCompOpts    = 0x0400
)

// Basic inode types; the extended variant of each is 7 more.
const (
	typeDir     = 1
	typeFile    = 2
	typeSymlink = 3
	typeBlkDev  = 4
	typeChrDev  = 5
	typeFIFO    = 6
	typeSocket  = 7
	extended    = 7
)

func basicType(k tree.Kind) uint16 {
	switch k {
	case tree.Dir:
		return typeDir
	case tree.Regular:
		return typeFile
	case tree.Symlink:
		return typeSymlink
	case tree.BlockDev:
		return typeBlkDev
	case tree.CharDev:
		return typeChrDev
	case tree.FIFO:
		return typeFIFO
	case tree.Socket:
		return typeSocket
	}
	return 0
}

// inode is what the writer knows about one inode of the tree.
type inode struct {
	n        *tree.Node
	num      uint32
	uid, gid uint16
	mtime    uint32
	xattr    uint32
	data     *fileData
	ref      uint64
	written  bool
}

type builder struct {
	opts    Options
	bs      int
	codec   *codec
	comp    compressor
	nodes   map[*tree.Node]*inode
	regular []*inode

	ids   []uint32
	idIdx map[uint32]uint16

	xkv       *metaWriter
	xids      []byte
	xcount    uint32
	xsets     map[string]uint32
	xvalues   map[string]uint64
	inodes    *metaWriter
	dirs      *metaWriter
	count     uint32
	export    []byte
	scratch   []byte
	sizeCount map[int64]int
}

// Write writes a complete squashfs image of root to w at offset 0, padded to
// a multiple of 4096 bytes, and returns the padded size.
func Write(w io.WriterAt, root *tree.Node, opts Options) (size int64, err error) {
	if root == nil || root.Kind != tree.Dir {
		return 0, fmt.Errorf("squashfs: root must be a directory")
	}
	bs := opts.BlockSize
	if bs == 0 {
		bs = 131072
	}
	if bs < 4096 || bs > 1<<20 || bs&(bs-1) != 0 {
		return 0, fmt.Errorf("squashfs: block size %d is not a power of two from 4096 to 1048576", bs)
	}
	cd, err := newCodec(opts.Compression, opts.Level, bs)
	if err != nil {
		return 0, fmt.Errorf("squashfs: %w", err)
	}
	if opts.Epoch < 0 || opts.Epoch > math.MaxUint32 {
		return 0, fmt.Errorf("squashfs: modification time %d out of range", opts.Epoch)
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	comp, err := cd.new()
	if err != nil {
		return 0, fmt.Errorf("squashfs: setting up compressor: %w", err)
	}
	b := &builder{
		opts: opts, bs: bs, codec: cd, comp: comp,
		nodes: map[*tree.Node]*inode{}, idIdx: map[uint32]uint16{},
		xkv: newMetaWriter(comp), xsets: map[string]uint32{}, xvalues: map[string]uint64{},
		inodes: newMetaWriter(comp), dirs: newMetaWriter(comp),
		sizeCount: map[int64]int{},
	}
	if err := b.scan(root); err != nil {
		return 0, fmt.Errorf("squashfs: %w", err)
	}

	out := &output{w: w, pos: superblockSize}
	// Compressor options: one uncompressed metadata block after the superblock.
	copts := binary.LittleEndian.AppendUint16(nil, uint16(len(cd.options))|metaUncompressed)
	copts = append(copts, cd.options...)
	if err := out.write(copts); err != nil {
		return 0, fmt.Errorf("squashfs: %w", err)
	}

	// Data phase.
	dw := newDataWriter(out, bs, opts.NoFragments, cd.new, workers)
	dw.sizeCount = b.sizeCount
	if err := dw.start(); err != nil {
		return 0, fmt.Errorf("squashfs: %w", err)
	}
	for _, in := range b.dataOrder() {
		fd, err := dw.addFile(in.n)
		if err != nil {
			dw.finish(true)
			return 0, fmt.Errorf("squashfs: %s: %w", displayPath(in.n), err)
		}
		in.data = fd
	}
	if err := dw.finish(false); err != nil {
		return 0, fmt.Errorf("squashfs: %w", err)
	}

	// Metadata phase.
	b.number(root)
	b.export = make([]byte, 8*b.count)
	if err := b.writeDir(root, b.count+1); err != nil {
		return 0, fmt.Errorf("squashfs: %w", err)
	}
	rootRef := b.nodes[root].ref

	sb := superblock{
		inodes: b.count, mkfsTime: uint32(opts.Epoch), blockSize: uint32(bs),
		fragments: uint32(len(dw.frags)), compression: cd.id,
		blockLog: uint16(bits.TrailingZeros(uint(bs))),
		flags:    flagDuplicates | flagExportable | flagCompOpts,
		ids:      uint16(len(b.ids)), rootInode: rootRef,
		xattrTable: math.MaxUint64,
	}
	if opts.NoFragments {
		sb.flags |= flagNoFragments
	}
	if b.xcount == 0 {
		sb.flags |= flagNoXattrs
	}
	itab, err := b.inodes.finish()
	if err != nil {
		return 0, fmt.Errorf("squashfs: %w", err)
	}
	dtab, err := b.dirs.finish()
	if err != nil {
		return 0, fmt.Errorf("squashfs: %w", err)
	}
	sb.inodeTable = uint64(out.pos)
	if err := out.write(itab); err != nil {
		return 0, fmt.Errorf("squashfs: %w", err)
	}
	sb.dirTable = uint64(out.pos)
	if err := out.write(dtab); err != nil {
		return 0, fmt.Errorf("squashfs: %w", err)
	}
	frags := make([]byte, 0, 16*len(dw.frags))
	for _, f := range dw.frags {
		frags = binary.LittleEndian.AppendUint64(frags, f.start)
		frags = binary.LittleEndian.AppendUint32(frags, f.size)
		frags = binary.LittleEndian.AppendUint32(frags, 0)
	}
	t, err := out.writeTable(frags, comp, nil)
	if err != nil {
		return 0, fmt.Errorf("squashfs: fragment table: %w", err)
	}
	sb.fragTable = uint64(t)
	if t, err = out.writeTable(b.export, comp, nil); err != nil {
		return 0, fmt.Errorf("squashfs: export table: %w", err)
	}
	sb.exportTable = uint64(t)
	ids := make([]byte, 0, 4*len(b.ids))
	for _, id := range b.ids {
		ids = binary.LittleEndian.AppendUint32(ids, id)
	}
	if t, err = out.writeTable(ids, comp, nil); err != nil {
		return 0, fmt.Errorf("squashfs: id table: %w", err)
	}
	sb.idTable = uint64(t)
	if b.xcount > 0 {
		kv, err := b.xkv.finish()
		if err != nil {
			return 0, fmt.Errorf("squashfs: %w", err)
		}
		kvStart := out.pos
		if err := out.write(kv); err != nil {
			return 0, fmt.Errorf("squashfs: %w", err)
		}
		hdr := binary.LittleEndian.AppendUint64(nil, uint64(kvStart))
		hdr = binary.LittleEndian.AppendUint32(hdr, b.xcount)
		hdr = binary.LittleEndian.AppendUint32(hdr, 0)
		if t, err = out.writeTable(b.xids, comp, hdr); err != nil {
			return 0, fmt.Errorf("squashfs: xattr table: %w", err)
		}
		sb.xattrTable = uint64(t)
	}
	sb.bytesUsed = uint64(out.pos)
	if _, err := w.WriteAt(sb.marshal(), 0); err != nil {
		return 0, fmt.Errorf("squashfs: writing superblock: %w", err)
	}
	size = (out.pos + devBlockSize - 1) / devBlockSize * devBlockSize
	if pad := size - out.pos; pad > 0 {
		if err := out.write(make([]byte, pad)); err != nil {
			return 0, fmt.Errorf("squashfs: %w", err)
		}
	}
	return size, nil
}

type superblock struct {
	inodes, mkfsTime, blockSize, fragments       uint32
	compression, blockLog, flags, ids            uint16
	rootInode, bytesUsed, idTable, xattrTable    uint64
	inodeTable, dirTable, fragTable, exportTable uint64
}

func (s *superblock) marshal() []byte {
	le := binary.LittleEndian
	b := make([]byte, 0, superblockSize)
	b = le.AppendUint32(b, magic)
	b = le.AppendUint32(b, s.inodes)
	b = le.AppendUint32(b, s.mkfsTime)
	b = le.AppendUint32(b, s.blockSize)
	b = le.AppendUint32(b, s.fragments)
	b = le.AppendUint16(b, s.compression)
	b = le.AppendUint16(b, s.blockLog)
	b = le.AppendUint16(b, s.flags)
	b = le.AppendUint16(b, s.ids)
	b = le.AppendUint16(b, 4)
	b = le.AppendUint16(b, 0)
	b = le.AppendUint64(b, s.rootInode)
	b = le.AppendUint64(b, s.bytesUsed)
	b = le.AppendUint64(b, s.idTable)
	b = le.AppendUint64(b, s.xattrTable)
	b = le.AppendUint64(b, s.inodeTable)
	b = le.AppendUint64(b, s.dirTable)
	b = le.AppendUint64(b, s.fragTable)
	b = le.AppendUint64(b, s.exportTable)
	return b
}

func displayPath(n *tree.Node) string {
	if n.Path == "" {
		return "/"
	}
	return n.Path
}

// scan validates the tree and collects ids, xattrs and the regular files in
// walk order.
func (b *builder) scan(root *tree.Node) error {
	return root.Walk(func(n *tree.Node) error {
		p := displayPath(n)
		if n != root {
			if err := checkName(n.Name); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
		if n.Kind == tree.Dir {
			for i := 1; i < len(n.Children); i++ {
				if n.Children[i-1].Name >= n.Children[i].Name {
					return fmt.Errorf("%s: children not sorted or name %q repeated", p, n.Children[i].Name)
				}
			}
		}
		if n.Link != nil {
			t := b.nodes[n.Link]
			if t == nil || n.Link.Link != nil {
				return fmt.Errorf("%s: hard link to %s, which is not an earlier node of the tree", p, displayPath(n.Link))
			}
			if n.Link.Kind == tree.Dir || n.Kind != n.Link.Kind {
				return fmt.Errorf("%s: hard link to %s of kind %v", p, displayPath(n.Link), n.Link.Kind)
			}
			b.nodes[n] = t
			return nil
		}
		if basicType(n.Kind) == 0 {
			return fmt.Errorf("%s: unsupported kind %v", p, n.Kind)
		}
		in := &inode{n: n}
		var err error
		if in.uid, err = b.id(n.UID); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if in.gid, err = b.id(n.GID); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		switch {
		case n.Mtime < 0:
			in.mtime = 0
		case n.Mtime > math.MaxUint32:
			return fmt.Errorf("%s: modification time %d beyond what squashfs stores (2106)", p, n.Mtime)
		default:
			in.mtime = uint32(n.Mtime)
		}
		if in.xattr, err = b.xattrID(n.Xattrs); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		switch n.Kind {
		case tree.CharDev, tree.BlockDev:
			if tree.Major(n.Rdev) > 0xfff || tree.Minor(n.Rdev) > 0xfffff {
				return fmt.Errorf("%s: device number %d:%d too large for squashfs", p, tree.Major(n.Rdev), tree.Minor(n.Rdev))
			}
		case tree.Regular:
			if n.Size < 0 {
				return fmt.Errorf("%s: negative size", p)
			}
			b.regular = append(b.regular, in)
			b.sizeCount[n.Size]++
		case tree.Symlink:
			if n.Target == "" {
				return fmt.Errorf("%s: empty symlink target", p)
			}
		}
		b.nodes[n] = in
		return nil
	})
}

func checkName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("invalid name %q", name)
	case len(name) > maxNameLen:
		return fmt.Errorf("name longer than %d bytes", maxNameLen)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("name %q contains '/' or NUL", name)
	}
	return nil
}

func (b *builder) id(v uint32) (uint16, error) {
	if i, ok := b.idIdx[v]; ok {
		return i, nil
	}
	if len(b.ids) == 1<<16 {
		return 0, fmt.Errorf("more than 65536 distinct uids and gids")
	}
	i := uint16(len(b.ids))
	b.ids = append(b.ids, v)
	b.idIdx[v] = i
	return i, nil
}

var xattrPrefixes = []string{"user.", "trusted.", "security."}

const (
	xattrOOL       = 0x100
	xattrInlineMax = 128
	xattrTargetMax = 65536
	xattrOOLSize   = 8
)

// xattrID adds a set of extended attributes to the xattr table (once per
// distinct set) and returns its index.
func (b *builder) xattrID(x map[string][]byte) (uint32, error) {
	if len(x) == 0 {
		return noXattr, nil
	}
	keys := make([]string, 0, len(x))
	for k := range x {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	type entry struct {
		typ   uint16
		name  string
		value []byte
		ool   bool
	}
	ents := make([]entry, 0, len(keys))
	var sig []byte
	for _, k := range keys {
		typ := -1
		for i, p := range xattrPrefixes {
			if strings.HasPrefix(k, p) && len(k) > len(p) {
				typ = i
				break
			}
		}
		if typ < 0 {
			return 0, fmt.Errorf("xattr %q: squashfs stores only user., trusted. and security. attributes", k)
		}
		if len(k) > math.MaxUint16 {
			return 0, fmt.Errorf("xattr name %.40q... too long", k)
		}
		v := x[k]
		ents = append(ents, entry{typ: uint16(typ), name: k[len(xattrPrefixes[typ]):], value: v})
		sig = binary.LittleEndian.AppendUint32(sig, uint32(len(k)))
		sig = append(sig, k...)
		sig = binary.LittleEndian.AppendUint64(sig, uint64(len(v)))
		sig = append(sig, v...)
	}
	if id, ok := b.xsets[string(sig)]; ok {
		return id, nil
	}
	// Values larger than the inline limit go out of line; the limit is
	// lowered until the list fits the target size (as mksquashfs does).
	for limit := xattrInlineMax; ; limit /= 2 {
		limit = max(limit, xattrOOLSize)
		total := 0
		for i := range ents {
			ents[i].ool = len(ents[i].value) > limit
			total += 4 + len(ents[i].name) + 4
			if ents[i].ool {
				total += xattrOOLSize
			} else {
				total += len(ents[i].value)
			}
		}
		if total <= xattrTargetMax || limit == xattrOOLSize {
			break
		}
	}
	le := binary.LittleEndian
	refs := make([]uint64, len(ents))
	for i, e := range ents {
		// Values of at least 8 bytes seen before are referenced, not repeated.
		if ref, ok := b.xvalues[string(e.value)]; ok && len(e.value) >= xattrOOLSize {
			ents[i].ool, refs[i] = true, ref
			continue
		}
		if e.ool {
			refs[i] = b.xkv.ref()
			b.xvalues[string(e.value)] = refs[i]
			v := le.AppendUint32(nil, uint32(len(e.value)))
			b.xkv.write(append(v, e.value...))
		}
	}
	start := b.xkv.ref()
	size := 0
	for i, e := range ents {
		typ := e.typ
		if e.ool {
			typ |= xattrOOL
		}
		rec := le.AppendUint16(nil, typ)
		rec = le.AppendUint16(rec, uint16(len(e.name)))
		rec = append(rec, e.name...)
		b.xkv.write(rec)
		if e.ool {
			rec = le.AppendUint32(rec[:0], xattrOOLSize)
			rec = le.AppendUint64(rec, refs[i])
		} else {
			if len(e.value) >= xattrOOLSize {
				b.xvalues[string(e.value)] = b.xkv.ref()
			}
			rec = le.AppendUint32(rec[:0], uint32(len(e.value)))
			rec = append(rec, e.value...)
		}
		b.xkv.write(rec)
		size += len(xattrPrefixes[e.typ]) + len(e.name) + 1 + len(e.value)
	}
	id := b.xcount
	b.xcount++
	b.xids = le.AppendUint64(b.xids, start)
	b.xids = le.AppendUint32(b.xids, uint32(len(ents)))
	b.xids = le.AppendUint32(b.xids, uint32(size))
	b.xsets[string(sig)] = id
	return id, nil
}

// number assigns inode numbers in the order inodes are written: a
// directory's children (subdirectories recursively) before the directory.
func (b *builder) number(d *tree.Node) {
	for _, c := range d.Children {
		switch {
		case c.Kind == tree.Dir:
			b.number(c)
		case c.Link == nil:
			b.count++
			b.nodes[c].num = b.count
		}
	}
	b.count++
	b.nodes[d].num = b.count
}

func nlinkOf(n *tree.Node) uint32 {
	if n.Kind == tree.Dir {
		l := uint32(2)
		for _, c := range n.Children {
			if c.Kind == tree.Dir {
				l++
			}
		}
		return l
	}
	return max(n.LinkCount(), 1)
}

// header appends the common inode header.
func (b *builder) header(buf []byte, typ uint16, in *inode) []byte {
	le := binary.LittleEndian
	buf = le.AppendUint16(buf, typ)
	buf = le.AppendUint16(buf, uint16(in.n.Mode&07777))
	buf = le.AppendUint16(buf, in.uid)
	buf = le.AppendUint16(buf, in.gid)
	buf = le.AppendUint32(buf, in.mtime)
	return le.AppendUint32(buf, in.num)
}

func (b *builder) putInode(in *inode, rec []byte) {
	in.ref = b.inodes.ref()
	in.written = true
	binary.LittleEndian.PutUint64(b.export[8*(in.num-1):], in.ref)
	b.inodes.write(rec)
}

// writeLeaf writes the inode of a non-directory.
func (b *builder) writeLeaf(in *inode) {
	le := binary.LittleEndian
	n := in.n
	ext := in.xattr != noXattr
	nlink := nlinkOf(n)
	typ := basicType(n.Kind)
	buf := b.scratch[:0]
	switch n.Kind {
	case tree.Regular:
		fd := in.data
		ext = ext || nlink > 1 || fd.size > math.MaxUint32 || fd.start > math.MaxUint32 || fd.sparse != 0
		if ext {
			buf = b.header(buf, typ+extended, in)
			buf = le.AppendUint64(buf, fd.start)
			buf = le.AppendUint64(buf, uint64(fd.size))
			buf = le.AppendUint64(buf, uint64(fd.sparse))
			buf = le.AppendUint32(buf, nlink)
			buf = le.AppendUint32(buf, fd.frag)
			buf = le.AppendUint32(buf, fd.fragOff)
			buf = le.AppendUint32(buf, in.xattr)
		} else {
			buf = b.header(buf, typ, in)
			buf = le.AppendUint32(buf, uint32(fd.start))
			buf = le.AppendUint32(buf, fd.frag)
			buf = le.AppendUint32(buf, fd.fragOff)
			buf = le.AppendUint32(buf, uint32(fd.size))
		}
		for _, s := range fd.blocks {
			buf = le.AppendUint32(buf, s)
		}
	case tree.Symlink:
		if ext {
			typ += extended
		}
		buf = b.header(buf, typ, in)
		buf = le.AppendUint32(buf, nlink)
		buf = le.AppendUint32(buf, uint32(len(n.Target)))
		buf = append(buf, n.Target...)
		if ext {
			buf = le.AppendUint32(buf, in.xattr)
		}
	case tree.CharDev, tree.BlockDev:
		if ext {
			typ += extended
		}
		buf = b.header(buf, typ, in)
		buf = le.AppendUint32(buf, nlink)
		major, minor := tree.Major(n.Rdev), tree.Minor(n.Rdev)
		buf = le.AppendUint32(buf, minor&0xff|major<<8|(minor&^0xff)<<12)
		if ext {
			buf = le.AppendUint32(buf, in.xattr)
		}
	case tree.FIFO, tree.Socket:
		if ext {
			typ += extended
		}
		buf = b.header(buf, typ, in)
		buf = le.AppendUint32(buf, nlink)
		if ext {
			buf = le.AppendUint32(buf, in.xattr)
		}
	}
	b.putInode(in, buf)
	b.scratch = buf
}

type dirIndex struct {
	index, start uint32
	name         string
}

// writeDir writes the inodes below d, then d's listing and inode.
func (b *builder) writeDir(d *tree.Node, parent uint32) error {
	di := b.nodes[d]
	for _, c := range d.Children {
		ci := b.nodes[c]
		switch {
		case c.Kind == tree.Dir:
			if err := b.writeDir(c, di.num); err != nil {
				return err
			}
		case c.Link == nil:
			b.writeLeaf(ci)
		case !ci.written:
			return fmt.Errorf("%s: hard link target %s comes later in the tree", displayPath(c), displayPath(c.Link))
		}
	}

	// The listing: runs of up to 256 entries, each run sharing one inode
	// metadata block and an inode number base within ±32767; a new run
	// also starts where the listing enters a new metadata block, so the
	// directory index can point at it.
	le := binary.LittleEndian
	startRef := b.dirs.ref()
	startTotal := b.dirs.total
	var index []dirIndex
	lastBlock := startTotal / metaSize
	kids := d.Children
	for i := 0; i < len(kids); {
		first := b.nodes[kids[i]]
		hblock := first.ref >> 16
		base := first.num
		hdrPos := b.dirs.total
		pos := hdrPos + 12
		j := i
		for j < len(kids) && j-i < 256 {
			e := b.nodes[kids[j]]
			delta := int64(e.num) - int64(base)
			if e.ref>>16 != hblock || delta < math.MinInt16 || delta > math.MaxInt16 {
				break
			}
			if j > i && pos/metaSize != hdrPos/metaSize {
				break
			}
			pos += 8 + int64(len(kids[j].Name))
			j++
		}
		if hdrPos/metaSize != lastBlock {
			index = append(index, dirIndex{
				index: uint32(hdrPos - startTotal),
				start: uint32(b.dirs.ref() >> 16),
				name:  kids[i].Name,
			})
			lastBlock = hdrPos / metaSize
		}
		rec := le.AppendUint32(b.scratch[:0], uint32(j-i-1))
		rec = le.AppendUint32(rec, uint32(hblock))
		rec = le.AppendUint32(rec, base)
		for k := i; k < j; k++ {
			c := kids[k]
			e := b.nodes[c]
			rec = le.AppendUint16(rec, uint16(e.ref&0xffff))
			rec = le.AppendUint16(rec, uint16(int16(int64(e.num)-int64(base))))
			rec = le.AppendUint16(rec, basicType(c.Kind))
			rec = le.AppendUint16(rec, uint16(len(c.Name)-1))
			rec = append(rec, c.Name...)
		}
		b.dirs.write(rec)
		b.scratch = rec
		i = j
	}
	listing := b.dirs.total - startTotal
	fileSize := listing + 3
	if fileSize > math.MaxUint32 {
		return fmt.Errorf("%s: directory listing too large", displayPath(d))
	}
	blk, off := uint32(startRef>>16), uint16(startRef&0xffff)
	nlink := nlinkOf(d)
	var buf []byte
	if len(index) == 0 && di.xattr == noXattr && fileSize <= math.MaxUint16 {
		buf = b.header(nil, typeDir, di)
		buf = le.AppendUint32(buf, blk)
		buf = le.AppendUint32(buf, nlink)
		buf = le.AppendUint16(buf, uint16(fileSize))
		buf = le.AppendUint16(buf, off)
		buf = le.AppendUint32(buf, parent)
	} else {
		if len(index) > math.MaxUint16 {
			return fmt.Errorf("%s: directory too large", displayPath(d))
		}
		buf = b.header(nil, typeDir+extended, di)
		buf = le.AppendUint32(buf, nlink)
		buf = le.AppendUint32(buf, uint32(fileSize))
		buf = le.AppendUint32(buf, blk)
		buf = le.AppendUint32(buf, parent)
		buf = le.AppendUint16(buf, uint16(len(index)))
		buf = le.AppendUint16(buf, off)
		buf = le.AppendUint32(buf, di.xattr)
		for _, x := range index {
			buf = le.AppendUint32(buf, x.index)
			buf = le.AppendUint32(buf, x.start)
			buf = le.AppendUint32(buf, uint32(len(x.name)-1))
			buf = append(buf, x.name...)
		}
	}
	b.putInode(di, buf)
	return nil
}

// dataOrder returns the regular files in the order their data is written:
// files of at least one block in tree order, then the small files that go
// into fragment blocks, grouped by extension and name so that similar
// contents share a fragment block and compress together.
func (b *builder) dataOrder() []*inode {
	var large, small []*inode
	for _, in := range b.regular {
		if in.n.Size >= int64(b.bs) || b.opts.NoFragments {
			large = append(large, in)
		} else {
			small = append(small, in)
		}
	}
	type keyed struct {
		ext, name string
		in        *inode
	}
	ks := make([]keyed, len(small))
	for i, in := range small {
		name := in.n.Name
		ext := name
		if i := strings.LastIndexByte(name, '.'); i > 0 {
			ext = name[i:]
		}
		ks[i] = keyed{ext, name, in}
	}
	sort.SliceStable(ks, func(i, j int) bool {
		if ks[i].ext != ks[j].ext {
			return ks[i].ext < ks[j].ext
		}
		return ks[i].name < ks[j].name
	})
	for _, k := range ks {
		large = append(large, k.in)
	}
	return large
}
