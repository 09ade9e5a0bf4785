package deb

import (
	"fmt"
	"slices"
	"strings"
)

// Source is one repository entry of apt's configuration: where the
// indexes are, which suites and components to read, and the keyring its
// Release files are signed with.
type Source struct {
	URI        string   `json:"uri"`
	Suites     []string `json:"suites"`
	Components []string `json:"components,omitempty"`
	// Keyring is Signed-By=: a keyring file or directory ("" for the
	// request's keyring).
	Keyring string `json:"keyring,omitempty"`
	// Architectures, when set, limits the entry to these Debian
	// architectures (arch= / Architectures:).
	Architectures []string `json:"architectures,omitempty"`
}

// ParseSources reads apt source entries from a file's content: the
// one-line format of sources.list and *.list files ("deb [signed-by=K]
// URI SUITE COMPONENT..."), or, when deb822 is set, the stanzas of a
// *.sources file (Types:, URIs:, Suites:, Components:, Signed-By:,
// Enabled:, Architectures:). Source entries (deb-src) and disabled
// stanzas are skipped. apt's flat repositories (a suite ending in "/")
// and keys written inline in Signed-By are refused.
func ParseSources(name string, content []byte, deb822 bool) ([]Source, error) {
	if deb822 {
		return parseDeb822Sources(name, string(content))
	}
	var out []Source
	for i, line := range strings.Split(string(content), "\n") {
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		at := fmt.Sprintf("%s:%d", name, i+1)
		if f[0] == "deb-src" {
			continue
		}
		if f[0] != "deb" {
			return nil, fmt.Errorf("%s: %q is not a deb or deb-src entry", at, f[0])
		}
		f = f[1:]
		var s Source
		if len(f) > 0 && strings.HasPrefix(f[0], "[") {
			opts := strings.TrimPrefix(strings.Join(f, " "), "[")
			end := strings.IndexByte(opts, ']')
			if end < 0 {
				return nil, fmt.Errorf("%s: unterminated [options]", at)
			}
			for _, o := range strings.Fields(opts[:end]) {
				k, v, _ := strings.Cut(o, "=")
				switch strings.ToLower(k) {
				case "signed-by":
					s.Keyring = v
				case "arch":
					s.Architectures = strings.Split(v, ",")
				}
			}
			f = strings.Fields(opts[end+1:])
		}
		if len(f) < 2 {
			return nil, fmt.Errorf("%s: want URI and suite", at)
		}
		s.URI, s.Suites, s.Components = f[0], f[1:2], f[2:]
		if err := s.check(at); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// parseDeb822Sources reads the stanzas of a *.sources file.
func parseDeb822Sources(name, content string) ([]Source, error) {
	var out []Source
	fields := map[string]string{}
	key, start := "", 0
	flush := func() error {
		defer func() { fields = map[string]string{} }()
		if len(fields) == 0 {
			return nil
		}
		at := fmt.Sprintf("%s:%d", name, start)
		if e, ok := fields["enabled"]; ok && strings.EqualFold(strings.TrimSpace(e), "no") {
			return nil
		}
		if !slices.Contains(strings.Fields(fields["types"]), "deb") {
			return nil
		}
		if strings.Contains(fields["signed-by"], "BEGIN PGP") {
			return fmt.Errorf("%s: a key written inline in Signed-By is not supported (name a keyring file)", at)
		}
		uris := strings.Fields(fields["uris"])
		if len(uris) == 0 {
			return fmt.Errorf("%s: no URIs", at)
		}
		for _, u := range uris {
			s := Source{URI: u, Suites: strings.Fields(fields["suites"]), Components: strings.Fields(fields["components"]),
				Architectures: strings.Fields(fields["architectures"])}
			if k := strings.Fields(fields["signed-by"]); len(k) > 0 {
				s.Keyring = k[0]
			}
			if err := s.check(at); err != nil {
				return err
			}
			out = append(out, s)
		}
		return nil
	}
	for i, line := range strings.Split(content, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if strings.TrimSpace(line) == "" {
			if err := flush(); err != nil {
				return nil, err
			}
			key = ""
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && key != "" {
			fields[key] += "\n" + strings.TrimSpace(line)
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want Field: value", name, i+1)
		}
		if len(fields) == 0 {
			start = i + 1
		}
		key = strings.ToLower(strings.TrimSpace(k))
		fields[key] = strings.TrimSpace(v)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Source) check(at string) error {
	if len(s.Suites) == 0 {
		return fmt.Errorf("%s: no suite", at)
	}
	for _, suite := range s.Suites {
		if strings.HasSuffix(suite, "/") {
			return fmt.Errorf("%s: flat repository %s %s is not supported (only dists/<suite> repositories)", at, s.URI, suite)
		}
	}
	if len(s.Components) == 0 {
		s.Components = nil
	}
	return nil
}
