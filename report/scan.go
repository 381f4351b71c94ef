package report

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/score"
)

// ScanSchemaVersion is the version of the scan JSON document (docs/scan-json.md).
const ScanSchemaVersion = 1

// Scan is the result of a scan: what `vigil scan --format json` prints.
type Scan struct {
	SchemaVersion int                 `json:"schemaVersion"`
	Scanner       vigil.ScannerInfo   `json:"scanner"`
	Target        vigil.TargetInfo    `json:"target"`
	OS            *vigil.OSInfo       `json:"os,omitempty"`
	Image         *vigil.ImageInfo    `json:"image,omitempty"`
	Function      *vigil.FunctionInfo `json:"function,omitempty"`
	Inventory     string              `json:"inventoryDigest"`
	Database      Database            `json:"database"`
	// Summary counts active findings by severity, and suppressed ones.
	Summary  map[string]int  `json:"summary"`
	Findings []vigil.Finding `json:"findings"`
	Warnings []string        `json:"warnings"`
	Packages int             `json:"packages"`
	ScanTime time.Time       `json:"scannedAt"`
}

// Database says which vulnerability database revision a scan used.
type Database struct {
	Revision  int64     `json:"revision"`
	BuiltAt   time.Time `json:"builtAt"`
	CheckedAt time.Time `json:"checkedAt"`
	Stale     bool      `json:"stale"`
}

// Summarise counts findings by severity.
func Summarise(fs []vigil.Finding) map[string]int {
	m := map[string]int{"CRITICAL": 0, "HIGH": 0, "MEDIUM": 0, "LOW": 0, "NONE": 0, "UNTRIAGED": 0, "suppressed": 0}
	for _, f := range fs {
		if f.Suppressed != nil {
			m["suppressed"]++
			continue
		}
		m[f.Severity]++
	}
	return m
}

// JSON writes the scan document.
func JSON(w io.Writer, s *Scan) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(s)
}

var colours = map[string]string{
	"CRITICAL": "\033[1;31m", "HIGH": "\033[31m", "MEDIUM": "\033[33m", "LOW": "\033[36m", "UNTRIAGED": "\033[37m", "NONE": "\033[37m",
}

// Table writes findings grouped by package, most severe first, with a
// summary line; colour adds ANSI colours for a terminal.
func Table(w io.Writer, s *Scan, colour bool) error {
	paint := func(sev string) string {
		if !colour {
			return sev
		}
		return colours[sev] + sev + "\033[0m"
	}
	type group struct {
		pkg   vigil.VulnerablePackage
		rows  []vigil.Finding
		worst int
	}
	groups := map[string]*group{}
	var order []string
	for _, f := range s.Findings {
		if f.Suppressed != nil {
			continue
		}
		for _, p := range f.Packages {
			k := p.Ecosystem + "\x00" + p.Name + "\x00" + p.Version + "\x00" + p.Path
			g := groups[k]
			if g == nil {
				g = &group{pkg: p}
				groups[k] = g
				order = append(order, k)
			}
			one := f
			one.Packages = []vigil.VulnerablePackage{p}
			g.rows = append(g.rows, one)
			g.worst = max(g.worst, score.Rank(f.Severity))
		}
	}
	slices.SortStableFunc(order, func(a, b string) int {
		ga, gb := groups[a], groups[b]
		return cmp.Or(cmp.Compare(gb.worst, ga.worst), cmp.Compare(len(gb.rows), len(ga.rows)), strings.Compare(a, b))
	})
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, k := range order {
		g := groups[k]
		p := g.pkg
		head := fmt.Sprintf("%s %s (%s", p.Name, p.Version, p.Ecosystem)
		if p.SourceName != "" && p.SourceName != p.Name {
			head += ", source " + p.SourceName + " " + p.SourceVersion
		}
		head += ")"
		if p.Path != "" {
			head += "  " + p.Path
		}
		fmt.Fprintln(tw, head)
		for _, f := range g.rows {
			fixed := f.Packages[0].FixedVersion
			if fixed == "" {
				fixed = "no fix"
			} else {
				fixed = "fixed in " + fixed
			}
			extra := ""
			if f.KEV != nil {
				extra = " [KEV]"
			}
			t := f.Vulnerability.Title
			if len(t) > 70 {
				t = t[:67] + "..."
			}
			fmt.Fprintf(tw, "  %s\t%s%s\t%s\t%s\n", paint(f.Severity), f.Vulnerability.ID, extra, fixed, t)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	sum := s.Summary
	total := 0
	for _, sev := range []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "NONE", "UNTRIAGED"} {
		total += sum[sev]
	}
	if len(order) > 0 {
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "%d vulnerabilities in %d of %d packages (CRITICAL: %d, HIGH: %d, MEDIUM: %d, LOW: %d, UNTRIAGED: %d); %d suppressed\n",
		total, len(order), s.Packages, sum["CRITICAL"], sum["HIGH"], sum["MEDIUM"], sum["LOW"], sum["UNTRIAGED"]+sum["NONE"], sum["suppressed"])
	return nil
}

// SARIF writes findings as SARIF 2.1.0, one result per vulnerable package,
// one rule per vulnerability, as code-scanning dashboards ingest it.
func SARIF(w io.Writer, s *Scan) error {
	type msg struct {
		Text string `json:"text"`
	}
	type rule struct {
		ID               string         `json:"id"`
		Name             string         `json:"name,omitempty"`
		ShortDescription msg            `json:"shortDescription"`
		FullDescription  msg            `json:"fullDescription"`
		HelpURI          string         `json:"helpUri,omitempty"`
		Help             msg            `json:"help"`
		Properties       map[string]any `json:"properties"`
	}
	type location struct {
		PhysicalLocation struct {
			ArtifactLocation struct {
				URI string `json:"uri"`
			} `json:"artifactLocation"`
		} `json:"physicalLocation"`
	}
	type result struct {
		RuleID              string            `json:"ruleId"`
		RuleIndex           int               `json:"ruleIndex"`
		Level               string            `json:"level"`
		Message             msg               `json:"message"`
		Locations           []location        `json:"locations"`
		PartialFingerprints map[string]string `json:"partialFingerprints"`
		Suppressions        []map[string]any  `json:"suppressions,omitempty"`
		Properties          map[string]any    `json:"properties,omitempty"`
	}
	var rules []rule
	index := map[string]int{}
	var results []result
	for _, f := range s.Findings {
		id := f.Vulnerability.ID
		if _, ok := index[id]; !ok {
			index[id] = len(rules)
			props := map[string]any{"tags": []string{"vulnerability", "security", f.Severity}}
			// Dashboards rank by security-severity: the score, else the
			// middle of the severity's band.
			if f.Score != nil {
				props["security-severity"] = fmt.Sprintf("%.1f", *f.Score)
			} else if band, ok := map[string]string{"CRITICAL": "9.5", "HIGH": "8.0", "MEDIUM": "5.5", "LOW": "2.0"}[f.Severity]; ok {
				props["security-severity"] = band
			}
			help := fmt.Sprintf("%s (%s)", f.Vulnerability.Title, f.Severity)
			uri := ""
			if len(f.References) > 0 {
				uri = f.References[0]
			}
			rules = append(rules, rule{
				ID: id, Name: strings.ReplaceAll(id, "-", ""),
				ShortDescription: msg{Text: cmp.Or(f.Vulnerability.Title, id)},
				FullDescription:  msg{Text: cmp.Or(f.Vulnerability.Title, id)},
				HelpURI:          uri, Help: msg{Text: help}, Properties: props,
			})
		}
		level := map[string]string{"CRITICAL": "error", "HIGH": "error", "MEDIUM": "warning", "LOW": "note"}[f.Severity]
		if level == "" {
			level = "warning"
		}
		for _, p := range f.Packages {
			var loc location
			loc.PhysicalLocation.ArtifactLocation.URI = cmp.Or(p.Path, s.Target.Name)
			fixed := "no fix is known yet"
			if p.FixedVersion != "" {
				fixed = "fixed in " + p.FixedVersion
			}
			r := result{
				RuleID: id, RuleIndex: index[id], Level: level,
				Message:             msg{Text: fmt.Sprintf("%s %s (%s) is vulnerable to %s: %s. %s", p.Name, p.Version, p.Ecosystem, id, fixed, p.Remediation)},
				Locations:           []location{loc},
				PartialFingerprints: map[string]string{"vigil/v1": id + ":" + p.Ecosystem + ":" + p.Name + ":" + p.Path},
				Properties:          map[string]any{"purl": p.PURL, "fixAvailable": f.FixAvailable},
			}
			if f.Suppressed != nil {
				r.Suppressions = []map[string]any{{"kind": "external", "justification": f.Suppressed.Reason}}
			}
			results = append(results, r)
		}
	}
	if rules == nil {
		rules = []rule{}
	}
	if results == nil {
		results = []result{}
	}
	doc := map[string]any{
		"$schema": "https://json.schemastore.org/sarif-2.1.0.json",
		"version": "2.1.0",
		"runs": []any{map[string]any{
			"tool": map[string]any{"driver": map[string]any{
				"name": "vigil", "version": s.Scanner.Version, "informationUri": "https://github.com/vigil-project/vigil", "rules": rules,
			}},
			"results": results,
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(doc)
}

// CycloneDXScan writes the inventory as CycloneDX 1.6 with a
// vulnerabilities section.
func CycloneDXScan(w io.Writer, inv *vigil.Inventory, s *Scan) error {
	bom := bomFor(inv)
	refs := map[string]string{}
	for _, p := range inv.Packages {
		refs[p.Ecosystem+"\x00"+p.Name+"\x00"+p.Version+"\x00"+p.Path+"\x00"+p.Layer] = packageRef(p)
	}
	// One vulnerability entry per id: a finding that a package-scoped rule
	// split in two is one entry, its analysis given only when every part is
	// suppressed.
	var vulns []cdx.Vulnerability
	index := map[string]int{}
	for _, f := range s.Findings {
		if i, ok := index[f.Vulnerability.ID]; ok {
			v := &vulns[i]
			for _, p := range f.Packages {
				if r, ok := refs[p.Ecosystem+"\x00"+p.Name+"\x00"+p.Version+"\x00"+p.Path+"\x00"+p.Layer]; ok {
					*v.Affects = append(*v.Affects, cdx.Affects{Ref: r})
				}
			}
			if f.Suppressed == nil {
				v.Analysis = nil
			}
			continue
		}
		index[f.Vulnerability.ID] = len(vulns)
		v := cdx.Vulnerability{
			BOMRef:      "vuln-" + f.Vulnerability.ID,
			ID:          f.Vulnerability.ID,
			Source:      advisorySource(f.Vulnerability.ID),
			Description: f.Vulnerability.Title,
		}
		var ratings []cdx.VulnerabilityRating
		if f.CVSS != nil {
			method := map[string]cdx.ScoringMethod{"2.0": cdx.ScoringMethodCVSSv2, "3.0": cdx.ScoringMethodCVSSv3, "3.1": cdx.ScoringMethodCVSSv31, "4.0": cdx.ScoringMethodCVSSv4}[f.CVSS.Version]
			sc := f.CVSS.BaseScore
			ratings = append(ratings, cdx.VulnerabilityRating{Score: &sc, Severity: cdx.Severity(strings.ToLower(f.CVSS.Severity)), Method: method, Vector: f.CVSS.Vector, Source: &cdx.Source{Name: f.CVSS.Source}})
		} else {
			ratings = append(ratings, cdx.VulnerabilityRating{Severity: cdxSeverity(f.Severity), Method: cdx.ScoringMethodOther})
		}
		v.Ratings = &ratings
		for _, c := range f.Vulnerability.CWEs {
			var n int
			if _, err := fmt.Sscanf(c, "CWE-%d", &n); err == nil {
				if v.CWEs == nil {
					v.CWEs = &[]int{}
				}
				*v.CWEs = append(*v.CWEs, n)
			}
		}
		var refsList []cdx.VulnerabilityReference
		for _, a := range f.Vulnerability.Aliases {
			refsList = append(refsList, cdx.VulnerabilityReference{ID: a, Source: advisorySource(a)})
		}
		if len(refsList) > 0 {
			v.References = &refsList
		}
		affects := []cdx.Affects{}
		var recs []string
		for _, p := range f.Packages {
			if r, ok := refs[p.Ecosystem+"\x00"+p.Name+"\x00"+p.Version+"\x00"+p.Path+"\x00"+p.Layer]; ok {
				affects = append(affects, cdx.Affects{Ref: r})
			}
			if p.Remediation != "" && !slices.Contains(recs, p.Remediation) {
				recs = append(recs, p.Remediation)
			}
		}
		v.Affects = &affects
		v.Recommendation = strings.Join(recs, " ")
		if f.Suppressed != nil {
			state := cdx.IASNotAffected
			if f.Suppressed.Status == "fixed" {
				state = cdx.IASResolved
			}
			v.Analysis = &cdx.VulnerabilityAnalysis{State: state, Detail: f.Suppressed.Reason}
		}
		vulns = append(vulns, v)
	}
	bom.Vulnerabilities = &vulns
	return encodeBOM(w, bom)
}

// advisorySource names the database an id comes from.
func advisorySource(id string) *cdx.Source {
	prefixes := []struct{ prefix, name, url string }{
		{"CVE-", "NVD", "https://nvd.nist.gov/vuln/detail/"},
		{"GHSA-", "GitHub Advisory Database", "https://github.com/advisories/"},
		{"GO-", "Go Vulnerability Database", "https://pkg.go.dev/vuln/"},
		{"PYSEC-", "PyPI Advisory Database", "https://osv.dev/vulnerability/"},
		{"RUSTSEC-", "RustSec Advisory Database", "https://rustsec.org/advisories/"},
		{"DSA-", "Debian Security Advisories", "https://security-tracker.debian.org/tracker/"},
		{"DLA-", "Debian LTS Advisories", "https://security-tracker.debian.org/tracker/"},
		{"DEBIAN-", "Debian Security Tracker", "https://osv.dev/vulnerability/"},
	}
	for _, p := range prefixes {
		if strings.HasPrefix(id, p.prefix) {
			return &cdx.Source{Name: p.name, URL: p.url + id}
		}
	}
	return &cdx.Source{Name: "OSV", URL: "https://osv.dev/vulnerability/" + id}
}

func cdxSeverity(s string) cdx.Severity {
	switch s {
	case "CRITICAL":
		return cdx.SeverityCritical
	case "HIGH":
		return cdx.SeverityHigh
	case "MEDIUM":
		return cdx.SeverityMedium
	case "LOW":
		return cdx.SeverityLow
	case "NONE":
		return cdx.SeverityNone
	}
	return cdx.SeverityUnknown
}
