package deb

import "sync"

// Indexes keeps what Resolve read of the repositories in memory for the
// Requests that share it (Request.Indexes), typically the targets of one
// build: a base image and the extensions on it read the same InRelease
// files and Packages indexes, and fetching, verifying and decoding them
// again (most of a warm resolution) buys nothing within seconds. A Release
// is reused only for the same repository, suite, keyring and Insecure
// setting. A nil *Indexes keeps nothing. An Indexes is safe for concurrent use; it only grows, so give
// it the lifetime of one build, not of a long-running process. The zero
// value is ready to use.
type Indexes struct {
	mu        sync.Mutex
	releases  map[string]*memo[*release]
	universes map[string]*memo[*universe]
}

// memo is one value computed once by whoever asked first; the others wait
// for it. A failure is not kept: the next caller tries again.
type memo[T any] struct {
	done chan struct{}
	v    T
	err  error
}

// release returns the verified Release named key, reading it with fn once.
func (ix *Indexes) release(key string, fn func() (*release, error)) (*release, error) {
	if ix == nil {
		return fn()
	}
	return remember(ix, &ix.releases, key, fn)
}

// universe returns the universe named key, building it with fn once.
func (ix *Indexes) universe(key string, fn func() (*universe, error)) (*universe, error) {
	if ix == nil {
		return fn()
	}
	return remember(ix, &ix.universes, key, fn)
}

// remember returns (*m)[key], computing it with fn when absent. m is a
// map of ix, made when nil.
func remember[T any](ix *Indexes, m *map[string]*memo[T], key string, fn func() (T, error)) (T, error) {
	ix.mu.Lock()
	if *m == nil {
		*m = map[string]*memo[T]{}
	}
	e, ok := (*m)[key]
	if !ok {
		e = &memo[T]{done: make(chan struct{})}
		(*m)[key] = e
	}
	ix.mu.Unlock()
	if ok {
		<-e.done
		if e.err == nil {
			return e.v, nil
		}
		return remember(ix, m, key, fn)
	}
	e.v, e.err = fn()
	if e.err != nil {
		ix.mu.Lock()
		delete(*m, key)
		ix.mu.Unlock()
	}
	close(e.done)
	return e.v, e.err
}
