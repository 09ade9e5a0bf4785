//go:build !cgo

package squashfs

import "github.com/klauspost/compress/zstd"

// zstdComp writes single-segment zstd frames with klauspost/compress: the
// frame content size stands in for the window, which therefore never
// exceeds the block size the kernel sizes its decoder for. This is the
// build without cgo; its images are 2-7% larger than mksquashfs's, whose
// libzstd has better match finders than any pure-Go encoder (zstd_cgo.go).
type zstdComp struct {
	enc *zstd.Encoder
}

func newZstd(level, blockSize int) (*zstdComp, error) {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false),
		zstd.WithWindowSize(blockSize),
		zstd.WithSingleSegment(true),
		zstd.WithZeroFrames(true))
	if err != nil {
		return nil, err
	}
	return &zstdComp{enc: enc}, nil
}

func (c *zstdComp) compress(dst, src []byte) ([]byte, error) {
	return c.enc.EncodeAll(src, dst[:0]), nil
}
