package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/atomicfile"
	"github.com/sxb-build/sxb/rules"
	"golang.org/x/sys/unix"
)

// lockDir takes an exclusive lock on dir for the whole build, so that two
// builds of one workspace never write the same outputs at once. A second
// build waits, saying so on log, until the first is done or ctx ends.
func lockDir(ctx context.Context, dir string, log io.Writer) (func(), error) {
	// O_NOFOLLOW: a symlink planted as the lock file must not make a
	// build running as root create or open a file elsewhere.
	f, err := os.OpenFile(filepath.Join(dir, ".sxb.lock"), os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	said := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if err != syscall.EWOULDBLOCK {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", dir, err)
		}
		if !said {
			fmt.Fprintf(log, "sxb: waiting for another sxb build writing to %s\n", dir)
			said = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// placeFile makes dst a copy of src atomically: a hard link when both are
// on one file system (cache and outputs usually are), else a byte copy.
func placeFile(src, dst string) error {
	return atomicfile.LinkOrCopy(src, dst, 0o644)
}

// pkgOutputDir is where a target's outputs go: one directory per package,
// or the target's own Publish.Dir.
func (x *executor) pkgOutputDir(t *rules.Target) (string, error) {
	d := filepath.Join(x.opts.OutputDir, filepath.FromSlash(t.Label.Pkg))
	if p := t.Publish; p != nil {
		d = p.Dir
		// Published names are names in Dir, never paths out of it.
		names := []string{p.File, p.Symlink, p.Manifest, p.Roothash}
		if p.MkosiManifest != nil {
			names = append(names, p.MkosiManifest.File)
		}
		for _, n := range names {
			if n == "." || n == ".." || strings.ContainsAny(n, "/\x00") || n == "" && p.File == "" {
				return "", fmt.Errorf("publishing: %q is not a file name", n)
			}
		}
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", err
	}
	x.pubMu.Lock()
	x.pubDirs[d] = true
	x.pubMu.Unlock()
	return d, nil
}

func (x *executor) publishExtension(t *rules.Target, e *Entry) ([]string, error) {
	dir, err := x.pkgOutputDir(t)
	if err != nil {
		return nil, err
	}
	name := outputName(t.Ext)
	// Published names: the cache's, or those Publish asks for.
	rename := map[string]string{extDBFile: ""} // for extensions built on it, not published
	image := compressedName(t.Ext)
	if image != name+".raw" {
		rename[name+".raw"] = "" // only the compressed image is published
	}
	if p := t.Publish; p != nil {
		rename[image] = p.File
		rename[name+".manifest.json"] = p.Manifest
		rename[name+".roothash"] = p.Roothash
		if stem, ok := strings.CutSuffix(p.Manifest, ".manifest.json"); ok {
			rename[name+".spdx.json"] = stem + ".spdx.json"
		}
	}
	var outs, placed []string
	for _, o := range e.Outputs {
		pub, ok := rename[o.Name]
		if !ok {
			pub = o.Name
		}
		if pub == "" {
			continue // not wanted at this location
		}
		dst := filepath.Join(dir, pub)
		placed = append(placed, pub)
		x.notePublished(dst, o.Digest)
		if t.Publish != nil && o.Name == name+".roothash" {
			x.notePublished(dst, "")
			// mkosi's <output>.roothash holds the bare hex digest.
			b, err := os.ReadFile(e.Path(o.Name))
			if err != nil {
				return nil, err
			}
			if err := atomicfile.Write(dst, []byte(strings.TrimSpace(string(b))), 0o644); err != nil {
				return nil, err
			}
			continue
		}
		if err := placeFile(e.Path(o.Name), dst); err != nil {
			return nil, err
		}
		if o.Name == image {
			outs = append([]string{dst}, outs...)
		}
	}
	if t.Publish != nil && t.Publish.SplitPartitions && len(outs) > 0 {
		split, err := splitPartitions(outs[0], e.Info)
		if err != nil {
			return nil, fmt.Errorf("splitting partitions: %w", err)
		}
		outs = append(outs, split...)
		for _, f := range split {
			placed = append(placed, filepath.Base(f))
			x.notePublished(f, "")
		}
	}
	if p := t.Publish; p != nil && p.Checksum != "" {
		arts := []string{p.File}
		if p.Roothash != "" {
			arts = append(arts, p.Roothash)
		}
		for _, f := range outs[min(1, len(outs)):] {
			arts = append(arts, filepath.Base(f))
		}
		if err := x.writeArtifactSums(filepath.Join(dir, p.Checksum), dir, arts); err != nil {
			return nil, err
		}
		placed = append(placed, p.Checksum)
	}
	defs, err := x.publishUpdate(t, dir)
	if err != nil {
		return nil, err
	}
	placed = append(placed, defs...)
	if mf, err := x.publishMkosiManifest(t, dir, e); err != nil {
		return nil, err
	} else if mf != "" {
		placed = append(placed, mf)
	}
	if err := applyMode(dir, placed, t.Publish); err != nil {
		return nil, err
	}
	switch {
	case t.Publish != nil:
		if l := t.Publish.Symlink; l != "" {
			if err := atomicfile.Symlink(t.Publish.File, filepath.Join(dir, l)); err != nil {
				return nil, err
			}
		}
		if err := removeStale(dir, t.Publish, placed); err != nil {
			return nil, err
		}
	case t.Ext.Version != "":
		link := t.Ext.Output + strings.TrimPrefix(image, name)
		if err := atomicfile.Symlink(image, filepath.Join(dir, link)); err != nil {
			return nil, err
		}
	}
	return outs, nil
}

func (x *executor) publishBase(t *rules.Target, e *Entry) ([]string, error) {
	dir, err := x.pkgOutputDir(t)
	if err != nil {
		return nil, err
	}
	name, tarName := t.Base.Name, t.Base.Name+".tar"
	if t.Publish != nil {
		name, tarName = t.Publish.File, t.Publish.File
	}
	mf, err := x.publishMkosiManifest(t, dir, e)
	if err != nil {
		return nil, err
	}
	if err := applyMode(dir, []string{mf}, t.Publish); err != nil {
		return nil, err
	}
	if t.Base.Output == "tar" {
		dst := filepath.Join(dir, tarName)
		place := placeFile
		if strings.HasSuffix(tarName, ".zst") {
			place = placeZstd
		}
		if err := place(e.Path("tree.tar"), dst); err != nil {
			return nil, err
		}
		sum := ""
		for _, o := range e.Outputs {
			if o.Name == "tree.tar" && !strings.HasSuffix(tarName, ".zst") {
				sum = o.Digest
			}
		}
		x.notePublished(dst, sum)
		if err := applyMode(dir, []string{tarName}, t.Publish); err != nil {
			return nil, err
		}
		if err := x.publishBaseSums(t, dir, []string{tarName}); err != nil {
			return nil, err
		}
		return []string{dst}, x.publishSymlink(t, dir)
	}
	dst, err := publishDir(dir, name, e)
	if err != nil {
		return nil, err
	}
	// mkosi sums no directory (it warns and skips it): the file is empty.
	return []string{dst}, x.publishBaseSums(t, dir, nil)
}

// publishBaseSums writes a base tree's <Output>.SHA256SUMS when its mkosi
// image asks for one (Checksum=yes), listing arts.
func (x *executor) publishBaseSums(t *rules.Target, dir string, arts []string) error {
	p := t.Publish
	if p == nil || p.Checksum == "" {
		return nil
	}
	if err := x.writeArtifactSums(filepath.Join(dir, p.Checksum), dir, arts); err != nil {
		return err
	}
	return applyMode(dir, []string{p.Checksum}, p)
}

// publishTree publishes a tree target's directory as <package>/<name>.
func (x *executor) publishTree(t *rules.Target, e *Entry) ([]string, error) {
	dir, err := x.pkgOutputDir(t)
	if err != nil {
		return nil, err
	}
	dst, err := publishDir(dir, t.Tree.Name, e)
	if err != nil {
		return nil, err
	}
	return []string{dst}, nil
}

// publishDir publishes the entry's "tree" directory (and its metadata) as
// dir/name, unless the entry published there last is e.
func publishDir(dir, name string, e *Entry) (string, error) {
	dst := filepath.Join(dir, name)
	stamp := filepath.Join(dir, "."+name+".sxb-key")
	// The stamp says which entry the tree is and whether its metadata
	// is on disk (published by root).
	stampVal := e.Key
	if os.Geteuid() == 0 {
		stampVal += " materialized"
	}
	if b, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(b)) == stampVal {
		if _, err := os.Stat(dst); err == nil {
			return dst, nil
		}
	}
	// Build the new tree beside the old one, then swap: a reader sees
	// the old tree or the new one, never a half-copied one.
	tmp, err := atomicfile.CreateDir(dst, 0o755)
	if err != nil {
		return "", err
	}
	defer tmp.Abort()
	if err := linkTree(e.Path("tree"), tmp.Path()); err != nil {
		return "", err
	}
	if err := placeFile(e.Path("tree.meta.json"), tree.MetaPath(dst)); err != nil {
		return "", err
	}
	// As root, the published tree carries on disk what the sidecar
	// records (owners, setuid bits, device nodes, capabilities), as
	// mkosi's trees do; rootless builds leave it to the sidecar.
	if os.Geteuid() == 0 {
		meta, err := tree.LoadMeta(e.Path("tree.meta.json"))
		if err == nil {
			err = tree.Materialize(tmp.Path(), meta)
		}
		if err != nil {
			return "", fmt.Errorf("applying the tree's metadata: %w", err)
		}
	}
	if err := tmp.Commit(); err != nil {
		return "", err
	}
	if err := atomicfile.Write(stamp, []byte(stampVal+"\n"), 0o644); err != nil {
		return "", err
	}
	return dst, nil
}

// splitPartitions writes each partition of the published image img to
// "<img without .raw>.<type>.raw" (systemd-repart --split=yes names), from
// the partition table recorded in the manifest info.
func splitPartitions(img string, info json.RawMessage) ([]string, error) {
	var m struct {
		Image struct {
			Partitions []struct {
				Type   string `json:"type"`
				Offset int64  `json:"offset"`
				Size   int64  `json:"size"`
			} `json:"partitions"`
		} `json:"image"`
	}
	if err := json.Unmarshal(info, &m); err != nil {
		return nil, err
	}
	if len(m.Image.Partitions) == 0 {
		return nil, fmt.Errorf("the image record lists no partitions")
	}
	in, err := os.Open(img)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	stem := strings.TrimSuffix(img, ".raw")
	var outs []string
	for _, p := range m.Image.Partitions {
		if p.Type == "" || strings.ContainsAny(p.Type, "/\x00") || p.Offset < 0 || p.Size < 0 {
			return nil, fmt.Errorf("bad partition record %+v", p)
		}
		dst := stem + "." + p.Type + ".raw"
		out, err := atomicfile.Create(dst, 0o644)
		if err != nil {
			return nil, err
		}
		n, err := io.Copy(out, io.NewSectionReader(in, p.Offset, p.Size))
		if err == nil && n != p.Size {
			err = fmt.Errorf("%s: image ends inside the partition", filepath.Base(dst))
		}
		if err != nil {
			out.Abort()
			return nil, err
		}
		if err := out.Commit(); err != nil {
			return nil, err
		}
		outs = append(outs, dst)
	}
	return outs, nil
}

// splitType matches the partition type part of a split partition file name.
var splitType = regexp.MustCompile(`^(root|usr|esp|xbootldr|swap|home|srv|var|tmp|linux-generic)(-[a-z0-9-]+)?$`)

// removeStale removes what an earlier build published next to p.File and
// this one did not (placed are the names it did): a <stem>.roothash (verity turned off) or split
// partition files (<stem>.<type>.raw), which systemd-dissect and
// systemd-sysext would otherwise pick up with the new image.
func removeStale(dir string, p *rules.Publish, placed []string) error {
	stem := strings.TrimSuffix(p.File, ".raw")
	keep := map[string]bool{}
	for _, n := range placed {
		keep[n] = true
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, d := range ents {
		n := d.Name()
		rest, ok := strings.CutPrefix(n, stem+".")
		if !ok || keep[n] || !d.Type().IsRegular() {
			continue
		}
		if typ, isRaw := strings.CutSuffix(rest, ".raw"); rest == "roothash" || isRaw && splitType.MatchString(typ) {
			if err := os.Remove(filepath.Join(dir, n)); err != nil {
				return err
			}
		}
	}
	return nil
}

// publishSymlink places the symbolic link Publish asks for, if any.
func (x *executor) publishSymlink(t *rules.Target, dir string) error {
	if t.Publish == nil || t.Publish.Symlink == "" {
		return nil
	}
	return atomicfile.Symlink(t.Publish.File, filepath.Join(dir, t.Publish.Symlink))
}

// placeZstd writes src compressed with zstd to dst, atomically. The
// encoder runs single-threaded at its default level so that the same input
// always gives the same bytes.
func placeZstd(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := atomicfile.Create(dst, 0o644)
	if err != nil {
		return err
	}
	defer out.Abort()
	bw := bufio.NewWriterSize(out, 1<<20)
	zw, err := zstd.NewWriter(bw, zstd.WithEncoderConcurrency(1))
	if err == nil {
		_, err = io.Copy(zw, in)
		if cerr := zw.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return fmt.Errorf("compressing %s: %w", filepath.Base(dst), err)
	}
	return out.Commit()
}

// linkTree recreates the directory src at dst (which may exist, empty)
// with hard links for files.
// Directories and symlinks, which are made anew, get the modification
// times they have in src (they had the time of publishing, so a published
// tree loaded without SOURCE_DATE_EPOCH differed from build to build).
func linkTree(src, dst string) error {
	type dirTime struct {
		path string
		t    time.Time
	}
	var dirs []dirTime
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			// dst itself may exist already.
			if err := os.Mkdir(target, 0o755); err != nil && (p != src || !os.IsExist(err)) {
				return err
			}
			dirs = append(dirs, dirTime{target, fi.ModTime()})
			return os.Chmod(target, fi.Mode().Perm()|fi.Mode()&(fs.ModeSetgid|fs.ModeSticky))
		case fi.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(l, target); err != nil {
				return err
			}
			ts := unix.NsecToTimespec(fi.ModTime().UnixNano())
			return unix.UtimesNanoAt(unix.AT_FDCWD, target, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
		default:
			return os.Link(p, target)
		}
	})
	if err != nil {
		return err
	}
	// Children first: creating an entry changes its directory's time.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Chtimes(dirs[i].path, dirs[i].t, dirs[i].t); err != nil {
			return err
		}
	}
	return nil
}

// notePublished records that this build wrote the file dst, with its
// digest when known ("": to be computed).
func (x *executor) notePublished(dst, digest string) {
	x.pubMu.Lock()
	x.pubSums[dst] = digest
	x.pubMu.Unlock()
}

// applyMode gives the regular files names (in dir) the mode p asks for
// (mkosi's OutputMode=). A file with another mode is replaced by a copy:
// published files share their inode with the cache, whose mode stays.
func applyMode(dir string, names []string, p *rules.Publish) error {
	if p == nil || p.Mode == nil {
		return nil
	}
	mode := os.FileMode(*p.Mode & 0o777)
	if *p.Mode&0o1000 != 0 {
		mode |= os.ModeSticky
	}
	for _, n := range names {
		if n == "" {
			continue
		}
		f := filepath.Join(dir, n)
		fi, err := os.Lstat(f)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode()&(os.ModePerm|os.ModeSticky) == mode {
			continue
		}
		if err := copyWithMode(f, mode); err != nil {
			return fmt.Errorf("OutputMode: %w", err)
		}
	}
	return nil
}

// copyWithMode replaces file by a copy of itself with mode, atomically.
func copyWithMode(file string, mode os.FileMode) error {
	in, err := os.Open(file)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := atomicfile.Create(file, 0o600)
	if err != nil {
		return err
	}
	defer out.Abort()
	if _, err := io.Copy(out, in); err != nil {
		return err
	}
	if err := out.Chmod(mode); err != nil {
		return err
	}
	return out.Commit()
}

// writeArtifactSums writes file listing the SHA-256 of the artifacts
// (names in dir, sorted) as mkosi's <Output>.SHA256SUMS does: "<hex>
// *<name>". Digests this build already knows are reused.
func (x *executor) writeArtifactSums(file, dir string, arts []string) error {
	slices.Sort(arts)
	var b strings.Builder
	for _, a := range arts {
		x.pubMu.Lock()
		sum := x.pubSums[filepath.Join(dir, a)]
		x.pubMu.Unlock()
		if sum == "" {
			o, err := digestOutput(filepath.Join(dir, a), false)
			if err != nil {
				return err
			}
			sum = o.Digest
		}
		fmt.Fprintf(&b, "%s *%s\n", sum, a)
	}
	x.notePublished(file, "")
	return atomicfile.Write(file, []byte(b.String()), 0o644)
}

// writeChecksums refreshes SHA256SUMS in every output directory this build
// published to. Digests the cache recorded for files this build placed are
// reused, as are the old file's lines for files it did not touch; files it
// wrote otherwise are hashed. (Digests used to be looked up by cache output
// name: a base published as <name>.tar kept the line of the previous
// build's tar.)
func (x *executor) writeChecksums() error {
	x.pubMu.Lock()
	defer x.pubMu.Unlock()
	for dir := range x.pubDirs {
		old := map[string]string{}
		if f, err := os.Open(filepath.Join(dir, "SHA256SUMS")); err == nil {
			s := bufio.NewScanner(f)
			for s.Scan() {
				// Only well-formed digests are reused; anything else in a
				// (possibly edited) file is recomputed.
				if sum, name, ok := strings.Cut(s.Text(), "  "); ok && isHexDigest(sum) {
					old[name] = sum
				}
			}
			f.Close()
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		var lines []string
		for _, d := range ents {
			n := d.Name()
			if !d.Type().IsRegular() || strings.HasPrefix(n, ".") || n == "SHA256SUMS" || n == "SHA256SUMS.gpg" || strings.HasSuffix(n, ".meta.json") {
				continue
			}
			sum, ours := x.pubSums[filepath.Join(dir, n)]
			if !ours {
				sum = old[n]
			}
			if sum == "" {
				o, err := digestOutput(filepath.Join(dir, n), false)
				if err != nil {
					return err
				}
				sum = o.Digest
			}
			lines = append(lines, sum+"  "+n)
		}
		sort.Slice(lines, func(i, j int) bool { return lines[i][66:] < lines[j][66:] })
		sums := []byte(strings.Join(lines, "\n") + "\n")
		prev, _ := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
		if err := atomicfile.Write(filepath.Join(dir, "SHA256SUMS"), sums, 0o644); err != nil {
			return err
		}
		if err := x.signChecksums(dir, !bytes.Equal(prev, sums)); err != nil {
			return err
		}
	}
	return nil
}

// isHexDigest reports whether s is a lower-case hex sha256 digest.
func isHexDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// writeTar writes the tree n as a tar archive with its recorded owners,
// modes, devices and xattrs (PAX records), in walk order.
func writeTar(file string, n *tree.Node) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	tw := tar.NewWriter(bw)
	err = n.Walk(func(c *tree.Node) error {
		if c.Path == "" {
			return nil
		}
		h := &tar.Header{
			Name: c.Path, Mode: int64(c.Mode), Uid: int(c.UID), Gid: int(c.GID),
			ModTime: time.Unix(c.Mtime, 0), Format: tar.FormatPAX,
		}
		if len(c.Xattrs) > 0 {
			h.PAXRecords = map[string]string{}
			for k, v := range c.Xattrs {
				h.PAXRecords["SCHILY.xattr."+k] = string(v)
			}
		}
		switch {
		case c.Link != nil:
			h.Typeflag, h.Linkname = tar.TypeLink, c.Link.Path
		case c.Kind == tree.Dir:
			h.Typeflag, h.Name = tar.TypeDir, c.Path+"/"
		case c.Kind == tree.Regular:
			h.Typeflag, h.Size = tar.TypeReg, c.Size
		case c.Kind == tree.Symlink:
			h.Typeflag, h.Linkname = tar.TypeSymlink, c.Target
		case c.Kind == tree.CharDev || c.Kind == tree.BlockDev:
			h.Typeflag = tar.TypeChar
			if c.Kind == tree.BlockDev {
				h.Typeflag = tar.TypeBlock
			}
			h.Devmajor, h.Devminor = int64(tree.Major(c.Rdev)), int64(tree.Minor(c.Rdev))
		case c.Kind == tree.FIFO:
			h.Typeflag = tar.TypeFifo
		default:
			return nil // sockets have no tar form
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg && c.Size > 0 {
			r, err := c.Open()
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, r)
			r.Close()
			return err
		}
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
