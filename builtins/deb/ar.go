package deb

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// arReader walks the members of a Unix ar archive (the .deb container).
type arReader struct {
	r    *bufio.Reader
	left int64 // unread bytes of the current member
	pad  bool
}

func newArReader(r io.Reader) (*arReader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic := make([]byte, 8)
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != "!<arch>\n" {
		return nil, fmt.Errorf("not a .deb (ar) archive")
	}
	return &arReader{r: br}, nil
}

// next skips to the next member and returns its name and size.
func (a *arReader) next() (string, int64, error) {
	if a.left > 0 {
		if _, err := io.CopyN(io.Discard, a.r, a.left); err != nil {
			return "", 0, err
		}
		a.left = 0
	}
	if a.pad {
		if _, err := a.r.ReadByte(); err != nil {
			return "", 0, err
		}
		a.pad = false
	}
	hdr := make([]byte, 60)
	if _, err := io.ReadFull(a.r, hdr); err != nil {
		return "", 0, err // io.EOF at a clean end
	}
	if !bytes.Equal(hdr[58:60], []byte("`\n")) {
		return "", 0, fmt.Errorf("corrupt ar member header")
	}
	name := strings.TrimRight(string(hdr[0:16]), " ")
	name = strings.TrimSuffix(name, "/")
	size, err := strconv.ParseInt(strings.TrimSpace(string(hdr[48:58])), 10, 64)
	if err != nil || size < 0 {
		return "", 0, fmt.Errorf("corrupt ar member size for %q", name)
	}
	a.left = size
	a.pad = size%2 == 1
	return name, size, nil
}

// Read reads from the current member.
func (a *arReader) Read(p []byte) (int, error) {
	if a.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > a.left {
		p = p[:a.left]
	}
	n, err := a.r.Read(p)
	a.left -= int64(n)
	if err == io.EOF && a.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}
