package score

import (
	"archive/zip"
	"encoding/json"
	"io"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-project/vigil/internal/testutil"

	"github.com/vigil-project/vigil"
)

func TestParse(t *testing.T) {
	tests := []struct {
		typ, vector string
		version     string
		wantVector  string // "" means the trimmed input
		score       float64
		severity    string
	}{
		// Log4Shell (CVE-2021-44228).
		{"CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", "3.1", "", 10.0, "CRITICAL"},
		{"", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", "3.1", "", 10.0, "CRITICAL"},
		// express CVE-2024-43796.
		{"CVSS_V3", "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:L/A:L", "3.1", "", 5.0, "MEDIUM"},
		{"", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", "3.1", "", 7.5, "HIGH"},
		{"", "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", "3.1", "", 6.1, "MEDIUM"},
		{"", "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", "3.1", "", 5.5, "MEDIUM"},
		{"", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "3.1", "", 9.8, "CRITICAL"},
		{"", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", "3.1", "", 0.0, "NONE"},
		// Temporal metrics do not change the base score.
		{"", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:P/RL:O/RC:C", "3.1", "", 9.8, "CRITICAL"},
		{"CVSS_V3", "CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H", "3.0", "", 8.1, "HIGH"},
		{"", "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "3.0", "", 9.8, "CRITICAL"},
		// CVSS v4.0.
		{"CVSS_V4", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", "4.0", "", 9.3, "CRITICAL"},
		{"", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", "4.0", "", 9.3, "CRITICAL"},
		// CVE-2024-47764 (cookie), as the CNA scored it.
		{"", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:L/VA:N/SC:N/SI:N/SA:N", "4.0", "", 6.9, "MEDIUM"},
		{"", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N", "4.0", "", 0.0, "NONE"},
		// CVSS v2.0.
		{"CVSS_V2", "AV:N/AC:L/Au:N/C:P/I:P/A:P", "2.0", "", 7.5, "HIGH"},
		{"", "AV:N/AC:L/Au:N/C:P/I:P/A:P", "2.0", "", 7.5, "HIGH"},
		{"", "(AV:N/AC:L/Au:N/C:P/I:P/A:P)", "2.0", "AV:N/AC:L/Au:N/C:P/I:P/A:P", 7.5, "HIGH"},
		{"", "AV:N/AC:M/Au:N/C:N/I:P/A:N", "2.0", "", 4.3, "MEDIUM"},
		{"", "AV:N/AC:L/Au:N/C:C/I:C/A:C", "2.0", "", 10.0, "HIGH"},
		{"", "AV:L/AC:H/Au:M/C:N/I:N/A:N", "2.0", "", 0.0, "LOW"},
		// Surrounding space is trimmed.
		{"", "  CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:L/A:L\n", "3.1", "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:L/A:L", 5.0, "MEDIUM"},
	}
	for _, tt := range tests {
		got, err := Parse(tt.typ, tt.vector)
		if err != nil {
			t.Errorf("Parse(%q, %q): %v", tt.typ, tt.vector, err)
			continue
		}
		want := tt.wantVector
		if want == "" {
			want = strings.TrimSpace(tt.vector)
		}
		if got.Version != tt.version || got.Vector != want || got.BaseScore != tt.score || got.Severity != tt.severity || got.Source != "" {
			t.Errorf("Parse(%q, %q) = %+v, want version %s vector %s score %v severity %s",
				tt.typ, tt.vector, got, tt.version, want, tt.score, tt.severity)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ typ, vector string }{
		{"", ""},
		{"", "   "},
		{"", "garbage"},
		{"", "CVSS:3.1/"},
		{"", "CVSS:3.1/AV:N/AC:L"}, // missing base metrics
		{"", "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"},          // bad value
		{"", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/"},         // trailing slash
		{"", "CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"},     // repeated metric
		{"", "CVSS:5.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"},          // unknown version
		{"", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N"}, // short v4
		{"", "AV:N/AC:L/Au:N/C:P/I:P"},                                // short v2
		{"", "(AV:N/AC:L/Au:N/C:P/I:P/A:P"},                           // unbalanced
		{"CVSS_V2", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"},   // type disagrees
		{"CVSS_V3", "AV:N/AC:L/Au:N/C:P/I:P/A:P"},                     // type disagrees
		{"CVSS_V3", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"},
		{"CVSS_V4", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"},
		{"CVSS_V5", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"}, // unknown type
		{"", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H" + strings.Repeat("/E:X", 300)},
	}
	for _, tt := range tests {
		got, err := Parse(tt.typ, tt.vector)
		if err == nil {
			t.Errorf("Parse(%q, %q) = %+v, want error", tt.typ, tt.vector, got)
		} else if !strings.HasPrefix(err.Error(), "score: ") {
			t.Errorf("Parse(%q, %q) error %q lacks package prefix", tt.typ, tt.vector, err)
		}
	}
}

func TestRating(t *testing.T) {
	tests := []struct {
		version string
		score   float64
		want    string
	}{
		{"3.1", 0, "NONE"},
		{"3.1", 0.1, "LOW"},
		{"3.1", 3.9, "LOW"},
		{"3.1", 4.0, "MEDIUM"},
		{"3.1", 6.9, "MEDIUM"},
		{"3.1", 7.0, "HIGH"},
		{"3.1", 8.9, "HIGH"},
		{"3.1", 9.0, "CRITICAL"},
		{"3.1", 10, "CRITICAL"},
		{"3.0", 9.8, "CRITICAL"},
		{"4.0", 0, "NONE"},
		{"4.0", 9.3, "CRITICAL"},
		{"4.0", 6.9, "MEDIUM"},
		{"2.0", 0, "LOW"},
		{"2.0", 3.9, "LOW"},
		{"2.0", 4.0, "MEDIUM"},
		{"2.0", 6.9, "MEDIUM"},
		{"2.0", 7.0, "HIGH"},
		{"2.0", 10, "HIGH"},
		{"", 5, "MEDIUM"},
		{"3.1", -1, ""},
		{"3.1", 10.1, ""},
		{"2.0", math.NaN(), ""},
		{"3.1", math.Inf(1), ""},
	}
	for _, tt := range tests {
		if got := Rating(tt.version, tt.score); got != tt.want {
			t.Errorf("Rating(%q, %v) = %q, want %q", tt.version, tt.score, got, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []struct{ typ, vector string }{
		{"", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"},
		{"CVSS_V3", "CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H/E:P/RL:O/RC:C/CR:H/IR:H/AR:H/MAV:L/MAC:H/MPR:L/MUI:R/MS:C/MC:L/MI:L/MA:L"},
		{"CVSS_V4", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"},
		{"", "CVSS:4.0/AV:N/AC:L/AT:P/PR:L/UI:A/VC:L/VI:L/VA:L/SC:H/SI:S/SA:S/E:A/CR:H/IR:M/AR:L/MAV:P/MAC:H/MAT:P/MPR:H/MUI:P/MVC:N/MVI:N/MVA:N/MSC:N/MSI:S/MSA:S/S:P/AU:Y/R:U/V:C/RE:H/U:Red"},
		{"CVSS_V2", "AV:N/AC:L/Au:N/C:P/I:P/A:P"},
		{"", "(AV:N/AC:L/Au:N/C:P/I:P/A:P/E:F/RL:OF/RC:C/CDP:H/TD:H/CR:H/IR:H/AR:H)"},
		{"", ""},
		{"CVSS_V9", "CVSS:"},
	} {
		f.Add(s.typ, s.vector)
	}
	f.Fuzz(func(t *testing.T, typ, vector string) {
		c, err := Parse(typ, vector)
		if err != nil {
			if c != (vigil.CVSS{}) {
				t.Fatalf("Parse(%q, %q) returned %+v with error %v", typ, vector, c, err)
			}
			return
		}
		switch c.Version {
		case "2.0", "3.0", "3.1", "4.0":
		default:
			t.Fatalf("Parse(%q, %q): version %q", typ, vector, c.Version)
		}
		if math.IsNaN(c.BaseScore) || c.BaseScore < 0 || c.BaseScore > 10 {
			t.Fatalf("Parse(%q, %q): score %v", typ, vector, c.BaseScore)
		}
		if c.Severity != Rating(c.Version, c.BaseScore) || c.Severity == "" {
			t.Fatalf("Parse(%q, %q): severity %q for score %v", typ, vector, c.Severity, c.BaseScore)
		}
		if c.Vector == "" || c.Vector != strings.TrimSpace(c.Vector) || c.Source != "" {
			t.Fatalf("Parse(%q, %q): vector %q source %q", typ, vector, c.Vector, c.Source)
		}
		// Parsing the normalised vector again gives the same result.
		c2, err := Parse("", c.Vector)
		if err != nil || c2 != c {
			t.Fatalf("Parse(%q) = %+v, %v; first parse gave %+v", c.Vector, c2, err, c)
		}
	})
}

func vulndata(t *testing.T) string { return testutil.Vulndata(t) }

// TestRealOSVSeverities scores every CVSS vector in the OSV snapshots.
func TestRealOSVSeverities(t *testing.T) {
	zips, err := filepath.Glob(filepath.Join(vulndata(t), "osv", "*", "all.zip"))
	if err != nil {
		t.Fatal(err)
	}
	if len(zips) == 0 {
		t.Skip("no osv/*/all.zip in the shared vulnerability data")
	}
	type severity struct{ Type, Score string }
	var n int
	versions := map[string]int{}
	for _, name := range zips {
		zr, err := zip.OpenReader(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range zr.File {
			if !strings.HasSuffix(f.Name, ".json") {
				continue
			}
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatalf("%s: %s: %v", name, f.Name, err)
			}
			var rec struct {
				Severity []severity
				Affected []struct{ Severity []severity }
			}
			if err := json.Unmarshal(data, &rec); err != nil {
				t.Fatalf("%s: %s: %v", name, f.Name, err)
			}
			all := rec.Severity
			for _, a := range rec.Affected {
				all = append(all, a.Severity...)
			}
			for _, s := range all {
				if !strings.HasPrefix(s.Type, "CVSS_") {
					continue
				}
				c, err := Parse(s.Type, s.Score)
				if err != nil {
					t.Errorf("%s: %s: %v", name, f.Name, err)
					continue
				}
				n++
				versions[c.Version]++
			}
		}
		zr.Close()
	}
	t.Logf("scored %d vectors: %v", n, versions)
	if n == 0 {
		t.Error("no CVSS vectors found in the OSV snapshots")
	}
}
