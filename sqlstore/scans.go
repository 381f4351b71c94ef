package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/vigil-project/vigil"
)

// Scan states.
const (
	ScanQueued  = "QUEUED"
	ScanRunning = "RUNNING"
	ScanDone    = "DONE"
	ScanFailed  = "FAILED"
)

// Scan is a submitted piece of work: an archive or a registry image to
// read, match and store.
type Scan struct {
	ID           string `json:"id"`
	Account      string `json:"account"`
	Status       string `json:"status"`
	Target       string `json:"target"`
	ResourceType string `json:"resourceType"`
	ResourceName string `json:"resourceName"`
	ResourceID   string `json:"resourceId,omitempty"`
	Findings     int    `json:"findings"`
	Error        string `json:"error,omitempty"`
	Created      int64  `json:"-"`
	AccountID    int64  `json:"-"`
}

// CreateScan records a queued scan for the principal's account (or a
// member's) and, in the same transaction, enqueues the job that runs it
// (job builds it from the scan), so that a scan is never recorded without
// its job or run without its record.
func (s *Store) CreateScan(ctx context.Context, p vigil.Principal, account, target, typ, name string, job func(*Scan) NewJob) (*Scan, error) {
	accountID, accountName, err := s.accountFor(ctx, p, account)
	if err != nil {
		return nil, err
	}
	sc := &Scan{ID: newID(), Account: accountName, AccountID: accountID, Status: ScanQueued, Target: target, ResourceType: typ, ResourceName: name}
	now := micros(s.Now())
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO scans(id, account_id, status, target, resource_type, resource_name, resource_id, findings, error, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, '', 0, '', ?, ?)`), sc.ID, accountID, sc.Status, target, typ, name, now, now); err != nil {
		return nil, fmt.Errorf("sqlstore: scan: %w", err)
	}
	if job != nil {
		if _, _, err := s.enqueue(ctx, tx, job(sc)); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlstore: scan: %w", err)
	}
	return sc, nil
}

// UpdateScan records a scan's progress.
func (s *Store) UpdateScan(ctx context.Context, id, status, resourceID string, findings int, errText string) error {
	_, err := s.db.ExecContext(ctx, s.q("UPDATE scans SET status = ?, resource_id = ?, findings = ?, error = ?, updated_at = ? WHERE id = ?"),
		status, resourceID, findings, errText, micros(s.Now()), id)
	return err
}

// GetScan returns a scan the principal may see.
func (s *Store) GetScan(ctx context.Context, p vigil.Principal, id string) (*Scan, error) {
	var sc Scan
	err := s.rdb.QueryRowContext(ctx, s.q(`SELECT sc.id, a.name, sc.status, sc.target, sc.resource_type, sc.resource_name, sc.resource_id, sc.findings, sc.error
		FROM scans sc JOIN accounts a ON a.id = sc.account_id WHERE sc.id = ? AND sc.account_id IN (`+placeholders(len(p.Visible))+")"),
		append([]any{id}, ids(p.Visible)...)...).Scan(&sc.ID, &sc.Account, &sc.Status, &sc.Target, &sc.ResourceType, &sc.ResourceName, &sc.ResourceID, &sc.Findings, &sc.Error)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vigil.Errorf(vigil.ENOTFOUND, "scan %s not found", id)
	}
	return &sc, err
}

func contains(list []int64, v int64) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
