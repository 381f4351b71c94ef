package kev

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigil-project/vigil/internal/testutil"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/feed"
)

func parseFile(t *testing.T, name string) (*Catalog, *feed.Problems) {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var probs feed.Problems
	cat, err := Parse(f, &probs)
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	return cat, &probs
}

func TestParseGood(t *testing.T) {
	cat, probs := parseFile(t, filepath.Join("testdata", "good.json"))
	if probs.Count() != 0 {
		t.Errorf("problems: %d %q", probs.Count(), probs.First())
	}
	if cat.Version != "2025.08.25" {
		t.Errorf("Version = %q", cat.Version)
	}
	if want := time.Date(2025, 8, 25, 17, 4, 19, 979600000, time.UTC); !cat.Released.Equal(want) {
		t.Errorf("Released = %v, want %v", cat.Released, want)
	}
	want := []vigil.KEV{{
		CVE:             "CVE-2021-44228",
		VendorProject:   "Apache",
		Product:         "Log4j2",
		Name:            "Apache Log4j2 Remote Code Execution Vulnerability",
		Description:     "Apache Log4j2 contains a vulnerability where JNDI features do not protect against attacker-controlled JNDI-related endpoints, allowing for remote code execution.",
		DateAdded:       "2021-12-10",
		DueDate:         "2021-12-24",
		KnownRansomware: true,
		RequiredAction:  "Apply updates per vendor instructions.",
		Notes:           "https://nvd.nist.gov/vuln/detail/CVE-2021-44228",
		CWEs:            []string{"CWE-20", "CWE-400", "CWE-502"},
	}, {
		CVE:            "CVE-2025-48384",
		VendorProject:  "Git",
		Product:        "Git",
		Name:           "Git Link Following Vulnerability",
		Description:    "Git contains a link following vulnerability.",
		DateAdded:      "2025-08-25",
		DueDate:        "2025-09-15",
		RequiredAction: "Apply mitigations per vendor instructions.",
	}, {
		CVE:             "CVE-2014-123456",
		VendorProject:   "Example",
		Product:         "Widget",
		Name:            "Widget Overflow",
		DateAdded:       "2022-03-25",
		KnownRansomware: true,
		RequiredAction:  "Discontinue use.",
	}}
	if !reflect.DeepEqual(cat.Entries, want) {
		t.Errorf("Entries:\n got %+v\nwant %+v", cat.Entries, want)
	}
}

func TestParseBadEntries(t *testing.T) {
	cat, probs := parseFile(t, filepath.Join("testdata", "bad_entries.json"))
	var got []string
	for _, e := range cat.Entries {
		got = append(got, e.CVE)
	}
	if want := []string{"CVE-2024-0001", "CVE-2024-0008"}; !reflect.DeepEqual(got, want) {
		t.Errorf("entries %v, want %v", got, want)
	}
	if cat.Entries[0].DateAdded != "2024-01-02" || cat.Entries[0].KnownRansomware {
		t.Errorf("first entry %+v: the first of the duplicates must win", cat.Entries[0])
	}
	if !cat.Entries[1].KnownRansomware || !reflect.DeepEqual(cat.Entries[1].CWEs, []string{"CWE-79"}) {
		t.Errorf("last entry %+v", cat.Entries[1])
	}
	// dateReleased plus 11 bad entries.
	if n := probs.Count(); n != 12 {
		t.Errorf("problems = %d, want 12: %q", n, probs.First())
	}
	first := probs.First()
	wantFirst := []string{
		`kev: bad dateReleased "yesterday"`,
		`kev: entry 1: bad cveID "CVE-24-1"`,
		`kev: entry 2 (CVE-2024-0002): bad dateAdded "foo"`,
		`kev: entry 3 (CVE-2024-0003): bad dateAdded "2024-02-30"`,
		`kev: entry 4 (CVE-2024-0004): bad dueDate "2024/01/23"`,
	}
	if !reflect.DeepEqual(first, wantFirst) {
		t.Errorf("first problems:\n got %q\nwant %q", first, wantFirst)
	}
	if !cat.Released.IsZero() {
		t.Errorf("Released = %v, want zero", cat.Released)
	}
}

func TestParseProblemMessages(t *testing.T) {
	tests := []struct {
		entry string
		want  string
	}{
		{`{"cveID": "CVE-2024-0005", "dateAdded": "2024-01-02", "cwes": "CWE-79"}`, `kev: entry 0 (CVE-2024-0005): field cwes is a JSON string`},
		{`{"cveID": "CVE-2024-0006", "dateAdded": 20240102}`, `kev: entry 0 (CVE-2024-0006): field dateAdded is a JSON number`},
		{`{"cveID": 7, "dateAdded": "2024-01-02"}`, `kev: entry 0 (no cveID): field cveID is a JSON number`},
		{`null`, `kev: entry 0: null, want an object`},
		{`"CVE-2024-0007"`, `kev: entry 0: a string, want an object`},
		{`[1]`, `kev: entry 0: an array, want an object`},
		{`12`, `kev: entry 0: a number, want an object`},
		{`{}`, `kev: entry 0: bad cveID ""`},
		{`{"cveID": "CVE-2024-0009"}`, `kev: entry 0 (CVE-2024-0009): bad dateAdded ""`},
		{`{"cveID": "cve-2024-0009", "dateAdded": "2024-01-02"}`, `kev: entry 0: bad cveID "cve-2024-0009"`},
		{`{"cveID": "CVE-2024-0009 ", "dateAdded": "2024-01-02"}`, `kev: entry 0: bad cveID "CVE-2024-0009 "`},
		{`{"cveID": "CVE-2024-0009", "dateAdded": "2024-1-02"}`, `kev: entry 0 (CVE-2024-0009): bad dateAdded "2024-1-02"`},
		{`{"cveID": "CVE-2024-0009", "dateAdded": "2024-01-02T00:00:00Z"}`, `kev: entry 0 (CVE-2024-0009): bad dateAdded "2024-01-02T00:00:00Z"`},
	}
	for _, tt := range tests {
		var probs feed.Problems
		cat, err := Parse(strings.NewReader(`{"vulnerabilities": [`+tt.entry+`]}`), &probs)
		if err != nil {
			t.Errorf("%s: %v", tt.entry, err)
			continue
		}
		if len(cat.Entries) != 0 || probs.Count() != 1 || probs.First()[0] != tt.want {
			t.Errorf("%s: %d entries, problems %q, want %q", tt.entry, len(cat.Entries), probs.First(), tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     string // substring of the error
	}{
		{"empty", ``, "unexpected EOF"},
		{"not JSON", `hello`, "kev: decode"},
		{"array", `[{"cveID": "CVE-2021-44228"}]`, "wrong shape: top level is an array"},
		{"string", `"x"`, "wrong shape: top level is a string"},
		{"null", `null`, "wrong shape: top level is null"},
		{"no vulnerabilities", `{"catalogVersion": "1"}`, `no "vulnerabilities" array`},
		{"vulnerabilities object", `{"vulnerabilities": {}}`, "vulnerabilities is an object, want an array"},
		{"vulnerabilities null", `{"vulnerabilities": null}`, "vulnerabilities is null, want an array"},
		{"truncated", `{"vulnerabilities": [{"cveID": "CVE-2021-44228", "dateAdded": "2021-12-10"}, {"cveID": "CVE-`, "unexpected EOF"},
		{"truncated after entry", `{"vulnerabilities": [{"cveID": "CVE-2021-44228", "dateAdded": "2021-12-10"},`, "kev: decode"},
		{"broken mid-stream", `{"vulnerabilities": [{"cveID": "CVE-2021-44228", "dateAdded": "2021-12-10"}, {"cveID" "x"}]}`, "kev: decode entry 1"},
		{"unclosed object", `{"vulnerabilities": []`, "unexpected EOF"},
		{"trailing garbage", `{"vulnerabilities": []} x`, "kev: decode"},
		{"two objects", `{"vulnerabilities": []} {}`, "data after the catalog"},
		{"broken other key", `{"title": [1, }, "vulnerabilities": []}`, "kev: decode"},
	}
	for _, tt := range tests {
		cat, err := Parse(strings.NewReader(tt.in), nil)
		if err == nil {
			t.Errorf("%s: Parse = %+v, want error", tt.name, cat)
			continue
		}
		if cat != nil {
			t.Errorf("%s: Parse returned a catalog with error %v", tt.name, err)
		}
		if !strings.HasPrefix(err.Error(), "kev: ") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %q, want it to contain %q", tt.name, err, tt.want)
		}
	}
}

func TestParseReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader(`{"vulnerabilities": [`), &errReader{boom})
	if _, err := Parse(r, nil); !errors.Is(err, boom) {
		t.Errorf("Parse error %v, want it to wrap %v", err, boom)
	}
}

type errReader struct{ err error }

func (r *errReader) Read([]byte) (int, error) { return 0, r.err }

func TestParseEmptyCatalog(t *testing.T) {
	cat, err := Parse(strings.NewReader(`{"vulnerabilities": []}`), nil)
	if err != nil || len(cat.Entries) != 0 || cat.Version != "" || !cat.Released.IsZero() {
		t.Errorf("Parse = %+v, %v", cat, err)
	}
}

func TestParseTopLevelTypes(t *testing.T) {
	var probs feed.Problems
	cat, err := Parse(strings.NewReader(`{"catalogVersion": 3, "dateReleased": null, "count": "x", "vulnerabilities": []}`), &probs)
	if err != nil {
		t.Fatal(err)
	}
	if cat.Version != "" || probs.Count() != 2 {
		t.Errorf("Version %q, problems %q", cat.Version, probs.First())
	}
}

func vulndata(t *testing.T) string { return testutil.Vulndata(t) }

func TestRealCatalog(t *testing.T) {
	cat, probs := parseFile(t, filepath.Join(vulndata(t), "kev", "known_exploited_vulnerabilities.json"))
	if probs.Count() != 0 {
		t.Errorf("problems: %d %q", probs.Count(), probs.First())
	}
	if len(cat.Entries) != 1404 {
		t.Errorf("%d entries, want 1404", len(cat.Entries))
	}
	if cat.Version != "2025.08.25" || cat.Released.IsZero() {
		t.Errorf("Version %q Released %v", cat.Version, cat.Released)
	}
	var found bool
	ransomware := 0
	for _, e := range cat.Entries {
		if e.KnownRansomware {
			ransomware++
		}
		if e.CVE == "CVE-2021-44228" {
			found = true
			if e.DateAdded != "2021-12-10" || !e.KnownRansomware || e.Product != "Log4j2" {
				t.Errorf("CVE-2021-44228: %+v", e)
			}
		}
	}
	if !found {
		t.Error("CVE-2021-44228 missing")
	}
	t.Logf("%d entries, %d with known ransomware use", len(cat.Entries), ransomware)
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"good.json", "bad_entries.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		``, `{}`, `[]`, `null`, `{"vulnerabilities": []}`,
		`{"vulnerabilities": [null, 1, "x", [], {}]}`,
		`{"vulnerabilities": [{"cveID": "CVE-2021-44228", "dateAdded": "2021-12-10"}, {"cveID": "CVE-2021-44228", "dateAdded": "2021-12-11"}]}`,
		`{"vulnerabilities": [{"cveID": "CVE-2021-44228", "dateAdded": "2021-12-10"`,
		`{"catalogVersion": {}, "dateReleased": 1, "vulnerabilities": [], "vulnerabilities": [{"cveID": "CVE-2021-44228", "dateAdded": "2021-12-10"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var probs feed.Problems
		cat, err := Parse(bytes.NewReader(data), &probs)
		if err != nil {
			if cat != nil {
				t.Fatalf("catalog %+v with error %v", cat, err)
			}
			if !strings.HasPrefix(err.Error(), "kev: ") {
				t.Fatalf("error %q lacks package prefix", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, e := range cat.Entries {
			if !cveID.MatchString(e.CVE) || !isDate(e.DateAdded) || (e.DueDate != "" && !isDate(e.DueDate)) {
				t.Fatalf("bad entry kept: %+v", e)
			}
			if seen[e.CVE] {
				t.Fatalf("duplicate %s kept", e.CVE)
			}
			seen[e.CVE] = true
		}
		if len(probs.First()) > feed.MaxNamed || len(probs.First()) > probs.Count() {
			t.Fatalf("problems %d, first %q", probs.Count(), probs.First())
		}
	})
}
