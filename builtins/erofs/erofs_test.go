package erofs

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/testenv"
)

const buildTime = 1700000000

var testUUID = [16]byte{0x5b, 0x1c, 0x0e, 0x2a, 0x11, 0x22, 0x43, 0x44, 0x85, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc}

// content returns n deterministic pseudo-random bytes.
func content(seed uint64, n int) []byte {
	b := make([]byte, n)
	x := seed*0x9e3779b97f4a7c15 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}

// fixture builds a directory holding every kind of object the writer must
// handle, with the metadata a rootless extraction would record, and loads it.
func fixture(t *testing.T) *tree.Node {
	t.Helper()
	dir, m := fixtureFiles(t)
	root, err := tree.Load(dir, tree.Options{Meta: m, Epoch: buildTime})
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// fixtureFiles makes fixture's directory and metadata.
func fixtureFiles(t *testing.T) (string, *tree.Meta) {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	file := func(rel string, data []byte) {
		t.Helper()
		p := filepath.Join(dir, rel)
		must(os.MkdirAll(filepath.Dir(p), 0o755))
		must(os.WriteFile(p, data, 0o644))
	}
	mkdir := func(rel string) { must(os.MkdirAll(filepath.Join(dir, rel), 0o755)) }
	symlink := func(target, rel string) {
		p := filepath.Join(dir, rel)
		must(os.MkdirAll(filepath.Dir(p), 0o755))
		must(os.Symlink(target, p))
	}
	link := func(old, rel string) { must(os.Link(filepath.Join(dir, old), filepath.Join(dir, rel))) }

	sizes := []int{0, 1, 100, 4095, 4096, 4097, 8191, 3*4096 + 100, 512 << 10, 1<<20 + 123, 3<<20 + 4000}
	for i, n := range sizes {
		file(fmt.Sprintf("files/f%d", n), content(uint64(i+1), n))
	}
	mkdir("emptydir")
	mkdir("a/b/c/d")
	file("a/b/c/d/deep", []byte("deep\n"))
	symlink("/nonexistent/dangling/target", "links/dangling")
	symlink("../files/f100", "links/relative")
	symlink(strings.Repeat("long/", 800)+"end", "links/long") // 4003 bytes
	symlink(strings.Repeat("m", 3000), "links/medium")
	file("hard/a", content(99, 5000))
	link("hard/a", "hard/b")
	link("hard/a", "files/hard-c")
	file("hard/x", []byte("x"))
	link("hard/x", "a/x2")
	file("hard/empty", nil)
	link("hard/empty", "hard/empty2")
	file(strings.Repeat("n", 255), []byte("long name\n"))
	mkdir(strings.Repeat("d", 255))
	file(strings.Repeat("d", 255)+"/"+strings.Repeat("e", 254), []byte("x"))
	for i := range 3000 {
		file(fmt.Sprintf("bigdir/entry-%05d-%s", i, strings.Repeat("z", i%40)), []byte(fmt.Sprint(i)))
	}
	file("-before-dot", []byte("sorts before ."))
	file("suid", []byte("#!/bin/sh\n"))
	file("meta/suid", []byte("#!/bin/sh\n"))
	file("meta/sgid", nil)
	mkdir("meta/sticky")
	mkdir("meta/sgiddir")
	file("meta/owned", []byte("owned"))
	file("meta/bigid", []byte("big ids"))
	file("meta/cap", []byte("\x7fELF"))
	file("meta/manyx", nil)
	file("meta/old", content(7, 10000))
	for _, p := range []string{"dev/null", "dev/loop300", "dev/big", "dev/fifo", "dev/sock"} {
		file(p, nil)
	}
	must(os.Chmod(filepath.Join(dir, "suid"), 0o4755))

	m := tree.NewMeta()
	m.Set("", tree.Override{Mode: tree.Ptr[uint32](0o755)})
	m.Set("meta/suid", tree.Override{Mode: tree.Ptr[uint32](0o4711)})
	m.Set("meta/sgid", tree.Override{Mode: tree.Ptr[uint32](0o2755), GID: tree.Ptr[uint32](5)})
	m.Set("meta/sticky", tree.Override{Mode: tree.Ptr[uint32](0o1777)})
	m.Set("meta/sgiddir", tree.Override{Mode: tree.Ptr[uint32](0o2775), UID: tree.Ptr[uint32](1000), GID: tree.Ptr[uint32](1000)})
	m.Set("meta/owned", tree.Override{UID: tree.Ptr[uint32](1000), GID: tree.Ptr[uint32](65535)})
	m.Set("meta/bigid", tree.Override{UID: tree.Ptr[uint32](100000), GID: tree.Ptr[uint32](4000000000)})
	capv := make([]byte, 20) // vfs_cap_data v2: cap_net_bind_service permitted+effective
	binary.LittleEndian.PutUint32(capv[0:], 0x02000001)
	binary.LittleEndian.PutUint32(capv[4:], 1<<10)
	m.Set("meta/cap", tree.Override{Mode: tree.Ptr[uint32](0o755), Xattrs: map[string][]byte{
		"security.capability": capv,
		"user.comment":        []byte("hello"),
		"trusted.overlay.x":   []byte("y"),
	}})
	many := map[string][]byte{}
	for i := range 60 {
		many[fmt.Sprintf("user.attr%02d", i)] = content(uint64(i), 100+i)
	}
	m.Set("meta/manyx", tree.Override{Xattrs: many})
	m.Set("emptydir", tree.Override{Xattrs: map[string][]byte{"user.dir": []byte("on a dir"), "user.empty": {}}})
	m.Set("links/dangling", tree.Override{Xattrs: map[string][]byte{"trusted.link": []byte("on a symlink")}, UID: tree.Ptr[uint32](70000)})
	m.Set("meta/old", tree.Override{Mtime: tree.Ptr[int64](1000000000)})
	m.Set("a/b", tree.Override{Mtime: tree.Ptr[int64](1600000000)})
	m.Set("dev/null", tree.Override{Kind: tree.Ptr(tree.CharDev), Rdev: tree.Ptr(tree.Mkdev(1, 3)), Mode: tree.Ptr[uint32](0o666)})
	m.Set("dev/loop300", tree.Override{Kind: tree.Ptr(tree.BlockDev), Rdev: tree.Ptr(tree.Mkdev(7, 300)), Mode: tree.Ptr[uint32](0o660), GID: tree.Ptr[uint32](6)})
	m.Set("dev/big", tree.Override{Kind: tree.Ptr(tree.CharDev), Rdev: tree.Ptr(tree.Mkdev(300, 70000)), Mode: tree.Ptr[uint32](0o600)})
	m.Set("dev/fifo", tree.Override{Kind: tree.Ptr(tree.FIFO), Mode: tree.Ptr[uint32](0o620)})
	m.Set("dev/sock", tree.Override{Kind: tree.Ptr(tree.Socket), Mode: tree.Ptr[uint32](0o777)})
	return dir, m
}

func writeImage(t *testing.T, root *tree.Node, opts Options) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "img.erofs")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	size, err := Write(f, root, opts)
	if err != nil {
		f.Close()
		t.Fatalf("Write: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	if size%BlockSize != 0 || fi.Size() != size {
		t.Fatalf("Write returned size %d, file has %d bytes", size, fi.Size())
	}
	return img
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

var defaultOpts = Options{UUID: testUUID, VolumeName: "sxb-test", Epoch: buildTime}

func TestFsck(t *testing.T) {
	testenv.NeedTool(t, "fsck.erofs")
	img := writeImage(t, fixture(t), defaultOpts)
	out := run(t, "fsck.erofs", "--extract", img)
	if strings.Contains(strings.ToLower(out), "error") || strings.Contains(out, "corrupt") {
		t.Fatalf("fsck.erofs reports problems:\n%s", out)
	}
}

func TestFsckExtract(t *testing.T) {
	testenv.NeedTool(t, "fsck.erofs")
	root := fixture(t)
	img := writeImage(t, root, defaultOpts)
	dst := filepath.Join(t.TempDir(), "x")
	run(t, "fsck.erofs", "--extract="+dst, img)
	// fsck.erofs 1.5 extracts hard links as separate files, sets no
	// xattrs, loses setuid/setgid (it chowns after chmod) and can only
	// mknod as root. TestMount checks all of that through the kernel.
	compareTree(t, root, dst, compareOpts{owner: os.Geteuid() == 0, devices: os.Geteuid() == 0, noSpecialBits: true})
}

func TestMount(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedTool(t, "mount", "umount")
	root := fixture(t)
	img := writeImage(t, root, defaultOpts)
	mnt := mount(t, img)
	compareTree(t, root, mnt, compareOpts{owner: true, devices: true, xattrs: true, links: true, mtime: true})
}

func mount(t *testing.T, img string) string {
	t.Helper()
	mnt := t.TempDir()
	run(t, "mount", "-t", "erofs", "-o", "loop,ro", img, mnt)
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", mnt, err, out)
		}
	})
	return mnt
}

type compareOpts struct {
	owner, devices, xattrs, links, mtime bool
	// noSpecialBits ignores setuid, setgid and sticky.
	noSpecialBits bool
}

func (o compareOpts) modeMask() uint32 {
	if o.noSpecialBits {
		return 0o777
	}
	return 0o7777
}

// compareTree checks that dir holds exactly the objects of root.
func compareTree(t *testing.T, root *tree.Node, dir string, o compareOpts) {
	t.Helper()
	inos := map[*tree.Node]uint64{}
	seen := map[uint64]*tree.Node{}
	nerr := 0
	errorf := func(format string, args ...any) {
		t.Helper()
		nerr++
		if nerr <= 30 {
			t.Errorf(format, args...)
		}
	}
	err := root.Walk(func(n *tree.Node) error {
		p := filepath.Join(dir, n.Path)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			errorf("%s: %v", n.Path, err)
			return nil
		}
		owner := n
		if n.Link != nil {
			owner = n.Link
		}
		wantType := map[tree.Kind]uint32{tree.Regular: unix.S_IFREG, tree.Dir: unix.S_IFDIR, tree.Symlink: unix.S_IFLNK,
			tree.CharDev: unix.S_IFCHR, tree.BlockDev: unix.S_IFBLK, tree.FIFO: unix.S_IFIFO, tree.Socket: unix.S_IFSOCK}[owner.Kind]
		if st.Mode&unix.S_IFMT != wantType {
			if !o.devices && (owner.Kind == tree.CharDev || owner.Kind == tree.BlockDev || owner.Kind == tree.Socket) {
				return nil
			}
			errorf("%s: type %#o, want %#o", n.Path, st.Mode&unix.S_IFMT, wantType)
			return nil
		}
		if mask := o.modeMask(); owner.Kind != tree.Symlink && st.Mode&mask != owner.Mode&mask {
			errorf("%s: mode %#o, want %#o", n.Path, st.Mode&mask, owner.Mode&mask)
		}
		if o.owner && (st.Uid != owner.UID || st.Gid != owner.GID) {
			errorf("%s: owner %d:%d, want %d:%d", n.Path, st.Uid, st.Gid, owner.UID, owner.GID)
		}
		if o.mtime && st.Mtim.Sec != owner.Mtime {
			errorf("%s: mtime %d, want %d", n.Path, st.Mtim.Sec, owner.Mtime)
		}
		switch owner.Kind {
		case tree.Regular:
			if st.Size != owner.Size {
				errorf("%s: size %d, want %d", n.Path, st.Size, owner.Size)
			}
			if got, want := fileHash(t, p), nodeHash(t, n); got != want {
				errorf("%s: content differs", n.Path)
			}
		case tree.Symlink:
			target, err := os.Readlink(p)
			if err != nil || target != owner.Target {
				errorf("%s: target %q (%v), want %q", n.Path, target, err, owner.Target)
			}
		case tree.CharDev, tree.BlockDev:
			if st.Rdev != owner.Rdev {
				errorf("%s: rdev %d:%d, want %d:%d", n.Path, unix.Major(st.Rdev), unix.Minor(st.Rdev), tree.Major(owner.Rdev), tree.Minor(owner.Rdev))
			}
		case tree.Dir:
			ents, err := os.ReadDir(p)
			if err != nil {
				errorf("%s: %v", n.Path, err)
				return nil
			}
			var got, want []string
			for _, e := range ents {
				got = append(got, e.Name())
			}
			for _, c := range n.Children {
				want = append(want, c.Name)
			}
			sort.Strings(got)
			if strings.Join(got, "/") != strings.Join(want, "/") {
				errorf("%s: %d entries, want %d", n.Path, len(got), len(want))
			}
		}
		if o.links {
			if owner.Kind != tree.Dir && uint32(st.Nlink) != owner.LinkCount() {
				errorf("%s: nlink %d, want %d", n.Path, st.Nlink, owner.LinkCount())
			}
			if owner.Kind == tree.Dir && uint32(st.Nlink) != owner.Nlink {
				errorf("%s: nlink %d, want %d", n.Path, st.Nlink, owner.Nlink)
			}
			if ino, ok := inos[owner]; ok {
				if ino != st.Ino {
					errorf("%s: inode %d, want %d shared with %s", n.Path, st.Ino, ino, owner.Path)
				}
			} else {
				if other, dup := seen[st.Ino]; dup {
					errorf("%s: shares inode %d with %s", n.Path, st.Ino, other.Path)
				}
				inos[owner], seen[st.Ino] = st.Ino, owner
			}
		}
		if o.xattrs {
			got := listXattrs(t, p)
			want := owner.Xattrs
			if len(got) != len(want) {
				errorf("%s: %d xattrs %v, want %d", n.Path, len(got), keys(got), len(want))
			}
			for k, v := range want {
				if g, ok := got[k]; !ok || !bytes.Equal(g, v) {
					errorf("%s: xattr %s = %q, want %q", n.Path, k, g, v)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if nerr > 30 {
		t.Errorf("... %d differences in total", nerr)
	}
}

func keys(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func listXattrs(t *testing.T, p string) map[string][]byte {
	t.Helper()
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		t.Fatalf("llistxattr %s: %v", p, err)
	}
	m := map[string][]byte{}
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		v := make([]byte, 64<<10)
		k, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			t.Fatalf("lgetxattr %s %s: %v", p, name, err)
		}
		m[name] = v[:k]
	}
	return m
}

func fileHash(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func nodeHash(t *testing.T, n *tree.Node) string {
	t.Helper()
	rc, err := n.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func TestSuperblock(t *testing.T) {
	testenv.NeedTool(t, "dump.erofs")
	root := fixture(t)
	img := writeImage(t, root, defaultOpts)
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	sb := b[superOffset : superOffset+superSize]
	le := binary.LittleEndian
	if le.Uint32(sb) != superMagic {
		t.Fatalf("magic %#x", le.Uint32(sb))
	}
	if le.Uint32(sb[8:])&compatChksum == 0 {
		t.Errorf("SB_CHKSUM not set")
	}
	blk0 := bytes.Clone(b[superOffset:BlockSize])
	want := le.Uint32(blk0[4:])
	le.PutUint32(blk0[4:], 0)
	// Reference crc32c without final inversion, bit by bit.
	crc := uint32(0xffffffff)
	for _, c := range blk0 {
		crc ^= uint32(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ crc32.Castagnoli
			} else {
				crc >>= 1
			}
		}
	}
	if crc != want {
		t.Errorf("superblock checksum %#x, want %#x", want, crc)
	}
	if !bytes.Equal(sb[48:64], testUUID[:]) {
		t.Errorf("uuid %x", sb[48:64])
	}
	if got := le.Uint32(sb[36:]); int64(got)*BlockSize != int64(len(b)) {
		t.Errorf("blocks %d, image has %d bytes", got, len(b))
	}
	out := run(t, "dump.erofs", "-s", img)
	uuid := "5b1c0e2a-1122-4344-8566-778899aabbcc"
	if got := string(bytes.TrimRight(sb[64:80], "\x00")); got != "sxb-test" {
		t.Errorf("volume name %q", got)
	}
	for _, want := range []string{uuid, "sb_csum", fmt.Sprintf("Filesystem blocks:                            %d", len(b)/BlockSize)} {
		if !strings.Contains(out, want) {
			t.Errorf("dump.erofs -s lacks %q:\n%s", want, out)
		}
	}
	// libblkid (what udev and systemd-dissect use) reports UUID and label.
	testenv.NeedTool(t, "blkid")
	out = run(t, "blkid", "-p", "-o", "export", img)
	for _, want := range []string{"TYPE=erofs", "UUID=" + uuid, "LABEL=sxb-test"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("blkid -p lacks %q:\n%s", want, out)
		}
	}
	// Tamper with the superblock: the kernel and fsck must notice.
	b[superOffset+64] ^= 1
	bad := filepath.Join(t.TempDir(), "bad.erofs")
	if err := os.WriteFile(bad, b, 0o644); err != nil {
		t.Fatal(err)
	}
	// fsck.erofs 1.5 exits 0 here; its message is the evidence.
	if out, _ := exec.Command("fsck.erofs", bad).CombinedOutput(); !strings.Contains(string(out), "chksum doesn't match") {
		t.Errorf("fsck.erofs accepted a superblock with a wrong checksum:\n%s", out)
	}
	if os.Geteuid() == 0 {
		mnt := t.TempDir()
		if out, err := exec.Command("mount", "-t", "erofs", "-o", "loop,ro", bad, mnt).CombinedOutput(); err == nil {
			exec.Command("umount", mnt).Run()
			t.Errorf("the kernel mounted a superblock with a wrong checksum:\n%s", out)
		}
	}
}

func TestDumpPaths(t *testing.T) {
	testenv.NeedTool(t, "dump.erofs")
	root := fixture(t)
	img := writeImage(t, root, defaultOpts)
	for _, c := range []struct{ path, want string }{
		{"/meta/bigid", "Uid: 100000   Gid: 4000000000"},
		{"/meta/bigid", "Inode size: 64"},
		{"/meta/owned", "Inode size: 32"},
		{"/hard/b", "Links: 3"},
		{"/files/f1048699", "Size: 1048699"},
		{"/files/f1048699", "Layout: 2"},
		{"/dev/loop300", "block dev"},
		{"/meta/cap", "Xattr size: 80"},
	} {
		out := run(t, "dump.erofs", "--path="+c.path, img)
		if !strings.Contains(strings.ReplaceAll(out, "\t", " "), c.want) {
			t.Errorf("dump.erofs --path=%s lacks %q:\n%s", c.path, c.want, out)
		}
	}
}

func TestReproducible(t *testing.T) {
	root := fixture(t)
	a, err := os.ReadFile(writeImage(t, root, defaultOpts))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(writeImage(t, fixture(t), defaultOpts))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("two writes of the same tree differ")
	}
	// Compression "none" is the default.
	none := defaultOpts
	none.Compression = "none"
	c, err := os.ReadFile(writeImage(t, root, none))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, c) {
		t.Fatalf("compression none differs from the default")
	}
	// Through a plain io.WriterAt (no copy_file_range), same bytes.
	var buf writerAtBuf
	if _, err := Write(&buf, root, defaultOpts); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, buf.b) {
		t.Fatalf("writing to a buffer gives other bytes than writing to a file")
	}
}

type writerAtBuf struct{ b []byte }

func (w *writerAtBuf) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(w.b) {
		w.b = append(w.b, make([]byte, end-len(w.b))...)
	}
	return copy(w.b[off:], p), nil
}

func TestCompactAndExtended(t *testing.T) {
	root := fixture(t)
	img, err := plan(root, defaultOpts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := img.place(0); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		"files/f100": false, "meta/owned": false, "meta/bigid": true, "meta/old": true,
		"a/b": true, "links/dangling": true, "emptydir": false,
	}
	for _, ino := range img.inodes {
		if w, ok := want[ino.node.Path]; ok && ino.extended != w {
			t.Errorf("%s: extended = %v, want %v", ino.node.Path, ino.extended, w)
		}
		if ino.layout == layoutFlatInline {
			in := int64(ino.nid*slotSize%BlockSize) + int64(ino.metaSize())
			if in%BlockSize+int64(ino.inline) > BlockSize && in != BlockSize {
				t.Errorf("%s: inline tail crosses a block boundary", ino.node.Path)
			}
		}
	}
	if img.inodes[0].nid != 36 {
		t.Errorf("root nid %d", img.inodes[0].nid)
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	load := func(m *tree.Meta) *tree.Node {
		root, err := tree.Load(dir, tree.Options{Meta: m, Epoch: -1})
		if err != nil {
			t.Fatal(err)
		}
		return root
	}
	var buf writerAtBuf
	_, err := Write(&buf, load(nil), Options{Compression: "lzo"})
	if !errors.Is(err, ErrUnsupportedCompression) {
		t.Errorf("lzo: %v", err)
	}
	if _, err := Write(&buf, load(nil), Options{Compression: "none", VolumeName: strings.Repeat("v", 17)}); err == nil {
		t.Errorf("long volume name accepted")
	}
	m := tree.NewMeta()
	m.Set("f", tree.Override{Xattrs: map[string][]byte{"foo.bar": []byte("x")}})
	if _, err := Write(&buf, load(m), Options{}); err == nil || !strings.Contains(err.Error(), "foo.bar") {
		t.Errorf("unknown xattr prefix: %v", err)
	}
	root := load(nil)
	root.Children[0].Name = "a/b"
	if _, err := Write(&buf, root, Options{}); err == nil {
		t.Errorf("name with a slash accepted")
	}
	if _, err := Write(&buf, root.Children[0], Options{}); err == nil {
		t.Errorf("a file as root accepted")
	}
	// A file that grows after loading is refused rather than truncated.
	root = load(nil)
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("xy"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(&buf, root, Options{}); !errors.Is(err, errChanged) {
		t.Errorf("grown file: %v", err)
	}
	root.Children[0].Size = 3
	if _, err := Write(&buf, root, Options{}); !errors.Is(err, errChanged) {
		t.Errorf("shrunk file: %v", err)
	}
}

// TestRealTree writes a real system directory and has fsck.erofs check
// every file, and as root compares a kernel mount with the tree.
func TestRealTree(t *testing.T) {
	testenv.NeedTool(t, "fsck.erofs")
	src := "/usr/share/doc"
	root, err := tree.Load(src, tree.Options{KeepOwner: true, Epoch: -1})
	if err != nil {
		t.Fatal(err)
	}
	img := writeImage(t, root, defaultOpts)
	run(t, "fsck.erofs", "--extract", img)
	if os.Geteuid() == 0 {
		compareTree(t, root, mount(t, img), compareOpts{owner: true, devices: true, links: true, mtime: true})
	}
}
