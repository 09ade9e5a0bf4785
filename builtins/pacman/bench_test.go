package pacman

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/klauspost/compress/zstd"

	"github.com/sxb-build/sxb/builtins/tree"
)

// Sizes of Arch's core and extra repositories (2025: about 270 and 14500
// packages).
const benchCore, benchExtra = 270, 14500

// synthRepo is a generated mirror the size of core + extra: small signed
// packages (a dozen files each, with .PKGINFO and .MTREE as makepkg
// writes them), dependencies mostly on core and on lower-numbered
// packages, virtual provides, groups and versioned dependencies.
type synthRepo struct {
	mirror  string
	keyFile string // armored public key
	entity  *openpgp.Entity
}

func benchName(i int) string {
	if i < benchCore {
		return fmt.Sprintf("c%03d", i)
	}
	return fmt.Sprintf("x%05d", i)
}

func writeSynthRepo(tb testing.TB, dir string) *synthRepo {
	tb.Helper()
	ent, err := openpgp.NewEntity("bench", "", "bench@sxb.invalid", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		tb.Fatal(err)
	}
	r := &synthRepo{mirror: filepath.Join(dir, "mirror"), keyFile: filepath.Join(dir, "bench.asc"), entity: ent}
	var pub bytes.Buffer
	aw, _ := armor.Encode(&pub, openpgp.PublicKeyType, nil)
	ent.Serialize(aw)
	aw.Close()
	os.WriteFile(r.keyFile, pub.Bytes(), 0o644)
	rng := rand.New(rand.NewSource(14))
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	dbs := map[string]*tar.Writer{}
	gzs := map[string]*gzip.Writer{}
	bufs := map[string]*bytes.Buffer{}
	for _, repo := range []string{"core", "extra"} {
		os.MkdirAll(filepath.Join(r.mirror, repo, "os/x86_64"), 0o755)
		bufs[repo] = &bytes.Buffer{}
		gzs[repo] = gzip.NewWriter(bufs[repo])
		dbs[repo] = tar.NewWriter(gzs[repo])
	}
	content := bytes.Repeat([]byte("sxb benchmark payload line\n"), 200)
	for i := 0; i < benchCore+benchExtra; i++ {
		name := benchName(i)
		repo := "core"
		if i >= benchCore {
			repo = "extra"
		}
		version := fmt.Sprintf("%d.%d-1", 1+i%5, i%11)
		var deps []string
		if i > 0 {
			for k := 0; k < 1+rng.Intn(5); k++ {
				pool := min(i, benchCore)
				if i > benchCore && rng.Intn(3) == 0 {
					pool = i
				}
				deps = append(deps, benchName(rng.Intn(pool)))
			}
			if i > 20 && rng.Intn(7) == 0 {
				deps = append(deps, fmt.Sprintf("virt%d", rng.Intn(13)))
			}
			if i > 20 && rng.Intn(9) == 0 {
				j := rng.Intn(min(i, benchCore))
				deps = append(deps, fmt.Sprintf("%s>=1.0", benchName(j)))
			}
		}
		provides := []string{fmt.Sprintf("lib%s.so=1-64", name)}
		if i >= 20 && i%13 < 13 && i < 20+13*3 {
			provides = append(provides, fmt.Sprintf("virt%d", i%13))
		}
		// The payload: a few directories and a dozen files.
		var payload bytes.Buffer
		tw := tar.NewWriter(&payload)
		var mtree strings.Builder
		mtree.WriteString("#mtree\n/set type=file uid=0 gid=0 mode=644\n")
		pkginfo := fmt.Sprintf("pkgname = %s\npkgbase = %s\npkgver = %s\npkgdesc = benchmark package\nurl = \nbuilddate = 1700000000\npackager = bench\nsize = %d\narch = x86_64\nlicense = MIT\n",
			name, name, version, 12*len(content))
		for _, d := range deps {
			pkginfo += "depend = " + d + "\n"
		}
		for _, p := range provides {
			pkginfo += "provides = " + p + "\n"
		}
		var mt bytes.Buffer
		writeEntry := func(h *tar.Header, body []byte) {
			h.ModTime, h.Format = time.Unix(1700000000, 0), tar.FormatPAX
			tw.WriteHeader(h)
			tw.Write(body)
		}
		dirs := []string{"usr/", "usr/bin/", "usr/lib/", "usr/share/", "usr/share/" + name + "/"}
		var entries []string
		for _, d := range dirs {
			entries = append(entries, "./"+strings.TrimSuffix(d, "/")+" time=1700000000.0 mode=755 type=dir")
		}
		files := []string{"usr/bin/" + name, "usr/lib/lib" + name + ".so.1"}
		for k := 0; k < 10; k++ {
			files = append(files, fmt.Sprintf("usr/share/%s/data%02d", name, k))
		}
		for _, f := range files {
			entries = append(entries, "./"+f+fmt.Sprintf(" time=1700000000.0 size=%d", len(content)))
		}
		sort.Strings(entries)
		mtree.WriteString(strings.Join(entries, "\n") + "\n")
		gz := gzip.NewWriter(&mt)
		gz.Write([]byte(mtree.String()))
		gz.Close()
		writeEntry(&tar.Header{Name: ".MTREE", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(mt.Len())}, mt.Bytes())
		writeEntry(&tar.Header{Name: ".PKGINFO", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(pkginfo))}, []byte(pkginfo))
		for _, d := range dirs {
			writeEntry(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755}, nil)
		}
		for _, f := range files {
			writeEntry(&tar.Header{Name: f, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(content))}, content)
		}
		tw.Close()
		pkg := enc.EncodeAll(payload.Bytes(), nil)
		file := name + "-" + version + "-x86_64.pkg.tar.zst"
		dir := filepath.Join(r.mirror, repo, "os/x86_64")
		if err := os.WriteFile(filepath.Join(dir, file), pkg, 0o644); err != nil {
			tb.Fatal(err)
		}
		var sig bytes.Buffer
		if err := openpgp.DetachSign(&sig, ent, bytes.NewReader(pkg), nil); err != nil {
			tb.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, file+".sig"), sig.Bytes(), 0o644)
		sum := sha256.Sum256(pkg)
		m5 := md5.Sum(pkg)
		var desc strings.Builder
		fmt.Fprintf(&desc, "%%FILENAME%%\n%s\n\n%%NAME%%\n%s\n\n%%BASE%%\n%s\n\n%%VERSION%%\n%s\n\n%%DESC%%\nbenchmark package\n\n", file, name, name, version)
		fmt.Fprintf(&desc, "%%CSIZE%%\n%d\n\n%%ISIZE%%\n%d\n\n%%MD5SUM%%\n%s\n\n%%SHA256SUM%%\n%s\n\n", len(pkg), 12*len(content), hex.EncodeToString(m5[:]), hex.EncodeToString(sum[:]))
		fmt.Fprintf(&desc, "%%URL%%\n\n\n%%LICENSE%%\nMIT\n\n%%ARCH%%\nx86_64\n\n%%BUILDDATE%%\n1700000000\n\n%%PACKAGER%%\nbench\n\n")
		fmt.Fprintf(&desc, "%%PROVIDES%%\n%s\n\n", strings.Join(provides, "\n"))
		if len(deps) > 0 {
			fmt.Fprintf(&desc, "%%DEPENDS%%\n%s\n\n", strings.Join(deps, "\n"))
		}
		db := dbs[repo]
		db.WriteHeader(&tar.Header{Name: name + "-" + version + "/", Typeflag: tar.TypeDir, Mode: 0o755})
		db.WriteHeader(&tar.Header{Name: name + "-" + version + "/desc", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(desc.Len())})
		db.Write([]byte(desc.String()))
	}
	for repo, tw := range dbs {
		tw.Close()
		gzs[repo].Close()
		if err := os.WriteFile(filepath.Join(r.mirror, repo, "os/x86_64", repo+".db"), bufs[repo].Bytes(), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return r
}

// cpuTime is the CPU time (user + system) the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCoreExtra resolves and installs a base-like set of packages
// from a generated mirror the size of core + extra, with signature checks,
// and runs pacman on the same mirror in the same run: resolution cold
// (databases read and parsed) and warm, and the installation (copy from
// the file:// mirror, SHA-256 and signature checks, unpacking).
func BenchmarkCoreExtra(b *testing.B) {
	dir := b.TempDir()
	start := time.Now()
	r := writeSynthRepo(b, dir)
	b.Logf("generated %d packages in %v", benchCore+benchExtra, time.Since(start).Round(time.Millisecond))
	var targets []string
	for i := 0; i < 40; i++ {
		targets = append(targets, benchName(i*5))
	}
	for i := 0; i < 20; i++ {
		targets = append(targets, benchName(benchCore+benchExtra-1-i*97))
	}
	ctx := context.Background()
	req := func(cache string) Request {
		return Request{Mirror: "file://" + r.mirror, KeyringDir: "none", Keyring: []string{r.keyFile}, CacheDir: cache, Packages: targets}
	}
	// Wall time and CPU time (user + system) of each step: the machine may
	// be shared, and CPU time is what contention disturbs least.
	type cost struct{ wall, cpu time.Duration }
	measure := func(c *cost, f func()) {
		c0, t0 := cpuTime(), time.Now()
		f()
		c.wall += time.Since(t0)
		c.cpu += cpuTime() - c0
	}
	var cold, warm, inst cost
	var plan *Plan
	for i := 0; i < b.N; i++ {
		cache := b.TempDir()
		var err error
		measure(&cold, func() { _, err = Resolve(ctx, req(cache)) })
		if err != nil {
			b.Fatal(err)
		}
		measure(&warm, func() { plan, err = Resolve(ctx, req(cache)) })
		if err != nil {
			b.Fatal(err)
		}
		measure(&inst, func() {
			_, err = Install(ctx, plan, filepath.Join(b.TempDir(), "root"), tree.NewMeta(), InstallOptions{WithDocs: true})
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(len(plan.Packages)), "packages")
	report := func(c cost, what string) {
		b.ReportMetric(float64(c.wall.Milliseconds())/n, "ms/"+what)
		b.ReportMetric(float64(c.cpu.Milliseconds())/n, "cpu-ms/"+what)
	}
	report(cold, "resolve-cold")
	report(warm, "resolve-warm")
	report(inst, "install")
	if _, err := exec.LookPath("pacman"); err != nil || os.Geteuid() != 0 {
		b.Logf("pacman (as root) not available: no comparison")
		return
	}
	// pacman's keyring: a local master key that lsigns the bench key.
	gnupg := filepath.Join(dir, "gnupg")
	os.MkdirAll(gnupg, 0o700)
	defer exec.Command("gpgconf", "--homedir", gnupg, "--kill", "all").Run()
	for _, args := range [][]string{
		{"--quick-gen-key", "local <local@sxb.invalid>", "ed25519", "sign", "never"},
		{"--import", r.keyFile},
		{"--yes", "--quick-lsign-key", fmt.Sprintf("%X", r.entity.PrimaryKey.Fingerprint)},
	} {
		cmd := exec.Command("gpg", append([]string{"--homedir", gnupg, "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("gpg %v: %v\n%s", args, err, out)
		}
	}
	conf := filepath.Join(dir, "pacman.conf")
	os.WriteFile(conf, []byte("[options]\nArchitecture = x86_64\nSigLevel = Required DatabaseOptional\n\n[core]\nServer = file://"+r.mirror+
		"/$repo/os/$arch\n\n[extra]\nServer = file://"+r.mirror+"/$repo/os/$arch\n"), 0o644)
	var pcold, pwarm, pinst cost
	for i := 0; i < b.N; i++ {
		root := filepath.Join(b.TempDir(), "root")
		os.MkdirAll(filepath.Join(root, "var/lib/pacman"), 0o755)
		pac := func(args ...string) cost {
			all := append([]string{"--root", root, "--dbpath", filepath.Join(root, "var/lib/pacman"), "--config", conf, "--gpgdir", gnupg,
				"--cachedir", filepath.Join(root, "..", "cache"), "--logfile", "/dev/null", "--hookdir", filepath.Join(root, "etc/pacman.d/hooks"),
				"--noconfirm", "--noprogressbar"}, args...)
			cmd := exec.Command("pacman", append(all, targets...)...)
			t0 := time.Now()
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("pacman %v: %v\n%s", args, err, out)
			}
			return cost{time.Since(t0), cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
		}
		add := func(c *cost, d cost) { c.wall += d.wall; c.cpu += d.cpu }
		add(&pcold, pac("-Syp"))
		add(&pwarm, pac("-Sp"))
		add(&pinst, pac("-S", "--noscriptlet"))
	}
	report(pcold, "pacman-resolve-cold")
	report(pwarm, "pacman-resolve-warm")
	report(pinst, "pacman-install")
	ratio := func(a, b time.Duration) float64 { return float64(a) / float64(b) }
	b.Logf("%d packages; sxb/pacman time ratio (wall, cpu): resolve cold %.2f, %.2f; resolve warm %.2f, %.2f; install %.2f, %.2f",
		len(plan.Packages), ratio(cold.wall, pcold.wall), ratio(cold.cpu, pcold.cpu), ratio(warm.wall, pwarm.wall), ratio(warm.cpu, pwarm.cpu),
		ratio(inst.wall, pinst.wall), ratio(inst.cpu, pinst.cpu))
}
