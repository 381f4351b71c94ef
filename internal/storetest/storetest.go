// Package storetest is the store's conformance suite: the same tests, run
// against SQLite and PostgreSQL.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/reconcile"
	"github.com/vigil-project/vigil/sqlstore"
)

// Run runs the suite; open returns a new, empty store.
func Run(t *testing.T, open func(t *testing.T) *sqlstore.Store) {
	for _, c := range []struct {
		name string
		fn   func(*testing.T, *sqlstore.Store)
	}{
		{"Keys", testKeys},
		{"Lifecycle", testLifecycle},
		{"TenantIsolation", testTenantIsolation},
		{"Pagination", testPagination},
		{"BadInputWritesNothing", testBadInput},
		{"FiltersSortsAggregates", testFilters},
		{"ConcurrentSubmissionsAndTags", testConcurrent},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open(t)) })
	}
}

func code(err error) string {
	var e *vigil.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// must returns v, or fails the test by panicking on err (Go cannot pass a
// test handle beside a two-valued call).
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func mustList[T any](v T, _ string, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func mustPage[T any](v T, next string, err error) (T, string) {
	if err != nil {
		panic(err)
	}
	return v, next
}

func principal(t *testing.T, s *sqlstore.Store, account, role string) vigil.Principal {
	t.Helper()
	secret, _, err := s.CreateKey(context.Background(), account, role, nil)
	if err != nil {
		t.Fatal(err)
	}
	return must(s.Authenticate(context.Background(), secret))
}

func testKeys(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	s.Now = c.now
	must(s.CreateAccount(ctx, "acme", ""))
	if _, err := s.CreateAccount(ctx, "acme", ""); code(err) != vigil.ECONFLICT {
		t.Errorf("duplicate account: %v", err)
	}
	if _, err := s.CreateAccount(ctx, "bad name", ""); code(err) != vigil.EINVALID {
		t.Errorf("bad name: %v", err)
	}
	if _, _, err := s.CreateKey(ctx, "acme", "root", nil); code(err) != vigil.EINVALID {
		t.Errorf("bad role: %v", err)
	}
	if _, _, err := s.CreateKey(ctx, "nobody", vigil.RoleAdmin, nil); code(err) != vigil.ENOTFOUND {
		t.Errorf("unknown account: %v", err)
	}
	exp := c.t.Add(time.Hour)
	secret, key, err := s.CreateKey(ctx, "acme", vigil.RoleAnalyst, &exp)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Authenticate(ctx, secret)
	if err != nil || p.Account != "acme" || p.Role != vigil.RoleAnalyst {
		t.Fatalf("authenticate: %+v %v", p, err)
	}
	for _, bad := range []string{"", "vgl_nope", secret + "x", "Bearer " + secret} {
		if _, err := s.Authenticate(ctx, bad); code(err) != vigil.EUNAUTHORIZED {
			t.Errorf("Authenticate(%q) = %v", bad, err)
		}
	}
	c.t = c.t.Add(2 * time.Hour)
	if _, err := s.Authenticate(ctx, secret); code(err) != vigil.EUNAUTHORIZED {
		t.Errorf("expired key: %v", err)
	}
	admin := principal(t, s, "acme", vigil.RoleAdmin)
	secret2, key2, _ := s.CreateKey(ctx, "acme", vigil.RoleReadOnly, nil)
	if err := s.RevokeKey(ctx, admin, key2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, secret2); code(err) != vigil.EUNAUTHORIZED {
		t.Errorf("revoked key: %v", err)
	}
	_ = key
}

func inventory(digest string, pkgs ...vigil.Package) *vigil.Inventory {
	return &vigil.Inventory{SchemaVersion: vigil.InventorySchemaVersion, Digest: digest, Packages: pkgs,
		OS: &vigil.OSInfo{ID: "debian", VersionID: "12", Ecosystem: "Debian:12"}}
}

func finding(id, sev, pkg string) vigil.Finding {
	f := vigil.Finding{Vulnerability: vigil.FindingVulnerability{ID: id, Title: id}, Severity: sev,
		Packages: []vigil.VulnerablePackage{{Name: pkg, Version: "1.0", Ecosystem: "npm", FixedVersion: "2.0"}}}
	f.FixAvailable = vigil.FixAvailability(f.Packages)
	return f
}

func testLifecycle(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	s.Now = c.now
	must(s.CreateAccount(ctx, "acme", ""))
	agent := principal(t, s, "acme", vigil.RoleAgent)
	reader := principal(t, s, "acme", vigil.RoleReadOnly)
	spec := sqlstore.ResourceSpec{Type: vigil.ResourceImage, Name: "registry.example.com/app:1", Tags: map[string]string{"team": "web"}}
	inv := inventory("sha256:1", vigil.Package{Name: "lodash", Version: "1.0", Ecosystem: "npm"}, vigil.Package{Name: "libssl3", Type: "deb", SourceName: "openssl", Version: "3.0", Ecosystem: "Debian:12"})

	sub, err := s.SubmitInventory(ctx, agent, spec, inv, []vigil.Finding{finding("CVE-1", "HIGH", "lodash"), finding("CVE-2", "LOW", "lodash")}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(sub.Events) != 2 || sub.Resource.Account != "acme" || sub.Resource.Tags["team"] != "web" {
		t.Fatalf("first submit: %+v", sub)
	}
	if _, err := s.SubmitInventory(ctx, reader, spec, inv, nil, 1); code(err) != vigil.EFORBIDDEN {
		t.Errorf("read-only key submitted: %v", err)
	}
	if _, _, err := s.Findings(ctx, agent, sqlstore.FindingFilter{}); code(err) != vigil.EFORBIDDEN {
		t.Errorf("agent key read findings: %v", err)
	}
	got, _, err := s.Findings(ctx, reader, sqlstore.FindingFilter{})
	if err != nil || len(got) != 2 || got[0].Finding.Vulnerability.ID != "CVE-1" || got[0].Status != reconcile.Active {
		t.Fatalf("findings: %+v %v", got, err)
	}
	if ids := must(s.ResourcesHolding(ctx, "Debian:12", "openssl")); !slices.Equal(ids, []string{sub.Resource.ID}) {
		t.Errorf("resources holding openssl: %q", ids)
	}

	// CVE-2 fixed: closed; then back: reopened, same id, history kept.
	c.t = c.t.Add(time.Hour)
	if _, err := s.SubmitInventory(ctx, agent, spec, inventory("sha256:2"), []vigil.Finding{finding("CVE-1", "HIGH", "lodash")}, 2); err != nil {
		t.Fatal(err)
	}
	closed := must2(t, s, reader, sqlstore.FindingFilter{Status: []string{reconcile.Closed}})
	if len(closed) != 1 || closed[0].Finding.Vulnerability.ID != "CVE-2" || closed[0].ClosedAt == nil {
		t.Fatalf("closed: %+v", closed)
	}
	c.t = c.t.Add(time.Hour)
	sub, err = s.SubmitInventory(ctx, agent, spec, inventory("sha256:3"), []vigil.Finding{finding("CVE-1", "HIGH", "lodash"), finding("CVE-2", "LOW", "lodash")}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(sub.Events) != 1 || sub.Events[0].Type != reconcile.Reopened {
		t.Errorf("reopen events: %+v", sub.Events)
	}
	hist := must(s.History(ctx, reader, closed[0].ID))
	var types []string
	for _, e := range hist {
		types = append(types, e.Type)
	}
	if !slices.Equal(types, []string{reconcile.Opened, reconcile.ClosedEvent, reconcile.Reopened}) {
		t.Errorf("history %q", types)
	}
	active := must2(t, s, reader, sqlstore.FindingFilter{Status: []string{reconcile.Active}, Severity: []string{"LOW"}})
	if len(active) != 1 || !active[0].FirstObserved.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) || active[0].DBRevision != 3 {
		t.Errorf("reopened finding: %+v", active)
	}
	if f := must2(t, s, reader, sqlstore.FindingFilter{PackageName: "lodash", VulnID: "cve-1"}); len(f) != 1 {
		t.Errorf("by package and vulnerability: %+v", f)
	}

	// Retention: closed findings older than the cut go, with their history;
	// others stay.
	c.t = c.t.Add(time.Hour)
	must(s.SubmitInventory(ctx, agent, spec, inventory("sha256:4"), []vigil.Finding{finding("CVE-1", "HIGH", "lodash")}, 4))
	if n := must(s.PurgeClosed(ctx, c.t.Add(-time.Minute))); n != 0 {
		t.Errorf("purged %d findings closed after the cut", n)
	}
	if n := must(s.PurgeClosed(ctx, c.t.Add(time.Minute))); n != 1 {
		t.Errorf("purged %d findings, want 1", n)
	}
	if got := must2(t, s, reader, sqlstore.FindingFilter{}); len(got) != 1 || got[0].Finding.Vulnerability.ID != "CVE-1" {
		t.Errorf("after the purge: %+v", got)
	}
	consistent(t, s, reader)
	rs := mustList(s.Resources(ctx, reader, sqlstore.ResourceFilter{}))
	must(s.DeleteResource(ctx, principal(t, s, "acme", vigil.RoleAdmin), rs[0].ID))
	consistent(t, s, reader)
}

func must2(t *testing.T, s *sqlstore.Store, p vigil.Principal, f sqlstore.FindingFilter) []reconcile.Stored {
	t.Helper()
	out, _, err := s.Findings(context.Background(), p, f)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func testTenantIsolation(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	must(s.CreateAccount(ctx, "org", ""))
	must(s.CreateAccount(ctx, "team-a", "org"))
	must(s.CreateAccount(ctx, "team-b", "org"))
	must(s.CreateAccount(ctx, "other", ""))
	if _, err := s.CreateAccount(ctx, "nested", "team-a"); code(err) != vigil.EINVALID {
		t.Errorf("member as administrator: %v", err)
	}
	a := principal(t, s, "team-a", vigil.RoleAdmin)
	b := principal(t, s, "team-b", vigil.RoleAdmin)
	org := principal(t, s, "org", vigil.RoleAdmin)
	other := principal(t, s, "other", vigil.RoleAdmin)
	spec := sqlstore.ResourceSpec{Type: vigil.ResourceHost, Name: "web-1"}
	subA := must(s.SubmitInventory(ctx, a, spec, inventory("sha256:a"), []vigil.Finding{finding("CVE-A", "HIGH", "x")}, 1))
	must(s.SubmitInventory(ctx, b, spec, inventory("sha256:b"), []vigil.Finding{finding("CVE-B", "HIGH", "y")}, 1))
	// B cannot see A's findings, history or resources, nor file under A.
	for _, f := range must2(t, s, b, sqlstore.FindingFilter{}) {
		if f.Finding.Vulnerability.ID != "CVE-B" {
			t.Errorf("team-b sees %s", f.Finding.Vulnerability.ID)
		}
	}
	if got := must2(t, s, b, sqlstore.FindingFilter{ResourceID: subA.Resource.ID}); len(got) != 0 {
		t.Errorf("team-b lists team-a's resource: %+v", got)
	}
	idA := must2(t, s, a, sqlstore.FindingFilter{})[0].ID
	if _, err := s.History(ctx, b, idA); code(err) != vigil.ENOTFOUND {
		t.Errorf("team-b reads team-a's history: %v", err)
	}
	if _, err := s.SubmitInventory(ctx, b, sqlstore.ResourceSpec{Account: "team-a", Type: vigil.ResourceHost, Name: "x"}, inventory("sha256:c"), nil, 1); code(err) != vigil.ENOTFOUND {
		t.Errorf("team-b files under team-a: %v", err)
	}
	if got := must2(t, s, other, sqlstore.FindingFilter{}); len(got) != 0 {
		t.Errorf("another organisation sees %d findings", len(got))
	}
	// The administrator sees its members', and may file under them.
	if got := must2(t, s, org, sqlstore.FindingFilter{}); len(got) != 2 {
		t.Errorf("administrator sees %d findings", len(got))
	}
	if _, err := s.SubmitInventory(ctx, org, sqlstore.ResourceSpec{Account: "team-a", Type: vigil.ResourceHost, Name: "db-1"}, inventory("sha256:d"), nil, 1); err != nil {
		t.Errorf("administrator files under a member: %v", err)
	}
	accts := must(s.Accounts(ctx, org))
	if len(accts) != 3 {
		t.Errorf("administrator sees accounts %+v", accts)
	}
	if accts := must(s.Accounts(ctx, a)); len(accts) != 1 || accts[0].Name != "team-a" {
		t.Errorf("member sees accounts %+v", accts)
	}
	if err := s.RevokeKey(ctx, b, 1); code(err) != vigil.ENOTFOUND {
		t.Errorf("team-b revokes another account's key: %v", err)
	}
}

func testPagination(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	must(s.CreateAccount(ctx, "acme", ""))
	p := principal(t, s, "acme", vigil.RoleAdmin)
	var fs []vigil.Finding
	sevs := []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "UNTRIAGED"}
	for i := 0; i < 23; i++ {
		fs = append(fs, finding("CVE-2026-"+string(rune('a'+i)), sevs[i%len(sevs)], "p"))
	}
	must(s.SubmitInventory(ctx, p, sqlstore.ResourceSpec{Type: vigil.ResourceHost, Name: "h"}, inventory("sha256:1"), fs, 1))
	var all []string
	cursor := ""
	pages := 0
	for {
		page, next, err := s.Findings(ctx, p, sqlstore.FindingFilter{Limit: 5, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, f := range page {
			all = append(all, f.Finding.Severity+" "+f.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(all) != 23 || pages != 5 {
		t.Fatalf("%d findings in %d pages", len(all), pages)
	}
	seen := map[string]bool{}
	for i, k := range all {
		if seen[k] {
			t.Errorf("%s twice", k)
		}
		seen[k] = true
		if i > 0 && rank(all[i-1]) < rank(k) {
			t.Errorf("not most severe first: %s before %s", all[i-1], k)
		}
	}
	if _, _, err := s.Findings(ctx, p, sqlstore.FindingFilter{Cursor: "garbage!"}); code(err) != vigil.EINVALID {
		t.Errorf("bad cursor: %v", err)
	}
}

func rank(s string) int {
	for i, sev := range []string{"UNTRIAGED", "LOW", "MEDIUM", "HIGH", "CRITICAL"} {
		if len(s) > len(sev) && s[:len(sev)] == sev {
			return i
		}
	}
	return -1
}

func testBadInput(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	must(s.CreateAccount(ctx, "acme", ""))
	p := principal(t, s, "acme", vigil.RoleAdmin)
	for name, c := range map[string]struct {
		spec sqlstore.ResourceSpec
		inv  *vigil.Inventory
	}{
		"no type":        {sqlstore.ResourceSpec{Name: "x"}, inventory("d")},
		"no name":        {sqlstore.ResourceSpec{Type: vigil.ResourceHost}, inventory("d")},
		"no inventory":   {sqlstore.ResourceSpec{Type: vigil.ResourceHost, Name: "x"}, nil},
		"future version": {sqlstore.ResourceSpec{Type: vigil.ResourceHost, Name: "x"}, &vigil.Inventory{SchemaVersion: 99}},
	} {
		if _, err := s.SubmitInventory(ctx, p, c.spec, c.inv, []vigil.Finding{finding("CVE-1", "HIGH", "x")}, 1); code(err) != vigil.EINVALID {
			t.Errorf("%s: %v", name, err)
		}
	}
	if got := must2(t, s, p, sqlstore.FindingFilter{}); len(got) != 0 {
		t.Errorf("bad input wrote %d findings", len(got))
	}
}

func testFilters(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	s.Now = c.now
	must(s.CreateAccount(ctx, "org", ""))
	must(s.CreateAccount(ctx, "team", "org"))
	org := principal(t, s, "org", vigil.RoleAdmin)
	team := principal(t, s, "team", vigil.RoleAnalyst)
	mk := func(id, sev string, score, epss float64, kev bool, pkg, layer string) vigil.Finding {
		f := finding(id, sev, pkg)
		f.Score, f.EPSS = &score, &vigil.EPSS{Score: epss}
		f.Packages[0].Layer = layer
		if kev {
			f.KEV = &vigil.KEV{CVE: id}
		}
		f.Vulnerability.Title = "Title of " + id
		return f
	}
	must(s.SubmitInventory(ctx, team, sqlstore.ResourceSpec{Type: vigil.ResourceImage, Name: "registry.example.com/web:1", Tags: map[string]string{"env": "prod"}}, inventory("sha256:1"),
		[]vigil.Finding{mk("CVE-2026-1", "CRITICAL", 9.8, 0.9, true, "openssl", "sha256:l1"), mk("CVE-2026-2", "MEDIUM", 5.0, 0.01, false, "zlib", "sha256:l2")}, 1))
	c.t = c.t.Add(time.Hour)
	must(s.SubmitInventory(ctx, team, sqlstore.ResourceSpec{Type: vigil.ResourceImage, Name: "registry.example.com/web:2", Tags: map[string]string{"env": "dev"}}, inventory("sha256:2"),
		[]vigil.Finding{mk("CVE-2026-1", "CRITICAL", 9.8, 0.9, true, "openssl", "sha256:l1"), mk("CVE-2026-3", "HIGH", 7.5, 0.5, false, "curl", "sha256:l3")}, 1))
	must(s.SubmitInventory(ctx, org, sqlstore.ResourceSpec{Type: vigil.ResourceHost, Name: "db-1"}, inventory("sha256:3"),
		[]vigil.Finding{mk("CVE-2026-4", "LOW", 2.0, 0.2, false, "zlib", "")}, 1))
	f64 := func(v float64) *float64 { return &v }
	yes := true
	for _, c := range []struct {
		name string
		f    sqlstore.FindingFilter
		want []string
	}{
		{"resource type", sqlstore.FindingFilter{ResourceType: vigil.ResourceHost}, []string{"CVE-2026-4"}},
		{"resource tag", sqlstore.FindingFilter{ResourceTags: map[string]string{"env": "prod"}}, []string{"CVE-2026-1", "CVE-2026-2"}},
		{"exploit available", sqlstore.FindingFilter{ExploitAvailable: &yes}, []string{"CVE-2026-1", "CVE-2026-1"}},
		{"epss range", sqlstore.FindingFilter{EPSSMin: f64(0.1), EPSSMax: f64(0.6)}, []string{"CVE-2026-3", "CVE-2026-4"}},
		{"score range", sqlstore.FindingFilter{ScoreMin: f64(7)}, []string{"CVE-2026-1", "CVE-2026-1", "CVE-2026-3"}},
		{"package version and ecosystem", sqlstore.FindingFilter{PackageName: "zlib", PackageVersion: "1.0", PackageEcosystem: "npm"}, []string{"CVE-2026-2", "CVE-2026-4"}},
		{"fix available", sqlstore.FindingFilter{FixAvailable: vigil.FixYes, Severity: []string{"HIGH"}}, []string{"CVE-2026-3"}},
		{"first observed range", sqlstore.FindingFilter{FirstObservedFrom: time.Date(2026, 11, 1, 0, 30, 0, 0, time.UTC)}, []string{"CVE-2026-1", "CVE-2026-3", "CVE-2026-4"}},
		{"title contains", sqlstore.FindingFilter{TitleContains: "of cve-2026-2"}, []string{"CVE-2026-2"}},
		{"sorted by epss", sqlstore.FindingFilter{Sort: "epss"}, []string{"CVE-2026-1", "CVE-2026-1", "CVE-2026-3", "CVE-2026-4", "CVE-2026-2"}},
		{"sorted by last observed", sqlstore.FindingFilter{Sort: "lastObserved", Limit: 1}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := must2(t, s, org, c.f)
			var ids []string
			for _, f := range got {
				ids = append(ids, f.Finding.Vulnerability.ID)
			}
			if c.want != nil && c.f.Sort == "" {
				slices.Sort(ids)
			}
			if c.want != nil && !slices.Equal(ids, c.want) {
				t.Errorf("got %q, want %q", ids, c.want)
			}
		})
	}
	// Paging a non-default order keeps it.
	var all []string
	cursor := ""
	for {
		page, next, err := s.Findings(ctx, org, sqlstore.FindingFilter{Sort: "score", Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range page {
			all = append(all, f.Finding.Vulnerability.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if !slices.Equal(all, []string{"CVE-2026-1", "CVE-2026-1", "CVE-2026-3", "CVE-2026-2", "CVE-2026-4"}) {
		t.Errorf("by score, paged: %q", all)
	}
	if _, _, err := s.Findings(ctx, org, sqlstore.FindingFilter{Sort: "epss", Cursor: cursor}); code(err) != vigil.EINVALID {
		t.Errorf("cursor of another order: %v", err)
	}
	if _, _, err := s.Findings(ctx, org, sqlstore.FindingFilter{Sort: "colour"}); code(err) != vigil.EINVALID {
		t.Errorf("unknown sort: %v", err)
	}

	agg := func(by string) map[string]sqlstore.Aggregate {
		t.Helper()
		rows, next, err := s.Aggregate(ctx, org, by, sqlstore.FindingFilter{})
		if err != nil || next != "" {
			t.Fatal(next, err)
		}
		out := map[string]sqlstore.Aggregate{}
		for _, r := range rows {
			var parts []string
			for _, k := range []string{"resourceName", "name", "vulnerabilityId", "repository", "layer", "account"} {
				if v := r.Key[k]; v != "" {
					parts = append(parts, v)
				}
			}
			out[strings.Join(parts, " ")] = r
		}
		return out
	}
	if r := agg("repository")["registry.example.com/web"]; r.Total != 4 || r.Counts["CRITICAL"] != 2 {
		t.Errorf("by repository: %+v", agg("repository"))
	}
	if r := agg("vulnerability")["CVE-2026-1"]; r.Total != 2 {
		t.Errorf("by vulnerability: %+v", r)
	}
	if r := agg("package")["zlib"]; r.Total != 2 || r.Counts["LOW"] != 1 {
		t.Errorf("by package: %+v", agg("package"))
	}
	if r := agg("layer")["sha256:l1"]; r.Total != 2 {
		t.Errorf("by layer: %+v", agg("layer"))
	}
	if a := agg("account"); a["team"].Total != 4 || a["org"].Total != 1 {
		t.Errorf("by account: %+v", a)
	}
	if a := agg("resource"); len(a) != 3 || a["db-1"].Counts["LOW"] != 1 {
		t.Errorf("by resource: %+v", a)
	}
	// A member counts only its own.
	rows, _, _ := s.Aggregate(ctx, team, "account", sqlstore.FindingFilter{})
	if len(rows) != 1 || rows[0].Key["account"] != "team" {
		t.Errorf("member's aggregate: %+v", rows)
	}
	if _, _, err := s.Aggregate(ctx, org, "colour", sqlstore.FindingFilter{}); code(err) != vigil.EINVALID {
		t.Errorf("unknown aggregation: %v", err)
	}
	// Resources: by type and name, a page at a time, filtered by tag.
	var names []string
	f := sqlstore.ResourceFilter{Limit: 1}
	for {
		page, next := mustPage(s.Resources(ctx, org, f))
		if len(page) != 1 {
			t.Fatalf("resource page: %+v", page)
		}
		names = append(names, page[0].Type+" "+page[0].Name)
		if next == "" {
			break
		}
		f.Cursor = next
	}
	if len(names) != 3 || !slices.IsSorted(names) {
		t.Errorf("resources by page: %v", names)
	}
	if rs := mustList(s.Resources(ctx, org, sqlstore.ResourceFilter{Tags: map[string]string{"env": "prod"}})); len(rs) != 1 || rs[0].Name != "registry.example.com/web:1" {
		t.Errorf("resources tagged env=prod: %+v", rs)
	}
	if rs := mustList(s.Resources(ctx, team, sqlstore.ResourceFilter{Type: vigil.ResourceImage, Tags: map[string]string{"env": "none"}})); len(rs) != 0 {
		t.Errorf("resources of an unused tag: %+v", rs)
	}
	if _, _, err := s.Resources(ctx, org, sqlstore.ResourceFilter{Cursor: "x"}); code(err) != vigil.EINVALID {
		t.Errorf("bad resource cursor: %v", err)
	}
	if _, _, err := s.Aggregate(ctx, org, "vulnerability", sqlstore.FindingFilter{Cursor: "bm9wZQ"}); code(err) != vigil.EINVALID {
		t.Errorf("bad aggregation cursor: %v", err)
	}
	_, next, _ := s.Aggregate(ctx, org, "vulnerability", sqlstore.FindingFilter{Limit: 1})
	if _, _, err := s.Aggregate(ctx, org, "package", sqlstore.FindingFilter{Cursor: next}); next == "" || code(err) != vigil.EINVALID {
		t.Errorf("cursor of another aggregation: %q %v", next, err)
	}
	consistent(t, s, org)
	consistent(t, s, team)
}

func testConcurrent(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	must(s.CreateAccount(ctx, "acme", ""))
	agent := principal(t, s, "acme", vigil.RoleAgent)
	admin := principal(t, s, "acme", vigil.RoleAdmin)
	spec := sqlstore.ResourceSpec{Type: vigil.ResourceHost, Name: "web-1", Tags: map[string]string{"env": "prod"}}
	// First submissions of one new resource, at once: one resource, no
	// error.
	errs := make(chan error, 6)
	for i := 0; i < 6; i++ {
		go func() {
			_, err := s.SubmitInventory(ctx, agent, spec, inventory("sha256:x"), []vigil.Finding{finding("CVE-1", "HIGH", "a")}, 1)
			errs <- err
		}()
	}
	for i := 0; i < 6; i++ {
		if err := <-errs; err != nil {
			t.Errorf("concurrent submission: %v", err)
		}
	}
	rs := mustList(s.Resources(ctx, admin, sqlstore.ResourceFilter{}))
	if len(rs) != 1 || len(must2(t, s, admin, sqlstore.FindingFilter{})) != 1 {
		t.Fatalf("resources %+v", rs)
	}
	hist := must(s.History(ctx, admin, must2(t, s, admin, sqlstore.FindingFilter{})[0].ID))
	if len(hist) != 1 {
		t.Errorf("history after concurrent submissions: %+v", hist)
	}
	// Tags set through the API survive a submission without them, and
	// concurrent tag changes do not lose each other.
	id := rs[0].ID
	done := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func() {
			_, err := s.TagResource(ctx, admin, id, map[string]string{"k" + string(rune('a'+i)): "v"}, nil)
			done <- err
		}()
	}
	for i := 0; i < 8; i++ {
		if err := <-done; err != nil {
			t.Errorf("tag: %v", err)
		}
	}
	must(s.SubmitInventory(ctx, agent, sqlstore.ResourceSpec{Type: vigil.ResourceHost, Name: "web-1"}, inventory("sha256:y"), nil, 1))
	r := must(s.Resource(ctx, admin, id))
	if len(r.Tags) != 9 || r.Tags["env"] != "prod" || r.Tags["kh"] != "v" {
		t.Errorf("tags after concurrent changes and a resubmission: %v", r.Tags)
	}
	if got := must2(t, s, admin, sqlstore.FindingFilter{ResourceTags: map[string]string{"kc": "v"}}); len(got) != 1 {
		t.Errorf("filter by a tag set concurrently: %d", len(got))
	}
	// Different resources of one account at once share aggregate rows:
	// no deadlock, no lost count.
	errs = make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func() {
			fs := []vigil.Finding{finding("CVE-1", "HIGH", "a"), finding("CVE-2", "LOW", "b"), finding("CVE-3", "MEDIUM", "c")}
			if i%2 == 1 {
				slices.Reverse(fs)
			}
			_, err := s.SubmitInventory(ctx, agent, sqlstore.ResourceSpec{Type: vigil.ResourceHost, Name: "host-" + string(rune('a'+i))}, inventory("sha256:z"), fs, 1)
			errs <- err
		}()
	}
	for i := 0; i < 8; i++ {
		if err := <-errs; err != nil {
			t.Errorf("concurrent submissions of several resources: %v", err)
		}
	}
	consistent(t, s, admin)
}

// consistent checks that the aggregations kept in step with the findings
// equal the ones counted from the findings themselves.
func consistent(t *testing.T, s *sqlstore.Store, p vigil.Principal) {
	t.Helper()
	all := sqlstore.FindingFilter{Severity: []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "NONE", "UNTRIAGED"}}
	// Every page, 2 groups a page, then the whole in one page: the pages
	// join into the whole, and the kept counts equal the counted ones,
	// in the same order.
	pages := func(by string, f sqlstore.FindingFilter) []sqlstore.Aggregate {
		t.Helper()
		var out []sqlstore.Aggregate
		f.Limit = 2
		for {
			page, next := mustPage(s.Aggregate(context.Background(), p, by, f))
			if len(page) > 2 || next != "" && len(page) != 2 {
				t.Fatalf("aggregate by %s: page of %d, next %q", by, len(page), next)
			}
			out = append(out, page...)
			if next == "" {
				return out
			}
			f.Cursor = next
		}
	}
	for _, by := range sqlstore.AggregateBy {
		kept := pages(by, sqlstore.FindingFilter{})
		counted := pages(by, all)
		whole, next := mustPage(s.Aggregate(context.Background(), p, by, sqlstore.FindingFilter{Limit: 1000}))
		if next != "" || fmt.Sprint(kept) != fmt.Sprint(whole) {
			t.Errorf("aggregate by %s: pages %v, whole %v (next %q)", by, kept, whole, next)
		}
		if fmt.Sprint(kept) != fmt.Sprint(counted) {
			t.Errorf("aggregate by %s: kept %v, counted %v", by, kept, counted)
		}
	}
}
