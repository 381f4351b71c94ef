// Package vigil is Vigil's domain: the values that flow from the feeds and
// collectors through matching to findings, and the errors they raise. It
// imports only the standard library; every dependency lives in a package at
// the edge.
package vigil

import (
	"fmt"
	"time"
)

// Vulnerability is one vulnerability as the vulnerability database holds it:
// every advisory that names it (through OSV aliases) merged into one entry,
// keyed by its CVE id where it has one.
type Vulnerability struct {
	ID string `json:"id"`
	// Aliases are the other ids of the same vulnerability (GHSA-…, GO-…,
	// DEBIAN-CVE-…, PYSEC-…, a DSA that fixes this one CVE alone).
	Aliases []string `json:"aliases"`
	// Related are advisories that cover this vulnerability among others, such
	// as a Debian DSA that fixes several CVEs at once.
	Related   []string   `json:"related,omitempty"`
	Summary   string     `json:"summary,omitempty"`
	Details   string     `json:"details,omitempty"`
	Published time.Time  `json:"published,omitzero"`
	Modified  time.Time  `json:"modified,omitzero"`
	Withdrawn *time.Time `json:"withdrawn,omitempty"`
	// CVSS holds every CVSS vector any source gives, with the base score
	// computed from the vector.
	CVSS []CVSS `json:"cvss"`
	// VendorSeverity holds severities that a vendor states in words, such as
	// Debian's urgency or GitHub's severity.
	VendorSeverity []VendorSeverity `json:"vendorSeverity,omitempty"`
	CWEs           []string         `json:"cwes,omitempty"`
	References     []Reference      `json:"references,omitempty"`
	Affected       []Affected       `json:"affected"`
	// Sources are the ids of the advisory records this entry was merged from.
	Sources []string `json:"sources"`

	// The fields below are not stored with the entry: they are joined in when
	// it is read, from their own feeds.

	// Severity is the qualitative severity: from the preferred CVSS base
	// score, else the vendor's words, else UNTRIAGED.
	Severity string `json:"severity"`
	// KEV is set when CISA lists the vulnerability as known exploited.
	KEV *KEV `json:"kev"`
	// EPSS is the vulnerability's EPSS score, when FIRST scores it.
	EPSS *EPSS `json:"epss"`
}

// Affected is one package that an advisory says is affected, with the
// versions it affects, in the ecosystem's own version order.
type Affected struct {
	// Ecosystem is the OSV ecosystem name, with its release for
	// distributions: "npm", "Go", "Debian:12", "Alpine:v3.20".
	Ecosystem string `json:"ecosystem"`
	// Package is the package name as the ecosystem's advisories key it: the
	// source package for distributions.
	Package  string   `json:"package"`
	PURL     string   `json:"purl,omitempty"`
	Ranges   []Range  `json:"ranges,omitempty"`
	Versions []string `json:"versions,omitempty"`
	// Severity is a per-package vendor severity (Debian urgency), if any.
	Severity string `json:"severity,omitempty"`
	// Advisory is the id of the record this entry comes from.
	Advisory string `json:"advisory"`
	// Withdrawn is set when that record has been withdrawn: matching
	// ignores the entry.
	Withdrawn bool `json:"withdrawn,omitempty"`
}

// Range is an OSV range: a type (ECOSYSTEM, SEMVER or GIT) and its events.
type Range struct {
	Type   string  `json:"type"`
	Events []Event `json:"events"`
}

// Event is one OSV range event; exactly one field is set.
type Event struct {
	Introduced   string `json:"introduced,omitempty"`
	Fixed        string `json:"fixed,omitempty"`
	LastAffected string `json:"last_affected,omitempty"`
	Limit        string `json:"limit,omitempty"`
}

// Fixed lists the fixed versions of the entry's ECOSYSTEM and SEMVER
// ranges, in range order (GIT ranges name commits, not versions).
func (a Affected) Fixed() []string {
	var out []string
	for _, r := range a.Ranges {
		if r.Type == "GIT" {
			continue
		}
		for _, e := range r.Events {
			if e.Fixed != "" {
				out = append(out, e.Fixed)
			}
		}
	}
	return out
}

// CVSS is one CVSS vector and the base score computed from it.
type CVSS struct {
	// Version is "2.0", "3.0", "3.1" or "4.0".
	Version   string  `json:"version"`
	Vector    string  `json:"vector"`
	BaseScore float64 `json:"baseScore"`
	// Severity is the qualitative rating of BaseScore for this CVSS version:
	// NONE, LOW, MEDIUM, HIGH or CRITICAL.
	Severity string `json:"severity"`
	// Source says who gave the vector: an advisory id, or "cve:<CNA short
	// name>" / "cve-adp:<ADP short name>" for CVE records.
	Source string `json:"source"`
}

// VendorSeverity is a severity a vendor states in words.
type VendorSeverity struct {
	Source   string `json:"source"`
	Severity string `json:"severity"`
}

// Reference is a link about a vulnerability.
type Reference struct {
	Type string `json:"type,omitempty"`
	URL  string `json:"url"`
}

// KEV is an entry of CISA's Known Exploited Vulnerabilities catalog.
type KEV struct {
	CVE           string `json:"cve"`
	VendorProject string `json:"vendorProject,omitempty"`
	Product       string `json:"product,omitempty"`
	Name          string `json:"name,omitempty"`
	Description   string `json:"shortDescription,omitempty"`
	// DateAdded and DueDate are calendar dates, YYYY-MM-DD.
	DateAdded       string   `json:"dateAdded"`
	DueDate         string   `json:"dueDate,omitempty"`
	KnownRansomware bool     `json:"knownRansomwareCampaignUse"`
	RequiredAction  string   `json:"requiredAction,omitempty"`
	Notes           string   `json:"notes,omitempty"`
	CWEs            []string `json:"cwes,omitempty"`
}

// EPSS is a FIRST Exploit Prediction Scoring System score.
type EPSS struct {
	Score      float64 `json:"score"`
	Percentile float64 `json:"percentile"`
	// Date is the score date, YYYY-MM-DD.
	Date string `json:"date,omitempty"`
}

// Error codes: one table for the whole product; the HTTP API maps them to
// statuses in one place.
const (
	ENOTFOUND = "not_found"
	EINVALID  = "invalid"
	ECONFLICT = "conflict"
	EINTERNAL = "internal"
	// EUNAVAILABLE: a resource the command needs does not exist yet, such as
	// a vulnerability database that was never built.
	EUNAVAILABLE = "unavailable"
	// EUNAUTHORIZED: no valid credentials.
	EUNAUTHORIZED = "unauthorized"
	// EFORBIDDEN: valid credentials without the right to do this.
	EFORBIDDEN = "forbidden"
)

// Error is an error with a code that users can act on.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with the given code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}
