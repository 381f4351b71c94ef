package worker_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vigil-project/vigil/internal/testutil"
	"github.com/vigil-project/vigil/sqlstore"
	"github.com/vigil-project/vigil/worker"
)

// backends opens two handles on one fresh store per backend: two handles
// are what two worker processes have.
func backends(t *testing.T) map[string]func(t *testing.T) (*sqlstore.Store, *sqlstore.Store) {
	open := func(t *testing.T, dsn string) *sqlstore.Store {
		s, err := sqlstore.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	return map[string]func(t *testing.T) (*sqlstore.Store, *sqlstore.Store){
		"sqlite": func(t *testing.T) (*sqlstore.Store, *sqlstore.Store) {
			dsn := filepath.Join(t.TempDir(), "store.db")
			return open(t, dsn), open(t, dsn)
		},
		"postgres": func(t *testing.T) (*sqlstore.Store, *sqlstore.Store) {
			dsn := testutil.Postgres(t)
			return open(t, dsn), open(t, dsn)
		},
	}
}

func TestPool(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("every job once, across two pools", func(t *testing.T) { testShared(t, open) })
			t.Run("retry, permanent failure, panic", func(t *testing.T) { testFailures(t, open) })
			t.Run("dead worker's job is taken over", func(t *testing.T) { testLease(t, open) })
			t.Run("unique keys", func(t *testing.T) { testUnique(t, open) })
		})
	}
}

func testShared(t *testing.T, open func(*testing.T) (*sqlstore.Store, *sqlstore.Store)) {
	a, b := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const n = 200
	for i := range n {
		if _, ok, err := a.Enqueue(ctx, sqlstore.NewJob{Kind: "count", Args: []byte(strconv.Itoa(i))}); err != nil || !ok {
			t.Fatal(ok, err)
		}
	}
	var mu sync.Mutex
	seen := map[string]int{}
	by := map[string]int{}
	handler := func(name string) worker.Handler {
		return func(ctx context.Context, j *sqlstore.Job) error {
			mu.Lock()
			seen[string(j.Args)]++
			by[name]++
			done := len(seen) == n
			mu.Unlock()
			if done {
				cancel()
			}
			return nil
		}
	}
	pa := &worker.Pool{Store: a, Handlers: map[string]worker.Handler{"count": handler("a")}, Concurrency: 3, Poll: 10 * time.Millisecond}
	pb := &worker.Pool{Store: b, Handlers: map[string]worker.Handler{"count": handler("b")}, Concurrency: 3, Poll: 10 * time.Millisecond}
	var wg sync.WaitGroup
	for _, p := range []*worker.Pool{pa, pb} {
		wg.Go(func() { p.Run(ctx) })
	}
	select {
	case <-ctx.Done():
	case <-time.After(60 * time.Second):
		t.Fatal("jobs not done in 60 s")
	}
	wg.Wait()
	for k, v := range seen {
		if v != 1 {
			t.Errorf("job %s ran %d times", k, v)
		}
	}
	if by["a"] == 0 || by["b"] == 0 {
		t.Logf("one pool did everything: %v", by) // possible, not wrong
	}
	counts, err := a.JobCounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if counts["count"][sqlstore.JobCompleted] != n {
		t.Fatalf("completed %v, want %d", counts, n)
	}
}

func testFailures(t *testing.T, open func(*testing.T) (*sqlstore.Store, *sqlstore.Store)) {
	s, _ := open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, k := range []string{"flaky", "broken", "hopeless", "panics", "unknown"} {
		if _, _, err := s.Enqueue(ctx, sqlstore.NewJob{Kind: k, MaxAttempts: 3}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	attempts := map[string]int{}
	h := func(ctx context.Context, j *sqlstore.Job) error {
		mu.Lock()
		attempts[j.Kind]++
		a := attempts[j.Kind]
		mu.Unlock()
		switch j.Kind {
		case "flaky":
			if a < 2 {
				return errors.New("registry unavailable (503)")
			}
			return nil
		case "broken":
			return worker.Permanent(errors.New("not an image"))
		case "hopeless":
			return fmt.Errorf("still down (attempt %d)", a)
		case "panics":
			panic("boom")
		}
		return nil
	}
	p := &worker.Pool{Store: s, Handlers: map[string]worker.Handler{"flaky": h, "broken": h, "hopeless": h, "panics": h},
		Poll: 10 * time.Millisecond, Backoff: func(int) time.Duration { return 10 * time.Millisecond }}
	go p.Run(ctx)
	for {
		c, err := s.JobCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c["flaky"][sqlstore.JobCompleted] == 1 && c["broken"][sqlstore.JobFailed] == 1 && c["hopeless"][sqlstore.JobFailed] == 1 &&
			c["panics"][sqlstore.JobFailed] == 1 && c["unknown"][sqlstore.JobFailed] == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("jobs did not settle: %v", c)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	mu.Lock()
	defer mu.Unlock()
	if attempts["flaky"] != 2 || attempts["broken"] != 1 || attempts["hopeless"] != 3 || attempts["panics"] != 1 {
		t.Fatalf("attempts %v", attempts)
	}
	jobs, err := s.Jobs(context.Background(), "hopeless", sqlstore.JobFailed, 10)
	if err != nil || len(jobs) != 1 || jobs[0].Error != "still down (attempt 3)" || jobs[0].Attempt != 3 {
		t.Fatalf("hopeless job: %+v %v", jobs, err)
	}
	jobs, _ = s.Jobs(context.Background(), "panics", "", 10)
	if jobs[0].Error != "internal error: boom" {
		t.Fatalf("panic recorded as %q", jobs[0].Error)
	}
}

func testLease(t *testing.T, open func(*testing.T) (*sqlstore.Store, *sqlstore.Store)) {
	a, b := open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := a.Enqueue(ctx, sqlstore.NewJob{Kind: "work"}); err != nil {
		t.Fatal(err)
	}
	// A worker claims it, then dies: it never renews or finishes.
	dead, err := a.Claim(ctx, "dead", 200*time.Millisecond)
	if err != nil || dead == nil {
		t.Fatal(dead, err)
	}
	if j, _ := b.Claim(ctx, "early", time.Second); j != nil {
		t.Fatal("a leased job was claimed again before its lease ran out")
	}
	ran := make(chan *sqlstore.Job, 1)
	p := &worker.Pool{Store: b, Handlers: map[string]worker.Handler{"work": func(ctx context.Context, j *sqlstore.Job) error {
		ran <- j
		return nil
	}}, Poll: 20 * time.Millisecond, Lease: time.Second}
	go p.Run(ctx)
	select {
	case j := <-ran:
		if j.ID != dead.ID || j.Attempt != 2 {
			t.Fatalf("took over %+v", j)
		}
	case <-ctx.Done():
		t.Fatal("the dead worker's job was never taken over")
	}
	// The dead worker comes back: its completion no longer counts.
	time.Sleep(100 * time.Millisecond)
	if err := a.FinishJob(ctx, dead, sqlstore.JobFailed, "zombie"); !errors.Is(err, sqlstore.ErrLeaseLost) {
		t.Fatalf("a fenced-off worker finished the job: %v", err)
	}
	jobs, _ := a.Jobs(ctx, "work", "", 1)
	if jobs[0].State != sqlstore.JobCompleted {
		t.Fatalf("job %+v", jobs[0])
	}
}

func testUnique(t *testing.T, open func(*testing.T) (*sqlstore.Store, *sqlstore.Store)) {
	s, _ := open(t)
	ctx := context.Background()
	id, ok, err := s.Enqueue(ctx, sqlstore.NewJob{Kind: "rescan", Key: "rescan:r1"})
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if _, ok, err := s.Enqueue(ctx, sqlstore.NewJob{Kind: "rescan", Key: "rescan:r1"}); err != nil || ok {
		t.Fatalf("a second waiting job with the same key: %v %v", ok, err)
	}
	j, err := s.Claim(ctx, "w", time.Minute)
	if err != nil || j == nil || j.ID != id {
		t.Fatal(j, err)
	}
	if _, ok, _ := s.Enqueue(ctx, sqlstore.NewJob{Kind: "rescan", Key: "rescan:r1"}); ok {
		t.Fatal("a job with the key of a running one was enqueued")
	}
	if err := s.FinishJob(ctx, j, sqlstore.JobCompleted, ""); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Enqueue(ctx, sqlstore.NewJob{Kind: "rescan", Key: "rescan:r1"}); err != nil || !ok {
		t.Fatalf("the key of a finished job was refused: %v %v", ok, err)
	}
}
