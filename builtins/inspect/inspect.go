// Package inspect examines extension images without root or systemd: the
// GPT, each partition's type, label, UUID and file system, the
// extension-release file inside, and whether dm-verity data, hash tree, root
// hash and signature agree. Extract writes an image's whole tree into a
// directory plus a tree.Meta sidecar, rootless and without mounting.
//
// The erofs and squashfs readers are written here from the kernel's
// on-disk definitions (fs/erofs/erofs_fs.h, fs/squashfs/squashfs_fs.h)
// because extraction needs more than a file-system browser gives: every
// inode with its owner, device number and xattrs, the superblock
// parameters that reproduce the image, every offset checked against the
// partition and every allocation bounded, whatever a hostile image says.
package inspect

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/sxb-build/sxb/builtins/repart"
	"github.com/sxb-build/sxb/builtins/verity"
)

// Partition describes one GPT entry.
type Partition struct {
	Number     int      `json:"number"`
	Type       string   `json:"type"`
	TypeUUID   string   `json:"typeUuid"`
	Label      string   `json:"label"`
	UUID       string   `json:"uuid"`
	Offset     int64    `json:"offset"`
	Size       int64    `json:"size"`
	Attributes uint64   `json:"attributes"`
	Flags      []string `json:"flags,omitempty"`
	// Content is "erofs", "squashfs", "verity", "verity-signature" or "".
	Content string `json:"content"`
}

// Release is an extension-release file found in a partition.
type Release struct {
	Partition int               `json:"partition"`
	Path      string            `json:"path"`
	Fields    map[string]string `json:"fields"`
	Text      string            `json:"text"`
}

// VerityCheck is the verdict on one data/hash(/signature) group.
type VerityCheck struct {
	Data, Hash, Signature int    `json:"-"`
	RootHash              string `json:"rootHash"`
	// Verified: the hash tree matches the data and the root hash, and the
	// root hash equals the one the partition UUIDs encode (and the
	// signature document's, when signed).
	Verified bool   `json:"verified"`
	Error    string `json:"error,omitempty"`
	// Signed is true when a signature partition exists; SignatureValid when
	// its PKCS#7 signature over the root hash checks out; Trusted when the
	// signer is the certificate given to Inspect.
	Signed         bool   `json:"signed"`
	SignatureValid bool   `json:"signatureValid"`
	Signer         string `json:"signer,omitempty"`
	Trusted        *bool  `json:"trusted,omitempty"`
	SignatureError string `json:"signatureError,omitempty"`
	// Deferred is true when the signature partition exists but is still
	// empty (verity = "defer", awaiting sxb sign); Signed is then false,
	// and Trusted false when a certificate was given.
	Deferred bool `json:"deferred,omitempty"`
}

// Report is the result of Inspect.
type Report struct {
	Image      string        `json:"image"`
	Size       int64         `json:"size"`
	DiskUUID   string        `json:"diskUuid"`
	Partitions []Partition   `json:"partitions"`
	Releases   []Release     `json:"extensionRelease"`
	Verity     []VerityCheck `json:"verity"`
}

// Options adjust Inspect.
type Options struct {
	// Certificate, when set, is the signer signatures must come from.
	Certificate *x509.Certificate
}

// Inspect reads the image at path.
func Inspect(path string, opts Options) (*Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("inspecting image: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("inspecting image: %w", err)
	}
	return inspectReader(f, fi.Size(), path, opts)
}

// maxSignatureSize bounds the signature partition read into memory (repart
// writes one of 16 KiB at most).
const maxSignatureSize = 1 << 20

// inspectReader inspects the image of the given size read through r.
func inspectReader(f io.ReaderAt, size int64, path string, opts Options) (*Report, error) {
	table, err := readGPT(f, size)
	if err != nil {
		return nil, fmt.Errorf("inspecting image: reading GPT: %w", err)
	}
	rep := &Report{Image: path, Size: size, DiskUUID: table.diskGUID.String(), Partitions: partitionsOf(f, table)}
	for i, p := range rep.Partitions {
		if p.Content != "erofs" && p.Content != "squashfs" {
			continue
		}
		rel, err := findRelease(io.NewSectionReader(f, p.Offset, p.Size), p.Content)
		if err != nil {
			return nil, fmt.Errorf("inspecting partition %d: %w", p.Number, err)
		}
		for _, r := range rel {
			r.Partition = rep.Partitions[i].Number
			rep.Releases = append(rep.Releases, r)
		}
	}
	rep.Verity = checkVerity(f, rep.Partitions, opts)
	return rep, nil
}

// partitionsOf describes the partitions of a GPT and what they hold.
func partitionsOf(f io.ReaderAt, table *gptTable) []Partition {
	var parts []Partition
	for _, gp := range table.partitions {
		id := gp.typ
		t := repart.TypeForUUID(id)
		p := Partition{Number: gp.index, Type: t.Name, TypeUUID: id.String(), Label: gp.name,
			UUID: gp.guid.String(), Offset: int64(gp.start) * sectorSize, Size: int64(gp.end-gp.start+1) * sectorSize,
			Attributes: gp.attributes}
		for _, fl := range []struct {
			bit  uint64
			name string
		}{{1, "required"}, {4, "legacy-bios-bootable"}, {repart.FlagGrowFS, "growfs"}, {repart.FlagReadOnly, "read-only"}, {1 << 62, "hidden"}, {repart.FlagNoAuto, "no-auto"}} {
			if gp.attributes&fl.bit != 0 {
				p.Flags = append(p.Flags, fl.name)
			}
		}
		sec := io.NewSectionReader(f, p.Offset, p.Size)
		switch {
		case DetectFS(sec) != "":
			p.Content = DetectFS(sec)
		case isVerity(sec):
			p.Content = "verity"
		case t.IsVeritySig() || startsWithJSON(sec):
			p.Content = "verity-signature"
		}
		parts = append(parts, p)
	}
	return parts
}

func isVerity(r io.ReaderAt) bool {
	b := make([]byte, 8)
	_, err := r.ReadAt(b, 0)
	return err == nil && bytes.Equal(b, verity.Signature[:])
}

func startsWithJSON(r io.ReaderAt) bool {
	b := make([]byte, 13)
	_, err := r.ReadAt(b, 0)
	return err == nil && bytes.HasPrefix(b, []byte(`{"rootHash":`))
}

// maxReleases bounds the release files read from one directory.
const maxReleases = 8

// findRelease looks for usr/lib/extension-release.d/extension-release.*
// (sysext) and etc/extension-release.d/extension-release.* (confext).
func findRelease(r io.ReaderAt, kind string) ([]Release, error) {
	var fsys FS
	var err error
	if kind == "erofs" {
		fsys, err = OpenErofs(r)
	} else {
		fsys, err = OpenSquashfs(r)
	}
	if err != nil {
		return nil, err
	}
	var out []Release
	for _, dir := range []string{"usr/lib/extension-release.d", "etc/extension-release.d"} {
		names, err := fsys.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		sort.Strings(names)
		read := 0
		for _, n := range names {
			if !strings.HasPrefix(n, "extension-release.") {
				continue
			}
			// systemd reads one; a few more are shown, not thousands.
			if read++; read > maxReleases {
				break
			}
			b, err := fsys.ReadFile(dir + "/" + n)
			if err != nil {
				return nil, err
			}
			out = append(out, Release{Path: "/" + dir + "/" + n, Text: string(b), Fields: parseEnv(string(b))})
		}
	}
	return out, nil
}

// parseEnv reads os-release style KEY=value lines.
func parseEnv(s string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		m[k] = v
	}
	return m
}

func dataDesignator(d string) string {
	switch d {
	case repart.RootVerity, repart.RootVeritySig:
		return repart.Root
	case repart.UsrVerity, repart.UsrVeritySig:
		return repart.Usr
	}
	return ""
}

// checkVerity pairs each verity hash partition with its data partition (the
// root/usr partition of the same architecture, else the partition before
// it) and signature partition, and checks them.
func checkVerity(f io.ReaderAt, parts []Partition, opts Options) []VerityCheck {
	var out []VerityCheck
	typeOf := func(p Partition) repart.Type {
		id, _ := repart.ParseID128(p.TypeUUID)
		return repart.TypeForUUID(id)
	}
	for hi, h := range parts {
		if h.Content != "verity" {
			continue
		}
		ht := typeOf(h)
		c := VerityCheck{Data: -1, Hash: hi, Signature: -1}
		for i, p := range parts {
			t := typeOf(p)
			switch {
			case ht.Designator != "" && t.Designator == dataDesignator(ht.Designator) && t.Arch == ht.Arch:
				c.Data = i
			case ht.Designator != "" && t.IsVeritySig() && dataDesignator(t.Designator) == dataDesignator(ht.Designator) && t.Arch == ht.Arch:
				c.Signature = i
			}
		}
		if c.Data < 0 && hi > 0 {
			c.Data = hi - 1
		}
		verifyGroup(f, parts, &c, opts)
		out = append(out, c)
	}
	return out
}

func verifyGroup(f io.ReaderAt, parts []Partition, c *VerityCheck, opts Options) {
	if c.Data < 0 {
		c.Error = "no data partition for the verity hash partition"
		return
	}
	d, h := parts[c.Data], parts[c.Hash]
	uuidHex := strings.ReplaceAll(d.UUID+h.UUID, "-", "")
	root := uuidHex
	var sigPayload []byte
	if c.Signature >= 0 {
		c.Signed = true
		s := parts[c.Signature]
		sigPayload = make([]byte, min(s.Size, maxSignatureSize))
		if s.Size > maxSignatureSize {
			c.SignatureError = fmt.Sprintf("signature partition of %d bytes is larger than %d", s.Size, maxSignatureSize)
		} else if _, err := f.ReadAt(sigPayload, s.Offset); err != nil {
			c.SignatureError = err.Error()
		} else if len(bytes.Trim(sigPayload, "\x00")) == 0 {
			c.Signed, c.Deferred = false, true
			if opts.Certificate != nil {
				no := false
				c.Trusted = &no
			}
		} else if doc, _, err := verity.ParseSignature(sigPayload); err != nil {
			c.SignatureError = err.Error()
		} else {
			root = doc.RootHash
		}
	}
	c.RootHash = root
	rh, err := hex.DecodeString(root)
	if err != nil {
		c.Error = "root hash is not hex"
		return
	}
	switch {
	case root != uuidHex:
		c.Error = fmt.Sprintf("partition UUIDs encode root hash %s, the signature names %s", uuidHex, root)
	default:
		// The hash superblock sizes the tree Verify builds in memory:
		// it must describe no more data than the data partition holds.
		hashSec := io.NewSectionReader(f, h.Offset, h.Size)
		if sb, err := verity.ReadSuperblock(hashSec); err == nil &&
			(sb.DataBlockSize == 0 || sb.DataBlocks > uint64(d.Size)/uint64(sb.DataBlockSize)) {
			c.Error = fmt.Sprintf("verity superblock describes %d blocks of %d bytes, more than the %d-byte data partition", sb.DataBlocks, sb.DataBlockSize, d.Size)
		} else if err := verity.Verify(io.NewSectionReader(f, d.Offset, d.Size), hashSec, rh); err != nil {
			c.Error = err.Error()
		} else {
			c.Verified = true
		}
	}
	if c.Signed && c.SignatureError == "" {
		cert, err := verity.CheckSignature(sigPayload, rh)
		if err != nil {
			c.SignatureError = err.Error()
			return
		}
		c.SignatureValid = true
		c.Signer = cert.Subject.String()
		if opts.Certificate != nil {
			ok := bytes.Equal(cert.Raw, opts.Certificate.Raw)
			c.Trusted = &ok
		}
	}
}
