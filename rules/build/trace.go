package build

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sxb-build/sxb/internal/atomicfile"
)

// Trace is a Progress that also records a profile of the build in Chrome's
// trace-event format (what Bazel's --profile writes; chrome://tracing and
// ui.perfetto.dev open it): one lane per target running at the same time,
// a span per target and, nested in it, a span per step (resolving,
// downloading, extracting, writing erofs, publishing, ...) with the step's
// last detail (packages and megabytes moved), whether the target was a
// cache hit, and the process's resident memory as a counter.
type Trace struct {
	inner Progress
	file  string
	start time.Time

	mu      sync.Mutex
	events  []traceEvent
	running map[string]*traceTarget
	lanes   []bool // lanes[i]: lane i+1 is taken by a running target
	peakRSS int64
	err     error

	stop, stopped chan struct{}
}

type traceTarget struct {
	lane             int
	begin, stepBegin time.Time
	step, detail     string
}

// traceEvent is one entry of the trace-event format's traceEvents array.
type traceEvent struct {
	Name string         `json:"name"`
	Cat  string         `json:"cat,omitempty"`
	Ph   string         `json:"ph"`
	Ts   int64          `json:"ts"`            // microseconds since the build started
	Dur  *int64         `json:"dur,omitempty"` // microseconds, for "X" events
	Pid  int            `json:"pid"`
	Tid  int            `json:"tid"`
	Args map[string]any `json:"args,omitempty"`
}

// NewTrace returns a Progress that passes everything on to inner (which
// may be nil) and writes the profile to file on Close. It samples memory
// every 100 ms while the build runs.
func NewTrace(file string, inner Progress) *Trace {
	t := &Trace{inner: inner, file: file, start: time.Now(), running: map[string]*traceTarget{},
		stop: make(chan struct{}), stopped: make(chan struct{})}
	t.events = append(t.events, traceEvent{Name: "process_name", Ph: "M", Pid: 1, Args: map[string]any{"name": "sxb build"}})
	go t.sample()
	return t
}

func (t *Trace) us(at time.Time) int64 { return at.Sub(t.start).Microseconds() }

// Step implements Progress.
func (t *Trace) Step(label, step, detail string) {
	if t.inner != nil {
		t.inner.Step(label, step, detail)
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.running[label]
	if !ok {
		r = &traceTarget{lane: t.takeLane(), begin: now}
		t.running[label] = r
	}
	if r.step == step {
		r.detail = detail
		return
	}
	t.endStep(label, r, now)
	r.step, r.detail, r.stepBegin = step, detail, now
}

// Finish implements Progress.
func (t *Trace) Finish(label, how string, err error) {
	if t.inner != nil {
		t.inner.Finish(label, how, err)
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.running[label]
	if !ok {
		r = &traceTarget{lane: t.takeLane(), begin: now}
	}
	t.endStep(label, r, now)
	args := map[string]any{"result": how, "cache_hit": how == "up to date"}
	if err != nil {
		args["error"] = err.Error()
	}
	dur := t.us(now) - t.us(r.begin)
	t.events = append(t.events, traceEvent{Name: label, Cat: "target", Ph: "X", Ts: t.us(r.begin), Dur: &dur, Pid: 1, Tid: r.lane, Args: args})
	t.lanes[r.lane-1] = false
	delete(t.running, label)
}

// endStep closes the step r is in, if any. t.mu is held.
func (t *Trace) endStep(label string, r *traceTarget, now time.Time) {
	if r.step == "" {
		return
	}
	dur := t.us(now) - t.us(r.stepBegin)
	args := map[string]any{"target": label}
	if r.detail != "" {
		args["detail"] = r.detail
	}
	t.events = append(t.events, traceEvent{Name: r.step, Cat: "step", Ph: "X", Ts: t.us(r.stepBegin), Dur: &dur, Pid: 1, Tid: r.lane, Args: args})
	r.step = ""
}

// takeLane returns the lowest free lane number. t.mu is held.
func (t *Trace) takeLane() int {
	for i, busy := range t.lanes {
		if !busy {
			t.lanes[i] = true
			return i + 1
		}
	}
	t.lanes = append(t.lanes, true)
	n := len(t.lanes)
	t.events = append(t.events, traceEvent{Name: "thread_name", Ph: "M", Pid: 1, Tid: n, Args: map[string]any{"name": fmt.Sprintf("lane %d", n)}})
	return n
}

func (t *Trace) sample() {
	defer close(t.stopped)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		t.record(time.Now())
		select {
		case <-t.stop:
			t.record(time.Now())
			return
		case <-tick.C:
		}
	}
}

func (t *Trace) record(now time.Time) {
	rss := residentBytes()
	if rss <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.peakRSS = max(t.peakRSS, rss)
	t.events = append(t.events, traceEvent{Name: "memory", Ph: "C", Ts: t.us(now), Pid: 1, Args: map[string]any{"rss_mb": float64(rss) / (1 << 20)}})
}

// residentBytes returns the process's resident set size (Linux), or 0.
func residentBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// Close implements Progress: it ends the memory sampling and writes the
// profile (atomically; Err tells whether that worked). Targets still
// running (an interrupted build) end at the time of Close.
func (t *Trace) Close() {
	if t.inner != nil {
		t.inner.Close()
	}
	close(t.stop)
	<-t.stopped
	t.err = t.write()
}

// Err returns the error writing the profile met, after Close.
func (t *Trace) Err() error { return t.err }

// PeakRSS returns the largest resident set size sampled, in bytes.
func (t *Trace) PeakRSS() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.peakRSS
}

func (t *Trace) write() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	for label, r := range t.running {
		t.endStep(label, r, now)
	}
	var b bytes.Buffer
	b.WriteString("{\"displayTimeUnit\":\"ms\",\"otherData\":")
	other, _ := json.Marshal(map[string]any{"tool": "sxb", "peak_rss_mb": float64(t.peakRSS) / (1 << 20)})
	b.Write(other)
	b.WriteString(",\"traceEvents\":[\n")
	for i, e := range t.events {
		j, err := json.Marshal(e)
		if err != nil {
			return err
		}
		b.Write(j)
		if i < len(t.events)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("]}\n")
	if err := atomicfile.Write(t.file, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing profile: %w", err)
	}
	return nil
}
