package disk

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/builtins/repart"
	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/arch"
)

// TestHugeSizesAreRefused: sizes near 2^64 in repart.d used to wrap
// around in the layout arithmetic (an image smaller than asked for, or
// partition offsets past its end); they are a clear error and no file is
// left behind.
func TestHugeSizesAreRefused(t *testing.T) {
	for name, conf := range map[string]string{
		"min size":         "[Partition]\nType=linux-generic\nSizeMinBytes=15E\n",
		"padding":          "[Partition]\nType=linux-generic\nPaddingMinBytes=15E\n",
		"size and padding": "[Partition]\nType=linux-generic\nSizeMinBytes=8E\nPaddingMinBytes=8E\n",
		"rounding":         "[Partition]\nType=linux-generic\nSizeMinBytes=18446744073709551000\n",
	} {
		p, err := repart.Parse("10-x.conf", []byte(conf))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		dir := t.TempDir()
		out := filepath.Join(dir, "x.raw")
		_, err = Build(context.Background(), out, &tree.Node{Kind: tree.Dir, Mode: 0o755}, []*repart.Partition{p}, Options{Arch: arch.X86_64})
		if err == nil || !strings.Contains(err.Error(), "too large") {
			t.Errorf("%s: got %v, want a size error", name, err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("%s: left %v behind", name, ents[0].Name())
		}
	}
}
