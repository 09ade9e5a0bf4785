package mkosi

import (
	"encoding/json"
)

// Summary returns the image's settings in the shape of one element of
// "mkosi --json summary": mkosi's setting names as keys, for every setting
// sxb models.
func (im *Image) Summary() map[string]any {
	out := map[string]any{"Image": im.Name}
	for _, s := range settings {
		if s.Kind == tRaw || s.Hidden || s.Name == "Include" {
			continue
		}
		out[s.Name] = jsonValue(im.values[s])
	}
	return out
}

func jsonValue(v any) any {
	switch v := v.(type) {
	case []Tree:
		out := make([]map[string]any, 0, len(v))
		for _, t := range v {
			var tgt any
			if t.Target != "" {
				tgt = t.Target
			}
			out = append(out, map[string]any{"Source": t.Source, "Target": tgt})
		}
		return out
	}
	return v
}

// SummaryJSON renders the project like "mkosi --json summary" (keys
// sorted, four-space indentation).
func (p *Project) SummaryJSON() ([]byte, error) {
	var images []map[string]any
	for _, im := range p.Images {
		images = append(images, im.Summary())
	}
	b, err := json.MarshalIndent(map[string]any{"Images": images}, "", "    ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ConfigJSON is the image's configuration as mkosi hands it to scripts in
// $MKOSI_CONFIG: its element of "mkosi --json summary" (keys sorted,
// four-space indentation).
func (im *Image) ConfigJSON() ([]byte, error) {
	return json.MarshalIndent(im.Summary(), "", "    ")
}
