package inspect

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sxb-build/sxb/builtins/tree"
)

// aspects of a tree that describe compares beyond names, kinds,
// permission bits, sizes, contents, symlink targets and device numbers.
type aspects struct {
	owners, times, xattrs, links bool
	// special compares the setuid, setgid and sticky bits.
	special bool
}

var allAspects = aspects{true, true, true, true, true}

// describe lists every path of a tree with its kind, mode, size, content
// hash, symlink target and device number, and the aspects asked for.
func describe(t testing.TB, root *tree.Node, a aspects) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := root.Walk(func(n *tree.Node) error {
		var b strings.Builder
		mode := n.Mode
		if !a.special {
			mode &= 0o777
		}
		fmt.Fprintf(&b, "%v %04o size=%d", n.Kind, mode, n.Size)
		switch n.Kind {
		case tree.Regular:
			rc, err := n.Open()
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, rc)
			rc.Close()
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " sha=%x", h.Sum(nil)[:8])
		case tree.Symlink:
			fmt.Fprintf(&b, " -> %q", n.Target)
		case tree.CharDev, tree.BlockDev:
			fmt.Fprintf(&b, " dev=%d:%d", tree.Major(n.Rdev), tree.Minor(n.Rdev))
		}
		if a.owners {
			fmt.Fprintf(&b, " %d:%d", n.UID, n.GID)
		}
		if a.times {
			fmt.Fprintf(&b, " t=%d", n.Mtime)
		}
		if a.xattrs && len(n.Xattrs) > 0 {
			var ks []string
			for k, v := range n.Xattrs {
				ks = append(ks, k+"="+hex.EncodeToString(v))
			}
			sort.Strings(ks)
			fmt.Fprintf(&b, " xattrs=%s", strings.Join(ks, ","))
		}
		if a.links && n.Link != nil {
			fmt.Fprintf(&b, " link=%s", n.Link.Path)
		}
		out["/"+n.Path] = b.String()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// diffDescriptions returns the differences of two descriptions, at most
// a dozen.
func diffDescriptions(want, got map[string]string) string {
	var d []string
	for p, w := range want {
		if g, ok := got[p]; !ok {
			d = append(d, fmt.Sprintf("%s: missing (want %s)", p, w))
		} else if g != w {
			d = append(d, fmt.Sprintf("%s:\n   got  %s\n   want %s", p, g, w))
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			d = append(d, fmt.Sprintf("%s: unexpected %s", p, g))
		}
	}
	sort.Strings(d)
	if len(d) > 12 {
		d = append(d[:12], fmt.Sprintf("... %d more", len(d)-12))
	}
	return strings.Join(d, "\n")
}

// loadReal loads a tree a privileged tool wrote: owners, devices and
// xattrs as they are on disk.
func loadReal(t testing.TB, dir string) *tree.Node {
	t.Helper()
	root, err := tree.Load(dir, tree.Options{KeepOwner: true, Epoch: -1})
	if err != nil {
		t.Fatal(err)
	}
	root.Walk(func(n *tree.Node) error {
		n.Xattrs = readXattrs(t, filepath.Join(dir, n.Path))
		return nil
	})
	return root
}

func readXattrs(t testing.TB, p string) map[string][]byte {
	t.Helper()
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		t.Fatalf("listing xattrs of %s: %v", p, err)
	}
	var out map[string][]byte
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		v := make([]byte, 64<<10)
		k, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			t.Fatalf("reading xattr %s of %s: %v", name, p, err)
		}
		if out == nil {
			out = map[string][]byte{}
		}
		out[name] = v[:k]
	}
	return out
}

// materialize creates the tree for real below dir, as root: owners,
// setuid bits, device nodes, FIFOs, sockets, xattrs, hard links, times.
func materialize(t testing.TB, root *tree.Node, dir string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	var finish []func()
	err := root.Walk(func(n *tree.Node) error {
		p := filepath.Join(dir, n.Path)
		switch {
		case n.Link != nil:
			return os.Link(filepath.Join(dir, n.Link.Path), p)
		case n.Kind == tree.Dir:
			must(os.MkdirAll(p, 0o700))
		case n.Kind == tree.Regular:
			rc, err := n.Open()
			must(err)
			f, err := os.Create(p)
			must(err)
			_, err = io.Copy(f, rc)
			rc.Close()
			must(err)
			must(f.Close())
		case n.Kind == tree.Symlink:
			must(os.Symlink(n.Target, p))
		default:
			typ := map[tree.Kind]uint32{tree.CharDev: unix.S_IFCHR, tree.BlockDev: unix.S_IFBLK, tree.FIFO: unix.S_IFIFO, tree.Socket: unix.S_IFSOCK}[n.Kind]
			must(unix.Mknod(p, typ|0o600, int(n.Rdev)))
		}
		set := func() {
			must(os.Lchown(p, int(n.UID), int(n.GID)))
			if n.Kind != tree.Symlink {
				must(unix.Chmod(p, n.Mode))
			}
			for k, v := range n.Xattrs {
				must(unix.Lsetxattr(p, k, v, 0))
			}
			ts := []unix.Timespec{{Sec: n.Mtime}, {Sec: n.Mtime}}
			must(unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW))
		}
		if n.Kind == tree.Dir {
			finish = append(finish, set)
		} else {
			set()
		}
		return nil
	})
	must(err)
	for i := len(finish) - 1; i >= 0; i-- {
		finish[i]()
	}
}
