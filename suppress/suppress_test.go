package suppress

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-project/vigil"
)

func finding(id string, aliases []string, pkgs ...vigil.VulnerablePackage) vigil.Finding {
	return vigil.Finding{Vulnerability: vigil.FindingVulnerability{ID: id, Aliases: aliases}, Packages: pkgs, Severity: "HIGH"}
}

var (
	libssl = vigil.VulnerablePackage{Name: "libssl3", SourceName: "openssl", PURL: "pkg:deb/debian/libssl3@3.0.11?arch=amd64", FixedVersion: "3.0.15"}
	ossl   = vigil.VulnerablePackage{Name: "openssl", SourceName: "openssl", PURL: "pkg:deb/debian/openssl@3.0.11?arch=amd64"}
	lodash = vigil.VulnerablePackage{Name: "lodash", PURL: "pkg:npm/lodash@4.17.15", FixedVersion: "4.17.20"}
)

func apply(t *testing.T, doc string, now time.Time, fs ...vigil.Finding) ([]vigil.Finding, []string) {
	t.Helper()
	rs, err := Parse([]byte(doc), "rules")
	if err != nil {
		t.Fatal(err)
	}
	return rs.Apply(fs, now)
}

func TestRules(t *testing.T) {
	now := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name      string
		doc       string
		finding   vigil.Finding
		active    int // packages left active
		hidden    int
		status    string
		warnsWith string
	}{
		{"by id", "- id: CVE-1\n  reason: r\n", finding("CVE-1", nil, libssl, ossl), 0, 2, "ignored", ""},
		{"by alias, any case", "- id: ghsa-xxxx\n  reason: r\n", finding("CVE-1", []string{"GHSA-XXXX"}, lodash), 0, 1, "ignored", ""},
		{"other id", "- id: CVE-2\n  reason: r\n", finding("CVE-1", nil, lodash), 1, 0, "", ""},
		{"scoped by name", "- id: CVE-1\n  package: libssl3\n  reason: r\n", finding("CVE-1", nil, libssl, ossl), 1, 1, "ignored", ""},
		{"scoped by source package", "- id: CVE-1\n  package: openssl\n  reason: r\n", finding("CVE-1", nil, libssl, ossl), 0, 2, "ignored", ""},
		{"scoped by purl without version", "ignore:\n  - id: CVE-1\n    package: pkg:deb/debian/libssl3\n    reason: r\n", finding("CVE-1", nil, libssl, ossl), 1, 1, "ignored", ""},
		{"scoped by purl with another version", "- id: CVE-1\n  package: pkg:npm/lodash@4.17.21\n  reason: r\n", finding("CVE-1", nil, lodash), 1, 0, "", ""},
		{"not yet expired", "- id: CVE-1\n  reason: r\n  expires: 2026-11-30\n", finding("CVE-1", nil, lodash), 0, 1, "ignored", ""},
		{"expired", "- id: CVE-1\n  reason: r\n  expires: 2026-11-29\n", finding("CVE-1", nil, lodash), 1, 0, "", "expired on 2026-11-29"},
		{"debian triage state", "- vendorSeverity: [unimportant, no-dsa]\n  reason: Debian does not fix these\n",
			finding("CVE-1", nil, vigil.VulnerablePackage{Name: "libpam0g", VendorSeverity: "unimportant"}, vigil.VulnerablePackage{Name: "libpam-modules", VendorSeverity: "low"}), 1, 1, "ignored", ""},
		{"vex not_affected on a subcomponent", `{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{"vulnerability":{"name":"CVE-1"},"products":[{"@id":"pkg:oci/app","subcomponents":[{"@id":"pkg:deb/debian/libssl3"}]}],"status":"not_affected","justification":"vulnerable_code_not_present"}]}`,
			finding("CVE-1", nil, libssl, ossl), 1, 1, "not_affected", ""},
		{"vex later affected overrides", `{"@context":"https://openvex.dev/ns/v0.2.0","statements":[
			{"vulnerability":{"name":"CVE-1"},"products":[{"@id":"pkg:npm/lodash"}],"status":"not_affected","timestamp":"2024-01-01T00:00:00Z"},
			{"vulnerability":{"name":"CVE-1"},"products":[{"@id":"pkg:npm/lodash"}],"status":"affected","timestamp":"2024-06-01T00:00:00Z"}]}`,
			finding("CVE-1", nil, lodash), 1, 0, "", ""},
		{"vex earlier statement later in the document", `{"@context":"https://openvex.dev/ns/v0.2.0","statements":[
			{"vulnerability":"CVE-1","products":["pkg:npm/lodash"],"status":"fixed","timestamp":"2024-06-01T00:00:00Z"},
			{"vulnerability":"CVE-1","products":["pkg:npm/lodash"],"status":"under_investigation","timestamp":"2024-01-01T00:00:00Z"}]}`,
			finding("CVE-1", nil, lodash), 0, 1, "fixed", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, warns := apply(t, c.doc, now, c.finding)
			active, hidden, status := 0, 0, ""
			for _, f := range out {
				if f.Suppressed == nil {
					active += len(f.Packages)
				} else {
					hidden += len(f.Packages)
					status = f.Suppressed.Status
					if f.FixAvailable != vigil.FixAvailability(f.Packages) {
						t.Errorf("fix availability not recomputed: %s", f.FixAvailable)
					}
				}
			}
			if active != c.active || hidden != c.hidden || status != c.status {
				t.Errorf("active %d hidden %d status %q; want %d %d %q", active, hidden, status, c.active, c.hidden, c.status)
			}
			if c.warnsWith != "" && !strings.Contains(strings.Join(warns, "\n"), c.warnsWith) {
				t.Errorf("warnings %q lack %q", warns, c.warnsWith)
			}
		})
	}
}

func TestBadRuleFiles(t *testing.T) {
	for name, doc := range map[string]string{
		"no id":       "- reason: r\n",
		"no reason":   "- id: CVE-1\n",
		"bad expiry":  "- id: CVE-1\n  reason: r\n  expires: next week\n",
		"not yaml":    "{{{",
		"vex no name": `{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{"products":["x"],"status":"fixed"}]}`,
	} {
		if _, err := Parse([]byte(doc), "f"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("- id: CVE-1\n  reason: r\n  expires: 2026-01-01\n"))
	f.Add([]byte(`{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{"vulnerability":"CVE-1","products":["pkg:npm/x"],"status":"fixed"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := Parse(data, "f")
		if err != nil {
			return
		}
		rs.Apply([]vigil.Finding{finding("CVE-1", []string{"GHSA-1"}, lodash, libssl)}, time.Now())
	})
}
