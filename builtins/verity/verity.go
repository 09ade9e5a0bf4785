// Package verity computes dm-verity hash trees in the on-disk format that
// `veritysetup format` (libcryptsetup) and systemd-repart write: a 512-byte
// version 1 superblock in the first hash block, then the tree levels, top
// level first, each node the SHA-256 of the salt followed by the child block
// (hash type 1).
//
// The layout follows the dm-verity documentation and libcryptsetup's
// verity_hash.c (read for the format only): with N data blocks and H hashes
// per hash block there are L levels, the smallest L with (N-1) >> (L*log2 H)
// equal to zero; level i holds ceil(N / H^(i+1)) blocks; levels are stored
// from L-1 down to 0 after the superblock block. The root hash is the hash
// of the single top-level block, or of the only data block when L is 0.
package verity

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
)

// BlockSize is the default data and hash block size, the one systemd-repart
// uses (its file-system sector size).
const BlockSize = 4096

// SuperblockSize is the size of the on-disk superblock structure.
const SuperblockSize = 512

// Signature starts every verity superblock.
var Signature = [8]byte{'v', 'e', 'r', 'i', 't', 'y', 0, 0}

// Options describe the hash tree to write.
type Options struct {
	// Salt is hashed before each block (at most 256 bytes). systemd-repart
	// uses 32 bytes derived from its seed, see DeriveSalt.
	Salt []byte
	// UUID is stored in the superblock.
	UUID [16]byte
	// DataBlockSize and HashBlockSize default to BlockSize. Both must be
	// powers of two between 512 and 4096 (the sizes repart accepts).
	DataBlockSize, HashBlockSize int
	// NoSuperblock leaves out the superblock (veritysetup --no-superblock);
	// the tree then starts at offset 0.
	NoSuperblock bool
	// Workers bounds the goroutines hashing data blocks; 0 means GOMAXPROCS.
	Workers int
}

func (o *Options) normalize() error {
	if o.DataBlockSize == 0 {
		o.DataBlockSize = BlockSize
	}
	if o.HashBlockSize == 0 {
		o.HashBlockSize = BlockSize
	}
	for _, b := range []int{o.DataBlockSize, o.HashBlockSize} {
		if b < 512 || b > 4096 || b&(b-1) != 0 {
			return fmt.Errorf("verity: block size %d is not a power of two between 512 and 4096", b)
		}
	}
	if len(o.Salt) > 256 {
		return fmt.Errorf("verity: salt of %d bytes is longer than 256", len(o.Salt))
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	return nil
}

// Geometry is the shape of a hash tree.
type Geometry struct {
	DataBlocks int64
	// Levels is the number of tree levels (0 for a single data block).
	Levels int
	// LevelBlock[i] is the hash-device block where level i starts;
	// LevelSize[i] is its length in blocks. Level 0 hashes the data.
	LevelBlock, LevelSize []int64
	// HashBlocks is the size of the hash device in hash blocks, superblock
	// included.
	HashBlocks int64
}

// Layout computes the tree geometry for dataSize bytes of data, which must
// be a positive multiple of the data block size.
func Layout(dataSize int64, opts Options) (Geometry, error) {
	if err := opts.normalize(); err != nil {
		return Geometry{}, err
	}
	if dataSize <= 0 || dataSize%int64(opts.DataBlockSize) != 0 {
		return Geometry{}, fmt.Errorf("verity: data size %d is not a positive multiple of the block size %d", dataSize, opts.DataBlockSize)
	}
	n := dataSize / int64(opts.DataBlockSize)
	bits := uint(0)
	for (opts.HashBlockSize/sha256.Size)>>(bits+1) > 0 {
		bits++
	}
	g := Geometry{DataBlocks: n}
	for bits*uint(g.Levels) < 64 && uint64(n-1)>>(bits*uint(g.Levels)) != 0 {
		g.Levels++
	}
	pos := int64(0)
	if !opts.NoSuperblock {
		pos = (SuperblockSize + int64(opts.HashBlockSize) - 1) / int64(opts.HashBlockSize)
	}
	g.LevelBlock = make([]int64, g.Levels)
	g.LevelSize = make([]int64, g.Levels)
	for i := g.Levels - 1; i >= 0; i-- {
		shift := uint(i+1) * bits
		if shift > 62 {
			return Geometry{}, errors.New("verity: hash tree too deep")
		}
		s := (n + (int64(1) << shift) - 1) >> shift
		g.LevelBlock[i] = pos
		g.LevelSize[i] = s
		pos += s
	}
	g.HashBlocks = pos
	return g, nil
}

// HashSize returns the size in bytes of the hash device Format writes for
// dataSize bytes of data (what systemd-repart's minimized hash partition
// needs before rounding to its 4096-byte grain).
func HashSize(dataSize int64, opts Options) (int64, error) {
	g, err := Layout(dataSize, opts)
	if err != nil {
		return 0, err
	}
	if err := opts.normalize(); err != nil {
		return 0, err
	}
	return g.HashBlocks * int64(opts.HashBlockSize), nil
}

// Superblock is the decoded verity superblock.
type Superblock struct {
	Version, HashType            uint32
	UUID                         [16]byte
	Algorithm                    string
	DataBlockSize, HashBlockSize uint32
	DataBlocks                   uint64
	Salt                         []byte
}

// MarshalBinary encodes the superblock in its 512-byte little-endian form.
func (s *Superblock) MarshalBinary() ([]byte, error) {
	b := make([]byte, SuperblockSize)
	copy(b[0:8], Signature[:])
	binary.LittleEndian.PutUint32(b[8:], s.Version)
	binary.LittleEndian.PutUint32(b[12:], s.HashType)
	copy(b[16:32], s.UUID[:])
	if len(s.Algorithm) > 31 {
		return nil, fmt.Errorf("verity: algorithm name %q too long", s.Algorithm)
	}
	copy(b[32:64], s.Algorithm)
	binary.LittleEndian.PutUint32(b[64:], s.DataBlockSize)
	binary.LittleEndian.PutUint32(b[68:], s.HashBlockSize)
	binary.LittleEndian.PutUint64(b[72:], s.DataBlocks)
	if len(s.Salt) > 256 {
		return nil, fmt.Errorf("verity: salt of %d bytes is longer than 256", len(s.Salt))
	}
	binary.LittleEndian.PutUint16(b[80:], uint16(len(s.Salt)))
	copy(b[88:88+256], s.Salt)
	return b, nil
}

// ReadSuperblock decodes the superblock at the start of a hash device.
func ReadSuperblock(r io.ReaderAt) (*Superblock, error) {
	b := make([]byte, SuperblockSize)
	if _, err := r.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("reading verity superblock: %w", err)
	}
	if !bytes.Equal(b[0:8], Signature[:]) {
		return nil, errors.New("reading verity superblock: bad signature")
	}
	s := &Superblock{
		Version:       binary.LittleEndian.Uint32(b[8:]),
		HashType:      binary.LittleEndian.Uint32(b[12:]),
		Algorithm:     string(bytes.TrimRight(b[32:64], "\x00")),
		DataBlockSize: binary.LittleEndian.Uint32(b[64:]),
		HashBlockSize: binary.LittleEndian.Uint32(b[68:]),
		DataBlocks:    binary.LittleEndian.Uint64(b[72:]),
	}
	copy(s.UUID[:], b[16:32])
	n := int(binary.LittleEndian.Uint16(b[80:]))
	if n > 256 {
		return nil, fmt.Errorf("reading verity superblock: salt size %d too large", n)
	}
	s.Salt = append([]byte(nil), b[88:88+n]...)
	if s.Version != 1 {
		return nil, fmt.Errorf("reading verity superblock: unsupported version %d", s.Version)
	}
	return s, nil
}

// Format hashes dataSize bytes of data and writes the hash device (the
// superblock, unless opts.NoSuperblock, and the tree) to hash. It returns
// the root hash and the number of bytes of the hash device.
func Format(data io.ReaderAt, dataSize int64, hash io.WriterAt, opts Options) (rootHash []byte, hashSize int64, err error) {
	if err := opts.normalize(); err != nil {
		return nil, 0, err
	}
	g, err := Layout(dataSize, opts)
	if err != nil {
		return nil, 0, err
	}
	hbs := int64(opts.HashBlockSize)
	if !opts.NoSuperblock {
		sb := Superblock{Version: 1, HashType: 1, UUID: opts.UUID, Algorithm: "sha256",
			DataBlockSize: uint32(opts.DataBlockSize), HashBlockSize: uint32(opts.HashBlockSize),
			DataBlocks: uint64(g.DataBlocks), Salt: opts.Salt}
		b, err := sb.MarshalBinary()
		if err != nil {
			return nil, 0, err
		}
		blk := make([]byte, hbs*((SuperblockSize+hbs-1)/hbs))
		copy(blk, b)
		if _, err := hash.WriteAt(blk, 0); err != nil {
			return nil, 0, fmt.Errorf("writing verity superblock: %w", err)
		}
	}
	root, err := buildTree(data, g, opts, func(level int, blocks []byte) error {
		_, err := hash.WriteAt(blocks, g.LevelBlock[level]*hbs)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return root, g.HashBlocks * hbs, nil
}

// RootHash computes the root hash of data without writing a hash device.
func RootHash(data io.ReaderAt, dataSize int64, opts Options) ([]byte, error) {
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	g, err := Layout(dataSize, opts)
	if err != nil {
		return nil, err
	}
	return buildTree(data, g, opts, func(int, []byte) error { return nil })
}

// buildTree computes every level bottom-up, passing each finished level
// (all its blocks, contiguous) to emit, and returns the root hash.
func buildTree(data io.ReaderAt, g Geometry, opts Options, emit func(level int, blocks []byte) error) ([]byte, error) {
	dbs, hbs := opts.DataBlockSize, opts.HashBlockSize
	perBlock := 1
	for perBlock*2 <= hbs/sha256.Size {
		perBlock *= 2
	}
	salt := opts.Salt
	if g.Levels == 0 {
		buf := make([]byte, dbs)
		if _, err := data.ReadAt(buf, 0); err != nil {
			return nil, fmt.Errorf("reading verity data: %w", err)
		}
		return saltedHash(salt, buf), nil
	}
	// Level 0: hash the data blocks in parallel chunks.
	level := make([]byte, g.LevelSize[0]*int64(hbs))
	const chunk = 256 // data blocks per work item
	n := g.DataBlocks
	items := (n + chunk - 1) / chunk
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		next     int64
	)
	workers := opts.Workers
	if int64(workers) > items {
		workers = int(items)
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, chunk*dbs)
			h := sha256.New()
			var sum [sha256.Size]byte
			for {
				mu.Lock()
				it := next
				next++
				failed := firstErr != nil
				mu.Unlock()
				if it >= items || failed {
					return
				}
				first := it * chunk
				cnt := min(int64(chunk), n-first)
				b := buf[:cnt*int64(dbs)]
				if _, err := data.ReadAt(b, first*int64(dbs)); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("reading verity data at block %d: %w", first, err)
					}
					mu.Unlock()
					return
				}
				for j := int64(0); j < cnt; j++ {
					h.Reset()
					h.Write(salt)
					h.Write(b[j*int64(dbs) : (j+1)*int64(dbs)])
					h.Sum(sum[:0])
					idx := first + j
					off := (idx/int64(perBlock))*int64(hbs) + (idx%int64(perBlock))*sha256.Size
					copy(level[off:], sum[:])
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := emit(0, level); err != nil {
		return nil, fmt.Errorf("writing verity hash level 0: %w", err)
	}
	for i := 1; i < g.Levels; i++ {
		up := make([]byte, g.LevelSize[i]*int64(hbs))
		for j := int64(0); j < g.LevelSize[i-1]; j++ {
			sum := saltedHash(salt, level[j*int64(hbs):(j+1)*int64(hbs)])
			off := (j/int64(perBlock))*int64(hbs) + (j%int64(perBlock))*sha256.Size
			copy(up[off:], sum)
		}
		if err := emit(i, up); err != nil {
			return nil, fmt.Errorf("writing verity hash level %d: %w", i, err)
		}
		level = up
	}
	return saltedHash(salt, level[:hbs]), nil
}

func saltedHash(salt, block []byte) []byte {
	h := sha256.New()
	h.Write(salt)
	h.Write(block)
	return h.Sum(nil)
}

// Verify recomputes the tree of data from the parameters in the hash
// device's superblock and reports an error unless every stored block and
// the root hash match.
func Verify(data io.ReaderAt, hash io.ReaderAt, rootHash []byte) error {
	sb, err := ReadSuperblock(hash)
	if err != nil {
		return err
	}
	if sb.HashType != 1 || sb.Algorithm != "sha256" {
		return fmt.Errorf("verity: unsupported hash type %d / algorithm %q", sb.HashType, sb.Algorithm)
	}
	opts := Options{Salt: sb.Salt, UUID: sb.UUID, DataBlockSize: int(sb.DataBlockSize), HashBlockSize: int(sb.HashBlockSize)}
	if err := opts.normalize(); err != nil {
		return err
	}
	g, err := Layout(int64(sb.DataBlocks)*int64(sb.DataBlockSize), opts)
	if err != nil {
		return err
	}
	hbs := int64(opts.HashBlockSize)
	root, err := buildTree(data, g, opts, func(level int, blocks []byte) error {
		stored := make([]byte, len(blocks))
		if _, err := hash.ReadAt(stored, g.LevelBlock[level]*hbs); err != nil {
			return fmt.Errorf("reading stored level: %w", err)
		}
		if !bytes.Equal(stored, blocks) {
			return fmt.Errorf("verity: stored hash level %d does not match the data", level)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !bytes.Equal(root, rootHash) {
		return fmt.Errorf("verity: root hash %x does not match %x", root, rootHash)
	}
	return nil
}

// DeriveSalt returns the 32-byte salt systemd-repart derives from its seed
// for a verity hash partition: HMAC-SHA256 keyed by the seed over the
// string "verity-salt".
func DeriveSalt(seed [16]byte) []byte {
	m := hmac.New(sha256.New, seed[:])
	m.Write([]byte("verity-salt"))
	return m.Sum(nil)
}
