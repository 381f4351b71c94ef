package sqlstore_test

import (
	"context"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/internal/testutil"
	"github.com/vigil-project/vigil/sqlstore"
)

// BenchmarkStore fills a store with VIGIL_BENCH_RESOURCES resources
// (default 200) of VIGIL_BENCH_FINDINGS findings each (default 100),
// through SubmitInventory as the server does (reconcile throughput), then
// measures the p95 latency of a first page (100) of filtered finding
// lists and of each unfiltered aggregation, with planner statistics as the
// server's upkeep keeps them. `bench/store.sh 10000 100` runs it at the
// issue's scale on SQLite and PostgreSQL.
func BenchmarkStore(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			s := benchStore(b, backend)
			resources := envInt("VIGIL_BENCH_RESOURCES", 200)
			perResource := envInt("VIGIL_BENCH_FINDINGS", 100)
			ctx := context.Background()
			if _, err := s.CreateAccount(ctx, "acme", ""); err != nil {
				b.Fatal(err)
			}
			secret, _, _ := s.CreateKey(ctx, "acme", vigil.RoleAdmin, nil)
			p, _ := s.Authenticate(ctx, secret)
			rng := mrand.New(mrand.NewPCG(1, 2))
			sevs := []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "UNTRIAGED"}
			pkgs := []string{"openssl", "libssl3", "zlib1g", "curl", "libc6", "perl", "python3.11", "nginx", "lodash", "express", "log4j-core", "jackson-databind"}
			start := time.Now()
			var resourceIDs []string
			for r := 0; r < resources; r++ {
				var fs []vigil.Finding
				for i := 0; i < perResource; i++ {
					cve := fmt.Sprintf("CVE-%d-%05d", 2018+rng.IntN(9), rng.IntN(40000))
					score := float64(rng.IntN(100)) / 10
					f := vigil.Finding{
						Vulnerability: vigil.FindingVulnerability{ID: cve, Title: "vulnerability in " + pkgs[i%len(pkgs)]},
						Severity:      sevs[rng.IntN(len(sevs))], Score: &score, EPSS: &vigil.EPSS{Score: rng.Float64()},
						Packages: []vigil.VulnerablePackage{{Name: pkgs[rng.IntN(len(pkgs))], Version: "1." + strconv.Itoa(rng.IntN(20)), Ecosystem: "Debian:12", FixedVersion: "2.0", Layer: "sha256:layer" + strconv.Itoa(rng.IntN(8))}},
					}
					if rng.IntN(50) == 0 {
						f.KEV = &vigil.KEV{CVE: cve}
					}
					f.FixAvailable = vigil.FixAvailability(f.Packages)
					fs = append(fs, f)
				}
				inv := &vigil.Inventory{SchemaVersion: vigil.InventorySchemaVersion, Digest: "sha256:" + strconv.Itoa(r)}
				env := []string{"prod", "staging", "dev"}[r%3]
				sub, err := s.SubmitInventory(ctx, p, sqlstore.ResourceSpec{Type: vigil.ResourceImage, Name: fmt.Sprintf("registry.example.com/app%d:%d", r%50, r), Tags: map[string]string{"env": env}}, inv, fs, 1)
				if err != nil {
					b.Fatal(err)
				}
				resourceIDs = append(resourceIDs, sub.Resource.ID)
			}
			elapsed := time.Since(start)
			b.ReportMetric(float64(resources)/elapsed.Seconds(), "inventories/s")
			b.ReportMetric(float64(resources*perResource)/elapsed.Seconds(), "findings/s")
			// Measure the steady state: statistics as the server's hourly
			// upkeep (and PostgreSQL's autovacuum) keep them.
			if err := s.Optimize(ctx); err != nil {
				b.Fatal(err)
			}

			yes := true
			queries := map[string]func() error{
				"list-severity-status": func() error {
					_, _, err := s.Findings(ctx, p, sqlstore.FindingFilter{Severity: []string{"CRITICAL", "HIGH"}, Status: []string{"ACTIVE"}, Limit: 100})
					return err
				},
				"list-one-resource": func() error {
					_, _, err := s.Findings(ctx, p, sqlstore.FindingFilter{ResourceID: resourceIDs[rng.IntN(len(resourceIDs))], Limit: 100})
					return err
				},
				"list-one-vulnerability": func() error {
					_, _, err := s.Findings(ctx, p, sqlstore.FindingFilter{VulnID: fmt.Sprintf("CVE-%d-%05d", 2018+rng.IntN(9), rng.IntN(40000)), Limit: 100})
					return err
				},
				"list-tag": func() error {
					_, _, err := s.Findings(ctx, p, sqlstore.FindingFilter{ResourceTags: map[string]string{"env": "prod"}, Limit: 100})
					return err
				},
				"list-kev-by-epss": func() error {
					_, _, err := s.Findings(ctx, p, sqlstore.FindingFilter{ExploitAvailable: &yes, Sort: "epss", Limit: 100})
					return err
				},
			}
			for _, by := range sqlstore.AggregateBy {
				queries["aggregate-"+by] = func() error {
					_, _, err := s.Aggregate(ctx, p, by, sqlstore.FindingFilter{})
					return err
				}
			}
			names := make([]string, 0, len(queries))
			for n := range queries {
				names = append(names, n)
			}
			slices.Sort(names)
			runs := envInt("VIGIL_BENCH_RUNS", 20)
			for _, n := range names {
				var lat []float64
				for i := 0; i < runs; i++ {
					t0 := time.Now()
					if err := queries[n](); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, float64(time.Since(t0).Microseconds())/1000)
				}
				slices.Sort(lat)
				p95 := lat[int(math.Ceil(0.95*float64(len(lat))))-1]
				b.ReportMetric(p95, n+"-p95-ms")
			}
		})
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func benchStore(b *testing.B, backend string) *sqlstore.Store {
	ctx := context.Background()
	if backend == "sqlite" {
		s, err := sqlstore.Open(ctx, filepath.Join(b.TempDir(), "store.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}
	s, err := sqlstore.Open(ctx, testutil.Postgres(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}
