package remotecache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	repb "github.com/bazelbuild/remote-apis/build/bazel/remote/execution/v2"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/sxb-build/sxb/internal/testenv"
)

// makeTree writes a directory with what sxb trees hold: nested and
// read-only directories, a setgid directory, empty, executable and large
// files, a hard link, symlinks (one dangling, one pointing out), a FIFO
// and nanosecond time stamps.
func makeTree(t *testing.T, dir string, big int) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "usr/bin"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, "usr/share/doc"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, "var/ro"), 0o755))
	must(os.Mkdir(filepath.Join(dir, "var/shared"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "usr/bin/tool"), []byte("#!/bin/sh\necho hi\n"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "usr/share/doc/empty"), nil, 0o644))
	must(os.WriteFile(filepath.Join(dir, "var/ro/file"), []byte("read only"), 0o444))
	data := make([]byte, big)
	rand.New(rand.NewSource(1)).Read(data)
	must(os.WriteFile(filepath.Join(dir, "usr/share/big"), data, 0o640))
	must(os.Link(filepath.Join(dir, "usr/bin/tool"), filepath.Join(dir, "usr/bin/tool-link")))
	must(os.Symlink("tool", filepath.Join(dir, "usr/bin/alias")))
	must(os.Symlink("/etc/passwd", filepath.Join(dir, "usr/bin/outside")))
	must(os.Symlink("missing", filepath.Join(dir, "usr/bin/dangling")))
	must(unix.Mkfifo(filepath.Join(dir, "var/fifo"), 0o600))
	must(syscall.Chmod(filepath.Join(dir, "var/shared"), 0o2775))
	must(syscall.Chmod(filepath.Join(dir, "usr/bin/tool"), 0o4755))
	stamp := time.Unix(1700000000, 123456789)
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if p != dir {
			setTime(p, stamp)
		}
		stamp = stamp.Add(time.Second + 7)
		return nil
	})
	must(syscall.Chmod(filepath.Join(dir, "var/ro"), 0o555))
	must(setTime(filepath.Join(dir, "var/ro"), stamp))
	must(setTime(dir, stamp))
}

// listing describes a tree completely: per path its type, mode bits,
// time, size, content hash or link target, and which paths share an inode.
func listing(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	inodes := map[uint64]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		st := fi.Sys().(*syscall.Stat_t)
		line := fmt.Sprintf("%s %v %o %d", rel, fi.Mode(), st.Mode&0o7777, fi.ModTime().UnixNano())
		switch {
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			sum := sha256.Sum256(b)
			line += fmt.Sprintf(" %d %x", len(b), sum[:8])
			if first, ok := inodes[st.Ino]; ok {
				line += " =" + first
			} else {
				inodes[st.Ino] = rel
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			line += " -> " + l
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newClient(t *testing.T, url string, o Options) *Client {
	t.Helper()
	o.URL = url
	if o.ChunkSize == 0 {
		o.ChunkSize = 64 << 10
	}
	o.TempDir = t.TempDir()
	o.NetrcFile = filepath.Join(t.TempDir(), "none")
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// upload stores an action with a directory and a file output.
func upload(t *testing.T, c *Client, key string) (src string, m *Manifest) {
	t.Helper()
	src = t.TempDir()
	makeTree(t, filepath.Join(src, "tree"), 300<<10)
	if err := os.WriteFile(filepath.Join(src, "img.raw"), bytes.Repeat([]byte("image"), 40000), 0o644); err != nil {
		t.Fatal(err)
	}
	m = &Manifest{Key: key, Label: "//p:t", Info: []byte(`{"x":1}`), Outputs: []Output{{Name: "img.raw"}, {Name: "tree", Dir: true}}}
	if err := c.UploadAction(context.Background(), src, m, false, nil); err != nil {
		t.Fatalf("upload: %v", err)
	}
	return src, m
}

// checkStored is what a validating server (bazel-remote) checks, done
// on the files nginx wrote: the action result is an ActionResult, every
// blob it names is in the CAS, and every CAS file's name is its SHA-256.
func checkStored(t *testing.T, root, instance, key string) *repb.ActionResult {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, instance, "ac", ActionKey(key)))
	if err != nil {
		t.Fatalf("no action result on the server: %v", err)
	}
	ar := &repb.ActionResult{}
	if err := proto.Unmarshal(b, ar); err != nil {
		t.Fatalf("stored action result is not an ActionResult: %v", err)
	}
	for _, f := range ar.OutputFiles {
		blob, err := os.ReadFile(filepath.Join(root, instance, "cas", f.Digest.Hash))
		if err != nil {
			t.Fatalf("%s: blob %s missing: %v", f.Path, f.Digest.Hash, err)
		}
		if sum := sha256.Sum256(blob); hex.EncodeToString(sum[:]) != f.Digest.Hash || int64(len(blob)) != f.Digest.SizeBytes {
			t.Fatalf("%s: CAS blob does not match its digest", f.Path)
		}
	}
	return ar
}

func TestActionRoundTripOnNginx(t *testing.T) {
	srv := testenv.StartNginx(t, testenv.NginxOptions{})
	c := newClient(t, srv.URL, Options{InstanceName: "team/main"})
	key := strings.Repeat("ab", 32)
	ctx := context.Background()
	if m, err := c.LookupAction(ctx, key); m != nil || err != nil {
		t.Fatalf("lookup before upload: %v, %v", m, err)
	}
	src, up := upload(t, c, key)
	ar := checkStored(t, srv.Root, "team/main", key)
	var paths []string
	for _, f := range ar.OutputFiles {
		paths = append(paths, f.Path)
	}
	sort.Strings(paths)
	if paths[0] != ManifestName || paths[1] != "img.raw.part-0000" || !strings.HasPrefix(paths[len(paths)-1], "tree.sxbtar.part-") {
		t.Fatalf("action result output files: %v", paths)
	}
	// Uploading again sends no blob: every chunk is there.
	before := c.Stats().Uploaded.Load()
	if err := c.UploadAction(ctx, src, &Manifest{Key: key, Label: "//p:t", Info: []byte(`{"x":1}`), Outputs: []Output{{Name: "img.raw"}, {Name: "tree", Dir: true}}}, false, nil); err != nil {
		t.Fatal(err)
	}
	if sent := c.Stats().Uploaded.Load() - before; sent > 4096 {
		t.Fatalf("second upload sent %d bytes; only the manifest and action result should go", sent)
	}

	// Another client (machine) finds and fetches it, identical.
	c2 := newClient(t, srv.URL, Options{InstanceName: "team/main"})
	m, err := c2.LookupAction(ctx, key)
	if err != nil || m == nil {
		t.Fatalf("lookup: %v, %v", m, err)
	}
	if m.Label != "//p:t" || string(m.Info) != `{"x":1}` || m.Size() != up.Size() {
		t.Fatalf("manifest %+v", m)
	}
	dst := t.TempDir()
	var got int64
	if err := c2.FetchOutputs(ctx, m, dst, func(n int64) { got += n }); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if got != m.Size() {
		t.Fatalf("progress reported %d bytes of %d", got, m.Size())
	}
	if a, b := listing(t, filepath.Join(src, "tree")), listing(t, filepath.Join(dst, "tree")); a != b {
		t.Fatalf("tree differs:\n--- sent\n%s\n--- received\n%s", a, b)
	}
	if a, b := readFile(t, filepath.Join(src, "img.raw")), readFile(t, filepath.Join(dst, "img.raw")); !bytes.Equal(a, b) {
		t.Fatalf("file differs")
	}
	// Without the instance name there is nothing.
	c3 := newClient(t, srv.URL, Options{})
	if m, err := c3.LookupAction(ctx, key); m != nil || err != nil {
		t.Fatalf("lookup in another instance: %v, %v", m, err)
	}
}

func TestCorruptAndTruncatedBlobsAreRefusedAndHealed(t *testing.T) {
	srv := testenv.StartNginx(t, testenv.NginxOptions{})
	c := newClient(t, srv.URL, Options{})
	key := strings.Repeat("cd", 32)
	ctx := context.Background()
	src, _ := upload(t, c, key)
	ar := checkStored(t, srv.Root, "", key)
	for i, damage := range []string{"flip", "truncate"} {
		// One chunk of the file, then one of the tree's archive.
		for _, f := range ar.OutputFiles {
			if f.Path != []string{"img.raw.part-0001", "tree.sxbtar.part-0002"}[i] {
				continue
			}
			p := filepath.Join(srv.Root, "cas", f.Digest.Hash)
			b, _ := os.ReadFile(p)
			if damage == "flip" {
				b[len(b)/2] ^= 1
			} else {
				b = b[:len(b)-1]
			}
			os.WriteFile(p, b, 0o644)
		}
		c2 := newClient(t, srv.URL, Options{})
		m, err := c2.LookupAction(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		err = c2.FetchOutputs(ctx, m, t.TempDir(), nil)
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: fetch of damaged blobs: %v, want ErrCorrupt", damage, err)
		}
		// The client that saw the damage uploads the blobs again, even
		// though the server says it has them.
		m.Outputs[0].Stream, m.Outputs[1].Stream = Stream{}, Stream{}
		if err := c2.UploadAction(ctx, src, &Manifest{Key: key, Label: "//p:t", Info: []byte(`{"x":1}`), Outputs: []Output{{Name: "img.raw"}, {Name: "tree", Dir: true}}}, false, nil); err != nil {
			t.Fatal(err)
		}
		checkStored(t, srv.Root, "", key)
	}
}

func TestWrongActionResultIsRefused(t *testing.T) {
	srv := testenv.StartNginx(t, testenv.NginxOptions{})
	c := newClient(t, srv.URL, Options{})
	keyA, keyB := strings.Repeat("a1", 32), strings.Repeat("b2", 32)
	upload(t, c, keyA)
	// The server hands A's (valid, verifiable) result out for B.
	b, _ := os.ReadFile(filepath.Join(srv.Root, "ac", ActionKey(keyA)))
	os.WriteFile(filepath.Join(srv.Root, "ac", ActionKey(keyB)), b, 0o644)
	if m, err := c.LookupAction(context.Background(), keyB); m != nil || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("lookup of a result stored under another key: %v, %v", m, err)
	}
	// Garbage instead of an ActionResult.
	os.WriteFile(filepath.Join(srv.Root, "ac", ActionKey(keyB)), []byte("<html>not found</html>"), 0o644)
	if m, err := c.LookupAction(context.Background(), keyB); m != nil || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("lookup of garbage: %v, %v", m, err)
	}
}

func TestServerDownStalledOrRefusing(t *testing.T) {
	ctx := context.Background()
	key := strings.Repeat("ef", 32)
	srv := testenv.StartNginx(t, testenv.NginxOptions{})
	srv.Stop()
	c := newClient(t, srv.URL, Options{Timeout: 500 * time.Millisecond})
	if _, err := c.LookupAction(ctx, key); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("server down: %v, want ErrUnavailable", err)
	}

	// A server that accepts connections and never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c = newClient(t, "http://"+l.Addr().String(), Options{Timeout: 300 * time.Millisecond})
	if _, err := c.LookupAction(ctx, key); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("stalled server: %v, want ErrUnavailable", err)
	}

	ro := testenv.StartNginx(t, testenv.NginxOptions{ReadOnly: true})
	c = newClient(t, ro.URL, Options{})
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644)
	if err := c.UploadAction(ctx, src, &Manifest{Key: key, Outputs: []Output{{Name: "f"}}}, false, nil); !errors.Is(err, ErrDenied) {
		t.Fatalf("read-only server: %v, want ErrDenied", err)
	}
}

func TestAuthorizationHeaderAndNetrc(t *testing.T) {
	srv := testenv.StartNginx(t, testenv.NginxOptions{Authorization: "Basic dXNlcjpzZWNyZXQ="})
	ctx := context.Background()
	key := strings.Repeat("12", 32)
	if _, err := newClient(t, srv.URL, Options{}).LookupAction(ctx, key); !errors.Is(err, ErrDenied) {
		t.Fatalf("without credentials: %v, want ErrDenied", err)
	}
	c := newClient(t, srv.URL, Options{Header: map[string][]string{"Authorization": {"Basic dXNlcjpzZWNyZXQ="}}})
	upload(t, c, key)
	netrc := filepath.Join(t.TempDir(), "netrc")
	os.WriteFile(netrc, []byte("machine other login a password b\n\nmachine 127.0.0.1\n  login user\n  password secret\n"), 0o600)
	c2, err := New(Options{URL: srv.URL, NetrcFile: netrc, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := c2.LookupAction(ctx, key); m == nil || err != nil {
		t.Fatalf("with netrc credentials: %v, %v", m, err)
	}
}

func TestNetrc(t *testing.T) {
	f := filepath.Join(t.TempDir(), "netrc")
	os.WriteFile(f, []byte("macdef init\n  machine cache login no password no\n\nmachine cache login alice password s3cret account x\ndefault login anon password none\n"), 0o600)
	for host, want := range map[string]string{"cache": "alice:s3cret", "elsewhere": "anon:none"} {
		l, p, err := netrcLookup(f, host)
		if err != nil || l+":"+p != want {
			t.Errorf("%s: %q %q %v, want %s", host, l, p, err, want)
		}
	}
	if l, p, err := netrcLookup(filepath.Join(t.TempDir(), "missing"), "cache"); l != "" || p != "" || err != nil {
		t.Errorf("missing file: %q %q %v", l, p, err)
	}
}

func TestConcurrentUploadsOfOneAction(t *testing.T) {
	srv := testenv.StartNginx(t, testenv.NginxOptions{})
	key := strings.Repeat("9a", 32)
	src := t.TempDir()
	makeTree(t, filepath.Join(src, "tree"), 200<<10)
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() {
			c := newClient(t, srv.URL, Options{})
			errs <- c.UploadAction(context.Background(), src, &Manifest{Key: key, Outputs: []Output{{Name: "tree", Dir: true}}}, false, nil)
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent upload: %v", err)
		}
	}
	checkStored(t, srv.Root, "", key)
	c := newClient(t, srv.URL, Options{})
	m, err := c.LookupAction(context.Background(), key)
	if err != nil || m == nil {
		t.Fatalf("lookup: %v %v", m, err)
	}
	dst := t.TempDir()
	if err := c.FetchOutputs(context.Background(), m, dst, nil); err != nil {
		t.Fatal(err)
	}
	if a, b := listing(t, filepath.Join(src, "tree")), listing(t, filepath.Join(dst, "tree")); a != b {
		t.Fatal("tree differs after concurrent uploads")
	}
}
