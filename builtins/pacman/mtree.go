package pacman

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
)

// mtreeEntry is what a package's .MTREE says about one path.
type mtreeEntry struct {
	typ      string // file, dir, link, char, block, fifo, socket
	mode     uint32
	uid, gid uint32
	size     int64
	link     string
	hasMode  bool
}

// parseMTree reads a package's .MTREE (gzip-compressed mtree(5) text as
// bsdtar writes it: "/set" defaults, "./path key=value ..." entries, names
// escaped as \ooo). Paths come back without "./".
func parseMTree(gz []byte) (map[string]mtreeEntry, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf(".MTREE: %w", err)
	}
	defer zr.Close()
	body, err := io.ReadAll(io.LimitReader(zr, 256<<20))
	if err != nil {
		return nil, fmt.Errorf(".MTREE: %w", err)
	}
	out := map[string]mtreeEntry{}
	set := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	lineNo := 0
	var cont string
	for sc.Scan() {
		lineNo++
		line := cont + sc.Text()
		cont = ""
		if strings.HasSuffix(line, "\\") && !strings.HasSuffix(line, "\\\\") {
			cont = strings.TrimSuffix(line, "\\") + " "
			continue
		}
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch f[0] {
		case "/set":
			for _, kv := range f[1:] {
				k, v, _ := strings.Cut(kv, "=")
				set[k] = v
			}
			continue
		case "/unset":
			for _, k := range f[1:] {
				delete(set, k)
			}
			continue
		}
		name, err := mtreeUnescape(f[0])
		if err != nil {
			return nil, fmt.Errorf(".MTREE line %d: %w", lineNo, err)
		}
		kv := map[string]string{}
		for k, v := range set {
			kv[k] = v
		}
		for _, p := range f[1:] {
			k, v, _ := strings.Cut(p, "=")
			kv[k] = v
		}
		var e mtreeEntry
		e.typ = kv["type"]
		if m, ok := kv["mode"]; ok {
			n, err := strconv.ParseUint(m, 8, 32)
			if err != nil {
				return nil, fmt.Errorf(".MTREE line %d: mode %q", lineNo, m)
			}
			e.mode, e.hasMode = uint32(n), true
		}
		for _, x := range []struct {
			key string
			dst *uint32
		}{{"uid", &e.uid}, {"gid", &e.gid}} {
			if v, ok := kv[x.key]; ok {
				n, err := strconv.ParseUint(v, 10, 32)
				if err != nil {
					return nil, fmt.Errorf(".MTREE line %d: %s %q", lineNo, x.key, v)
				}
				*x.dst = uint32(n)
			}
		}
		if v, ok := kv["size"]; ok {
			if e.size, err = strconv.ParseInt(v, 10, 64); err != nil {
				return nil, fmt.Errorf(".MTREE line %d: size %q", lineNo, v)
			}
		}
		if v, ok := kv["link"]; ok {
			if e.link, err = mtreeUnescape(v); err != nil {
				return nil, fmt.Errorf(".MTREE line %d: %w", lineNo, err)
			}
		}
		out[strings.TrimPrefix(path.Clean(name), "./")] = e
	}
	return out, sc.Err()
}

// mtreeUnescape decodes mtree's \ooo escapes (and \\).
func mtreeUnescape(s string) (string, error) {
	if !strings.Contains(s, "\\") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+4 <= len(s) && isOctal(s[i+1:i+4]) {
			n, _ := strconv.ParseUint(s[i+1:i+4], 8, 8)
			b.WriteByte(byte(n))
			i += 3
			continue
		}
		if i+1 < len(s) {
			b.WriteByte(s[i+1])
			i++
			continue
		}
		return "", fmt.Errorf("name %q ends in a backslash", s)
	}
	return b.String(), nil
}

func isOctal(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < '0' || s[i] > '7' {
			return false
		}
	}
	return s[0] <= '3'
}
