package deb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/sxb-build/sxb/builtins/fetch"
	"github.com/sxb-build/sxb/builtins/installer"
	"github.com/sxb-build/sxb/builtins/tree"
)

// InstallOptions tune Install.
type InstallOptions struct {
	// WithDocs keeps documentation. When false, /usr/share/{doc,man,info,
	// groff,gtk-doc} are dropped (copyright files kept), as mkosi's
	// WithDocs=no does.
	WithDocs bool
	// Progress, when set, receives download and extraction events; calls
	// are serialized.
	Progress func(installer.Event)
	// Downloads bounds simultaneous downloads; 0 means 8.
	Downloads int
	// Unpackers bounds simultaneous unpacking; 0 means twice the number
	// of CPUs.
	Unpackers int
	// NoTarCache disables keeping the uncompressed data.tar of each
	// package in the cache (Plan.CacheDir/deb-data/<sha256>.tar). The tar cache
	// makes a warm install skip decompression at the cost of disk space
	// (about 3x the .deb size).
	NoTarCache bool

	// Scripts runs the packages' maintainer scripts and the dpkg triggers
	// they set off in a sandbox (see scripts.go; the program must call
	// sandbox.Init), instead of the native stand-ins. When the tree's
	// executables cannot run here (another architecture without a
	// binfmt_misc emulator, see sandbox.EmulatorForArch), the stand-ins are used
	// and Warn says what was not run.
	Scripts bool
	// BaseRoot is the base tree of an extension (default: the one the plan
	// was resolved against): scripts see it beneath the new tree, which is
	// all they write to.
	BaseRoot string
	// Epoch is the SOURCE_DATE_EPOCH the scripts see.
	Epoch int64
	// ScriptOutput receives what the scripts print (they run with no
	// terminal and no input).
	ScriptOutput io.Writer
	// Warn receives warnings.
	Warn func(string)
	// NotRun receives the scripts and triggers that were not run (Scripts
	// false, or no way to run them), sorted: "<package>.preinst",
	// "<package>.postinst", "<package> trigger <name>"; for the manifest.
	NotRun func([]string)
}

// Install downloads the packages of plan and unpacks them into dir,
// recording what the directory cannot hold (owners, setuid bits, device
// nodes) in meta. Existing content of dir is kept (a base tree installed
// into the same directory, for example). Downloads and unpacking overlap;
// on error dir is left partially filled and should be discarded.
//
// Install writes a dpkg database: var/lib/dpkg/status (the packages of
// dir's existing status, of the plan's base and of the plan, all "install
// ok installed"), var/lib/dpkg/info/<pkg>.{list,md5sums,conffiles,...}
// and info/format; dpkg --audit and dpkg --verify accept the result.
//
// Unless opts.Scripts asks to run them (see scripts.go), maintainer
// scripts are not run. Install then does natively what the scripts of a
// base system would have done that matters for an image: the
// merged-/usr symlinks; /etc/passwd, /etc/group, /etc/shadow and
// /etc/gshadow from base-passwd's master files, plus the users and groups
// of sysusers.d (what systemd's postinst runs systemd-sysusers for, with
// the same ID allocation); base-files' first-install
// setup (/var/run and /var/lock links into /run, /root dot files,
// /etc/profile, FHS directories, wtmp/btmp/lastlog); and the
// update-alternatives links the postinst scripts register literally (for
// example /usr/bin/awk -> /etc/alternatives/awk -> /usr/bin/mawk), with
// their var/lib/dpkg/alternatives files. A tree built this way still
// lacks: users and groups created by adduser calls in scripts,
// /etc/machine-id (left to first
// boot), ld.so.cache (not needed: the loader searches the default paths),
// debconf answers, dpkg triggers (man-db, mime and icon caches, ...),
// diversions made with dpkg-divert and any other effect of a script.
// Where two packages ship the same path, the one that Replaces the other
// owns it, else the later one in plan (name) order.
func Install(ctx context.Context, plan *Plan, dir string, meta *tree.Meta, opts InstallOptions) error {
	if meta == nil {
		return fmt.Errorf("installing packages: no metadata to record into")
	}
	cacheDir := plan.CacheDir
	if cacheDir == "" {
		return fmt.Errorf("installing packages: no cache directory")
	}
	progress := serialize(opts.Progress)
	r, err := openRoot(dir, meta, plan.Arch)
	if err != nil {
		return fmt.Errorf("installing packages: %w", err)
	}
	defer r.close()
	if err := r.mergedUsr(); err != nil {
		return fmt.Errorf("installing packages: %w", err)
	}
	if err := r.pipeline(ctx, plan, cacheDir, opts, progress); err != nil {
		return err
	}
	if err := r.finishLinks(); err != nil {
		return fmt.Errorf("installing packages: %w", err)
	}
	results := r.results
	var maxTime int64
	for _, u := range results {
		if u.maxTime > maxTime {
			maxTime = u.maxTime
		}
	}
	if err := r.writeDpkg(plan, results); err != nil {
		return fmt.Errorf("installing packages: writing the dpkg database: %w", err)
	}
	base := opts.BaseRoot
	if base == "" {
		base = plan.baseRoot
	}
	if base != "" && filepath.Clean(base) == r.t.Path() {
		base = "" // installed into the base tree itself
	}
	sp, scripts, err := r.scriptsPossible(plan, results, baseInfoReader(base), opts)
	if err != nil {
		return fmt.Errorf("installing packages: %w", err)
	}
	if !scripts {
		if err := r.standIns(plan, results, maxTime); err != nil {
			return err
		}
	}
	if err := r.finishDirs(maxTime); err != nil {
		return fmt.Errorf("installing packages: %w", err)
	}
	if scripts {
		progress(installer.Event{Kind: installer.Scripts, Count: len(plan.Packages)})
		if err := r.runScripts(ctx, sp, base, opts); err != nil {
			return fmt.Errorf("installing packages: %w", err)
		}
	}
	progress(installer.Event{Kind: installer.Done, Done: len(plan.Packages), Count: len(plan.Packages)})
	return nil
}

// standIns does natively what maintainer scripts would (see Install).
func (r *root) standIns(plan *Plan, results []*unpacked, maxTime int64) error {
	if err := r.writeUsers(); err != nil {
		return fmt.Errorf("installing packages: %w", err)
	}
	if err := r.applySysusers(); err != nil {
		return fmt.Errorf("installing packages: %w", err)
	}
	if err := r.baseFiles(maxTime); err != nil {
		return fmt.Errorf("installing packages: base-files setup: %w", err)
	}
	if err := r.alternatives(plan, results); err != nil {
		return fmt.Errorf("installing packages: alternatives: %w", err)
	}
	return nil
}

// writeFile writes content to rel inside the root (resolved in it),
// replacing what is there atomically.
func (r *root) writeFile(rel string, content []byte, perm uint32) error {
	if err := r.t.WriteFile(rel, content, fs.FileMode(perm)); err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	r.mu.Lock()
	r.made = append(r.made, rel)
	r.mu.Unlock()
	return nil
}

// controlWithStatus inserts "Status: install ok installed" after the
// Package field, as dpkg writes it, and adds Conffiles.
func controlWithStatus(control []byte, conffiles string) []byte {
	control = bytes.TrimRight(control, "\n")
	var out bytes.Buffer
	inserted := false
	for _, l := range strings.Split(string(control), "\n") {
		if strings.HasPrefix(l, "Status:") {
			continue
		}
		out.WriteString(l)
		out.WriteByte('\n')
		if !inserted && strings.HasPrefix(l, "Package:") {
			out.WriteString("Status: install ok installed\n")
			inserted = true
		}
	}
	if conffiles != "" {
		out.WriteString("Conffiles:\n" + conffiles)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

func (r *root) writeDpkg(plan *Plan, results []*unpacked) error {
	entries := map[string][]byte{}
	add := func(b []byte) error {
		return parseParagraphs(b, func(_ int, p *Paragraph) error {
			var buf bytes.Buffer
			for _, f := range p.Fields {
				if strings.HasPrefix(f.Value, "\n") {
					buf.WriteString(f.Name + ":" + f.Value + "\n")
				} else {
					buf.WriteString(f.Name + ": " + f.Value + "\n")
				}
			}
			buf.WriteByte('\n')
			entries[p.Get("Package")+":"+p.Get("Architecture")] = buf.Bytes()
			return nil
		})
	}
	if b, err := r.readFile("var/lib/dpkg/status"); err == nil {
		if err := add(b); err != nil {
			return fmt.Errorf("existing status: %w", err)
		}
	}
	if plan.baseStatus != nil {
		if err := add(plan.baseStatus); err != nil {
			return fmt.Errorf("base status: %w", err)
		}
	}
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "var/lib/dpkg/alternatives", "var/lib/dpkg/parts"} {
		dh, err := r.t.MkdirAll(d)
		if err != nil {
			return err
		}
		dh.Close()
	}
	for i, u := range results {
		p := plan.Packages[i]
		var cf strings.Builder
		for _, l := range strings.Split(string(u.info["conffiles"]), "\n") {
			l = strings.TrimSpace(l)
			if strings.HasPrefix(l, "/") {
				cf.WriteString(" " + l + " " + r.md5File(strings.TrimPrefix(l, "/")) + "\n")
			}
		}
		entries[p.Name+":"+p.Arch] = controlWithStatus(u.control, cf.String())
		base := p.Name
		if ctrl := parseOne(u.control); strings.EqualFold(ctrl.Get("Multi-Arch"), "same") {
			base += ":" + p.Arch
		}
		list := strings.Join(u.list, "\n") + "\n"
		if err := r.writeFile("var/lib/dpkg/info/"+base+".list", []byte(list), 0o644); err != nil {
			return err
		}
		names := make([]string, 0, len(u.info))
		for n := range u.info {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			perm := uint32(0o644)
			switch n {
			case "preinst", "postinst", "prerm", "postrm", "config":
				perm = 0o755
			}
			if err := r.writeFile("var/lib/dpkg/info/"+base+"."+n, u.info[n], perm); err != nil {
				return err
			}
		}
	}
	keys := make([]string, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var status bytes.Buffer
	for _, k := range keys {
		status.Write(entries[k])
	}
	if err := r.writeFile("var/lib/dpkg/status", status.Bytes(), 0o644); err != nil {
		return err
	}
	// Format 1 of the info database names the files of Multi-Arch: same
	// packages "<pkg>:<arch>.*"; without this file dpkg expects format 0.
	if err := r.writeFile("var/lib/dpkg/info/format", []byte("1\n"), 0o644); err != nil {
		return err
	}
	if !r.exists("var/lib/dpkg/available") {
		if err := r.writeFile("var/lib/dpkg/available", nil, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func parseOne(b []byte) *Paragraph {
	var out *Paragraph
	parseParagraphs(b, func(_ int, p *Paragraph) error {
		if out == nil {
			out = p
		}
		return nil
	})
	if out == nil {
		return &Paragraph{}
	}
	return out
}

// writeUsers creates /etc/passwd, /etc/group, /etc/shadow and /etc/gshadow
// from base-passwd's master files, as base-passwd's and passwd's postinst
// would, when they are missing.
func (r *root) writeUsers() error {
	pw, err1 := r.readFile("usr/share/base-passwd/passwd.master")
	gr, err2 := r.readFile("usr/share/base-passwd/group.master")
	if err1 != nil || err2 != nil {
		return nil
	}
	if r.exists("etc/passwd") {
		return nil
	}
	shadowGID := uint32(42)
	var shadow, gshadow bytes.Buffer
	for _, l := range strings.Split(strings.TrimSpace(string(pw)), "\n") {
		if f := strings.Split(l, ":"); len(f) >= 7 {
			shadow.WriteString(f[0] + ":*::0:99999:7:::\n")
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(string(gr)), "\n") {
		if f := strings.Split(l, ":"); len(f) >= 4 {
			gshadow.WriteString(f[0] + ":*::" + f[3] + "\n")
			if f[0] == "shadow" {
				var g uint32
				if _, err := fmt.Sscanf(f[2], "%d", &g); err == nil {
					shadowGID = g
				}
			}
		}
	}
	files := []struct {
		name    string
		content []byte
		mode    uint32
	}{
		{"etc/passwd", pw, 0o644},
		{"etc/group", gr, 0o644},
		{"etc/shadow", shadow.Bytes(), 0o640},
		{"etc/gshadow", gshadow.Bytes(), 0o640},
	}
	for _, f := range files {
		if err := r.writeFile(f.name, f.content, f.mode); err != nil {
			return fmt.Errorf("writing /%s: %w", f.name, err)
		}
		if f.mode == 0o640 {
			r.meta.Set(f.name, tree.Override{GID: tree.Ptr(shadowGID)})
		}
	}
	return nil
}

// pipeline downloads the packages (opts.Downloads at a time, largest
// first) and unpacks each as soon as it is there, so the download of one
// overlaps the unpacking of others.
func (r *root) pipeline(ctx context.Context, plan *Plan, cacheDir string, opts InstallOptions, progress func(installer.Event)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := len(plan.Packages)
	order := make([]int, n)
	var total int64
	for i := range order {
		order[i] = i
		total += plan.Packages[i].Size
	}
	sort.SliceStable(order, func(a, b int) bool { return plan.Packages[order[a]].Size > plan.Packages[order[b]].Size })
	f := &fetch.Fetcher{CacheDir: cacheDir}
	r.results = make([]*unpacked, n)
	r.names = plan.Names()
	r.replaces = make([]map[string]bool, n)
	errs := make([]error, n)
	var mu sync.Mutex
	var bytes int64
	downloaded, unpackedN := 0, 0
	fail := func(i int, err error) {
		mu.Lock()
		if errs[i] == nil {
			errs[i] = err
		}
		mu.Unlock()
		cancel()
	}
	todo := make(chan int)
	ready := make(chan readyDeb, n)
	var dl sync.WaitGroup
	downloads := opts.Downloads
	if downloads <= 0 {
		downloads = 8
	}
	for w := 0; w < downloads && w < n; w++ {
		dl.Add(1)
		go func() {
			defer dl.Done()
			for i := range todo {
				p := plan.Packages[i]
				file, err := f.FetchCounting(ctx, fetch.Item{URL: p.URL, Size: p.Size, SHA256: p.SHA256}, func(k int64) {
					mu.Lock()
					bytes += k
					mu.Unlock()
				})
				if err != nil {
					fail(i, err)
					continue
				}
				mu.Lock()
				downloaded++
				ev := installer.Event{Kind: installer.Download, Package: p.Name, Done: downloaded, Count: n, Bytes: bytes, Total: total}
				mu.Unlock()
				progress(ev)
				ready <- readyDeb{i, file}
			}
		}()
	}
	go func() {
		defer close(todo)
		for _, i := range order {
			select {
			case todo <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		dl.Wait()
		close(ready)
	}()
	par := opts.Unpackers
	if par <= 0 {
		par = 2 * runtime.NumCPU()
	}
	var un sync.WaitGroup
	for w := 0; w < par; w++ {
		un.Add(1)
		go func() {
			defer un.Done()
			for d := range ready {
				if ctx.Err() != nil {
					continue
				}
				tc := ""
				if !opts.NoTarCache {
					tc = filepath.Join(cacheDir, "deb-data", strings.ToLower(plan.Packages[d.i].SHA256)+".tar")
				}
				res, err := r.unpack(d.file, d.i, opts.WithDocs, tc)
				if err != nil {
					fail(d.i, err)
					continue
				}
				r.results[d.i] = res
				mu.Lock()
				unpackedN++
				ev := installer.Event{Kind: installer.Extract, Package: plan.Packages[d.i].Name, Done: unpackedN, Count: n}
				mu.Unlock()
				progress(ev)
			}
		}()
	}
	un.Wait()
	for i, err := range errs {
		if err == nil || errors.Is(err, context.Canceled) {
			continue
		}
		p := plan.Packages[i]
		if errors.Is(err, fetch.ErrNotFound) {
			return fmt.Errorf("installing packages: the archive no longer serves %s %s (%s): update the lock or the plan: %w", p.Name, p.Version, p.URL, err)
		}
		return fmt.Errorf("installing %s %s: %w", p.Name, p.Version, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("installing packages: %w", err)
	}
	for i, res := range r.results {
		if res == nil {
			return fmt.Errorf("installing %s: not unpacked", plan.Packages[i].Name)
		}
	}
	return nil
}

type readyDeb struct {
	i    int
	file string
}

// serialize returns fn wrapped so calls never overlap (a no-op for nil).
func serialize(fn func(installer.Event)) func(installer.Event) {
	if fn == nil {
		return func(installer.Event) {}
	}
	var mu sync.Mutex
	return func(e installer.Event) {
		mu.Lock()
		defer mu.Unlock()
		fn(e)
	}
}
