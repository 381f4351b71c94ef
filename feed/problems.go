package feed

import (
	"fmt"
	"sync"
)

// MaxNamed is how many problems a Problems keeps by name; the rest are
// only counted.
const MaxNamed = 5

// Problems counts bad input a parser skipped, and keeps the first few
// descriptions so that a user can find them. The zero value is ready to use
// and safe for concurrent use.
type Problems struct {
	mu    sync.Mutex
	count int
	first []string
}

// Addf records one problem.
func (p *Problems) Addf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.count++
	if len(p.first) < MaxNamed {
		p.first = append(p.first, fmt.Sprintf(format, args...))
	}
}

// Count is the number of problems recorded.
func (p *Problems) Count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count
}

// First returns the descriptions of the first MaxNamed problems.
func (p *Problems) First() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.first...)
}

// Merge adds q's problems to p.
func (p *Problems) Merge(q *Problems) {
	if q == nil || p == q {
		return
	}
	n, first := q.Count(), q.First()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.count += n
	for _, s := range first {
		if len(p.first) < MaxNamed {
			p.first = append(p.first, s)
		}
	}
}
