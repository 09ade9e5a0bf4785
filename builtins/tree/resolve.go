package tree

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// maxSymlinks bounds symlink resolution, as the kernel's ELOOP does.
const maxSymlinks = 40

// Resolve maps the relative path rel to a host path under root, following
// symlinks in every component but the last as if root were "/": absolute
// targets start again at root and ".." never climbs above it. This is how
// package payloads are placed: "bin/sh" lands in "usr/bin/sh" when "bin" is
// the merged-/usr symlink, and no symlink in the tree can send a write
// outside of it.
func Resolve(root, rel string) (string, error) {
	parts, err := resolveParts(root, rel, 0)
	if err != nil {
		return "", err
	}
	return filepath.Join(append([]string{root}, parts...)...), nil
}

// ResolveRel is Resolve returning the path relative to root.
func ResolveRel(root, rel string) (string, error) {
	parts, err := resolveParts(root, rel, 0)
	if err != nil {
		return "", err
	}
	return strings.Join(parts, "/"), nil
}

func resolveParts(root, rel string, depth int) ([]string, error) {
	rel = strings.Trim(path.Clean("/"+rel), "/")
	if rel == "" {
		return nil, nil
	}
	in := strings.Split(rel, "/")
	var out []string
	for i, part := range in {
		if i == len(in)-1 {
			out = append(out, part)
			break
		}
		cand := filepath.Join(append(append([]string{root}, out...), part)...)
		fi, err := os.Lstat(cand)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			out = append(out, part)
			continue
		}
		if depth >= maxSymlinks {
			return nil, fmt.Errorf("%s: too many levels of symbolic links", rel)
		}
		target, err := os.Readlink(cand)
		if err != nil {
			return nil, err
		}
		var base string
		if !strings.HasPrefix(target, "/") {
			base = strings.Join(out, "/") + "/"
		}
		rest := strings.Join(in[i+1:], "/")
		// path.Clean on a rooted path drops ".." above the root: the
		// resolution is confined to the tree.
		joined := strings.Trim(path.Clean("/"+base+target), "/")
		sub, err := resolveParts(root, joined+"/"+rest, depth+1)
		if err != nil {
			return nil, err
		}
		return sub, nil
	}
	return out, nil
}

// ResolveFollow is Resolve that also follows a symlink in the last
// component, still confined to root: what opening rel inside a chroot at
// root would open.
func ResolveFollow(root, rel string) (string, error) {
	rel = strings.Trim(path.Clean("/"+rel), "/")
	for i := 0; i <= maxSymlinks; i++ {
		parts, err := resolveParts(root, rel, 0)
		if err != nil {
			return "", err
		}
		full := filepath.Join(append([]string{root}, parts...)...)
		fi, err := os.Lstat(full)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			return full, nil
		}
		target, err := os.Readlink(full)
		if err != nil {
			return "", err
		}
		dir := ""
		if !strings.HasPrefix(target, "/") && len(parts) > 1 {
			dir = strings.Join(parts[:len(parts)-1], "/")
		}
		rel = strings.Trim(path.Clean("/"+dir+"/"+target), "/")
	}
	return "", fmt.Errorf("%s: too many levels of symbolic links", rel)
}
