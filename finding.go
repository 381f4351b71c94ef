package vigil

// Fix availability of a finding, as Amazon Inspector states it.
const (
	FixYes     = "YES"
	FixNo      = "NO"
	FixPartial = "PARTIAL"
)

// Finding is one vulnerability on one target, however many advisories name
// it, with every vulnerable package it touches.
type Finding struct {
	Vulnerability FindingVulnerability `json:"vulnerability"`
	// Severity is CRITICAL, HIGH, MEDIUM, LOW, NONE or UNTRIAGED: from the
	// preferred CVSS base score, else the vendor's words.
	Severity       string           `json:"severity"`
	VendorSeverity []VendorSeverity `json:"vendorSeverity,omitempty"`
	// Score is the preferred CVSS base score; nil when nothing scores it.
	Score *float64 `json:"score"`
	// CVSS is the vector the score comes from.
	CVSS *CVSS `json:"cvss,omitempty"`
	// ExploitAvailable is set when CISA lists the vulnerability as known
	// exploited (KEV holds the entry).
	ExploitAvailable bool  `json:"exploitAvailable"`
	KEV              *KEV  `json:"kev"`
	EPSS             *EPSS `json:"epss"`
	// FixAvailable is YES when every vulnerable package has a fix, PARTIAL
	// when some do, NO when none do.
	FixAvailable string              `json:"fixAvailable"`
	References   []string            `json:"references,omitempty"`
	Packages     []VulnerablePackage `json:"packages"`
	// Suppressed is set when an ignore rule or a VEX statement hides the
	// finding: it is reported, with the reason, never dropped.
	Suppressed *Suppression `json:"suppressed,omitempty"`
}

// FindingVulnerability identifies a finding's vulnerability.
type FindingVulnerability struct {
	ID      string   `json:"id"`
	Aliases []string `json:"aliases"`
	Related []string `json:"related,omitempty"`
	Title   string   `json:"title"`
	CWEs    []string `json:"cwes,omitempty"`
}

// VulnerablePackage is one installed package a finding touches.
type VulnerablePackage struct {
	Name          string `json:"name"`
	Version       string `json:"version"`
	Ecosystem     string `json:"ecosystem"`
	PURL          string `json:"purl"`
	SourceName    string `json:"sourceName,omitempty"`
	SourceVersion string `json:"sourceVersion,omitempty"`
	Path          string `json:"path,omitempty"`
	Layer         string `json:"layer,omitempty"`
	// FixedVersion is the nearest fixed version above the installed one;
	// empty when there is none.
	FixedVersion string `json:"fixedVersion"`
	// Remediation names the concrete upgrade.
	Remediation string `json:"remediation"`
	// VendorSeverity is the distribution's per-package rating, if any
	// (Debian's urgency).
	VendorSeverity string        `json:"vendorSeverity,omitempty"`
	Evidence       MatchEvidence `json:"evidence"`
}

// MatchEvidence says why a package matched: what was looked up, which
// advisory range matched, which matcher decided.
type MatchEvidence struct {
	Matcher string `json:"matcher"`
	// Ecosystem, Package and Version are what was looked up: for
	// distribution packages, the source package and version.
	Ecosystem string `json:"ecosystem"`
	Package   string `json:"package"`
	Version   string `json:"version"`
	Advisory  string `json:"advisory"`
	// Range is the matched range or version list, as text.
	Range string `json:"range"`
}

// Suppression says why a finding is hidden.
type Suppression struct {
	// Status is "ignored" for an ignore rule, or the VEX status
	// ("not_affected", "fixed").
	Status string `json:"status"`
	Reason string `json:"reason"`
	// Source is the rule that suppressed it: an ignore file entry or a VEX
	// statement.
	Source  string `json:"source"`
	Expires string `json:"expires,omitempty"`
}

// FixAvailability is YES when every package has a fixed version, PARTIAL
// when some do, NO when none do.
func FixAvailability(ps []VulnerablePackage) string {
	n := 0
	for _, p := range ps {
		if p.FixedVersion != "" {
			n++
		}
	}
	switch {
	case n == 0:
		return FixNo
	case n == len(ps):
		return FixYes
	}
	return FixPartial
}
