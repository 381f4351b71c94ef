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
// group. The filter applies as for Findings (only ACTIVE ones when it sets
// no status). Groups come most severe first.
func (s *Store) Aggregate(ctx context.Context, p vigil.Principal, by string, f FindingFilter) ([]Aggregate, error) {
	if p.Role == vigil.RoleAgent {
		return nil, vigil.Errorf(vigil.EFORBIDDEN, "an agent key cannot read findings")
	}
	if !slices.Contains(AggregateBy, by) {
		return nil, vigil.Errorf(vigil.EINVALID, "aggregate by %q: want one of %s", by, strings.Join(AggregateBy, ", "))
	}
	if plainFilter(f) {
		return s.countedAggregate(ctx, p, by)
	}
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
		cols, from, names = "a.name, '', ''", "findings f JOIN accounts a ON a.id = f.account_id", []string{"account"}
	default:
		return nil, vigil.Errorf(vigil.EINVALID, "aggregate by %q: want one of %s", by, strings.Join(AggregateBy, ", "))
	}
	query := fmt.Sprintf("SELECT %s, f.severity, COUNT(DISTINCT f.id) FROM %s WHERE %s GROUP BY %s, f.severity", cols, from, strings.Join(where, " AND "), strings.TrimSuffix(strings.ReplaceAll(cols, ", ''", ""), ", "))
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: aggregate: %w", err)
	}
	defer rows.Close()
	groups := map[string]*Aggregate{}
	var order []string
	for rows.Next() {
		var k [3]string
		var sev string
		var n int
		if err := rows.Scan(&k[0], &k[1], &k[2], &sev, &n); err != nil {
			return nil, err
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
				g.Key[name] = k[i]
			}
			groups[id] = g
			order = append(order, id)
		}
		g.Counts[sev] += n
		g.Total += n
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]Aggregate, 0, len(order))
	for _, id := range order {
		out = append(out, *groups[id])
	}
	sortAggregates(out)
	return out, nil
}

// sortAggregates orders groups most severe first, then by key. Each
// group's rank (its counts, most severe first) and key are computed once:
// tens of thousands of groups (by vulnerability) make a comparison that
// formats its operands the cost of the whole aggregation.
func sortAggregates(out []Aggregate) {
	sevs := []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "NONE", "UNTRIAGED"}
	type ranked struct {
		counts [6]int
		key    string
		a      Aggregate
	}
	rs := make([]ranked, len(out))
	for i, a := range out {
		rs[i].a = a
		for j, sev := range sevs {
			rs[i].counts[j] = a.Counts[sev]
		}
		rs[i].key = fmt.Sprint(a.Key)
	}
	slices.SortFunc(rs, func(a, b ranked) int {
		for j := range a.counts {
			if c := cmp.Compare(b.counts[j], a.counts[j]); c != 0 {
				return c
			}
		}
		return cmp.Compare(a.key, b.key)
	})
	for i := range rs {
		out[i] = rs[i].a
	}
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
