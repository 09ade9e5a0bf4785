package remotecache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sync/errgroup"
)

// How an sxb action lies in the cache. Its action result (AC) is an REAPI
// ActionResult whose output files name CAS blobs:
//
//	.sxb-action.json           the Manifest (below)
//	<file>                     an output file that fits in one chunk
//	<file>.part-0000, ...      the chunks of a larger output file
//	<dir>.sxbtar[.part-NNNN]   the chunks of a directory's archive (WriteTree)
//
// so a server that validates action results (every named blob present)
// accepts it and any REAPI client can list what it holds. sxb itself reads
// only the Manifest, verified by the digest the action result gives, and
// every chunk by the digests the Manifest gives; the Manifest also names
// the action key, so an action result stored under another key is refused.

// ManifestName is the output file of an action result that holds its
// Manifest.
const ManifestName = ".sxb-action.json"

// Output is one output of an action: a file, or a directory sent as a tar
// stream.
type Output struct {
	Name   string `json:"name"`
	Dir    bool   `json:"dir,omitempty"`
	Stream Stream `json:"stream"`
}

// Manifest is sxb's record of an action in the remote cache.
type Manifest struct {
	Version int    `json:"version"`
	Key     string `json:"key"`
	Label   string `json:"label"`
	// Info and Inputs are the local cache entry's records, carried as is.
	Info    json.RawMessage `json:"info,omitempty"`
	Inputs  json.RawMessage `json:"inputs,omitempty"`
	Outputs []Output        `json:"outputs"`
}

// Size is the total length of the outputs' streams.
func (m *Manifest) Size() int64 {
	var n int64
	for _, o := range m.Outputs {
		n += o.Stream.Size
	}
	return n
}

// manifestVersion changes whenever the layout above does.
const manifestVersion = 1

// ActionKey is the AC key of an sxb action key: a hash of it and the
// layout version, so that another layout never reads this one's entries.
func ActionKey(key string) string {
	s := sha256.Sum256([]byte(fmt.Sprintf("sxb remote action v%d\x00%s", manifestVersion, key)))
	return hex.EncodeToString(s[:])
}

// plainName reports whether s can name an output: one path element.
func plainName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00") && s != ManifestName
}

// UploadAction stores the outputs in dir (each top-level name listed in
// m.Outputs, with Dir set for directories; Stream is filled in here) and
// then the action result naming them under key. Blobs go first, so the
// action result never names a missing blob. With force every blob is
// sent, even those the server says it has (after it served a damaged one).
func (c *Client) UploadAction(ctx context.Context, dir string, m *Manifest, force bool, progress func(int64)) error {
	m.Version = manifestVersion
	g, gctx := errgroup.WithContext(ctx)
	for i := range m.Outputs {
		o := &m.Outputs[i]
		if !plainName(o.Name) {
			return fmt.Errorf("output name %q cannot be stored", o.Name)
		}
		g.Go(func() error {
			var err error
			if o.Dir {
				o.Stream, err = c.uploadTree(gctx, filepath.Join(dir, o.Name), force, progress)
			} else {
				o.Stream, err = c.UploadFile(gctx, filepath.Join(dir, o.Name), force, progress)
			}
			if err != nil {
				return fmt.Errorf("uploading %s: %w", o.Name, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return err
	}
	md, err := c.PutBytes(ctx, mb)
	if err != nil {
		return fmt.Errorf("uploading the action manifest: %w", err)
	}
	ar := &ActionResult{OutputFiles: []OutputFile{{Path: ManifestName, Digest: md}}}
	for _, o := range m.Outputs {
		stem := o.Name
		if o.Dir {
			stem += ".sxbtar"
		}
		for i, ch := range o.Stream.Chunks {
			p := stem
			if len(o.Stream.Chunks) > 1 {
				p = fmt.Sprintf("%s.part-%04d", stem, i)
			}
			ar.OutputFiles = append(ar.OutputFiles, OutputFile{Path: p, Digest: ch})
		}
		if len(o.Stream.Chunks) == 0 {
			ar.OutputFiles = append(ar.OutputFiles, OutputFile{Path: stem, Digest: DigestOf(nil)})
		}
	}
	if err := c.PutActionResult(ctx, ActionKey(m.Key), ar); err != nil {
		return fmt.Errorf("storing the action result: %w", err)
	}
	return nil
}

// uploadTree archives the directory p into a spool file and uploads it.
func (c *Client) uploadTree(ctx context.Context, p string, force bool, progress func(int64)) (Stream, error) {
	spool, err := os.CreateTemp(c.opts.TempDir, "sxb-remote-*.tar")
	if err != nil {
		return Stream{}, err
	}
	defer os.Remove(spool.Name())
	err = WriteTree(spool, p)
	if cerr := spool.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Stream{}, err
	}
	return c.UploadFile(ctx, spool.Name(), force, progress)
}

// maxManifest bounds the size of a manifest read from the cache.
const maxManifest = 64 << 20

// LookupAction returns the Manifest of the action key, or nil when the
// cache has no result for it. The manifest is verified by digest and
// checked to belong to key; its outputs are not fetched.
func (c *Client) LookupAction(ctx context.Context, key string) (*Manifest, error) {
	ar, err := c.GetActionResult(ctx, ActionKey(key))
	if err != nil || ar == nil {
		return nil, err
	}
	listed := map[string]bool{}
	var d Digest
	for _, f := range ar.OutputFiles {
		listed[f.Digest.Hash] = true
		if f.Path == ManifestName {
			d = f.Digest
		}
	}
	if !d.Valid() {
		return nil, fmt.Errorf("%w: action result without a valid manifest digest", ErrCorrupt)
	}
	b, err := c.GetBytes(ctx, d, maxManifest)
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: action manifest: %v", ErrCorrupt, err)
	}
	if m.Version != manifestVersion || m.Key != key {
		return nil, fmt.Errorf("%w: the action result stored for %.12s… belongs to %.12s… (layout %d)", ErrCorrupt, key, m.Key, m.Version)
	}
	seen := map[string]bool{}
	for _, o := range m.Outputs {
		if !plainName(o.Name) || seen[o.Name] {
			return nil, fmt.Errorf("%w: action manifest: bad or repeated output name %q", ErrCorrupt, o.Name)
		}
		seen[o.Name] = true
		if err := o.Stream.check(); err != nil {
			return nil, fmt.Errorf("%w: output %s: %v", ErrCorrupt, o.Name, err)
		}
		for _, ch := range o.Stream.Chunks {
			if !listed[ch.Hash] {
				return nil, fmt.Errorf("%w: output %s: chunk %v is not in the action result", ErrCorrupt, o.Name, ch)
			}
		}
	}
	return &m, nil
}

// FetchOutputs downloads the outputs m names into dir (which must exist
// and not hold them yet): files verified chunk by chunk and as a whole,
// directories extracted from their verified archive stream. On error what
// was written to dir is unusable and must be discarded.
func (c *Client) FetchOutputs(ctx context.Context, m *Manifest, dir string, progress func(int64)) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, o := range m.Outputs {
		o := o
		g.Go(func() error {
			dst := filepath.Join(dir, o.Name)
			if !o.Dir {
				return c.DownloadFile(gctx, o.Stream, dst, progress)
			}
			r, err := c.OpenStream(gctx, o.Stream, progress)
			if err != nil {
				return err
			}
			err = ReadTree(r, dst)
			if err == nil {
				// Past tar's end marker: reading to the end checks the
				// stream's digest as a whole.
				_, err = io.Copy(io.Discard, r)
			}
			if cerr := r.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("fetching %s: %w", o.Name, err)
			}
			return nil
		})
	}
	return g.Wait()
}
