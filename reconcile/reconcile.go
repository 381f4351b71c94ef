// Package reconcile turns a resource's stored findings and its new matches
// into the findings to store and the transitions between them: opened,
// updated, closed, reopened, suppressed, unsuppressed, escalated. It is pure:
// no I/O, time is given, the same input gives the same output; the store
// applies the result in one transaction per resource.
package reconcile

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/score"
)

// Finding statuses, as Amazon Inspector names them.
const (
	Active     = "ACTIVE"
	Suppressed = "SUPPRESSED"
	Closed     = "CLOSED"
)

// Event types.
const (
	Opened       = "FINDING_OPENED"
	Updated      = "FINDING_UPDATED"
	ClosedEvent  = "FINDING_CLOSED"
	Reopened     = "FINDING_REOPENED"
	Suppress     = "FINDING_SUPPRESSED"
	Unsuppress   = "FINDING_UNSUPPRESSED"
	Escalated    = "FINDING_ESCALATED"
	TypePackage  = "PACKAGE_VULNERABILITY"
	epssEpsilon  = 0.0005
	scoreEpsilon = 0.05
)

// Stored is a finding as the store keeps it.
type Stored struct {
	ID            string        `json:"id"`
	Account       string        `json:"account"`
	Resource      string        `json:"resource"`
	Type          string        `json:"type"`
	Status        string        `json:"status"`
	Finding       vigil.Finding `json:"finding"`
	FirstObserved time.Time     `json:"firstObservedAt"`
	LastObserved  time.Time     `json:"lastObservedAt"`
	Updated       time.Time     `json:"updatedAt"`
	ClosedAt      *time.Time    `json:"closedAt"`
	// DBRevision is the vulnerability database revision it was last
	// matched against.
	DBRevision int64 `json:"dbRevision"`
}

// Event is one transition, recorded in the same transaction as the change.
type Event struct {
	Type      string    `json:"type"`
	FindingID string    `json:"findingId"`
	Account   string    `json:"account"`
	Resource  string    `json:"resource"`
	VulnID    string    `json:"vulnerabilityId"`
	At        time.Time `json:"at"`
	// Changes names what changed: status, severity, score, kev, epss,
	// packages, fixAvailable.
	Changes []string `json:"changes,omitempty"`
	From    string   `json:"from,omitempty"`
	To      string   `json:"to,omitempty"`
	// Values holds each changed field's old and new value, as text.
	Values map[string][2]string `json:"values,omitempty"`
}

// FindingID is a finding's stable id: account, resource and vulnerability,
// not the package version, so a package upgraded to a version that is still
// vulnerable keeps its finding and its history.
func FindingID(account, resource, vulnID string) string {
	h := sha256.Sum256([]byte(account + "\x00" + resource + "\x00" + strings.ToUpper(vulnID)))
	return hex.EncodeToString(h[:16])
}

// Input is one reconciliation of one resource.
type Input struct {
	Account, Resource string
	Stored            []Stored
	// Matches are the resource's findings now, suppression applied.
	Matches    []vigil.Finding
	DBRevision int64
	Now        time.Time
	// Rematch says the matches come from the kept inventory matched again
	// against a newer database, not from reading the resource: findings
	// found again are not observed again, and only those that change are
	// written.
	Rematch bool
}

// Result is what to store: every finding whose record changes, and the
// events.
type Result struct {
	Write  []Stored
	Events []Event
}

// Reconcile compares a resource's stored findings with its matches.
func Reconcile(in Input) Result {
	now := in.Now.UTC()
	var res Result
	stored := make(map[string]Stored, len(in.Stored))
	for _, s := range in.Stored {
		stored[s.ID] = s
	}
	seen := map[string]bool{}
	for _, m := range mergeSplit(in.Matches) {
		id := FindingID(in.Account, in.Resource, m.Vulnerability.ID)
		if seen[id] {
			continue
		}
		seen[id] = true
		status := Active
		if m.Suppressed != nil {
			status = Suppressed
		}
		old, ok := stored[id]
		if !ok {
			s := Stored{ID: id, Account: in.Account, Resource: in.Resource, Type: TypePackage, Status: status, Finding: m,
				FirstObserved: now, LastObserved: now, Updated: now, DBRevision: in.DBRevision}
			res.Write = append(res.Write, s)
			res.Events = append(res.Events, event(Opened, s, now, nil, "", status))
			if status == Suppressed {
				res.Events = append(res.Events, event(Suppress, s, now, nil, "", Suppressed))
			}
			continue
		}
		next := old
		next.Finding, next.LastObserved, next.DBRevision, next.Status = m, now, in.DBRevision, status
		if in.Rematch {
			next.LastObserved = old.LastObserved
		}
		changes := diff(old.Finding, m)
		if in.Rematch && old.Status == status && len(changes) == 0 {
			continue
		}
		switch {
		case old.Status == Closed:
			next.ClosedAt = nil
			next.Updated = now
			res.Events = append(res.Events, withValues(event(Reopened, next, now, append([]string{"status"}, changes...), Closed, status), old.Finding, m))
		case old.Status != status:
			next.Updated = now
			typ := Suppress
			if status == Active {
				typ = Unsuppress
			}
			res.Events = append(res.Events, withValues(event(typ, next, now, changes, old.Status, status), old.Finding, m))
		case len(changes) > 0:
			next.Updated = now
			res.Events = append(res.Events, withValues(event(Updated, next, now, changes, "", ""), old.Finding, m))
		}
		if escalated(old.Finding, m) {
			res.Events = append(res.Events, event(Escalated, next, now, changes, old.Finding.Severity, m.Severity))
		}
		res.Write = append(res.Write, next)
	}
	ids := make([]string, 0, len(stored))
	for id := range stored {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		old := stored[id]
		if seen[id] || old.Status == Closed {
			continue
		}
		next := old
		t := now
		next.Status, next.ClosedAt, next.Updated = Closed, &t, now
		res.Write = append(res.Write, next)
		res.Events = append(res.Events, event(ClosedEvent, next, now, []string{"status"}, old.Status, Closed))
	}
	return res
}

// mergeSplit joins the parts of a finding that suppression split (some
// packages suppressed, the rest active): the stored finding is one per
// vulnerability, active while any package is.
func mergeSplit(ms []vigil.Finding) []vigil.Finding {
	idx := map[string]int{}
	var out []vigil.Finding
	for _, m := range ms {
		i, ok := idx[m.Vulnerability.ID]
		if !ok {
			idx[m.Vulnerability.ID] = len(out)
			out = append(out, m)
			continue
		}
		a := out[i]
		a.Packages = append(slices.Clone(a.Packages), m.Packages...)
		if a.Suppressed != nil && m.Suppressed == nil {
			a.Suppressed = nil
		}
		a.FixAvailable = vigil.FixAvailability(a.Packages)
		out[i] = a
	}
	return out
}

func event(typ string, s Stored, now time.Time, changes []string, from, to string) Event {
	return Event{Type: typ, FindingID: s.ID, Account: s.Account, Resource: s.Resource, VulnID: s.Finding.Vulnerability.ID,
		At: now, Changes: changes, From: from, To: to}
}

// withValues records the old and new value of each changed field.
func withValues(e Event, a, b vigil.Finding) Event {
	vals := map[string][2]string{}
	for _, c := range e.Changes {
		switch c {
		case "severity":
			vals[c] = [2]string{a.Severity, b.Severity}
		case "score":
			vals[c] = [2]string{num(a.Score), num(b.Score)}
		case "epss":
			vals[c] = [2]string{num(epssPtr(a)), num(epssPtr(b))}
		case "kev":
			vals[c] = [2]string{strconv.FormatBool(a.KEV != nil), strconv.FormatBool(b.KEV != nil)}
		case "fixAvailable":
			vals[c] = [2]string{a.FixAvailable, b.FixAvailable}
		case "packages":
			vals[c] = [2]string{packageList(a.Packages), packageList(b.Packages)}
		}
	}
	if len(vals) > 0 {
		e.Values = vals
	}
	return e
}

func num(f *float64) string {
	if f == nil {
		return ""
	}
	return strconv.FormatFloat(*f, 'f', -1, 64)
}

func epssPtr(f vigil.Finding) *float64 {
	if f.EPSS == nil {
		return nil
	}
	return &f.EPSS.Score
}

func packageList(ps []vigil.VulnerablePackage) string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name+" "+p.Version)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// diff names what changed between two observations of a finding.
func diff(a, b vigil.Finding) []string {
	var out []string
	if a.Severity != b.Severity {
		out = append(out, "severity")
	}
	if !closeEnough(a.Score, b.Score, scoreEpsilon) {
		out = append(out, "score")
	}
	if (a.KEV == nil) != (b.KEV == nil) {
		out = append(out, "kev")
	}
	ae, be := epss(a), epss(b)
	if math.Abs(ae-be) > epssEpsilon {
		out = append(out, "epss")
	}
	if a.FixAvailable != b.FixAvailable {
		out = append(out, "fixAvailable")
	}
	if packageKey(a.Packages) != packageKey(b.Packages) {
		out = append(out, "packages")
	}
	return out
}

// escalated: the vulnerability became known exploited, or more severe.
func escalated(a, b vigil.Finding) bool {
	return (a.KEV == nil && b.KEV != nil) || score.Rank(b.Severity) > score.Rank(a.Severity)
}

func closeEnough(a, b *float64, eps float64) bool {
	switch {
	case a == nil && b == nil:
		return true
	case a == nil || b == nil:
		return false
	}
	return math.Abs(*a-*b) < eps
}

func epss(f vigil.Finding) float64 {
	if f.EPSS == nil {
		return -1
	}
	return f.EPSS.Score
}

func packageKey(ps []vigil.VulnerablePackage) string {
	keys := make([]string, len(ps))
	for i, p := range ps {
		keys[i] = p.Ecosystem + "\x00" + p.Name + "\x00" + p.Version + "\x00" + p.Path + "\x00" + p.Layer + "\x00" + p.FixedVersion
	}
	sort.Strings(keys)
	return strings.Join(keys, "\x01")
}

// MatchDigest digests what matching says of a finding, in the terms
// that a reconciliation compares (severity, score, KEV, EPSS, fix
// availability, packages): equal digests mean no change. A
// re-evaluation compares digests before it reads stored findings whole.
func MatchDigest(f vigil.Finding) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%t\x00%s\x00%s\x00%s", f.Vulnerability.ID, f.Severity, num(f.Score), f.KEV != nil, num(epssPtr(f)), f.FixAvailable, packageKey(f.Packages))
	sum := h.Sum(nil)
	return hex.EncodeToString(sum[:16])
}
