package erofs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz/lzma"

	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/testenv"
)

// text returns n bytes of compressible pseudo-text.
func text(seed uint64, n int) []byte {
	words := strings.Fields("the quick brown fox jumps over lazy dog erofs cluster block " +
		"inode compress kernel mount image extension system data offset length 0123 4567 89")
	var b bytes.Buffer
	x := seed*0x9e3779b97f4a7c15 + 1
	for b.Len() < n {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b.WriteString(words[x%uint64(len(words))])
		if x%11 == 0 {
			b.WriteByte('\n')
		} else {
			b.WriteByte(' ')
		}
	}
	return b.Bytes()[:n]
}

// compressFixture is fixture plus files that exercise the compressed
// layouts: text of many sizes around block and segment boundaries, runs of
// zeros (clusters that decompress to far more than a block), incompressible
// data (raw clusters, files stored flat) and mixtures.
func compressFixture(t *testing.T) *tree.Node {
	t.Helper()
	smallSegments(t)
	dir, m := fixtureFiles(t)
	file := func(rel string, data []byte) {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	seg := int(segmentSize)
	for i, n := range []int{4097, 5000, 8191, 8192, 8193, 12345, 65536, 100000, seg - 1, seg, seg + 4097, 2*seg + 1234, 5*seg + 99} {
		file(fmt.Sprintf("z/text%d", n), text(uint64(i+1), n))
	}
	file("z/zeros", make([]byte, 9*seg+17))
	mixed := append(text(5, 300000), content(6, 300000)...)
	mixed = append(mixed, make([]byte, 200000)...)
	mixed = append(mixed, text(7, 123457)...)
	file("z/mixed", mixed)
	file("z/random", content(8, 70000))
	file("z/almost", append(content(9, 9000), text(10, 300)...))
	m.Set("z/text100000", tree.Override{Xattrs: map[string][]byte{"user.big": bytes.Repeat([]byte("x"), 3000)}})
	root, err := tree.Load(dir, tree.Options{Meta: m, Epoch: buildTime})
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func runArgv(t *testing.T, argv []string, args ...string) string {
	t.Helper()
	out, err := exec.Command(argv[0], append(argv[1:], args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", argv[len(argv)-1], strings.Join(args, " "), err, out)
	}
	return string(out)
}

// smallSegments makes compression segments 256 KiB for the test, so that
// the fixture crosses segment boundaries with little data.
func smallSegments(t *testing.T) {
	prev := segmentSize
	segmentSize = 256 << 10
	t.Cleanup(func() { segmentSize = prev })
}

// compressions are the settings every image test runs with.
var compressions = []string{"lz4", "lz4hc", "lz4hc,12", "zstd", "zstd,19", "deflate", "deflate,9", "lzma", "lzma,0"}

// TestCompressedFsck has fsck.erofs (1.8, which reads every algorithm)
// check and extract images of every compression, and compares the
// extracted files with the tree.
func TestCompressedFsck(t *testing.T) {
	fsck := testenv.ErofsTool(t, "fsck.erofs")
	root := compressFixture(t)
	for _, c := range compressions {
		t.Run(c, func(t *testing.T) {
			opts := defaultOpts
			opts.Compression = c
			img := writeImage(t, root, opts)
			dst := filepath.Join(t.TempDir(), "x")
			out := runArgv(t, fsck, "--extract="+dst, img)
			if strings.Contains(strings.ToLower(out), "error") || strings.Contains(out, "corrupt") {
				t.Fatalf("fsck.erofs reports problems:\n%s", out)
			}
			compareTree(t, root, dst, compareOpts{owner: os.Geteuid() == 0, devices: os.Geteuid() == 0, noSpecialBits: true})
		})
	}
}

// TestCompressedMount has the kernel mount images of every compression and
// compares what it reads with the tree.
func TestCompressedMount(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "mount", "umount")
	root := compressFixture(t)
	for _, c := range compressions {
		t.Run(c, func(t *testing.T) {
			opts := defaultOpts
			opts.Compression = c
			img := writeImage(t, root, opts)
			compareTree(t, root, mount(t, img), compareOpts{owner: true, devices: true, xattrs: true, links: true, mtime: true})
		})
	}
}

// TestCompressedReproducible writes each image with one and with several
// workers: the bytes must not depend on scheduling.
func TestCompressedReproducible(t *testing.T) {
	root := compressFixture(t)
	for _, c := range []string{"lz4", "lz4hc", "zstd", "deflate", "lzma"} {
		t.Run(c, func(t *testing.T) {
			opts := defaultOpts
			opts.Compression = c
			var a, b writerAtBuf
			prev := runtime.GOMAXPROCS(1)
			_, err := Write(&a, root, opts)
			runtime.GOMAXPROCS(4)
			if err == nil {
				_, err = Write(&b, root, opts)
			}
			runtime.GOMAXPROCS(prev)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a.b, b.b) {
				t.Fatalf("images differ between 1 and 4 workers")
			}
			var plain writerAtBuf
			if _, err := Write(&plain, root, defaultOpts); err != nil {
				t.Fatal(err)
			}
			if len(a.b) >= len(plain.b)*3/4 {
				t.Errorf("%s image is %d bytes, uncompressed %d", c, len(a.b), len(plain.b))
			}
		})
	}
}

// decode decompresses one physical cluster as the kernel would: skip the
// zero padding, then decode exactly n bytes.
func decode(t *testing.T, alg string, z []byte, n int) []byte {
	t.Helper()
	out := make([]byte, n)
	switch alg {
	case "lz4", "lz4hc":
		k, err := lz4.UncompressBlock(z, out)
		if err != nil || k != n {
			t.Fatalf("lz4: %d bytes, %v", k, err)
		}
	case "zstd":
		d, err := zstd.NewReader(nil, zstd.WithDecoderMaxWindow(1<<zstdWindowLog))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if out, err = d.DecodeAll(z, nil); err != nil {
			t.Fatalf("zstd: %v", err)
		}
	case "deflate":
		r := flate.NewReader(bytes.NewReader(z))
		var err error
		if out, err = readAll(r); err != nil {
			t.Fatalf("deflate: %v", err)
		}
	case "lzma":
		// Rebuild the classic header the MicroLZMA container drops.
		h := binary.LittleEndian.AppendUint32([]byte{^z[0]}, lzmaDictSize)
		h = binary.LittleEndian.AppendUint64(h, uint64(n))
		h = append(h, 0)
		r, err := lzma.NewReader(bytes.NewReader(append(h, z[1:]...)))
		if err != nil {
			t.Fatal(err)
		}
		if out, err = readAll(r); err != nil {
			t.Fatalf("lzma: %v", err)
		}
	}
	return out
}

func readAll(r interface{ Read([]byte) (int, error) }) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(r)
	return b.Bytes(), err
}

// TestFit checks each algorithm's fixed-output compression: the output
// fits the limit, starts with a non-zero byte, fills the cluster well and
// decodes to exactly the input prefix it claims.
func TestFit(t *testing.T) {
	inputs := map[string][]byte{
		"text":   text(1, 200000),
		"random": content(2, 20000),
		"zeros":  make([]byte, 300000),
		"mixed":  append(content(3, 3000), text(4, 50000)...),
		"short":  text(5, 5000),
	}
	for _, alg := range []string{"lz4", "lz4hc", "zstd", "deflate", "lzma"} {
		c, err := newCodec(alg, -1)
		if err != nil {
			t.Fatal(err)
		}
		f, err := c.new()
		if err != nil {
			t.Fatal(err)
		}
		for name, in := range inputs {
			f.reset()
			for pos := 0; pos < len(in)-BlockSize; {
				n, z, err := f.fit(in[pos:], BlockSize)
				if err != nil {
					t.Fatalf("%s %s: %v", alg, name, err)
				}
				if n == 0 || len(z) > BlockSize || z[0] == 0 {
					t.Fatalf("%s %s at %d: %d bytes into %d, first byte %#x", alg, name, pos, n, len(z), z[0])
				}
				if got := decode(t, alg, z, n); !bytes.Equal(got, in[pos:pos+n]) {
					t.Fatalf("%s %s at %d: %d decoded bytes differ from the %d input bytes", alg, name, pos, len(got), n)
				}
				if name == "text" && pos+n < len(in) && len(z) < BlockSize-64 {
					t.Errorf("%s %s at %d: cluster filled to %d bytes only", alg, name, pos, len(z))
				}
				pos += n
			}
		}
	}
}

func TestCompressionOptions(t *testing.T) {
	for _, c := range []string{"lzo", "zstd,0", "zstd,23", "lz4,1", "lz4hc,13", "deflate,10", "lzma,10", "zstd,x", "none,3"} {
		var buf writerAtBuf
		root := &tree.Node{Kind: tree.Dir, Mode: 0o755}
		if _, err := Write(&buf, root, Options{Compression: c}); err == nil {
			t.Errorf("compression %q accepted", c)
		}
	}
	if _, _, err := ParseCompression("lzo"); !errors.Is(err, ErrUnsupportedCompression) {
		t.Errorf("lzo: %v", err)
	}
	for _, c := range append([]string{"", "none", "lzma,109", "lz4hc,1", "libdeflate,3"}, Compressions...) {
		if _, _, err := ParseCompression(c); err != nil {
			t.Errorf("%q: %v", c, err)
		}
	}
}
