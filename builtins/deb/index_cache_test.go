package deb

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// The cached form of a parsed index reads back as written, and anything
// cut short or altered in its structure reads as absent.
func TestIndexCacheRoundTrip(t *testing.T) {
	text := `Package: a
Version: 1:2.0-1
Architecture: amd64
Essential: yes
Priority: required
Depends: b (>= 1), c | d
Provides: v (= 1)
Filename: pool/main/a/a_2.0-1_amd64.deb
Size: 1234
SHA256: 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff

Package: b
Version: 1
Architecture: all
Multi-Arch: foreign
Source: bsrc (1)
Pre-Depends: a
Recommends: e
Conflicts: f
Breaks: g (<< 2)
Filename: pool/main/b/b_1_all.deb
Size: 0
SHA256: ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100
`
	pkgs, mentions, err := parsePackagesFrom(strings.NewReader(text), "", "")
	if err != nil {
		t.Fatal(err)
	}
	pi := &parsedIndex{Pkgs: pkgs, Mentions: mentions}
	enc := encodeIndex(pi)
	got := decodeIndex(enc)
	if got == nil || !reflect.DeepEqual(got, pi) {
		t.Fatalf("decoded %+v, want %+v", got, pi)
	}
	if len(pi.Pkgs) != 2 || !pi.Pkgs[0].Essential || pi.Pkgs[0].Size != 1234 || pi.Pkgs[1].MultiArch != "foreign" {
		t.Fatalf("fixture parsed unexpectedly: %+v", pi.Pkgs)
	}
	for _, n := range []int{0, 1, len(enc) / 2, len(enc) - 1} {
		if decodeIndex(enc[:n]) != nil {
			t.Errorf("a cache file cut to %d of %d bytes decodes", n, len(enc))
		}
	}
	if decodeIndex(append(enc[:len(enc):len(enc)], 0)) != nil {
		t.Error("a cache file with a trailing byte decodes")
	}
}

// encodeIndex sizes its buffer exactly: the encoding never outgrows it.
func TestEncodeIndexPresized(t *testing.T) {
	pi := &parsedIndex{Mentions: []string{"a", strings.Repeat("m", 300)}}
	for i := 0; i < 500; i++ {
		pi.Pkgs = append(pi.Pkgs, Pkg{Name: fmt.Sprint("p", i), Version: "1.0", Arch: "amd64", Essential: i%2 == 0, Size: int64(i) << 20,
			Depends: strings.Repeat("d", i)})
	}
	b := encodeIndex(pi)
	if len(b) > cap(b) || cap(b)-len(b) > 2*binary.MaxVarintLen64 {
		t.Errorf("encoded %d bytes into a buffer of %d", len(b), cap(b))
	}
	got := decodeIndex(b)
	if got == nil || len(got.Pkgs) != 500 || got.Pkgs[499].Depends != pi.Pkgs[499].Depends || got.Mentions[1] != pi.Mentions[1] {
		t.Fatalf("round trip lost data")
	}
}
