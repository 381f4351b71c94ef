package score

import (
	"strings"

	"github.com/vigil-project/vigil"
)

// Severities, from most to least severe.
const (
	Critical  = "CRITICAL"
	High      = "HIGH"
	Medium    = "MEDIUM"
	Low       = "LOW"
	None      = "NONE"
	Untriaged = "UNTRIAGED"
)

// Preferred picks the CVSS vector a vulnerability is rated by: CVSS v3.1,
// then v3.0, then v4.0, then v2 (v3 first, as most feeds and Amazon
// Inspector still rate by it); within a version NVD's, then the CNA's in
// the CVE record, then an advisory's, then an ADP's.
func Preferred(cs []vigil.CVSS) (vigil.CVSS, bool) {
	best, bestRank := vigil.CVSS{}, -1
	for _, c := range cs {
		r := versionRank(c.Version)*10 + sourceRank(c.Source)
		if r > bestRank {
			best, bestRank = c, r
		}
	}
	return best, bestRank >= 0
}

func versionRank(v string) int {
	switch v {
	case "3.1":
		return 4
	case "3.0":
		return 3
	case "4.0":
		return 2
	case "2.0":
		return 1
	}
	return 0
}

func sourceRank(s string) int {
	switch {
	case s == "nvd":
		return 4
	case strings.HasPrefix(s, "cve:"):
		return 3
	case strings.HasPrefix(s, "cve-adp:"):
		return 1
	}
	return 2
}

// Vendor maps a vendor's severity words onto Vigil's scale, or "" when the
// words rate nothing ("not yet assigned", "end-of-life").
func Vendor(s string) string {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "critical":
		return Critical
	case "high", "important":
		return High
	case "moderate", "medium":
		return Medium
	case "low", "negligible", "unimportant":
		return Low
	}
	return ""
}

// Severity is a vulnerability's qualitative severity: the band of its
// preferred CVSS base score, else the most severe vendor rating, else
// UNTRIAGED.
func Severity(cs []vigil.CVSS, vendor []vigil.VendorSeverity) string {
	if c, ok := Preferred(cs); ok && c.Severity != "" {
		return c.Severity
	}
	best := ""
	for _, v := range vendor {
		if s := Vendor(v.Severity); s != "" && (best == "" || Rank(s) > Rank(best)) {
			best = s
		}
	}
	if best != "" {
		return best
	}
	return Untriaged
}

// Rank orders severities: higher is more severe.
func Rank(s string) int {
	switch s {
	case Critical:
		return 5
	case High:
		return 4
	case Medium:
		return 3
	case Low:
		return 2
	case None:
		return 1
	}
	return 0
}
