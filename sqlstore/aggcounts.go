package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/reconcile"
)

// aggKeys are the (dimension, key) pairs an ACTIVE finding counts under.
func aggKeys(accountID int64, f reconcile.Stored, resType, resName string) [][2]string {
	out := [][2]string{
		{"resource", f.Resource},
		{"vulnerability", f.Finding.Vulnerability.ID},
		{"account", strconv.FormatInt(accountID, 10)},
	}
	if resType == vigil.ResourceImage {
		out = append(out, [2]string{"repository", repository(resName)})
	}
	for _, p := range f.Finding.Packages {
		k := [2]string{"package", p.Ecosystem + "\x1f" + p.Name + "\x1f" + p.Version}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
		if p.Layer != "" {
			k := [2]string{"layer", p.Layer}
			if !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	return out
}

// countDeltas adjusts the aggregate counts for findings going from old to
// new (either may be absent or not ACTIVE).
func (s *Store) countDeltas(ctx context.Context, tx *sql.Tx, accountID int64, resType, resName string, old map[string]reconcile.Stored, writes []reconcile.Stored) error {
	type k struct{ dim, key, sev string }
	delta := map[k]int{}
	for _, w := range writes {
		if o, ok := old[w.ID]; ok && o.Status == reconcile.Active {
			for _, dk := range aggKeys(accountID, o, resType, resName) {
				delta[k{dk[0], dk[1], o.Finding.Severity}]--
			}
		}
		if w.Status == reconcile.Active {
			for _, dk := range aggKeys(accountID, w, resType, resName) {
				delta[k{dk[0], dk[1], w.Finding.Severity}]++
			}
		}
	}
	// Many rows a statement; the keys are distinct, as one statement needs.
	var rows []string
	var args []any
	flush := func() error {
		if len(rows) == 0 {
			return nil
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO agg_counts(account_id, dim, key, severity, n) VALUES `+strings.Join(rows, ", ")+`
			ON CONFLICT (account_id, dim, key, severity) DO UPDATE SET n = agg_counts.n + excluded.n`), args...)
		rows, args = rows[:0], args[:0]
		if err != nil {
			return fmt.Errorf("sqlstore: aggregate counts: %w", err)
		}
		return nil
	}
	// Rows are locked in one order in every transaction: concurrent
	// submissions wait for each other instead of deadlocking.
	keys := make([]k, 0, len(delta))
	for key := range delta {
		keys = append(keys, key)
	}
	slices.SortFunc(keys, func(a, b k) int {
		return strings.Compare(a.dim+"\x1f"+a.key+"\x1f"+a.sev, b.dim+"\x1f"+b.key+"\x1f"+b.sev)
	})
	for _, key := range keys {
		d := delta[key]
		if d == 0 {
			continue
		}
		rows = append(rows, "(?, ?, ?, ?, ?)")
		args = append(args, accountID, key.dim, key.key, key.sev, d)
		if len(rows) == 200 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// plainFilter reports whether an aggregation's filter is the default one
// (ACTIVE findings, nothing else), which the kept counts answer.
func plainFilter(f FindingFilter) bool {
	g := f
	g.Status, g.Sort, g.Limit, g.Cursor = nil, "", 0, ""
	return (len(f.Status) == 0 || len(f.Status) == 1 && f.Status[0] == reconcile.Active) &&
		fmt.Sprint(g) == fmt.Sprint(FindingFilter{})
}

// countedAggregate reads an aggregation from the kept counts.
func (s *Store) countedAggregate(ctx context.Context, p vigil.Principal, by string) ([]Aggregate, error) {
	rows, err := s.db.QueryContext(ctx, s.q("SELECT key, severity, SUM(n) FROM agg_counts WHERE dim = ? AND n <> 0 AND account_id IN ("+placeholders(len(p.Visible))+") GROUP BY key, severity"),
		append([]any{by}, ids(p.Visible)...)...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: aggregate: %w", err)
	}
	groups := map[string]*Aggregate{}
	var order []string
	for rows.Next() {
		var key, sev string
		var n int
		if err := rows.Scan(&key, &sev, &n); err != nil {
			rows.Close()
			return nil, err
		}
		if n <= 0 {
			continue
		}
		g := groups[key]
		if g == nil {
			g = &Aggregate{Key: map[string]string{}, Counts: map[string]int{}}
			groups[key] = g
			order = append(order, key)
		}
		g.Counts[sev] += n
		g.Total += n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// Name the keys as the scanning aggregation does.
	names := map[string][2]string{}
	switch by {
	case "resource":
		// By account rather than by the groups' ids: an id list would
		// pass the databases' parameter limits (SQLite 32,766; PostgreSQL
		// 65,535) with that many resources.
		rr, err := s.db.QueryContext(ctx, s.q("SELECT id, type, name FROM resources WHERE account_id IN ("+placeholders(len(p.Visible))+")"), ids(p.Visible)...)
		if err != nil {
			return nil, err
		}
		for rr.Next() {
			var id, typ, name string
			if err := rr.Scan(&id, &typ, &name); err != nil {
				rr.Close()
				return nil, err
			}
			names[id] = [2]string{typ, name}
		}
		rr.Close()
		if err := rr.Err(); err != nil {
			return nil, err
		}
	case "account":
		rr, err := s.db.QueryContext(ctx, s.q("SELECT id, name FROM accounts"))
		if err != nil {
			return nil, err
		}
		for rr.Next() {
			var id int64
			var name string
			if err := rr.Scan(&id, &name); err != nil {
				rr.Close()
				return nil, err
			}
			names[strconv.FormatInt(id, 10)] = [2]string{name}
		}
		rr.Close()
		if err := rr.Err(); err != nil {
			return nil, err
		}
	}
	out := make([]Aggregate, 0, len(order))
	for _, key := range order {
		g := groups[key]
		switch by {
		case "resource":
			g.Key["resourceId"], g.Key["resourceType"], g.Key["resourceName"] = key, names[key][0], names[key][1]
		case "package":
			parts := strings.SplitN(key, "\x1f", 3)
			for len(parts) < 3 {
				parts = append(parts, "")
			}
			g.Key["ecosystem"], g.Key["name"], g.Key["version"] = parts[0], parts[1], parts[2]
		case "vulnerability":
			g.Key["vulnerabilityId"] = key
		case "repository":
			g.Key["repository"] = key
		case "layer":
			g.Key["layer"] = key
		case "account":
			g.Key["account"] = names[key][0]
		}
		out = append(out, *g)
	}
	sortAggregates(out)
	return out, nil
}
