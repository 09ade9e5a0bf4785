// Command debinstall installs a Debian base image with builtins/deb, for
// bench/deb.sh: resolve systemd + udev + the Essential packages of a
// release and unpack them into a directory.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/sxb-build/sxb/builtins/deb"
	"github.com/sxb-build/sxb/builtins/sandbox"
	"github.com/sxb-build/sxb/builtins/tree"
)

func main() {
	sandbox.Init()
	release := flag.String("release", "bookworm", "release codename")
	arch := flag.String("arch", "x86-64", "architecture")
	cache := flag.String("cache", "", "cache directory")
	pkgs := flag.String("packages", "systemd,udev", "comma-separated packages")
	names := flag.Bool("names", false, "only print the resolved package names, comma-separated")
	verbose := flag.Bool("v", false, "print timings")
	noTarCache := flag.Bool("no-tar-cache", false, "do not cache uncompressed payloads")
	scripts := flag.Bool("scripts", false, "run maintainer scripts and triggers in a sandbox")
	flag.Parse()
	if flag.NArg() != 1 && !*names {
		fmt.Fprintln(os.Stderr, "usage: debinstall [flags] DIR")
		os.Exit(2)
	}
	if p := os.Getenv("SXB_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	ctx := context.Background()
	t0 := time.Now()
	plan, err := deb.Resolve(ctx, deb.Request{Distribution: "debian", Release: *release, Arch: *arch,
		Packages: strings.Split(*pkgs, ","), BaseImage: true, CacheDir: *cache})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *names {
		fmt.Println(strings.Join(plan.Names(), ","))
		return
	}
	t1 := time.Now()
	meta := tree.NewMeta()
	dir := flag.Arg(0)
	if err := deb.Install(ctx, plan, dir, meta, deb.InstallOptions{WithDocs: true, NoTarCache: *noTarCache, Scripts: *scripts}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := meta.Save(tree.MetaPath(dir)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *verbose {
		fmt.Fprintf(os.Stderr, "%d packages: resolve %v, install %v\n", len(plan.Packages), t1.Sub(t0), time.Since(t1))
	}
}
