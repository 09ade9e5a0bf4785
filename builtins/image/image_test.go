package image

import (
	"strings"
	"testing"
)

func TestFormats(t *testing.T) {
	if got := strings.Join(Formats(), " "); got != "erofs squashfs" {
		t.Errorf("Formats() = %s", got)
	}
}

// CheckCompression agrees with what the writers do: it accepts what they
// write and refuses, with the reason, what they would refuse.
func TestCheckCompression(t *testing.T) {
	for _, c := range []struct{ format, compression, level, err string }{
		{"erofs", "", "", ""},
		{"erofs", "none", "", ""},
		{"erofs", "lz4", "", `"lz4" is not a erofs compression (want one of "none")`},
		{"squashfs", "", "", ""},
		{"squashfs", "xz", "", ""},
		{"squashfs", "zstd", "19", ""},
		{"squashfs", "lzo", "", `"lzo" is not a squashfs compression (want one of "gzip", "xz", "zstd", "lz4")`},
		{"squashfs", "gzip", "10", "gzip level 10 out of range 1..9"},
		{"squashfs", "xz", "3", "xz takes no level"},
		{"squashfs", "zstd", "high", "CompressionLevel=high: not a number"},
		{"ext4", "gzip", "", `"gzip" is not a ext4 compression`},
	} {
		err := CheckCompression(c.format, c.compression, c.level)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s %s %s: %v", c.format, c.compression, c.level, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s %s %s: %v, want %s", c.format, c.compression, c.level, err, c.err)
		}
	}
}
