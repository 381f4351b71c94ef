package reconcile

import (
	"slices"
	"testing"
	"time"

	"github.com/vigil-project/vigil"
)

func finding(id, sev string, pkgs ...string) vigil.Finding {
	f := vigil.Finding{Vulnerability: vigil.FindingVulnerability{ID: id}, Severity: sev}
	for _, p := range pkgs {
		f.Packages = append(f.Packages, vigil.VulnerablePackage{Name: p, Version: "1.0", Ecosystem: "npm", FixedVersion: "2.0"})
	}
	f.FixAvailable = vigil.FixAvailability(f.Packages)
	return f
}

func types(evs []Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type+" "+e.VulnID)
	}
	slices.Sort(out)
	return out
}

func byVuln(ws []Stored) map[string]Stored {
	m := map[string]Stored{}
	for _, w := range ws {
		m[w.Finding.Vulnerability.ID] = w
	}
	return m
}

func TestLifecycle(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	in := Input{Account: "acme", Resource: "img-1", Now: t0, DBRevision: 1,
		Matches: []vigil.Finding{finding("CVE-1", "HIGH", "a"), finding("CVE-2", "LOW", "b")}}
	r := Reconcile(in)
	if got := types(r.Events); !slices.Equal(got, []string{"FINDING_OPENED CVE-1", "FINDING_OPENED CVE-2"}) {
		t.Fatalf("first scan events %q", got)
	}
	stored := r.Write
	w := byVuln(stored)
	if w["CVE-1"].Status != Active || !w["CVE-1"].FirstObserved.Equal(t0) || w["CVE-1"].ID != FindingID("acme", "img-1", "CVE-1") {
		t.Errorf("opened: %+v", w["CVE-1"])
	}

	// The package is upgraded to a version still vulnerable: same finding,
	// packages changed; CVE-2 is gone: closed.
	t1 := t0.Add(time.Hour)
	up := finding("CVE-1", "HIGH", "a")
	up.Packages[0].Version = "1.5"
	r = Reconcile(Input{Account: "acme", Resource: "img-1", Now: t1, DBRevision: 2, Stored: stored, Matches: []vigil.Finding{up}})
	if got := types(r.Events); !slices.Equal(got, []string{"FINDING_CLOSED CVE-2", "FINDING_UPDATED CVE-1"}) {
		t.Fatalf("second scan events %q", got)
	}
	w = byVuln(r.Write)
	if w["CVE-1"].ID != byVuln(stored)["CVE-1"].ID || !w["CVE-1"].FirstObserved.Equal(t0) || !w["CVE-1"].LastObserved.Equal(t1) || w["CVE-1"].DBRevision != 2 {
		t.Errorf("updated: %+v", w["CVE-1"])
	}
	if w["CVE-2"].Status != Closed || w["CVE-2"].ClosedAt == nil || !w["CVE-2"].ClosedAt.Equal(t1) {
		t.Errorf("closed: %+v", w["CVE-2"])
	}
	stored = merge(stored, r.Write)

	// Nothing changes: nothing is written but the observation times.
	t2 := t1.Add(time.Hour)
	r = Reconcile(Input{Account: "acme", Resource: "img-1", Now: t2, DBRevision: 2, Stored: stored, Matches: []vigil.Finding{up}})
	if len(r.Events) != 0 || len(r.Write) != 1 || !r.Write[0].LastObserved.Equal(t2) || !r.Write[0].Updated.Equal(t1) {
		t.Errorf("no change: events %q writes %+v", types(r.Events), r.Write)
	}
	stored = merge(stored, r.Write)

	// CVE-2 comes back: reopened; CVE-1 enters KEV: updated and escalated.
	t3 := t2.Add(time.Hour)
	kev := up
	kev.KEV = &vigil.KEV{CVE: "CVE-1", DateAdded: "2026-11-02"}
	r = Reconcile(Input{Account: "acme", Resource: "img-1", Now: t3, DBRevision: 3, Stored: stored, Matches: []vigil.Finding{kev, finding("CVE-2", "LOW", "b")}})
	if got := types(r.Events); !slices.Equal(got, []string{"FINDING_ESCALATED CVE-1", "FINDING_REOPENED CVE-2", "FINDING_UPDATED CVE-1"}) {
		t.Fatalf("third scan events %q", got)
	}
	w = byVuln(r.Write)
	if w["CVE-2"].Status != Active || w["CVE-2"].ClosedAt != nil || !w["CVE-2"].FirstObserved.Equal(t0) {
		t.Errorf("reopened: %+v", w["CVE-2"])
	}
	for _, e := range r.Events {
		if e.Type == Updated && e.Values["kev"] != [2]string{"false", "true"} {
			t.Errorf("update values: %+v", e.Values)
		}
		if e.Type == Reopened && e.Changes[0] != "status" {
			t.Errorf("reopen changes: %q", e.Changes)
		}
	}
	stored = merge(stored, r.Write)

	// A rule suppresses CVE-2, then is lifted.
	sup := finding("CVE-2", "LOW", "b")
	sup.Suppressed = &vigil.Suppression{Reason: "not reachable"}
	r = Reconcile(Input{Account: "acme", Resource: "img-1", Now: t3.Add(time.Hour), Stored: stored, Matches: []vigil.Finding{kev, sup}})
	if got := types(r.Events); !slices.Equal(got, []string{"FINDING_SUPPRESSED CVE-2"}) || byVuln(r.Write)["CVE-2"].Status != Suppressed {
		t.Fatalf("suppress events %q", got)
	}
	stored = merge(stored, r.Write)
	r = Reconcile(Input{Account: "acme", Resource: "img-1", Now: t3.Add(2 * time.Hour), Stored: stored, Matches: []vigil.Finding{kev, finding("CVE-2", "LOW", "b")}})
	if got := types(r.Events); !slices.Equal(got, []string{"FINDING_UNSUPPRESSED CVE-2"}) {
		t.Fatalf("unsuppress events %q", got)
	}
}

// A finding split by a package-scoped rule is one stored finding, active
// while any of its packages is.
func TestSplitFindingIsOne(t *testing.T) {
	active := finding("CVE-1", "HIGH", "a")
	hidden := finding("CVE-1", "HIGH", "b")
	hidden.Suppressed = &vigil.Suppression{Reason: "r"}
	r := Reconcile(Input{Account: "x", Resource: "y", Now: time.Now(), Matches: []vigil.Finding{active, hidden}})
	if len(r.Write) != 1 || r.Write[0].Status != Active || len(r.Write[0].Finding.Packages) != 2 {
		t.Errorf("writes %+v", r.Write)
	}
}

func TestFindingIDIsStable(t *testing.T) {
	if FindingID("a", "r", "cve-2021-44228") != FindingID("a", "r", "CVE-2021-44228") {
		t.Error("ids differ by case")
	}
	if FindingID("a", "r", "CVE-1") == FindingID("b", "r", "CVE-1") || FindingID("a", "r", "CVE-1") == FindingID("a", "s", "CVE-1") {
		t.Error("ids collide across accounts or resources")
	}
}

func merge(stored, writes []Stored) []Stored {
	m := map[string]Stored{}
	for _, s := range stored {
		m[s.ID] = s
	}
	for _, w := range writes {
		m[w.ID] = w
	}
	var out []Stored
	for _, s := range m {
		out = append(out, s)
	}
	return out
}

// TestRematchWritesOnlyWhatChanged: matching a kept inventory again does
// not observe the resource: unchanged findings are not written, changed
// ones keep their last observation, new ones open, vanished ones close.
func TestRematchWritesOnlyWhatChanged(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	stored := Reconcile(Input{Account: "acme", Resource: "host", Now: t0, DBRevision: 1,
		Matches: []vigil.Finding{finding("CVE-1", "HIGH", "a"), finding("CVE-2", "LOW", "b"), finding("CVE-3", "LOW", "c")}}).Write
	t1 := t0.Add(24 * time.Hour)
	worse := finding("CVE-2", "CRITICAL", "b")
	r := Reconcile(Input{Account: "acme", Resource: "host", Now: t1, DBRevision: 2, Stored: stored, Rematch: true,
		Matches: []vigil.Finding{finding("CVE-1", "HIGH", "a"), worse, finding("CVE-4", "MEDIUM", "d")}})
	w := byVuln(r.Write)
	if _, ok := w["CVE-1"]; ok || len(r.Write) != 3 {
		t.Fatalf("written: %v", slices.Collect(func(yield func(string) bool) {
			for k := range w {
				yield(k)
			}
		}))
	}
	if got := types(r.Events); !slices.Equal(got, []string{"FINDING_CLOSED CVE-3", "FINDING_ESCALATED CVE-2", "FINDING_OPENED CVE-4", "FINDING_UPDATED CVE-2"}) {
		t.Fatalf("events %q", got)
	}
	if !w["CVE-2"].LastObserved.Equal(t0) || w["CVE-2"].DBRevision != 2 || !w["CVE-2"].Updated.Equal(t1) {
		t.Errorf("updated by a rematch: %+v", w["CVE-2"])
	}
}
