package inspect

import (
	"errors"
	"fmt"
)

// ErrCompressedErofs is returned (wrapped) for the content of an erofs
// inode stored with a compressed layout, which the reader cannot decode
// yet.
var ErrCompressedErofs = errors.New("compressed erofs is not readable yet")

// compressedData is the seam for compressed erofs layouts (1: full
// indexes, 3: compact indexes). A decompressor returns an erofsData whose
// ReadAt yields the logical (decompressed) bytes of the inode, e.g. by
// decoding the physical cluster that covers an offset, and whose extent
// reports one decompressed extent at a time; everything above it — Extract,
// ReadFile, symlink targets, directories — then works unchanged. The
// superblock's compression settings (erofsComprCfgs, erofsZTailPacking,
// erofsFragments, the packed inode) are already accepted by openErofs.
func (e *erofsFS) compressedData(in *erofsInode) (erofsData, error) {
	return nil, fmt.Errorf("erofs: inode %d (data layout %d): %w", in.nid, in.layout, ErrCompressedErofs)
}
