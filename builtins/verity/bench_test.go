package verity

import (
	"encoding/hex"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sxb-build/sxb/internal/testenv"
)

// BenchmarkFormatVsVeritysetup hashes a 200 MiB data file with Format and
// with `veritysetup format` in the same run (same salt, same page-cache
// state) and reports both times and their ratio (ours/veritysetup; below 1
// is faster). Run: go test -bench FormatVsVeritysetup -benchtime 3x ./builtins/verity
func BenchmarkFormatVsVeritysetup(b *testing.B) {
	testenv.NeedTool(b, "veritysetup")
	dir := b.TempDir()
	data := filepath.Join(dir, "data")
	const size = 200 << 20
	buf := make([]byte, size)
	rand.New(rand.NewSource(1)).Read(buf)
	if err := os.WriteFile(data, buf, 0o644); err != nil {
		b.Fatal(err)
	}
	buf = nil
	salt := DeriveSalt([16]byte{1})
	var ours, theirs time.Duration
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		f, err := os.Open(data)
		if err != nil {
			b.Fatal(err)
		}
		h, err := os.Create(filepath.Join(dir, "our.hash"))
		if err != nil {
			b.Fatal(err)
		}
		root, _, err := Format(f, size, h, Options{Salt: salt})
		f.Close()
		h.Close()
		if err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)

		b.StopTimer()
		start = time.Now()
		out, err := exec.Command("veritysetup", "format", "--salt="+hex.EncodeToString(salt), data, filepath.Join(dir, "ref.hash")).CombinedOutput()
		theirs += time.Since(start)
		if err != nil {
			b.Fatalf("veritysetup: %v\n%s", err, out)
		}
		if m := rootHashRE.FindSubmatch(out); m == nil || string(m[1]) != hex.EncodeToString(root) {
			b.Fatalf("root hash differs from veritysetup's")
		}
		b.StartTimer()
	}
	b.ReportMetric(ours.Seconds()/float64(b.N), "ours-s/op")
	b.ReportMetric(theirs.Seconds()/float64(b.N), "veritysetup-s/op")
	b.ReportMetric(ours.Seconds()/theirs.Seconds(), "ratio")
}
