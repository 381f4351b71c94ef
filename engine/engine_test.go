package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/engine"
	"github.com/vigil-project/vigil/feed"
	"github.com/vigil-project/vigil/internal/testutil"
	"github.com/vigil-project/vigil/match"
	"github.com/vigil-project/vigil/reconcile"
	"github.com/vigil-project/vigil/sqlstore"
	"github.com/vigil-project/vigil/vulndb"
	"github.com/vigil-project/vigil/worker"
)

// rig is a store, a vulnerability database built from a fixture mirror,
// an engine and a worker pool.
type rig struct {
	store  *sqlstore.Store
	eng    *engine.Engine
	mirror string
	dbPath string
	p      vigil.Principal
}

func backends() map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return filepath.Join(t.TempDir(), "store.db") },
		"postgres": func(t *testing.T) string { return testutil.Postgres(t) },
	}
}

func newRig(t testing.TB, dsn string) *rig {
	t.Helper()
	ctx := context.Background()
	r := &rig{mirror: testutil.FixtureMirror(t, filepath.Join("..", "match", "testdata", "mirror")), dbPath: filepath.Join(t.TempDir(), "vigil.db")}
	r.updateDB(t)
	var err error
	if r.store, err = sqlstore.Open(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.store.Close() })
	if _, err := r.store.CreateAccount(ctx, "acme", ""); err != nil {
		t.Fatal(err)
	}
	secret, _, err := r.store.CreateKey(ctx, "acme", vigil.RoleAdmin, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.p, err = r.store.Authenticate(ctx, secret); err != nil {
		t.Fatal(err)
	}
	// The test registries listen on loopback.
	r.eng = &engine.Engine{Store: r.store, DB: &engine.DBSource{Path: r.dbPath}, TempDir: t.TempDir(), RematchBatch: 2, AllowPrivateRegistries: true}
	return r
}

func (r *rig) updateDB(t testing.TB) *vulndb.Summary {
	t.Helper()
	sum, err := vulndb.Update(context.Background(), vulndb.Options{Path: r.dbPath, Sources: feed.FromMirror(r.mirror)})
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// submit matches an inventory now and stores it, as a scan would.
func (r *rig) submit(t *testing.T, name string, pkgs ...vigil.Package) string {
	t.Helper()
	ctx := context.Background()
	inv := &vigil.Inventory{SchemaVersion: vigil.InventorySchemaVersion, Digest: "sha256:" + name, Packages: pkgs,
		OS: &vigil.OSInfo{ID: "debian", VersionID: "12", Ecosystem: "Debian:12"}}
	db, err := r.eng.DB.Get()
	if err != nil {
		t.Fatal(err)
	}
	res, err := match.Match(ctx, db, inv)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := r.store.SubmitInventory(ctx, r.p, sqlstore.ResourceSpec{Type: vigil.ResourceHost, Name: name}, inv, res.Findings, db.Meta().Revision)
	if err != nil {
		t.Fatal(err)
	}
	return sub.Resource.ID
}

// drain runs the engine's loops once and a worker pool until no job is
// waiting or running.
func (r *rig) drain(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var last time.Time
	if err := r.eng.Tick(ctx, engine.Loops{}, &last); err != nil {
		t.Fatal(err)
	}
	pool := &worker.Pool{Store: r.store, Handlers: r.eng.Handlers(), Poll: 10 * time.Millisecond, Backoff: func(int) time.Duration { return 10 * time.Millisecond }}
	done := make(chan struct{})
	pctx, stop := context.WithCancel(ctx)
	go func() { pool.Run(pctx); close(done) }()
	defer func() { stop(); <-done }()
	for {
		c, err := r.store.JobCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		busy := 0
		for _, st := range c {
			busy += st[sqlstore.JobAvailable] + st[sqlstore.JobRunning]
		}
		if busy == 0 {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("jobs did not finish: %v", c)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *rig) findings(t *testing.T, resource string) []reconcile.Stored {
	t.Helper()
	list, _, err := r.store.Findings(context.Background(), r.p, sqlstore.FindingFilter{ResourceID: resource, Status: []string{reconcile.Active, reconcile.Suppressed, reconcile.Closed}})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func (r *rig) coverage(t *testing.T, resource string) vigil.Coverage {
	t.Helper()
	list, _, err := r.store.Coverage(context.Background(), r.p, sqlstore.CoverageFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list {
		if c.ResourceID == resource {
			return c
		}
	}
	t.Fatalf("resource %s not in coverage", resource)
	return vigil.Coverage{}
}

var (
	lodash   = vigil.Package{Name: "lodash", Version: "4.17.15", Ecosystem: "npm", Type: "npm"}
	leftPad  = vigil.Package{Name: "left-pad", Version: "1.0.0", Ecosystem: "npm", Type: "npm"}
	requests = vigil.Package{Name: "requests", Version: "2.31.0", Ecosystem: "PyPI", Type: "pypi"}
)

// TestReevaluation: a database update re-matches only the resources a
// change can affect, without reading them again: a new advisory opens a
// finding, a KEV addition escalates one, an unrelated resource is left
// alone, and running it all again changes nothing.
func TestReevaluation(t *testing.T) {
	for name, dsn := range backends() {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, dsn(t))
			ctx := context.Background()
			web := r.submit(t, "web", lodash)
			batch := r.submit(t, "batch", leftPad)
			other := r.submit(t, "other", requests)
			r.drain(t) // the first revision: nothing to do but note it
			webFindings := r.findings(t, web)
			if len(webFindings) == 0 || len(r.findings(t, batch)) != 0 {
				t.Fatalf("before: web %d findings, batch %d", len(webFindings), len(r.findings(t, batch)))
			}
			cve := webFindings[0].Finding.Vulnerability.ID
			if !strings.HasPrefix(cve, "CVE-") || webFindings[0].Finding.KEV != nil {
				t.Fatalf("web's finding %s: want a CVE not in KEV", cve)
			}

			// Revision 2: a new npm advisory for left-pad, and web's CVE
			// enters KEV.
			files, _ := filepath.Glob(filepath.Join("..", "match", "testdata", "mirror", "osv", "npm", "*.json"))
			extra := filepath.Join(t.TempDir(), "GHSA-0000-left-pad.json")
			os.WriteFile(extra, []byte(`{"id":"GHSA-9999-8888-7777","modified":"2026-11-20T00:00:00Z","aliases":["CVE-2026-99999"],
				"summary":"Prototype pollution in left-pad","database_specific":{"severity":"HIGH"},
				"affected":[{"package":{"ecosystem":"npm","name":"left-pad"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.3.0"}]}]}]}`), 0o644)
			testutil.WriteZip(t, filepath.Join(r.mirror, "osv", "npm", "all.zip"), append(files, extra), filepath.Base)
			kevPath := filepath.Join(r.mirror, "kev", "known_exploited_vulnerabilities.json")
			body, _ := os.ReadFile(kevPath)
			body = []byte(strings.Replace(string(body), `"vulnerabilities": [`, `"vulnerabilities": [
				{"cveID": "`+cve+`", "vendorProject": "x", "product": "x", "vulnerabilityName": "x", "dateAdded": "2026-11-21",
				 "shortDescription": "x", "requiredAction": "Apply updates.", "dueDate": "2026-12-12", "knownRansomwareCampaignUse": "Unknown", "notes": ""},`, 1))
			os.WriteFile(kevPath, body, 0o644)
			sum := r.updateDB(t)
			if sum.Revision != 2 || sum.ChangedPackages != 1 || sum.ChangedVulns < 2 {
				t.Fatalf("update: revision %d, %d packages, %d vulns changed", sum.Revision, sum.ChangedPackages, sum.ChangedVulns)
			}
			otherBefore := r.coverage(t, other)
			r.drain(t)

			got := r.findings(t, batch)
			if len(got) != 1 || got[0].Finding.Vulnerability.ID != "CVE-2026-99999" || got[0].Status != reconcile.Active || got[0].DBRevision != 2 {
				t.Fatalf("batch after the update: %+v", got)
			}
			var escalated bool
			for _, f := range r.findings(t, web) {
				if f.Finding.Vulnerability.ID != cve {
					continue
				}
				if f.Finding.KEV == nil {
					t.Fatalf("%s not marked known exploited", cve)
				}
				hist, err := r.store.History(ctx, r.p, f.ID)
				if err != nil {
					t.Fatal(err)
				}
				escalated = slices.ContainsFunc(hist, func(e reconcile.Event) bool { return e.Type == reconcile.Escalated })
			}
			if !escalated {
				t.Fatalf("no escalation event for %s entering KEV", cve)
			}
			if c := r.coverage(t, other); c.MatchedRevision != 1 || !c.LastMatchedAt.Equal(otherBefore.LastMatchedAt) {
				t.Errorf("an unrelated resource was matched again: %+v", c)
			}
			if c := r.coverage(t, web); c.MatchedRevision != 2 || c.ScanStatus != vigil.ScanActive || !c.LastScannedAt.Equal(otherBefore.LastScannedAt) && c.LastScannedAt.After(c.LastMatchedAt) {
				t.Errorf("web after re-evaluation: %+v", c)
			}

			// Again: nothing new to do, and a repeated rematch changes nothing.
			before := len(r.findings(t, web)) + len(r.findings(t, batch))
			r.drain(t)
			n, err := r.eng.Rematch(ctx, engine.RematchArgs{Revision: 2, Resources: []string{web, batch, other}})
			if err != nil || n != 0 {
				t.Fatalf("repeated rematch: %d events, %v", n, err)
			}
			if after := len(r.findings(t, web)) + len(r.findings(t, batch)); after != before {
				t.Fatalf("findings %d -> %d after a repeated re-evaluation", before, after)
			}
			jobs, _ := r.store.Jobs(ctx, engine.KindReevaluate, "", 10)
			if len(jobs) != 2 {
				t.Errorf("%d re-evaluation jobs, want 2 (one per revision)", len(jobs))
			}
			use, err := r.store.Usage(ctx, r.p, "", "")
			// web and batch by the update, other by the explicit rematch.
			if err != nil || len(use) != 1 || use[0].Scans != 3 || use[0].Rematches != 3 {
				t.Errorf("usage %+v %v, want 3 scans and 3 rematches", use, err)
			}
		})
	}
}

// TestExcludedResourcesAreNotScanned: a resource tagged with the
// exclusion key shows EXCLUDED_BY_TAG and is neither re-matched nor
// rescanned.
func TestExcludedResourcesAreNotScanned(t *testing.T) {
	r := newRig(t, filepath.Join(t.TempDir(), "store.db"))
	ctx := context.Background()
	id := r.submit(t, "web", lodash)
	if _, err := r.store.TagResource(ctx, r.p, id, map[string]string{vigil.DefaultExcludeTag: "true"}, nil); err != nil {
		t.Fatal(err)
	}
	c := r.coverage(t, id)
	if c.ScanStatus != vigil.ScanInactive || c.Reason != vigil.ReasonExcludedByTag {
		t.Fatalf("coverage %+v", c)
	}
	n, err := r.eng.Rematch(ctx, engine.RematchArgs{Revision: 1, Resources: []string{id}, Force: true})
	if err != nil || n != 0 {
		t.Fatalf("rematch of an excluded resource: %d events, %v", n, err)
	}
	stats, err := r.store.CoverageStats(ctx, r.p)
	if err != nil || len(stats) != 1 || stats[0].Inactive != 1 || stats[0].ByReason[vigil.ReasonExcludedByTag] != 1 {
		t.Fatalf("stats %+v %v", stats, err)
	}
	r.store.Policy.ExcludeTag = "skip-me"
	if c := r.coverage(t, id); c.ScanStatus != vigil.ScanActive {
		t.Fatalf("with another exclusion key: %+v", c)
	}
}

// TestUnsupportedOS: an inventory whose OS has no advisory data and
// nothing else to check is INACTIVE, UNSUPPORTED_OS, with the reason.
func TestUnsupportedOS(t *testing.T) {
	r := newRig(t, filepath.Join(t.TempDir(), "store.db"))
	ctx := context.Background()
	inv := &vigil.Inventory{SchemaVersion: vigil.InventorySchemaVersion, Digest: "sha256:old",
		OS:       &vigil.OSInfo{ID: "centos", VersionID: "6", Ecosystem: "CentOS:6"},
		Packages: []vigil.Package{{Name: "bash", Version: "4.1.2-15.el6", Ecosystem: "CentOS:6", Type: "rpm"}}}
	db, _ := r.eng.DB.Get()
	res, err := match.Match(ctx, db, inv)
	if err != nil {
		t.Fatal(err)
	}
	reason, msg := engine.UnsupportedOS(res)
	sub, err := r.store.SubmitInventory(ctx, r.p, sqlstore.ResourceSpec{Type: vigil.ResourceHost, Name: "legacy", Unsupported: reason, Message: msg}, inv, res.Findings, 1)
	if err != nil {
		t.Fatal(err)
	}
	c := r.coverage(t, sub.Resource.ID)
	if c.Reason != vigil.ReasonUnsupportedOS || !strings.Contains(c.Message, "CentOS:6") {
		t.Fatalf("coverage %+v", c)
	}
}

// TestTimeReasons: a host silent past the stale limit is STALE_INVENTORY;
// an image not pushed or pulled within the eligibility period is
// SCAN_ELIGIBILITY_EXPIRED and is no longer re-evaluated; a pull renews it.
func TestTimeReasons(t *testing.T) {
	r := newRig(t, filepath.Join(t.TempDir(), "store.db"))
	ctx := context.Background()
	now := time.Now()
	r.store.Now = func() time.Time { return now }
	host := r.submit(t, "host-1", lodash)
	db, _ := r.eng.DB.Get()
	inv := &vigil.Inventory{SchemaVersion: vigil.InventorySchemaVersion, Digest: "sha256:img", Packages: []vigil.Package{lodash}}
	res, _ := match.Match(ctx, db, inv)
	sub, err := r.store.SubmitInventory(ctx, r.p, sqlstore.ResourceSpec{Type: vigil.ResourceImage, Name: "reg/app@sha256:1"}, inv, res.Findings, 1)
	if err != nil {
		t.Fatal(err)
	}
	img := sub.Resource.ID
	r.store.Policy = vigil.CoveragePolicy{StaleAfter: 48 * time.Hour, Eligibility: 14 * 24 * time.Hour}
	now = now.Add(72 * time.Hour)
	if c := r.coverage(t, host); c.Reason != vigil.ReasonStaleInventory {
		t.Errorf("a host silent for 3 days: %+v", c)
	}
	if c := r.coverage(t, img); c.ScanStatus != vigil.ScanActive {
		t.Errorf("an image pushed 3 days ago: %+v", c)
	}
	now = now.Add(15 * 24 * time.Hour)
	if c := r.coverage(t, img); c.Reason != vigil.ReasonEligibilityExpired {
		t.Fatalf("an image untouched for 18 days: %+v", c)
	}
	if n, err := r.eng.Rematch(ctx, engine.RematchArgs{Revision: 1, Resources: []string{img}, Force: true}); err != nil || n != 0 {
		t.Errorf("an expired image was re-evaluated: %d %v", n, err)
	}
	if err := r.store.RecordActivity(ctx, img, now); err != nil {
		t.Fatal(err)
	}
	if c := r.coverage(t, img); c.ScanStatus != vigil.ScanActive {
		t.Errorf("after a pull: %+v", c)
	}
}

// TestWatchNoticesADatabaseUpdate: `vigil db update` on the file the
// server uses is noticed by the watch loop, which enqueues one
// re-evaluation of the new revision.
func TestWatchNoticesADatabaseUpdate(t *testing.T) {
	r := newRig(t, filepath.Join(t.TempDir(), "store.db"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	woke := make(chan struct{}, 10)
	r.eng.Enqueued = func() { woke <- struct{}{} }
	go r.eng.Run(ctx, engine.Loops{WatchEvery: 20 * time.Millisecond})
	wait := func(rev string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case <-woke:
			case <-deadline:
				t.Fatalf("no re-evaluation of revision %s", rev)
			}
			jobs, _ := r.store.Jobs(ctx, engine.KindReevaluate, "", 10)
			for _, j := range jobs {
				if j.Key == "reevaluate:"+rev {
					return
				}
			}
		}
	}
	wait("1")
	// A new revision: an EPSS file from a later day.
	files, _ := filepath.Glob(filepath.Join(r.mirror, "epss", "*.csv.gz"))
	os.Rename(files[0], filepath.Join(r.mirror, "epss", "epss_scores-2026-08-17.csv.gz"))
	kev := filepath.Join(r.mirror, "kev", "known_exploited_vulnerabilities.json")
	body, _ := os.ReadFile(kev)
	os.WriteFile(kev, []byte(strings.Replace(string(body), "2025.08.25", "2025.08.26", 1)+" "), 0o644)
	if sum := r.updateDB(t); sum.Revision != 2 {
		t.Fatalf("update: revision %d", sum.Revision)
	}
	wait("2")
	time.Sleep(100 * time.Millisecond)
	if jobs, _ := r.store.Jobs(ctx, engine.KindReevaluate, "", 10); len(jobs) != 2 {
		t.Errorf("%d re-evaluation jobs, want one per revision", len(jobs))
	}
}

// TestDatabaseUpdateJob: the scheduled update job updates the database
// file from the configured sources; without sources it fails for good,
// saying why.
func TestDatabaseUpdateJob(t *testing.T) {
	r := newRig(t, filepath.Join(t.TempDir(), "store.db"))
	ctx := context.Background()
	h := r.eng.Handlers()[engine.KindDBUpdate]
	if err := h(ctx, &sqlstore.Job{Kind: engine.KindDBUpdate}); err == nil || !worker.IsPermanent(err) || !strings.Contains(err.Error(), "no database sources") {
		t.Fatalf("without sources: %v", err)
	}
	r.eng.Sources = feed.FromMirror(r.mirror)
	kev := filepath.Join(r.mirror, "kev", "known_exploited_vulnerabilities.json")
	body, _ := os.ReadFile(kev)
	os.WriteFile(kev, []byte(strings.Replace(string(body), "2025.08.25", "2025.08.26", 1)+"\n"), 0o644)
	if err := h(ctx, &sqlstore.Job{Kind: engine.KindDBUpdate}); err != nil {
		t.Fatal(err)
	}
	db, err := r.eng.DB.Get()
	if err != nil || db.Meta().Revision != 2 {
		t.Fatalf("after the job: %v %v", db.Meta().Revision, err)
	}
}
