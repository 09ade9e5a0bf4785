package squashfs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/testenv"
)

// BenchmarkVsMksquashfs compares Write (including tree.Load) with mksquashfs
// on the same tree, compressor and block size, in the same run. The tree is
// $SXB_BENCH_TREE (default /usr/share/doc); bench/squashfs.sh prepares a
// ~200 MB one. Both use two workers; the page cache is warmed first.
func BenchmarkVsMksquashfs(b *testing.B) {
	testenv.NeedTool(b, "mksquashfs")
	dir := os.Getenv("SXB_BENCH_TREE")
	if dir == "" {
		dir = "/usr/share/doc"
	}
	tmp := b.TempDir()
	warm, err := tree.Load(dir, tree.Options{Epoch: -1, KeepOwner: true})
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	warm.Walk(func(n *tree.Node) error {
		if n.Kind == tree.Regular && n.Link == nil {
			total += n.Size
			if data, err := os.ReadFile(n.HostPath); err == nil {
				_ = data
			}
		}
		return nil
	})
	for _, c := range []string{"gzip", "zstd"} {
		b.Run(c, func(b *testing.B) {
			var ours, theirs time.Duration
			var ourSize, theirSize int64
			for i := 0; i < b.N; i++ {
				img := filepath.Join(tmp, "ours-"+c)
				t0 := time.Now()
				root, err := tree.Load(dir, tree.Options{Epoch: -1, KeepOwner: true})
				if err != nil {
					b.Fatal(err)
				}
				f, err := os.Create(img)
				if err != nil {
					b.Fatal(err)
				}
				n, err := Write(f, root, Options{Compression: c, Workers: 2})
				if err != nil {
					b.Fatal(err)
				}
				if err := f.Close(); err != nil {
					b.Fatal(err)
				}
				ours += time.Since(t0)
				ourSize = n

				ref := filepath.Join(tmp, "mksquashfs-"+c)
				t0 = time.Now()
				cmd := exec.Command("mksquashfs", dir, ref, "-noappend", "-processors", "2", "-comp", c,
					"-b", "131072", "-quiet", "-no-progress")
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("mksquashfs: %v\n%s", err, out)
				}
				theirs += time.Since(t0)
				fi, err := os.Stat(ref)
				if err != nil {
					b.Fatal(err)
				}
				theirSize = fi.Size()
			}
			tr := ours.Seconds() / theirs.Seconds()
			sr := float64(ourSize) / float64(theirSize)
			b.ReportMetric(tr, "time-ratio")
			b.ReportMetric(sr, "size-ratio")
			fmt.Fprintf(os.Stderr, "%s: tree %s (%d MB of file data): sxb %.2fs %d bytes, mksquashfs %.2fs %d bytes: time x%.2f, size x%.3f\n",
				c, dir, total>>20, ours.Seconds()/float64(b.N), ourSize, theirs.Seconds()/float64(b.N), theirSize, tr, sr)
		})
	}
}
