// Command tracesvg draws the trace `sxb build --trace=FILE` writes as an SVG
// picture: a time line per lane with the targets and, under each, its steps
// (resolving, downloading, extracting, running scripts, writing the image,
// ...) in colours, and the resident memory below. The README shows one
// (docs/trace-cold.svg); a trace viewer (ui.perfetto.dev) shows the same
// file interactively.
//
//	go run ./bench/tracesvg -title "cold build" trace.json > docs/trace-cold.svg
//
// It is written here rather than taken from a plotting library: the picture
// is a few dozen rectangles, and the output stays byte-stable for the
// repository.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"sort"
	"strings"
)

// event is the part of a trace event this program reads.
type event struct {
	Name string         `json:"name"`
	Ph   string         `json:"ph"`
	Ts   float64        `json:"ts"`
	Dur  float64        `json:"dur"`
	Tid  int            `json:"tid"`
	Args map[string]any `json:"args"`
}

type traceFile struct {
	TraceEvents []event        `json:"traceEvents"`
	OtherData   map[string]any `json:"otherData"`
}

// colors of the steps sxb reports; others get grey.
var colors = map[string]string{
	"resolving":        "#4e79a7",
	"downloading":      "#f28e2b",
	"extracting":       "#59a14f",
	"running scripts":  "#e15759",
	"finishing":        "#b07aa1",
	"assembling tree":  "#76b7b2",
	"writing erofs":    "#edc948",
	"writing squashfs": "#edc948",
	"writing tar":      "#9c755f",
	"publishing":       "#bab0ac",
}

const (
	width   = 960.0
	left    = 120.0 // lane labels
	right   = 20.0
	top     = 40.0
	rowH    = 22.0 // one row of spans
	laneGap = 10.0
	memH    = 90.0
)

func main() {
	title := flag.String("title", "sxb build", "title above the picture")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: tracesvg [-title T] TRACE.json > OUT.svg")
		os.Exit(2)
	}
	b, err := os.ReadFile(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "tracesvg:", err)
		os.Exit(1)
	}
	var tf traceFile
	if err := json.Unmarshal(b, &tf); err != nil {
		fmt.Fprintf(os.Stderr, "tracesvg: %s: %v\n", flag.Arg(0), err)
		os.Exit(1)
	}
	if err := draw(os.Stdout, &tf, *title); err != nil {
		fmt.Fprintln(os.Stderr, "tracesvg:", err)
		os.Exit(1)
	}
}

func draw(w io.Writer, tf *traceFile, title string) error {
	var targets, steps []event
	var mem [][2]float64
	end, peak := 0.0, 0.0
	lanes := map[int]bool{}
	for _, e := range tf.TraceEvents {
		switch e.Ph {
		case "X":
			if _, ok := e.Args["target"]; ok {
				steps = append(steps, e)
			} else {
				targets = append(targets, e)
			}
			lanes[e.Tid] = true
			end = math.Max(end, e.Ts+e.Dur)
		case "C":
			if v, ok := e.Args["rss_mb"].(float64); ok {
				mem = append(mem, [2]float64{e.Ts, v})
				peak = math.Max(peak, v)
				end = math.Max(end, e.Ts)
			}
		}
	}
	if len(targets) == 0 || end == 0 {
		return fmt.Errorf("no targets in the trace")
	}
	var laneIDs []int
	for id := range lanes {
		laneIDs = append(laneIDs, id)
	}
	sort.Ints(laneIDs)
	laneY := map[int]float64{}
	y := top + 20
	for _, id := range laneIDs {
		laneY[id] = y
		y += 2*rowH + laneGap
	}
	memTop := y + 10
	legendY := memTop + memH + 40
	height := legendY + 30
	secs := end / 1e6
	x := func(us float64) float64 { return left + us/1e6/secs*(width-left-right) }

	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="11">`+"\n", width, height, width, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(w, `<text x="%.0f" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(fmt.Sprintf("%s: %.2f s, peak memory %.0f MiB", title, secs, peak)))

	// Time axis: a tick every 1, 2, 5, 10... seconds, about ten in all.
	step := 1.0
	for _, s := range []float64{1, 2, 5, 10, 20, 30, 60, 120} {
		step = s
		if secs/s <= 12 {
			break
		}
	}
	axisY := memTop + memH
	for t := 0.0; t <= secs+1e-9; t += step {
		px := x(t * 1e6)
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#ddd"/>`+"\n", px, top+10, px, axisY)
		fmt.Fprintf(w, `<text x="%.1f" y="%.0f" text-anchor="middle" fill="#555">%gs</text>`+"\n", px, axisY+14, t)
	}

	sort.SliceStable(targets, func(i, j int) bool { return targets[i].Ts < targets[j].Ts })
	for _, id := range laneIDs {
		fmt.Fprintf(w, `<text x="8" y="%.1f" fill="#555">lane %d</text>`+"\n", laneY[id]+rowH-7, id)
	}
	for _, e := range targets {
		x0, x1 := x(e.Ts), x(e.Ts+e.Dur)
		label := e.Name
		if r, ok := e.Args["result"].(string); ok {
			label += " (" + r + ")"
		}
		fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.0f" fill="#e8e8e8" stroke="#999"><title>%s %.2f s</title></rect>`+"\n",
			x0, laneY[e.Tid], math.Max(x1-x0, 1), rowH-2, html.EscapeString(label), e.Dur/1e6)
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f">%s</text>`+"\n", x0+4, laneY[e.Tid]+rowH-7, html.EscapeString(fit(label, x1-x0-8)))
	}
	used := map[string]bool{}
	for _, e := range steps {
		x0, x1 := x(e.Ts), x(e.Ts+e.Dur)
		c, ok := colors[e.Name]
		if !ok {
			c = "#cccccc"
		}
		used[e.Name] = true
		detail, _ := e.Args["detail"].(string)
		tip := fmt.Sprintf("%s %s: %.2f s", e.Args["target"], e.Name, e.Dur/1e6)
		if detail != "" {
			tip += " (" + detail + ")"
		}
		yy := laneY[e.Tid] + rowH
		fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.0f" fill="%s"><title>%s</title></rect>`+"\n",
			x0, yy, math.Max(x1-x0, 0.5), rowH-2, c, html.EscapeString(tip))
		if t := fit(fmt.Sprintf("%s %.1fs", e.Name, e.Dur/1e6), x1-x0-6); t != "" {
			fmt.Fprintf(w, `<text x="%.1f" y="%.1f" fill="white">%s</text>`+"\n", x0+3, yy+rowH-7, html.EscapeString(t))
		}
	}

	// Memory: the resident set as an area, the peak marked.
	if len(mem) > 0 && peak > 0 {
		scale := memH / (math.Ceil(peak/50) * 50)
		var pts strings.Builder
		fmt.Fprintf(&pts, "%.1f,%.1f ", x(mem[0][0]), axisY)
		for _, m := range mem {
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(m[0]), axisY-m[1]*scale)
		}
		fmt.Fprintf(&pts, "%.1f,%.1f", x(mem[len(mem)-1][0]), axisY)
		fmt.Fprintf(w, `<polygon points="%s" fill="#cfe0f3" stroke="#4e79a7"/>`+"\n", pts.String())
		fmt.Fprintf(w, `<text x="8" y="%.1f" fill="#555">memory (RSS)</text>`+"\n", axisY-memH/2)
		fmt.Fprintf(w, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#4e79a7" stroke-dasharray="4 3"/>`+"\n", left, axisY-peak*scale, width-right, axisY-peak*scale)
		fmt.Fprintf(w, `<text x="%.0f" y="%.1f" text-anchor="end" fill="#4e79a7">peak %.0f MiB</text>`+"\n", width-right, axisY-peak*scale-3, peak)
	}

	// Legend of the steps that occur, in the order of the colour table.
	var names []string
	for n := range used {
		names = append(names, n)
	}
	order := []string{"resolving", "downloading", "extracting", "running scripts", "finishing", "assembling tree", "writing erofs", "writing squashfs", "writing tar", "publishing"}
	rank := func(n string) int {
		for i, o := range order {
			if o == n {
				return i
			}
		}
		return len(order)
	}
	sort.Slice(names, func(i, j int) bool {
		if rank(names[i]) != rank(names[j]) {
			return rank(names[i]) < rank(names[j])
		}
		return names[i] < names[j]
	})
	lx := left
	for _, n := range names {
		c, ok := colors[n]
		if !ok {
			c = "#cccccc"
		}
		fmt.Fprintf(w, `<rect x="%.0f" y="%.0f" width="12" height="12" fill="%s"/><text x="%.0f" y="%.0f">%s</text>`+"\n", lx, legendY-10, c, lx+16, legendY, html.EscapeString(n))
		lx += 16 + float64(len(n))*6.5 + 18
	}
	_, err := fmt.Fprintln(w, "</svg>")
	return err
}

// fit shortens s to about px pixels of 11-pixel text ("" when nothing
// fits).
func fit(s string, px float64) string {
	n := int(px / 6.2)
	switch {
	case n >= len(s):
		return s
	case n < 4:
		return ""
	}
	return s[:n-1] + "…"
}
