package disk

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"

	"github.com/sxb-build/sxb/builtins/repart"
)

// Sizes systemd-repart 257 uses (repart.c).
const (
	grain          = 4096            // partition alignment and size granularity
	hardMinSize    = 4096            // smallest new partition
	defaultMinSize = 10 << 20        // SizeMinBytes= default for writable partitions
	veritySigSize  = 4 * hardMinSize // size of a verity signature partition
	gptMetadata    = 1044 << 10      // room libfdisk takes for the two GPTs
	sectorSize     = 512             // logical sector size of image files
	firstUsableLBA = 34              // libfdisk: MBR, header, 128 entries of 128 bytes
	defaultWeight  = 1000            // Weight= default
	unset          = repart.Unset    // shorthand
	gptEntriesSecs = 128 * 128 / sectorSize
)

// DeriveUUID derives an identifier from base and a token as systemd-repart's
// derive_uuid does: the first 16 bytes of HMAC-SHA256 keyed by base over
// the token, marked as a version 4 UUID. repart derives the disk GUID with
// token "disk-uuid" from the seed, file-system UUIDs with
// "file-system-uuid" from the partition UUID and the verity superblock UUID
// with "verity-uuid" from the seed.
func DeriveUUID(base repart.ID128, token string) repart.ID128 {
	m := hmac.New(sha256.New, base[:])
	m.Write([]byte(token))
	var id repart.ID128
	copy(id[:], m.Sum(nil))
	return makeV4(id)
}

// PartitionUUID derives the UUID of the k-th (0-based) partition of a type
// as systemd-repart's partition_acquire_uuid does: HMAC-SHA256 keyed by the
// seed over the type UUID, followed by k as a little-endian 64-bit number
// when k > 0, first half, marked version 4.
func PartitionUUID(seed, typeUUID repart.ID128, k uint64) repart.ID128 {
	msg := append([]byte(nil), typeUUID[:]...)
	if k > 0 {
		msg = binary.LittleEndian.AppendUint64(msg, k)
	}
	m := hmac.New(sha256.New, seed[:])
	m.Write(msg)
	var id repart.ID128
	copy(id[:], m.Sum(nil))
	return makeV4(id)
}

func makeV4(id repart.ID128) repart.ID128 {
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}

func roundUp(v, p uint64) uint64 {
	if v == unset {
		return unset
	}
	return (v + p - 1) / p * p
}

func roundDown(v, p uint64) uint64 { return v / p * p }

func lessBy(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return 0
}

// slot is one partition as the placement algorithm sees it.
type slot struct {
	minSize, maxSize  uint64
	padMin, padMax    uint64
	weight, padWeight uint64
	newSize, newPad   uint64
	offset            uint64
}

// minWithPadding is repart's partition_min_size_with_padding for a new
// partition.
func (s *slot) minWithPadding() uint64 { return roundUp(s.minSize+s.padMin, grain) }

// AutoSize returns the image size systemd-repart --size=auto picks for
// partitions with these minimum sizes and paddings: the GPT metadata
// allowance plus each partition's rounded minimum.
func autoSize(slots []*slot) uint64 {
	sum := roundUp(gptMetadata, grain)
	for _, s := range slots {
		sum += s.minWithPadding()
	}
	return sum
}

// firstLBA is the first usable LBA libfdisk gives a fresh GPT on a device
// of size bytes: 1 MiB (2048 sectors) of alignment, except on devices of at
// most four times that (4 MiB), where it drops the alignment and the GPT's
// own minimum (34: MBR, header, 128 entries of 128 bytes) applies
// (libfdisk's topology_get_first_lba). The GPT header records it.
func firstLBA(size uint64) uint64 {
	const aligned = 2048
	if size/sectorSize <= 4*aligned {
		return firstUsableLBA
	}
	return aligned
}

// usableArea returns the aligned first and end byte of the area libfdisk
// leaves for partitions on a fresh GPT of size bytes.
func usableArea(size uint64) (start, end uint64) {
	sectors := size / sectorSize
	lastLBA := sectors - 2 - gptEntriesSecs // backup header and entries
	start = roundUp(firstLBA(size)*sectorSize, grain)
	end = roundDown((lastLBA+1)*sectorSize, grain)
	return start, end
}

func scaleByWeight(value, weight, sum uint64) uint64 {
	for {
		if weight == 0 {
			return 0
		}
		if weight == sum {
			return value
		}
		if value <= ^uint64(0)/weight {
			return value * weight / sum
		}
		sum = (sum + 1) / 2
		weight /= 2
	}
}

// place sizes and positions the slots in the free area [start, end) the way
// repart's context_grow_partitions and context_place_partitions do for
// new partitions in a single free area: minimum sizes first, then the rest
// shared out by weight, rounded to the grain.
func place(slots []*slot, start, end uint64) {
	span := end - start
	var wsum uint64
	for _, s := range slots {
		s.newSize, s.newPad = unset, unset
		wsum += s.weight + s.padWeight
	}
	const (
		overcharge = iota
		undercharge
		distribute
	)
	charge := func(v uint64) { span = lessBy(span, roundUp(v, grain)) }
	for phase := overcharge; phase <= distribute; {
		again := false
		for _, s := range slots {
			if s.newSize == unset {
				share := scaleByWeight(span, s.weight, wsum)
				rsz, xsz := s.minSize, s.maxSize
				done := false
				switch {
				case phase == overcharge && rsz > share:
					s.newSize, done, again = rsz, true, true
				case phase == undercharge && xsz < share:
					s.newSize, done, again = xsz, true, true
				case phase == distribute:
					s.newSize, done = min(max(roundDown(share, grain), rsz), xsz), true
				}
				if done {
					charge(s.newSize)
					wsum -= s.weight
				}
			}
			if s.newPad == unset {
				share := scaleByWeight(span, s.padWeight, wsum)
				rsz, xsz := s.padMin, s.padMax
				done := false
				switch {
				case phase == overcharge && rsz > share:
					s.newPad, done, again = rsz, true, true
				case phase == undercharge && xsz < share:
					s.newPad, done, again = xsz, true, true
				case phase == distribute:
					s.newPad, done = min(max(roundDown(share, grain), rsz), xsz), true
				}
				if done {
					charge(s.newPad)
					wsum -= s.padWeight
				}
			}
		}
		if !again {
			phase++
		}
	}
	// Left-over space goes to whoever can still grow.
	for _, s := range slots {
		if span == 0 {
			break
		}
		m := max(roundDown(s.newSize+span, grain), s.newSize)
		m = min(m, s.maxSize)
		span = lessBy(span, roundUp(m-s.newSize, grain))
		s.newSize = m
	}
	off := roundUp(start, grain)
	for _, s := range slots {
		s.offset = off
		off += s.newSize + s.newPad
	}
}
