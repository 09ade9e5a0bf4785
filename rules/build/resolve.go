package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/sxb-build/sxb/internal/atomicfile"
	"github.com/sxb-build/sxb/rules"
)

// Package resolution needs the repositories' signed metadata, one network
// round trip per suite and repository. So that a build with nothing changed
// does no work at all, the executor pins what it resolved (Installer.Pin)
// and reuses the pin, without the network, while it is younger than
// Options.Refresh. Lock files (sxb lock) pin for good.

// pinRecord is a remembered resolution.
type pinRecord struct {
	Time time.Time       `json:"time"`
	Pin  json.RawMessage `json:"pin"`
}

func (x *executor) pinFile(req InstallRequest) string {
	k := req
	k.Pin = nil
	return filepath.Join(x.opts.CacheDir, "pins", Key(k)+".json")
}

// resolve resolves req, honouring a lock-file pin, then a fresh remembered
// pin, and else asking the installer (and remembering its answer).
func (x *executor) resolve(ctx context.Context, t *rules.Target, in Installer, req InstallRequest, report func(string, string)) (Resolved, error) {
	r, err := x.resolveUnrecorded(ctx, t, in, req, report)
	if err == nil && x.opts.RecordLocks {
		pin, perr := in.Pin(r)
		if perr != nil {
			return nil, perr
		}
		x.mu.Lock()
		x.pins[t.Label.String()] = pin
		x.mu.Unlock()
	}
	return r, err
}

func (x *executor) resolveUnrecorded(ctx context.Context, t *rules.Target, in Installer, req InstallRequest, report func(string, string)) (Resolved, error) {
	if lock := x.opts.Locks[t.Label.String()]; len(lock) > 0 && !x.opts.RecordLocks {
		req.Pin = lock
		r, err := in.Resolve(ctx, req, report)
		if err != nil {
			return nil, fmt.Errorf("honouring the lock file (%s): %w", LockFileName, err)
		}
		return r, nil
	}
	file := x.pinFile(req)
	if x.opts.Refresh > 0 {
		if b, err := os.ReadFile(file); err == nil {
			var rec pinRecord
			if json.Unmarshal(b, &rec) == nil && time.Since(rec.Time) < x.opts.Refresh && len(rec.Pin) > 0 {
				pinned := req
				pinned.Pin = rec.Pin
				if r, err := in.Resolve(ctx, pinned, report); err == nil {
					return r, nil
				}
				// A pin that no longer applies is dropped: resolve afresh.
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	r, err := in.Resolve(ctx, req, report)
	if err != nil {
		return nil, err
	}
	if pin, err := in.Pin(r); err == nil && len(pin) > 0 {
		b, _ := json.Marshal(pinRecord{Time: time.Now(), Pin: pin})
		os.MkdirAll(filepath.Dir(file), 0o755)
		atomicfile.Write(file, b, 0o644)
	}
	return r, nil
}
