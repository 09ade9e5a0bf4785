// Package erofs writes EROFS file-system images from a tree.Node, in pure Go.
//
// The image is what mkfs.erofs would write for the same tree without
// compression: 4096-byte blocks, compact (32-byte) inodes where the metadata
// allows and extended (64-byte) ones otherwise, file and directory tails
// packed behind their inode (FLAT_INLINE) when they fit in the metadata
// block, inline extended attributes, one inode per set of hard links, the
// volume UUID and label, and a crc32c superblock checksum (SB_CHKSUM).
// fsck.erofs accepts the images and the kernel mounts them.
//
// Layout: block 0 holds the superblock at byte 1024; the metadata area
// starts right after it (meta_blkaddr 0, so the root, placed first, has nid
// 36). Each inode with its xattrs and inline tail is packed best-fit into
// the metadata blocks; the data blocks of files and large directories follow
// the metadata area in nid order. The whole layout is computed from the
// tree's metadata before a byte is written, then both areas are written
// front to back: file contents are streamed once from their host files into
// their final place and never held in memory, and on an *os.File
// destination large files are copied in the kernel (copy_file_range).
// Output depends only on the tree and Options.
//
// Why not github.com/erofs/go-erofs (v0.3.1, the writer apko uses): its
// Writer takes an io.WriteSeeker and spools every file's data into a
// temporary file before copying it into the image (all data written twice),
// maps regular files as chunk-based inodes, writes neither the UUID nor
// the superblock checksum, and gives each name its own inode (SetNlink only
// patches the count) so hard links are not shared. Extending it means
// forking its internal packages. What sxb needs (flat layout computed up
// front from a tree whose sizes are known, positional writes into an
// io.WriterAt so the file system can be placed inside a disk image) is a
// small amount of code; the on-disk facts come from linux
// fs/erofs/erofs_fs.h.
package erofs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/sxb-build/sxb/builtins/tree"
)

// BlockSize is the file-system block size of the images Write produces.
const BlockSize = 4096

// Options control the superblock and the data encoding of an image.
type Options struct {
	// UUID is the volume UUID stored in the superblock.
	UUID [16]byte
	// VolumeName is the volume label, at most 16 bytes.
	VolumeName string
	// Epoch is SOURCE_DATE_EPOCH: the superblock build time in seconds
	// since the epoch; inodes whose mtime equals it use the compact
	// on-disk form.
	Epoch int64
	// Compression names the data compression: "" or "none" store file
	// data uncompressed. Other values are refused for now.
	Compression string
}

// Compressions are the Options.Compression values Write implements; ""
// means "none".
var Compressions = []string{"none"}

// ErrUnsupportedCompression is returned (wrapped) for a Compression value
// Write does not implement.
var ErrUnsupportedCompression = errors.New("unsupported erofs compression")

// On-disk constants from linux fs/erofs/erofs_fs.h.
const (
	blockBits    = 12
	superOffset  = 1024
	superSize    = 128
	superMagic   = 0xE0F5E1E2
	compatChksum = 0x1

	layoutFlatPlain  = 0
	layoutFlatInline = 2

	compactSize  = 32
	extendedSize = 64
	direntSize   = 12
	maxNameLen   = 255
	maxSymlink   = 4095
	slotSize     = 32 // nid granularity
)

// encoder decides how the data of one inode is laid out. It is the seam for
// compressed layouts: an lz4 encoder would return a compressed layout and
// produce its cluster index while streaming. Only the flat encoder exists.
type encoder interface {
	// flat reports whether data is stored uncompressed (FLAT_PLAIN or
	// FLAT_INLINE), the only layout implemented.
	flat() bool
}

type plainEncoder struct{}

func (plainEncoder) flat() bool { return true }

func newEncoder(name string) (encoder, error) {
	switch name {
	case "", "none":
		return plainEncoder{}, nil
	}
	return nil, fmt.Errorf("erofs: compression %q: %w (supported: none)", name, ErrUnsupportedCompression)
}

// Write writes an erofs file system holding the tree root at offset 0 of w
// and returns its size in bytes, a multiple of BlockSize. The same tree and
// options always give the same bytes.
func Write(w io.WriterAt, root *tree.Node, opts Options) (size int64, err error) {
	enc, err := newEncoder(opts.Compression)
	if err != nil {
		return 0, err
	}
	if len(opts.VolumeName) > 16 {
		return 0, fmt.Errorf("erofs: volume name %q is longer than 16 bytes", opts.VolumeName)
	}
	img, err := plan(root, opts, enc)
	if err != nil {
		return 0, err
	}
	if err := img.write(w); err != nil {
		return 0, err
	}
	return int64(img.blocks) * BlockSize, nil
}

// superblock fills the superblock into block 0 and sets its checksum.
func (img *image) superblock(block0 []byte) {
	sb := block0[superOffset : superOffset+superSize]
	le := binary.LittleEndian
	le.PutUint32(sb[0:], superMagic)
	le.PutUint32(sb[8:], compatChksum)
	sb[12] = blockBits
	le.PutUint16(sb[14:], uint16(img.inodes[0].nid))
	le.PutUint64(sb[16:], uint64(len(img.inodes)))
	le.PutUint64(sb[24:], uint64(img.opts.Epoch))
	le.PutUint32(sb[36:], img.blocks)
	// meta_blkaddr and xattr_blkaddr stay 0.
	copy(sb[48:64], img.opts.UUID[:])
	copy(sb[64:80], img.opts.VolumeName)
	// The kernel computes crc32c(~0, ...) over the rest of block 0 with the
	// checksum field zeroed and without the final inversion.
	le.PutUint32(sb[4:], 0)
	crc := ^crc32.Checksum(block0[superOffset:], crc32.MakeTable(crc32.Castagnoli))
	le.PutUint32(sb[4:], crc)
}
