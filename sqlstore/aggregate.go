package sqlstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/reconcile"
)

// Aggregations, as Amazon Inspector's ListFindingAggregations groups them.
var AggregateBy = []string{"resource", "package", "vulnerability", "repository", "layer", "account"}

// Aggregate is one group's finding counts by severity.
type Aggregate struct {
	// Key names the group: a resource id and name, a package's ecosystem,
	// name and version, a vulnerability id, an image repository, a layer's
	// diff id, an account.
	Key    map[string]string `json:"key"`
	Counts map[string]int    `json:"counts"`
	Total  int               `json:"total"`
}

// Aggregate counts the findings a principal may see, by severity, per
// group, a page at a time (the filter's Limit, 100 by default, at most
// 1000, and its Cursor): the next page's cursor is returned, empty at the
// end. The filter applies as for Findings (only ACTIVE ones when it sets
// no status). Groups come most severe first (most critical findings, then
// high, and so on), then by key.
func (s *Store) Aggregate(ctx context.Context, p vigil.Principal, by string, f FindingFilter) ([]Aggregate, string, error) {
	if p.Role == vigil.RoleAgent {
		return nil, "", vigil.Errorf(vigil.EFORBIDDEN, "an agent key cannot read findings")
	}
	if !slices.Contains(AggregateBy, by) {
		return nil, "", vigil.Errorf(vigil.EINVALID, "aggregate by %q: want one of %s", by, strings.Join(AggregateBy, ", "))
	}
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	offset := 0
	if f.Cursor != "" {
		var err error
		if offset, err = decodeAggCursor(f.Cursor, by); err != nil {
			return nil, "", err
		}
	}
	var out []Aggregate
	var more bool
	var err error
	if plainFilter(f) {
		out, more, err = s.countedAggregate(ctx, p, by, offset, limit)
	} else {
		out, more, err = s.scannedAggregate(ctx, p, by, f, offset, limit)
	}
	if err != nil {
		return nil, "", err
	}
	next := ""
	if more {
		next = encodeAggCursor(by, offset+limit)
	}
	return out, next, nil
}

// scannedAggregate counts a page of an aggregation from the findings the
// filter selects.
func (s *Store) scannedAggregate(ctx context.Context, p vigil.Principal, by string, f FindingFilter, offset, limit int) ([]Aggregate, bool, error) {
	if len(f.Status) == 0 {
		f.Status = []string{reconcile.Active}
	}
	where, args := s.findingWhere(p, f)
	var cols, from string
	var names []string
	switch by {
	case "resource", "repository":
		cols, from, names = "r.id, r.type, r.name", "findings f JOIN resources r ON r.id = f.resource_id", []string{"resourceId", "resourceType", "resourceName"}
		if by == "repository" {
			where = append(where, "r.type = 'image'")
		}
	case "package":
		cols, from, names = "fp.ecosystem, fp.name, fp.version", "findings f JOIN finding_packages fp ON fp.finding_id = f.id", []string{"ecosystem", "name", "version"}
	case "vulnerability":
		cols, from, names = "f.vuln_id, '', ''", "findings f", []string{"vulnerabilityId"}
	case "layer":
		cols, from, names = "fp.layer, '', ''", "findings f JOIN finding_packages fp ON fp.finding_id = f.id", []string{"layer"}
		where = append(where, "fp.layer <> ''")
	case "account":
		// Keyed by id, as the kept counts are, so that ties order alike.
		cols, from, names = "CAST(a.id AS TEXT), a.name, ''", "findings f JOIN accounts a ON a.id = f.account_id", []string{"", "account"}
	}
	query := fmt.Sprintf("SELECT %s, f.severity, COUNT(DISTINCT f.id) FROM %s WHERE %s GROUP BY %s, f.severity", cols, from, strings.Join(where, " AND "), strings.TrimSuffix(strings.ReplaceAll(cols, ", ''", ""), ", "))
	rows, err := s.rdb.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, false, fmt.Errorf("sqlstore: aggregate: %w", err)
	}
	defer rows.Close()
	groups := map[string]*Aggregate{}
	var order []string
	ties := map[string]string{}
	for rows.Next() {
		var k [3]string
		var sev string
		var n int
		if err := rows.Scan(&k[0], &k[1], &k[2], &sev, &n); err != nil {
			return nil, false, err
		}
		if by == "repository" {
			k = [3]string{repository(k[2]), "", ""}
			names = []string{"repository"}
		}
		id := strings.Join(k[:], "\x00")
		g := groups[id]
		if g == nil {
			g = &Aggregate{Key: map[string]string{}, Counts: map[string]int{}}
			for i, name := range names {
				if name != "" {
					g.Key[name] = k[i]
				}
			}
			groups[id] = g
			order = append(order, id)
			// The tie-break is the kept counts' key for the group.
			switch by {
			case "package":
				ties[id] = k[0] + "\x1f" + k[1] + "\x1f" + k[2]
			default:
				ties[id] = k[0]
			}
		}
		g.Counts[sev] += n
		g.Total += n
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	out := make([]Aggregate, 0, len(order))
	tie := make([]string, 0, len(order))
	for _, id := range order {
		out = append(out, *groups[id])
		tie = append(tie, ties[id])
	}
	sortAggregates(out, tie)
	if offset >= len(out) {
		return nil, false, nil
	}
	out = out[offset:]
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// sortAggregates orders groups as agg_groups_rank does: by their counts,
// most severe first, then by key (tie, compared bytewise). Each group's
// rank is computed once: tens of thousands of groups (by vulnerability)
// make a comparison that builds its operands the cost of the whole
// aggregation.
func sortAggregates(out []Aggregate, tie []string) {
	type ranked struct {
		counts [6]int
		key    string
		a      Aggregate
	}
	rs := make([]ranked, len(out))
	for i, a := range out {
		rs[i].a, rs[i].key = a, tie[i]
		for sev, n := range a.Counts {
			rs[i].counts[sevIndex(sev)] += n
		}
	}
	slices.SortFunc(rs, func(a, b ranked) int {
		for j := range a.counts {
			if c := cmp.Compare(b.counts[j], a.counts[j]); c != 0 {
				return c
			}
		}
		return strings.Compare(a.key, b.key)
	})
	for i := range rs {
		out[i] = rs[i].a
	}
}

// aggCursor continues an aggregation: the groups to skip.
type aggCursor struct {
	By string `json:"by"`
	O  int    `json:"o"`
}

func encodeAggCursor(by string, offset int) string {
	return encodeToken(aggCursor{by, offset})
}

func decodeAggCursor(c, by string) (int, error) {
	var cur aggCursor
	if !decodeToken(c, &cur) || cur.By != by || cur.O < 0 {
		return 0, vigil.Errorf(vigil.EINVALID, "cursor: not one this aggregation returned")
	}
	return cur.O, nil
}

// repository is an image reference without its tag or digest.
func repository(ref string) string {
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		ref = ref[:i]
	}
	return ref
}
