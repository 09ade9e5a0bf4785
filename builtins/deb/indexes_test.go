package deb

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// Resolutions sharing an Indexes read the repository once: the second
// works with the repository gone, a request without it does not, and a
// different keyring still verifies the Release itself.
func TestResolveSharedIndexes(t *testing.T) {
	r := buildRepo(t, "fix", fixturePkgs)
	ctx := context.Background()
	ix := &Indexes{}
	req := r.request(t, "fix", "app")
	req.Indexes = ix
	first, err := Resolve(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	_, otherKeyring := newGPG(t, "other@example.invalid")
	other := req
	other.Keyring = otherKeyring
	if _, err := Resolve(ctx, other); !errors.Is(err, ErrSignature) {
		t.Fatalf("shared indexes, another keyring: err = %v, want a signature error", err)
	}
	if err := os.RemoveAll(filepath.Join(r.dir, "dists")); err != nil {
		t.Fatal(err)
	}
	// Parsed indexes are cached on disk too: drop them, so that only the
	// Indexes can answer.
	if err := os.RemoveAll(filepath.Join(req.CacheDir, "deb-index")); err != nil {
		t.Fatal(err)
	}
	again, err := Resolve(ctx, req)
	if err != nil {
		t.Fatalf("second resolution with shared indexes: %v", err)
	}
	if names(again) != names(first) {
		t.Errorf("second plan %q, first %q", names(again), names(first))
	}
	req.Indexes = nil
	if _, err := Resolve(ctx, req); err == nil {
		t.Fatal("resolution without the shared indexes succeeded with the repository gone")
	}
}
