package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/sxb-build/sxb/builtins/remotecache"
	"github.com/sxb-build/sxb/rules"
)

// The remote cache (Options.Remote) is consulted after the local one: a
// hit is fetched, verified chunk by chunk, into a local cache entry as if
// it had been built here; a result built here is uploaded before it is
// published. The remote never makes a build fail: when it is down, slow or
// erroring the build goes on locally after one warning, and a blob that
// does not match its digest is rebuilt (and uploaded again).
//
// Action keys must be the same on every machine, so the workspace's
// absolute path never enters them: it is replaced by a placeholder in the
// inputs before hashing (see actionKey), and in the records (Info) sent to
// the remote.

// remoteState is what the executor knows about the remote cache in one
// build.
type remoteState struct {
	off       atomic.Bool // unavailable: not consulted any more
	uploadOff atomic.Bool // refuses uploads
	warnOnce  sync.Once
	denyOnce  sync.Once
}

// workspacePlaceholder stands for the workspace root in action keys and
// in records stored remotely.
const workspacePlaceholder = "${SXB_WORKSPACE}"

// relocate rewrites every JSON string of b that is the path from, or
// starts with from + "/", to start with to instead.
func relocate(b []byte, from, to string) []byte {
	if from == "" || len(b) == 0 {
		return b
	}
	enc := func(s string) []byte {
		q, _ := json.Marshal(s)
		return q[:len(q)-1] // keep the opening quote, drop the closing one
	}
	b = bytes.ReplaceAll(b, append(enc(from), '/'), append(enc(to), '/'))
	return bytes.ReplaceAll(b, append(enc(from), '"'), append(enc(to), '"'))
}

// actionKey is the key of an action with these inputs: the SHA-256 of
// their JSON encoding with the workspace root replaced by a placeholder,
// so that a checkout anywhere computes the same keys.
func (x *executor) actionKey(inputs any) string {
	b, err := json.Marshal(inputs)
	if err != nil {
		panic(fmt.Sprintf("build: unencodable action key: %v", err))
	}
	sum := sha256.Sum256(relocate(b, x.g.Workspace, workspacePlaceholder))
	return hex.EncodeToString(sum[:])
}

// remoteFetch looks key up in the remote cache and, on a hit, fetches the
// outputs into a new local cache entry. It returns nil on a miss or any
// failure (said on the log), after which the action runs locally; damaged
// says the remote's result was corrupt (to be uploaded anew).
func (x *executor) remoteFetch(ctx context.Context, t *rules.Target, key string, inputs any) (e *Entry, damaged bool) {
	c := x.opts.Remote
	if c == nil || x.remote.off.Load() {
		return nil, false
	}
	rep := x.reporter(t)
	rep("remote cache lookup", "")
	m, err := c.LookupAction(ctx, key)
	if err != nil {
		x.remoteFailed(t, "looking up", err)
		return nil, errors.Is(err, remotecache.ErrCorrupt)
	}
	if m == nil {
		if x.opts.Explain {
			fmt.Fprintf(x.opts.Log, "explain: %s: remote cache miss (key %.12s)\n", t.Label, key)
		}
		return nil, false
	}
	st, err := x.cache.Stage(key)
	if err != nil {
		return nil, false
	}
	total := m.Size()
	var done atomic.Int64
	rep("fetching from remote cache", fmt.Sprintf("0.0/%s MB", mb(total)))
	err = c.FetchOutputs(ctx, m, st.Out(), func(n int64) {
		rep("fetching from remote cache", fmt.Sprintf("%s/%s MB", mb(done.Add(n)), mb(total)))
	})
	if err != nil {
		st.Abort()
		x.remoteFailed(t, "fetching", err)
		return nil, errors.Is(err, remotecache.ErrCorrupt)
	}
	info := json.RawMessage(relocate(m.Info, workspacePlaceholder, x.g.Workspace))
	if e, err = st.Commit(t.Label.String(), info, inputs); err != nil {
		st.Abort()
		fmt.Fprintf(x.opts.Log, "sxb: warning: %s: keeping the remote result: %v; building locally\n", t.Label, err)
		return nil, false
	}
	return e, false
}

// remoteStore uploads the local cache entry e and reports whether it did.
// With fresh unset (a local cache hit) it first asks whether the remote
// has the result, so a remote cache added to a warm machine fills up.
// With repair every blob is sent, even those the server claims to have.
func (x *executor) remoteStore(ctx context.Context, t *rules.Target, e *Entry, fresh, repair bool) bool {
	c := x.opts.Remote
	if c == nil || !x.opts.RemoteUpload || x.remote.off.Load() || x.remote.uploadOff.Load() {
		return false
	}
	rep := x.reporter(t)
	// A mark in the entry remembers that this remote has it, so that a
	// build with nothing changed asks the network nothing.
	mark := filepath.Join(e.Dir(), ".remote-"+Key(c.URL())[:16])
	if !fresh {
		if _, err := os.Stat(mark); err == nil {
			return false
		}
		rep("remote cache lookup", "")
		m, err := c.LookupAction(ctx, e.Key)
		if m != nil {
			os.WriteFile(mark, nil, 0o644)
			return false
		}
		if err != nil && !errors.Is(err, remotecache.ErrCorrupt) {
			x.remoteFailed(t, "looking up", err)
			return false
		}
	}
	m := &remotecache.Manifest{Key: e.Key, Label: e.Label,
		Info: relocate(e.Info, x.g.Workspace, workspacePlaceholder), Inputs: e.Inputs}
	var total int64
	for _, o := range e.Outputs {
		m.Outputs = append(m.Outputs, remotecache.Output{Name: o.Name, Dir: o.Dir})
		total += o.Size
	}
	var done atomic.Int64
	rep("uploading to remote cache", fmt.Sprintf("0.0/%s MB", mb(total)))
	err := c.UploadAction(ctx, filepath.Join(e.Dir(), "out"), m, repair, func(n int64) {
		rep("uploading to remote cache", fmt.Sprintf("%s/%s MB", mb(done.Add(n)), mb(total)))
	})
	if err != nil {
		x.remoteFailed(t, "uploading", err)
		return false
	}
	os.WriteFile(mark, nil, 0o644)
	return true
}

// remoteFailed reports a remote cache failure: a corrupt result once per
// target, an unusable server once per build (and stops using it), a
// server refusing uploads once (and stops uploading).
func (x *executor) remoteFailed(t *rules.Target, what string, err error) {
	switch {
	case errors.Is(err, context.Canceled):
	case errors.Is(err, remotecache.ErrCorrupt):
		fmt.Fprintf(x.opts.Log, "sxb: warning: %s: remote cache: %v; building locally\n", t.Label, err)
	case errors.Is(err, remotecache.ErrDenied) && what == "uploading":
		x.remote.uploadOff.Store(true)
		x.remote.denyOnce.Do(func() {
			fmt.Fprintf(x.opts.Log, "sxb: warning: remote cache %s refuses uploads (%v); going on without uploading\n", x.opts.Remote.URL(), err)
		})
	default:
		x.remote.off.Store(true)
		x.remote.warnOnce.Do(func() {
			fmt.Fprintf(x.opts.Log, "sxb: warning: remote cache %s: %s %s: %v; building locally without it\n", x.opts.Remote.URL(), what, t.Label, err)
		})
	}
}

// Summary counts what happened to every action of a build (dependencies
// included), for the closing summary.
type Summary struct {
	// Actions is the number of targets that finished; Remote of them came
	// from the remote cache, Uploaded were stored there.
	Actions, Remote, Uploaded int
}

func (x *executor) summarize(s *Summary) {
	if s == nil {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	*s = Summary{Actions: len(x.results)}
	for _, r := range x.results {
		if r.Remote {
			s.Remote++
		}
		if r.Uploaded {
			s.Uploaded++
		}
	}
}
