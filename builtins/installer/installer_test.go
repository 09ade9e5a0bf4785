package installer

import (
	"errors"
	"strings"
	"testing"
)

type pkg struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

func (p pkg) LockName() string { return p.Name }

func (p pkg) CheckPinned() error {
	if p.URL == "" {
		return errors.New("url is required")
	}
	return nil
}

func TestLockRoundTrip(t *testing.T) {
	l := NewLock("debian", "bookworm", "amd64", []pkg{{"b", "http://x/b?x=1&y=2"}, {"a", "http://x/a"}})
	b, err := l.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "version": 1,
  "distribution": "debian",
  "release": "bookworm",
  "arch": "amd64",
  "packages": [
    {
      "name": "a",
      "url": "http://x/a"
    },
    {
      "name": "b",
      "url": "http://x/b?x=1&y=2"
    }
  ]
}
`
	if string(b) != want {
		t.Errorf("Marshal:\n%s\nwant:\n%s", b, want)
	}
	back, err := ParseLock[pkg](b, "x.lock")
	if err != nil {
		t.Fatal(err)
	}
	if back.Release != "bookworm" || len(back.Packages) != 2 || back.Packages[1] != (pkg{"b", "http://x/b?x=1&y=2"}) {
		t.Errorf("ParseLock = %+v", back)
	}
}

func TestParseLockRefuses(t *testing.T) {
	for bad, msg := range map[string]string{
		`{"version": 2}`:                              "x.lock: unsupported lock version 2",
		`{"version": 1, "extra": 1}`:                  `x.lock: json: unknown field "extra"`,
		`{"version": 1, "packages": [{"name": "a"}]}`: `x.lock: package 1 ("a"): url is required`,
		`{"version": 1, "packages": [{"name": "a", "url": "u"}, {"name": "a", "url": "v"}]}`: `x.lock: package "a" listed twice`,
		`[`: "x.lock: unexpected EOF",
	} {
		_, err := ParseLock[pkg]([]byte(bad), "x.lock")
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseLock(%s) = %v, want %q", bad, err, msg)
		}
	}
	// Unsorted is accepted; the installers sort what they plan.
	l, err := ParseLock[pkg]([]byte(`{"version": 1, "packages": [{"name": "b", "url": "u"}, {"name": "a", "url": "v"}]}`), "x.lock")
	if err != nil {
		t.Fatal(err)
	}
	SortPinned(l.Packages)
	if l.Packages[0].Name != "a" {
		t.Errorf("SortPinned: %v", l.Packages)
	}
}
