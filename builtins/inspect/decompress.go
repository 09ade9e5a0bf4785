package inspect

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
)

// decompressor inflates squashfs blocks. Every implementation refuses a
// block that inflates to more than max bytes (it would be corrupt, or a
// decompression bomb) without producing more than max+1 bytes.
type decompressor interface {
	// decompress appends the inflated src to dst[:0] and returns it.
	decompress(dst, src []byte, max int) ([]byte, error)
}

func newDecompressor(name string) (decompressor, error) {
	switch name {
	case "gzip":
		return &zlibDec{}, nil
	case "xz":
		return xzDec{}, nil
	case "lz4":
		return lz4Dec{}, nil
	case "zstd":
		return &zstdDec{}, nil
	}
	return nil, fmt.Errorf("squashfs: compression %s is not supported", name)
}

// readBounded reads r to its end into dst, failing beyond max bytes.
func readBounded(dst []byte, r io.Reader, max int) ([]byte, error) {
	if cap(dst) < max+1 {
		dst = make([]byte, 0, max+1)
	}
	b := dst[:max+1]
	n, err := io.ReadFull(r, b)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return b[:n], nil
	case err != nil:
		return nil, err
	}
	return nil, fmt.Errorf("block inflates beyond %d bytes", max)
}

// zlibDec reads zlib streams, which squashfs calls gzip.
type zlibDec struct{ r io.ReadCloser }

func (z *zlibDec) decompress(dst, src []byte, max int) ([]byte, error) {
	var err error
	if z.r == nil {
		z.r, err = zlib.NewReader(bytes.NewReader(src))
	} else {
		err = z.r.(zlib.Resetter).Reset(bytes.NewReader(src), nil)
	}
	if err != nil {
		z.r = nil
		return nil, fmt.Errorf("gzip: %w", err)
	}
	out, err := readBounded(dst, z.r, max)
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return out, nil
}

type xzDec struct{}

func (xzDec) decompress(dst, src []byte, max int) ([]byte, error) {
	// The dictionary is bounded by the largest squashfs block.
	r, err := xz.ReaderConfig{DictCap: 1 << 20}.NewReader(bytes.NewReader(src))
	if err != nil {
		return nil, fmt.Errorf("xz: %w", err)
	}
	out, err := readBounded(dst, r, max)
	if err != nil {
		return nil, fmt.Errorf("xz: %w", err)
	}
	return out, nil
}

type lz4Dec struct{}

func (lz4Dec) decompress(dst, src []byte, max int) ([]byte, error) {
	if cap(dst) < max {
		dst = make([]byte, max)
	}
	n, err := lz4.UncompressBlock(src, dst[:max])
	if err != nil {
		return nil, fmt.Errorf("lz4: %w", err)
	}
	return dst[:n], nil
}

// zstdDec keeps one decoder per image, its window and output bounded by
// the largest block squashfs allows.
type zstdDec struct{ d *zstd.Decoder }

func (z *zstdDec) decompress(dst, src []byte, max int) ([]byte, error) {
	if z.d == nil {
		var err error
		if z.d, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(1<<20), zstd.WithDecoderMaxMemory(1<<20)); err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
	}
	out, err := z.d.DecodeAll(src, dst[:0])
	if err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	if len(out) > max {
		return nil, fmt.Errorf("zstd: block inflates beyond %d bytes", max)
	}
	return out, nil
}
