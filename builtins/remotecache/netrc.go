package remotecache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// defaultNetrc is $NETRC, else ~/.netrc.
func defaultNetrc() string {
	if f := os.Getenv("NETRC"); f != "" {
		return f
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".netrc")
	}
	return ""
}

// netrcLookup returns the login and password file gives for host (or its
// "default" entry). A missing file is no error.
//
// The netrc format is a handful of keywords; the Go toolchain's parser is
// internal to cmd/go and no maintained library is among sxb's
// dependencies, so this is a small one of our own. It reads the tokens
// machine, default, login, password, account and macdef (whose body, up to
// an empty line, is skipped); quoting is not part of the format.
func netrcLookup(file, host string) (login, password string, err error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("reading netrc: %w", err)
	}
	type entry struct{ login, password string }
	var found, def *entry
	var cur *entry
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		f := strings.Fields(lines[i])
		for j := 0; j < len(f); j++ {
			next := func() string {
				if j+1 < len(f) {
					j++
					return f[j]
				}
				return ""
			}
			switch f[j] {
			case "machine":
				cur = &entry{}
				if next() == host && found == nil {
					found = cur
				}
			case "default":
				cur = &entry{}
				if def == nil {
					def = cur
				}
			case "login":
				if cur != nil {
					cur.login = next()
				}
			case "password":
				if cur != nil {
					cur.password = next()
				}
			case "account":
				next()
			case "macdef":
				for i+1 < len(lines) && strings.TrimSpace(lines[i+1]) != "" {
					i++
				}
				j = len(f)
			}
		}
	}
	if found == nil {
		found = def
	}
	if found == nil {
		return "", "", nil
	}
	return found.login, found.password, nil
}
