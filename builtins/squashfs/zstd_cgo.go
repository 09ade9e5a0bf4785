//go:build cgo

package squashfs

import (
	"fmt"

	"github.com/DataDog/zstd"
)

// zstdComp compresses blocks with libzstd (github.com/DataDog/zstd, which
// builds its bundled copy), as mksquashfs does: ZSTD_compressCCtx at the
// given level, one frame per block with its content size, so images are
// exactly as small as mksquashfs's. The pure-Go encoder of the build
// without cgo (zstd_nocgo.go) makes them 2-7% larger: at levels above 10
// libzstd's binary-tree and optimal parsers find matches klauspost/compress
// does not. Each binary's action keys include its own digest, so builds
// with and without cgo never share cached images.
type zstdComp struct {
	ctx   zstd.Ctx
	level int
}

func newZstd(level, blockSize int) (*zstdComp, error) {
	return &zstdComp{ctx: zstd.NewCtx(), level: level}, nil
}

func (c *zstdComp) compress(dst, src []byte) ([]byte, error) {
	if n := zstd.CompressBound(len(src)); cap(dst) < n {
		dst = make([]byte, n)
	}
	out, err := c.ctx.CompressLevel(dst[:cap(dst)], src, c.level)
	if err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	return out, nil
}
