// Package repart reads systemd-repart partition definitions (repart.d
// `[Partition]` files, or the same settings given as key/value pairs from
// Starlark) and checks them the way systemd-repart 257 does, so a layout that
// sxb accepts is one repart accepts, and a layout repart refuses is refused
// here with the same reason, positioned at file:line.
//
// Only the settings sxb implements are accepted; any other repart setting is
// an error naming the file, line and key rather than being ignored.
package repart

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/sxb-build/sxb/internal/diag"
)

// Unset marks a size setting that was not given.
const Unset = math.MaxUint64

// Tristate is a boolean setting that may be left unset.
type Tristate int8

// Tristate values.
const (
	Auto Tristate = -1
	No   Tristate = 0
	Yes  Tristate = 1
)

// Verity modes.
const (
	VerityOff       = "off"
	VerityData      = "data"
	VerityHash      = "hash"
	VeritySignature = "signature"
)

// Minimize modes.
const (
	MinimizeOff   = "off"
	MinimizeBest  = "best"
	MinimizeGuess = "guess"
)

// CopyFile is one CopyFiles= entry: Source in the input tree is copied to
// Target in the partition's file system. Both are absolute, clean paths.
type CopyFile struct {
	Source, Target string
}

// Partition is one partition definition.
type Partition struct {
	// Pos is where the definition comes from (the file, line 1, or the
	// Starlark call).
	Pos diag.Pos
	// Name is the definition's file name ("10-root.conf") or a synthetic
	// name for Starlark values.
	Name string
	// TypeName is Type= as written; Type is its resolution for the native
	// architecture (see Type.WithArch to retarget).
	TypeName string
	Type     Type
	// Label is the GPT partition label; LabelSet tells an explicit empty
	// label from none.
	Label    string
	LabelSet bool
	// UUID is the partition UUID when set (UUIDSet); UUIDNull asks for the
	// all-zero UUID.
	UUID              ID128
	UUIDSet, UUIDNull bool
	Format            string
	CopyFiles         []CopyFile
	ExcludeFiles      []string
	MakeDirectories   []string
	Minimize          string
	SizeMinBytes      uint64
	SizeMaxBytes      uint64
	PaddingMinBytes   uint64
	Verity            string
	VerityMatchKey    string
	// SplitName is the SplitName= template ("%t" by default, "" for "-").
	SplitName        string
	ReadOnly         Tristate
	NoAuto           Tristate
	GrowFileSystem   Tristate
	Flags            uint64
	Compression      string
	CompressionLevel string

	// keyPos remembers where each key was last set, for later errors.
	keyPos map[string]diag.Pos
}

// KV is one setting as a key and its textual value, in repart.d syntax.
type KV struct {
	Key, Value string
}

// KeyPos returns where key was set, or the definition's position.
func (p *Partition) KeyPos(key string) diag.Pos {
	if pos, ok := p.keyPos[key]; ok {
		return pos
	}
	return p.Pos
}

func newPartition(pos diag.Pos, name string) *Partition {
	return &Partition{
		Pos: pos, Name: name,
		Minimize:     MinimizeOff,
		SizeMinBytes: Unset, SizeMaxBytes: Unset, PaddingMinBytes: Unset,
		Verity:   VerityOff,
		ReadOnly: Auto, NoAuto: Auto, GrowFileSystem: Auto,
		SplitName: "%t",
		keyPos:    map[string]diag.Pos{},
	}
}

// unsupportedKeys are systemd-repart settings sxb knows but does not
// implement.
var unsupportedKeys = map[string]bool{
	"Priority": true, "Weight": true, "PaddingWeight": true, "PaddingMaxBytes": true,
	"FactoryReset": true, "CopyBlocks": true, "ExcludeFilesTarget": true, "MakeSymlinks": true,
	"Encrypt": true, "Subvolumes": true, "DefaultSubvolume": true,
	"VerityDataBlockSizeBytes": true, "VerityHashBlockSizeBytes": true, "MountPoint": true,
	"EncryptedVolume": true, "SupplementFor": true, "Integrity": true, "IntegrityAlgorithm": true,
	"EncryptKDF": true, "FileSystemSectorSizeBytes": true, "AddValidateFS": true, "Discard": true,
}

// set applies one key/value to p; vpos is the position of the value.
func (p *Partition) set(kpos, vpos diag.Pos, key, value string) error {
	if unsupportedKeys[key] {
		return diag.Errorf(kpos, "%s= is a systemd-repart setting sxb does not support", key)
	}
	if strings.ContainsRune(value, '%') && key != "SplitName" {
		return diag.Errorf(vpos, "%s=: %%-specifiers are not supported: %s", key, value)
	}
	p.keyPos[key] = kpos
	switch key {
	case "Type":
		t, err := ParseType(value)
		if err != nil {
			return diag.Errorf(vpos, "Failed to parse partition type: %s", value)
		}
		p.TypeName, p.Type = value, t
	case "Label":
		if !validUTF8(value) {
			return diag.Errorf(vpos, "Partition label not valid UTF-8: %s", value)
		}
		if n := len(utf16.Encode([]rune(value))); n > 36 {
			return diag.Errorf(vpos, "Partition label too long for GPT table (%d UTF-16 units, at most 36): %q", n, value)
		}
		p.Label, p.LabelSet = value, true
	case "UUID":
		switch value {
		case "":
			p.UUID, p.UUIDSet, p.UUIDNull = ID128{}, false, false
		case "null":
			p.UUID, p.UUIDSet, p.UUIDNull = ID128{}, true, true
		default:
			id, err := ParseID128(value)
			if err != nil {
				return diag.Errorf(vpos, "Failed to parse 128-bit ID/UUID: %s", value)
			}
			p.UUID, p.UUIDSet, p.UUIDNull = id, true, false
		}
	case "Format":
		if value == "" || strings.ContainsAny(value, "/") || value == "." || value == ".." {
			return diag.Errorf(vpos, "File system type is not valid, refusing: %s", value)
		}
		p.Format = value
	case "CopyFiles":
		if value == "" {
			return nil // repart warns "No argument specified" and ignores it
		}
		src, dst, ok := strings.Cut(value, ":")
		if !ok {
			dst = src
		}
		if strings.Contains(dst, ":") {
			return diag.Errorf(vpos, "Too many arguments: %s", value)
		}
		s, err := absPath(src)
		if err != nil {
			return diag.Errorf(vpos, "CopyFiles= source %v", err)
		}
		d, err := absPath(dst)
		if err != nil {
			return diag.Errorf(vpos, "CopyFiles= target %v", err)
		}
		p.CopyFiles = append(p.CopyFiles, CopyFile{Source: s, Target: d})
	case "ExcludeFiles":
		if value == "" {
			p.ExcludeFiles = nil
			return nil
		}
		for _, w := range strings.Fields(value) {
			w = unquote(w)
			c, err := absPath(w)
			if err != nil {
				return diag.Errorf(vpos, "ExcludeFiles= %v", err)
			}
			if strings.HasSuffix(w, "/") && c != "/" {
				c += "/"
			}
			p.ExcludeFiles = append(p.ExcludeFiles, c)
		}
	case "MakeDirectories":
		for _, w := range strings.Fields(value) {
			c, err := absPath(unquote(w))
			if err != nil {
				return diag.Errorf(vpos, "MakeDirectories= %v", err)
			}
			dup := false
			for _, d := range p.MakeDirectories {
				dup = dup || d == c
			}
			if !dup {
				p.MakeDirectories = append(p.MakeDirectories, c)
			}
		}
	case "Minimize":
		switch value {
		case "", "off":
			p.Minimize = MinimizeOff
		case "best", "guess":
			p.Minimize = value
		default:
			b, ok := parseBool(value)
			if !ok {
				return diag.Errorf(vpos, "Failed to parse Minimize= value (off, best, guess or a boolean): %s", value)
			}
			p.Minimize = MinimizeOff
			if b {
				p.Minimize = MinimizeBest
			}
		}
	case "SizeMinBytes", "SizeMaxBytes", "PaddingMinBytes":
		v, err := ParseSize(value)
		if err != nil {
			return diag.Errorf(vpos, "Failed to parse size value: %s", value)
		}
		switch key {
		case "SizeMinBytes":
			p.SizeMinBytes = v / 4096 * 4096
		case "SizeMaxBytes":
			if v > math.MaxUint64-4095 {
				return diag.Errorf(vpos, "size value too large: %s", value)
			}
			p.SizeMaxBytes = (v + 4095) / 4096 * 4096
		case "PaddingMinBytes":
			p.PaddingMinBytes = v / 4096 * 4096
		}
	case "Verity":
		switch value {
		case "":
			p.Verity = VerityOff
		case VerityOff, VerityData, VerityHash, VeritySignature:
			p.Verity = value
		default:
			return diag.Errorf(vpos, "Failed to parse Verity= value (off, data, hash or signature): %s", value)
		}
	case "VerityMatchKey":
		p.VerityMatchKey = value
	case "SplitName":
		p.SplitName = value
		if value == "-" {
			p.SplitName = ""
		}
	case "ReadOnly", "NoAuto", "GrowFileSystem":
		t := Auto
		if value != "" {
			b, ok := parseBool(value)
			if !ok {
				return diag.Errorf(vpos, "Failed to parse %s= boolean: %s", key, value)
			}
			t = No
			if b {
				t = Yes
			}
		}
		switch key {
		case "ReadOnly":
			p.ReadOnly = t
		case "NoAuto":
			p.NoAuto = t
		default:
			p.GrowFileSystem = t
		}
	case "Flags":
		v, err := strconv.ParseUint(value, 0, 64)
		if err != nil {
			return diag.Errorf(vpos, "Failed to parse Flags= value: %s", value)
		}
		if v&(1<<48-1) != 0 {
			// libfdisk, through which systemd-repart 257 sets attributes,
			// silently drops bits below 48 (verified: Flags=4 yields no
			// attributes); refuse rather than write something else.
			return diag.Errorf(vpos, "Flags=%s sets GPT attribute bits below 48, which systemd-repart drops; only the type-specific bits 48-63 are supported", value)
		}
		p.Flags = v
	case "Compression":
		if !safeASCII(value) {
			return diag.Errorf(vpos, "Compression= is not safe ASCII: %q", value)
		}
		p.Compression = value
	case "CompressionLevel":
		if !safeASCII(value) {
			return diag.Errorf(vpos, "CompressionLevel= is not safe ASCII: %q", value)
		}
		p.CompressionLevel = value
	default:
		return diag.Errorf(kpos, "unknown key %s= in section [Partition]", key)
	}
	return nil
}

func validUTF8(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func safeASCII(s string) bool {
	for _, r := range s {
		if r < 0x20 || r > 0x7e || r == '\'' || r == '"' || r == '\\' {
			return false
		}
	}
	return true
}

func unquote(w string) string {
	if len(w) >= 2 && (w[0] == '"' || w[0] == '\'') && w[len(w)-1] == w[0] {
		return w[1 : len(w)-1]
	}
	return w
}

// absPath checks that p is absolute and has no ".." and returns it cleaned.
func absPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("path is not absolute: %q", p)
	}
	for _, e := range strings.Split(p, "/") {
		if e == ".." {
			return "", fmt.Errorf("path contains \"..\": %q", p)
		}
	}
	return path.Clean(p), nil
}

// parseBool accepts systemd's boolean spellings.
func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "1", "yes", "y", "true", "t", "on":
		return true, true
	case "0", "no", "n", "false", "f", "off":
		return false, true
	}
	return false, false
}

// ParseSize parses a size as systemd's parse_size with base 1024 does:
// an optional fraction and one of the suffixes B, K, M, G, T, P, E.
func ParseSize(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num, suffix := s[:i], strings.TrimSpace(s[i:])
	mult := uint64(1)
	switch suffix {
	case "", "B":
	case "K":
		mult = 1 << 10
	case "M":
		mult = 1 << 20
	case "G":
		mult = 1 << 30
	case "T":
		mult = 1 << 40
	case "P":
		mult = 1 << 50
	case "E":
		mult = 1 << 60
	default:
		return 0, fmt.Errorf("invalid size suffix in %q", s)
	}
	whole, frac, _ := strings.Cut(num, ".")
	if whole == "" || strings.Contains(frac, ".") {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	w, err := strconv.ParseUint(whole, 10, 64)
	if err != nil || w > math.MaxUint64/mult {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	v := w * mult
	if frac != "" {
		f, err := strconv.ParseUint(frac, 10, 64)
		if err != nil || len(frac) > 18 {
			return 0, fmt.Errorf("invalid size %q", s)
		}
		d := uint64(1)
		for range len(frac) {
			d *= 10
		}
		// f*mult can exceed 64 bits (".999…E"): divide the 128-bit product.
		// f < d, so the quotient is below mult and Div64 cannot overflow.
		hi, lo := bits.Mul64(f, mult)
		q, _ := bits.Div64(hi, lo, d)
		if v+q < v {
			return 0, fmt.Errorf("invalid size %q", s)
		}
		v += q
	}
	return v, nil
}

// Parse reads one repart.d file's content; name is used for positions.
func Parse(file string, content []byte) (*Partition, error) {
	return ParseEnv(file, content, nil)
}

// ParseEnv is Parse under an environment: getenv (nil for none) supplies
// the SYSTEMD_REPART_OVERRIDE_FSTYPE variables systemd-repart honours (see
// FSTypeOverride).
func ParseEnv(file string, content []byte, getenv func(string) (string, bool)) (*Partition, error) {
	p := newPartition(diag.Pos{File: file, Line: 1}, filepath.Base(file))
	sc := bufio.NewScanner(bytes.NewReader(content))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	section := ""
	sawSection := false
	var cont strings.Builder
	contLine := 0
	for ln := 1; sc.Scan(); ln++ {
		raw := strings.TrimRight(sc.Text(), "\r")
		line := raw
		if contLine == 0 {
			contLine = ln
		}
		if strings.HasSuffix(line, "\\") {
			cont.WriteString(strings.TrimSuffix(line, "\\"))
			cont.WriteString(" ")
			continue
		}
		cont.WriteString(line)
		full := cont.String()
		start := contLine
		cont.Reset()
		contLine = 0
		t := strings.TrimSpace(full)
		if t == "" || t[0] == '#' || t[0] == ';' {
			continue
		}
		pos := diag.Pos{File: file, Line: start, Col: 1 + strings.Index(full, t[:1])}
		if t[0] == '[' {
			if !strings.HasSuffix(t, "]") {
				return nil, diag.Errorf(pos, "invalid section header: %s", t)
			}
			section = t[1 : len(t)-1]
			if section != "Partition" {
				return nil, diag.Errorf(pos, "unknown section [%s] (repart.d files have only [Partition])", section)
			}
			sawSection = true // repeated sections merge, as in systemd
			continue
		}
		if section == "" {
			return nil, diag.Errorf(pos, "assignment outside of section [Partition]")
		}
		k, v, ok := strings.Cut(t, "=")
		if !ok {
			return nil, diag.Errorf(pos, "missing '=' in line: %s", t)
		}
		key, val := strings.TrimSpace(k), strings.TrimSpace(v)
		vcol := strings.Index(full, "=") + 2
		for vcol-1 < len(full) && (full[vcol-1] == ' ' || full[vcol-1] == '\t') {
			vcol++
		}
		vpos := diag.Pos{File: file, Line: start, Col: vcol}
		if err := p.set(pos, vpos, key, val); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", file, err)
	}
	if !sawSection {
		return nil, diag.Errorf(p.Pos, "no [Partition] section")
	}
	if err := p.finish(getenv); err != nil {
		return nil, err
	}
	return p, nil
}

// ParseFile reads and parses one repart.d file.
func ParseFile(file string) (*Partition, error) { return ParseFileEnv(file, nil) }

// ParseFileEnv is ParseFile under an environment (see ParseEnv).
func ParseFileEnv(file string, getenv func(string) (string, bool)) (*Partition, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading partition definition: %w", err)
	}
	return ParseEnv(file, b, getenv)
}

// FromKeys builds a partition from settings given as key/value pairs (a
// Starlark partition() value), all reported at pos, and checks it like a
// file.
func FromKeys(pos diag.Pos, name string, keys []KV) (*Partition, error) {
	return FromKeysEnv(pos, name, keys, nil)
}

// FromKeysEnv is FromKeys under an environment (see ParseEnv).
func FromKeysEnv(pos diag.Pos, name string, keys []KV, getenv func(string) (string, bool)) (*Partition, error) {
	p := newPartition(pos, name)
	for _, kv := range keys {
		if err := p.set(pos, pos, kv.Key, kv.Value); err != nil {
			return nil, err
		}
	}
	if err := p.finish(getenv); err != nil {
		return nil, err
	}
	return p, nil
}

// ReadDir reads every *.conf file of dir in name order, as systemd-repart
// does for a --definitions= directory (files linked to /dev/null are
// masked), and checks the layout as a whole.
func ReadDir(dir string) ([]*Partition, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading partition definitions: %w", err)
	}
	var names []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".conf") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var parts []*Partition
	for _, n := range names {
		f := filepath.Join(dir, n)
		if t, err := os.Readlink(f); err == nil && t == os.DevNull {
			continue
		}
		fi, err := os.Stat(f)
		if err != nil {
			return nil, fmt.Errorf("reading partition definitions: %w", err)
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		if fi, err := os.Stat(f + ".d"); err == nil && fi.IsDir() {
			return nil, diag.Errorf(diag.Pos{File: f + ".d"}, "drop-in directories for partition definitions are not supported")
		}
		p, err := ParseFile(f)
		if err != nil {
			return nil, err
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("no *.conf partition definitions in %s", dir)
	}
	if err := CheckLayout(parts); err != nil {
		return nil, err
	}
	return parts, nil
}

// IsReadOnlyFormat reports whether a file system is read-only (systemd's
// fstype_is_ro).
func IsReadOnlyFormat(f string) bool {
	return f == "erofs" || f == "squashfs" || f == "iso9660"
}

// SupportedFormats are the file systems sxb writes.
var SupportedFormats = []string{"erofs", "squashfs"}

// Populates reports whether the partition gets files (CopyFiles= or
// MakeDirectories=).
func (p *Partition) Populates() bool { return len(p.CopyFiles) > 0 || len(p.MakeDirectories) > 0 }

// finish applies the environment's file system overrides, repart's
// defaults and per-definition checks (partition_read_definition in
// repart.c), then sxb's own limits.
func (p *Partition) finish(getenv func(string) (string, bool)) error {
	at := p.Pos
	if getenv != nil {
		if fs := FSTypeOverride(p, getenv); fs != "" {
			p.Format = fs
		}
	}
	if p.SizeMinBytes != Unset && p.SizeMaxBytes != Unset && p.SizeMinBytes > p.SizeMaxBytes {
		return diag.Errorf(p.KeyPos("SizeMinBytes"), "SizeMinBytes= larger than SizeMaxBytes=, refusing.")
	}
	if p.TypeName == "" {
		return diag.Errorf(at, "Type= not defined, refusing.")
	}
	if p.Populates() && p.Format == "swap" {
		return diag.Errorf(p.KeyPos("Format"), "Format=swap and CopyFiles=/MakeDirectories=/MakeSymlinks= cannot be combined, refusing.")
	}
	implied := false
	if p.Format == "" {
		switch {
		case p.Type.Designator == Swap:
			p.Format, implied = "swap", true
		case p.Populates():
			p.Format, implied = "ext4", true
			if p.Type.Designator == ESP || p.Type.Designator == XBootLdr {
				p.Format = "vfat"
			}
		}
	}
	if p.Minimize != MinimizeOff && p.Format == "" && p.Verity != VerityHash {
		return diag.Errorf(p.KeyPos("Minimize"), "Minimize= can only be enabled if Format= or Verity=hash are set.")
	}
	if p.Minimize == MinimizeBest && p.Format != "" && !IsReadOnlyFormat(p.Format) && p.Verity != VerityHash {
		return diag.Errorf(p.KeyPos("Minimize"), "Minimize=best can only be used with read-only filesystems or Verity=hash.")
	}
	if p.Format != "" && IsReadOnlyFormat(p.Format) && !p.Populates() {
		return diag.Errorf(p.KeyPos("Format"), "Cannot format %s filesystem without source files, refusing.", p.Format)
	}
	if p.Verity != VerityOff && p.VerityMatchKey == "" {
		return diag.Errorf(p.KeyPos("Verity"), "VerityMatchKey= must be set if Verity=%s.", p.Verity)
	}
	if p.Verity == VerityOff && p.VerityMatchKey != "" {
		return diag.Errorf(p.KeyPos("VerityMatchKey"), "VerityMatchKey= can only be set if Verity= is not \"off\".")
	}
	if (p.Verity == VerityHash || p.Verity == VeritySignature) && (p.Format != "" || p.Populates()) {
		return diag.Errorf(p.KeyPos("Verity"), "CopyBlocks=/CopyFiles=/Format=/MakeDirectories=/MakeSymlinks= cannot be used with Verity=%s.", p.Verity)
	}
	if p.Verity == VeritySignature && (p.SizeMinBytes != Unset || p.SizeMaxBytes != Unset) {
		return diag.Errorf(p.KeyPos("Verity"), "SizeMinBytes=/SizeMaxBytes= cannot be used with Verity=%s.", p.Verity)
	}
	if (p.Type.IsVerity() || p.Verity == VerityData) && p.ReadOnly == Auto {
		p.ReadOnly = Yes
	}
	if p.Type.KnowsGrowFS() && p.ReadOnly != Yes && p.GrowFileSystem == Auto {
		p.GrowFileSystem = Yes
	}
	// sxb's own limits.
	if p.Format != "" && p.Format != "erofs" && p.Format != "squashfs" {
		if implied {
			return diag.Errorf(p.KeyPos("CopyFiles"), "CopyFiles= without Format= means Format=%s in systemd-repart; sxb writes only erofs and squashfs (set Format=)", p.Format)
		}
		return diag.Errorf(p.KeyPos("Format"), "Format=%s is not supported: sxb writes erofs and squashfs file systems", p.Format)
	}
	if (p.Compression != "" || p.CompressionLevel != "") && p.Format == "" {
		return diag.Errorf(p.KeyPos("Compression"), "Compression= needs Format=")
	}
	return nil
}

// CheckLayout checks the relations between partitions that systemd-repart
// checks after reading all definitions: every Verity=data/hash partition has
// exactly one hash/data sibling with the same VerityMatchKey (a signature
// sibling is optional but unique), and a minimized hash partition's data
// partition is minimized too.
func CheckLayout(parts []*Partition) error {
	for _, p := range parts {
		if p.Verity == VerityOff {
			continue
		}
		for _, mode := range []string{VerityData, VerityHash, VeritySignature} {
			if mode == p.Verity {
				continue
			}
			n := 0
			for _, q := range parts {
				if q != p && q.Verity == mode && q.VerityMatchKey == p.VerityMatchKey {
					n++
				}
			}
			switch {
			case n == 0 && mode != VeritySignature:
				return diag.Errorf(p.KeyPos("Verity"), "Missing verity %s partition for verity %s partition with VerityMatchKey=%s.", mode, p.Verity, p.VerityMatchKey)
			case n > 1:
				return diag.Errorf(p.KeyPos("Verity"), "Multiple verity %s partitions found for verity %s partition with VerityMatchKey=%s.", mode, p.Verity, p.VerityMatchKey)
			}
		}
	}
	for _, p := range parts {
		if p.Verity != VerityHash || p.Minimize == MinimizeOff {
			continue
		}
		d := Sibling(parts, p, VerityData)
		if d != nil && d.Minimize == MinimizeOff {
			return diag.Errorf(p.KeyPos("Minimize"), "Minimize= set for verity hash partition but data partition does not set CopyBlocks= or Minimize=.")
		}
	}
	return nil
}

// Sibling returns the partition with Verity=mode and p's VerityMatchKey.
func Sibling(parts []*Partition, p *Partition, mode string) *Partition {
	if p.Verity == VerityOff {
		return nil
	}
	for _, q := range parts {
		if q != p && q.Verity == mode && q.VerityMatchKey == p.VerityMatchKey {
			return q
		}
	}
	return nil
}

// ErrNoKey is returned (wrapped) when a layout needs a signing key.
var ErrNoKey = errors.New("verity signature partition requested but no private key and certificate provided")
