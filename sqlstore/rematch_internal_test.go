package sqlstore

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/vigil-project/vigil"
)

// TestRematchAfterConcurrentScan: a scan that lands between a rematch
// batch's early read (on a reader connection) and its write transaction
// is seen, not overwritten by what the early read saw.
func TestRematchAfterConcurrentScan(t *testing.T) {
	for _, concurrent := range []bool{false, true} {
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
		if concurrent {
			afterPrefetchEarly = func() {
				if _, err := s.SubmitInventory(ctx, p, spec, inv("sha256:2"), []vigil.Finding{finding("CVE-A"), finding("CVE-C")}, 1); err != nil {
					t.Error(err)
				}
			}
		}
		_, err = s.Rematch(ctx, sub.Resource.ID, []vigil.Finding{finding("CVE-A"), finding("CVE-B"), finding("CVE-D")}, 2, "", "", false)
		afterPrefetchEarly = nil
		if err != nil {
			t.Fatal(err)
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
		want := map[string]string{"CVE-A": "ACTIVE", "CVE-B": "ACTIVE", "CVE-D": "ACTIVE"}
		if concurrent {
			// The scan closed B and opened C; the rematch (of the
			// inventory it read before) opens B again, closes C.
			want["CVE-C"] = "CLOSED"
		}
		if len(got) != len(want) {
			t.Fatalf("concurrent=%v: findings %v, want %v", concurrent, got, want)
		}
		for v, st := range want {
			if got[v] != st {
				t.Errorf("concurrent=%v: %s is %s, want %s (all: %v)", concurrent, v, got[v], st, got)
			}
		}
	}
}

func finding(id string) vigil.Finding {
	f := vigil.Finding{Vulnerability: vigil.FindingVulnerability{ID: id, Title: id}, Severity: "HIGH",
		Packages: []vigil.VulnerablePackage{{Name: "lodash", Version: "1.0", Ecosystem: "npm", FixedVersion: "2.0"}}}
	f.FixAvailable = vigil.FixAvailability(f.Packages)
	return f
}
