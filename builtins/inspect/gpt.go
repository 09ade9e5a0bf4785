package inspect

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"unicode/utf16"

	"github.com/sxb-build/sxb/builtins/repart"
)

const sectorSize = 512

// maxEntryArray bounds the partition entry array a header may announce, so
// a hostile header cannot make the reader allocate gigabytes (the usual
// array is 128 entries of 128 bytes, 16 KiB).
const maxEntryArray = 1 << 20

// gptTable is a GPT as the inspector needs it.
type gptTable struct {
	diskGUID   repart.ID128
	partitions []gptPartition
}

// gptPartition is one used GPT entry, numbered from 1.
type gptPartition struct {
	index      int
	typ, guid  repart.ID128
	start, end uint64 // first and last LBA
	attributes uint64
	name       string
}

// mixedEndianGUID turns the on-disk GUID encoding (first three fields
// little-endian) into the textual byte order ID128 holds.
func mixedEndianGUID(b []byte) repart.ID128 {
	var id repart.ID128
	id[0], id[1], id[2], id[3] = b[3], b[2], b[1], b[0]
	id[4], id[5] = b[5], b[4]
	id[6], id[7] = b[7], b[6]
	copy(id[8:], b[8:16])
	return id
}

// readGPT reads the primary GPT of an image of the given size, or the
// backup at the last sector when the primary is damaged. Every field that
// sizes a read or points into the image is checked against the image.
func readGPT(r io.ReaderAt, size int64) (*gptTable, error) {
	if size < 2*sectorSize {
		return nil, fmt.Errorf("image is %d bytes, too small for a GPT", size)
	}
	t, err := readGPTAt(r, size, 1)
	if err == nil {
		return t, nil
	}
	last := uint64(size/sectorSize) - 1
	if last <= 1 {
		return nil, err
	}
	t, berr := readGPTAt(r, size, last)
	if berr != nil {
		return nil, fmt.Errorf("primary header: %w; backup header: %v", err, berr)
	}
	return t, nil
}

func readGPTAt(r io.ReaderAt, size int64, lba uint64) (*gptTable, error) {
	h := make([]byte, sectorSize)
	if _, err := r.ReadAt(h, int64(lba)*sectorSize); err != nil {
		return nil, fmt.Errorf("reading header at LBA %d: %w", lba, err)
	}
	le := binary.LittleEndian
	if !bytes.Equal(h[:8], []byte("EFI PART")) {
		return nil, fmt.Errorf("no GPT signature at LBA %d", lba)
	}
	hsize := le.Uint32(h[12:])
	if hsize < 92 || hsize > sectorSize {
		return nil, fmt.Errorf("GPT header size %d invalid", hsize)
	}
	want := le.Uint32(h[16:])
	hc := append([]byte(nil), h[:hsize]...)
	copy(hc[16:20], []byte{0, 0, 0, 0})
	if crc32.ChecksumIEEE(hc) != want {
		return nil, errors.New("GPT header checksum mismatch")
	}
	if my := le.Uint64(h[24:]); my != lba {
		return nil, fmt.Errorf("GPT header at LBA %d says it is at LBA %d", lba, my)
	}
	entriesLBA, count, esize := le.Uint64(h[72:]), uint64(le.Uint32(h[80:])), uint64(le.Uint32(h[84:]))
	if esize < 128 || esize > 4096 || esize%128 != 0 {
		return nil, fmt.Errorf("GPT partition entry size %d invalid", esize)
	}
	if count*esize > maxEntryArray {
		return nil, fmt.Errorf("GPT partition entry array of %d entries of %d bytes is too large", count, esize)
	}
	sectors := uint64(size / sectorSize)
	if entriesLBA >= sectors || count*esize > (sectors-entriesLBA)*sectorSize {
		return nil, fmt.Errorf("GPT partition entries at LBA %d lie outside the image", entriesLBA)
	}
	arr := make([]byte, count*esize)
	if _, err := r.ReadAt(arr, int64(entriesLBA)*sectorSize); err != nil {
		return nil, fmt.Errorf("reading GPT partition entries: %w", err)
	}
	if crc32.ChecksumIEEE(arr) != le.Uint32(h[88:]) {
		return nil, errors.New("GPT partition entry array checksum mismatch")
	}
	t := &gptTable{diskGUID: mixedEndianGUID(h[56:72])}
	for i := uint64(0); i < count; i++ {
		e := arr[i*esize : (i+1)*esize]
		p := gptPartition{index: int(i) + 1, typ: mixedEndianGUID(e[0:16]), guid: mixedEndianGUID(e[16:32]),
			start: le.Uint64(e[32:]), end: le.Uint64(e[40:]), attributes: le.Uint64(e[48:])}
		if p.typ.IsZero() {
			continue
		}
		if p.start > p.end || p.end >= sectors {
			return nil, fmt.Errorf("GPT partition %d (LBA %d to %d) lies outside the %d-sector image", p.index, p.start, p.end, sectors)
		}
		u := make([]uint16, 0, 36)
		for j := 56; j+1 < 128; j += 2 {
			c := le.Uint16(e[j:])
			if c == 0 {
				break
			}
			u = append(u, c)
		}
		p.name = string(utf16.Decode(u))
		t.partitions = append(t.partitions, p)
	}
	return t, nil
}
