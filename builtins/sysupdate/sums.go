package sysupdate

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sxb-build/sxb/internal/atomicfile"
)

// Manifest names: the checksum list sysupdate reads from a source
// directory and its detached signature.
const (
	SumsFile      = "SHA256SUMS"
	SignatureFile = "SHA256SUMS.gpg"
)

// SignDir writes dir/SHA256SUMS.gpg, the signature of dir/SHA256SUMS, or
// removes a stale one when key is nil (a signature of other contents would
// make systemd-sysupdate --verify=yes refuse the directory with a
// misleading error).
func SignDir(dir string, key *SigningKey, epoch int64) error {
	sigFile := filepath.Join(dir, SignatureFile)
	if key == nil {
		if err := os.Remove(sigFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	sums, err := os.ReadFile(filepath.Join(dir, SumsFile))
	if err != nil {
		return fmt.Errorf("signing checksums: %w", err)
	}
	sig, err := key.Sign(sums, epoch)
	if err != nil {
		return err
	}
	return atomicfile.Write(sigFile, sig, 0o644)
}

// UpdateSum replaces the line of name in dir/SHA256SUMS with the current
// SHA-256 of dir/name. It reports whether the file listed name (a
// directory without SHA256SUMS, or one not listing name, is left alone).
func UpdateSum(dir, name string) (bool, error) {
	sumsFile := filepath.Join(dir, SumsFile)
	old, err := os.ReadFile(sumsFile)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	digest, err := FileDigest(filepath.Join(dir, name))
	if err != nil {
		return false, err
	}
	var out bytes.Buffer
	found := false
	s := bufio.NewScanner(bytes.NewReader(old))
	for s.Scan() {
		line := s.Text()
		if _, n, ok := strings.Cut(line, "  "); ok && n == name {
			line, found = digest+"  "+name, true
		}
		out.WriteString(line + "\n")
	}
	if !found {
		return false, nil
	}
	return true, atomicfile.Write(sumsFile, out.Bytes(), 0o644)
}

// FileDigest returns the lower-case hex SHA-256 of a file.
func FileDigest(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", file, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
