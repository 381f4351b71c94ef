package report

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xeipuuv/gojsonschema"

	"github.com/vigil-project/vigil"
)

// cdxSchema is the CycloneDX 1.6 JSON schema that ships with cyclonedx-go,
// with the schemas it refers to loaded from disk, never the network.
func cdxSchema(t *testing.T) *gojsonschema.Schema {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/CycloneDX/cyclonedx-go").Output()
	if err != nil {
		t.Skipf("cannot locate the CycloneDX schema: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "schema")
	sl := gojsonschema.NewSchemaLoader()
	if err := sl.AddSchemas(
		gojsonschema.NewReferenceLoader("file://"+filepath.Join(dir, "spdx.schema.json")),
		gojsonschema.NewReferenceLoader("file://"+filepath.Join(dir, "jsf-0.82.schemax.json")),
	); err != nil {
		t.Fatal(err)
	}
	schema, err := sl.Compile(gojsonschema.NewReferenceLoader("file://" + filepath.Join(dir, "bom-1.6.schema.json")))
	if err != nil {
		t.Fatal(err)
	}
	return schema
}

func validate(t *testing.T, schema *gojsonschema.Schema, doc []byte) {
	t.Helper()
	res, err := schema.Validate(gojsonschema.NewBytesLoader(doc))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range res.Errors() {
		t.Errorf("schema: %s", e)
	}
}

func TestCycloneDXValidates(t *testing.T) {
	schema := cdxSchema(t)
	// The validator does reject what is not CycloneDX.
	if res, err := schema.Validate(gojsonschema.NewStringLoader(`{"bomFormat":"CycloneDX","specVersion":"1.6","vulnerabilities":[{"references":[{"id":"x"}]}]}`)); err != nil || res.Valid() {
		t.Fatalf("an invalid document validates: %v", err)
	}
	inv := fixtureInventory(t)
	var buf bytes.Buffer
	if err := CycloneDX(&buf, inv); err != nil {
		t.Fatal(err)
	}
	validate(t, schema, buf.Bytes())

	// A scan with a finding that a package-scoped rule split in two, and
	// a VEX "fixed" one.
	var ssl []vigil.VulnerablePackage
	for _, p := range inv.Packages {
		if p.SourceName == "openssl" {
			ssl = append(ssl, vigil.VulnerablePackage{Name: p.Name, Version: p.Version, Ecosystem: p.Ecosystem, PURL: p.PURL, Path: p.Path, Layer: p.Layer, FixedVersion: "3.0.15-1~deb12u1"})
		}
	}
	if len(ssl) != 2 {
		t.Fatalf("fixture openssl packages: %+v", ssl)
	}
	sc := 7.5
	base := vigil.Finding{
		Vulnerability: vigil.FindingVulnerability{ID: "CVE-2024-5535", Aliases: []string{"DEBIAN-CVE-2024-5535", "GHSA-xxxx-yyyy-zzzz"}, Title: "t", CWEs: []string{"CWE-200"}},
		Severity:      "HIGH", Score: &sc, CVSS: &vigil.CVSS{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", BaseScore: 7.5, Severity: "HIGH", Source: "cve:openssl"},
	}
	active, hidden := base, base
	active.Packages = ssl[:1]
	hidden.Packages = ssl[1:]
	hidden.Suppressed = &vigil.Suppression{Status: "ignored", Reason: "r"}
	fixed := vigil.Finding{Vulnerability: vigil.FindingVulnerability{ID: "GHSA-p6mc-m468-83gw", Aliases: []string{}}, Severity: "UNTRIAGED",
		Packages: ssl[:1], Suppressed: &vigil.Suppression{Status: "fixed", Reason: "VEX: fixed"}}
	scan := &Scan{Findings: []vigil.Finding{active, hidden, fixed}, Scanner: inv.Scanner, Target: inv.Target, ScanTime: time.Now()}
	buf.Reset()
	if err := CycloneDXScan(&buf, inv, scan); err != nil {
		t.Fatal(err)
	}
	validate(t, schema, buf.Bytes())
	out := buf.String()
	if strings.Count(out, `"bom-ref": "vuln-CVE-2024-5535"`) != 1 {
		t.Error("a split finding gives two vulnerability entries")
	}
	if !strings.Contains(out, `"state": "resolved"`) {
		t.Error("a VEX fixed statement is not resolved")
	}
}
