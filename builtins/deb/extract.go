package deb

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
	"golang.org/x/sys/unix"

	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/atomicfile"
)

// root is a directory being filled. Every write goes through tree.Root,
// so no symlink, whoever made it, can send a write outside the tree.
type root struct {
	t    *tree.Root
	meta *tree.Meta

	mu     sync.Mutex
	claims map[string]int // non-directory path -> plan index of its owner
	// resolved caches resolveDir.
	resolved map[string]string
	dirs     map[string]dirMd // directory path -> metadata from the first owner
	mkdirs   sync.Mutex
	arch     string
	// names and replaces describe the packages by plan index, for
	// deciding who owns a path several packages ship.
	names    []string
	replaces []map[string]bool
	// results of unpacking, by plan index.
	results []*unpacked
	// made lists files and symlinks Install itself creates (merged-/usr
	// links, dpkg database, /etc/passwd); they get the newest payload
	// mtime so the tree is reproducible.
	made []string
	// links are the hard links of all packages, made once every package
	// is unpacked (see finishLinks).
	links []hardLink
}

// hardLink is a hard link entry of a package: res (owned by package idx)
// becomes a link to whatever the tree finally has at src.
type hardLink struct {
	idx      int
	res, src string
}

type dirMd struct {
	owner int
	mode  int64
	uid   int
	gid   int
	mtime int64
}

func openRoot(dir string, meta *tree.Meta, arch string) (*root, error) {
	if err := tree.MkdirAll(dir); err != nil {
		return nil, err
	}
	t, err := tree.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &root{t: t, meta: meta, claims: map[string]int{}, resolved: map[string]string{}, dirs: map[string]dirMd{}, arch: arch}, nil
}

func (r *root) close() { r.t.Close() }

// mergedUsr creates the merged-/usr symlinks (bin -> usr/bin, ...).
func (r *root) mergedUsr() error {
	for _, l := range mergedUsrLinks(r.arch) {
		if err := r.mergedLink(l[0]); err != nil {
			return err
		}
	}
	return nil
}

var mergedName = regexp.MustCompile(`^(bin|sbin|lib|lib32|lib64|libx32|libo32)$`)

// mergedLink makes the top-level name a symlink to usr/name unless it
// exists already.
func (r *root) mergedLink(name string) error {
	r.mkdirs.Lock()
	defer r.mkdirs.Unlock()
	if _, err := r.t.Lstat(name); err == nil {
		return nil
	}
	d, err := r.t.MkdirAll("usr/" + name)
	if err != nil {
		return fmt.Errorf("creating merged /usr: %w", err)
	}
	d.Close()
	top, err := r.t.OpenDir(".")
	if err != nil {
		return fmt.Errorf("creating merged /usr: %w", err)
	}
	defer top.Close()
	if err := top.Symlink("usr/"+name, name); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("creating merged /usr: %w", err)
	}
	r.mu.Lock()
	r.made = append(r.made, name)
	r.mu.Unlock()
	return nil
}

// docFilter reports whether a payload path is documentation that
// with_docs = False drops, as mkosi's WithDocs=no does for Debian
// (dpkg path-exclude of /usr/share/{doc,man,info,groff,gtk-doc}, keeping
// copyright files).
func docFilter(rel string) bool {
	for _, d := range []string{"usr/share/doc/", "usr/share/man/", "usr/share/info/", "usr/share/groff/", "usr/share/gtk-doc/"} {
		if strings.HasPrefix(rel, d) {
			if d == "usr/share/doc/" && strings.HasSuffix(rel, "/copyright") && strings.Count(rel, "/") == 4 {
				return false
			}
			return true
		}
	}
	return false
}

// unpacked is what extracting one .deb yields for the dpkg database.
type unpacked struct {
	control []byte            // the control file
	info    map[string][]byte // other control members (md5sums, conffiles, scripts)
	list    []string          // payload paths as dpkg lists them ("/usr/bin/jq")
	maxTime int64
}

// hasXZ caches whether the host has xz, which decompresses several times
// faster than the pure Go decoder.
var hasXZ = sync.OnceValue(func() string {
	p, err := exec.LookPath("xz")
	if err != nil {
		return ""
	}
	return p
})

// decompressor wraps r according to the member name's extension (xz
// through the host's xz when there is one). The returned close function
// reports decompression errors; it must be called once the stream was
// used, whatever happened, to reap the external decompressor.
func decompressor(r io.Reader, name string) (io.Reader, func() error, error) {
	switch {
	case strings.HasSuffix(name, ".xz"):
		if x := hasXZ(); x != "" && os.Getenv("SXB_DEB_PURE_GO") == "" {
			cmd := exec.Command(x, "-dc", "-T1")
			// The C locale spares each of the two xz runs per package
			// loading the host's locale (a tenth of its CPU time on
			// control members).
			cmd.Env = []string{"LC_ALL=C"}
			cmd.Stdin = r
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				return nil, nil, err
			}
			if err := cmd.Start(); err != nil {
				return nil, nil, err
			}
			return out, func() error {
				io.Copy(io.Discard, out)
				if err := cmd.Wait(); err != nil {
					return fmt.Errorf("xz: %v: %s", err, strings.TrimSpace(stderr.String()))
				}
				return nil
			}, nil
		}
		xr, err := xz.NewReader(r)
		return xr, func() error { return nil }, err
	case strings.HasSuffix(name, ".zst"):
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nil, err
		}
		return zr, func() error { zr.Close(); return nil }, nil
	case strings.HasSuffix(name, ".gz"):
		gr, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, err
		}
		return gr, gr.Close, nil
	case strings.HasSuffix(name, ".bz2"):
		return bzip2.NewReader(r), func() error { return nil }, nil
	case strings.HasSuffix(name, ".lzma"):
		lr, err := lzma.NewReader(r)
		return lr, func() error { return nil }, err
	case strings.HasSuffix(name, ".tar"):
		return r, func() error { return nil }, nil
	}
	return nil, nil, fmt.Errorf("unsupported compression of %s", name)
}

// unpack extracts the .deb at file (plan index idx) into the root.
//
// tarCache, when not "", is where the uncompressed data.tar of this .deb
// is kept: read from there when present (no decompression), written there
// after a successful extraction otherwise.
func (r *root) unpack(file string, idx int, withDocs bool, tarCache string) (*unpacked, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ar, err := newArReader(f)
	if err != nil {
		return nil, err
	}
	u := &unpacked{info: map[string][]byte{}}
	sawData := false
	for {
		name, _, err := ar.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch {
		case name == "debian-binary":
		case strings.HasPrefix(name, "control.tar"):
			if err := r.readControl(ar, name, idx, u); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
		case strings.HasPrefix(name, "data.tar"):
			if err := r.extractData(ar, name, idx, withDocs, u, tarCache); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			sawData = true
		}
	}
	if u.control == nil || !sawData {
		return nil, fmt.Errorf("not a binary package: control.tar or data.tar missing")
	}
	return u, nil
}

// readControl reads the control member. An xz one goes through the host's
// xz too: Go's decoder allocates and clears the whole dictionary the header
// names (8 MiB from dpkg-deb) for a few kilobytes, which made control
// members cost as much CPU as half the payloads of a base system.
func (r *root) readControl(rd io.Reader, name string, idx int, u *unpacked) error {
	dr, done, err := decompressor(rd, name)
	if err != nil {
		return err
	}
	err = r.readControlTar(dr, idx, u)
	// done reaps the decompressor whatever happened (it drains its
	// output first).
	if derr := done(); err == nil {
		err = derr
	}
	return err
}

func (r *root) readControlTar(dr io.Reader, idx int, u *unpacked) error {
	tr := tar.NewReader(dr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		n := strings.TrimPrefix(h.Name, "./")
		if strings.Contains(n, "/") || n == "" || h.Size > 64<<20 {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return err
		}
		if n == "control" {
			u.control = b
			if idx >= 0 && idx < len(r.replaces) {
				rep := map[string]bool{}
				if alts, err := parseDeps(parseOne(b).Get("Replaces"), r.arch); err == nil {
					for _, a := range alts {
						for _, d := range a {
							rep[d.Name] = true
						}
					}
				}
				r.mu.Lock()
				r.replaces[idx] = rep
				r.mu.Unlock()
			}
		} else {
			u.info[n] = b
		}
	}
	return nil
}

func (r *root) extractData(rd io.Reader, name string, idx int, withDocs bool, u *unpacked, tarCache string) error {
	if tarCache != "" {
		// The uncompressed payload is used only when it still has the
		// digest recorded when it was written; otherwise it is rebuilt
		// from the .deb (whose own digest the fetcher checked).
		if f, err := os.Open(tarCache); err == nil {
			defer f.Close()
			if tarCacheIntact(f, tarCache) {
				return r.extractTar(bufio.NewReaderSize(f, 256<<10), idx, withDocs, u)
			}
			f.Close()
			os.Remove(tarCache)
		}
	}
	dr, done, err := decompressor(rd, name)
	if err != nil {
		return err
	}
	var src io.Reader = bufio.NewReaderSize(dr, 256<<10)
	var tmp *atomicfile.File
	var tw *bufio.Writer
	tarHash := sha256.New()
	if tarCache != "" {
		if err := os.MkdirAll(filepath.Dir(tarCache), 0o755); err == nil {
			if tmp, err = atomicfile.Create(tarCache, 0o600); err == nil {
				defer tmp.Abort()
				tw = bufio.NewWriterSize(tmp, 256<<10)
				src = io.TeeReader(src, io.MultiWriter(tw, tarHash))
			}
		}
	}
	if err := r.extractTar(src, idx, withDocs, u); err != nil {
		done()
		return err
	}
	if tmp != nil {
		// The tar reader stops at the end-of-archive marker; keep the
		// padding after it so the cached file is the whole stream.
		_, err := io.Copy(io.Discard, src)
		if err == nil {
			err = tw.Flush()
		}
		if derr := done(); derr != nil {
			return derr
		}
		if err == nil {
			digest := []byte(hex.EncodeToString(tarHash.Sum(nil)) + "\n")
			if atomicfile.Write(tarCache+".sha256", digest, 0o644) == nil {
				tmp.Commit()
			}
		}
		return nil
	}
	return done()
}

// extractTar unpacks an uncompressed data.tar stream.
func (r *root) extractTar(src io.Reader, idx int, withDocs bool, u *unpacked) error {
	dc := tree.DirCache{Root: r.t}
	defer dc.Close()
	tr := tar.NewReader(src)
	written := map[string]string{} // payload path -> resolved path, for hard links
	buf := make([]byte, 256<<10)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		rel, err := tree.CleanRel(h.Name)
		if err != nil {
			return fmt.Errorf("refusing member %q: %w", h.Name, err)
		}
		if h.Typeflag == tar.TypeLink {
			if _, err := tree.CleanRel(h.Linkname); err != nil {
				return fmt.Errorf("refusing hard link %q -> %q: %w", h.Name, h.Linkname, err)
			}
		}
		if h.ModTime.Unix() > u.maxTime {
			u.maxTime = h.ModTime.Unix()
		}
		if rel == "" {
			u.list = append(u.list, "/.")
			continue
		}
		if !withDocs && docFilter(rel) {
			continue
		}
		u.list = append(u.list, "/"+rel)
		if err := r.entry(h, rel, idx, tr, buf, &dc, written); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
	}
	return nil
}

// resolveDir maps the payload directory rel to where it is in the tree,
// following symlinks (confined), with a cache: directories once resolved
// are created right after, and a directory cannot be replaced by a
// symlink later, so the answer does not change.
func (r *root) resolveDir(rel string) (string, error) {
	if rel == "" {
		return "", nil
	}
	r.mu.Lock()
	res, ok := r.resolved[rel]
	r.mu.Unlock()
	if ok {
		return res, nil
	}
	p, err := r.t.Resolve(rel + "/x")
	if err != nil {
		return "", err
	}
	res = path.Dir(p)
	if res == "." {
		res = ""
	}
	r.mu.Lock()
	r.resolved[rel] = res
	r.mu.Unlock()
	return res, nil
}

func (r *root) entry(h *tar.Header, rel string, idx int, tr io.Reader, buf []byte, dc *tree.DirCache, written map[string]string) error {
	mode := h.Mode & 07777
	if h.Typeflag == tar.TypeDir {
		if !strings.Contains(rel, "/") && mergedName.MatchString(rel) {
			if err := r.mergedLink(rel); err != nil {
				return err
			}
		}
		// Existing symlinks to directories are followed, as dpkg does
		// (bin/ lands in usr/bin/).
		res, err := r.resolveDir(rel)
		if err != nil {
			return err
		}
		r.mu.Lock()
		_, known := r.dirs[res]
		r.mu.Unlock()
		if !known {
			d, err := r.t.MkdirAll(res)
			if err != nil {
				return err
			}
			d.Close()
		}
		r.mu.Lock()
		// Packages unpack in parallel: when several ship a directory, the
		// first in plan order decides its mode, owner and time, whichever
		// finished first, so that the tree is the same every time.
		if d, ok := r.dirs[res]; !ok || idx < d.owner {
			r.dirs[res] = dirMd{owner: idx, mode: mode, uid: h.Uid, gid: h.Gid, mtime: h.ModTime.Unix()}
		}
		r.mu.Unlock()
		return nil
	}
	parentRel := path.Dir(rel)
	if parentRel == "." {
		parentRel = ""
	}
	resParent, err := r.resolveDir(parentRel)
	if err != nil {
		return err
	}
	base := path.Base(rel)
	res := base
	if resParent != "" {
		res = resParent + "/" + base
	}
	// A hard link may only name a path listed before it in the same
	// payload, whether or not this package got to own that path.
	var linkSrc string
	if h.Typeflag == tar.TypeLink {
		src, _ := tree.CleanRel(h.Linkname)
		var ok bool
		if linkSrc, ok = written[src]; !ok {
			return fmt.Errorf("refusing hard link to %q, which this package did not unpack before", h.Linkname)
		}
	}
	written[rel] = res
	// Of two packages shipping a path, the one that Replaces the other
	// owns it, else the later in plan order; the decision is taken under
	// the lock so parallel unpacking is deterministic.
	r.mu.Lock()
	if owner, ok := r.claims[res]; ok && owner != idx && !r.beats(idx, owner) {
		r.mu.Unlock()
		return nil
	}
	r.claims[res] = idx
	if h.Typeflag == tar.TypeLink {
		// Linking now would give the content of whichever package had
		// written the source so far (or fail when another package owns
		// it): links are made once all packages are unpacked.
		r.links = append(r.links, hardLink{idx: idx, res: res, src: linkSrc})
		r.mu.Unlock()
		return nil
	}
	r.mu.Unlock()
	pd, err := dc.Get(orDot(resParent))
	if err != nil {
		return err
	}
	// create makes the object under name (the final name when nothing is
	// there yet, else a temporary name renamed over it).
	var ov tree.Override
	create := func(name string) error {
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			// Devices and fifos are empty files; what they are goes to
			// meta.
			perm := uint32(mode&0o777) | 0o600
			out, err := pd.Create(name, fs.FileMode(perm))
			if err != nil {
				return err
			}
			if h.Typeflag == tar.TypeReg {
				if _, err := io.CopyBuffer(onlyWriter{out}, tr, buf); err != nil {
					out.Close()
					pd.Remove(name)
					return err
				}
			}
			err = pd.Chtimes(name, h.ModTime)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				pd.Remove(name)
				return err
			}
			if uint32(mode) != perm {
				ov.Mode = tree.Ptr(uint32(mode))
			}
			switch h.Typeflag {
			case tar.TypeChar:
				ov.Kind, ov.Rdev, ov.Mode = tree.Ptr(tree.CharDev), tree.Ptr(tree.Mkdev(uint32(h.Devmajor), uint32(h.Devminor))), tree.Ptr(uint32(mode))
			case tar.TypeBlock:
				ov.Kind, ov.Rdev, ov.Mode = tree.Ptr(tree.BlockDev), tree.Ptr(tree.Mkdev(uint32(h.Devmajor), uint32(h.Devminor))), tree.Ptr(uint32(mode))
			case tar.TypeFifo:
				ov.Kind, ov.Mode = tree.Ptr(tree.FIFO), tree.Ptr(uint32(mode))
			}
		case tar.TypeSymlink:
			if err := pd.Symlink(h.Linkname, name); err != nil {
				return err
			}
			pd.Chtimes(name, h.ModTime)
		default:
			return fmt.Errorf("unsupported tar entry type %q", h.Typeflag)
		}
		return nil
	}
	err = create(base)
	if errors.Is(err, fs.ErrExist) {
		// Something is there already (an earlier package's file): write
		// aside and rename over it, unless a later package claimed it.
		tmp := tree.TempName()
		if err := create(tmp); err != nil {
			return err
		}
		r.mu.Lock()
		if r.claims[res] != idx {
			r.mu.Unlock()
			pd.Remove(tmp)
			return nil
		}
		err = pd.Rename(tmp, base)
		r.mu.Unlock()
		if err != nil {
			pd.Remove(tmp)
			if isDirInTheWay(err) {
				return fmt.Errorf("cannot replace the directory %s", res)
			}
			return err
		}
	} else if err != nil {
		return err
	}
	if h.Typeflag != tar.TypeLink {
		if h.Uid != 0 {
			ov.UID = tree.Ptr(uint32(h.Uid))
		}
		if h.Gid != 0 {
			ov.GID = tree.Ptr(uint32(h.Gid))
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.claims[res] != idx {
		return nil
	}
	if !emptyOverride(ov) {
		r.meta.Set(res, ov)
	} else {
		r.meta.Delete(res)
	}
	return nil
}

// onlyWriter hides ReadFrom so CopyBuffer uses the given buffer.
type onlyWriter struct{ w io.Writer }

// Write writes to the wrapped writer.
func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }

func orDot(s string) string {
	if s == "" {
		return "."
	}
	return s
}

// finishLinks makes the hard links of all packages, in plan order, each
// to what the tree has at its source once every package is unpacked, with
// the source's metadata. Made as they were met, they linked to the file of
// whichever package had unpacked the source so far, or failed when another
// package owned it: the result depended on unpacking order.
func (r *root) finishLinks() error {
	links := r.links
	r.links = nil
	sort.SliceStable(links, func(a, b int) bool { return links[a].idx < links[b].idx })
	for _, l := range links {
		if r.claims[l.res] != l.idx {
			continue // a later hard link or file took the path
		}
		pd, err := r.t.OpenDir(path.Dir(l.res))
		if err != nil {
			return fmt.Errorf("%s: %w", l.res, err)
		}
		sd, err := r.t.OpenDir(path.Dir(l.src))
		if err != nil {
			pd.Close()
			return fmt.Errorf("%s: %w", l.res, err)
		}
		tmp := tree.TempName()
		err = pd.Link(sd, path.Base(l.src), tmp)
		if err == nil {
			err = pd.Rename(tmp, path.Base(l.res))
			// On success too: renaming onto another link of the same
			// inode does nothing.
			pd.Remove(tmp)
			if isDirInTheWay(err) {
				err = fmt.Errorf("cannot replace the directory %s", l.res)
			}
		}
		pd.Close()
		sd.Close()
		if err != nil {
			return fmt.Errorf("hard link %s to %s: %w", l.res, l.src, err)
		}
		if o, ok := r.meta.Get(l.src); ok {
			r.meta.Set(l.res, o)
		} else {
			r.meta.Delete(l.res)
		}
	}
	return nil
}

// finishDirs applies directory modes, owners and mtimes.
func (r *root) finishDirs(defaultTime int64) error {
	if err := r.finishLinks(); err != nil {
		return err
	}
	for res, d := range r.dirs {
		perm := uint32(d.mode&0o777) | 0o700
		if err := r.t.Chmod(res, fs.FileMode(perm)); err != nil {
			// res is resolved, so a failure here means the tree changed
			// under us.
			return fmt.Errorf("%s: %w", res, err)
		}
		var ov tree.Override
		if uint32(d.mode) != perm {
			ov.Mode = tree.Ptr(uint32(d.mode))
		}
		if d.uid != 0 {
			ov.UID = tree.Ptr(uint32(d.uid))
		}
		if d.gid != 0 {
			ov.GID = tree.Ptr(uint32(d.gid))
		}
		if !emptyOverride(ov) {
			r.meta.Set(res, ov)
		}
	}
	// Set mtimes deepest first, so setting a parent is not undone.
	var all []string
	err := filepath.Walk(r.t.Path(), func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if fi.IsDir() {
			rel, _ := filepath.Rel(r.t.Path(), p)
			all = append(all, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.mu.Lock()
	made := append([]string{}, r.made...)
	r.mu.Unlock()
	for _, rel := range made {
		if err := r.t.Chtimes(rel, time.Unix(defaultTime, 0)); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
	}
	for i := len(all) - 1; i >= 0; i-- {
		rel := all[i]
		t := defaultTime
		if d, ok := r.dirs[rel]; ok {
			t = d.mtime
		}
		if err := r.t.Chtimes(rel, time.Unix(t, 0)); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
	}
	return nil
}

// readFile reads a file of the tree, resolving every symlink inside the
// root, so a hostile symlink cannot make Install copy a host file into
// the tree.
func (r *root) readFile(rel string) ([]byte, error) { return r.t.ReadFile(rel) }

// isDirInTheWay reports whether renaming onto a name failed because a
// directory is there.
func isDirInTheWay(err error) bool {
	return errors.Is(err, unix.EISDIR) || errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTDIR)
}

// md5File returns the MD5 of a file in the tree (for Conffiles).
func (r *root) md5File(rel string) string {
	b, err := r.readFile(rel)
	if err != nil {
		return ""
	}
	h := md5.Sum(b)
	return hex.EncodeToString(h[:])
}

func emptyOverride(o tree.Override) bool {
	return o.Kind == nil && o.Mode == nil && o.UID == nil && o.GID == nil && o.Mtime == nil && o.Rdev == nil && len(o.Xattrs) == 0
}

// beats reports whether package a takes a path over package b: a
// Replaces b, or b does not replace a and a comes later in the plan.
// Called with r.mu held.
func (r *root) beats(a, b int) bool {
	if a < len(r.replaces) && b < len(r.replaces) {
		if r.replaces[a][r.names[b]] {
			return true
		}
		if r.replaces[b][r.names[a]] {
			return false
		}
	}
	return a > b
}

// tarCacheIntact reports whether the cached payload f (at path) has the
// digest recorded beside it, and rewinds f.
func tarCacheIntact(f *os.File, path string) bool {
	want, err := os.ReadFile(path + ".sha256")
	if err != nil {
		return false
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return false
	}
	return strings.TrimSpace(string(want)) == hex.EncodeToString(h.Sum(nil))
}
