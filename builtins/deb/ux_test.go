package deb

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/builtins/fetch"
)

// A misspelt release (no InRelease, no Release) is named as such, with a
// hint, rather than as a bare "not found" of one URL.
func TestResolveUnknownSuite(t *testing.T) {
	r := buildRepo(t, "fix", fixturePkgs)
	req := r.request(t, "fxi", "app")
	_, err := Resolve(context.Background(), req)
	if err == nil {
		t.Fatal("resolving against a missing suite succeeded")
	}
	want := `suite "fxi" not found at file://` + r.dir + ` (neither dists/fxi/InRelease nor Release exists): check the release name and the mirror`
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q\ndoes not contain %q", err, want)
	}
	if !errors.Is(err, fetch.ErrNotFound) {
		t.Errorf("error %v does not wrap fetch.ErrNotFound", err)
	}
}

// A misspelt package name gets the nearest existing name as a hint; a name
// nothing resembles gets none.
func TestResolveSuggestsName(t *testing.T) {
	r := buildRepo(t, "fix", fixturePkgs)
	_, err := Resolve(context.Background(), r.request(t, "fix", "jqq"))
	if err == nil || !strings.HasSuffix(err.Error(), `amd64 (did you mean "jq"?)`) {
		t.Errorf("error %v: want a hint at jq", err)
	}
	_, err = Resolve(context.Background(), r.request(t, "fix", "zzzzzzzzzz"))
	if err == nil || !strings.Contains(err.Error(), "zzzzzzzzzz -> not found in") || strings.Contains(err.Error(), "did you mean") {
		t.Errorf("error %v: want not found, without a hint", err)
	}
}

// Metadata signed by a key the keyring lacks says that the keyring is the
// likely problem.
func TestResolveWrongKeyring(t *testing.T) {
	r := buildRepo(t, "fix", fixturePkgs)
	_, other := newGPG(t, "other@example.org")
	req := r.request(t, "fix", "app")
	req.Keyring = other
	_, err := Resolve(context.Background(), req)
	if !errors.Is(err, ErrSignature) || !strings.Contains(err.Error(), "/InRelease: signed by a key that is not in the keyring (is keyring the archive's key?)") {
		t.Errorf("error %v: want a signature error naming the keyring", err)
	}
}

// Ties go to the first name in order, whatever the map order: jqp is as
// near to jqq as jq is, and jq (shorter) must not be skipped.
func TestSuggestTies(t *testing.T) {
	u := &universe{byName: map[string][]int{}}
	for _, n := range []string{"jqp", "jq", "jo", "libjq1", "jshon", "gojq", "jp", "jqq2"} {
		u.byName[n] = nil
	}
	for i := 0; i < 50; i++ {
		if got := u.suggest("jqq"); got != ` (did you mean "jq"?)` {
			t.Fatalf("suggest(jqq) = %q, want jq", got)
		}
	}
	if got := u.suggest("zzzzzzzz"); got != "" {
		t.Errorf("suggest(zzzzzzzz) = %q, want none", got)
	}
}
