package vulndb_test

import (
	"archive/zip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-project/vigil/feed"
	"github.com/vigil-project/vigil/internal/testutil"
	"github.com/vigil-project/vigil/vulndb"
)

// The database built from ../shared/vulndata, once per test binary.
var (
	sharedOnce sync.Once
	sharedPath string
	sharedSum  *vulndb.Summary
	sharedErr  error
)

func sharedDB(t testing.TB) (string, *vulndb.Summary) {
	t.Helper()
	src := testutil.Vulndata(t)
	sharedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vigil-vulndb-test-")
		if err != nil {
			sharedErr = err
			return
		}
		sharedPath = filepath.Join(dir, "vigil.db")
		sharedSum, sharedErr = vulndb.Update(context.Background(), vulndb.Options{Path: sharedPath, Sources: feed.FromMirror(src)})
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return sharedPath, sharedSum
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedPath != "" {
		os.RemoveAll(filepath.Dir(sharedPath))
	}
	os.Exit(code)
}

// zipCounts reads the OSV zips independently of the product's parser: per
// zip its number of records, and per ecosystem the distinct record ids that
// name it (a record in two zips counts once).
func zipCounts(t *testing.T, osvDir string) (map[string]int, map[string]int) {
	t.Helper()
	perZip := map[string]int{}
	ids := map[string]map[string]bool{}
	zips, _ := filepath.Glob(filepath.Join(osvDir, "*", "all.zip"))
	for _, z := range zips {
		eco := filepath.Base(filepath.Dir(z))
		zr, err := zip.OpenReader(z)
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
			data, _ := io.ReadAll(rc)
			rc.Close()
			var rec struct {
				ID       string `json:"id"`
				Affected []struct {
					Package struct {
						Ecosystem string `json:"ecosystem"`
					} `json:"package"`
				} `json:"affected"`
			}
			if err := json.Unmarshal(data, &rec); err != nil {
				t.Fatalf("%s %s: %v", z, f.Name, err)
			}
			perZip["osv/"+eco]++
			for _, a := range rec.Affected {
				e := a.Package.Ecosystem
				if ids[e] == nil {
					ids[e] = map[string]bool{}
				}
				ids[e][rec.ID] = true
			}
		}
		zr.Close()
	}
	perEco := map[string]int{}
	for e, s := range ids {
		perEco[e] = len(s)
	}
	return perZip, perEco
}

func TestSharedCountsMatchTheZips(t *testing.T) {
	path, sum := sharedDB(t)
	wantZip, wantEco := zipCounts(t, filepath.Join(testutil.Vulndata(t), "osv"))
	for _, s := range sum.Sources {
		if s.Status != "updated" {
			t.Errorf("source %s: %s %s", s.Name, s.Status, s.Error)
		}
		if strings.HasPrefix(s.Name, "osv/") && s.Records != wantZip[s.Name] {
			t.Errorf("%s: %d records ingested, the zip holds %d", s.Name, s.Records, wantZip[s.Name])
		}
	}
	db := open(t, path)
	st, err := db.Status(context.Background(), time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for e, n := range wantEco {
		if st.Ecosystems[e] != n {
			t.Errorf("ecosystems[%q] = %d, the zips hold %d", e, st.Ecosystems[e], n)
		}
	}
	if len(st.Ecosystems) != len(wantEco) {
		t.Errorf("ecosystems = %v, want %v", st.Ecosystems, wantEco)
	}
	for _, e := range []string{"Debian:11", "Debian:12", "npm", "PyPI", "Go", "Maven", "crates.io"} {
		if st.Ecosystems[e] == 0 {
			t.Errorf("no advisories for %s", e)
		}
	}
	if st.KEVEntries != 1404 || st.EPSSScores != 360142 || st.CVERecords != 7 {
		t.Errorf("kev %d epss %d cve %d", st.KEVEntries, st.EPSSScores, st.CVERecords)
	}
}

func TestSharedLog4Shell(t *testing.T) {
	path, _ := sharedDB(t)
	db := open(t, path)
	v := show(t, db, "GHSA-jfh8-c2jp-5v3q")
	if v.ID != "CVE-2021-44228" || !slices.Contains(v.Aliases, "GHSA-jfh8-c2jp-5v3q") {
		t.Errorf("id %s aliases %q", v.ID, v.Aliases)
	}
	if v.KEV == nil || v.KEV.DateAdded != "2021-12-10" {
		t.Errorf("kev = %+v", v.KEV)
	}
	if v.EPSS == nil || v.EPSS.Score < 0.9 {
		t.Errorf("epss = %+v", v.EPSS)
	}
	if v.Severity != "CRITICAL" {
		t.Errorf("severity = %s (cvss %+v)", v.Severity, v.CVSS)
	}
	found := false
	for _, a := range v.Affected {
		if a.Ecosystem == "Maven" && a.Package == "org.apache.logging.log4j:log4j-core" && slices.Contains(a.Fixed(), "2.15.0") {
			found = true
		}
	}
	if !found {
		t.Errorf("log4j-core fixed in 2.15.0 not among %+v", v.Affected)
	}
	es, err := db.Lookup(context.Background(), "Maven", "org.apache.logging.log4j:log4j-core")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range es {
		ids = append(ids, e.VulnID)
	}
	for _, want := range []string{"CVE-2021-44228", "CVE-2021-45046", "CVE-2021-45105"} {
		if !slices.Contains(ids, want) {
			t.Errorf("Lookup(log4j-core) = %q, lacks %s", ids, want)
		}
	}
}

func TestSharedDebianOpenSSL(t *testing.T) {
	path, _ := sharedDB(t)
	db := open(t, path)
	// CVE-2022-0778, fixed by DSA-5103-1 (with CVE-2021-4160; buster, bullseye) and DLA-2952-1 /
	// DLA-2953-1 (stretch's openssl and openssl1.0).
	v := show(t, db, "CVE-2022-0778")
	got := map[string]string{}
	for _, a := range v.Affected {
		got[a.Ecosystem+" "+a.Package] = strings.Join(a.Fixed(), ",")
	}
	want := map[string]string{
		"Debian:9 openssl":    "1.1.0l-1~deb9u5",
		"Debian:9 openssl1.0": "1.0.2u-1~deb9u7",
		"Debian:10 openssl":   "1.1.1d-0+deb10u8",
		"Debian:11 openssl":   "1.1.1k-1+deb11u2",
	}
	for k, fixed := range want {
		if got[k] != fixed {
			t.Errorf("%s fixed in %q, want %q (all: %v)", k, got[k], fixed, got)
		}
	}
	ids, err := db.Resolve(context.Background(), "DSA-5103-1")
	if err != nil || !slices.Equal(ids, []string{"CVE-2021-4160", "CVE-2022-0778"}) {
		t.Errorf("Resolve(DSA-5103-1) = %q, %v", ids, err)
	}

	// Every Debian:12 openssl record of the zip is found by a lookup, with
	// its fixed version.
	es, err := db.Lookup(context.Background(), "Debian:12", "openssl")
	if err != nil {
		t.Fatal(err)
	}
	if len(es) == 0 {
		t.Fatal("no Debian:12 openssl entries")
	}
	for _, e := range es {
		if !strings.HasPrefix(e.VulnID, "CVE-") || e.Affected.Advisory != "DEBIAN-"+e.VulnID || len(e.Affected.Fixed()) != 1 {
			t.Errorf("Debian:12 openssl entry %s: %+v", e.VulnID, e.Affected)
		}
	}
}

func TestSharedGHSAOnlyNPMAdvisory(t *testing.T) {
	path, _ := sharedDB(t)
	db := open(t, path)
	v := show(t, db, "CVE-2020-8203")
	if v.ID != "CVE-2020-8203" || !slices.Equal(v.Sources, []string{"GHSA-p6mc-m468-83gw"}) {
		t.Errorf("id %s sources %q", v.ID, v.Sources)
	}
	es, err := db.Lookup(context.Background(), "npm", "lodash")
	if err != nil {
		t.Fatal(err)
	}
	ok := false
	for _, e := range es {
		if e.VulnID == "CVE-2020-8203" && slices.Equal(e.Affected.Fixed(), []string{"4.17.20"}) {
			ok = true
		}
	}
	if !ok {
		t.Errorf("lodash lookup lacks CVE-2020-8203 fixed in 4.17.20: %+v", es)
	}
}

func TestSharedSecondUpdateIsANoop(t *testing.T) {
	path, _ := sharedDB(t)
	// Work on a copy: other tests read the shared database.
	cp := filepath.Join(t.TempDir(), "vigil.db")
	copyFile(t, path, cp)
	sum := update(t, cp, feed.FromMirror(testutil.Vulndata(t)))
	if sum.Changed {
		t.Errorf("second update changed the database: %+v", sum.Sources)
	}
}
