package squashfs

import (
	"encoding/binary"
	"fmt"

	"github.com/klauspost/compress/zlib"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
)

// Compressor identifiers of the superblock.
const (
	compGzip = 1
	compXZ   = 4
	compLZ4  = 5
	compZstd = 6
)

// codec describes one compression method: its superblock id, the effective
// level, the compressor-options record and a factory for per-goroutine
// compressors.
type codec struct {
	id      uint16
	name    string
	level   int
	options []byte
	new     func() (compressor, error)
}

// compressor compresses one block. Implementations are not safe for
// concurrent use; every worker owns one.
type compressor interface {
	// compress appends the compressed form of src to dst[:0] and returns it.
	compress(dst, src []byte) ([]byte, error)
}

// Default levels. gzip and zstd follow mksquashfs (9 and 15); for zstd the
// level is mapped onto the encoder's four speed classes.
const (
	defaultGzipLevel = 9
	defaultZstdLevel = 15
)

// Compressions are the Options.Compression values Write implements; ""
// means "gzip".
var Compressions = []string{"gzip", "xz", "zstd", "lz4"}

// CheckCompression reports whether Write accepts Options.Compression name
// with Options.Level level.
func CheckCompression(name string, level int) error {
	_, err := newCodec(name, level, 131072)
	return err
}

func newCodec(name string, level, blockSize int) (*codec, error) {
	switch name {
	case "", "gzip":
		if level == 0 {
			level = defaultGzipLevel
		}
		if level < 1 || level > 9 {
			return nil, fmt.Errorf("gzip level %d out of range 1..9", level)
		}
		// level u32, window size u16 (15), strategies u16 (none = default).
		opts := binary.LittleEndian.AppendUint32(nil, uint32(level))
		opts = binary.LittleEndian.AppendUint16(opts, 15)
		opts = binary.LittleEndian.AppendUint16(opts, 0)
		return &codec{id: compGzip, name: "gzip", level: level, options: opts, new: func() (compressor, error) {
			return newZlib(level)
		}}, nil
	case "xz":
		if level != 0 {
			return nil, fmt.Errorf("xz takes no level (got %d)", level)
		}
		// dictionary size u32, filters u32. The kernel preallocates a
		// dictionary of this size and rejects streams that need more, so
		// the encoder's dictionary is the block size exactly.
		opts := binary.LittleEndian.AppendUint32(nil, uint32(blockSize))
		opts = binary.LittleEndian.AppendUint32(opts, 0)
		return &codec{id: compXZ, name: "xz", options: opts, new: func() (compressor, error) {
			return newXZ(blockSize)
		}}, nil
	case "zstd":
		if level == 0 {
			level = defaultZstdLevel
		}
		if level < 1 || level > 22 {
			return nil, fmt.Errorf("zstd level %d out of range 1..22", level)
		}
		opts := binary.LittleEndian.AppendUint32(nil, uint32(level))
		return &codec{id: compZstd, name: "zstd", level: level, options: opts, new: func() (compressor, error) {
			return newZstd(level, blockSize)
		}}, nil
	case "lz4":
		// level 0 = plain LZ4, 1..9 = LZ4 HC with that depth.
		if level < 0 || level > 9 {
			return nil, fmt.Errorf("lz4 level %d out of range 0..9", level)
		}
		// version u32 (1), flags u32 (1 = high compression).
		var flags uint32
		if level > 0 {
			flags = 1
		}
		opts := binary.LittleEndian.AppendUint32(nil, 1)
		opts = binary.LittleEndian.AppendUint32(opts, flags)
		return &codec{id: compLZ4, name: "lz4", level: level, options: opts, new: func() (compressor, error) {
			return &lz4Comp{level: level}, nil
		}}, nil
	}
	return nil, fmt.Errorf("unknown compression %q (want gzip, xz, zstd or lz4)", name)
}

// zlibComp writes zlib streams, which is what squashfs calls "gzip".
type zlibComp struct {
	buf sliceWriter
	w   *zlib.Writer
}

// sliceWriter is an io.Writer appending to a byte slice.
type sliceWriter struct{ b []byte }

func (s *sliceWriter) Write(p []byte) (int, error) {
	s.b = append(s.b, p...)
	return len(p), nil
}

func newZlib(level int) (*zlibComp, error) {
	c := &zlibComp{}
	w, err := zlib.NewWriterLevel(&c.buf, level)
	if err != nil {
		return nil, err
	}
	c.w = w
	return c, nil
}

func (c *zlibComp) compress(dst, src []byte) ([]byte, error) {
	c.buf.b = dst[:0]
	c.w.Reset(&c.buf)
	if _, err := c.w.Write(src); err != nil {
		return nil, err
	}
	if err := c.w.Close(); err != nil {
		return nil, err
	}
	out := c.buf.b
	c.buf.b = nil
	return out, nil
}

// xzComp writes xz streams with a CRC32 check (the kernel's decoder supports
// only none and CRC32) and a dictionary no larger than the block size.
type xzComp struct {
	cfg xz.WriterConfig
	buf sliceWriter
}

func newXZ(blockSize int) (*xzComp, error) {
	c := &xzComp{cfg: xz.WriterConfig{DictCap: blockSize, CheckSum: xz.CRC32}}
	if err := c.cfg.Verify(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *xzComp) compress(dst, src []byte) ([]byte, error) {
	c.buf.b = dst[:0]
	w, err := c.cfg.NewWriter(&c.buf)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(src); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	out := c.buf.b
	c.buf.b = nil
	return out, nil
}

// lz4Comp writes raw LZ4 blocks (no frame), as the kernel expects.
type lz4Comp struct {
	level int
}

func (c *lz4Comp) compress(dst, src []byte) ([]byte, error) {
	n := lz4.CompressBlockBound(len(src))
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	dst = dst[:n]
	var m int
	var err error
	if c.level > 0 {
		m, err = lz4.CompressBlockHC(src, dst, lz4.CompressionLevel(1<<(8+c.level)), nil, nil)
	} else {
		m, err = lz4.CompressBlock(src, dst, nil)
	}
	if err != nil {
		return nil, err
	}
	if m == 0 {
		// Incompressible: report a result no smaller than the input so
		// the caller stores the block uncompressed.
		return append(dst[:0], src...), nil
	}
	return dst[:m], nil
}
