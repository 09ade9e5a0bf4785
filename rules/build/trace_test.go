package build

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestTraceRecordsTargetsStepsAndLanes: each target is a span holding its
// steps; two targets running at once get two lanes, a later one reuses a
// free lane; cache hits and errors are in the target's args.
func TestTraceRecordsTargetsStepsAndLanes(t *testing.T) {
	file := filepath.Join(t.TempDir(), "prof.json")
	tr := NewTrace(file, nil)
	tr.Step("//a:base", "resolving", "")
	tr.Step("//a:base", "downloading", "1/2 packages, 0.5/1.0 MB")
	tr.Step("//a:base", "downloading", "2/2 packages, 1.0/1.0 MB")
	tr.Step("//a:jq", "resolving", "")
	tr.Finish("//a:jq", "up to date", nil)
	tr.Step("//a:base", "extracting", "2/2 libc")
	tr.Finish("//a:base", "built", nil)
	tr.Step("//a:tool", "writing erofs", "")
	tr.Finish("//a:tool", "failed", errors.New("boom"))
	tr.Close()
	if err := tr.Err(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		TraceEvents []traceEvent   `json:"traceEvents"`
		OtherData   map[string]any `json:"otherData"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("profile is not JSON: %v\n%s", err, b)
	}
	targets := map[string]traceEvent{}
	var steps []traceEvent
	memory := 0
	for _, e := range doc.TraceEvents {
		switch {
		case e.Cat == "target":
			targets[e.Name] = e
		case e.Cat == "step":
			steps = append(steps, e)
		case e.Name == "memory":
			memory++
		}
	}
	if len(targets) != 3 || memory == 0 {
		t.Fatalf("targets %v, %d memory samples", targets, memory)
	}
	if targets["//a:base"].Tid == targets["//a:jq"].Tid {
		t.Errorf("overlapping targets share lane %d", targets["//a:base"].Tid)
	}
	if targets["//a:tool"].Tid != 1 {
		t.Errorf("//a:tool lane %d, want the free lane 1", targets["//a:tool"].Tid)
	}
	if targets["//a:jq"].Args["cache_hit"] != true || targets["//a:base"].Args["cache_hit"] != false {
		t.Errorf("cache hits: jq %v, base %v", targets["//a:jq"].Args, targets["//a:base"].Args)
	}
	if targets["//a:tool"].Args["error"] != "boom" {
		t.Errorf("tool args %v", targets["//a:tool"].Args)
	}
	var names []string
	for _, s := range steps {
		tgt := targets[s.Args["target"].(string)]
		if s.Tid != tgt.Tid || s.Ts < tgt.Ts || s.Ts+*s.Dur > tgt.Ts+*tgt.Dur {
			t.Errorf("step %s %+v lies outside its target %+v", s.Name, s, tgt)
		}
		if s.Args["target"] == "//a:base" {
			names = append(names, s.Name)
		}
		if s.Name == "downloading" && s.Args["detail"] != "2/2 packages, 1.0/1.0 MB" {
			t.Errorf("downloading detail %v, want the last one", s.Args["detail"])
		}
	}
	if want := []string{"resolving", "downloading", "extracting"}; len(names) != 3 || names[0] != want[0] || names[1] != want[1] || names[2] != want[2] {
		t.Errorf("base steps %v, want %v", names, want)
	}
}
