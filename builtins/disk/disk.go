// Package disk assembles GPT disk images from a tree and a partition layout
// the way `systemd-repart --empty=create --size=auto` (and --make-ddi) does:
// the same partition and disk UUIDs derived from a seed, the same labels and
// GPT attributes, file systems minimized, dm-verity hash and signature
// partitions, and partitions sized and placed by repart's algorithm, so an
// image is byte-identical to repart's given the same file-system images.
//
// The partition table itself is written with github.com/diskfs/go-diskfs.
package disk

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/diskfs/go-diskfs/partition/gpt"

	"github.com/sxb-build/sxb/builtins/repart"
	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/builtins/verity"
	"github.com/sxb-build/sxb/internal/arch"
	"github.com/sxb-build/sxb/internal/atomicfile"
	"github.com/sxb-build/sxb/internal/diag"
)

// FSParams are what a file-system writer needs besides the tree.
type FSParams struct {
	// UUID is the file-system UUID repart derives for the partition.
	UUID [16]byte
	// Label is the partition label (repart does not label erofs or
	// squashfs file systems itself; writers may ignore it).
	Label string
	// Epoch is SOURCE_DATE_EPOCH, for superblock times.
	Epoch int64
	// Compression and CompressionLevel are the partition's settings.
	Compression, CompressionLevel string
}

// FSWriter writes a file system holding root at offset 0 of w and returns
// its size, a multiple of 4096.
type FSWriter func(w io.WriterAt, root *tree.Node, p FSParams) (int64, error)

// Options configure Build.
type Options struct {
	// Seed makes every UUID and the verity salt reproducible
	// (systemd-repart --seed=).
	Seed repart.ID128
	// Arch retargets root/usr partition types (systemd-repart
	// --architecture=); arch.None keeps the types as parsed (native).
	Arch arch.Arch
	// Epoch is SOURCE_DATE_EPOCH: the mtime of directories created for
	// CopyFiles=/MakeDirectories= and the file systems' build time.
	Epoch int64
	// Key and Cert sign verity root hashes for Verity=signature partitions.
	Key  crypto.Signer
	Cert *x509.Certificate
	// DeferSignatures reserves Verity=signature partitions (their size,
	// type, label and UUID as when signed) but leaves them zero-filled, to
	// be filled later with a signature made elsewhere (repart's
	// --defer-partitions and --join-signature). Key and Cert are then not
	// needed.
	DeferSignatures bool
	// FSWriters maps Format= values to writers.
	FSWriters map[string]FSWriter
	// TempDir holds intermediate file systems; "" means the output's
	// directory.
	TempDir string
}

// PartitionResult describes one written partition.
type PartitionResult struct {
	Definition string
	Type       repart.Type
	Label      string
	UUID       repart.ID128
	// Offset and Size are in bytes.
	Offset, Size int64
	Attributes   uint64
	Format       string
	// FSUUID and FSSize describe the file system (Format set).
	FSUUID repart.ID128
	FSSize int64
	// Verity is the partition's Verity= mode; RootHash is set on data and
	// hash partitions of a verity pair and on signature partitions.
	Verity   string
	RootHash []byte
}

// Result describes a written image.
type Result struct {
	Size     int64
	DiskUUID repart.ID128
	// RootHash is the root hash of the first verity pair, nil without one.
	RootHash   []byte
	Partitions []PartitionResult
}

type part struct {
	def     *repart.Partition
	typ     repart.Type
	label   string
	uuid    repart.ID128 // acquired or explicit
	final   repart.ID128
	fsUUID  repart.ID128
	content string // temp file with the content, "" for none
	size    int64  // content size
	root    []byte
	data    []byte // literal content (signature)
	slot    slot
}

// Build writes the image for root and parts to out (atomically: a
// temporary file renamed into place) and describes it.
func Build(ctx context.Context, out string, root *tree.Node, parts []*repart.Partition, opts Options) (*Result, error) {
	if len(parts) == 0 {
		return nil, errors.New("building image: no partitions")
	}
	if err := repart.CheckLayout(parts); err != nil {
		return nil, err
	}
	ps, err := newParts(parts, opts)
	if err != nil {
		return nil, err
	}
	assignIDs(ps, opts.Seed)
	tmpDir := opts.TempDir
	if tmpDir == "" {
		tmpDir = filepath.Dir(out)
	}
	temps := &tempFiles{dir: tmpDir}
	defer temps.removeAll()
	if err := writeFileSystems(ctx, ps, root, opts, temps); err != nil {
		return nil, err
	}
	if err := writeVerityHashes(ps, parts, opts.Seed, temps); err != nil {
		return nil, err
	}
	if err := signRootHashes(ps, parts, opts); err != nil {
		return nil, err
	}
	slots, err := sizeSlots(ps)
	if err != nil {
		return nil, err
	}
	size := autoSize(slots)
	start, end := usableArea(size)
	place(slots, start, end)

	res := &Result{Size: int64(size), DiskUUID: DeriveUUID(opts.Seed, "disk-uuid")}
	if err := writeImage(ctx, out, size, ps, res); err != nil {
		return nil, err
	}
	for _, p := range ps {
		if p.root != nil && res.RootHash == nil {
			res.RootHash = p.root
		}
	}
	return res, nil
}

// newParts checks that opts can build every partition and retargets their
// types to opts.Arch.
func newParts(parts []*repart.Partition, opts Options) ([]*part, error) {
	ps := make([]*part, len(parts))
	for i, d := range parts {
		t := d.Type
		if opts.Arch != arch.None {
			if !slices.Contains(repart.Architectures(), opts.Arch) {
				return nil, fmt.Errorf("architecture %s has no Discoverable Partitions types", opts.Arch)
			}
			t = t.WithArch(opts.Arch)
		}
		ps[i] = &part{def: d, typ: t}
		if d.Verity == repart.VeritySignature && !opts.DeferSignatures && (opts.Key == nil || opts.Cert == nil) {
			return nil, diag.Errorf(d.KeyPos("Verity"), "%v", repart.ErrNoKey)
		}
		if d.Format != "" && opts.FSWriters[d.Format] == nil {
			return nil, diag.Errorf(d.KeyPos("Format"), "no writer for Format=%s", d.Format)
		}
	}
	return ps, nil
}

// assignIDs gives each partition its UUID (explicit or derived from seed),
// the UUID of its file system and its label
// (context_acquire_partition_uuids_and_labels).
func assignIDs(ps []*part, seed repart.ID128) {
	for i, p := range ps {
		d := p.def
		switch {
		case d.UUIDSet:
			p.uuid = d.UUID
		default:
			var k uint64
			for _, q := range ps[:i] {
				if q.typ.UUID == p.typ.UUID {
					k++
				}
			}
			p.uuid = PartitionUUID(seed, p.typ.UUID, k)
		}
		p.final = p.uuid
		p.fsUUID = DeriveUUID(p.uuid, "file-system-uuid")
		if d.LabelSet {
			p.label = d.Label
		} else {
			prefix := p.typ.Name
			if !p.typ.Known() {
				prefix = "linux"
			}
			label := prefix
			for n := 1; ; {
				taken := false
				for _, q := range ps[:i] {
					taken = taken || q.label == label
				}
				if !taken {
					break
				}
				n++
				label = fmt.Sprintf("%s-%d", prefix, n)
			}
			p.label = label
		}
	}
}

// tempFiles are the intermediate partition contents of one Build.
type tempFiles struct {
	dir   string
	names []string
}

func (t *tempFiles) create() (*os.File, error) {
	f, err := os.CreateTemp(t.dir, ".sxb-part-*")
	if err == nil {
		t.names = append(t.names, f.Name())
	}
	return f, err
}

func (t *tempFiles) removeAll() {
	for _, n := range t.names {
		os.Remove(n)
	}
}

// writeFileSystems writes the file system of every partition with a
// Format= (context_minimize, first loop).
func writeFileSystems(ctx context.Context, ps []*part, root *tree.Node, opts Options, temps *tempFiles) error {
	for _, p := range ps {
		if err := ctx.Err(); err != nil {
			return err
		}
		d := p.def
		if d.Format == "" {
			continue
		}
		sub, err := PartitionTree(root, d, opts.Epoch)
		if err != nil {
			return diag.Errorf(d.KeyPos("CopyFiles"), "%v", err)
		}
		f, err := temps.create()
		if err != nil {
			return fmt.Errorf("building image: %w", err)
		}
		n, err := opts.FSWriters[d.Format](f, sub, FSParams{UUID: p.fsUUID, Label: p.label, Epoch: opts.Epoch,
			Compression: d.Compression, CompressionLevel: d.CompressionLevel})
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing %s file system of %s: %w", d.Format, d.Name, err)
		}
		if n%grain != 0 {
			return fmt.Errorf("writing %s file system of %s: size %d is not a multiple of %d", d.Format, d.Name, n, grain)
		}
		p.content, p.size = f.Name(), n
	}
	return nil
}

// writeVerityHashes computes the hash tree of every Verity=hash partition
// over its data partition (context_minimize, second loop); unless given,
// the UUIDs of both derive from the root hash, as repart's do.
func writeVerityHashes(ps []*part, parts []*repart.Partition, seed repart.ID128, temps *tempFiles) error {
	salt := verity.DeriveSalt(seed)
	vuuid := DeriveUUID(seed, "verity-uuid")
	for _, p := range ps {
		if p.def.Verity != repart.VerityHash {
			continue
		}
		dp := find(ps, repart.Sibling(parts, p.def, repart.VerityData))
		if dp == nil || dp.content == "" {
			return diag.Errorf(p.def.KeyPos("Verity"), "verity data partition for VerityMatchKey=%s has no file system", p.def.VerityMatchKey)
		}
		df, err := os.Open(dp.content)
		if err != nil {
			return fmt.Errorf("building image: %w", err)
		}
		hf, err := temps.create()
		if err != nil {
			df.Close()
			return fmt.Errorf("building image: %w", err)
		}
		root, n, err := verity.Format(df, dp.size, hf, verity.Options{Salt: salt, UUID: vuuid})
		df.Close()
		if cerr := hf.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("computing verity hash of %s: %w", dp.def.Name, err)
		}
		p.content, p.size, p.root, dp.root = hf.Name(), n, root, root
		if !dp.def.UUIDSet {
			copy(dp.final[:], root[:16])
		}
		if !p.def.UUIDSet {
			copy(p.final[:], root[len(root)-16:])
		}
	}
	return nil
}

// signRootHashes makes the content of every Verity=signature partition:
// the signed root hash of its hash partition.
func signRootHashes(ps []*part, parts []*repart.Partition, opts Options) error {
	for _, p := range ps {
		if p.def.Verity != repart.VeritySignature {
			continue
		}
		hp := find(ps, repart.Sibling(parts, p.def, repart.VerityHash))
		if hp == nil || hp.root == nil {
			return diag.Errorf(p.def.KeyPos("Verity"), "no verity hash partition for VerityMatchKey=%s", p.def.VerityMatchKey)
		}
		if opts.DeferSignatures {
			p.root = hp.root
			continue
		}
		doc, err := verity.SignatureJSON(hp.root, opts.Key, opts.Cert)
		if err != nil {
			return fmt.Errorf("signing root hash: %w", err)
		}
		p.data, p.root = doc, hp.root
	}
	return nil
}

// sizeSlots computes each partition's size bounds and padding
// (partition_min_size / partition_max_size) and refuses sizes too large
// for the layout arithmetic.
func sizeSlots(ps []*part) ([]*slot, error) {
	slots := make([]*slot, len(ps))
	for i, p := range ps {
		d := p.def
		s := &p.slot
		s.weight, s.padMax = defaultWeight, unset
		if d.PaddingMinBytes != unset {
			s.padMin = d.PaddingMinBytes
		}
		if p.typ.IsVeritySig() || d.Verity == repart.VeritySignature {
			s.minSize, s.maxSize = veritySigSize, veritySigSize
		} else {
			sz := uint64(hardMinSize)
			if p.content != "" {
				sz = max(sz, roundUp(uint64(p.size), grain))
			}
			minSize := d.SizeMinBytes
			if minSize == unset {
				minSize = defaultMinSize
				if repart.IsReadOnlyFormat(d.Format) || d.Verity != repart.VerityOff {
					minSize = 1
				}
			}
			s.minSize = max(roundUp(minSize, grain), sz)
			s.maxSize = unset
			if d.SizeMaxBytes != unset {
				if uint64(p.size) > d.SizeMaxBytes {
					return nil, diag.Errorf(d.KeyPos("SizeMaxBytes"), "%s needs %d bytes, more than SizeMaxBytes=%d", d.Name, p.size, d.SizeMaxBytes)
				}
				s.maxSize = max(s.minSize, roundDown(d.SizeMaxBytes, grain))
			}
		}
		if p.data != nil && len(p.data)+1 > int(s.minSize) {
			return nil, fmt.Errorf("verity signature of %d bytes too long for partition %s", len(p.data), d.Name)
		}
		slots[i] = s
	}
	// Sizes near 2^64 would wrap around in the layout arithmetic.
	total := uint64(0)
	for i, s := range slots {
		d := ps[i].def
		for _, v := range []struct {
			key string
			n   uint64
		}{{"SizeMinBytes", d.SizeMinBytes}, {"SizeMaxBytes", d.SizeMaxBytes}, {"PaddingMinBytes", d.PaddingMinBytes}} {
			if v.n != unset && v.n > maxImageSize {
				return nil, diag.Errorf(d.KeyPos(v.key), "%s=%d is too large (at most %d)", v.key, v.n, uint64(maxImageSize))
			}
		}
		if total += s.minSize + s.padMin; total > maxImageSize {
			return nil, fmt.Errorf("partitions need %d bytes or more, too large an image (at most %d)", total, uint64(maxImageSize))
		}
	}
	return slots, nil
}

// maxImageSize bounds partition and image sizes (1 EiB), far above what
// any file system can hold and far below where uint64 arithmetic wraps.
const maxImageSize = 1 << 60

func find(ps []*part, d *repart.Partition) *part {
	for _, p := range ps {
		if p.def == d {
			return p
		}
	}
	return nil
}

// attributes merges Flags= with ReadOnly=, NoAuto= and GrowFileSystem=
// where the type gives them a meaning (repart's partition_merge_flags).
func attributes(d *repart.Partition, t repart.Type) uint64 {
	f := d.Flags
	set := func(bit uint64, v repart.Tristate, knows bool) {
		if v == repart.Auto || !knows {
			return
		}
		if v == repart.Yes {
			f |= bit
		} else {
			f &^= bit
		}
	}
	set(repart.FlagNoAuto, d.NoAuto, t.KnowsNoAuto())
	set(repart.FlagReadOnly, d.ReadOnly, t.KnowsReadOnly())
	set(repart.FlagGrowFS, d.GrowFileSystem, t.KnowsGrowFS())
	return f
}

func writeImage(ctx context.Context, out string, size uint64, ps []*part, res *Result) error {
	f, err := atomicfile.Create(out, 0o644)
	if err != nil {
		return fmt.Errorf("writing image: %w", err)
	}
	defer f.Abort()
	if err := f.Truncate(int64(size)); err != nil {
		return fmt.Errorf("writing image: %w", err)
	}
	table := &gpt.Table{LogicalSectorSize: sectorSize, PhysicalSectorSize: sectorSize, ProtectiveMBR: true,
		GUID: res.DiskUUID.String()}
	for i, p := range ps {
		if err := ctx.Err(); err != nil {
			return err
		}
		s := p.slot
		switch {
		case p.content != "":
			if err := copyInto(f.File, int64(s.offset), p.content, p.size); err != nil {
				return fmt.Errorf("writing partition %s: %w", p.def.Name, err)
			}
		case p.data != nil:
			b, err := verity.PadSignature(p.data, int(s.newSize))
			if err != nil {
				return err
			}
			if _, err := f.WriteAt(b, int64(s.offset)); err != nil {
				return fmt.Errorf("writing partition %s: %w", p.def.Name, err)
			}
		}
		attrs := attributes(p.def, p.typ)
		table.Partitions = append(table.Partitions, &gpt.Partition{
			Index: i + 1, Start: s.offset / sectorSize, End: (s.offset+s.newSize)/sectorSize - 1, Size: s.newSize,
			Type: gpt.Type(strings.ToUpper(p.typ.UUID.String())), Name: p.label, GUID: p.final.String(), Attributes: attrs,
		})
		pr := PartitionResult{Definition: p.def.Name, Type: p.typ, Label: p.label, UUID: p.final,
			Offset: int64(s.offset), Size: int64(s.newSize), Attributes: attrs, Format: p.def.Format,
			Verity: p.def.Verity, RootHash: p.root}
		if p.def.Format != "" {
			pr.FSUUID, pr.FSSize = p.fsUUID, p.size
		}
		res.Partitions = append(res.Partitions, pr)
	}
	if err := table.Write(f.File, int64(size)); err != nil {
		return fmt.Errorf("writing partition table: %w", err)
	}
	// go-diskfs always records 34 as the first usable LBA; libfdisk
	// records the 1 MiB alignment on larger disks.
	if first := firstLBA(size); first != firstUsableLBA {
		if err := setFirstUsableLBA(f.File, size, first); err != nil {
			return fmt.Errorf("writing partition table: %w", err)
		}
	}
	// libfdisk fills in the CHS fields of the protective MBR entry (start
	// 0/0/2, end as large as CHS goes); go-diskfs leaves them zero.
	if _, err := f.WriteAt([]byte{0x00, 0x02, 0x00}, 446+1); err != nil {
		return fmt.Errorf("writing protective MBR: %w", err)
	}
	if _, err := f.WriteAt([]byte{0xff, 0xff, 0xff}, 446+5); err != nil {
		return fmt.Errorf("writing protective MBR: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("writing image: %w", err)
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("writing image: %w", err)
	}
	return nil
}

func copyInto(dst *os.File, off int64, src string, n int64) error {
	s, err := os.Open(src)
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := dst.Seek(off, io.SeekStart); err != nil {
		return err
	}
	if _, err := io.Copy(dst, io.LimitReader(s, n)); err != nil {
		return err
	}
	return nil
}

// setFirstUsableLBA rewrites the FirstUsableLBA field of the primary and
// the backup GPT header and their CRC32s (UEFI spec: the header CRC covers
// HeaderSize bytes with the CRC field zeroed).
func setFirstUsableLBA(f *os.File, size, lba uint64) error {
	for _, at := range []int64{sectorSize, int64(size) - sectorSize} {
		h := make([]byte, sectorSize)
		if _, err := f.ReadAt(h, at); err != nil {
			return err
		}
		if string(h[:8]) != "EFI PART" {
			return fmt.Errorf("no GPT header at byte %d", at)
		}
		hsize := binary.LittleEndian.Uint32(h[12:16])
		if hsize < 92 || hsize > sectorSize {
			return fmt.Errorf("GPT header size %d", hsize)
		}
		binary.LittleEndian.PutUint64(h[40:48], lba)
		binary.LittleEndian.PutUint32(h[16:20], 0)
		binary.LittleEndian.PutUint32(h[16:20], crc32.ChecksumIEEE(h[:hsize]))
		if _, err := f.WriteAt(h[:hsize], at); err != nil {
			return err
		}
	}
	return nil
}
