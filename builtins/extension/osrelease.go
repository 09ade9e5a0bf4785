// Package extension turns an installed tree into the content of a system or
// configuration extension: the overlay delta against a base tree, the
// extension-release file, and the removal of what must never ship in an
// extension (package databases, os-release).
package extension

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/sxb-build/sxb/builtins/tree"
)

// KV is one KEY=value assignment of an os-release style file, in file order.
type KV struct {
	Key, Value string
}

// Env is an ordered list of assignments with lookup.
type Env []KV

// Get returns the value of key and whether it is set.
func (e Env) Get(key string) (string, bool) {
	for i := len(e) - 1; i >= 0; i-- {
		if e[i].Key == key {
			return e[i].Value, true
		}
	}
	return "", false
}

// Set replaces key's value or appends it.
func (e *Env) Set(key, value string) {
	for i := range *e {
		if (*e)[i].Key == key {
			(*e)[i].Value = value
			return
		}
	}
	*e = append(*e, KV{key, value})
}

// ParseEnv reads an os-release style file: KEY=value lines, "#" comments,
// values optionally in single or double quotes with backslash escapes in
// double quotes. Lines that are not assignments are reported with their
// line number. A key given twice keeps its position and takes the last value.
func ParseEnv(r io.Reader, name string) (Env, error) {
	var env Env
	s := bufio.NewScanner(r)
	for n := 1; s.Scan(); n++ {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !validKey(k) {
			return nil, fmt.Errorf("%s:%d: not a KEY=value assignment: %q", name, n, line)
		}
		val, err := unquote(v)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %w", name, n, k, err)
		}
		env.Set(k, val)
	}
	return env, s.Err()
}

// ReadEnvFile parses the file at path; a missing file is an empty Env.
func ReadEnvFile(path string) (Env, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseEnv(f, path)
}

func validKey(k string) bool {
	if k == "" {
		return false
	}
	for i, c := range k {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func unquote(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	switch v[0] {
	case '"':
		if len(v) < 2 || v[len(v)-1] != '"' {
			return "", fmt.Errorf("unterminated quote in %s", v)
		}
		if s, err := strconv.Unquote(v); err == nil {
			return s, nil
		}
		// os-release allows escapes Go does not know (\$, \`): drop the
		// backslash before any character.
		var b strings.Builder
		in := v[1 : len(v)-1]
		for i := 0; i < len(in); i++ {
			if in[i] == '\\' && i+1 < len(in) {
				i++
			}
			b.WriteByte(in[i])
		}
		return b.String(), nil
	case '\'':
		if len(v) < 2 || v[len(v)-1] != '\'' {
			return "", fmt.Errorf("unterminated quote in %s", v)
		}
		return v[1 : len(v)-1], nil
	}
	return v, nil
}

// OSRelease reads a tree's os-release: usr/lib/os-release, falling back to
// etc/os-release. Symlinks are resolved inside the tree, never on the host.
func OSRelease(root string) (Env, error) {
	for _, p := range []string{"usr/lib/os-release", "etc/os-release"} {
		full, err := tree.ResolveFollow(root, p)
		if err != nil {
			return nil, err
		}
		if fi, err := os.Stat(full); err == nil && fi.Mode().IsRegular() {
			return ReadEnvFile(full)
		}
	}
	return nil, nil
}
