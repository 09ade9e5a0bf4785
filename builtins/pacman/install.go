package pacman

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/sxb-build/sxb/builtins/fetch"
	"github.com/sxb-build/sxb/builtins/installer"
	"github.com/sxb-build/sxb/builtins/tree"
)

// InstallOptions tune Install.
type InstallOptions struct {
	// WithDocs keeps documentation. When false, what mkosi's NoExtract
	// lines for Arch leave out is not unpacked: usr/share/{doc,man,groff,
	// gtk-doc,info}/ (the local database still lists the files, as
	// pacman's does).
	WithDocs bool
	// Progress, when set, receives events; calls are serialized.
	Progress func(installer.Event)
	// CacheDir overrides the download cache of the plan's request.
	CacheDir string
	// Scripts runs the .INSTALL scriptlets, ldconfig and the libalpm
	// hooks pacman would run, in a sandbox (see scripts.go; the program
	// must call sandbox.Init). When the tree's executables cannot run
	// here (another architecture without a binfmt_misc emulator, see
	// sandbox.EmulatorForArch, or no /usr/bin/bash in the tree), they are not run
	// and Warn says so.
	Scripts bool
	// Epoch is the SOURCE_DATE_EPOCH the scripts see.
	Epoch int64
	// ScriptOutput receives what the scripts print (they run with no
	// terminal and no input).
	ScriptOutput io.Writer
	// Warn receives warnings: failed scriptlets and hooks (pacman goes
	// on after them too), hooks it cannot read, what was not run.
	Warn func(string)
	// NotRun receives the steps that were not run (Scripts false, or no
	// way to run them), in pacman's order, for the manifest.
	NotRun func([]string)
}

// Result says what an installation ran.
type Result struct {
	// Steps are the scriptlet functions, ldconfig and hooks pacman runs
	// in the transaction, in its order: PreTransaction hooks, then per
	// package pre_install and post_install, ldconfig, then
	// PostTransaction hooks.
	Steps []Step
	// Ran reports whether Steps were run (InstallOptions.Scripts).
	Ran bool
}

// Install downloads the packages of plan, checks each against its
// database's SHA-256 and its detached signature (the database's %PGPSIG%
// or <package>.sig) against the keyring, and unpacks them into dir in
// dependency order, as pacman would, without root: modes, owners, device
// nodes and file capabilities that the unprivileged tree cannot hold go
// to meta; every payload entry must agree with the package's .MTREE.
// Payload paths are confined to dir. Two packages shipping one file, or a
// package shipping a file the tree (or the base's local database)
// already has, is a file conflict, as for pacman.
//
// Install writes the local database (var/lib/pacman/local/<name>-
// <version>/{desc,files,mtree,install} and ALPM_DB_VERSION) so pacman -Q
// works in the image and an extension resolves against it. The install
// date recorded is the package's build date, so the tree is reproducible.
//
// With opts.Scripts, the .INSTALL scriptlets, ldconfig and libalpm hooks
// pacman would run are run in a sandbox, in pacman's order (see
// scripts.go); otherwise they are listed in Result.Steps and reported to
// opts.NotRun.
//
// On error dir is left partially filled and should be discarded.
func Install(ctx context.Context, plan *Plan, dir string, meta *tree.Meta, opts InstallOptions) (*Result, error) {
	if meta == nil {
		return nil, fmt.Errorf("installing packages: no metadata to record into")
	}
	cacheDir := opts.CacheDir
	if cacheDir == "" {
		cacheDir = plan.cacheDir
	}
	if cacheDir == "" {
		return nil, fmt.Errorf("installing packages: no cache directory")
	}
	progress := serialize(opts.Progress)
	var kr *Keyring
	if !plan.insecure {
		now := plan.now
		if now.IsZero() {
			now = time.Now()
		}
		var err error
		if kr, err = LoadKeyring(plan.keyringDir, plan.keyring, now); err != nil {
			return nil, fmt.Errorf("installing packages: %w", err)
		}
	}
	pfs, err := fetchAndVerify(ctx, plan, cacheDir, kr, progress)
	if err != nil {
		return nil, err
	}
	// The base's packages: their files may not be replaced; hooks see
	// them installed (Depends) and which packages the transaction
	// upgrades.
	var baseFiles map[string]string
	upgraded := map[string]*installed{}
	var base []*installed
	if plan.baseRoot != "" {
		if base, err = readLocalDB(plan.baseDB); err != nil {
			return nil, fmt.Errorf("installing packages: %w", err)
		}
		var keep []*installed
		for _, b := range base {
			if plan.has(b.Name) {
				upgraded[b.Name] = b
			} else {
				keep = append(keep, b)
			}
		}
		if baseFiles, err = installedFiles(plan.baseDB, keep); err != nil {
			return nil, fmt.Errorf("installing packages: %w", err)
		}
	}
	r, err := openRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("installing packages: %w", err)
	}
	defer r.close()
	pfs = installOrder(pfs)
	trees := []string{dir, plan.baseRoot}
	txn, err := transaction(plan.baseDB, base, pfs, upgraded, opts.WithDocs)
	if err != nil {
		return nil, fmt.Errorf("installing packages: %w", err)
	}
	sr, why := scriptRunner(plan, dir, meta, opts)
	res := &Result{}
	pre, skipped, errs := hookSteps(trees, "PreTransaction", txn, base)
	res.Steps = append(res.Steps, pre...)
	if sr != nil && len(pre) > 0 && !hasRunnerShell(trees) {
		sr, why = nil, fmt.Errorf("the tree has no %s", ScriptletShell)
	}
	if sr != nil {
		// libalpm aborts the transaction when a hook it is to run
		// before it is broken.
		if err := errors.Join(errs...); err != nil {
			return nil, fmt.Errorf("installing packages: PreTransaction hooks: %w", err)
		}
		if err := sr.runPre(ctx, pre, skipped); err != nil {
			return nil, fmt.Errorf("installing packages: %w", err)
		}
	}
	x := newExtractor(r, meta, baseFiles, opts.WithDocs)
	if err := x.checkConflicts(pfs); err != nil {
		return nil, err
	}
	var steps []Step
	for i, pf := range pfs {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("installing packages: %w", err)
		}
		if err := x.extract(pf); err != nil {
			return nil, fmt.Errorf("installing %s %s: %w", pf.pkg.Name, pf.pkg.Version, err)
		}
		before, after := scriptlets(pf, txn[i].oldVersion)
		for _, s := range []*Step{before, after} {
			if s != nil {
				steps = append(steps, *s)
			}
		}
		progress(installer.Event{Kind: installer.Extract, Package: pf.pkg.Name, Done: i + 1, Count: len(pfs)})
	}
	if err := x.finishDirs(); err != nil {
		return nil, fmt.Errorf("installing packages: %w", err)
	}
	if err := writeLocalDB(r, pfs, plan.insecure); err != nil {
		return nil, fmt.Errorf("installing packages: %w", err)
	}
	if hasLDConfig(trees) {
		steps = append(steps, Step{Kind: "ldconfig"})
	}
	// The hooks after the transaction see the new packages' files (what
	// was unpacked) and hooks.
	for i, pf := range pfs {
		txn[i].files = installedNames(pf.files, opts.WithDocs)
	}
	post, skipped, errs := hookSteps(trees, "PostTransaction", txn, afterTransaction(base, pfs, upgraded))
	steps = append(steps, post...)
	res.Steps = append(res.Steps, steps...)
	if sr != nil && len(steps) > 0 && !hasRunnerShell(trees) {
		sr, why = nil, fmt.Errorf("the tree has no %s", ScriptletShell)
	}
	if sr == nil {
		notRun(res.Steps, why, opts)
	} else {
		for _, e := range errs {
			sr.warn(e.Error())
		}
		if err := sr.runPost(ctx, steps, skipped, r); err != nil {
			return nil, fmt.Errorf("installing packages: %w", err)
		}
		res.Ran = true
	}
	progress(installer.Event{Kind: installer.Done, Done: len(pfs), Count: len(pfs)})
	return res, nil
}

func (p *Plan) has(name string) bool {
	for _, pk := range p.Packages {
		if pk.Name == name {
			return true
		}
	}
	return false
}

// fetchAndVerify downloads the packages (checked against their SHA-256),
// then checks signatures and reads the metadata of each, in parallel.
func fetchAndVerify(ctx context.Context, plan *Plan, cacheDir string, kr *Keyring, progress func(installer.Event)) ([]*pkgFile, error) {
	f := &fetch.Fetcher{CacheDir: cacheDir, Progress: func(p fetch.Progress) {
		progress(installer.Event{Kind: installer.Download, Done: p.Done, Count: p.Count, Bytes: p.Bytes, Total: p.Total})
	}}
	items := make([]fetch.Item, len(plan.Packages))
	for i, p := range plan.Packages {
		items[i] = fetch.Item{URL: p.URL, Size: p.Size, SHA256: p.SHA256}
	}
	paths, err := f.FetchAll(ctx, items)
	if err != nil {
		if errors.Is(err, fetch.ErrNotFound) {
			return nil, fmt.Errorf("installing packages: the mirror no longer serves a package of the plan: update the lock: %w", err)
		}
		return nil, fmt.Errorf("installing packages: %w", err)
	}
	pfs := make([]*pkgFile, len(plan.Packages))
	errs := make([]error, len(plan.Packages))
	sem := make(chan struct{}, runtime.NumCPU())
	var wg sync.WaitGroup
	for i, p := range plan.Packages {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			pf, err := verifyPackage(ctx, f, p, paths[i], kr)
			if err != nil {
				errs[i] = fmt.Errorf("installing %s %s: %w", p.Name, p.Version, err)
				return
			}
			pfs[i] = pf
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return pfs, nil
}

// verifyPackage checks a downloaded package's signature (unless kr is
// nil) and that it is the package the database described.
func verifyPackage(ctx context.Context, f *fetch.Fetcher, p Package, file string, kr *Keyring) (*pkgFile, error) {
	if kr != nil {
		var sig []byte
		if p.Signature != "" {
			var err error
			if sig, err = base64.StdEncoding.DecodeString(p.Signature); err != nil {
				return nil, fmt.Errorf("the database's %%PGPSIG%% is not base64: %w", ErrSignature)
			}
		} else {
			var err error
			sig, err = f.Get(ctx, p.URL+".sig", 1<<20)
			if errors.Is(err, fetch.ErrNotFound) {
				return nil, fmt.Errorf("package is not signed (no %%PGPSIG%% in the database, no %s): %w", p.URL+".sig", ErrSignature)
			}
			if err != nil {
				return nil, err
			}
		}
		fh, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		_, err = kr.Verify(fh, sig)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("package signature: %w", err)
		}
	}
	pf, err := readMeta(file)
	if err != nil {
		return nil, err
	}
	if pf.info.Name != p.Name || pf.info.Version != p.Version {
		return nil, fmt.Errorf("the file is %s %s, not the package the database names", pf.info.Name, pf.info.Version)
	}
	pf.pkg = p
	return pf, nil
}

// installOrder sorts packages so that each comes after what it depends
// on, as libalpm's _alpm_sortbydeps does (depth first, dependencies
// before dependents, cycles broken where met), starting from the packages
// in name order.
func installOrder(pfs []*pkgFile) []*pkgFile {
	sort.Slice(pfs, func(i, j int) bool { return pfs[i].pkg.Name < pfs[j].pkg.Name })
	deps := make([][]int, len(pfs))
	for i, a := range pfs {
		ds, _ := parseDeps(a.info.Depends, "depends")
		for j, b := range pfs {
			if i == j {
				continue
			}
			provides, _ := parseDeps(b.info.Provides, "provides")
			for _, d := range ds {
				if d.satisfiedBy(b.info.Name, b.info.Version, provides) {
					deps[i] = append(deps[i], j)
					break
				}
			}
		}
	}
	state := make([]int, len(pfs)) // 0 new, 1 visiting, 2 done
	var out []*pkgFile
	var visit func(int)
	visit = func(i int) {
		state[i] = 1
		for _, j := range deps[i] {
			if state[j] == 0 {
				visit(j)
			}
		}
		state[i] = 2
		out = append(out, pfs[i])
	}
	for i := range pfs {
		if state[i] == 0 {
			visit(i)
		}
	}
	return out
}
