package osv

import (
	"archive/zip"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/feed"
)

func load(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseRecords(t *testing.T) {
	tests := []struct {
		file      string
		id        string
		aliases   []string
		upstream  []string
		affected  []string // "ecosystem package fixed,fixed"
		cvss      []string // "version score severity"
		vendor    []vigil.VendorSeverity
		cwes      []string
		withdrawn bool
		problems  int
	}{
		{
			file: "debian-urgency.json", id: "DEBIAN-CVE-2023-0464", upstream: []string{"CVE-2023-0464"},
			affected: []string{"Debian:11 openssl 1.1.1n-0+deb11u5", "Debian:12 openssl 3.0.9-1"},
			vendor:   []vigil.VendorSeverity{{Source: "Debian:11", Severity: "not yet assigned"}, {Source: "Debian:12", Severity: "low"}},
		},
		{
			file: "pypi-versions.json", id: "PYSEC-2021-59", aliases: []string{"CVE-2021-27291", "GHSA-pq64-v7f5-gqh8"},
			affected: []string{"PyPI Pygments 2.7.4"}, // the GIT range names a commit, not a version
			cvss:     []string{"3.1 7.5 HIGH"},
		},
		{
			file: "maven-qualifiers.json", id: "GHSA-jfh8-c2jp-5v3q", aliases: []string{"CVE-2021-44228"},
			affected: []string{"Maven org.apache.logging.log4j:log4j-core 2.3.1,2.12.2,2.15.0"},
			cvss:     []string{"3.1 10.0 CRITICAL", "4.0 10.0 CRITICAL"},
			vendor:   []vigil.VendorSeverity{{Source: "GHSA", Severity: "CRITICAL"}},
			cwes:     []string{"CWE-20", "CWE-400", "CWE-502", "CWE-917"},
		},
		{
			file: "go-semver.json", id: "GO-2022-0969", aliases: []string{"CVE-2022-27664", "GHSA-69cg-p879-7622"},
			affected: []string{"Go stdlib 1.18.6,1.19.1", "Go golang.org/x/net 0.0.0-20220906165146-f3363e06e74c"},
		},
		{
			file: "npm-last-affected.json", id: "GHSA-9c47-m6qq-7p4h", aliases: []string{"CVE-2022-23539"},
			affected: []string{"npm json5 2.2.2"},
		},
		{
			file: "withdrawn.json", id: "RUSTSEC-2020-0159", withdrawn: true,
			affected: []string{"crates.io chrono "},
		},
		{
			// An unknown ecosystem, an unparseable fixed version and a bad
			// vector are each dropped and counted; the good entry stays.
			file: "bad-mixed.json", id: "TEST-2024-0001",
			affected: []string{"Debian:12 zlib 1:1.2.13.dfsg-1"},
			problems: 4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var probs feed.Problems
			a, err := Parse(load(t, tt.file), &probs)
			if err != nil {
				t.Fatal(err)
			}
			if a.ID != tt.id {
				t.Errorf("id = %q, want %q", a.ID, tt.id)
			}
			if !slices.Equal(a.Aliases, tt.aliases) {
				t.Errorf("aliases = %q, want %q", a.Aliases, tt.aliases)
			}
			if !slices.Equal(a.Upstream, tt.upstream) {
				t.Errorf("upstream = %q, want %q", a.Upstream, tt.upstream)
			}
			var got []string
			for _, af := range a.Affected {
				got = append(got, af.Ecosystem+" "+af.Package+" "+strings.Join(af.Fixed(), ","))
				if af.Advisory != tt.id {
					t.Errorf("affected advisory = %q", af.Advisory)
				}
			}
			if !slices.Equal(got, tt.affected) {
				t.Errorf("affected = %q, want %q", got, tt.affected)
			}
			var cv []string
			for _, c := range a.CVSS {
				cv = append(cv, strings.Join([]string{c.Version, formatScore(c.BaseScore), c.Severity}, " "))
				if c.Source != tt.id {
					t.Errorf("cvss source = %q", c.Source)
				}
			}
			if !slices.Equal(cv, tt.cvss) {
				t.Errorf("cvss = %q, want %q", cv, tt.cvss)
			}
			if !slices.Equal(a.VendorSeverity, tt.vendor) {
				t.Errorf("vendor severity = %v, want %v", a.VendorSeverity, tt.vendor)
			}
			if !slices.Equal(a.CWEs, tt.cwes) {
				t.Errorf("cwes = %q, want %q", a.CWEs, tt.cwes)
			}
			if (a.Withdrawn != nil) != tt.withdrawn {
				t.Errorf("withdrawn = %v, want %v", a.Withdrawn, tt.withdrawn)
			}
			if probs.Count() != tt.problems {
				t.Errorf("problems = %d %q, want %d", probs.Count(), probs.First(), tt.problems)
			}
		})
	}
}

func formatScore(f float64) string { return fmt.Sprintf("%.1f", f) }

func TestParseRangeEvents(t *testing.T) {
	tests := []struct {
		name, eco, events string
		ok                bool
	}{
		{"dpkg epoch and tilde", "Debian:12", `[{"introduced":"0"},{"fixed":"1:2.3~rc1-1+deb12u1"}]`, true},
		{"dpkg garbage", "Debian:12", `[{"introduced":"0"},{"fixed":"1:!!"}]`, false},
		{"pep440 local", "PyPI", `[{"introduced":"1.0"},{"fixed":"2.0.1+local.1"}]`, true},
		{"pep440 garbage", "PyPI", `[{"introduced":"0"},{"fixed":"not.a.version!"}]`, false},
		{"alpine suffix", "Alpine:v3.20", `[{"introduced":"0"},{"fixed":"3.3.2-r1"}]`, true},
		{"no introduced", "npm", `[{"fixed":"1.0.0"}]`, false},
		{"two keys in one event", "npm", `[{"introduced":"0","fixed":"1.0.0"}]`, false},
		{"unknown event", "npm", `[{"introduced":"0"},{"patched":"1.0.0"}]`, false},
		{"empty version", "npm", `[{"introduced":"0"},{"fixed":""}]`, false},
		{"limit star", "npm", `[{"introduced":"0"},{"limit":"*"}]`, true},
		{"event not an object", "npm", `["0"]`, false},
		{"npm wildcard", "npm", `[{"introduced":"0"},{"fixed":"*"}]`, false},
		{"npm prerelease", "npm", `[{"introduced":"1.0.0-beta.1"},{"fixed":"1.0.0"}]`, true},
		{"inverted range is reported", "npm", `[{"introduced":"5.0.0"},{"fixed":"1.0.0"}]`, false},
		{"empty interval is harmless", "crates.io", `[{"introduced":"0.10.0"},{"fixed":"0.10.0"}]`, true},
		{"npm two-part version", "npm", `[{"introduced":"1.0"},{"fixed":"2.6.1"}]`, true},
		{"maven qualifier", "Maven", `[{"introduced":"2.0-beta9"},{"fixed":"2.3.1"}]`, true},
		{"maven list", "Maven", `[{"introduced":"0"},{"fixed":"1.0,2.0"}]`, false},
		{"nuget", "NuGet", `[{"introduced":"0"},{"fixed":"4.7.2"}]`, true},
		{"rubygems prerelease", "RubyGems", `[{"introduced":"0"},{"fixed":"6.1.7.3.rc1"}]`, true},
		{"packagist", "Packagist", `[{"introduced":"0"},{"fixed":"v2.4.1"}]`, true},
		{"go pseudo-version", "Go", `[{"introduced":"0"},{"fixed":"0.0.0-20220906165146-f3363e06e74c"}]`, true},
		{"several ranges with last_affected", "npm", `[{"introduced":"0"},{"last_affected":"1.0.1"}]`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := `{"id":"T-1","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"` + tt.eco +
				`","name":"p"},"ranges":[{"type":"ECOSYSTEM","events":` + tt.events + `}]}]}`
			var probs feed.Problems
			a, err := Parse([]byte(rec), &probs)
			got := err == nil && len(a.Affected) == 1 && probs.Count() == 0
			if got != tt.ok {
				t.Errorf("usable = %v, want %v (err %v, problems %q)", got, tt.ok, err, probs.First())
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	for name, rec := range map[string]string{
		"not json":        `{"id":`,
		"no id":           `{"modified":"2024-01-01T00:00:00Z"}`,
		"bad id":          `{"id":"../../etc/passwd","modified":"2024-01-01T00:00:00Z"}`,
		"bad modified":    `{"id":"X-1","modified":"yesterday"}`,
		"array":           `[1,2,3]`,
		"wrong type hint": `{"id":"X-1","modified":"2024-01-01T00:00:00Z","affected":"npm"}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(rec), nil); err == nil {
				t.Errorf("Parse(%s) succeeded", rec)
			}
		})
	}
}

func TestReadZipSkipsBadMembers(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range map[string]string{
		"GHSA-9c47-m6qq-7p4h.json": string(load(t, "npm-last-affected.json")),
		"broken.json":              `{"id": "X`,
		"README.txt":               "not a record",
		"GO-2022-0969.json":        string(load(t, "go-semver.json")),
	} {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(body))
	}
	zw.Close()
	var probs feed.Problems
	var ids []string
	n, skipped, err := ReadZip(bytes.NewReader(buf.Bytes()), int64(buf.Len()), &probs, func(a Advisory) error {
		ids = append(ids, a.ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	if n != 2 || skipped != 1 || !slices.Equal(ids, []string{"GHSA-9c47-m6qq-7p4h", "GO-2022-0969"}) {
		t.Errorf("read %d %q", n, ids)
	}
	if probs.Count() != 1 || !strings.Contains(probs.First()[0], "broken.json") {
		t.Errorf("problems = %q", probs.First())
	}
	// A truncated zip cannot be opened at all.
	if _, _, err := ReadZip(bytes.NewReader(buf.Bytes()[:buf.Len()/2]), int64(buf.Len()/2), &probs, func(Advisory) error { return nil }); err == nil {
		t.Error("truncated zip read without error")
	}
}

func FuzzParse(f *testing.F) {
	entries, _ := os.ReadDir("testdata")
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") {
			f.Add(load(f, e.Name()))
		}
	}
	f.Add([]byte(`{"id":"X-1","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Debian:12","name":"a"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1:0"}]}]}]}`))
	f.Add([]byte(`{"id":"X-1","modified":"2024-01-01T00:00:00Z","severity":[{"type":"CVSS_V4","score":"CVSS:4.0/AV:N"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var probs feed.Problems
		a, err := Parse(data, &probs)
		if err != nil {
			return
		}
		if a.ID == "" {
			t.Fatal("parsed record without an id")
		}
		for _, af := range a.Affected {
			if af.Ecosystem == "" || af.Package == "" || !Supported(af.Ecosystem) {
				t.Fatalf("unusable affected entry kept: %+v", af)
			}
			if len(af.Ranges) == 0 && len(af.Versions) == 0 {
				t.Fatalf("affected entry without ranges or versions: %+v", af)
			}
			for _, r := range af.Ranges {
				if len(r.Events) == 0 || r.Events[0] == (vigil.Event{}) {
					t.Fatalf("bad range kept: %+v", r)
				}
			}
		}
		for _, c := range a.CVSS {
			if c.BaseScore < 0 || c.BaseScore > 10 {
				t.Fatalf("score out of range: %+v", c)
			}
		}
	})
}
