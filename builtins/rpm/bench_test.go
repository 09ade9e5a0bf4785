package rpm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/sxb-build/sxb/builtins/rpm/rpmtest"
	"github.com/sxb-build/sxb/builtins/tree"
)

// writeSyntheticRepo writes an unsigned rpm-md repository (metadata only)
// of n packages shaped like a distribution: a core of 300 packages that
// everything depends on, sonames, file dependencies only in filelists, rich
// dependencies, and 20 files per package.
func writeSyntheticRepo(tb testing.TB, dir string, n int) {
	tb.Helper()
	rng := rand.New(rand.NewSource(1))
	var prim, fl bytes.Buffer
	fmt.Fprintf(&prim, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="%d">`+"\n", n)
	fmt.Fprintf(&fl, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<filelists xmlns="http://linux.duke.edu/metadata/filelists" packages="%d">`+"\n", n)
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("p%05d", i)
		sum := sha256.Sum256([]byte(name))
		id := hex.EncodeToString(sum[:])
		fmt.Fprintf(&prim, `<package type="rpm"><name>%s</name><arch>x86_64</arch><version epoch="0" ver="1.%d" rel="1.1"/><checksum type="sha256" pkgid="YES">%s</checksum><summary>s</summary><description>d</description><packager/><url/><time file="1" build="1"/><size package="1000" installed="2000" archive="2100"/><location href="x86_64/%s-1.%d-1.1.x86_64.rpm"/><format><rpm:license>MIT</rpm:license><rpm:provides>`, name, i%7, id, name, i%7)
		fmt.Fprintf(&prim, `<rpm:entry name="%s" flags="EQ" epoch="0" ver="1.%d" rel="1.1"/><rpm:entry name="%s(x86-64)" flags="EQ" epoch="0" ver="1.%d" rel="1.1"/><rpm:entry name="lib%s.so.1()(64bit)"/>`, name, i%7, name, i%7, name)
		// Shared virtual capabilities with several providers.
		if i%13 == 5 {
			fmt.Fprintf(&prim, `<rpm:entry name="virt%d"/>`, i%17)
		}
		prim.WriteString(`</rpm:provides>`)
		if i > 300 && i%97 == 0 {
			fmt.Fprintf(&prim, `<rpm:obsoletes><rpm:entry name="p%05d" flags="LT" epoch="0" ver="9"/></rpm:obsoletes>`, i-1)
		}
		if i > 0 && rng.Intn(8) == 0 {
			fmt.Fprintf(&prim, `<rpm:recommends><rpm:entry name="p%05d"/></rpm:recommends>`, rng.Intn(i))
		}
		if i%29 == 3 {
			fmt.Fprintf(&prim, `<rpm:supplements><rpm:entry name="p%05d"/></rpm:supplements>`, rng.Intn(300))
		}
		prim.WriteString(`<rpm:requires>`)
		if i > 0 {
			core := 300
			if i < core {
				core = i
			}
			for k := 0; k < 4; k++ {
				fmt.Fprintf(&prim, `<rpm:entry name="libp%05d.so.1()(64bit)"/>`, rng.Intn(core))
			}
			if i > 300 && rng.Intn(10) == 0 {
				fmt.Fprintf(&prim, `<rpm:entry name="p%05d" flags="GE" epoch="0" ver="1.0"/>`, i-1-rng.Intn(50))
			}
			if rng.Intn(20) == 0 {
				fmt.Fprintf(&prim, `<rpm:entry name="/usr/share/p%05d/data"/>`, rng.Intn(core))
			}
			if rng.Intn(20) == 0 {
				fmt.Fprintf(&prim, `<rpm:entry name="(p%05d or p%05d)"/>`, rng.Intn(core), rng.Intn(core))
			}
			if i > 300 && rng.Intn(6) == 0 {
				fmt.Fprintf(&prim, `<rpm:entry name="virt%d"/>`, rng.Intn(17))
			}
			prim.WriteString(`<rpm:entry name="rpmlib(PayloadIsZstd)" flags="LE" epoch="0" ver="5.4.18" rel="1"/>`)
		}
		fmt.Fprintf(&prim, `</rpm:requires><file>/usr/bin/%s</file></format></package>`+"\n", name)
		fmt.Fprintf(&fl, `<package pkgid="%s" name="%s" arch="x86_64"><version epoch="0" ver="1.%d" rel="1.1"/><file>/usr/bin/%s</file><file type="dir">/usr/share/%s</file><file>/usr/share/%s/data</file>`, id, name, i%7, name, name, name)
		for k := 0; k < 18; k++ {
			fmt.Fprintf(&fl, `<file>/usr/share/doc/packages/%s/file%02d</file>`, name, k)
		}
		fl.WriteString("</package>\n")
	}
	prim.WriteString("</metadata>\n")
	fl.WriteString("</filelists>\n")
	md := filepath.Join(dir, "repodata")
	os.MkdirAll(md, 0o755)
	var repomd bytes.Buffer
	repomd.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm"><revision>1</revision>` + "\n")
	for _, f := range []struct {
		typ string
		raw []byte
	}{{"primary", prim.Bytes()}, {"filelists", fl.Bytes()}} {
		enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault))
		z := enc.EncodeAll(f.raw, nil)
		zs, os2 := sha256.Sum256(z), sha256.Sum256(f.raw)
		if err := os.WriteFile(filepath.Join(md, f.typ+".xml.zst"), z, 0o644); err != nil {
			tb.Fatal(err)
		}
		fmt.Fprintf(&repomd, `<data type="%s"><checksum type="sha256">%x</checksum><open-checksum type="sha256">%x</open-checksum><location href="repodata/%s.xml.zst"/><timestamp>1</timestamp><size>%d</size><open-size>%d</open-size></data>`+"\n", f.typ, zs, os2, f.typ, len(z), len(f.raw))
	}
	repomd.WriteString("</repomd>\n")
	if err := os.WriteFile(filepath.Join(md, "repomd.xml"), repomd.Bytes(), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkResolveLarge resolves against a 40000-package repository, cold
// (parsing the metadata) and warm (parsed metadata from the cache), and
// compares with dnf on the same repository when dnf is installed.
func BenchmarkResolveLarge(b *testing.B) {
	dir := b.TempDir()
	const n = 40000
	writeSyntheticRepo(b, dir, n)
	request := []string{"p39999", "p39998", "p20000", "p10000"}
	ctx := context.Background()
	var size int
	timeIt := func(cache string) time.Duration {
		start := time.Now()
		plan, err := Resolve(ctx, Request{Distribution: "opensuse", Repositories: []string{dir}, Packages: request, Insecure: true, CacheDir: cache})
		if err != nil {
			b.Fatal(err)
		}
		size = len(plan.Packages)
		return time.Since(start)
	}
	var cold, warm, dnfCold, dnfWarm time.Duration
	for i := 0; i < b.N; i++ {
		cache := b.TempDir()
		cold += timeIt(cache)
		warm += timeIt(cache)
	}
	b.ReportMetric(float64(cold.Milliseconds())/float64(b.N), "ms/cold")
	b.ReportMetric(float64(warm.Milliseconds())/float64(b.N), "ms/warm")
	b.ReportMetric(float64(size), "packages")
	if _, err := exec.LookPath("dnf"); err != nil {
		b.Logf("dnf not installed: no comparison")
		return
	}
	for i := 0; i < b.N; i++ {
		root, cache := b.TempDir(), b.TempDir()
		run := func() time.Duration {
			start := time.Now()
			cmd := exec.Command("dnf", append([]string{"--installroot=" + root, "--releasever=x", "--setopt=reposdir=/dev/null",
				"--setopt=cachedir=" + cache, "--setopt=install_weak_deps=False", "--nogpgcheck", "--forcearch=x86_64",
				"--disableplugin=*", "-q", "--repofrompath=big,file://" + dir, "--assumeno", "install"}, request...)...)
			cmd.Env = append(os.Environ(), "RPM_FORCE_DEBIAN=1")
			out, _ := cmd.CombinedOutput() // --assumeno exits 1
			if !bytes.Contains(out, []byte("Operation aborted")) {
				b.Fatalf("dnf: %s", out)
			}
			return time.Since(start)
		}
		dnfCold += run()
		dnfWarm += run()
	}
	b.ReportMetric(float64(dnfCold.Milliseconds())/float64(b.N), "ms/dnf-cold")
	b.ReportMetric(float64(dnfWarm.Milliseconds())/float64(b.N), "ms/dnf-warm")
	b.Logf("%d packages resolved; sxb/dnf time ratio: cold %.2f, warm %.2f", size,
		float64(cold)/float64(dnfCold), float64(warm)/float64(dnfWarm))
}

// BenchmarkInstall unpacks a 4000-file, ~64 MiB package (downloads come
// from the warm cache) and compares with rpm -i --root (no scripts, no
// dependency checks; as root) in the same run.
func BenchmarkInstall(b *testing.B) {
	fx := seedRepo(b)
	dir := b.TempDir()
	repo := filepath.Join(dir, "repo")
	fx.env.Build(b, repo, []rpmtest.Pkg{{Name: "big", Version: "1", Unsigned: true, Payload: "w3.zstdio",
		Install: `mkdir -p %{buildroot}/usr/share/big
for d in $(seq 0 39); do mkdir -p %{buildroot}/usr/share/big/$d; for f in $(seq 0 99); do head -c 16384 /dev/urandom > %{buildroot}/usr/share/big/$d/$f; done; done`,
		Files: "/usr/share/big"}})
	fx.env.CreateRepo(b, repo, false, false)
	ctx := context.Background()
	plan, err := Resolve(ctx, Request{Distribution: "opensuse", Repositories: []string{repo}, Packages: []string{"big"}, Insecure: true, CacheDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	if err := Install(ctx, plan, b.TempDir(), tree.NewMeta(), InstallOptions{}); err != nil { // warm the cache
		b.Fatal(err)
	}
	rpms, _ := filepath.Glob(filepath.Join(repo, "*.rpm"))
	var sxb, ref time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if err := Install(ctx, plan, b.TempDir(), tree.NewMeta(), InstallOptions{}); err != nil {
			b.Fatal(err)
		}
		sxb += time.Since(start)
		if os.Geteuid() == 0 {
			root := b.TempDir()
			start = time.Now()
			cmd := exec.Command("rpm", "-i", "--root", root, "--dbpath", "/db", "--nodeps", "--nosignature", "--noscripts", "--nodigest", rpms[0])
			cmd.Env = append(os.Environ(), "RPM_FORCE_DEBIAN=1")
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("rpm -i: %v\n%s", err, out)
			}
			ref += time.Since(start)
		}
	}
	b.ReportMetric(float64(sxb.Milliseconds())/float64(b.N), "ms/sxb")
	if ref > 0 {
		b.ReportMetric(float64(ref.Milliseconds())/float64(b.N), "ms/rpm")
		b.Logf("sxb/rpm install time ratio: %.2f", float64(sxb)/float64(ref))
	}
}
