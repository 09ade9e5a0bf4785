package mkosi

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseINI: any configuration file content parses or fails with an
// error.
func FuzzParseINI(f *testing.F) {
	files, _ := filepath.Glob("testdata/projects/*/mkosi.conf")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("[Match]\nDistribution=|debian\n[Content]\nPackages=a\n  b\n# c\nExtraTrees=x:/y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ParseINI("mkosi.conf", data, nil)
	})
}
