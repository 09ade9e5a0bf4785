package squashfs

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sxb-build/sxb/builtins/tree"
)

const testBlock = 131072

// pseudoRandom returns n deterministic, incompressible bytes.
func pseudoRandom(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// compressible returns n deterministic bytes of text-like data.
func compressible(seed int64, n int) []byte {
	r := rand.New(rand.NewSource(seed))
	words := []string{"squashfs ", "block ", "fragment ", "inode ", "the ", "kernel ", "of ", "a\n"}
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[r.Intn(len(words))])
	}
	return b.Bytes()[:n]
}

// makeTree builds a tree on disk covering every node kind and the corner
// cases of the format, and loads it with its metadata.
func makeTree(t *testing.T) *tree.Node {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "root")
	meta := tree.NewMeta()
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
	set := func(rel string, o tree.Override) {
		if old, ok := meta.Get(rel); ok {
			if o.Kind == nil {
				o.Kind = old.Kind
			}
			if o.Rdev == nil {
				o.Rdev = old.Rdev
			}
			if o.Mode == nil {
				o.Mode = old.Mode
			}
		}
		meta.Set(rel, o)
	}
	placeholder := func(rel string, k tree.Kind, mode uint32, rdev uint64) {
		file(rel, nil)
		set(rel, tree.Override{Kind: tree.Ptr(k), Mode: tree.Ptr(mode), Rdev: tree.Ptr(rdev)})
	}

	mkdir("")
	file("empty", nil)
	file("small.txt", []byte("hello\n"))
	file("dup1", compressible(1, 5000))
	file("dup2", compressible(1, 5000))
	file("sub/dup3", compressible(1, 5000))
	file("bigdup1", pseudoRandom(2, 300000))
	file("bigdup2", pseudoRandom(2, 300000))
	file("samesize", pseudoRandom(3, 300000))
	file("exact", compressible(4, testBlock))
	file("exact2", compressible(5, 2*testBlock))
	file("multi", compressible(6, 3*testBlock+1234))
	file("random", pseudoRandom(7, 200000))
	sparse := make([]byte, 4*testBlock+100)
	copy(sparse[2*testBlock:], "data in the middle")
	copy(sparse[4*testBlock:], "tail")
	file("sparse", sparse)
	file("with space", []byte("space\n"))
	file("ünïcødé", []byte("unicode\n"))
	file(strings.Repeat("L", 255), []byte("long name\n"))

	file("bin/su", compressible(8, 1000))
	set("bin/su", tree.Override{Mode: tree.Ptr(uint32(04755))})
	file("bin/wall", compressible(9, 700))
	set("bin/wall", tree.Override{Mode: tree.Ptr(uint32(02755)), GID: tree.Ptr(uint32(5))})
	file("bin/ping", compressible(10, 900))
	set("bin/ping", tree.Override{Mode: tree.Ptr(uint32(0755)), Xattrs: map[string][]byte{
		"security.capability": {1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	}})
	file("bin/ping6", compressible(11, 900))
	set("bin/ping6", tree.Override{Mode: tree.Ptr(uint32(0755)), Xattrs: map[string][]byte{
		"security.capability": {1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	}})
	big := bytes.Repeat([]byte("0123456789abcdef"), 20)
	file("xattrs/many", []byte("x"))
	set("xattrs/many", tree.Override{Xattrs: map[string][]byte{
		"user.comment":     []byte("a comment"),
		"user.empty":       {},
		"trusted.overlay":  []byte("y"),
		"user.big":         big,
		"security.selinux": []byte("system_u:object_r:bin_t:s0\x00"),
	}})
	file("xattrs/bigagain", []byte("y"))
	set("xattrs/bigagain", tree.Override{Xattrs: map[string][]byte{"user.other": big, "user.comment": []byte("a comment")}})
	mkdir("xattrs/dir")
	set("xattrs/dir", tree.Override{Xattrs: map[string][]byte{"user.dir": []byte("on a directory")}})

	mkdir("tmp")
	set("tmp", tree.Override{Mode: tree.Ptr(uint32(01777))})
	mkdir("home/user")
	set("home/user", tree.Override{UID: tree.Ptr(uint32(4000000000)), GID: tree.Ptr(uint32(3999999999)), Mode: tree.Ptr(uint32(0700))})
	file("home/user/secret", []byte("s"))
	set("home/user/secret", tree.Override{UID: tree.Ptr(uint32(4000000000)), GID: tree.Ptr(uint32(3999999999)), Mode: tree.Ptr(uint32(0600)), Mtime: tree.Ptr(int64(86400))})
	mkdir("a/b/c/d/e/f/g")
	file("a/b/c/d/e/f/g/deep", []byte("deep\n"))
	mkdir("emptydir")

	must(os.Symlink("/nonexistent/target", filepath.Join(dir, "dangling")))
	must(os.Symlink("small.txt", filepath.Join(dir, "rel")))
	must(os.Symlink(strings.Repeat("t/", 1000), filepath.Join(dir, "longlink")))
	must(os.Symlink("bin/su", filepath.Join(dir, "linkx")))
	set("linkx", tree.Override{Xattrs: map[string][]byte{"trusted.onlink": []byte("v")}})

	file("hl/a", []byte("hard linked\n"))
	must(os.Link(filepath.Join(dir, "hl/a"), filepath.Join(dir, "hl/b")))
	must(os.Link(filepath.Join(dir, "hl/a"), filepath.Join(dir, "hl/c")))
	file("hl/big", compressible(12, 2*testBlock+17))
	must(os.Link(filepath.Join(dir, "hl/big"), filepath.Join(dir, "hl/zbig")))
	set("hl/big", tree.Override{Xattrs: map[string][]byte{"user.hl": []byte("shared")}})

	placeholder("dev/null", tree.CharDev, 0666, tree.Mkdev(1, 3))
	placeholder("dev/sda", tree.BlockDev, 0660, tree.Mkdev(8, 0))
	set("dev/sda", tree.Override{GID: tree.Ptr(uint32(6))})
	placeholder("dev/huge", tree.CharDev, 0600, tree.Mkdev(4095, 524287))
	placeholder("dev/fifo", tree.FIFO, 0644, 0)
	placeholder("dev/sock", tree.Socket, 0755, 0)
	placeholder("dev/xdev", tree.CharDev, 0600, tree.Mkdev(10, 200))
	set("dev/xdev", tree.Override{Xattrs: map[string][]byte{"security.selinux": []byte("dev_t")}})

	for i := 0; i < 3000; i++ {
		file(fmt.Sprintf("big/entry-%05d-%s", i, strings.Repeat("n", 40)), []byte(strconv.Itoa(i)))
	}

	// Fixed times so listings are reproducible.
	epoch := time.Unix(1700000000, 0)
	must(filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		tv := unix.NsecToTimeval(epoch.UnixNano())
		return unix.Lutimes(p, []unix.Timeval{tv, tv})
	}))
	root, err := tree.Load(dir, tree.Options{Meta: meta, Epoch: -1})
	must(err)
	return root
}

// writeImage writes root to a file and returns its path.
func writeImage(t *testing.T, root *tree.Node, opts Options) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "img.squashfs")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size, err := Write(f, root, opts)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != size || size%4096 != 0 {
		t.Fatalf("image is %d bytes, Write returned %d (must be equal and 4 KiB aligned)", fi.Size(), size)
	}
	return p
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s\n%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// lsMode renders a kind and permission bits as ls -l does.
func lsMode(k tree.Kind, perm uint32) string {
	c := map[tree.Kind]byte{tree.Regular: '-', tree.Dir: 'd', tree.Symlink: 'l', tree.CharDev: 'c',
		tree.BlockDev: 'b', tree.FIFO: 'p', tree.Socket: 's'}[k]
	b := []byte{c}
	rwx := "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		if perm&(1<<(8-i)) != 0 {
			b = append(b, rwx[i])
		} else {
			b = append(b, '-')
		}
	}
	special := func(bit uint32, pos int, set, unset byte) {
		if perm&bit != 0 {
			if b[pos] == '-' {
				b[pos] = unset
			} else {
				b[pos] = set
			}
		}
	}
	special(04000, 3, 's', 'S')
	special(02000, 6, 's', 'S')
	special(01000, 9, 't', 'T')
	return string(b)
}

func effectiveMode(n *tree.Node) uint32 { return n.Mode }

// expectedListing renders the tree as unsquashfs -lln -UTC prints it, except
// that directory sizes are left out ("-").
func expectedListing(root *tree.Node) []string {
	var out []string
	root.Walk(func(n *tree.Node) error {
		t := n
		if n.Link != nil {
			t = n.Link
		}
		size := "-"
		switch t.Kind {
		case tree.Regular, tree.Symlink:
			size = strconv.FormatInt(t.Size, 10)
		case tree.CharDev, tree.BlockDev:
			// unsquashfs 4.5 lists the on-disk word as (word>>8, word&0xff);
			// -pf and the kernel decode it fully.
			maj, min := tree.Major(t.Rdev), tree.Minor(t.Rdev)
			word := min&0xff | maj<<8 | (min&^0xff)<<12
			size = fmt.Sprintf("%d,%d", word>>8, word&0xff)
		case tree.FIFO, tree.Socket:
			size = "0"
		}
		line := fmt.Sprintf("%s %d/%d %s %s %s", lsMode(t.Kind, effectiveMode(t)), t.UID, t.GID, size,
			time.Unix(max(t.Mtime, 0), 0).UTC().Format("2006-01-02 15:04"), path.Join("squashfs-root", n.Path))
		if t.Kind == tree.Symlink {
			line += " -> " + t.Target
		}
		out = append(out, line)
		return nil
	})
	return out
}

var llnLine = regexp.MustCompile(`^(\S{10}) (\d+)/(\d+) +(\d+|\d+, *\d+) (\d{4}-\d\d-\d\d \d\d:\d\d) (.*)$`)

// actualListing runs unsquashfs -lln -UTC and normalises it like
// expectedListing.
func actualListing(t *testing.T, img string) []string {
	t.Helper()
	out := run(t, "unsquashfs", "-lln", "-UTC", "-n", img)
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" {
			continue
		}
		m := llnLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("unparsable unsquashfs line %q", l)
		}
		size := strings.ReplaceAll(m[4], " ", "")
		if m[1][0] == 'd' {
			size = "-"
		}
		lines = append(lines, fmt.Sprintf("%s %s/%s %s %s %s", m[1], m[2], m[3], size, m[5], m[6]))
	}
	return lines
}

// expectedPseudo renders the tree as unsquashfs -pf describes it (without
// the data section): exact mtimes, octal modes, owners, sizes, device
// numbers, symlink targets and hard links.
func expectedPseudo(root *tree.Node) []string {
	var out []string
	root.Walk(func(n *tree.Node) error {
		name := pfEscape(n.Path)
		if n.Path == "" {
			name = "/"
		}
		if n.Link != nil {
			out = append(out, fmt.Sprintf("%s L %s", name, pfEscape(n.Link.Path)))
			return nil
		}
		// unsquashfs 4.5 prints ids as signed ints and device words as
		// (word>>8, word&0xff); the kernel-mount test checks real values.
		head := fmt.Sprintf("%s %%c %d %o %d %d", name, max(n.Mtime, 0), effectiveMode(n), int32(n.UID), int32(n.GID))
		switch n.Kind {
		case tree.Dir:
			out = append(out, fmt.Sprintf(head, 'D'))
		case tree.Regular:
			out = append(out, fmt.Sprintf(head+" %d", 'R', n.Size))
		case tree.Symlink:
			out = append(out, fmt.Sprintf(head+" %s", 'S', n.Target))
		case tree.CharDev, tree.BlockDev:
			c := 'C'
			if n.Kind == tree.BlockDev {
				c = 'B'
			}
			maj, min := tree.Major(n.Rdev), tree.Minor(n.Rdev)
			word := min&0xff | maj<<8 | (min&^0xff)<<12
			out = append(out, fmt.Sprintf(head+" %d %d", c, word>>8, word&0xff))
		case tree.FIFO:
			out = append(out, fmt.Sprintf(head+" f", 'I'))
		case tree.Socket:
			out = append(out, fmt.Sprintf(head+" s", 'I'))
		}
		return nil
	})
	return out
}

func pfEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == ' ' || r == '"' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// actualPseudo runs unsquashfs -pf and returns its lines without the data
// offsets of regular files.
func actualPseudo(t *testing.T, img string) []string {
	t.Helper()
	pf := filepath.Join(t.TempDir(), "pf")
	run(t, "unsquashfs", "-n", "-pf", pf, img)
	data, err := os.ReadFile(pf)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "#") {
			break
		}
		if l == "" {
			continue
		}
		if f := strings.Fields(l); len(f) >= 8 && f[len(f)-7] == "R" {
			l = l[:strings.LastIndexByte(l, ' ')] // drop the data offset
		}
		lines = append(lines, l)
	}
	return lines
}

func diffLines(t *testing.T, what string, want, got []string) {
	t.Helper()
	if len(want) == len(got) {
		same := true
		for i := range want {
			if want[i] != got[i] {
				same = false
				break
			}
		}
		if same {
			return
		}
	}
	w := map[string]bool{}
	for _, l := range want {
		w[l] = true
	}
	g := map[string]bool{}
	for _, l := range got {
		g[l] = true
	}
	var missing, extra []string
	for _, l := range want {
		if !g[l] {
			missing = append(missing, l)
		}
	}
	for _, l := range got {
		if !w[l] {
			extra = append(extra, l)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	trim := func(s []string) []string {
		if len(s) > 20 {
			return append(s[:20:20], "...")
		}
		return s
	}
	t.Fatalf("%s differs (want %d lines, got %d)\nmissing:\n  %s\nunexpected:\n  %s", what, len(want), len(got),
		strings.Join(trim(missing), "\n  "), strings.Join(trim(extra), "\n  "))
}

func fileSum(t *testing.T, p string) [sha256.Size]byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(data)
}
