package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/sxb-build/sxb/builtins/remotecache"
)

// RCFile is the workspace's committed defaults for sxb's flags, at the
// workspace root. Each line is a verb and flags, as on the command line:
//
//	# the team's remote cache; laptops read, CI writes (SXB_REMOTE_UPLOAD)
//	build --remote-cache=https://cache.example.com:9092 --remote-upload=false
//
// Words are split at blanks; '...' and "..." quote; a word starting with
// # starts a comment. The command line and
// the environment (SXB_REMOTE_CACHE) override the file.
const RCFile = ".sxbrc"

// remoteOptions are the remote cache flags of sxb build.
type remoteOptions struct {
	URL, Instance, CA, Compression string
	Upload                         bool
	Headers                        []string
	Timeout                        time.Duration
}

func addRemoteFlags(fs *pflag.FlagSet, o *remoteOptions) {
	fs.StringVar(&o.URL, "remote-cache", "", "shared cache speaking Bazel's HTTP cache protocol (http:// or https://; also SXB_REMOTE_CACHE)")
	fs.BoolVar(&o.Upload, "remote-upload", true, "store results built here in the remote cache (false: only read it)")
	fs.StringArrayVar(&o.Headers, "remote-header", nil, "NAME=VALUE header sent to the remote cache, e.g. Authorization=Bearer…; repeatable (credentials also come from ~/.netrc)")
	fs.StringVar(&o.Instance, "remote-instance-name", "", "prefix before ac/ and cas/ on the remote cache")
	fs.StringVar(&o.CA, "remote-ca", "", "PEM file of CA certificates trusted for the remote cache, besides the system's")
	fs.StringVar(&o.Compression, "remote-compression", "auto", "zstd transfer: auto (when the server answers with zstd), zstd or off")
	fs.DurationVar(&o.Timeout, "remote-timeout", 30*time.Second, "give up on the remote cache after this long without an answer or progress")
}

// rcArgs returns the flags the workspace's RCFile gives verb, with flag
// values that are relative paths (--remote-ca) made relative to root.
func rcArgs(root, verb string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(root, RCFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for i, line := range strings.Split(string(b), "\n") {
		words, err := splitWords(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", RCFile, i+1, err)
		}
		for j, w := range words {
			if strings.HasPrefix(w, "#") { // a comment to the end of the line
				words = words[:j]
				break
			}
		}
		if len(words) == 0 || words[0] != verb {
			continue
		}
		for _, w := range words[1:] {
			if !strings.HasPrefix(w, "-") {
				return nil, fmt.Errorf("%s:%d: %q: only flags belong here (write --flag=value)", RCFile, i+1, w)
			}
			if v, ok := strings.CutPrefix(w, "--remote-ca="); ok && v != "" && !filepath.IsAbs(v) {
				w = "--remote-ca=" + filepath.Join(root, v)
			}
			out = append(out, w)
		}
	}
	return out, nil
}

// splitWords splits a line at blanks, honouring '...' and "..." quotes.
// A full shell grammar is more than a flags file needs.
func splitWords(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	in, quote := false, rune(0)
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ' || r == '\t' || r == '\r':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote", quote)
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

// remoteClient makes the client the flags describe, or nil without a URL.
func remoteClient(o remoteOptions, tempDir string) (*remotecache.Client, error) {
	if o.URL == "" {
		return nil, nil
	}
	hdr := http.Header{}
	for _, h := range o.Headers {
		k, v, ok := strings.Cut(h, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--remote-header %q: want NAME=VALUE", h)
		}
		hdr.Add(k, v)
	}
	if err := os.MkdirAll(tempDir, 0o755); err != nil {
		return nil, err
	}
	return remotecache.New(remotecache.Options{URL: o.URL, InstanceName: o.Instance, Header: hdr, CAFile: o.CA,
		Compression: o.Compression, Timeout: o.Timeout, TempDir: tempDir})
}
