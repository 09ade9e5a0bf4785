package sysupdate

import (
	"bufio"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/sxb-build/sxb/internal/atomicfile"
)

// Suffix returns the file suffix of a compression ("zst" for "zstd", "xz"
// for "xz"), or an error naming the ones supported.
func Suffix(alg string) (string, error) {
	switch alg {
	case "zstd":
		return "zst", nil
	case "xz":
		return "xz", nil
	}
	return "", fmt.Errorf("compression %q is not supported (want \"zstd\" or \"xz\")", alg)
}

// Compress writes r compressed with alg ("zstd" or "xz") to w. Both
// encoders run single-threaded with fixed settings (zstd's default level,
// xz's 8 MiB dictionary and CRC64 check), so the same input always gives the
// same bytes. systemd-pull, which systemd-sysupdate downloads with,
// decompresses xz (and, after systemd 257, zstd).
func Compress(w io.Writer, r io.Reader, alg string) error {
	switch alg {
	case "zstd":
		zw, err := zstd.NewWriter(w, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
		if err != nil {
			return err
		}
		if _, err := io.Copy(zw, r); err != nil {
			zw.Close()
			return err
		}
		return zw.Close()
	case "xz":
		xw, err := xz.WriterConfig{CheckSum: xz.CRC64}.NewWriter(w)
		if err != nil {
			return err
		}
		if _, err := io.Copy(xw, r); err != nil {
			xw.Close()
			return err
		}
		return xw.Close()
	}
	_, err := Suffix(alg)
	return err
}

// CompressFile writes the file src compressed with alg to dst, atomically.
func CompressFile(src, dst, alg string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("compressing: %w", err)
	}
	defer in.Close()
	err = atomicfile.WriteFunc(dst, 0o644, func(f io.Writer) error {
		bw := bufio.NewWriterSize(f, 1<<20)
		if err := Compress(bw, bufio.NewReaderSize(in, 1<<20), alg); err != nil {
			return err
		}
		return bw.Flush()
	})
	if err != nil {
		return fmt.Errorf("compressing %s: %w", src, err)
	}
	return nil
}
