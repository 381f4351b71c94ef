package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/reconcile"
	"github.com/vigil-project/vigil/vulndb"
)

// deleted is the scan status of a deleted resource's row, kept for its
// closed findings.
const deleted = "DELETED"

// ExcludeTag is the tag key that excludes a resource from scanning.
func (s *Store) ExcludeTag() string { return s.policy().ExcludeTag }

func (s *Store) policy() vigil.CoveragePolicy {
	p := s.Policy
	if p.ExcludeTag == "" {
		p.ExcludeTag = vigil.DefaultExcludeTag
	}
	if p.StaleAfter <= 0 {
		p.StaleAfter = 7 * 24 * time.Hour
	}
	return p
}

// reasonExpr is the SQL of a resource's (r) coverage reason, empty when
// it is under continuous scanning, with its arguments: the exclusion tag
// first, then the recorded reason (pending, unsupported, failed), then the
// reasons that time gives (a host's stale inventory, an image's expired
// eligibility).
func (s *Store) reasonExpr() (string, []any) {
	p := s.policy()
	now := s.Now()
	expr := `CASE WHEN EXISTS (SELECT 1 FROM resource_tags x WHERE x.resource_id = r.id AND x.key = ?) THEN '` + vigil.ReasonExcludedByTag + `'
		WHEN r.scan_reason <> '' THEN r.scan_reason
		WHEN r.type = 'host' AND r.last_scanned < ? THEN '` + vigil.ReasonStaleInventory + `'`
	args := []any{p.ExcludeTag, micros(now.Add(-p.StaleAfter))}
	if p.Eligibility > 0 {
		expr += `
		WHEN r.type = 'image' AND r.last_activity < ? THEN '` + vigil.ReasonEligibilityExpired + `'`
		args = append(args, micros(now.Add(-p.Eligibility)))
	}
	return expr + " ELSE '' END", args
}

// PendingResource records a resource that a scan is about to read, so
// that coverage shows it PENDING_INITIAL_SCAN until its first scan ends;
// a known resource is left as it is. It returns the resource's id.
func (s *Store) PendingResource(ctx context.Context, accountID int64, typ, name, sourceRef, registryID string) (string, error) {
	if !slices.Contains(vigil.ResourceTypes, typ) {
		return "", vigil.Errorf(vigil.EINVALID, "resource type %q: want host, image or function", typ)
	}
	if strings.TrimSpace(name) == "" || len(name) > 512 {
		return "", vigil.Errorf(vigil.EINVALID, "resource name: want 1 to 512 characters")
	}
	now := micros(s.Now())
	if _, err := s.db.ExecContext(ctx, s.q(`INSERT INTO resources(id, account_id, type, name, tags, details, first_seen, last_scanned, inventory_digest,
		scan_status, scan_reason, scan_message, source_ref, last_activity, registry_id) VALUES (?, ?, ?, ?, '{}', '{}', ?, 0, '', ?, ?, '', ?, ?, ?)
		ON CONFLICT (account_id, type, name) DO NOTHING`),
		newID(), accountID, typ, name, now, vigil.ScanInactive, vigil.ReasonPendingInitialScan, sourceRef, now, registryID); err != nil {
		return "", fmt.Errorf("sqlstore: resource: %w", err)
	}
	var id string
	err := s.db.QueryRowContext(ctx, s.q("SELECT id FROM resources WHERE account_id = ? AND type = ? AND name = ?"), accountID, typ, name).Scan(&id)
	if err != nil {
		return "", fmt.Errorf("sqlstore: resource: %w", err)
	}
	// A deleted resource scanned again is pending again.
	_, err = s.db.ExecContext(ctx, s.q("UPDATE resources SET scan_status = ?, scan_reason = ?, first_seen = ? WHERE id = ? AND scan_status = ?"),
		vigil.ScanInactive, vigil.ReasonPendingInitialScan, now, id, deleted)
	if err == nil && registryID != "" {
		_, err = s.db.ExecContext(ctx, s.q("UPDATE resources SET registry_id = ? WHERE id = ?"), registryID, id)
	}
	return id, err
}

// ScanFailed records that a resource's scan failed, with the reason
// (SCAN_FAILED or UNSUPPORTED_MEDIA_TYPE) and the error; its findings are
// left as the last good scan made them.
func (s *Store) ScanFailed(ctx context.Context, resourceID, reason, message string) error {
	_, err := s.db.ExecContext(ctx, s.q("UPDATE resources SET scan_status = ?, scan_reason = ?, scan_message = ? WHERE id = ? AND scan_status <> ?"),
		vigil.ScanInactive, reason, message, resourceID, deleted)
	return err
}

// RecordActivity notes a push or pull of a resource (an image), which
// renews its scan eligibility.
func (s *Store) RecordActivity(ctx context.Context, resourceID string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q("UPDATE resources SET last_activity = ? WHERE id = ? AND last_activity < ?"), micros(at), resourceID, micros(at))
	return err
}

// ResourceByName returns the id of an account's resource, or "" when
// there is none.
func (s *Store) ResourceByName(ctx context.Context, accountID int64, typ, name string) (string, error) {
	var id string
	err := s.db.QueryRowContext(ctx, s.q("SELECT id FROM resources WHERE account_id = ? AND type = ? AND name = ? AND scan_status <> ?"), accountID, typ, name, deleted).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, err
}

// StoredInventory is a resource's kept inventory, what a re-evaluation
// matches again.
type StoredInventory struct {
	ResourceID string
	AccountID  int64
	Type, Name string
	SourceRef  string
	// Reason is the resource's coverage reason; empty when it is under
	// continuous scanning.
	Reason string
	// MatchedRevision is the database revision its findings were last
	// matched against.
	MatchedRevision int64
	Inventory       *vigil.Inventory
}

// Inventories reads the kept inventories of resources (those without one
// are left out), with their coverage reasons.
func (s *Store) Inventories(ctx context.Context, resourceIDs []string) ([]StoredInventory, error) {
	if len(resourceIDs) == 0 {
		return nil, nil
	}
	reason, rargs := s.reasonExpr()
	args := append(rargs, anys(resourceIDs)...)
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT r.id, r.account_id, r.type, r.name, r.source_ref, `+reason+`, r.matched_revision, i.body
		FROM resources r JOIN inventories i ON i.resource_id = r.id WHERE r.id IN (`+placeholders(len(resourceIDs))+`) AND r.scan_status <> '`+deleted+`' ORDER BY r.id`), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: inventories: %w", err)
	}
	defer rows.Close()
	var out []StoredInventory
	for rows.Next() {
		var si StoredInventory
		var body []byte
		if err := rows.Scan(&si.ResourceID, &si.AccountID, &si.Type, &si.Name, &si.SourceRef, &si.Reason, &si.MatchedRevision, &body); err != nil {
			return nil, err
		}
		si.Inventory = new(vigil.Inventory)
		if err := json.Unmarshal(body, si.Inventory); err != nil {
			return nil, fmt.Errorf("sqlstore: resource %s inventory: %w", si.ResourceID, err)
		}
		out = append(out, si)
	}
	return out, rows.Err()
}

func anys[T any](v []T) []any {
	out := make([]any, len(v))
	for i, x := range v {
		out[i] = x
	}
	return out
}

// RematchSet lists the resources a database update must match again, in
// id order: those whose inventory holds a package key that changed, and
// those with an open finding of a vulnerability whose record changed
// (severity, KEV, EPSS), and those matched against a revision before
// from. all selects every resource with an inventory.
func (s *Store) RematchSet(ctx context.Context, keys []vulndb.PackageRef, vulns []string, all bool, from int64) ([]string, error) {
	set := map[string]bool{}
	add := func(query string, args []any) error {
		ids, err := strings1(s.rdb.QueryContext(ctx, s.q(query), args...))
		if err != nil {
			return fmt.Errorf("sqlstore: rematch set: %w", err)
		}
		for _, id := range ids {
			set[id] = true
		}
		return nil
	}
	if all {
		if err := add("SELECT id FROM resources WHERE inventory_digest <> '' AND scan_status <> '"+deleted+"'", nil); err != nil {
			return nil, err
		}
	} else {
		for chunk := range slices.Chunk(keys, 200) {
			var conds []string
			var args []any
			for _, k := range chunk {
				conds = append(conds, "(ecosystem = ? AND package = ?)")
				args = append(args, k.Ecosystem, k.Package)
			}
			if err := add("SELECT DISTINCT resource_id FROM inventory_packages WHERE "+strings.Join(conds, " OR "), args); err != nil {
				return nil, err
			}
		}
		// Resources left behind an earlier revision (stored while it was
		// being re-evaluated) catch up too.
		if err := add("SELECT id FROM resources WHERE matched_revision < ? AND inventory_digest <> '' AND scan_status <> '"+deleted+"'", []any{from}); err != nil {
			return nil, err
		}
		for chunk := range slices.Chunk(vulns, 500) {
			if err := add("SELECT DISTINCT resource_id FROM findings WHERE vuln_id IN ("+placeholders(len(chunk))+") AND status <> 'CLOSED'", anys(chunk)); err != nil {
				return nil, err
			}
		}
	}
	out := make([]string, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	slices.Sort(out)
	return out, nil
}

// Rematched is what matching a stored inventory again did.
type Rematched struct {
	// Skipped: the resource had already been matched against this or a
	// later revision, or is gone.
	Skipped bool
	Events  []reconcile.Event
}

// RematchItem is one resource's new matching.
type RematchItem struct {
	ResourceID string
	// InventoryDigest is the digest of the inventory matched: a resource
	// scanned again since (its inventory is another) is skipped, and
	// caught up with from its new inventory. Empty: not checked.
	InventoryDigest string
	Matches         []vigil.Finding
	// Unsupported is as in ResourceSpec.
	Unsupported, Message string
	// digests are the matches' reconcile.MatchDigest, in order: worked
	// out before the write transaction, which holds SQLite's one writer.
	digests []string
}

// Rematch reconciles one resource's findings with a new matching of its
// kept inventory (see RematchBatch).
func (s *Store) Rematch(ctx context.Context, resourceID string, matches []vigil.Finding, dbRevision int64, unsupported, message string, force bool) (*Rematched, error) {
	out, err := s.RematchBatch(ctx, []RematchItem{{ResourceID: resourceID, Matches: matches, Unsupported: unsupported, Message: message}}, dbRevision, force)
	if err != nil {
		return nil, err
	}
	return &out[0], nil
}

// RematchBatch reconciles resources' findings with new matchings of
// their kept inventories against database revision dbRevision, in one
// transaction, without reading the resources again or changing when they
// were scanned. A resource already matched against dbRevision or later
// is skipped (unless force: an on-demand rescan), so running a
// re-evaluation twice changes nothing. One transaction for many
// resources: most change nothing, and a commit each would cost more than
// their matching.
func (s *Store) RematchBatch(ctx context.Context, items []RematchItem, dbRevision int64, force bool) ([]Rematched, error) {
	items = slices.Clone(items)
	for i := range items {
		items[i].digests = make([]string, len(items[i].Matches))
		for j, m := range items[i].Matches {
			items[i].digests[j] = reconcile.MatchDigest(m)
		}
	}
	b := &rematchBatch{deltas: aggDelta{}, usage: map[usageKey]int{}, now: s.Now()}
	if s.rdb != s.db {
		// Only a head start: what it could not read, prefetch reads.
		if early, err := s.prefetchEarly(ctx, items); err == nil {
			b.early = early
		}
		if afterPrefetchEarly != nil {
			afterPrefetchEarly()
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	out := make([]Rematched, len(items))
	wrote := false
	if err := s.prefetch(ctx, tx, b, items); err != nil {
		return nil, err
	}
	for i, it := range items {
		r, w, err := s.rematchTx(ctx, tx, b, it, dbRevision, force)
		if err != nil {
			return nil, err
		}
		out[i], wrote = r, wrote || w
	}
	// The shared rows (aggregate counts, usage) last, in one order: the
	// locks they take are held only for the commit, and two workers'
	// batches do not wait on each other for their whole length.
	if err := s.flushDeltas(ctx, tx, b.deltas); err != nil {
		return nil, err
	}
	ukeys := make([]usageKey, 0, len(b.usage))
	for k := range b.usage {
		ukeys = append(ukeys, k)
	}
	slices.SortFunc(ukeys, func(x, y usageKey) int {
		return cmp.Or(cmp.Compare(x.account, y.account), strings.Compare(x.typ, y.typ))
	})
	for _, k := range ukeys {
		if err := s.countUsageN(ctx, tx, k.account, k.typ, b.now, 0, b.usage[k]); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlstore: commit: %w", err)
	}
	if wrote {
		s.wrote(ctx)
	}
	return out, nil
}

type usageKey struct {
	account int64
	typ     string
}

// rematchBatch collects what a batch's resources change in shared rows,
// and what was read for all of them at once.
type rematchBatch struct {
	deltas    aggDelta
	usage     map[usageKey]int
	now       time.Time
	resources map[string]*batchResource
	// early is what prefetchEarly read.
	early map[string]*batchResource
}

type batchResource struct {
	accountID, matched                         int64
	account, typ, name, digest, status, reason string
	message                                    string
	// findingsRev counts the writes of the resource's findings (all but
	// a purge of closed findings and the refresh of a digest, which
	// change no rematch's outcome).
	findingsRev int64
	findings    map[string]findingDigest
}

// same says whether two readings of a resource's row saw the same
// findings.
func (r *batchResource) same(o *batchResource) bool {
	return r.findingsRev == o.findingsRev && r.digest == o.digest && r.status == o.status && r.matched == o.matched
}

type findingDigest struct{ status, digest string }

// afterPrefetchEarly, set only by tests, runs between the early read of a
// rematch batch and its write transaction.
var afterPrefetchEarly func()

// querier is a transaction or a pool.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// prefetch reads the batch's resources (locking their rows, in id order,
// on PostgreSQL) and the digests of their findings. On SQLite the digests,
// most of the reading, are read before the write transaction began, on a
// reader connection, and here only the resources' rows: a resource whose
// row changed since has its digests read again.
func (s *Store) prefetch(ctx context.Context, tx *sql.Tx, b *rematchBatch, items []RematchItem) error {
	ids := batchIDs(items)
	var err error
	if b.resources, err = s.batchResources(ctx, tx, ids, s.postgres); err != nil {
		return err
	}
	var stale []string
	for _, id := range ids {
		r := b.resources[id]
		if r == nil {
			continue
		}
		if o := b.early[id]; o != nil && o.same(r) {
			r.findings = o.findings
		} else {
			stale = append(stale, id)
		}
	}
	return s.batchDigests(ctx, tx, b.resources, stale)
}

// batchIDs are the items' resources, in id order, once each.
func batchIDs(items []RematchItem) []string {
	ids := make([]string, 0, len(items))
	for _, it := range items {
		ids = append(ids, it.ResourceID)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// prefetchEarly reads, in one read transaction on a reader connection,
// what prefetch would (see there).
func (s *Store) prefetchEarly(ctx context.Context, items []RematchItem) (map[string]*batchResource, error) {
	ids := batchIDs(items)
	tx, err := s.rdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	out, err := s.batchResources(ctx, tx, ids, false)
	if err != nil {
		return nil, err
	}
	return out, s.batchDigests(ctx, tx, out, ids)
}

// batchResources reads resources' rows, locking them if lock.
func (s *Store) batchResources(ctx context.Context, q querier, ids []string, lock bool) (map[string]*batchResource, error) {
	out := map[string]*batchResource{}
	forUpdate := ""
	if lock {
		forUpdate = " FOR UPDATE OF r"
	}
	for chunk := range slices.Chunk(ids, 500) {
		rows, err := q.QueryContext(ctx, s.q(`SELECT r.id, r.account_id, a.name, r.type, r.name, r.inventory_digest, r.scan_status, r.scan_reason, r.scan_message, r.matched_revision, r.findings_rev
			FROM resources r JOIN accounts a ON a.id = r.account_id WHERE r.id IN (`+placeholders(len(chunk))+`) ORDER BY r.id`+forUpdate), anys(chunk)...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id string
			r := &batchResource{findings: map[string]findingDigest{}}
			if err := rows.Scan(&id, &r.accountID, &r.account, &r.typ, &r.name, &r.digest, &r.status, &r.reason, &r.message, &r.matched, &r.findingsRev); err != nil {
				rows.Close()
				return nil, err
			}
			out[id] = r
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// batchDigests reads the digests of the findings of resources ids into
// their entries in rs.
func (s *Store) batchDigests(ctx context.Context, q querier, rs map[string]*batchResource, ids []string) error {
	for chunk := range slices.Chunk(ids, 500) {
		rows, err := q.QueryContext(ctx, s.q("SELECT resource_id, id, status, match_digest FROM findings WHERE resource_id IN ("+placeholders(len(chunk))+")"), anys(chunk)...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var rid, id string
			var f findingDigest
			if err := rows.Scan(&rid, &id, &f.status, &f.digest); err != nil {
				rows.Close()
				return err
			}
			if r := rs[rid]; r != nil {
				r.findings[id] = f
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) rematchTx(ctx context.Context, tx *sql.Tx, b *rematchBatch, it RematchItem, dbRevision int64, force bool) (Rematched, bool, error) {
	resourceID, matches, unsupported, message := it.ResourceID, it.Matches, it.Unsupported, it.Message
	br := b.resources[resourceID]
	if br == nil || br.digest == "" || br.status == deleted || !force && br.matched >= dbRevision || it.InventoryDigest != "" && it.InventoryDigest != br.digest {
		return Rematched{Skipped: true}, false, nil
	}
	// Marked done, so that the same resource twice in a batch is matched
	// once.
	br.matched = dbRevision
	accountID, account, typ, name, status, reason := br.accountID, br.account, br.typ, br.name, br.status, br.reason
	stored, changed, err := s.changedOnly(ctx, tx, account, resourceID, br.findings, matches, it.digests)
	if err != nil {
		return Rematched{}, false, err
	}
	now := s.Now()
	res := reconcile.Reconcile(reconcile.Input{Account: account, Resource: resourceID, Stored: stored, Matches: changed.matches, DBRevision: dbRevision, Now: now, Rematch: true})
	b.deltas.add(accountID, typ, name, byID(stored), res.Write)
	if err := s.writeFindings(ctx, tx, accountID, res); err != nil {
		return Rematched{}, false, err
	}
	// Findings read whole but found unchanged (EPSS drift within the
	// threshold; rows from before digests were kept) get the new digest,
	// so that the next re-evaluation does not read them again.
	written := map[string]bool{}
	for _, w := range res.Write {
		written[w.ID] = true
	}
	for i, m := range changed.matches {
		id := reconcile.FindingID(account, resourceID, m.Vulnerability.ID)
		if written[id] || m.Suppressed != nil {
			continue
		}
		if _, err := tx.ExecContext(ctx, s.q("UPDATE findings SET match_digest = ? WHERE id = ? AND status = ?"), changed.digests[i], id, reconcile.Active); err != nil {
			return Rematched{}, false, err
		}
	}
	// Only the matching's own verdict changes the coverage here: a failed
	// scan stays failed until a scan succeeds.
	newStatus, newReason, newMessage := vigil.ScanActive, "", ""
	if unsupported != "" {
		newStatus, newReason, newMessage = vigil.ScanInactive, unsupported, message
	}
	if reason != "" && reason != vigil.ReasonUnsupportedOS {
		newStatus, newReason, newMessage = status, reason, br.message
	}
	if _, err := tx.ExecContext(ctx, s.q("UPDATE resources SET matched_revision = ?, matched_at = ?, scan_status = ?, scan_reason = ?, scan_message = ? WHERE id = ?"),
		dbRevision, micros(now), newStatus, newReason, newMessage, resourceID); err != nil {
		return Rematched{}, false, err
	}
	b.usage[usageKey{accountID, typ}]++
	return Rematched{Events: res.Events}, len(res.Write) > 0, nil
}

// countUsage adds one scan or rematch to the month's usage.
func (s *Store) countUsage(ctx context.Context, tx *sql.Tx, accountID int64, typ string, at time.Time, column string) error {
	if column == "scans" {
		return s.countUsageN(ctx, tx, accountID, typ, at, 1, 0)
	}
	return s.countUsageN(ctx, tx, accountID, typ, at, 0, 1)
}

// countUsageN adds scans and rematches to the month's usage.
func (s *Store) countUsageN(ctx context.Context, tx *sql.Tx, accountID int64, typ string, at time.Time, scans, rematches int) error {
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO usage_counts(account_id, resource_type, month, scans, rematches) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (account_id, resource_type, month) DO UPDATE SET scans = usage_counts.scans + excluded.scans, rematches = usage_counts.rematches + excluded.rematches`),
		accountID, typ, at.UTC().Format("2006-01"), scans, rematches)
	if err != nil {
		return fmt.Errorf("sqlstore: usage: %w", err)
	}
	return nil
}

// CoverageReason returns a resource's coverage reason: empty when it is
// under continuous scanning.
func (s *Store) CoverageReason(ctx context.Context, resourceID string) (string, error) {
	reason, args := s.reasonExpr()
	var out string
	err := s.rdb.QueryRowContext(ctx, s.q("SELECT "+reason+" FROM resources r WHERE r.id = ?"), append(args, resourceID)...).Scan(&out)
	if errors.Is(err, sql.ErrNoRows) {
		return "", vigil.Errorf(vigil.ENOTFOUND, "resource %s not found", resourceID)
	}
	return out, err
}

// ResourceSource says how to read a resource again: its account, type,
// name, source reference (empty when Vigil cannot read it itself) and
// registry.
func (s *Store) ResourceSource(ctx context.Context, p *vigil.Principal, resourceID string) (accountID int64, typ, name, sourceRef, registryID string, err error) {
	err = s.db.QueryRowContext(ctx, s.q("SELECT account_id, type, name, source_ref, registry_id FROM resources WHERE id = ? AND scan_status <> ?"), resourceID, deleted).
		Scan(&accountID, &typ, &name, &sourceRef, &registryID)
	if errors.Is(err, sql.ErrNoRows) || err == nil && p != nil && !contains(p.Visible, accountID) {
		return 0, "", "", "", "", vigil.Errorf(vigil.ENOTFOUND, "resource %s not found", resourceID)
	}
	return
}

// CoverageFilter selects coverage rows. Empty fields select everything.
type CoverageFilter struct {
	Type       string
	ScanStatus string // ACTIVE or INACTIVE
	Reason     string
	Tags       map[string]string
	Limit      int
	Cursor     string
}

// Coverage lists whether each resource the principal may see is under
// continuous scanning, and why not, by type and name, a page at a time.
func (s *Store) Coverage(ctx context.Context, p vigil.Principal, f CoverageFilter) ([]vigil.Coverage, string, error) {
	if p.Role == vigil.RoleAgent {
		return nil, "", vigil.Errorf(vigil.EFORBIDDEN, "an agent key cannot read coverage")
	}
	if f.Type != "" && !slices.Contains(vigil.ResourceTypes, f.Type) {
		return nil, "", vigil.Errorf(vigil.EINVALID, "resourceType %q: want host, image or function", f.Type)
	}
	if f.ScanStatus != "" && f.ScanStatus != vigil.ScanActive && f.ScanStatus != vigil.ScanInactive {
		return nil, "", vigil.Errorf(vigil.EINVALID, "scanStatus %q: want ACTIVE or INACTIVE", f.ScanStatus)
	}
	if f.Reason != "" && !slices.Contains(vigil.CoverageReasons, f.Reason) {
		return nil, "", vigil.Errorf(vigil.EINVALID, "reason %q: want one of %s", f.Reason, strings.Join(vigil.CoverageReasons, ", "))
	}
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	reason, rargs := s.reasonExpr()
	inner := `SELECT r.id, a.name AS account, r.type, r.name, r.tags, r.scan_message, r.last_scanned, r.matched_at, r.matched_revision, r.source_ref, ` + reason + ` AS reason
		FROM resources r JOIN accounts a ON a.id = r.account_id WHERE r.scan_status <> '` + deleted + `' AND r.account_id IN (` + placeholders(len(p.Visible)) + ")"
	args := append(rargs, ids(p.Visible)...)
	if f.Type != "" {
		inner += " AND r.type = ?"
		args = append(args, f.Type)
	}
	tq, targs := tagFilter(f.Tags)
	inner, args = inner+tq, append(args, targs...)
	query := "SELECT * FROM (" + inner + ") c WHERE 1 = 1"
	switch {
	case f.Reason != "":
		query += " AND reason = ?"
		args = append(args, f.Reason)
	case f.ScanStatus == vigil.ScanActive:
		query += " AND reason = ''"
	case f.ScanStatus == vigil.ScanInactive:
		query += " AND reason <> ''"
	}
	cq, cargs, err := resourceCursor(f.Cursor, "", "coverage")
	if err != nil {
		return nil, "", err
	}
	query, args = query+cq, append(args, cargs...)
	rows, err := s.rdb.QueryContext(ctx, s.q(query+" ORDER BY type, name, id LIMIT "+fmt.Sprint(limit+1)), args...)
	if err != nil {
		return nil, "", fmt.Errorf("sqlstore: coverage: %w", err)
	}
	defer rows.Close()
	out := []vigil.Coverage{}
	for rows.Next() {
		var c vigil.Coverage
		var tags string
		var scanned, matchedAt int64
		if err := rows.Scan(&c.ResourceID, &c.Account, &c.ResourceType, &c.ResourceName, &tags, &c.Message, &scanned, &matchedAt, &c.MatchedRevision, &c.SourceRef, &c.Reason); err != nil {
			return nil, "", err
		}
		if err := json.Unmarshal([]byte(tags), &c.Tags); err != nil {
			return nil, "", fmt.Errorf("sqlstore: resource %s tags: %w", c.ResourceID, err)
		}
		c.ScanStatus = vigil.ScanActive
		if c.Reason != "" {
			c.ScanStatus = vigil.ScanInactive
		}
		if c.Reason != vigil.ReasonScanFailed && c.Reason != vigil.ReasonUnsupportedOS && c.Reason != vigil.ReasonUnsupportedMediaType {
			c.Message = ""
		}
		if scanned > 0 {
			c.LastScannedAt = fromMicros(scanned)
		}
		if matchedAt > 0 {
			c.LastMatchedAt = fromMicros(matchedAt)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = encodeResourceCursor(last.ResourceType, last.ResourceName, last.ResourceID)
	}
	return out, next, nil
}

// CoverageStats counts the principal's resources per account and type,
// by scan status and reason.
func (s *Store) CoverageStats(ctx context.Context, p vigil.Principal) ([]vigil.CoverageStat, error) {
	if p.Role == vigil.RoleAgent {
		return nil, vigil.Errorf(vigil.EFORBIDDEN, "an agent key cannot read coverage")
	}
	reason, rargs := s.reasonExpr()
	query := `SELECT account, type, reason, count(*) FROM (SELECT a.name AS account, r.type, ` + reason + ` AS reason
		FROM resources r JOIN accounts a ON a.id = r.account_id WHERE r.scan_status <> '` + deleted + `' AND r.account_id IN (` + placeholders(len(p.Visible)) + `)) c
		GROUP BY account, type, reason ORDER BY account, type, reason`
	rows, err := s.rdb.QueryContext(ctx, s.q(query), append(rargs, ids(p.Visible)...)...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: coverage: %w", err)
	}
	defer rows.Close()
	out := []vigil.CoverageStat{}
	for rows.Next() {
		var account, typ, reason string
		var n int
		if err := rows.Scan(&account, &typ, &reason, &n); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].Account != account || out[len(out)-1].ResourceType != typ {
			out = append(out, vigil.CoverageStat{Account: account, ResourceType: typ, ByReason: map[string]int{}})
		}
		st := &out[len(out)-1]
		st.Total += n
		if reason == "" {
			st.Active += n
		} else {
			st.Inactive += n
			st.ByReason[reason] += n
		}
	}
	return out, rows.Err()
}

// Usage lists the principal's scans and rematches per account, resource
// type and month, for the months from..to (YYYY-MM, inclusive; empty for
// no bound).
func (s *Store) Usage(ctx context.Context, p vigil.Principal, from, to string) ([]vigil.Usage, error) {
	if p.Role == vigil.RoleAgent {
		return nil, vigil.Errorf(vigil.EFORBIDDEN, "an agent key cannot read usage")
	}
	for _, m := range []string{from, to} {
		if _, err := time.Parse("2006-01", m); m != "" && err != nil {
			return nil, vigil.Errorf(vigil.EINVALID, "month %q: want YYYY-MM", m)
		}
	}
	query := `SELECT a.name, u.resource_type, u.month, u.scans, u.rematches FROM usage_counts u JOIN accounts a ON a.id = u.account_id
		WHERE u.account_id IN (` + placeholders(len(p.Visible)) + ")"
	args := ids(p.Visible)
	if from != "" {
		query += " AND u.month >= ?"
		args = append(args, from)
	}
	if to != "" {
		query += " AND u.month <= ?"
		args = append(args, to)
	}
	rows, err := s.rdb.QueryContext(ctx, s.q(query+" ORDER BY u.month, a.name, u.resource_type"), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: usage: %w", err)
	}
	defer rows.Close()
	out := []vigil.Usage{}
	for rows.Next() {
		var u vigil.Usage
		if err := rows.Scan(&u.Account, &u.ResourceType, &u.Month, &u.Scans, &u.Rematches); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// AccountPrincipal is the principal the system acts as for an account's
// background work (a scheduled rescan, a registry push): an administrator
// of that account alone.
func (s *Store) AccountPrincipal(ctx context.Context, accountID int64) (vigil.Principal, error) {
	p := vigil.Principal{AccountID: accountID, Role: vigil.RoleAdmin, Visible: []int64{accountID}}
	err := s.db.QueryRowContext(ctx, s.q("SELECT name FROM accounts WHERE id = ?"), accountID).Scan(&p.Account)
	if errors.Is(err, sql.ErrNoRows) {
		return p, vigil.Errorf(vigil.ENOTFOUND, "account %d not found", accountID)
	}
	return p, err
}

// NoteRevision raises a shared counter (the database revision the fleet
// was last re-evaluated for) to value when it is lower, and in the same
// transaction enqueues job(previous value): of several processes that
// notice the same new revision, one acts, and the counter never moves
// without its job. It reports the previous value and whether it moved.
func (s *Store) NoteRevision(ctx context.Context, key string, value int64, job func(old int64) NewJob) (int64, bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, s.q("INSERT INTO engine_state(key, value) VALUES (?, 0) ON CONFLICT (key) DO NOTHING"), key); err != nil {
		return 0, false, err
	}
	lock := ""
	if s.postgres {
		lock = " FOR UPDATE"
	}
	var old int64
	if err := tx.QueryRowContext(ctx, s.q("SELECT value FROM engine_state WHERE key = ?"+lock), key).Scan(&old); err != nil {
		return 0, false, err
	}
	if old >= value {
		return old, false, nil
	}
	if _, err := tx.ExecContext(ctx, s.q("UPDATE engine_state SET value = ? WHERE key = ?"), value, key); err != nil {
		return 0, false, err
	}
	if job != nil {
		if _, _, err := s.enqueue(ctx, tx, job(old)); err != nil {
			return 0, false, err
		}
	}
	return old, true, tx.Commit()
}

// SourcesScannedBefore lists the resources Vigil can read again itself
// (a registry reference) whose last scan is older than a time, for
// scheduled rescans.
func (s *Store) SourcesScannedBefore(ctx context.Context, before time.Time, limit int) ([]string, error) {
	// Only resources under continuous scanning: not pending (their scan
	// is on its way), failed (retried by their own job, or by a push),
	// excluded or expired.
	reason, args := s.reasonExpr()
	return strings1(s.db.QueryContext(ctx, s.q("SELECT r.id FROM resources r WHERE r.source_ref <> '' AND r.scan_status <> ? AND r.last_scanned > 0 AND r.last_scanned < ? AND ("+reason+") = '' ORDER BY r.last_scanned LIMIT "+fmt.Sprint(limit)),
		append([]any{deleted, micros(before)}, args...)...))
}

// changedMatches are matches, each with its reconcile.MatchDigest.
type changedMatches struct {
	matches []vigil.Finding
	digests []string
}

func (c *changedMatches) add(m vigil.Finding, digest string) {
	c.matches = append(c.matches, m)
	c.digests = append(c.digests, digest)
}

// changedOnly narrows a re-evaluation to what it changes: it compares the
// digests of the resource's stored findings with those of its new matches
// and returns, read whole, only the stored findings that differ (changed,
// gone, closed and matched again) and only the matches that differ
// (changed, new). Reading every finding body of a resource costs more than
// matching it again; most of a fleet's findings do not change.
func (s *Store) changedOnly(ctx context.Context, tx *sql.Tx, account, resourceID string, have map[string]findingDigest, matches []vigil.Finding, digests []string) ([]reconcile.Stored, changedMatches, error) {
	var load []string
	var changed changedMatches
	seen := map[string]bool{}
	for i, m := range matches {
		id := reconcile.FindingID(account, resourceID, m.Vulnerability.ID)
		if seen[id] || m.Suppressed != nil {
			// Split by suppression: let the full reconciliation judge.
			all, err := s.resourceFindings(ctx, tx, resourceID)
			return all, changedMatches{matches, digests}, err
		}
		seen[id] = true
		r, ok := have[id]
		switch {
		case !ok:
			changed.add(m, digests[i])
		case r.status != reconcile.Active || r.digest != digests[i]:
			changed.add(m, digests[i])
			load = append(load, id)
		}
	}
	for id, r := range have {
		if !seen[id] && r.status != reconcile.Closed {
			load = append(load, id)
		}
	}
	if len(load) == 0 {
		return nil, changed, nil
	}
	slices.Sort(load)
	var stored []reconcile.Stored
	for chunk := range slices.Chunk(load, 500) {
		part, err := jsonRows[reconcile.Stored](tx.QueryContext(ctx, s.q("SELECT body FROM findings WHERE id IN ("+placeholders(len(chunk))+")"), anys(chunk)...))
		if err != nil {
			return nil, changedMatches{}, err
		}
		stored = append(stored, part...)
	}
	return stored, changed, nil
}
