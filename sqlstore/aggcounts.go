package sqlstore

import (
	"cmp"
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

// aggSeverities are agg_groups' count columns, most severe first: the
// order groups are listed in.
var aggSeverities = []struct{ sev, col string }{
	{"CRITICAL", "critical"}, {"HIGH", "high"}, {"MEDIUM", "medium"}, {"LOW", "low"}, {"NONE", "sev_none"}, {"UNTRIAGED", "untriaged"},
}

// sevIndex is a severity's count column in agg_groups; an unknown one
// counts as untriaged.
func sevIndex(sev string) int {
	for i, a := range aggSeverities {
		if a.sev == sev {
			return i
		}
	}
	return len(aggSeverities) - 1
}

// countDeltas adjusts the aggregate counts for findings going from old to
// new (either may be absent or not ACTIVE).
func (s *Store) countDeltas(ctx context.Context, tx *sql.Tx, accountID int64, resType, resName string, old map[string]reconcile.Stored, writes []reconcile.Stored) error {
	d := aggDelta{}
	d.add(accountID, resType, resName, old, writes)
	return s.flushDeltas(ctx, tx, d)
}

type aggKey struct {
	account  int64
	dim, key string
}

// aggDelta accumulates changes of the aggregate counts, to apply in one
// statement (per hundred groups): a batch of resources takes the locks of
// the rows it changes only at its end, not from its first resource.
type aggDelta map[aggKey]*[6]int

func (d aggDelta) add(accountID int64, resType, resName string, old map[string]reconcile.Stored, writes []reconcile.Stored) {
	put := func(f reconcile.Stored, n int) {
		for _, dk := range aggKeys(accountID, f, resType, resName) {
			key := aggKey{accountID, dk[0], dk[1]}
			v := d[key]
			if v == nil {
				v = new([6]int)
				d[key] = v
			}
			v[sevIndex(f.Finding.Severity)] += n
		}
	}
	for _, w := range writes {
		if o, ok := old[w.ID]; ok && o.Status == reconcile.Active {
			put(o, -1)
		}
		if w.Status == reconcile.Active {
			put(w, 1)
		}
	}
}

func (s *Store) flushDeltas(ctx context.Context, tx *sql.Tx, delta aggDelta) error {
	// Rows are locked in one order in every transaction: concurrent
	// submissions wait for each other instead of deadlocking.
	keys := make([]aggKey, 0, len(delta))
	for key, v := range delta {
		if *v != [6]int{} {
			keys = append(keys, key)
		}
	}
	slices.SortFunc(keys, func(a, b aggKey) int {
		return cmp.Or(cmp.Compare(a.account, b.account), strings.Compare(a.dim, b.dim), strings.Compare(a.key, b.key))
	})
	// The keys are distinct, as one statement of many rows needs.
	var args []any
	for _, key := range keys {
		v := delta[key]
		total := 0
		for _, n := range v {
			total += n
		}
		args = append(args, key.account, key.dim, key.key, v[0], v[1], v[2], v[3], v[4], v[5], total)
	}
	if err := s.insertRows(ctx, tx, `INSERT INTO agg_groups(account_id, dim, key, critical, high, medium, low, sev_none, untriaged, total)
		VALUES %v
		ON CONFLICT (account_id, dim, key) DO UPDATE SET critical = agg_groups.critical + excluded.critical,
		high = agg_groups.high + excluded.high, medium = agg_groups.medium + excluded.medium, low = agg_groups.low + excluded.low,
		sev_none = agg_groups.sev_none + excluded.sev_none, untriaged = agg_groups.untriaged + excluded.untriaged,
		total = agg_groups.total + excluded.total`, "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", 10, 100, args); err != nil {
		return fmt.Errorf("sqlstore: aggregate counts: %w", err)
	}
	return nil
}

// plainFilter reports whether an aggregation's filter is the default one
// (ACTIVE findings, nothing else), which the kept counts answer.
func plainFilter(f FindingFilter) bool {
	g := f
	g.Status, g.Sort, g.Limit, g.Cursor = nil, "", 0, ""
	return (len(f.Status) == 0 || len(f.Status) == 1 && f.Status[0] == reconcile.Active) &&
		fmt.Sprint(g) == fmt.Sprint(FindingFilter{})
}

// countedAggregate reads a page of an aggregation from the kept counts.
// For one account the page is read from the front of agg_groups_rank; an
// organisation's administrator sums its accounts' groups first.
func (s *Store) countedAggregate(ctx context.Context, p vigil.Principal, by string, offset, limit int) ([]Aggregate, bool, error) {
	var cols, order []string
	for _, a := range aggSeverities {
		cols = append(cols, a.col)
		order = append(order, a.col+" DESC")
	}
	order = append(order, "key")
	var query string
	if len(p.Visible) == 1 {
		query = "SELECT key, " + strings.Join(cols, ", ") + " FROM agg_groups WHERE account_id = ? AND dim = ? AND total > 0"
	} else {
		sums := make([]string, len(cols))
		for i, c := range cols {
			sums[i] = "SUM(" + c + ") AS " + c
		}
		query = "SELECT key, " + strings.Join(sums, ", ") + " FROM agg_groups WHERE account_id IN (" + placeholders(len(p.Visible)) + ") AND dim = ? GROUP BY key HAVING SUM(total) > 0"
	}
	query += " ORDER BY " + strings.Join(order, ", ") + fmt.Sprintf(" LIMIT %d OFFSET %d", limit+1, offset)
	args := append(ids(p.Visible), by)
	rows, err := s.rdb.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, false, fmt.Errorf("sqlstore: aggregate: %w", err)
	}
	var out []Aggregate
	var keys []string
	for rows.Next() {
		var key string
		var n [6]int
		if err := rows.Scan(&key, &n[0], &n[1], &n[2], &n[3], &n[4], &n[5]); err != nil {
			rows.Close()
			return nil, false, err
		}
		g := Aggregate{Key: map[string]string{}, Counts: map[string]int{}}
		for i, a := range aggSeverities {
			if n[i] != 0 {
				g.Counts[a.sev] = n[i]
				g.Total += n[i]
			}
		}
		out = append(out, g)
		keys = append(keys, key)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	more := len(out) > limit
	if more {
		out, keys = out[:limit], keys[:limit]
	}
	// Name the keys as the scanning aggregation does.
	names := map[string][2]string{}
	switch by {
	case "resource":
		if len(keys) > 0 {
			args := make([]any, len(keys))
			for i, k := range keys {
				args[i] = k
			}
			if err := s.names(ctx, names, "SELECT id, type, name FROM resources WHERE id IN ("+placeholders(len(keys))+")", args); err != nil {
				return nil, false, err
			}
		}
	case "account":
		if err := s.names(ctx, names, "SELECT CAST(id AS TEXT), name, '' FROM accounts", nil); err != nil {
			return nil, false, err
		}
	}
	for i, key := range keys {
		g := out[i]
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
	}
	return out, more, nil
}

// names reads (key, two names) rows into a map.
func (s *Store) names(ctx context.Context, into map[string][2]string, query string, args []any) error {
	rows, err := s.rdb.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, a, b string
		if err := rows.Scan(&id, &a, &b); err != nil {
			return err
		}
		into[id] = [2]string{a, b}
	}
	return rows.Err()
}
