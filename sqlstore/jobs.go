package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/vigil-project/vigil"
)

// Job states.
const (
	JobAvailable = "available" // waiting for its run_at
	JobRunning   = "running"   // claimed, under a lease its worker renews
	JobCompleted = "completed"
	JobFailed    = "failed" // out of attempts, or failed for good
)

// Job is one unit of durable work. A worker claims it with a lease
// (Claim), renews the lease while it works (Heartbeat) and then completes
// or fails it. A worker that dies stops renewing; once the lease runs out
// the job is claimed again, by any worker. The attempt number fences a
// dead worker that comes back: its heartbeat and completion no longer
// match and change nothing.
type Job struct {
	ID          int64
	Kind        string
	Key         string // the unique key, if any
	Args        []byte // JSON
	State       string
	Attempt     int
	MaxAttempts int
	RunAt       time.Time
	Worker      string
	Error       string
	Created     time.Time
	Finished    time.Time
}

// NewJob describes a job to enqueue.
type NewJob struct {
	Kind string
	// Key, when set, makes the enqueue a no-op while a job with the same
	// key is waiting or running.
	Key         string
	Args        []byte
	MaxAttempts int       // default 5
	RunAt       time.Time // default now
}

// Enqueue adds a job. It reports false, with no error, when a job with the
// same key is already waiting or running.
func (s *Store) Enqueue(ctx context.Context, j NewJob) (int64, bool, error) {
	return s.enqueue(ctx, s.db, j)
}

type execer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) enqueue(ctx context.Context, db execer, j NewJob) (int64, bool, error) {
	if j.Kind == "" {
		return 0, false, fmt.Errorf("sqlstore: enqueue: no kind")
	}
	if j.MaxAttempts <= 0 {
		j.MaxAttempts = 5
	}
	now := s.Now()
	if j.RunAt.IsZero() {
		j.RunAt = now
	}
	var key any
	if j.Key != "" {
		key = j.Key
	}
	if j.Args == nil {
		j.Args = []byte("{}")
	}
	var id int64
	err := db.QueryRowContext(ctx, s.q(`INSERT INTO jobs(kind, unique_key, args, state, attempt, max_attempts, run_at, lease_until, worker, error, created_at)
		VALUES (?, ?, ?, ?, 0, ?, ?, 0, '', '', ?) ON CONFLICT DO NOTHING RETURNING id`),
		j.Kind, key, string(j.Args), JobAvailable, j.MaxAttempts, micros(j.RunAt), micros(now)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("sqlstore: enqueue %s: %w", j.Kind, err)
	}
	return id, true, nil
}

// Claim takes the next job that is due, or whose worker's lease ran out,
// for worker, leased until now+lease. It returns nil when none is due. On
// PostgreSQL concurrent claimers skip each other's rows (SKIP LOCKED); on
// SQLite the claim is one write transaction.
func (s *Store) Claim(ctx context.Context, worker string, lease time.Duration) (*Job, error) {
	now := s.Now()
	skip := ""
	if s.postgres {
		skip = " FOR UPDATE SKIP LOCKED"
	}
	for {
		var j Job
		var key sql.NullString
		var args string
		var runAt, created int64
		err := s.db.QueryRowContext(ctx, s.q(`UPDATE jobs SET state = ?, attempt = attempt + 1, lease_until = ?, worker = ?
			WHERE id = (SELECT id FROM jobs WHERE (state = ? AND run_at <= ?) OR (state = ? AND lease_until < ?) ORDER BY run_at, id LIMIT 1`+skip+`)
			RETURNING id, kind, unique_key, args, state, attempt, max_attempts, run_at, worker, error, created_at`),
			JobRunning, micros(now.Add(lease)), worker, JobAvailable, micros(now), JobRunning, micros(now)).
			Scan(&j.ID, &j.Kind, &key, &args, &j.State, &j.Attempt, &j.MaxAttempts, &runAt, &j.Worker, &j.Error, &created)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("sqlstore: claim: %w", err)
		}
		j.Key, j.Args, j.RunAt, j.Created = key.String, []byte(args), fromMicros(runAt), fromMicros(created)
		if j.Attempt > j.MaxAttempts {
			// Its workers kept dying: give up on it rather than let it
			// take down every worker in turn.
			msg := j.Error
			if msg == "" {
				msg = "its workers stopped before finishing it"
			}
			if err := s.FinishJob(ctx, &j, JobFailed, fmt.Sprintf("gave up after %d attempts: %s", j.MaxAttempts, msg)); err != nil {
				return nil, err
			}
			continue
		}
		return &j, nil
	}
}

// ErrLeaseLost is returned when a job's lease passed to another worker.
var ErrLeaseLost = errors.New("sqlstore: job lease lost to another worker")

// Heartbeat renews a claimed job's lease.
func (s *Store) Heartbeat(ctx context.Context, j *Job, lease time.Duration) error {
	res, err := s.db.ExecContext(ctx, s.q("UPDATE jobs SET lease_until = ? WHERE id = ? AND state = ? AND worker = ? AND attempt = ?"),
		micros(s.Now().Add(lease)), j.ID, JobRunning, j.Worker, j.Attempt)
	if err != nil {
		return fmt.Errorf("sqlstore: heartbeat: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrLeaseLost
	}
	return nil
}

// FinishJob completes or fails a claimed job for good.
func (s *Store) FinishJob(ctx context.Context, j *Job, state, errText string) error {
	res, err := s.db.ExecContext(ctx, s.q("UPDATE jobs SET state = ?, error = ?, finished_at = ?, lease_until = 0 WHERE id = ? AND state = ? AND worker = ? AND attempt = ?"),
		state, errText, micros(s.Now()), j.ID, JobRunning, j.Worker, j.Attempt)
	if err != nil {
		return fmt.Errorf("sqlstore: finish job: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrLeaseLost
	}
	return nil
}

// RetryJob puts a claimed job back, to run again at runAt.
func (s *Store) RetryJob(ctx context.Context, j *Job, runAt time.Time, errText string) error {
	res, err := s.db.ExecContext(ctx, s.q("UPDATE jobs SET state = ?, error = ?, run_at = ?, lease_until = 0 WHERE id = ? AND state = ? AND worker = ? AND attempt = ?"),
		JobAvailable, errText, micros(runAt), j.ID, JobRunning, j.Worker, j.Attempt)
	if err != nil {
		return fmt.Errorf("sqlstore: retry job: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrLeaseLost
	}
	return nil
}

// ReleaseJob puts back a job its worker stopped (a shutdown), to run
// again now; the interrupted attempt does not count.
func (s *Store) ReleaseJob(ctx context.Context, j *Job) error {
	res, err := s.db.ExecContext(ctx, s.q("UPDATE jobs SET state = ?, attempt = attempt - 1, run_at = ?, lease_until = 0 WHERE id = ? AND state = ? AND worker = ? AND attempt = ?"),
		JobAvailable, micros(s.Now()), j.ID, JobRunning, j.Worker, j.Attempt)
	if err != nil {
		return fmt.Errorf("sqlstore: release job: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrLeaseLost
	}
	return nil
}

// JobCounts counts jobs by kind and state.
func (s *Store) JobCounts(ctx context.Context) (map[string]map[string]int, error) {
	rows, err := s.rdb.QueryContext(ctx, "SELECT kind, state, count(*) FROM jobs GROUP BY kind, state")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]map[string]int{}
	for rows.Next() {
		var k, st string
		var n int
		if err := rows.Scan(&k, &st, &n); err != nil {
			return nil, err
		}
		if out[k] == nil {
			out[k] = map[string]int{}
		}
		out[k][st] = n
	}
	return out, rows.Err()
}

// Jobs lists jobs, newest first, optionally of one kind and state.
func (s *Store) Jobs(ctx context.Context, kind, state string, limit int) ([]Job, error) {
	where, args := "1 = 1", []any{}
	if kind != "" {
		where += " AND kind = ?"
		args = append(args, kind)
	}
	if state != "" {
		where += " AND state = ?"
		args = append(args, state)
	}
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT id, kind, unique_key, args, state, attempt, max_attempts, run_at, worker, error, created_at, finished_at
		FROM jobs WHERE `+where+` ORDER BY id DESC LIMIT `+fmt.Sprint(limit)), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Job
	for rows.Next() {
		var j Job
		var key sql.NullString
		var args string
		var runAt, created int64
		var finished sql.NullInt64
		if err := rows.Scan(&j.ID, &j.Kind, &key, &args, &j.State, &j.Attempt, &j.MaxAttempts, &runAt, &j.Worker, &j.Error, &created, &finished); err != nil {
			return nil, err
		}
		j.Key, j.Args, j.RunAt, j.Created = key.String, []byte(args), fromMicros(runAt), fromMicros(created)
		if finished.Valid {
			j.Finished = fromMicros(finished.Int64)
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// PurgeJobs deletes finished jobs that finished before a time.
func (s *Store) PurgeJobs(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.q("DELETE FROM jobs WHERE state IN (?, ?) AND finished_at < ?"), JobCompleted, JobFailed, micros(before))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// uploadChunk is the size of the rows an upload is kept in.
const uploadChunk = 4 << 20

// NewUploadID names a new upload.
func NewUploadID() string { return "up_" + newID() }

// PutUpload keeps an upload in the store until its scan job reads it, so
// that a worker on any machine can. It returns the bytes kept.
func (s *Store) PutUpload(ctx context.Context, id string, r io.Reader) (int64, error) {
	buf := make([]byte, uploadChunk)
	var total int64
	for seq := 0; ; seq++ {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if _, err := s.db.ExecContext(ctx, s.q("INSERT INTO uploads(id, seq, data) VALUES (?, ?, ?)"), id, seq, buf[:n]); err != nil {
				s.DeleteUpload(context.WithoutCancel(ctx), id)
				return total, fmt.Errorf("sqlstore: upload: %w", err)
			}
			total += int64(n)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return total, nil
		}
		if err != nil {
			s.DeleteUpload(context.WithoutCancel(ctx), id)
			return total, err
		}
	}
}

// ReadUpload writes a kept upload to w.
func (s *Store) ReadUpload(ctx context.Context, id string, w io.Writer) (int64, error) {
	var total int64
	for seq := 0; ; seq++ {
		var data []byte
		err := s.db.QueryRowContext(ctx, s.q("SELECT data FROM uploads WHERE id = ? AND seq = ?"), id, seq).Scan(&data)
		if errors.Is(err, sql.ErrNoRows) {
			if seq == 0 {
				return 0, vigil.Errorf(vigil.ENOTFOUND, "upload %s is gone", id)
			}
			return total, nil
		}
		if err != nil {
			return total, fmt.Errorf("sqlstore: upload: %w", err)
		}
		n, err := w.Write(data)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
}

// DeleteUpload drops a kept upload.
func (s *Store) DeleteUpload(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, s.q("DELETE FROM uploads WHERE id = ?"), id)
	return err
}
