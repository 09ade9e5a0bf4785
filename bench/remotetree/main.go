// Command remotetree measures two ways of moving a directory output
// through a Bazel HTTP remote cache, for bench/remotecache.sh:
//
//   - archive: what sxb does (builtins/remotecache): the tree as one tar
//     stream cut into 16 MiB chunks, sent and fetched 8 at a time, and
//     extracted while it arrives;
//   - tree: REAPI's own form: one CAS blob per file plus a Tree message of
//     Directory protos, files sent (after a HEAD) and fetched 8 at a time.
//
// Both use the same client (connections, timeouts, verification). Each
// direction starts from an empty server store and an empty target.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"

	"github.com/sxb-build/sxb/builtins/remotecache"
)

func main() {
	url := flag.String("url", "", "remote cache URL (nginx with WebDAV)")
	store := flag.String("store", "", "the server's root directory, emptied between runs")
	work := flag.String("work", "", "work directory")
	files := flag.Int("files", 10000, "number of files")
	total := flag.Int64("bytes", 125<<20, "total size of the files")
	runs := flag.Int("runs", 5, "runs per measurement (the median is printed)")
	flag.Parse()
	if *url == "" || *store == "" || *work == "" {
		fmt.Fprintln(os.Stderr, "usage: remotetree -url URL -store DIR -work DIR")
		os.Exit(2)
	}
	src := filepath.Join(*work, "src")
	if err := makeTree(src, *files, *total); err != nil {
		fail(err)
	}
	ctx := context.Background()
	// The two ways alternate run by run, so that a change of load on a
	// shared machine hits both alike.
	ups, downs := map[string][]time.Duration{}, map[string][]time.Duration{}
	for i := 0; i < *runs; i++ {
		for _, way := range []string{"archive", "tree"} {
			os.RemoveAll(*store)
			os.MkdirAll(*store, 0o755)
			dst := filepath.Join(*work, fmt.Sprintf("dst-%s-%d", way, i))
			c := client(*url, *work)
			t0 := time.Now()
			if way == "archive" {
				m := &remotecache.Manifest{Key: key(i), Outputs: []remotecache.Output{{Name: "src", Dir: true}}}
				fail(c.UploadAction(ctx, *work, m, false, nil))
			} else {
				fail(uploadTree(ctx, c, src, key(i)))
			}
			ups[way] = append(ups[way], time.Since(t0))
			c = client(*url, *work) // a fresh machine
			t0 = time.Now()
			if way == "archive" {
				m, err := c.LookupAction(ctx, key(i))
				fail(err)
				os.MkdirAll(dst, 0o755)
				fail(c.FetchOutputs(ctx, m, dst, nil))
			} else {
				fail(downloadTree(ctx, c, key(i), filepath.Join(dst, "src")))
			}
			downs[way] = append(downs[way], time.Since(t0))
			os.RemoveAll(dst)
		}
	}
	for _, way := range []string{"archive", "tree"} {
		fmt.Printf("%-8s upload %6.2fs  download %6.2fs  (%d files, %.0f MB, median of %d)\n",
			way, median(ups[way]), median(downs[way]), *files, float64(*total)/1e6, *runs)
	}
	fmt.Printf("tree/archive: upload %.1fx, download %.1fx\n", median(ups["tree"])/median(ups["archive"]), median(downs["tree"])/median(downs["archive"]))
}

func key(i int) string { return fmt.Sprintf("%064x", i+1) }

func client(url, work string) *remotecache.Client {
	c, err := remotecache.New(remotecache.Options{URL: url, TempDir: work, NetrcFile: "/nonexistent"})
	fail(err)
	return c
}

func fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "remotetree:", err)
		os.Exit(1)
	}
}

func median(ds []time.Duration) float64 {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2].Seconds()
}

// makeTree writes n files of about total bytes in 100 directories, sizes
// spread like a distribution's tree (many small files, a few large ones).
func makeTree(dir string, n int, total int64) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	r := rand.New(rand.NewSource(1))
	weights := make([]float64, n)
	var sum float64
	for i := range weights {
		weights[i] = r.ExpFloat64() * r.ExpFloat64()
		sum += weights[i]
	}
	buf := make([]byte, 0)
	for i, w := range weights {
		size := int(float64(total) * w / sum)
		if cap(buf) < size {
			buf = make([]byte, size)
		}
		b := buf[:size]
		r.Read(b)
		p := filepath.Join(dir, fmt.Sprintf("d%02d/f%05d", i%100, i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// uploadTree stores dir as REAPI does: every file a CAS blob, the
// directories as a Tree message, the result as an OutputDirectory.
func uploadTree(ctx context.Context, c *remotecache.Client, dir, key string) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	tree := &repb.Tree{}
	var walk func(p string) (*repb.Directory, error)
	walk = func(p string) (*repb.Directory, error) {
		ents, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		d := &repb.Directory{}
		for _, e := range ents {
			full := filepath.Join(p, e.Name())
			if e.IsDir() {
				sub, err := walk(full)
				if err != nil {
					return nil, err
				}
				b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(sub)
				tree.Children = append(tree.Children, sub)
				d.Directories = append(d.Directories, &repb.DirectoryNode{Name: e.Name(), Digest: toProto(remotecache.DigestOf(b))})
				continue
			}
			b, err := os.ReadFile(full)
			if err != nil {
				return nil, err
			}
			dg := remotecache.DigestOf(b)
			d.Files = append(d.Files, &repb.FileNode{Name: e.Name(), Digest: toProto(dg)})
			g.Go(func() error {
				has, err := c.Has(gctx, dg)
				if err != nil || has {
					return err
				}
				return c.Put(gctx, dg, func() (io.ReadCloser, error) { return os.Open(full) })
			})
		}
		return d, nil
	}
	root, err := walk(dir)
	if err != nil {
		return err
	}
	if err := g.Wait(); err != nil {
		return err
	}
	tree.Root = root
	tb, _ := proto.MarshalOptions{Deterministic: true}.Marshal(tree)
	td, err := c.PutBytes(ctx, tb)
	if err != nil {
		return err
	}
	ar, _ := proto.Marshal(&repb.ActionResult{OutputDirectories: []*repb.OutputDirectory{{Path: "src", TreeDigest: toProto(td)}}})
	return c.PutAC(ctx, key, ar)
}

func toProto(d remotecache.Digest) *repb.Digest { return &repb.Digest{Hash: d.Hash, SizeBytes: d.Size} }

func fromProto(d *repb.Digest) remotecache.Digest {
	return remotecache.Digest{Hash: d.GetHash(), Size: d.GetSizeBytes()}
}

// downloadTree fetches what uploadTree stored into dst.
func downloadTree(ctx context.Context, c *remotecache.Client, key, dst string) error {
	b, err := c.GetAC(ctx, key)
	if err != nil || b == nil {
		return fmt.Errorf("action result: %v", err)
	}
	ar := &repb.ActionResult{}
	if err := proto.Unmarshal(b, ar); err != nil {
		return err
	}
	td := fromProto(ar.OutputDirectories[0].TreeDigest)
	tb, err := c.GetBytes(ctx, td, 64<<20)
	if err != nil {
		return err
	}
	tree := &repb.Tree{}
	if err := proto.Unmarshal(tb, tree); err != nil {
		return err
	}
	byDigest := map[string]*repb.Directory{}
	for _, d := range tree.Children {
		b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(d)
		byDigest[remotecache.DigestOf(b).Hash] = d
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	var place func(d *repb.Directory, p string) error
	place = func(d *repb.Directory, p string) error {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		for _, f := range d.Files {
			dg := fromProto(f.Digest)
			full := filepath.Join(p, f.Name)
			g.Go(func() error {
				out, err := os.Create(full)
				if err != nil {
					return err
				}
				err = c.Get(gctx, dg, out, 0)
				if cerr := out.Close(); err == nil {
					err = cerr
				}
				return err
			})
		}
		for _, sub := range d.Directories {
			if err := place(byDigest[sub.Digest.Hash], filepath.Join(p, sub.Name)); err != nil {
				return err
			}
		}
		return nil
	}
	if err := place(tree.Root, dst); err != nil {
		return err
	}
	return g.Wait()
}
