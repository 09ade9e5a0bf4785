package deb

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sxb-build/sxb/builtins/fetch"
	"github.com/sxb-build/sxb/internal/atomicfile"
)

// Pkg is one binary package version as an index lists it.
type Pkg struct {
	Name, Version, Arch string
	MultiArch           string
	Essential           bool
	Priority            string
	Source              string
	Depends, PreDepends string
	Recommends          string
	Provides            string
	Conflicts, Breaks   string
	Filename            string
	Size                int64
	SHA256              string
	// Origin is "<suite>/<component>" and Base the repository base URL
	// the Filename is relative to.
	Origin, Base string
}

// indexCacheVersion changes whenever Pkg or the parser changes, so stale
// cache entries are not read.
const indexCacheVersion = "deb-index-v3"

func sha256hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// parsePackagesFrom parses a Packages index (uncompressed) from a stream,
// so parsing overlaps decompression.
//
// It also returns every package name in the order apt first meets it
// (a stanza's own name, then the names of its relationship fields in the
// order apt's list parser reads them): apt numbers packages in that order
// and falls back on that number to choose among equal providers.
func parsePackagesFrom(rd io.Reader, origin, base string) ([]Pkg, []string, error) {
	br := bufio.NewReaderSize(rd, 1<<20)
	// Packages fill fixed-size chunks joined once at the end: growing one
	// slice of ~60,000 large structs copied it many times over (a third
	// of a cold parse of bookworm/main).
	const chunkLen = 4096
	var chunks [][]Pkg
	out := make([]Pkg, 0, chunkLen)
	var mentions []string
	seen := map[string]bool{}
	var suggests, replaces, enhances string
	mention := func(field string) {
		for _, part := range strings.FieldsFunc(field, func(r rune) bool { return r == ',' || r == '|' }) {
			name := strings.TrimSpace(part)
			if i := strings.IndexAny(name, " (:[<\t"); i >= 0 {
				name = name[:i]
			}
			if name != "" && !seen[name] {
				seen[name] = true
				mentions = append(mentions, name)
			}
		}
	}
	lineNo := 0
	var p Pkg
	have := false
	startLine := 0
	finish := func() error {
		if !have {
			return nil
		}
		have = false
		if p.Name == "" || p.Version == "" || p.Arch == "" {
			return fmt.Errorf("line %d: package stanza without Package, Version or Architecture", startLine)
		}
		p.Origin, p.Base = origin, base
		mention(p.Name)
		for _, f := range []string{p.PreDepends, p.Depends, p.Conflicts, p.Breaks, p.Recommends, suggests, replaces, enhances, p.Provides} {
			mention(f)
		}
		if len(out) == chunkLen {
			chunks, out = append(chunks, out), make([]Pkg, 0, chunkLen)
		}
		out = append(out, p)
		p = Pkg{}
		suggests, replaces, enhances = "", "", ""
		return nil
	}
	var last *string
	for {
		line, rerr := br.ReadSlice('\n')
		if rerr == bufio.ErrBufferFull {
			// A line longer than the buffer: collect it whole.
			long := append([]byte{}, line...)
			for rerr == bufio.ErrBufferFull {
				line, rerr = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if rerr != nil && rerr != io.EOF {
			return nil, nil, rerr
		}
		if len(line) == 0 && rerr == io.EOF {
			break
		}
		lineNo++
		line = bytes.TrimSuffix(line, []byte("\n"))
		if len(line) == 0 || (len(line) == 1 && line[0] == '\r') {
			if err := finish(); err != nil {
				return nil, nil, err
			}
			last = nil
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if last != nil {
				*last += " " + strings.TrimSpace(string(line))
			}
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return nil, nil, fmt.Errorf("line %d: not a \"Field: value\" line", lineNo)
		}
		if !have {
			have, startLine = true, lineNo
		}
		name := line[:colon]
		last = nil
		if !usedField[string(name)] {
			// Descriptions, maintainers and the like: not kept, so not
			// copied into strings.
			continue
		}
		val := string(bytes.TrimSpace(line[colon+1:]))
		switch string(name) {
		case "Package":
			p.Name = val
		case "Version":
			p.Version = val
		case "Architecture":
			p.Arch = val
		case "Multi-Arch":
			p.MultiArch = val
		case "Essential":
			p.Essential = val == "yes"
		case "Priority":
			p.Priority = val
		case "Source":
			p.Source = val
		case "Depends":
			p.Depends, last = val, &p.Depends
		case "Pre-Depends":
			p.PreDepends, last = val, &p.PreDepends
		case "Recommends":
			p.Recommends, last = val, &p.Recommends
		case "Provides":
			p.Provides, last = val, &p.Provides
		case "Conflicts":
			p.Conflicts, last = val, &p.Conflicts
		case "Suggests":
			suggests, last = val, &suggests
		case "Replaces":
			replaces, last = val, &replaces
		case "Enhances":
			enhances, last = val, &enhances
		case "Breaks":
			p.Breaks, last = val, &p.Breaks
		case "Filename":
			p.Filename = val
		case "Size":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return nil, nil, fmt.Errorf("line %d: bad Size %q", lineNo, val)
			}
			p.Size = n
		case "SHA256":
			p.SHA256 = strings.ToLower(val)
		}
	}
	if err := finish(); err != nil {
		return nil, nil, err
	}
	if len(chunks) > 0 {
		all := make([]Pkg, 0, len(chunks)*chunkLen+len(out))
		for _, c := range chunks {
			all = append(all, c...)
		}
		out = append(all, out...)
	}
	return out, mentions, nil
}

// usedField names the Packages fields parsePackagesFrom reads.
var usedField = map[string]bool{
	"Package": true, "Version": true, "Architecture": true, "Multi-Arch": true, "Essential": true,
	"Priority": true, "Source": true, "Depends": true, "Pre-Depends": true, "Recommends": true,
	"Provides": true, "Conflicts": true, "Suggests": true, "Replaces": true, "Enhances": true,
	"Breaks": true, "Filename": true, "Size": true, "SHA256": true,
}

// parsedIndex is the cached form of one Packages index.
type parsedIndex struct {
	Pkgs     []Pkg
	Mentions []string
}

// indexCachePath is where the parsed form of the index with digest sha is
// cached.
func indexCachePath(cacheDir, sha string) string {
	return filepath.Join(cacheDir, "deb-index", sha256hex([]byte(indexCacheVersion+"\x00"+sha)))
}

// cachedIndex reads the parsed form of the index with digest sha from the
// cache (nil when absent or unreadable).
func cachedIndex(cacheDir, sha string) *parsedIndex {
	b, err := os.ReadFile(indexCachePath(cacheDir, sha))
	if err != nil {
		return nil
	}
	return decodeIndex(b)
}

// storeIndex caches the parsed form of the index with digest sha. It is
// best effort: a failure only costs parsing next time.
func storeIndex(cacheDir, sha string, pi *parsedIndex) {
	cfile := indexCachePath(cacheDir, sha)
	if err := os.MkdirAll(filepath.Dir(cfile), 0o755); err != nil {
		return
	}
	atomicfile.Write(cfile, encodeIndex(pi), 0o600)
}

// The cached form of a parsed index is a flat list of length-prefixed
// strings (uvarints): the mentions, then per package its fields in the
// order of pkgFields, Essential as "1" or "" and Size in decimal; decoding
// takes every string as a slice of one copy of the file. It replaced gob,
// whose reflection-driven decoding was most of a warm resolution (0.5 s
// against 0.05 s for bookworm/main).

// pkgFields lists the string fields of a Pkg the cache keeps (Origin and
// Base are the reader's).
func pkgFields(p *Pkg) []*string {
	return []*string{&p.Name, &p.Version, &p.Arch, &p.MultiArch, &p.Priority, &p.Source, &p.Depends, &p.PreDepends,
		&p.Recommends, &p.Provides, &p.Conflicts, &p.Breaks, &p.Filename, &p.SHA256}
}

func encodeIndex(pi *parsedIndex) []byte {
	// The exact size first: growing the buffer as it filled copied it
	// over and over (most of the cost of caching bookworm/main).
	strLen := func(n int) int {
		l := n + 1
		for v := uint64(n); v >= 0x80; v >>= 7 {
			l++
		}
		return l
	}
	size := 2 * binary.MaxVarintLen64 // the two counts
	for _, m := range pi.Mentions {
		size += strLen(len(m))
	}
	for i := range pi.Pkgs {
		p := &pi.Pkgs[i]
		for _, f := range pkgFields(p) {
			size += strLen(len(*f))
		}
		size += strLen(len(strconv.FormatBool(p.Essential))) + strLen(len(strconv.FormatInt(p.Size, 10)))
	}
	b := make([]byte, 0, size)
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendUvarint(b, uint64(len(pi.Mentions)))
	for _, m := range pi.Mentions {
		str(m)
	}
	b = binary.AppendUvarint(b, uint64(len(pi.Pkgs)))
	for i := range pi.Pkgs {
		p := &pi.Pkgs[i]
		for _, f := range pkgFields(p) {
			str(*f)
		}
		str(strconv.FormatBool(p.Essential))
		str(strconv.FormatInt(p.Size, 10))
	}
	return b
}

// decodeIndex reads what encodeIndex wrote (nil when it is not that).
func decodeIndex(b []byte) *parsedIndex {
	s := string(b)
	pos := 0
	bad := false
	num := func() int {
		v, n := binary.Uvarint(b[pos:])
		if n <= 0 || v > uint64(len(b)) {
			bad = true
			return 0
		}
		pos += n
		return int(v)
	}
	str := func() string {
		n := num()
		if bad || pos+n > len(s) {
			bad = true
			return ""
		}
		pos += n
		return s[pos-n : pos]
	}
	pi := &parsedIndex{}
	nm := num()
	pi.Mentions = make([]string, 0, min(nm, len(b)))
	for i := 0; i < nm && !bad; i++ {
		pi.Mentions = append(pi.Mentions, str())
	}
	np := num()
	pi.Pkgs = make([]Pkg, 0, min(np, len(b)/16))
	for i := 0; i < np && !bad; i++ {
		pi.Pkgs = append(pi.Pkgs, Pkg{})
		p := &pi.Pkgs[len(pi.Pkgs)-1]
		for _, f := range pkgFields(p) {
			*f = str()
		}
		var err error
		if p.Essential, err = strconv.ParseBool(str()); err != nil {
			return nil
		}
		if p.Size, err = strconv.ParseInt(str(), 10, 64); err != nil {
			return nil
		}
	}
	if bad || pos != len(b) {
		return nil
	}
	return pi
}

// parseIndex parses a Packages index, compressed as its name says, from rd.
func parseIndex(rd io.Reader, name string) (*parsedIndex, error) {
	done := func() error { return nil }
	if strings.HasSuffix(name, ".xz") || strings.HasSuffix(name, ".gz") || strings.HasSuffix(name, ".zst") {
		var err error
		if rd, done, err = decompressor(rd, name); err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
	}
	pkgs, mentions, err := parsePackagesFrom(rd, "", "")
	if derr := done(); err == nil && derr != nil {
		return nil, fmt.Errorf("reading %s: %w", name, derr)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", name, err)
	}
	return &parsedIndex{Pkgs: pkgs, Mentions: mentions}, nil
}

// readIndex returns the parsed index ix: from the parsed-index cache, or
// parsed while it downloads, or (when streaming fails) downloaded with
// retries, then parsed.
func readIndex(ctx context.Context, f *fetch.Fetcher, cacheDir string, ix index) (*parsedIndex, error) {
	pi := cachedIndex(cacheDir, ix.sum.sha)
	if pi == nil {
		item := fetch.Item{URL: ix.url, Size: ix.sum.size, SHA256: ix.sum.sha}
		_, err := f.Stream(ctx, item, func(r io.Reader) error {
			var err error
			pi, err = parseIndex(r, ix.name)
			return err
		})
		if _, cached := f.Cached(item); err != nil && cached {
			// The index arrived whole and checked: the error is the
			// parser's.
			return nil, fmt.Errorf("%s: %w", ix.canonical, err)
		}
		if err != nil {
			if pi, err = fetchIndex(ctx, f, ix); err != nil {
				return nil, err
			}
		}
		storeIndex(cacheDir, ix.sum.sha, pi)
	}
	for i := range pi.Pkgs {
		pi.Pkgs[i].Origin, pi.Pkgs[i].Base = ix.origin, ix.base
	}
	return pi, nil
}

// fetchIndex downloads ix (with retries, from its canonical name when the
// by-hash file is missing) and parses it.
func fetchIndex(ctx context.Context, f *fetch.Fetcher, ix index) (*parsedIndex, error) {
	path, err := f.Fetch(ctx, fetch.Item{URL: ix.url, Size: ix.sum.size, SHA256: ix.sum.sha})
	if err != nil && ix.url != ix.canonical {
		// Mirrors in the middle of a sync may lack the by-hash file;
		// the canonical name is checked against the same hash.
		path, err = f.Fetch(ctx, fetch.Item{URL: ix.canonical, Size: ix.sum.size, SHA256: ix.sum.sha})
	}
	if err != nil {
		return nil, fmt.Errorf("fetching index: %w", err)
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", ix.name, err)
	}
	defer fh.Close()
	pi, err := parseIndex(fh, ix.name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ix.canonical, err)
	}
	return pi, nil
}
