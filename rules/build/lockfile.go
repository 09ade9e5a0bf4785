package build

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sxb-build/sxb/internal/atomicfile"
	"github.com/sxb-build/sxb/rules"
)

// LockFileName is the lock file of a package, beside its BUILD.star. It
// maps target names to the exact packages (versions, URLs, SHA256) their
// last `sxb lock` resolved; builds install exactly those and fail when the
// archive no longer serves one of them.
const LockFileName = "sxb.lock.json"

type lockFile struct {
	Version int                        `json:"version"`
	Targets map[string]json.RawMessage `json:"targets"`
}

// ReadLocks reads the lock files of every package of g that has targets,
// keyed by label.
func ReadLocks(g *rules.Graph) (map[string][]byte, error) {
	out := map[string][]byte{}
	seen := map[string]bool{}
	for _, t := range g.Targets {
		if seen[t.Label.Pkg] {
			continue
		}
		seen[t.Label.Pkg] = true
		file := filepath.Join(g.Workspace, filepath.FromSlash(t.Label.Pkg), LockFileName)
		b, err := os.ReadFile(file)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var lf lockFile
		if err := json.Unmarshal(b, &lf); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if lf.Version != 1 {
			return nil, fmt.Errorf("%s: unsupported lock file version %d", file, lf.Version)
		}
		for name, pin := range lf.Targets {
			out[rules.Label{Pkg: t.Label.Pkg, Name: name}.String()] = pin
		}
	}
	return out, nil
}

// writeLocks merges pins (by label) into the lock files of their packages.
func writeLocks(g *rules.Graph, pins map[string][]byte) error {
	byPkg := map[string]map[string][]byte{}
	for l, pin := range pins {
		// A target's build packages are pinned beside it.
		owner, suffix := l, ""
		if o, ok := strings.CutSuffix(l, buildPackagesSuffix); ok {
			owner, suffix = o, buildPackagesSuffix
		}
		t := g.Targets[owner]
		if t == nil || len(pin) == 0 {
			continue
		}
		if byPkg[t.Label.Pkg] == nil {
			byPkg[t.Label.Pkg] = map[string][]byte{}
		}
		byPkg[t.Label.Pkg][t.Label.Name+suffix] = pin
	}
	pkgs := make([]string, 0, len(byPkg))
	for p := range byPkg {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	for _, pkg := range pkgs {
		file := filepath.Join(g.Workspace, filepath.FromSlash(pkg), LockFileName)
		lf := lockFile{Version: 1, Targets: map[string]json.RawMessage{}}
		if b, err := os.ReadFile(file); err == nil {
			if err := json.Unmarshal(b, &lf); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
		}
		if lf.Targets == nil {
			lf.Targets = map[string]json.RawMessage{}
		}
		for name, pin := range byPkg[pkg] {
			var compact bytes.Buffer
			if err := json.Compact(&compact, pin); err != nil {
				return err
			}
			lf.Targets[name] = compact.Bytes()
		}
		b, err := json.MarshalIndent(lf, "", "  ")
		if err != nil {
			return err
		}
		if err := atomicfile.Write(file, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}
