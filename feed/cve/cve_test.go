package cve

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigil-project/vigil"
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseRecord(t *testing.T) {
	tests := []struct {
		file string
		want Record
	}{{
		file: "CVE-2099-0001.json",
		want: Record{
			ID:            "CVE-2099-0001",
			State:         "PUBLISHED",
			Title:         "widget: cross-site scripting in redirect",
			Description:   "Widget before 1.2.3 lets attackers run script via redirect().",
			Assigner:      "ExampleCNA",
			DatePublished: time.Date(2099, 1, 2, 3, 4, 5, 678000000, time.UTC),
			DateUpdated:   time.Date(2099, 2, 3, 4, 5, 6, 789000000, time.UTC),
			CVSS: []vigil.CVSS{
				{Version: "4.0", Vector: "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", BaseScore: 9.3, Severity: "CRITICAL", Source: "cve:ExampleCNA_M"},
				{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:L/A:L", BaseScore: 5.0, Severity: "MEDIUM", Source: "cve:ExampleCNA_M"},
				{Version: "2.0", Vector: "AV:N/AC:L/Au:N/C:P/I:P/A:P", BaseScore: 7.5, Severity: "HIGH", Source: "cve:ExampleCNA_M"},
				{Version: "3.0", Vector: "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", BaseScore: 7.5, Severity: "HIGH", Source: "cve-adp:CISA-ADP"},
			},
			CWEs: []string{"CWE-116", "CWE-20", "CWE-79"},
			Warnings: []string{
				`cna metrics[2] cvssV3_0: score: CVSS 3.0 vector "CVSS:3.0/AV:N/AC:L/PR:N/UI:X/S:U/C:H/I:H/A:H": invalid metric value`,
				`cna metrics[3] cvssV3_0: no vectorString`,
				`cna problemTypes: bad cweId "NVD-CWE-Other"`,
				`adp[0] metrics[1] cvssV3_1: vector "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H" is CVSS 3.0 (kept)`,
			},
		},
	}, {
		file: "CVE-2099-0002.json",
		want: Record{
			ID:            "CVE-2099-0002",
			State:         "PUBLISHED",
			Description:   "An old-style record without time zones.",
			Assigner:      "mitre",
			DatePublished: time.Date(2098, 11, 26, 0, 0, 0, 0, time.UTC),
			DateUpdated:   time.Date(2099, 1, 31, 0, 0, 0, 0, time.UTC),
			CVSS: []vigil.CVSS{
				{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", BaseScore: 7.5, Severity: "HIGH", Source: "cve:mitre"},
			},
		},
	}, {
		file: "CVE-2099-0003.json",
		want: Record{
			ID:          "CVE-2099-0003",
			State:       "REJECTED",
			Description: "This candidate was withdrawn by its CNA.",
			Assigner:    "ExampleCNA",
			DateUpdated: time.Date(2099, 3, 1, 0, 0, 0, 0, time.UTC),
		},
	}}
	for _, tt := range tests {
		got, err := ParseRecord(readFile(t, tt.file))
		if err != nil {
			t.Errorf("%s: %v", tt.file, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.file, got, tt.want)
		}
	}
}

func TestParseRecordWarnings(t *testing.T) {
	rec, err := ParseRecord([]byte(`{"dataType": "CVE_RECORD", "cveMetadata": {"cveId": "CVE-2099-0005",
		"dateUpdated": "last tuesday", "datePublished": "2099-01-01"},
		"containers": {"cna": {"metrics": [{"cvssV3_1": "CVSS:3.1/AV:N"}, {"cvssV3_1": {"vectorString": 7}}]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`bad dateUpdated "last tuesday"`,
		`cna metrics[0] cvssV3_1: no vectorString`,
		`cna metrics[1] cvssV3_1: no vectorString`,
	}
	if !reflect.DeepEqual(rec.Warnings, want) {
		t.Errorf("warnings\n got %q\nwant %q", rec.Warnings, want)
	}
	if !rec.DateUpdated.IsZero() || !rec.DatePublished.Equal(time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("dates %v %v", rec.DateUpdated, rec.DatePublished)
	}
}

func TestParseRecordErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty", ``, "cve: decode"},
		{"not JSON", `hello`, "cve: decode"},
		{"truncated", `{"dataType": "CVE_RECORD", "cveMetadata": {"cveId": "CVE-2099-0001"`, "cve: decode"},
		{"array", `[]`, "cve: record is a JSON array, want an object"},
		{"null", `null`, "not a CVE record"},
		{"list", string(readFile(t, "not-a-record.json")), `not a CVE record: dataType "CVE_RECORD_LIST"`},
		{"no dataType", `{"cveMetadata": {"cveId": "CVE-2099-0001"}}`, "not a CVE record"},
		{"no cveId", `{"dataType": "CVE_RECORD", "cveMetadata": {}}`, `bad cveId ""`},
		{"bad cveId", `{"dataType": "CVE_RECORD", "cveMetadata": {"cveId": "GHSA-xxxx"}}`, `bad cveId "GHSA-xxxx"`},
		{"wrong type", `{"dataType": "CVE_RECORD", "cveMetadata": {"cveId": "CVE-2099-0001"}, "containers": {"cna": {"title": 5}}}`, "field containers.cna.title is a JSON number"},
		{"metrics not objects", `{"dataType": "CVE_RECORD", "cveMetadata": {"cveId": "CVE-2099-0001"}, "containers": {"cna": {"metrics": [1]}}}`, "field containers.cna.metrics is a JSON number"},
	}
	for _, tt := range tests {
		rec, err := ParseRecord([]byte(tt.in))
		if err == nil {
			t.Errorf("%s: ParseRecord = %+v, want error", tt.name, rec)
			continue
		}
		if !strings.HasPrefix(err.Error(), "cve: ") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %q, want it to contain %q", tt.name, err, tt.want)
		}
	}
}

func FuzzParseRecord(f *testing.F) {
	for _, name := range []string{"CVE-2099-0001.json", "CVE-2099-0002.json", "CVE-2099-0003.json", "not-a-record.json"} {
		f.Add(readFile(f, name))
	}
	for _, s := range []string{``, `{}`, `null`, `{"dataType": "CVE_RECORD", "cveMetadata": {"cveId": "CVE-2099-0001"}, "containers": {"adp": [{}, null]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := ParseRecord(data)
		if err != nil {
			if !reflect.DeepEqual(rec, Record{}) {
				t.Fatalf("record %+v with error %v", rec, err)
			}
			return
		}
		if !cveIDRe.MatchString(rec.ID) {
			t.Fatalf("bad id %q", rec.ID)
		}
		for _, c := range rec.CVSS {
			if c.Vector == "" || c.Severity == "" || c.BaseScore < 0 || c.BaseScore > 10 ||
				!(strings.HasPrefix(c.Source, "cve:") || c.Source == "cve" || strings.HasPrefix(c.Source, "cve-adp")) {
				t.Fatalf("bad CVSS %+v", c)
			}
		}
		for i, cwe := range rec.CWEs {
			if !cweIDRe.MatchString(cwe) || (i > 0 && rec.CWEs[i-1] >= cwe) {
				t.Fatalf("CWEs %q not valid, sorted and unique", rec.CWEs)
			}
		}
	})
}
