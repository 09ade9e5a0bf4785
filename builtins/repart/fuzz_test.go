package repart

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: any repart.d content parses or fails with an error, and a
// parsed definition passes CheckLayout or fails with an error.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"../disk/testdata/repart257/custom.repart.d", "../disk/testdata/repart257/big.repart.d"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.conf"))
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte("[Partition]\nType=root\nCopyFiles=/usr:/usr\nSizeMinBytes=1.5G\nVerity=data\nVerityMatchKey=root\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("10-x.conf", data)
		if err != nil {
			return
		}
		CheckLayout([]*Partition{p})
	})
}

// TestParseSizeFractionOverflow: the fraction times the suffix used to
// wrap around 64 bits and give a size far below the one written.
func TestParseSizeFractionOverflow(t *testing.T) {
	for in, want := range map[string]uint64{
		"1.999999999999999999E": 1<<60 + (1<<60)*999999999999999999/1000000000000000000, // exact constant arithmetic
		"1.5G":                  3 << 29,
		"0.5K":                  512,
	} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}
