package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fatih/color"
)

// Progress receives what the executor is doing. Implementations must be
// safe for concurrent use.
type Progress interface {
	// Step says that target label entered a step ("resolving",
	// "downloading", "writing erofs", ...); detail may be empty.
	Step(label, step, detail string)
	// Finish says that target label is done: cached, built or failed.
	Finish(label, how string, err error)
	// Close stops any redrawing and leaves the terminal clean.
	Close()
}

// NewProgress returns a live status display for a terminal (fancy), or one
// line per step otherwise. total is the number of targets to build.
func NewProgress(w io.Writer, fancy, useColor bool, total int) Progress {
	p := &progress{w: w, fancy: fancy, total: total, start: time.Now(), running: map[string]*status{}}
	p.dim = color.New(color.Faint)
	p.green = color.New(color.FgGreen)
	p.red = color.New(color.FgRed, color.Bold)
	p.blue = color.New(color.FgCyan)
	for _, c := range []*color.Color{p.dim, p.green, p.red, p.blue} {
		if useColor {
			c.EnableColor()
		} else {
			c.DisableColor()
		}
	}
	if fancy {
		p.stop = make(chan struct{})
		p.stopped = make(chan struct{})
		go p.tick()
	}
	return p
}

type status struct {
	step, detail string
	since        time.Time
}

type progress struct {
	mu                    sync.Mutex
	w                     io.Writer
	fancy                 bool
	total, done           int
	start                 time.Time
	running               map[string]*status
	drawn                 int // status lines currently on screen
	dim, green, red, blue *color.Color
	stop, stopped         chan struct{}
}

func (p *progress) Step(label, step, detail string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.running[label]
	if !ok {
		s = &status{}
		p.running[label] = s
	}
	changed := s.step != step
	s.step, s.detail = step, detail
	if changed {
		s.since = time.Now()
	}
	if !p.fancy && changed {
		fmt.Fprintf(p.w, "[%d/%d] %s: %s\n", p.done, p.total, label, step)
	}
	if p.fancy {
		p.redraw()
	}
}

func (p *progress) Finish(label, how string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.running, label)
	p.done++
	p.clear()
	el := time.Since(p.start).Seconds()
	switch {
	case errors.Is(err, context.Canceled):
		fmt.Fprintf(p.w, "[%d/%d] %s %s %s\n", p.done, p.total, label, p.red.Sprint("interrupted"), p.dim.Sprintf("(%.1fs)", el))
	case err != nil:
		fmt.Fprintf(p.w, "[%d/%d] %s %s %s\n", p.done, p.total, label, p.red.Sprint("FAILED"), p.dim.Sprintf("(%.1fs)", el))
	default:
		fmt.Fprintf(p.w, "[%d/%d] %s %s %s\n", p.done, p.total, label, p.green.Sprint(how), p.dim.Sprintf("(%.1fs)", el))
	}
	if p.fancy {
		p.redraw()
	}
}

func (p *progress) Close() {
	if p.fancy {
		close(p.stop)
		<-p.stopped
	}
	p.mu.Lock()
	p.clear()
	p.mu.Unlock()
}

func (p *progress) tick() {
	defer close(p.stopped)
	t := time.NewTicker(150 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			p.redraw()
			p.mu.Unlock()
		}
	}
}

// clear erases the status lines drawn last time (cursor up, clear line).
func (p *progress) clear() {
	if p.drawn > 0 {
		fmt.Fprint(p.w, strings.Repeat("\x1b[1A\x1b[2K", p.drawn))
		p.drawn = 0
	}
}

func (p *progress) redraw() {
	if !p.fancy {
		return
	}
	p.clear()
	labels := make([]string, 0, len(p.running))
	for l := range p.running {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	for _, l := range labels {
		s := p.running[l]
		line := fmt.Sprintf("  %s %s %s", p.blue.Sprint(l), s.step, s.detail)
		fmt.Fprintf(p.w, "%s %s\n", strings.TrimRight(line, " "), p.dim.Sprintf("%.1fs", time.Since(s.since).Seconds()))
		p.drawn++
	}
	fmt.Fprintf(p.w, "%s\n", p.dim.Sprintf("[%d/%d] building, %.1fs", p.done, p.total, time.Since(p.start).Seconds()))
	p.drawn++
}
