package inspect

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sxb-build/sxb/builtins/erofs"
	"github.com/sxb-build/sxb/builtins/repart"
	"github.com/sxb-build/sxb/builtins/squashfs"
	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/arch"
)

// Extracted describes what Extract wrote.
type Extracted struct {
	// Partition is the GPT partition whose file system was extracted; nil
	// when the image is a bare erofs or squashfs file system.
	Partition *Partition `json:"partition,omitempty"`
	// Dir is where the root of the file system landed: dest, or dest/usr
	// for a usr partition (which systemd mounts on /usr).
	Dir string `json:"dir"`
	// FS is "erofs" or "squashfs".
	FS string `json:"fs"`
	// Erofs or Squashfs are the superblock's parameters as writer
	// options: writing the extracted tree with them gives back the same
	// file system, byte for byte, for images sxb wrote.
	Erofs    *erofs.Options    `json:"-"`
	Squashfs *squashfs.Options `json:"-"`
	// Meta holds what the directory cannot: owners, modes beyond the
	// permission bits, device nodes, FIFOs, sockets and xattrs. It is
	// ExtractOptions.Meta when one was given.
	Meta *tree.Meta `json:"-"`
	// Counts of what was written; Bytes is the file content, holes not
	// counted.
	Dirs      int   `json:"dirs"`
	Files     int   `json:"files"`
	Symlinks  int   `json:"symlinks"`
	Special   int   `json:"special"`
	HardLinks int   `json:"hardLinks"`
	Bytes     int64 `json:"bytes"`
}

// ExtractOptions adjust ExtractWith.
type ExtractOptions struct {
	// Meta receives the metadata of the extracted tree (see
	// Extracted.Meta), keyed by paths relative to dest.
	Meta *tree.Meta
	// MaxBytes bounds the file content written (holes are not written
	// and not counted): an image that expands beyond it is refused as a
	// decompression bomb. 0 means 1 GiB plus 100 times the size of the
	// file system; negative means no limit.
	MaxBytes int64
	// MaxEntries bounds the directory entries read. 0 means one per 8
	// bytes of the file system (no real image comes close: an entry
	// takes at least 9); negative means no limit.
	MaxEntries int64
}

// maxDepth bounds the nesting of directories (PATH_MAX allows about
// 2000 one-letter levels; no real tree comes near this).
const maxDepth = 512

// Extract writes the file tree of an extension image into dest, an empty
// (or missing) directory, without root and without mounting anything. The
// image is a GPT disk image, whose data partition is picked as
// systemd-dissect picks it for an extension (the root partition, else the
// usr partition extracted below dest/usr; verity and signature partitions
// hold no files), or a bare erofs or squashfs file system.
//
// Directories, regular files (streamed; sparse blocks stay holes),
// symlinks (written as they are, never followed), hard links and
// modification times go to disk; what an unprivileged user cannot put
// there — owners, setuid/setgid/sticky bits, device nodes, FIFOs and
// sockets (empty placeholder files) and xattrs — goes into the returned
// Meta, which tree.Load reads back, so loading dest with it gives the tree
// the image holds whoever runs Extract. Hostile images are refused with an
// error: names with "/" or NUL, ".", "..", empty or duplicate names,
// directory loops, data outside the file system, sizes and counts beyond
// the format's limits, expansion beyond the ExtractOptions limits. Nothing
// is written outside dest, and on error dest is left empty.
func Extract(ctx context.Context, image, dest string, meta *tree.Meta) (*Extracted, error) {
	return ExtractWith(ctx, image, dest, ExtractOptions{Meta: meta})
}

// ExtractWith is Extract with options.
func ExtractWith(ctx context.Context, image, dest string, opts ExtractOptions) (*Extracted, error) {
	f, err := os.Open(image)
	if err != nil {
		return nil, fmt.Errorf("extracting image: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("extracting image: %w", err)
	}
	if !fi.Mode().IsRegular() && fi.Mode()&os.ModeDevice == 0 {
		return nil, fmt.Errorf("extracting image: %s is not a file", image)
	}
	size := fi.Size()
	if fi.Mode()&os.ModeDevice != 0 {
		if size, err = f.Seek(0, io.SeekEnd); err != nil {
			return nil, fmt.Errorf("extracting image: %w", err)
		}
	}
	x, err := extractReader(ctx, f, size, dest, opts)
	if err != nil {
		return nil, fmt.Errorf("extracting %s: %w", image, err)
	}
	return x, nil
}

// extractReader extracts the image of the given size read through r.
func extractReader(ctx context.Context, r io.ReaderAt, size int64, dest string, opts ExtractOptions) (*Extracted, error) {
	res := &Extracted{Dir: dest}
	sub, prefix := io.NewSectionReader(r, 0, size), ""
	if res.FS = DetectFS(sub); res.FS == "" {
		table, err := readGPT(r, size)
		if err != nil {
			return nil, fmt.Errorf("neither a file system nor a disk image: reading GPT: %w", err)
		}
		p, mount, err := dataPartition(partitionsOf(r, table))
		if err != nil {
			return nil, err
		}
		res.Partition, res.FS, prefix = p, p.Content, mount
		sub = io.NewSectionReader(r, p.Offset, p.Size)
		res.Dir = filepath.Join(dest, prefix)
	}
	var fsr fsReader
	if res.FS == "erofs" {
		e, err := openErofs(sub, sub.Size())
		if err != nil {
			return nil, err
		}
		fsr, res.Erofs = e, e.options()
	} else {
		s, err := openSquashfs(sub, sub.Size())
		if err != nil {
			return nil, err
		}
		fsr, res.Squashfs = s, s.options()
	}
	res.Meta = opts.Meta
	if res.Meta == nil {
		res.Meta = tree.NewMeta()
	}
	x := &extractor{ctx: ctx, fs: fsr, res: res, meta: tree.NewMeta(), links: map[uint64]string{}, dirs: map[uint64]bool{},
		bytesLeft: opts.MaxBytes, entriesLeft: opts.MaxEntries, xattrsLeft: 64<<20 + sub.Size()}
	if x.bytesLeft == 0 {
		x.bytesLeft = 1<<30 + 100*sub.Size()
	}
	if x.entriesLeft == 0 {
		x.entriesLeft = sub.Size()/8 + 1024
	}
	if err := x.run(dest, prefix); err != nil {
		return nil, err
	}
	res.Meta.Merge(x.meta)
	return res, nil
}

// dataPartition picks the partition an extension image is mounted from,
// as systemd-dissect does: the root partition (of the machine's
// architecture when there are several), else the usr partition, mounted
// at "usr"; partitions marked no-auto are not considered. An image of a
// single partition with a file system, whatever its type, is that one.
func dataPartition(parts []Partition) (*Partition, string, error) {
	var roots, usrs, fss []*Partition
	for i := range parts {
		p := &parts[i]
		if p.Content != "erofs" && p.Content != "squashfs" {
			continue
		}
		fss = append(fss, p)
		id, _ := repart.ParseID128(p.TypeUUID)
		if p.Attributes&repart.FlagNoAuto != 0 {
			continue
		}
		switch repart.TypeForUUID(id).Designator {
		case repart.Root:
			roots = append(roots, p)
		case repart.Usr:
			usrs = append(usrs, p)
		}
	}
	pick := func(list []*Partition, what string) (*Partition, error) {
		var native []*Partition
		for _, p := range list {
			id, _ := repart.ParseID128(p.TypeUUID)
			if repart.TypeForUUID(id).Arch == arch.Native() {
				native = append(native, p)
			}
		}
		switch {
		case len(native) == 1:
			return native[0], nil
		case len(list) == 1:
			return list[0], nil
		}
		var names []string
		for _, p := range list {
			names = append(names, fmt.Sprintf("%d (%s)", p.Number, p.Type))
		}
		return nil, fmt.Errorf("%s partitions %s: which one an extension uses is ambiguous", what, strings.Join(names, ", "))
	}
	switch {
	case len(roots) > 0 && len(usrs) > 0:
		return nil, "", fmt.Errorf("the image has both root and usr partitions; extracting extensions made of both is not supported")
	case len(roots) > 0:
		p, err := pick(roots, "root")
		return p, "", err
	case len(usrs) > 0:
		p, err := pick(usrs, "usr")
		return p, "usr", err
	case len(fss) == 1:
		return fss[0], "", nil
	}
	return nil, "", fmt.Errorf("the image has no root or usr partition with an erofs or squashfs file system")
}
