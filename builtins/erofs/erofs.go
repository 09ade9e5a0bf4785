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
	// Compression names the data compression as mkfs.erofs's -z does:
	// "" or "none" store file data uncompressed, otherwise one of
	// Compressions, optionally followed by ",level" (lz4hc 1..12, default
	// 9; zstd 1..22, default 3; deflate 1..9, default 1; lzma 0..9 or
	// 100..109, default 6; lz4 takes none).
	Compression string
}

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

	layoutFlatPlain         = 0
	layoutFlatInline        = 2
	layoutCompressedCompact = 3

	incompatZeroPadding = 0x1
	incompatComprCfgs   = 0x2
	lz4MaxDistance      = 65535

	compactSize  = 32
	extendedSize = 64
	direntSize   = 12
	maxNameLen   = 255
	maxSymlink   = 4095
	slotSize     = 32 // nid granularity
)

// Write writes an erofs file system holding the tree root at offset 0 of w
// and returns its size in bytes, a multiple of BlockSize. The same tree and
// options always give the same bytes.
func Write(w io.WriterAt, root *tree.Node, opts Options) (size int64, err error) {
	alg, level, err := ParseCompression(opts.Compression)
	if err != nil {
		return 0, err
	}
	c, err := newCodec(alg, level)
	if err != nil {
		return 0, err
	}
	if len(opts.VolumeName) > 16 {
		return 0, fmt.Errorf("erofs: volume name %q is longer than 16 bytes", opts.VolumeName)
	}
	img, err := plan(root, opts, c)
	if err != nil {
		return 0, err
	}
	dataEnd := uint32(0)
	if c != nil {
		if dataEnd, err = img.compressFiles(w, 1); err != nil {
			return 0, err
		}
	}
	if err := img.place(dataEnd); err != nil {
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
	le.PutUint32(sb[40:], img.metaBlk)
	// xattr_blkaddr stays 0.
	copy(sb[48:64], img.opts.UUID[:])
	copy(sb[64:80], img.opts.VolumeName)
	if c := img.codec; c != nil {
		incompat := uint32(incompatZeroPadding)
		if c.cfg != nil {
			// A bitmap of the algorithms in use, then one record per
			// algorithm (length-prefixed, 4-byte aligned) right after
			// the superblock.
			incompat |= incompatComprCfgs
			le.PutUint16(sb[84:], 1<<c.alg)
			rec := block0[superOffset+superSize:]
			le.PutUint16(rec, uint16(len(c.cfg)))
			copy(rec[2:], c.cfg)
		} else {
			le.PutUint16(sb[84:], lz4MaxDistance)
		}
		le.PutUint32(sb[80:], incompat)
	}
	// The kernel computes crc32c(~0, ...) over the rest of block 0 with the
	// checksum field zeroed and without the final inversion.
	le.PutUint32(sb[4:], 0)
	crc := ^crc32.Checksum(block0[superOffset:], crc32.MakeTable(crc32.Castagnoli))
	le.PutUint32(sb[4:], crc)
}
