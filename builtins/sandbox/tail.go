package sandbox

import (
	"bytes"
	"strings"
	"sync"
)

// Tail is a writer for a sandboxed command's output that keeps its last Max
// lines for an error message (an unfinished last line is kept up to 4 KiB).
// Line, when set, sees every complete line first, with the lines kept
// before it, and says whether to keep it.
type Tail struct {
	Max  int
	Line func(line string, before []string) (keep bool)

	mu      sync.Mutex
	lines   []string
	partial []byte
}

func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	data := append(t.partial, p...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		s := string(data[:i])
		data = data[i+1:]
		if t.Line != nil && !t.Line(s, t.lines) {
			continue
		}
		t.lines = append(t.lines, s)
		if len(t.lines) > t.Max {
			t.lines = t.lines[len(t.lines)-t.Max:]
		}
	}
	if len(data) > 4096 {
		data = data[len(data)-4096:]
	}
	t.partial = append([]byte(nil), data...)
	return len(p), nil
}

// Lines returns the last Max lines, the unfinished one included.
func (t *Tail) Lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]string(nil), t.lines...)
	if len(t.partial) > 0 {
		out = append(out, string(t.partial))
		if len(out) > t.Max {
			out = out[1:]
		}
	}
	return out
}

// String is Lines as text, without surrounding space.
func (t *Tail) String() string {
	return strings.TrimSpace(strings.Join(t.Lines(), "\n"))
}
