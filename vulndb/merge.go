package vulndb

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/feed/cve"
	"github.com/vigil-project/vigil/feed/osv"
)

// merged is the derived view of one update: vulnerabilities and the ids
// that lead to them.
type merged struct {
	vulns []*vigil.Vulnerability
	// related maps an advisory that covers several vulnerabilities to them.
	related map[string][]string
	// ecosystems counts advisories per OSV ecosystem.
	ecosystems map[string]int
}

// merge folds advisory records into vulnerabilities. Records that name each
// other in `aliases` are one vulnerability (OSV's meaning of aliases, applied
// transitively as osv-scanner groups them). `upstream` says a record derives
// from others: a record derived from exactly one CVE (DEBIAN-CVE-…, a DSA for
// one CVE) is that CVE; one derived from several (a DSA fixing five CVEs) is
// split, its affected packages going to each of them, and it is kept as a
// related advisory. The primary id is the lowest CVE id, else a GHSA id,
// else the smallest record id.
func merge(advs []osv.Advisory, cves map[string]cve.Record) *merged {
	uf := newUnionFind()
	split := map[string][]string{} // advisory id -> CVE ids it covers
	// Records are folded in id order, so that the result never depends on
	// the order of the zips.
	order := make([]int, len(advs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(advs[a].ID, advs[b].ID) })
	for _, i := range order {
		a := advs[i]
		uf.add(a.ID)
		if isCVE(a.ID) {
			uf.setCVE(a.ID, a.ID)
		}
		cs := recordCVEs(a)
		if len(cs) > 1 {
			// One record for several CVEs (a DSA fixing five, a GO record
			// naming two) is not one vulnerability: its packages go to each,
			// and it is listed as related. Distinct CVEs are never merged.
			split[a.ID] = cs
			for _, c := range cs {
				uf.add(c)
				uf.setCVE(c, c)
			}
			continue
		}
		if len(cs) == 1 {
			uf.add(cs[0])
			uf.setCVE(cs[0], cs[0])
			uf.union(a.ID, cs[0])
		}
		for _, al := range a.Aliases {
			if !isCVE(al) {
				// Refused when it would join two CVEs: the alias is then
				// left to its own vulnerability.
				uf.union(a.ID, al)
			}
		}
	}
	// Group ids by component.
	members := map[string][]string{}
	for id := range uf.parent {
		r := uf.find(id)
		members[r] = append(members[r], id)
	}
	byID := make(map[string]*osv.Advisory, len(advs))
	for i := range advs {
		byID[advs[i].ID] = &advs[i]
	}
	// Split advisories feed each of their CVEs' components.
	splitInto := map[string][]*osv.Advisory{} // component root -> advisories
	for id, cs := range split {
		seen := map[string]bool{}
		for _, c := range cs {
			r := uf.find(c)
			if r == uf.find(id) || seen[r] {
				continue
			}
			seen[r] = true
			splitInto[r] = append(splitInto[r], byID[id])
		}
	}
	m := &merged{related: map[string][]string{}, ecosystems: map[string]int{}}
	for _, a := range advs {
		for _, e := range a.Ecosystems {
			m.ecosystems[e]++
		}
	}
	for root, ids := range members {
		var recs []*osv.Advisory
		for _, id := range ids {
			if a := byID[id]; a != nil {
				// An advisory split over several CVEs is not a vulnerability
				// of its own: its content went to each of them.
				if _, isSplit := split[id]; isSplit && len(ids) == 1 {
					continue
				}
				recs = append(recs, a)
			}
		}
		extra := splitInto[root]
		if len(recs) == 0 && len(extra) == 0 {
			continue
		}
		v := build(ids, recs, extra, cves)
		m.vulns = append(m.vulns, v)
		for _, a := range extra {
			m.related[a.ID] = append(m.related[a.ID], v.ID)
		}
	}
	slices.SortFunc(m.vulns, func(a, b *vigil.Vulnerability) int { return strings.Compare(a.ID, b.ID) })
	for k := range m.related {
		slices.Sort(m.related[k])
	}
	return m
}

// recordCVEs returns the distinct CVE ids a record is, names as aliases,
// or derives from (reading Debian's DEBIAN-CVE-… as the CVE it stands for).
func recordCVEs(a osv.Advisory) []string {
	var out []string
	add := func(id string) {
		id = strings.TrimPrefix(id, "DEBIAN-")
		if isCVE(id) && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	add(a.ID)
	for _, al := range a.Aliases {
		add(al)
	}
	for _, u := range a.Upstream {
		add(u)
	}
	slices.SortFunc(out, compareIDs)
	return out
}

func isCVE(id string) bool {
	_, ok := cveNumber(id)
	return ok
}

// compareIDs orders CVE ids by year and number, then other ids as text.
func compareIDs(a, b string) int {
	na, oka := cveNumber(a)
	nb, okb := cveNumber(b)
	switch {
	case oka && okb:
		return cmp.Compare(na, nb)
	case oka:
		return -1
	case okb:
		return 1
	}
	return strings.Compare(a, b)
}

// primaryID picks the id a vulnerability is known by.
func primaryID(ids []string) string {
	best := ""
	rank := func(id string) int {
		switch {
		case strings.HasPrefix(id, "CVE-"):
			if _, ok := cveNumber(id); ok {
				return 0
			}
			return 2
		case strings.HasPrefix(id, "GHSA-"):
			return 1
		}
		return 2
	}
	for _, id := range ids {
		if best == "" || rank(id) < rank(best) || rank(id) == rank(best) && compareIDs(id, best) < 0 {
			best = id
		}
	}
	return best
}

// recordRank orders records as sources of text: the richest first.
func recordRank(id string) int {
	for i, p := range []string{"GHSA-", "GO-", "RUSTSEC-", "PYSEC-", "DSA-", "DLA-", "DTSA-", "DEBIAN-"} {
		if strings.HasPrefix(id, p) {
			return i
		}
	}
	return 4
}

func build(ids []string, recs, extra []*osv.Advisory, cves map[string]cve.Record) *vigil.Vulnerability {
	slices.SortFunc(recs, func(a, b *osv.Advisory) int {
		return cmp.Or(cmp.Compare(recordRank(a.ID), recordRank(b.ID)), strings.Compare(a.ID, b.ID))
	})
	slices.SortFunc(extra, func(a, b *osv.Advisory) int { return strings.Compare(a.ID, b.ID) })
	v := &vigil.Vulnerability{ID: primaryID(ids), CVSS: []vigil.CVSS{}, Aliases: []string{}, Sources: []string{}, Affected: []vigil.Affected{}}
	for _, id := range ids {
		if id != v.ID {
			v.Aliases = append(v.Aliases, id)
		}
	}
	slices.SortFunc(v.Aliases, compareIDs)
	allWithdrawn := len(recs) > 0
	var lastWithdrawn time.Time
	add := func(a *osv.Advisory, own bool) {
		if v.Summary == "" {
			v.Summary = a.Summary
		}
		if v.Details == "" && own {
			v.Details = a.Details
		}
		if !a.Published.IsZero() && (v.Published.IsZero() || a.Published.Before(v.Published)) {
			v.Published = a.Published
		}
		if a.Modified.After(v.Modified) {
			v.Modified = a.Modified
		}
		for _, c := range a.CVSS {
			if !slices.ContainsFunc(v.CVSS, func(o vigil.CVSS) bool { return o.Vector == c.Vector && o.Source == c.Source }) {
				v.CVSS = append(v.CVSS, c)
			}
		}
		for _, s := range a.VendorSeverity {
			if !slices.Contains(v.VendorSeverity, s) {
				v.VendorSeverity = append(v.VendorSeverity, s)
			}
		}
		for _, c := range a.CWEs {
			if !slices.Contains(v.CWEs, c) {
				v.CWEs = append(v.CWEs, c)
			}
		}
		for _, r := range a.References {
			if !slices.ContainsFunc(v.References, func(o vigil.Reference) bool { return o.URL == r.URL }) {
				v.References = append(v.References, r)
			}
		}
		for _, af := range a.Affected {
			af.Withdrawn = a.Withdrawn != nil
			v.Affected = append(v.Affected, af)
		}
	}
	for _, a := range recs {
		v.Sources = append(v.Sources, a.ID)
		if a.Withdrawn == nil {
			allWithdrawn = false
		} else if a.Withdrawn.After(lastWithdrawn) {
			lastWithdrawn = *a.Withdrawn
		}
		add(a, true)
	}
	for _, a := range extra {
		v.Related = append(v.Related, a.ID)
		add(a, false)
	}
	if allWithdrawn {
		v.Withdrawn = &lastWithdrawn
	}
	// CVE records supply what the advisories lack.
	for _, id := range append([]string{v.ID}, v.Aliases...) {
		rec, ok := cves[id]
		if !ok {
			continue
		}
		if len(v.CVSS) == 0 || !hasAdvisoryCVSS(v.CVSS) {
			for _, c := range rec.CVSS {
				if !slices.ContainsFunc(v.CVSS, func(o vigil.CVSS) bool { return o.Vector == c.Vector && o.Source == c.Source }) {
					v.CVSS = append(v.CVSS, c)
				}
			}
		}
		for _, c := range rec.CWEs {
			if !slices.Contains(v.CWEs, c) {
				v.CWEs = append(v.CWEs, c)
			}
		}
		if v.Summary == "" {
			v.Summary = rec.Title
		}
		if v.Details == "" {
			v.Details = rec.Description
		}
		if rec.State == "REJECTED" && v.Withdrawn == nil {
			v.VendorSeverity = append(v.VendorSeverity, vigil.VendorSeverity{Source: "cve", Severity: "REJECTED"})
		}
	}
	slices.Sort(v.CWEs)
	return v
}

func hasAdvisoryCVSS(cs []vigil.CVSS) bool {
	for _, c := range cs {
		if !strings.HasPrefix(c.Source, "cve") {
			return true
		}
	}
	return false
}

// unionFind groups ids; each group holds at most one CVE id.
type unionFind struct {
	parent map[string]string
	cve    map[string]string // root -> the group's CVE id
}

func newUnionFind() *unionFind {
	return &unionFind{parent: map[string]string{}, cve: map[string]string{}}
}

func (u *unionFind) setCVE(x, c string) { u.cve[u.find(x)] = c }

func (u *unionFind) add(x string) {
	if _, ok := u.parent[x]; !ok {
		u.parent[x] = x
	}
}

func (u *unionFind) find(x string) string {
	u.add(x)
	for u.parent[x] != x {
		u.parent[x] = u.parent[u.parent[x]]
		x = u.parent[x]
	}
	return x
}

// union joins the groups of a and b, unless each has a different CVE.
func (u *unionFind) union(a, b string) bool {
	ra, rb := u.find(a), u.find(b)
	if ra == rb {
		return true
	}
	ca, cb := u.cve[ra], u.cve[rb]
	if ca != "" && cb != "" && ca != cb {
		return false
	}
	u.parent[ra] = rb
	if ca != "" {
		u.cve[rb] = ca
	}
	delete(u.cve, ra)
	return true
}
