// Package worker runs the durable jobs kept in the store: it claims due
// jobs under a lease, renews the lease while a handler works, and
// completes, retries with backoff or fails each job. Any number of pools,
// in any number of processes, share one store; a job whose worker died is
// claimed again once its lease runs out. Handlers must be idempotent: a
// job may run again after its work was done but before its completion was
// recorded.
package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/sqlstore"
)

// Handler does one job's work.
type Handler func(ctx context.Context, j *sqlstore.Job) error

// permanent marks an error that retrying cannot cure.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks err as one that retrying cannot cure: the job fails at
// once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// IsPermanent reports whether a job that failed with err should not be
// retried: errors marked Permanent, and Vigil's invalid-input, not-found
// and forbidden errors.
func IsPermanent(err error) bool {
	var p permanent
	if errors.As(err, &p) {
		return true
	}
	var e *vigil.Error
	if errors.As(err, &e) {
		switch e.Code {
		case vigil.EINVALID, vigil.ENOTFOUND, vigil.EFORBIDDEN:
			return true
		}
	}
	return false
}

// Pool runs jobs.
type Pool struct {
	Store    *sqlstore.Store
	Handlers map[string]Handler
	// Concurrency is how many jobs run at once (default 2).
	Concurrency int
	// Lease is how long a claim lasts without renewal (default 30 s); it
	// is renewed every third of it. A dead worker's job waits this long
	// before another worker takes it.
	Lease time.Duration
	// Poll is how often an idle pool looks for due jobs (default 500 ms);
	// Wake makes it look at once.
	Poll time.Duration
	// Backoff is the delay before a failed job's next attempt (default:
	// 5 s doubling per attempt, at most 10 min, with ±20 % jitter).
	Backoff func(attempt int) time.Duration
	// Name identifies this pool's claims (default host-pid-random).
	Name string
	Log  *slog.Logger

	wake chan struct{}
	once sync.Once

	Completed, Retried, Failed atomic.Int64
}

func (p *Pool) init() {
	p.once.Do(func() {
		if p.Concurrency <= 0 {
			p.Concurrency = 2
		}
		if p.Lease <= 0 {
			p.Lease = 30 * time.Second
		}
		if p.Poll <= 0 {
			p.Poll = 500 * time.Millisecond
		}
		if p.Backoff == nil {
			p.Backoff = DefaultBackoff
		}
		if p.Name == "" {
			host, _ := os.Hostname()
			p.Name = fmt.Sprintf("%s-%d-%04x", host, os.Getpid(), rand.Uint32()&0xffff)
		}
		if p.Log == nil {
			p.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
		}
		p.wake = make(chan struct{}, 1)
	})
}

// DefaultBackoff waits 5 s before the second attempt, doubling each time up
// to 10 minutes, with ±20 % jitter so that failed jobs do not return in
// step.
func DefaultBackoff(attempt int) time.Duration {
	d := 5 * time.Second << min(attempt-1, 10)
	d = min(d, 10*time.Minute)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// Wake makes an idle pool look for jobs now (after an enqueue in this
// process).
func (p *Pool) Wake() {
	p.init()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run claims and runs jobs until ctx ends, then waits for the jobs it runs
// to stop. A job stopped by the end of ctx is put back to run again.
func (p *Pool) Run(ctx context.Context) error {
	p.init()
	slots := make(chan struct{}, p.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		// Wait for a free slot.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		j, err := p.Store.Claim(ctx, p.Name, p.Lease)
		if err != nil || j == nil {
			<-slots
			if err != nil && ctx.Err() == nil {
				p.Log.Warn("claiming a job failed", "err", err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-p.wake:
			case <-time.After(p.Poll):
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			p.run(ctx, j)
		}()
	}
}

// run runs one claimed job under its lease.
func (p *Pool) run(ctx context.Context, j *sqlstore.Job) {
	jctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// Renew the lease; losing it stops the work.
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(p.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := p.Store.Heartbeat(context.WithoutCancel(jctx), j, p.Lease); errors.Is(err, sqlstore.ErrLeaseLost) {
					cancel(err)
					return
				}
			}
		}
	}()
	log := p.Log.With("job", j.ID, "kind", j.Kind, "attempt", j.Attempt)
	h := p.Handlers[j.Kind]
	var err error
	if h == nil {
		err = Permanent(fmt.Errorf("no handler for jobs of kind %q", j.Kind))
	} else {
		err = safely(jctx, h, j)
	}
	bg := context.WithoutCancel(ctx)
	switch {
	case context.Cause(jctx) == sqlstore.ErrLeaseLost:
		log.Warn("job lease lost; another worker has it")
	case err == nil:
		if err := p.Store.FinishJob(bg, j, sqlstore.JobCompleted, ""); err != nil {
			log.Warn("recording a completed job failed", "err", err)
		}
		p.Completed.Add(1)
	case ctx.Err() != nil:
		// Shutting down: put it back for whoever runs next.
		if err := p.Store.ReleaseJob(bg, j); err != nil {
			log.Warn("putting back an interrupted job failed", "err", err)
		}
	case IsPermanent(err) || j.Attempt >= j.MaxAttempts:
		log.Warn("job failed", "err", err)
		if err := p.Store.FinishJob(bg, j, sqlstore.JobFailed, err.Error()); err != nil {
			log.Warn("recording a failed job failed", "err", err)
		}
		p.Failed.Add(1)
	default:
		next := p.Backoff(j.Attempt)
		log.Info("job failed; retrying", "err", err, "in", next.Round(time.Millisecond))
		if err := p.Store.RetryJob(bg, j, p.Store.Now().Add(next), err.Error()); err != nil {
			log.Warn("scheduling a retry failed", "err", err)
		}
		p.Retried.Add(1)
	}
}

// safely runs a handler, turning a panic into a permanent failure rather
// than a dead worker and a job that kills every worker in turn.
func safely(ctx context.Context, h Handler, j *sqlstore.Job) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = Permanent(fmt.Errorf("internal error: %v", r))
		}
	}()
	return h(ctx, j)
}
