package erofs

import (
	"fmt"
	"io"
	"slices"
	"sync"
)

// prefetcher reads the files write copies through memory ahead of it, with
// several goroutines: opening and reading thousands of small files one
// after the other leaves the disk and the second core idle between system
// calls. Files arrive in the order they were queued; at most
// prefetchAhead are read but not yet taken.
type prefetcher struct {
	jobs   []*pjob
	next   int
	window chan struct{} // a token per file queued and not yet taken
	stop   chan struct{}
	wg     sync.WaitGroup
}

type pjob struct {
	ino  *inode
	data []byte
	err  error
	done chan struct{}
}

const (
	prefetchWorkers = 8 // reads wait on the disk more than on a core
	prefetchAhead   = 256
)

func startPrefetch(inodes []*inode) *prefetcher {
	p := &prefetcher{stop: make(chan struct{}), window: make(chan struct{}, prefetchAhead)}
	for _, ino := range inodes {
		p.jobs = append(p.jobs, &pjob{ino: ino, done: make(chan struct{})})
	}
	queue := make(chan *pjob)
	jobs := slices.Clone(p.jobs) // take clears p.jobs as it goes
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(queue)
		for _, j := range jobs {
			select {
			case p.window <- struct{}{}:
			case <-p.stop:
				return
			}
			select {
			case queue <- j:
			case <-p.stop:
				return
			}
		}
	}()
	for range min(prefetchWorkers, len(p.jobs)) {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for j := range queue {
				j.data, j.err = readWhole(j.ino)
				close(j.done)
			}
		}()
	}
	return p
}

// take returns the contents of the next queued file, which must be ino.
func (p *prefetcher) take(ino *inode) ([]byte, error) {
	if p.next >= len(p.jobs) || p.jobs[p.next].ino != ino {
		return nil, fmt.Errorf("erofs: internal error: %s read out of order", displayPath(ino.node))
	}
	j := p.jobs[p.next]
	p.jobs[p.next] = nil
	p.next++
	<-j.done
	<-p.window
	return j.data, j.err
}

// close stops the readers and waits for them.
func (p *prefetcher) close() {
	close(p.stop)
	p.wg.Wait()
}

// readWhole reads a regular file that must be exactly ino.size bytes long.
func readWhole(ino *inode) (_ []byte, err error) {
	n := ino.node
	rc, err := n.Open()
	if err != nil {
		return nil, fmt.Errorf("erofs: %s: %w", displayPath(n), err)
	}
	defer func() {
		if cerr := rc.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("erofs: %s: %w", displayPath(n), cerr)
		}
	}()
	b := getBuf(int(ino.size))[:ino.size]
	if _, err := io.ReadFull(rc, b); err != nil {
		return nil, fmt.Errorf("erofs: %s: reading %d bytes: %w (%w)", displayPath(n), ino.size, err, errChanged)
	}
	if err := atEOF(rc, ino); err != nil {
		return nil, err
	}
	return b, nil
}
