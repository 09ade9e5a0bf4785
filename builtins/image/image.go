// Package image writes extension images: it picks the partition layout
// (systemd-repart's sysext/confext definitions, or the caller's), the file
// system writers and the verity signing key, and hands them to the disk
// assembler. It is what `sxb build` and `sxb pack` share.
package image

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/sxb-build/sxb/builtins/disk"
	"github.com/sxb-build/sxb/builtins/erofs"
	"github.com/sxb-build/sxb/builtins/repart"
	"github.com/sxb-build/sxb/builtins/squashfs"
	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/builtins/verity"
	"github.com/sxb-build/sxb/internal/arch"
	"github.com/sxb-build/sxb/internal/suggest"
)

// Request describes an image to write.
type Request struct {
	// Kind is "sysext" or "confext"; it picks the default layout.
	Kind string
	// Format ("erofs" or "squashfs") and Verity ("off", "hash",
	// "signed", "defer") shape the default layout; ignored when Partitions
	// is set, except that "defer" also reserves the custom layout's
	// Verity=signature partitions unsigned (see JoinSignature).
	Format, Verity string
	// Compression applies to every partition that sets none itself.
	Compression string
	// KeyFile and CertFile sign the verity root hash (PEM files).
	KeyFile, CertFile string
	// Architecture picks the root/usr partition types; arch.None keeps
	// the host's.
	Architecture arch.Arch
	// Partitions is a custom layout; nil means the default one.
	Partitions []*repart.Partition
	// Seed derives every UUID and the verity salt (repart --seed).
	Seed [16]byte
	// Epoch is SOURCE_DATE_EPOCH.
	Epoch int64
}

// VerityModes are the values of Request.Verity.
var VerityModes = []string{"off", "hash", "signed", "defer"}

// Formats returns the file systems Build writes (repart Format= names),
// sorted.
func Formats() []string {
	return slices.Sorted(maps.Keys(FSWriters("")))
}

// Compressions returns the compressions the writer of format implements
// (the Compression= values it accepts besides "", its default).
func Compressions(format string) []string {
	switch format {
	case "erofs":
		return erofs.Compressions
	case "squashfs":
		return squashfs.Compressions
	}
	return nil
}

// CheckCompression reports whether the writer of format accepts
// compression ("" for its default; "ALG,LEVEL" as mkfs.erofs's -z takes it)
// with level (a partition's CompressionLevel=, "" for the default).
func CheckCompression(format, compression, level string) error {
	alg, lv, hasLevel := strings.Cut(compression, ",")
	if hasLevel && level == "" {
		level = lv
	}
	if alg != "" && !slices.Contains(Compressions(format), alg) {
		return fmt.Errorf("%q is not a %s compression (want one of %s)", alg, format, suggest.Quote(Compressions(format)))
	}
	n, err := compressionLevel(level)
	if err != nil {
		return err
	}
	switch format {
	case "erofs":
		if alg == "" || alg == "none" || level == "" {
			_, _, err := erofs.ParseCompression(alg)
			return err
		}
		_, _, err := erofs.ParseCompression(alg + "," + level)
		return err
	case "squashfs":
		return squashfs.CheckCompression(alg, n)
	}
	return nil
}

// compressionLevel reads a CompressionLevel= value; "" is 0 (the default).
func compressionLevel(s string) (int, error) {
	level := 0
	if s != "" {
		if _, err := fmt.Sscanf(s, "%d", &level); err != nil {
			return 0, fmt.Errorf("CompressionLevel=%s: not a number", s)
		}
	}
	return level, nil
}

// FSWriters returns the file-system writers by repart Format= name.
// compression is used where a partition sets no Compression=.
func FSWriters(compression string) map[string]disk.FSWriter {
	return map[string]disk.FSWriter{
		"erofs": func(w io.WriterAt, root *tree.Node, p disk.FSParams) (int64, error) {
			c := p.Compression
			if c == "" {
				c = compression
			}
			if p.CompressionLevel != "" && c != "" && !strings.Contains(c, ",") {
				c += "," + p.CompressionLevel // mkfs.erofs's -z alg,level
			}
			return erofs.Write(w, root, erofs.Options{UUID: p.UUID, Epoch: p.Epoch, Compression: c})
		},
		"squashfs": func(w io.WriterAt, root *tree.Node, p disk.FSParams) (int64, error) {
			c := p.Compression
			if c == "" {
				c = compression
			}
			c, lv, hasLevel := strings.Cut(c, ",") // sysext(compression = "zstd,19")
			if hasLevel && p.CompressionLevel == "" {
				p.CompressionLevel = lv
			}
			level, err := compressionLevel(p.CompressionLevel)
			if err != nil {
				return 0, err
			}
			return squashfs.Write(w, root, squashfs.Options{Compression: c, Level: level, Epoch: p.Epoch})
		},
	}
}

// Build writes the image for root to out (atomically) and describes it.
func Build(ctx context.Context, out string, root *tree.Node, req Request) (*disk.Result, error) {
	parts := req.Partitions
	if len(parts) == 0 {
		format := req.Format
		if format == "" {
			format = "erofs"
		}
		v := req.Verity
		if v == "" {
			v = "off"
		}
		var err error
		if parts, err = disk.DefaultLayout(req.Kind, format, v); err != nil {
			return nil, err
		}
	}
	var key crypto.Signer
	var cert *x509.Certificate
	deferSig := req.Verity == "defer"
	if !deferSig && (req.KeyFile != "" || req.CertFile != "") {
		if req.KeyFile == "" || req.CertFile == "" {
			return nil, fmt.Errorf("signing needs both a key and a certificate")
		}
		var err error
		if key, cert, err = verity.LoadKeyPair(req.KeyFile, req.CertFile); err != nil {
			return nil, err
		}
	}
	return disk.Build(ctx, out, root, parts, disk.Options{
		Seed: repart.ID128(req.Seed), Arch: req.Architecture, Epoch: req.Epoch,
		Key: key, Cert: cert, DeferSignatures: deferSig, FSWriters: FSWriters(req.Compression),
	})
}
