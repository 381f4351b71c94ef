package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/match"
	"github.com/vigil-project/vigil/reconcile"
	"github.com/vigil-project/vigil/score"
)

// ResourceSpec names the resource an inventory belongs to.
type ResourceSpec struct {
	// Account is the account to file it under; empty means the
	// principal's own. An organisation administrator may name a member.
	Account string
	Type    string
	Name    string
	Tags    map[string]string
	// SourceRef is where a rescan can read the resource again (a registry
	// reference); empty keeps the one recorded before.
	SourceRef string
	// Unsupported, when set, is why the inventory could not be judged
	// (vigil.ReasonUnsupportedOS); the resource is then INACTIVE.
	Unsupported string
	Message     string
}

// Submitted is what storing an inventory did.
type Submitted struct {
	Resource vigil.Resource
	Events   []reconcile.Event
}

var submitRoles = []string{vigil.RoleAdmin, vigil.RoleAnalyst, vigil.RoleAgent}

// SubmitInventory stores a resource's inventory and reconciles its
// findings with the matches of that inventory, in one transaction: the
// resource, its inventory, its findings and the events of their changes
// are all written, or none is.
func (s *Store) SubmitInventory(ctx context.Context, p vigil.Principal, spec ResourceSpec, inv *vigil.Inventory, matches []vigil.Finding, dbRevision int64) (*Submitted, error) {
	if !slices.Contains(submitRoles, p.Role) {
		return nil, vigil.Errorf(vigil.EFORBIDDEN, "a %s key cannot submit inventories", p.Role)
	}
	if !slices.Contains(vigil.ResourceTypes, spec.Type) {
		return nil, vigil.Errorf(vigil.EINVALID, "resource type %q: want host, image or function", spec.Type)
	}
	if strings.TrimSpace(spec.Name) == "" || len(spec.Name) > 512 {
		return nil, vigil.Errorf(vigil.EINVALID, "resource name: want 1 to 512 characters")
	}
	if inv == nil || inv.SchemaVersion != vigil.InventorySchemaVersion {
		return nil, vigil.Errorf(vigil.EINVALID, "inventory: want schemaVersion %d", vigil.InventorySchemaVersion)
	}
	if inv.Digest == "" {
		return nil, vigil.Errorf(vigil.EINVALID, "inventory: no digest")
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	accountID, account := p.AccountID, p.Account
	if spec.Account != "" && spec.Account != p.Account {
		err := tx.QueryRowContext(ctx, s.q("SELECT id FROM accounts WHERE name = ?"), spec.Account).Scan(&accountID)
		if errors.Is(err, sql.ErrNoRows) || err == nil && !slices.Contains(p.Visible, accountID) {
			return nil, vigil.Errorf(vigil.ENOTFOUND, "account %q not found", spec.Account)
		}
		if err != nil {
			return nil, err
		}
		account = spec.Account
	}
	now := s.Now()
	if err := checkTags(spec.Tags); err != nil {
		return nil, err
	}
	details, _ := json.Marshal(vigil.ResourceDetails{OS: inv.OS, Image: inv.Image, Function: inv.Function})

	// Create the resource if it is new; concurrent first submissions of one
	// resource meet at the unique key instead of failing.
	emptyTags, _ := json.Marshal(map[string]string{})
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO resources(id, account_id, type, name, tags, details, first_seen, last_scanned, inventory_digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (account_id, type, name) DO NOTHING`),
		newID(), accountID, spec.Type, spec.Name, string(emptyTags), string(details), micros(now), micros(now), inv.Digest); err != nil {
		return nil, fmt.Errorf("sqlstore: resource: %w", err)
	}
	var id, tagJSON string
	var first int64
	lock := ""
	if s.postgres {
		lock = " FOR UPDATE"
	}
	if err := tx.QueryRowContext(ctx, s.q("SELECT id, first_seen, tags FROM resources WHERE account_id = ? AND type = ? AND name = ?"+lock), accountID, spec.Type, spec.Name).Scan(&id, &first, &tagJSON); err != nil {
		return nil, fmt.Errorf("sqlstore: resource: %w", err)
	}
	// A submission adds its tags; it never removes those set before (by
	// the API, by another submitter).
	tags := map[string]string{}
	json.Unmarshal([]byte(tagJSON), &tags)
	for k, v := range spec.Tags {
		tags[k] = v
	}
	merged, _ := json.Marshal(tags)
	status := vigil.ScanActive
	if spec.Unsupported != "" {
		status = vigil.ScanInactive
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE resources SET tags = ?, details = ?, last_scanned = ?, inventory_digest = ?,
		scan_status = ?, scan_reason = ?, scan_message = ?, matched_revision = ?, matched_at = ?,
		source_ref = CASE WHEN ? = '' THEN source_ref ELSE ? END,
		last_activity = CASE WHEN last_activity = 0 THEN ? ELSE last_activity END WHERE id = ?`),
		string(merged), string(details), micros(now), inv.Digest, status, spec.Unsupported, spec.Message, dbRevision, micros(now),
		spec.SourceRef, spec.SourceRef, micros(now), id); err != nil {
		return nil, fmt.Errorf("sqlstore: resource: %w", err)
	}
	if err := s.setTags(ctx, tx, id, tags); err != nil {
		return nil, err
	}

	// The inventory, and its (ecosystem, package) index for re-matching.
	body, err := json.Marshal(inv)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO inventories(resource_id, digest, body, stored_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (resource_id) DO UPDATE SET digest = excluded.digest, body = excluded.body, stored_at = excluded.stored_at`),
		id, inv.Digest, body, micros(now)); err != nil {
		return nil, fmt.Errorf("sqlstore: inventory: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.q("DELETE FROM inventory_packages WHERE resource_id = ?"), id); err != nil {
		return nil, err
	}
	for _, k := range match.LookupKeys(inv) {
		if _, err := tx.ExecContext(ctx, s.q("INSERT INTO inventory_packages(resource_id, ecosystem, package) VALUES (?, ?, ?)"), id, k.Ecosystem, k.Package); err != nil {
			return nil, fmt.Errorf("sqlstore: inventory index: %w", err)
		}
	}

	stored, err := s.resourceFindings(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	res := reconcile.Reconcile(reconcile.Input{Account: account, Resource: id, Stored: stored, Matches: matches, DBRevision: dbRevision, Now: now})
	if err := s.countDeltas(ctx, tx, accountID, spec.Type, spec.Name, byID(stored), res.Write); err != nil {
		return nil, err
	}
	if err := s.writeFindings(ctx, tx, accountID, res); err != nil {
		return nil, err
	}
	if err := s.countUsage(ctx, tx, accountID, spec.Type, now, "scans"); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlstore: commit: %w", err)
	}
	s.wrote(ctx)
	return &Submitted{
		Resource: vigil.Resource{ID: id, Account: account, Type: spec.Type, Name: spec.Name, Tags: tags,
			Details:   vigil.ResourceDetails{OS: inv.OS, Image: inv.Image, Function: inv.Function},
			FirstSeen: fromMicros(first), LastScanned: fromMicros(micros(now)), InventoryDigest: inv.Digest},
		Events: res.Events,
	}, nil
}

// setTags replaces a resource's tags, kept as rows for filtering.
func (s *Store) setTags(ctx context.Context, tx *sql.Tx, resource string, tags map[string]string) error {
	if _, err := tx.ExecContext(ctx, s.q("DELETE FROM resource_tags WHERE resource_id = ?"), resource); err != nil {
		return err
	}
	for k, v := range tags {
		if _, err := tx.ExecContext(ctx, s.q("INSERT INTO resource_tags(resource_id, key, value) VALUES (?, ?, ?)"), resource, k, v); err != nil {
			return fmt.Errorf("sqlstore: tags: %w", err)
		}
	}
	return nil
}

// checkTags bounds tag keys and values.
func checkTags(tags map[string]string) error {
	if len(tags) > 50 {
		return vigil.Errorf(vigil.EINVALID, "at most 50 tags")
	}
	for k, v := range tags {
		if k == "" || len(k) > 128 || len(v) > 256 || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return vigil.Errorf(vigil.EINVALID, "tag %q: keys of 1 to 128 characters without '=', values up to 256", k)
		}
	}
	return nil
}

func byID(ss []reconcile.Stored) map[string]reconcile.Stored {
	m := make(map[string]reconcile.Stored, len(ss))
	for _, s := range ss {
		m[s.ID] = s
	}
	return m
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Store) resourceFindings(ctx context.Context, tx *sql.Tx, resource string) ([]reconcile.Stored, error) {
	return jsonRows[reconcile.Stored](tx.QueryContext(ctx, s.q("SELECT body FROM findings WHERE resource_id = ?"), resource))
}

// jsonRows reads a query's rows of one JSON column.
func jsonRows[T any](rows *sql.Rows, err error) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		var v T
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			return nil, fmt.Errorf("sqlstore: corrupt %T: %w", v, err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// writeFindings applies a reconciliation: upserts the findings it
// changes, their package index, and appends its events (see insertRows),
// and counts the write on the resource.
func (s *Store) writeFindings(ctx context.Context, tx *sql.Tx, accountID int64, res reconcile.Result) error {
	if len(res.Write) > 0 {
		var args, ids, pkgs []any
		for _, f := range res.Write {
			body, err := json.Marshal(f)
			if err != nil {
				return err
			}
			var epss *float64
			if f.Finding.EPSS != nil {
				epss = &f.Finding.EPSS.Score
			}
			var closed *int64
			if f.ClosedAt != nil {
				v := micros(*f.ClosedAt)
				closed = &v
			}
			kev := 0
			if f.Finding.KEV != nil {
				kev = 1
			}
			args = append(args, f.ID, accountID, f.Resource, f.Finding.Vulnerability.ID, f.Type, f.Status, f.Finding.Severity, score.Rank(f.Finding.Severity),
				f.Finding.Score, epss, kev, f.Finding.FixAvailable, f.Finding.Vulnerability.Title,
				micros(f.FirstObserved), micros(f.LastObserved), micros(f.Updated), closed, f.DBRevision, string(body), reconcile.MatchDigest(f.Finding))
			ids = append(ids, f.ID)
			for _, pkg := range f.Finding.Packages {
				pkgs = append(pkgs, f.ID, pkg.Ecosystem, pkg.Name, pkg.Version, pkg.Layer)
			}
		}
		if err := s.insertRows(ctx, tx, `INSERT INTO findings(id, account_id, resource_id, vuln_id, type, status, severity, severity_rank, score, epss, kev,
			fix_available, title, first_observed, last_observed, updated_at, closed_at, db_revision, body, match_digest)
			VALUES %v
			ON CONFLICT (id) DO UPDATE SET status = excluded.status, severity = excluded.severity, severity_rank = excluded.severity_rank,
			score = excluded.score, epss = excluded.epss, kev = excluded.kev, fix_available = excluded.fix_available, title = excluded.title,
			last_observed = excluded.last_observed, updated_at = excluded.updated_at, closed_at = excluded.closed_at,
			db_revision = excluded.db_revision, body = excluded.body, match_digest = excluded.match_digest`,
			"(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", 20, 100, args); err != nil {
			return fmt.Errorf("sqlstore: findings: %w", err)
		}
		for chunk := range slices.Chunk(ids, 100) {
			if _, err := tx.ExecContext(ctx, s.q("DELETE FROM finding_packages WHERE finding_id IN ("+placeholders(len(chunk))+")"), chunk...); err != nil {
				return err
			}
		}
		if err := s.insertRows(ctx, tx, "INSERT INTO finding_packages(finding_id, ecosystem, name, version, layer) VALUES %v", "(?, ?, ?, ?, ?)", 5, 500, pkgs); err != nil {
			return fmt.Errorf("sqlstore: finding packages: %w", err)
		}
		// Counted on the resource, for readers of its findings outside
		// this transaction (see Store.prefetch).
		resources := map[string]bool{}
		for _, f := range res.Write {
			if !resources[f.Resource] {
				resources[f.Resource] = true
				if _, err := tx.ExecContext(ctx, s.q("UPDATE resources SET findings_rev = findings_rev + 1 WHERE id = ?"), f.Resource); err != nil {
					return fmt.Errorf("sqlstore: resource: %w", err)
				}
			}
		}
	}
	var args []any
	for _, e := range res.Events {
		body, _ := json.Marshal(e)
		args = append(args, accountID, e.Resource, e.FindingID, e.Type, micros(e.At), string(body))
	}
	if err := s.insertRows(ctx, tx, "INSERT INTO events(account_id, resource_id, finding_id, type, at, body) VALUES %v", "(?, ?, ?, ?, ?, ?)", 6, 100, args); err != nil {
		return fmt.Errorf("sqlstore: events: %w", err)
	}
	return nil
}

// FindingFilter selects findings, as Amazon Inspector's filter criteria
// do. Empty fields select everything.
type FindingFilter struct {
	Status           []string
	Severity         []string
	Type             string
	ResourceID       string
	ResourceType     string
	ResourceTags     map[string]string
	VulnID           string
	PackageName      string
	PackageVersion   string
	PackageEcosystem string
	// FixAvailable is YES, NO or PARTIAL.
	FixAvailable string
	// ExploitAvailable selects findings by KEV membership.
	ExploitAvailable   *bool
	EPSSMin, EPSSMax   *float64
	ScoreMin, ScoreMax *float64
	// Time ranges, inclusive.
	FirstObservedFrom, FirstObservedTo time.Time
	LastObservedFrom, LastObservedTo   time.Time
	UpdatedFrom, UpdatedTo             time.Time
	TitleContains                      string
	// Sort is severity (the default), score, epss or lastObserved; always
	// descending.
	Sort  string
	Limit int
	// Cursor continues a listing where the previous page ended.
	Cursor string
}

// sortColumns are the sort keys, as SQL expressions that are never NULL.
var sortColumns = map[string]string{
	"":             "f.severity_rank",
	"severity":     "f.severity_rank",
	"score":        "COALESCE(f.score, -1)",
	"epss":         "COALESCE(f.epss, -1)",
	"lastObserved": "f.last_observed",
}

// SortKeys lists the sort keys Findings accepts.
var SortKeys = []string{"severity", "score", "epss", "lastObserved"}

// Findings lists the findings a principal may see, in the filter's order,
// a page at a time: the cursor of the next page is returned, empty at the
// end.
func (s *Store) Findings(ctx context.Context, p vigil.Principal, f FindingFilter) ([]reconcile.Stored, string, error) {
	if p.Role == vigil.RoleAgent {
		return nil, "", vigil.Errorf(vigil.EFORBIDDEN, "an agent key cannot read findings")
	}
	col, ok := sortColumns[f.Sort]
	if !ok {
		return nil, "", vigil.Errorf(vigil.EINVALID, "sort %q: want one of %s", f.Sort, strings.Join(SortKeys, ", "))
	}
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	where, args := s.findingWhere(p, f)
	if f.Cursor != "" {
		v, id, err := decodeCursor(f.Cursor, f.Sort)
		if err != nil {
			return nil, "", err
		}
		where = append(where, "("+col+" < ? OR "+col+" = ? AND f.id > ?)")
		args = append(args, v, v, id)
	}
	// Two phases: the page is chosen on narrow rows (sort key and id), and
	// only its bodies are read, so the sort never carries finding bodies.
	query := "SELECT " + col + ", f.id FROM findings f WHERE " + strings.Join(where, " AND ") +
		" ORDER BY " + col + " DESC, f.id LIMIT " + fmt.Sprint(limit+1)
	rows, err := s.rdb.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, "", fmt.Errorf("sqlstore: findings: %w", err)
	}
	var keys []float64
	var page []any
	for rows.Next() {
		var key float64
		var id string
		if err := rows.Scan(&key, &id); err != nil {
			rows.Close()
			return nil, "", err
		}
		keys = append(keys, key)
		page = append(page, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("sqlstore: findings: %w", err)
	}
	var next string
	if len(page) > limit {
		page, keys = page[:limit], keys[:limit]
		next = encodeCursor(f.Sort, keys[limit-1], page[limit-1].(string))
	}
	if len(page) == 0 {
		return nil, "", nil
	}
	bodies := make(map[string]string, len(page))
	rows, err = s.rdb.QueryContext(ctx, s.q("SELECT id, body FROM findings WHERE id IN ("+placeholders(len(page))+")"), page...)
	if err != nil {
		return nil, "", fmt.Errorf("sqlstore: findings: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, body string
		if err := rows.Scan(&id, &body); err != nil {
			return nil, "", err
		}
		bodies[id] = body
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("sqlstore: findings: %w", err)
	}
	out := make([]reconcile.Stored, 0, len(page))
	for _, id := range page {
		body, ok := bodies[id.(string)]
		if !ok {
			// Deleted between the two queries (resource deleted, or
			// closed finding purged): the page is simply shorter.
			continue
		}
		var st reconcile.Stored
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			return nil, "", err
		}
		out = append(out, st)
	}
	return out, next, rows.Err()
}

// findingWhere turns a filter into SQL conditions and their arguments.
func (s *Store) findingWhere(p vigil.Principal, f FindingFilter) ([]string, []any) {
	where := []string{"f.account_id IN (" + placeholders(len(p.Visible)) + ")"}
	args := ids(p.Visible)
	in := func(col string, vals []string) {
		where = append(where, col+" IN ("+placeholders(len(vals))+")")
		for _, v := range vals {
			args = append(args, v)
		}
	}
	eq := func(cond string, v any) {
		where = append(where, cond)
		args = append(args, v)
	}
	if len(f.Status) > 0 {
		in("f.status", f.Status)
	}
	if len(f.Severity) > 0 {
		in("f.severity", f.Severity)
	}
	if f.Type != "" {
		eq("f.type = ?", f.Type)
	}
	if f.ResourceID != "" {
		eq("f.resource_id = ?", f.ResourceID)
	}
	if f.ResourceType != "" {
		eq("f.resource_id IN (SELECT id FROM resources WHERE type = ?)", f.ResourceType)
	}
	keys := make([]string, 0, len(f.ResourceTags))
	for k := range f.ResourceTags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		where = append(where, "f.resource_id IN (SELECT resource_id FROM resource_tags WHERE key = ? AND value = ?)")
		args = append(args, k, f.ResourceTags[k])
	}
	if f.VulnID != "" {
		eq("f.vuln_id = ?", strings.ToUpper(f.VulnID))
	}
	if f.PackageName != "" || f.PackageVersion != "" || f.PackageEcosystem != "" {
		var conds []string
		for _, c := range []struct{ col, v string }{{"name", f.PackageName}, {"version", f.PackageVersion}, {"ecosystem", f.PackageEcosystem}} {
			if c.v != "" {
				conds = append(conds, c.col+" = ?")
				args = append(args, c.v)
			}
		}
		where = append(where, "f.id IN (SELECT finding_id FROM finding_packages WHERE "+strings.Join(conds, " AND ")+")")
	}
	if f.FixAvailable != "" {
		eq("f.fix_available = ?", f.FixAvailable)
	}
	if f.ExploitAvailable != nil {
		v := 0
		if *f.ExploitAvailable {
			v = 1
		}
		eq("f.kev = ?", v)
	}
	for _, r := range []struct {
		cond string
		v    *float64
	}{{"f.epss >= ?", f.EPSSMin}, {"f.epss <= ?", f.EPSSMax}, {"f.score >= ?", f.ScoreMin}, {"f.score <= ?", f.ScoreMax}} {
		if r.v != nil {
			eq(r.cond, *r.v)
		}
	}
	for _, r := range []struct {
		cond string
		t    time.Time
	}{
		{"f.first_observed >= ?", f.FirstObservedFrom}, {"f.first_observed <= ?", f.FirstObservedTo},
		{"f.last_observed >= ?", f.LastObservedFrom}, {"f.last_observed <= ?", f.LastObservedTo},
		{"f.updated_at >= ?", f.UpdatedFrom}, {"f.updated_at <= ?", f.UpdatedTo},
	} {
		if !r.t.IsZero() {
			eq(r.cond, micros(r.t))
		}
	}
	if f.TitleContains != "" {
		esc := strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(strings.ToLower(f.TitleContains))
		eq(`LOWER(f.title) LIKE ? ESCAPE '\'`, "%"+esc+"%")
	}
	return where, args
}

// findingCursor continues a finding listing: the last row's sort key and
// id, under the sort it belongs to.
type findingCursor struct {
	S  string  `json:"s"`
	V  float64 `json:"v"`
	ID string  `json:"id"`
}

func encodeCursor(sort string, v float64, id string) string {
	return encodeToken(findingCursor{sort, v, id})
}

func decodeCursor(c, sort string) (float64, string, error) {
	var cur findingCursor
	if !decodeToken(c, &cur) || cur.ID == "" {
		return 0, "", vigil.Errorf(vigil.EINVALID, "invalid cursor")
	}
	if cur.S != sort {
		return 0, "", vigil.Errorf(vigil.EINVALID, "the cursor belongs to another sort order")
	}
	return cur.V, cur.ID, nil
}

// encodeToken makes the opaque cursor of a listing: v as base64url JSON.
func encodeToken(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeToken reads a cursor encodeToken made into v.
func decodeToken(c string, v any) bool {
	b, err := base64.RawURLEncoding.DecodeString(c)
	return err == nil && json.Unmarshal(b, v) == nil
}

// History returns the events of a finding the principal may see, oldest
// first.
func (s *Store) History(ctx context.Context, p vigil.Principal, findingID string) ([]reconcile.Event, error) {
	out, err := jsonRows[reconcile.Event](s.rdb.QueryContext(ctx, s.q("SELECT body FROM events WHERE finding_id = ? AND account_id IN ("+placeholders(len(p.Visible))+") ORDER BY id"),
		append([]any{findingID}, ids(p.Visible)...)...))
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, vigil.Errorf(vigil.ENOTFOUND, "finding %s not found", findingID)
	}
	return out, nil
}

// ResourcesHolding lists the resources whose stored inventory holds a
// package: what a database update must re-match.
func (s *Store) ResourcesHolding(ctx context.Context, ecosystem, pkg string) ([]string, error) {
	return strings1(s.db.QueryContext(ctx, s.q("SELECT resource_id FROM inventory_packages WHERE ecosystem = ? AND package = ? ORDER BY resource_id"), ecosystem, pkg))
}

// strings1 reads a query's single string column.
func strings1(rows *sql.Rows, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Finding returns one finding the principal may see.
func (s *Store) Finding(ctx context.Context, p vigil.Principal, id string) (*reconcile.Stored, error) {
	if p.Role == vigil.RoleAgent {
		return nil, vigil.Errorf(vigil.EFORBIDDEN, "an agent key cannot read findings")
	}
	var body string
	err := s.rdb.QueryRowContext(ctx, s.q("SELECT body FROM findings WHERE id = ? AND account_id IN ("+placeholders(len(p.Visible))+")"),
		append([]any{id}, ids(p.Visible)...)...).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vigil.Errorf(vigil.ENOTFOUND, "finding %s not found", id)
	}
	if err != nil {
		return nil, err
	}
	var st reconcile.Stored
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// ResourceFilter selects resources. Empty fields select everything.
type ResourceFilter struct {
	ID   string
	Type string
	// Tags must all match.
	Tags  map[string]string
	Limit int
	// Cursor continues a listing where the previous page ended.
	Cursor string
}

// Resources lists the resources a principal may see, by type and name, a
// page at a time (Limit, 100 by default, at most 1000): the next page's
// cursor is returned, empty at the end.
func (s *Store) Resources(ctx context.Context, p vigil.Principal, f ResourceFilter) ([]vigil.Resource, string, error) {
	if p.Role == vigil.RoleAgent {
		return nil, "", vigil.Errorf(vigil.EFORBIDDEN, "an agent key cannot read resources")
	}
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	query := `SELECT r.id, a.name, r.type, r.name, r.tags, r.details, r.first_seen, r.last_scanned, r.inventory_digest
		FROM resources r JOIN accounts a ON a.id = r.account_id WHERE r.inventory_digest <> '' AND r.account_id IN (` + placeholders(len(p.Visible)) + ")"
	args := ids(p.Visible)
	if f.ID != "" {
		query += " AND r.id = ?"
		args = append(args, f.ID)
	}
	if f.Type != "" {
		query += " AND r.type = ?"
		args = append(args, f.Type)
	}
	tq, targs := tagFilter(f.Tags)
	query, args = query+tq, append(args, targs...)
	cq, cargs, err := resourceCursor(f.Cursor, "r.", "resource")
	if err != nil {
		return nil, "", err
	}
	query, args = query+cq, append(args, cargs...)
	rows, err := s.rdb.QueryContext(ctx, s.q(query+" ORDER BY r.type, r.name, r.id LIMIT "+fmt.Sprint(limit+1)), args...)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	var out []vigil.Resource
	for rows.Next() {
		var r vigil.Resource
		var tags, details string
		var first, last int64
		if err := rows.Scan(&r.ID, &r.Account, &r.Type, &r.Name, &tags, &details, &first, &last, &r.InventoryDigest); err != nil {
			return nil, "", err
		}
		if err := json.Unmarshal([]byte(tags), &r.Tags); err != nil {
			return nil, "", fmt.Errorf("sqlstore: resource %s tags: %w", r.ID, err)
		}
		if err := json.Unmarshal([]byte(details), &r.Details); err != nil {
			return nil, "", fmt.Errorf("sqlstore: resource %s details: %w", r.ID, err)
		}
		r.FirstSeen, r.LastScanned = fromMicros(first), fromMicros(last)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = encodeResourceCursor(last.Type, last.Name, last.ID)
	}
	return out, next, nil
}

// tagFilter is the condition that a resource (r) has every tag, in a
// stable order.
func tagFilter(tags map[string]string) (string, []any) {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var q string
	var args []any
	for _, k := range keys {
		q += " AND r.id IN (SELECT resource_id FROM resource_tags WHERE key = ? AND value = ?)"
		args = append(args, k, tags[k])
	}
	return q, args
}

// resourceCursor is the condition that continues a listing of resources
// ordered by type, name and id after the cursor's (empty: none); prefix
// qualifies the columns.
func resourceCursor(cursor, prefix, what string) (string, []any, error) {
	if cursor == "" {
		return "", nil, nil
	}
	var cur struct{ T, N, ID string }
	if !decodeToken(cursor, &cur) || cur.ID == "" {
		return "", nil, vigil.Errorf(vigil.EINVALID, "cursor: not one a %s listing returned", what)
	}
	t, n, id := prefix+"type", prefix+"name", prefix+"id"
	return " AND (" + t + " > ? OR " + t + " = ? AND (" + n + " > ? OR " + n + " = ? AND " + id + " > ?))",
		[]any{cur.T, cur.T, cur.N, cur.N, cur.ID}, nil
}

func encodeResourceCursor(typ, name, id string) string {
	return encodeToken(struct{ T, N, ID string }{typ, name, id})
}

// Resource returns one resource the principal may see.
func (s *Store) Resource(ctx context.Context, p vigil.Principal, id string) (*vigil.Resource, error) {
	list, _, err := s.Resources(ctx, p, ResourceFilter{ID: id})
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, vigil.Errorf(vigil.ENOTFOUND, "resource %s not found", id)
	}
	return &list[0], nil
}

// TagResource sets and removes tags of a resource; other tags are left as
// they are, whoever set them meanwhile.
func (s *Store) TagResource(ctx context.Context, p vigil.Principal, id string, set map[string]string, remove []string) (*vigil.Resource, error) {
	if p.Role != vigil.RoleAdmin && p.Role != vigil.RoleAnalyst {
		return nil, vigil.Errorf(vigil.EFORBIDDEN, "a %s key cannot tag resources", p.Role)
	}
	if err := checkTags(set); err != nil {
		return nil, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	lock := ""
	if s.postgres {
		lock = " FOR UPDATE"
	}
	var tagJSON string
	err = tx.QueryRowContext(ctx, s.q("SELECT tags FROM resources WHERE id = ? AND inventory_digest <> '' AND account_id IN ("+placeholders(len(p.Visible))+")"+lock),
		append([]any{id}, ids(p.Visible)...)...).Scan(&tagJSON)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vigil.Errorf(vigil.ENOTFOUND, "resource %s not found", id)
	}
	if err != nil {
		return nil, err
	}
	tags := map[string]string{}
	json.Unmarshal([]byte(tagJSON), &tags)
	for k, v := range set {
		tags[k] = v
	}
	for _, k := range remove {
		delete(tags, k)
	}
	b, _ := json.Marshal(tags)
	if _, err := tx.ExecContext(ctx, s.q("UPDATE resources SET tags = ? WHERE id = ?"), string(b), id); err != nil {
		return nil, err
	}
	if err := s.setTags(ctx, tx, id, tags); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return s.Resource(ctx, p, id)
}

// DeleteResource deletes a resource and its inventory; its findings close
// (and are kept, with their history).
func (s *Store) DeleteResource(ctx context.Context, p vigil.Principal, id string) ([]reconcile.Event, error) {
	if p.Role != vigil.RoleAdmin && p.Role != vigil.RoleAnalyst {
		return nil, vigil.Errorf(vigil.EFORBIDDEN, "a %s key cannot delete resources", p.Role)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	lock := ""
	if s.postgres {
		lock = " FOR UPDATE"
	}
	var accountID int64
	var account string
	err = tx.QueryRowContext(ctx, s.q("SELECT r.account_id, a.name FROM resources r JOIN accounts a ON a.id = r.account_id WHERE r.id = ? AND r.inventory_digest <> '' AND r.account_id IN ("+placeholders(len(p.Visible))+")"+lock),
		append([]any{id}, ids(p.Visible)...)...).Scan(&accountID, &account)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vigil.Errorf(vigil.ENOTFOUND, "resource %s not found", id)
	}
	if err != nil {
		return nil, err
	}
	stored, err := s.resourceFindings(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	res := reconcile.Reconcile(reconcile.Input{Account: account, Resource: id, Stored: stored, Now: s.Now()})
	var resType, resName string
	if err := tx.QueryRowContext(ctx, s.q("SELECT type, name FROM resources WHERE id = ?"), id).Scan(&resType, &resName); err != nil {
		return nil, err
	}
	if err := s.countDeltas(ctx, tx, accountID, resType, resName, byID(stored), res.Write); err != nil {
		return nil, err
	}
	if err := s.writeFindings(ctx, tx, accountID, res); err != nil {
		return nil, err
	}
	for _, q := range []string{"DELETE FROM inventory_packages WHERE resource_id = ?", "DELETE FROM inventories WHERE resource_id = ?", "DELETE FROM resource_tags WHERE resource_id = ?"} {
		if _, err := tx.ExecContext(ctx, s.q(q), id); err != nil {
			return nil, err
		}
	}
	// The resource row stays, marked by an empty inventory digest, so that
	// its closed findings keep their resource; it no longer lists.
	if _, err := tx.ExecContext(ctx, s.q("UPDATE resources SET inventory_digest = '', tags = '{}', scan_status = 'DELETED' WHERE id = ?"), id); err != nil {
		return nil, err
	}
	return res.Events, tx.Commit()
}

// PurgeClosed deletes findings closed before a time, with their packages
// and events: the retention of closed findings. It returns how many went.
func (s *Store) PurgeClosed(ctx context.Context, before time.Time) (int64, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	cut := micros(before)
	old := "SELECT id FROM findings WHERE status = 'CLOSED' AND closed_at < ?"
	for _, q := range []string{"DELETE FROM finding_packages WHERE finding_id IN (" + old + ")", "DELETE FROM events WHERE finding_id IN (" + old + ")"} {
		if _, err := tx.ExecContext(ctx, s.q(q), cut); err != nil {
			return 0, err
		}
	}
	res, err := tx.ExecContext(ctx, s.q("DELETE FROM findings WHERE status = 'CLOSED' AND closed_at < ?"), cut)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return n, tx.Commit()
}
