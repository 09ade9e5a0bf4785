package erofs

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/sxb-build/sxb/builtins/tree"
)

// File types of directory entries and mode type bits.
const (
	ftReg     = 1
	ftDir     = 2
	ftChrdev  = 3
	ftBlkdev  = 4
	ftFifo    = 5
	ftSock    = 6
	ftSymlink = 7

	sIFREG  = 0o100000
	sIFDIR  = 0o040000
	sIFLNK  = 0o120000
	sIFCHR  = 0o020000
	sIFBLK  = 0o060000
	sIFIFO  = 0o010000
	sIFSOCK = 0o140000
)

// inode is one on-disk inode: the node that carries its metadata and
// content (the first name of a set of hard links) plus its placement.
type inode struct {
	node     *tree.Node
	mode     uint16
	ftype    uint8
	nlink    uint32
	size     uint64
	rdev     uint32
	extended bool
	xattrs   []byte // inline xattr body (header and entries), or nil

	layout     uint8
	nid        uint64
	ino        uint32
	blkaddr    uint32
	dataBlocks uint64 // blocks of data outside the metadata area
	inline     int    // tail bytes stored right after the inode
	dir        *dirInfo

	// Set by compressFiles for the regular files it stored: their data
	// is written already (prewritten), a flat file's inline tail is in
	// tail, a compressed file's map header and indexes in zmeta and its
	// block count in zblocks.
	prewritten bool
	tail       []byte
	zmeta      []byte
	zblocks    uint32
}

type dirEnt struct {
	name string
	ino  *inode
}

// dirInfo is a directory's sorted entries (with "." and "..") and the index
// of the first entry of each directory block.
type dirInfo struct {
	ents   []dirEnt
	starts []int
}

// image is the complete layout of a file system before it is written.
//
// Uncompressed images put the metadata area first (sharing block 0 with the
// superblock) and the data after it. Compressed images put the data first
// (see compressFiles) and the metadata area last, at metaBlk.
type image struct {
	opts      Options
	codec     *codec   // nil: uncompressed
	inodes    []*inode // in tree walk order
	order     []*inode // by nid
	dataStart uint32   // first block of the data place assigns
	metaBlk   uint32   // first block of the metadata area
	blocks    uint32   // total blocks
}

// baseSize is the size of the on-disk inode and its inline xattrs.
func (ino *inode) baseSize() int {
	n := compactSize
	if ino.extended {
		n = extendedSize
	}
	return n + len(ino.xattrs)
}

// metaSize is the metadata an inode takes besides an inline tail.
func (ino *inode) metaSize() int {
	if ino.zmeta != nil {
		return alignUp8(ino.baseSize()) + len(ino.zmeta)
	}
	return ino.baseSize()
}

func plan(root *tree.Node, opts Options, c *codec) (*image, error) {
	if root == nil || root.Kind != tree.Dir {
		return nil, fmt.Errorf("erofs: the root of the tree must be a directory")
	}
	img := &image{opts: opts, codec: c}
	byNode := map[*tree.Node]*inode{}
	err := root.Walk(func(n *tree.Node) error {
		if n.Link != nil {
			return nil
		}
		ino, err := newInode(n)
		if err != nil {
			return fmt.Errorf("erofs: %s: %w", displayPath(n), err)
		}
		ino.ino = uint32(len(img.inodes) + 1)
		img.inodes = append(img.inodes, ino)
		byNode[n] = ino
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(img.inodes) > math.MaxUint32-1 {
		return nil, fmt.Errorf("erofs: too many inodes (%d)", len(img.inodes))
	}
	if err := img.linkDir(root, byNode[root], byNode[root], byNode); err != nil {
		return nil, err
	}
	for _, ino := range img.inodes {
		n := ino.node
		ino.extended = n.UID > math.MaxUint16 || n.GID > math.MaxUint16 ||
			ino.nlink > math.MaxUint16 || ino.size > math.MaxUint32 ||
			n.Mtime != opts.Epoch
	}
	return img, nil
}

func displayPath(n *tree.Node) string {
	if n.Path == "" && n.Parent == nil {
		return "/"
	}
	if n.Path == "" {
		return n.Name
	}
	return n.Path
}

func newInode(n *tree.Node) (*inode, error) {
	if n.Mode&^0o7777 != 0 {
		return nil, fmt.Errorf("mode %#o has bits outside 07777", n.Mode)
	}
	ino := &inode{node: n}
	var typ uint16
	switch n.Kind {
	case tree.Regular:
		if n.Size < 0 {
			return nil, fmt.Errorf("negative size %d", n.Size)
		}
		typ, ino.ftype, ino.size = sIFREG, ftReg, uint64(n.Size)
	case tree.Dir:
		typ, ino.ftype, ino.dir = sIFDIR, ftDir, &dirInfo{}
	case tree.Symlink:
		if n.Target == "" || len(n.Target) > maxSymlink || strings.IndexByte(n.Target, 0) >= 0 {
			return nil, fmt.Errorf("invalid symlink target %q", n.Target)
		}
		typ, ino.ftype, ino.size = sIFLNK, ftSymlink, uint64(len(n.Target))
	case tree.CharDev, tree.BlockDev:
		typ, ino.ftype = sIFCHR, ftChrdev
		if n.Kind == tree.BlockDev {
			typ, ino.ftype = sIFBLK, ftBlkdev
		}
		major, minor := tree.Major(n.Rdev), tree.Minor(n.Rdev)
		if major > 0xfff || minor > 0xfffff {
			return nil, fmt.Errorf("device number %d:%d does not fit in 32 bits", major, minor)
		}
		// new_encode_dev, as the kernel's new_decode_dev reads it back.
		ino.rdev = minor&0xff | major<<8 | (minor&^0xff)<<12
	case tree.FIFO:
		typ, ino.ftype = sIFIFO, ftFifo
	case tree.Socket:
		typ, ino.ftype = sIFSOCK, ftSock
	default:
		return nil, fmt.Errorf("unsupported node kind %v", n.Kind)
	}
	ino.mode = typ | uint16(n.Mode)
	x, err := encodeXattrs(n.Xattrs)
	if err != nil {
		return nil, err
	}
	ino.xattrs = x
	return ino, nil
}

// linkDir fills the entries of directory n (inode d, parent inode p), counts
// links and recurses into subdirectories.
func (img *image) linkDir(n *tree.Node, d, p *inode, byNode map[*tree.Node]*inode) error {
	ents := make([]dirEnt, 0, len(n.Children)+2)
	ents = append(ents, dirEnt{".", d}, dirEnt{"..", p})
	d.nlink = 2
	for _, c := range n.Children {
		if err := checkName(c.Name); err != nil {
			return fmt.Errorf("erofs: %s: %w", displayPath(c), err)
		}
		owner := c
		if c.Link != nil {
			owner = c.Link
			if owner.Link != nil || owner.Kind != c.Kind || c.Kind == tree.Dir {
				return fmt.Errorf("erofs: %s: invalid hard link to %s", displayPath(c), displayPath(owner))
			}
		}
		ci := byNode[owner]
		if ci == nil {
			return fmt.Errorf("erofs: %s: hard link target %s is not in the tree", displayPath(c), displayPath(owner))
		}
		ents = append(ents, dirEnt{c.Name, ci})
		if c.Kind == tree.Dir {
			d.nlink++
		} else {
			ci.nlink++
		}
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].name < ents[j].name })
	for i := 1; i < len(ents); i++ {
		if ents[i].name == ents[i-1].name {
			return fmt.Errorf("erofs: %s: duplicate entry %q", displayPath(n), ents[i].name)
		}
	}
	// Pack entries into blocks: each block holds its dirents, then their
	// names; an entry never straddles two blocks.
	di := d.dir
	di.ents = ents
	used := 0
	for i, e := range ents {
		need := direntSize + len(e.name)
		if i == 0 || used+need > BlockSize {
			di.starts = append(di.starts, i)
			used = 0
		}
		used += need
	}
	d.size = uint64(len(di.starts)-1)*BlockSize + uint64(used)
	for _, c := range n.Children {
		if c.Kind == tree.Dir {
			if err := img.linkDir(c, byNode[c], d, byNode); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("invalid file name %q", name)
	case len(name) > maxNameLen:
		return fmt.Errorf("file name longer than %d bytes", maxNameLen)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("file name %q contains '/' or NUL", name)
	}
	return nil
}

// place assigns every inode its nid, data layout and data blocks. dataEnd
// is the block after the data compressFiles wrote (0 for an uncompressed
// image).
//
// Each inode with its xattrs and inline tail is one item of at most a
// block; items are packed best-fit into the metadata blocks (the fullest
// block with room), so tails cost almost no padding, as erofs-utils packs
// them. Items larger than a block (huge xattrs) start a fresh block and keep
// their tail in a data block. Inodes are then written, and their data
// blocks allocated, in nid order, so both areas are written front to back.
func (img *image) place(dataEnd uint32) error {
	var p packer
	if img.codec == nil {
		p.open(0, BlockSize-(superOffset+superSize))
		p.blocks = 1
	}
	for _, ino := range img.inodes {
		meta := int64(ino.metaSize())
		if !ino.prewritten && ino.zmeta == nil {
			ino.layout = layoutFlatPlain
			ino.dataBlocks = (ino.size + BlockSize - 1) / BlockSize
			if tail := int64(ino.size % BlockSize); tail > 0 && meta+tail <= BlockSize {
				// FLAT_INLINE: the tail follows the xattrs within the block.
				ino.layout = layoutFlatInline
				ino.inline = int(tail)
				ino.dataBlocks = ino.size / BlockSize
			}
		}
		ino.nid = uint64(p.alloc(meta+int64(ino.inline)) / slotSize)
	}
	if img.inodes[0].nid > math.MaxUint16 {
		return fmt.Errorf("erofs: root nid %d does not fit the superblock", img.inodes[0].nid)
	}
	img.order = slices.Clone(img.inodes)
	slices.SortFunc(img.order, func(a, b *inode) int { return cmp.Compare(a.nid, b.nid) })
	next := uint64(dataEnd)
	if img.codec == nil {
		next = uint64(p.blocks)
	}
	img.dataStart = uint32(next)
	for _, ino := range img.order {
		if ino.dataBlocks > 0 && !ino.prewritten {
			ino.blkaddr = uint32(next)
			next += ino.dataBlocks
		}
	}
	total := next
	if img.codec != nil {
		img.metaBlk = uint32(next)
		total += uint64(p.blocks)
	}
	if total > math.MaxUint32 {
		return fmt.Errorf("erofs: image exceeds %d blocks", uint64(math.MaxUint32))
	}
	img.blocks = uint32(total)
	return nil
}

// offset is the byte position of the inode in the image.
func (img *image) offset(ino *inode) int64 {
	return int64(img.metaBlk)*BlockSize + int64(ino.nid)*slotSize
}

// packer hands out 32-byte aligned space in metadata blocks. bins[k] holds
// the blocks with k free slots, most recently filled last.
type packer struct {
	bins   [BlockSize/slotSize + 1][]uint32
	blocks uint32 // metadata blocks in use
}

func (p *packer) open(blk uint32, free int64) {
	if k := free / slotSize; k > 0 {
		p.bins[k] = append(p.bins[k], blk)
	}
}

// alloc returns the image offset of size bytes of metadata.
func (p *packer) alloc(size int64) int64 {
	size = alignUp(size, slotSize)
	if size > BlockSize {
		blk := p.blocks
		p.blocks += uint32((size + BlockSize - 1) / BlockSize)
		p.open(p.blocks-1, int64(p.blocks-blk)*BlockSize-size)
		return int64(blk) * BlockSize
	}
	for k := size / slotSize; k < int64(len(p.bins)); k++ {
		if n := len(p.bins[k]); n > 0 {
			blk := p.bins[k][n-1]
			p.bins[k] = p.bins[k][:n-1]
			free := k * slotSize
			p.open(blk, free-size)
			return int64(blk)*BlockSize + BlockSize - free
		}
	}
	blk := p.blocks
	p.blocks++
	p.open(blk, BlockSize-size)
	return int64(blk) * BlockSize
}

func alignUp(v, a int64) int64 { return (v + a - 1) / a * a }

// header encodes the on-disk inode followed by its inline xattrs.
func (ino *inode) header(buf []byte) []byte {
	le := binary.LittleEndian
	n := ino.node
	icount := uint16(0)
	if len(ino.xattrs) > 0 {
		icount = uint16((len(ino.xattrs)-12)/4 + 1)
	}
	iu := ino.blkaddr
	switch {
	case ino.ftype == ftChrdev || ino.ftype == ftBlkdev:
		iu = ino.rdev
	case ino.zmeta != nil:
		iu = ino.zblocks
	}
	var b []byte
	if ino.extended {
		b = buf[:extendedSize]
		clear(b)
		le.PutUint16(b[0:], 1|uint16(ino.layout)<<1)
		le.PutUint16(b[2:], icount)
		le.PutUint16(b[4:], ino.mode)
		le.PutUint64(b[8:], ino.size)
		le.PutUint32(b[16:], iu)
		le.PutUint32(b[20:], ino.ino)
		le.PutUint32(b[24:], n.UID)
		le.PutUint32(b[28:], n.GID)
		le.PutUint64(b[32:], uint64(n.Mtime))
		le.PutUint32(b[44:], ino.nlink)
	} else {
		b = buf[:compactSize]
		clear(b)
		le.PutUint16(b[0:], uint16(ino.layout)<<1)
		le.PutUint16(b[2:], icount)
		le.PutUint16(b[4:], ino.mode)
		le.PutUint16(b[6:], uint16(ino.nlink))
		le.PutUint32(b[8:], uint32(ino.size))
		le.PutUint32(b[16:], iu)
		le.PutUint32(b[20:], ino.ino)
		le.PutUint16(b[24:], uint16(n.UID))
		le.PutUint16(b[26:], uint16(n.GID))
	}
	return append(b, ino.xattrs...)
}

// dirBytes encodes the directory's blocks; the last one is cut at its used
// length (the directory size).
func (di *dirInfo) bytes(size uint64) []byte {
	le := binary.LittleEndian
	b := make([]byte, size)
	for bi, start := range di.starts {
		end := len(di.ents)
		if bi+1 < len(di.starts) {
			end = di.starts[bi+1]
		}
		blk := b[bi*BlockSize:]
		nameOff := (end - start) * direntSize
		for i := start; i < end; i++ {
			e := di.ents[i]
			d := blk[(i-start)*direntSize:]
			le.PutUint64(d[0:], e.ino.nid)
			le.PutUint16(d[8:], uint16(nameOff))
			d[10] = e.ino.ftype
			nameOff += copy(blk[nameOff:], e.name)
		}
	}
	return b
}
