package rpm

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/gob"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/sxb-build/sxb/internal/atomicfile"
	"github.com/ulikunitz/xz"
)

// repoPackage is one package of a repository's primary.xml.
type repoPackage struct {
	Name     string
	Arch     string
	EVR      EVR
	Location string // relative to the repository base (or Base)
	Base     string // xml:base of the location, if any
	Size     int64
	SumType  string
	Sum      string // hex checksum of the rpm file; also the pkgid

	Provides    []Dep
	Requires    []Dep
	Conflicts   []Dep
	Obsoletes   []Dep
	Recommends  []Dep
	Supplements []Dep
	Suggests    []Dep
	Enhances    []Dep
	Files       []string // the file list in primary (a subset)
}

// nevra formats the package as name-[epoch:]version-release.arch.
func (p *repoPackage) nevra() string {
	return p.Name + "-" + p.EVR.String() + "." + p.Arch
}

// repoMD is the parsed repomd.xml.
type repoMD struct {
	Revision string `xml:"revision"`
	Data     []struct {
		Type     string `xml:"type,attr"`
		Checksum struct {
			Type  string `xml:"type,attr"`
			Value string `xml:",chardata"`
		} `xml:"checksum"`
		OpenChecksum struct {
			Type  string `xml:"type,attr"`
			Value string `xml:",chardata"`
		} `xml:"open-checksum"`
		Location struct {
			Href string `xml:"href,attr"`
		} `xml:"location"`
		Size     int64 `xml:"size"`
		OpenSize int64 `xml:"open-size"`
	} `xml:"data"`
}

// mdFile describes one metadata file listed in repomd.xml.
type mdFile struct {
	Href    string
	SumType string
	Sum     string
	Size    int64
	// OpenSumType, OpenSum and OpenSize describe the decompressed file,
	// when repomd.xml says.
	OpenSumType string
	OpenSum     string
	OpenSize    int64
}

func parseRepoMD(b []byte) (*repoMD, error) {
	var md repoMD
	if err := xml.Unmarshal(b, &md); err != nil {
		return nil, fmt.Errorf("parsing repomd.xml: %w", err)
	}
	return &md, nil
}

func (md *repoMD) file(typ string) (mdFile, bool) {
	for _, d := range md.Data {
		if d.Type == typ {
			return mdFile{Href: d.Location.Href, SumType: d.Checksum.Type, Sum: strings.ToLower(strings.TrimSpace(d.Checksum.Value)), Size: d.Size,
				OpenSumType: d.OpenChecksum.Type, OpenSum: strings.ToLower(strings.TrimSpace(d.OpenChecksum.Value)), OpenSize: d.OpenSize}, true
		}
	}
	return mdFile{}, false
}

// newHash returns the hash for a repodata checksum type.
func newHash(typ string) (hash.Hash, error) {
	switch typ {
	case "sha256":
		return sha256.New(), nil
	case "sha512":
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("unsupported checksum type %q", typ)
}

// checkSum verifies b against the checksum sum of type typ.
func checkSum(b []byte, typ, sum string) error {
	h, err := newHash(typ)
	if err != nil {
		return err
	}
	h.Write(b)
	if got := hex.EncodeToString(h.Sum(nil)); got != strings.ToLower(sum) {
		return fmt.Errorf("%s mismatch: got %s, want %s", typ, got, sum)
	}
	return nil
}

// maxMetadata bounds decompressed metadata when repomd.xml gives no
// open-size (Tumbleweed's filelists are about 1 GiB).
const maxMetadata = 8 << 30

// decompress picks the decompressor from the file name (and magic bytes)
// and refuses output longer than limit bytes.
func decompress(name string, b []byte, limit int64) ([]byte, error) {
	var r io.Reader
	switch {
	case strings.HasSuffix(name, ".gz") || bytes.HasPrefix(b, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		r = zr
	case strings.HasSuffix(name, ".xz") || bytes.HasPrefix(b, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		xr, err := xz.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		r = xr
	case strings.HasSuffix(name, ".zst") || bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	default:
		r = bytes.NewReader(b)
	}
	out, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(out)) > limit {
		return nil, fmt.Errorf("decompresses to more than %d bytes", limit)
	}
	return out, nil
}

// xml shapes of primary.xml.
type xmlEntry struct {
	Name  string `xml:"name,attr"`
	Flags string `xml:"flags,attr"`
	Epoch string `xml:"epoch,attr"`
	Ver   string `xml:"ver,attr"`
	Rel   string `xml:"rel,attr"`
	Pre   string `xml:"pre,attr"`
}

type xmlDeps struct {
	Entries []xmlEntry `xml:"entry"`
}

type xmlPackage struct {
	Type    string `xml:"type,attr"`
	Name    string `xml:"name"`
	Arch    string `xml:"arch"`
	Version struct {
		Epoch string `xml:"epoch,attr"`
		Ver   string `xml:"ver,attr"`
		Rel   string `xml:"rel,attr"`
	} `xml:"version"`
	Checksum struct {
		Type  string `xml:"type,attr"`
		Value string `xml:",chardata"`
	} `xml:"checksum"`
	Size struct {
		Package int64 `xml:"package,attr"`
	} `xml:"size"`
	Location struct {
		Href string `xml:"href,attr"`
		Base string `xml:"base,attr"`
	} `xml:"location"`
	Format struct {
		Provides    xmlDeps `xml:"provides"`
		Requires    xmlDeps `xml:"requires"`
		Conflicts   xmlDeps `xml:"conflicts"`
		Obsoletes   xmlDeps `xml:"obsoletes"`
		Recommends  xmlDeps `xml:"recommends"`
		Supplements xmlDeps `xml:"supplements"`
		Suggests    xmlDeps `xml:"suggests"`
		Enhances    xmlDeps `xml:"enhances"`
		Files       []struct {
			Type string `xml:"type,attr"`
			Path string `xml:",chardata"`
		} `xml:"file"`
	} `xml:"format"`
}

func convDeps(x xmlDeps) ([]Dep, error) {
	var out []Dep
	for _, e := range x.Entries {
		f, err := parseFlags(e.Flags)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name, err)
		}
		d := Dep{Name: e.Name, Flags: f, Pre: e.Pre == "1"}
		if f != 0 {
			d.EVR = EVR{Epoch: e.Epoch, Version: e.Ver, Release: e.Rel}
		}
		out = append(out, d)
	}
	return out, nil
}

// parsePrimary reads primary.xml, streaming package by package.
func parsePrimary(r io.Reader) ([]*repoPackage, error) {
	dec := xml.NewDecoder(r)
	var out []*repoPackage
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("parsing primary.xml: %w", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local != "package" {
			continue
		}
		var xp xmlPackage
		if err := dec.DecodeElement(&xp, &se); err != nil {
			return nil, fmt.Errorf("parsing primary.xml: %w", err)
		}
		if xp.Type != "" && xp.Type != "rpm" {
			continue
		}
		p := &repoPackage{
			Name:     xp.Name,
			Arch:     xp.Arch,
			EVR:      EVR{Epoch: xp.Version.Epoch, Version: xp.Version.Ver, Release: xp.Version.Rel},
			Location: xp.Location.Href,
			Base:     xp.Location.Base,
			Size:     xp.Size.Package,
			SumType:  xp.Checksum.Type,
			Sum:      strings.ToLower(strings.TrimSpace(xp.Checksum.Value)),
		}
		if p.SumType == "sha" {
			p.SumType = "sha1"
		}
		var errs []error
		conv := func(dst *[]Dep, x xmlDeps) {
			d, err := convDeps(x)
			*dst = d
			errs = append(errs, err)
		}
		conv(&p.Provides, xp.Format.Provides)
		conv(&p.Requires, xp.Format.Requires)
		conv(&p.Conflicts, xp.Format.Conflicts)
		conv(&p.Obsoletes, xp.Format.Obsoletes)
		conv(&p.Recommends, xp.Format.Recommends)
		conv(&p.Supplements, xp.Format.Supplements)
		conv(&p.Suggests, xp.Format.Suggests)
		conv(&p.Enhances, xp.Format.Enhances)
		if err := errors.Join(errs...); err != nil {
			return nil, fmt.Errorf("parsing primary.xml: package %s: %w", p.Name, err)
		}
		for _, f := range xp.Format.Files {
			p.Files = append(p.Files, strings.TrimSpace(f.Path))
		}
		out = append(out, p)
	}
}

// fileList is the parsed filelists.xml: pkgid -> files.
type fileList map[string][]string

// parseFilelists reads filelists.xml, keeping only the paths in want (all
// of them when want is nil): repositories such as Tumbleweed's list
// millions of files, of which dependencies name a few thousand.
func parseFilelists(r io.Reader, want map[string]bool) (fileList, error) {
	dec := xml.NewDecoder(r)
	out := fileList{}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("parsing filelists.xml: %w", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local != "package" {
			continue
		}
		var xp struct {
			PkgID string `xml:"pkgid,attr"`
			Files []struct {
				Path string `xml:",chardata"`
			} `xml:"file"`
		}
		if err := dec.DecodeElement(&xp, &se); err != nil {
			return nil, fmt.Errorf("parsing filelists.xml: %w", err)
		}
		var fs []string
		for _, f := range xp.Files {
			p := strings.TrimSpace(f.Path)
			if want == nil || want[p] {
				fs = append(fs, p)
			}
		}
		if len(fs) > 0 {
			out[strings.ToLower(xp.PkgID)] = fs
		}
	}
}

// cacheVersion changes whenever the gob layout of parsed metadata changes.
const cacheVersion = "v2"

// loadCachedGob reads a parsed-metadata cache entry keyed by a verified
// checksum. A missing or unreadable entry returns false.
func loadCachedGob(dir, key string, v any) bool {
	if dir == "" {
		return false
	}
	f, err := os.Open(filepath.Join(dir, "rpm-md", cacheVersion+"-"+key+".gob"))
	if err != nil {
		return false
	}
	defer f.Close()
	return gob.NewDecoder(f).Decode(v) == nil
}

func storeCachedGob(dir, key string, v any) error {
	if dir == "" {
		return nil
	}
	d := filepath.Join(dir, "rpm-md")
	if err := os.MkdirAll(d, 0o755); err != nil {
		return fmt.Errorf("caching metadata: %w", err)
	}
	tmp, err := atomicfile.Create(filepath.Join(d, cacheVersion+"-"+key+".gob"), 0o600)
	if err != nil {
		return fmt.Errorf("caching metadata: %w", err)
	}
	defer tmp.Abort()
	if err := gob.NewEncoder(tmp).Encode(v); err != nil {
		return fmt.Errorf("caching metadata: %w", err)
	}
	if err := tmp.Commit(); err != nil {
		return fmt.Errorf("caching metadata: %w", err)
	}
	return nil
}
