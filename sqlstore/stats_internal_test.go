package sqlstore

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-project/vigil"
)

// TestReadersUseFreshStatistics: a reader connection opened before the
// planner's statistics existed plans with them once Optimize has run, so
// that one resource's findings are listed through the resource's index,
// not by walking the account's.
func TestReadersUseFreshStatistics(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Every reader connection open now, before there are statistics.
	conns := make([]interface{ Close() error }, 0, readers)
	for range readers {
		c, err := s.rdb.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.ExecContext(ctx, "SELECT count(*) FROM findings"); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Close()
	}
	if _, err := s.CreateAccount(ctx, "acme", ""); err != nil {
		t.Fatal(err)
	}
	p, err := s.AccountPrincipal(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	for r := range 40 {
		var fs []vigil.Finding
		for i := range 25 {
			fs = append(fs, finding(fmt.Sprintf("CVE-%d", i)))
		}
		inv := &vigil.Inventory{SchemaVersion: vigil.InventorySchemaVersion, Digest: fmt.Sprintf("sha256:%d", r),
			Packages: []vigil.Package{{Name: "lodash", Version: "1.0", Ecosystem: "npm"}}}
		if _, err := s.SubmitInventory(ctx, p, ResourceSpec{Type: vigil.ResourceHost, Name: fmt.Sprint("h", r)}, inv, fs, 1); err != nil {
			t.Fatal(err)
		}
	}
	plan := func() string {
		rows, err := s.rdb.QueryContext(ctx, "EXPLAIN QUERY PLAN SELECT f.id FROM findings f WHERE f.account_id IN (1) AND f.resource_id = 'x' ORDER BY f.severity_rank DESC, f.id LIMIT 101")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var b strings.Builder
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			b.WriteString(detail + "; ")
		}
		return b.String()
	}
	t.Logf("before: %s", plan())
	if err := s.Optimize(ctx); err != nil {
		t.Fatal(err)
	}
	got := plan()
	t.Logf("after: %s", got)
	if !strings.Contains(got, "findings_resource") {
		t.Errorf("one resource's findings planned as %q, want through findings_resource", got)
	}
}
