package erofs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/testenv"
)

// benchSources make up the ~230 MB benchmark tree: many small text files,
// compressed docs, Python sources and binaries.
var benchSources = []string{"/usr/share/doc", "/usr/lib/python3.11", "/usr/share/vim"}

// benchTree returns a copy of benchSources made once under dir (copies > 1
// repeats it, for the memory check on ~1 GB). SXB_EROFS_BENCH_DIR overrides
// the cache directory.
func benchTree(b *testing.B, copies int) string {
	b.Helper()
	base := os.Getenv("SXB_EROFS_BENCH_DIR")
	if base == "" {
		base = filepath.Join(os.TempDir(), "sxb-erofs-bench")
	}
	dir := filepath.Join(base, fmt.Sprintf("tree-x%d", copies))
	done := dir + ".complete"
	if _, err := os.Stat(done); err == nil {
		return dir
	}
	os.RemoveAll(dir)
	for c := range copies {
		dst := filepath.Join(dir, fmt.Sprintf("copy%d", c))
		if err := os.MkdirAll(dst, 0o755); err != nil {
			b.Fatal(err)
		}
		for _, src := range benchSources {
			if out, err := exec.Command("cp", "-a", src, dst+"/").CombinedOutput(); err != nil {
				b.Fatalf("cp -a %s: %v\n%s", src, err, out)
			}
		}
	}
	if err := os.WriteFile(done, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// TestBenchHelperWrite is the child process of the benchmark: it loads the
// tree named by SXB_EROFS_BENCH_SRC and writes SXB_EROFS_BENCH_OUT with
// SXB_EROFS_BENCH_COMPRESSION, so that its wall time, CPU time and peak RSS
// are measured like mkfs.erofs's. Owners are root and times the epoch, as
// with mkfs.erofs --all-root -T0 (and sxb pack).
func TestBenchHelperWrite(t *testing.T) {
	src, out := os.Getenv("SXB_EROFS_BENCH_SRC"), os.Getenv("SXB_EROFS_BENCH_OUT")
	if src == "" {
		t.Skip("benchmark child process only")
	}
	if v := os.Getenv("SXB_EROFS_COPY_MIN"); v != "" {
		// Experiment knob: the size from which copy_file_range is used.
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		copyRangeMin = n
	}
	if v := os.Getenv("SXB_EROFS_PREFETCH_MAX"); v != "" {
		// Experiment knob: the largest file read ahead (0: none).
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		prefetchMax = n
	}
	if p := os.Getenv("SXB_EROFS_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	root, err := tree.Load(src, tree.Options{Epoch: 0})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{UUID: testUUID, Compression: os.Getenv("SXB_EROFS_BENCH_COMPRESSION")}
	if _, err := Write(f, root, opts); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

type runStat struct {
	wall, cpu time.Duration
	maxRSS    int64 // bytes
	size      int64
}

func measure(b *testing.B, out string, cmd *exec.Cmd) runStat {
	b.Helper()
	os.Remove(out)
	start := time.Now()
	o, err := cmd.CombinedOutput()
	wall := time.Since(start)
	if err != nil {
		b.Fatalf("%s: %v\n%s", cmd, err, o)
	}
	fi, err := os.Stat(out)
	if err != nil {
		b.Fatal(err)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return runStat{wall: wall, cpu: cpu, maxRSS: ru.Maxrss * 1024, size: fi.Size()}
}

// benchSource is the tree the benchmark packs: SXB_EROFS_BENCH_TREE (bench/
// erofs.sh passes a Debian bookworm base tree) or copies of /usr.
func benchSource(b *testing.B, copies int) string {
	if src := os.Getenv("SXB_EROFS_BENCH_TREE"); src != "" && copies == 1 {
		return src
	}
	return benchTree(b, copies)
}

func benchCompare(b *testing.B, copies int, compression string) {
	mkfs := testenv.ErofsTool(b, "mkfs.erofs")
	src := benchSource(b, copies)
	outDir := b.TempDir()
	ours := func() runStat {
		out := filepath.Join(outDir, "sxb.erofs")
		cmd := exec.Command(os.Args[0], "-test.run=^TestBenchHelperWrite$", "-test.count=1")
		cmd.Env = append(os.Environ(), "SXB_EROFS_BENCH_SRC="+src, "SXB_EROFS_BENCH_OUT="+out,
			"SXB_EROFS_BENCH_COMPRESSION="+compression)
		return measure(b, out, cmd)
	}
	theirs := func() runStat {
		out := filepath.Join(outDir, "mkfs.erofs")
		args := []string{"-T0", "--all-root", "-U5b1c0e2a-1122-4344-8566-778899aabbcc"}
		if compression != "" {
			args = append(args, "-z"+compression)
		}
		argv := append(slices.Clone(mkfs), append(args, out, src)...)
		return measure(b, out, exec.Command(argv[0], argv[1:]...))
	}
	ours() // warm the page cache for both
	theirs()
	var s, m runStat
	b.ResetTimer()
	for range b.N {
		a, c := ours(), theirs()
		s.wall += a.wall
		m.wall += c.wall
		s.cpu += a.cpu
		m.cpu += c.cpu
		s.maxRSS, m.maxRSS = max(s.maxRSS, a.maxRSS), max(m.maxRSS, c.maxRSS)
		s.size, m.size = a.size, c.size
	}
	n := float64(b.N)
	const mb = 1 << 20
	b.ReportMetric(s.wall.Seconds()/n, "sxb-s")
	b.ReportMetric(m.wall.Seconds()/n, "mkfs-s")
	b.ReportMetric(s.wall.Seconds()/m.wall.Seconds(), "time-ratio")
	b.ReportMetric(s.cpu.Seconds()/m.cpu.Seconds(), "cpu-ratio")
	b.ReportMetric(float64(s.size)/mb, "sxb-MB")
	b.ReportMetric(float64(m.size)/mb, "mkfs-MB")
	b.ReportMetric(float64(s.size)/float64(m.size), "size-ratio")
	b.ReportMetric(float64(s.maxRSS)/mb, "sxb-rss-MB")
	b.ReportMetric(float64(m.maxRSS)/mb, "mkfs-rss-MB")
}

// BenchmarkVsMkfs compares Write with mkfs.erofs 1.8 on the benchmark tree,
// uncompressed and with each algorithm at its default level: wall time,
// CPU time, image size and peak RSS of each process.
func BenchmarkVsMkfs(b *testing.B) {
	for _, c := range []string{"none", "lz4", "lz4hc", "zstd", "deflate", "lzma"} {
		b.Run(c, func(b *testing.B) {
			if c == "none" {
				c = ""
			}
			benchCompare(b, 1, c)
		})
	}
}

// BenchmarkVsMkfs1GB repeats the uncompressed comparison on five copies of
// /usr (~1.1 GB) to show that peak memory follows the metadata, not the
// data.
func BenchmarkVsMkfs1GB(b *testing.B) { benchCompare(b, 5, "") }
