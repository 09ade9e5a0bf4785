package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
)

// Key returns the action key of v: the sha256 of its JSON encoding. Go's
// encoding/json writes struct fields in declaration order and map keys
// sorted, so equal values give equal keys.
func Key(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("build: unencodable action key: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// job is one node of the scheduled graph.
type job struct {
	label string
	deps  []*job
	run   func(ctx context.Context) error
	done  chan struct{}
	err   error
}

// errDepFailed marks a job skipped because a dependency failed.
var errDepFailed = errors.New("dependency failed")

// schedule runs jobs (given deps first) with at most n running at once.
// A job starts when all its dependencies succeeded; when one fails, its
// dependents are skipped and, unless keepGoing, nothing new starts.
func schedule(ctx context.Context, jobs []*job, n int, keepGoing bool) error {
	if n < 1 {
		n = 1
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, j := range jobs {
		j.done = make(chan struct{})
	}
	for _, j := range jobs {
		wg.Add(1)
		go func(j *job) {
			defer wg.Done()
			defer close(j.done)
			for _, d := range j.deps {
				<-d.done
				if d.err != nil {
					j.err = fmt.Errorf("%s: %w", d.label, errDepFailed)
					return
				}
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				j.err = ctx.Err()
				return
			}
			defer func() { <-sem }()
			if err := ctx.Err(); err != nil {
				j.err = err
				return
			}
			j.err = j.run(ctx)
			if j.err != nil {
				mu.Lock()
				errs = append(errs, j.err)
				mu.Unlock()
				if !keepGoing {
					cancel()
				}
			}
		}(j)
	}
	wg.Wait()
	return errors.Join(errs...)
}
