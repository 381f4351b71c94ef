package sqlstore

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/vigil-project/vigil"
)

// TestRematchAfterConcurrentScan: a scan that lands between a rematch
// batch's early read (on a reader connection) and its write transaction
// is not undone by what the early read saw. A scan of the same inventory
// (matched against another database) leaves the rematch to reconcile
// with the findings it wrote; a scan of a new inventory makes the rematch
// of the old one skip the resource.
func TestRematchAfterConcurrentScan(t *testing.T) {
	for _, tc := range []struct {
		name string
		// scan, if set, is the inventory digest of the scan in between.
		scan string
		want map[string]string
	}{
		{"no scan", "", map[string]string{"CVE-A": "ACTIVE", "CVE-B": "ACTIVE", "CVE-D": "ACTIVE"}},
		// The scan closed B and opened C; the rematch opens B again and
		// closes C.
		{"same inventory", "sha256:1", map[string]string{"CVE-A": "ACTIVE", "CVE-B": "ACTIVE", "CVE-C": "CLOSED", "CVE-D": "ACTIVE"}},
		// The scan's findings stand.
		{"new inventory", "sha256:2", map[string]string{"CVE-A": "ACTIVE", "CVE-B": "CLOSED", "CVE-C": "ACTIVE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s, err := Open(ctx, filepath.Join(t.TempDir(), "vigil.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.CreateAccount(ctx, "acme", ""); err != nil {
				t.Fatal(err)
			}
			p, err := s.AccountPrincipal(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			spec := ResourceSpec{Type: vigil.ResourceHost, Name: "h"}
			inv := func(digest string) *vigil.Inventory {
				return &vigil.Inventory{SchemaVersion: vigil.InventorySchemaVersion, Digest: digest,
					Packages: []vigil.Package{{Name: "lodash", Version: "1.0", Ecosystem: "npm"}}}
			}
			sub, err := s.SubmitInventory(ctx, p, spec, inv("sha256:1"), []vigil.Finding{finding("CVE-A"), finding("CVE-B")}, 1)
			if err != nil {
				t.Fatal(err)
			}
			if tc.scan != "" {
				afterPrefetchEarly = func() {
					if _, err := s.SubmitInventory(ctx, p, spec, inv(tc.scan), []vigil.Finding{finding("CVE-A"), finding("CVE-C")}, 1); err != nil {
						t.Error(err)
					}
				}
				defer func() { afterPrefetchEarly = nil }()
			}
			out, err := s.RematchBatch(ctx, []RematchItem{{ResourceID: sub.Resource.ID, InventoryDigest: "sha256:1",
				Matches: []vigil.Finding{finding("CVE-A"), finding("CVE-B"), finding("CVE-D")}}}, 2, false)
			if err != nil {
				t.Fatal(err)
			}
			if skipped := tc.scan == "sha256:2"; out[0].Skipped != skipped {
				t.Errorf("skipped %v, want %v", out[0].Skipped, skipped)
			}
			rows, err := s.db.QueryContext(ctx, "SELECT vuln_id, status FROM findings WHERE resource_id = ?", sub.Resource.ID)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for rows.Next() {
				var v, st string
				if err := rows.Scan(&v, &st); err != nil {
					t.Fatal(err)
				}
				got[v] = st
			}
			rows.Close()
			if len(got) != len(tc.want) {
				t.Fatalf("findings %v, want %v", got, tc.want)
			}
			for v, st := range tc.want {
				if got[v] != st {
					t.Errorf("%s is %s, want %s (all: %v)", v, got[v], st, got)
				}
			}
		})
	}
}

func finding(id string) vigil.Finding {
	f := vigil.Finding{Vulnerability: vigil.FindingVulnerability{ID: id, Title: id}, Severity: "HIGH",
		Packages: []vigil.VulnerablePackage{{Name: "lodash", Version: "1.0", Ecosystem: "npm", FixedVersion: "2.0"}}}
	f.FixAvailable = vigil.FixAvailability(f.Packages)
	return f
}

func TestInsertRowsRefusesRagged(t *testing.T) {
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tx, err := s.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for _, c := range []struct {
		width int
		args  []any
	}{{3, []any{1, 2, 3, 4}}, {0, nil}, {-1, []any{1}}} {
		if err := s.insertRows(context.Background(), tx, "INSERT INTO usage_counts VALUES %v", "(?, ?, ?)", c.width, 10, c.args); err == nil {
			t.Errorf("width %d, %d values: no error", c.width, len(c.args))
		}
	}
}
