package vulndb_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-project/vigil/internal/testutil"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/feed"
	"github.com/vigil-project/vigil/feed/mirror"
	"github.com/vigil-project/vigil/vulndb"
)

func makeMirror(t testing.TB) string {
	return testutil.FixtureMirror(t, filepath.Join("testdata", "mirror"))
}

func writeZip(t testing.TB, path string, files []string, name func(string) string) {
	testutil.WriteZip(t, path, files, name)
}

func copyFile(t testing.TB, from, to string) { testutil.CopyFile(t, from, to) }

func update(t testing.TB, path string, src feed.Sources) *vulndb.Summary {
	t.Helper()
	sum, err := vulndb.Update(context.Background(), vulndb.Options{Path: path, Sources: src})
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

func open(t testing.TB, path string) *vulndb.DB {
	t.Helper()
	db, err := vulndb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func show(t testing.TB, db *vulndb.DB, id string) *vigil.Vulnerability {
	t.Helper()
	ids, err := db.Resolve(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 {
		t.Fatalf("Resolve(%s) = %q, want one id", id, ids)
	}
	v, err := db.Get(context.Background(), ids[0])
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func statuses(sum *vulndb.Summary) map[string]string {
	m := map[string]string{}
	for _, s := range sum.Sources {
		m[s.Name] = s.Status
	}
	return m
}

func TestBuildMergesAliasesAndJoinsFeeds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vigil.db")
	sum := update(t, path, feed.FromMirror(makeMirror(t)))
	if !sum.Changed || sum.Revision != 1 {
		t.Errorf("first update: changed=%v revision=%d", sum.Changed, sum.Revision)
	}
	for name, st := range statuses(sum) {
		if st != "updated" {
			t.Errorf("source %s: %s", name, st)
		}
	}
	db := open(t, path)

	// GHSA record reachable through its CVE alias, CVE preferred.
	v := show(t, db, "GHSA-p6mc-m468-83gw")
	if v.ID != "CVE-2020-8203" || !slices.Equal(v.Aliases, []string{"GHSA-p6mc-m468-83gw"}) {
		t.Errorf("lodash: id %s aliases %q", v.ID, v.Aliases)
	}
	if len(v.CVSS) != 1 || v.CVSS[0].BaseScore != 7.4 || v.Severity != "HIGH" {
		t.Errorf("lodash: cvss %+v severity %s", v.CVSS, v.Severity)
	}
	if v.EPSS == nil || v.EPSS.Score != 0.05213 || v.EPSS.Date != "2026-08-16" || v.KEV != nil {
		t.Errorf("lodash: epss %+v kev %+v", v.EPSS, v.KEV)
	}

	// Log4Shell: KEV joined in.
	v = show(t, db, "cve-2021-44228")
	if v.KEV == nil || v.KEV.DateAdded != "2021-12-10" || v.KEV.DueDate != "2021-12-24" || !v.KEV.KnownRansomware {
		t.Errorf("log4shell kev = %+v", v.KEV)
	}
	if v.Severity != "CRITICAL" || len(v.Affected) != 1 || !slices.Equal(v.Affected[0].Fixed(), []string{"2.3.1", "2.12.2", "2.15.0"}) {
		t.Errorf("log4shell: severity %s affected %+v", v.Severity, v.Affected)
	}

	// GO and GHSA records of one CVE are one vulnerability.
	v = show(t, db, "GO-2022-0969")
	if v.ID != "CVE-2022-27664" || !slices.Equal(v.Aliases, []string{"GHSA-69cg-p879-7622", "GO-2022-0969"}) || len(v.Sources) != 2 {
		t.Errorf("go: id %s aliases %q sources %q", v.ID, v.Aliases, v.Sources)
	}
	if v.Summary != "golang.org/x/net/http2 Denial of Service vulnerability" {
		t.Errorf("go: summary from the GHSA record expected, got %q", v.Summary)
	}

	// A DSA for one CVE is that CVE; the CVE record supplies its CVSS.
	v = show(t, db, "DSA-5103-1")
	if v.ID != "CVE-2022-0778" || len(v.CVSS) != 1 || v.CVSS[0].Source != "cve:openssl" || v.CVSS[0].BaseScore != 7.5 {
		t.Errorf("dsa-5103: id %s cvss %+v", v.ID, v.CVSS)
	}
	if !slices.Equal(v.CWEs, []string{"CWE-835"}) {
		t.Errorf("dsa-5103: cwes %q", v.CWEs)
	}
	fixed := map[string]string{}
	for _, a := range v.Affected {
		fixed[a.Ecosystem] = strings.Join(a.Fixed(), ",")
	}
	if fixed["Debian:10"] != "1.1.1d-0+deb10u8" || fixed["Debian:11"] != "1.1.1k-1+deb11u2" {
		t.Errorf("dsa-5103: fixed per release %v", fixed)
	}

	// A DSA for two CVEs is split between them.
	ids, err := db.Resolve(context.Background(), "DSA-3287-1")
	if err != nil || !slices.Equal(ids, []string{"CVE-2014-8176", "CVE-2015-1789"}) {
		t.Fatalf("Resolve(DSA-3287-1) = %q, %v", ids, err)
	}
	for _, id := range ids {
		v := show(t, db, id)
		if !slices.Equal(v.Related, []string{"DSA-3287-1"}) || len(v.Affected) != 2 || v.Summary != "openssl - security update" {
			t.Errorf("%s: related %q affected %d summary %q", id, v.Related, len(v.Affected), v.Summary)
		}
	}

	// Withdrawn records stay, marked.
	v = show(t, db, "RUSTSEC-2020-0159")
	if v.Withdrawn == nil || !v.Affected[0].Withdrawn {
		t.Errorf("withdrawn not marked: %+v", v)
	}

	// Lookups by (ecosystem, package), names normalised per ecosystem.
	for _, c := range []struct {
		eco, name string
		want      []string
	}{
		{"PyPI", "pygments", []string{"CVE-2021-27291"}},
		{"PyPI", "PYGMENTS", []string{"CVE-2021-27291"}},
		{"Debian:11", "openssl", []string{"CVE-2022-0778", "CVE-2023-0464"}},
		{"Debian:12", "openssl", []string{"CVE-2023-0464"}},
		{"Go", "golang.org/x/net", []string{"CVE-2022-27664", "CVE-2022-27664"}},
		{"npm", "lodash-es", []string{"CVE-2020-8203"}},
		{"npm", "Lodash", nil},
		{"Debian:13", "openssl", nil},
	} {
		es, err := db.Lookup(context.Background(), c.eco, c.name)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range es {
			got = append(got, e.VulnID)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("Lookup(%s, %s) = %q, want %q", c.eco, c.name, got, c.want)
		}
	}

	st, err := db.Status(context.Background(), time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"npm": 2, "Go": 2, "Maven": 1, "PyPI": 1, "crates.io": 1, "Debian:7": 1, "Debian:8": 1, "Debian:10": 1, "Debian:11": 2, "Debian:12": 1}
	for k, n := range want {
		if st.Ecosystems[k] != n {
			t.Errorf("ecosystems[%s] = %d, want %d (all: %v)", k, st.Ecosystems[k], n, st.Ecosystems)
		}
	}
	if len(st.Ecosystems) != len(want) {
		t.Errorf("ecosystems = %v", st.Ecosystems)
	}
	if st.Stale || st.KEVEntries != 1 || st.EPSSScores != 3 || st.CVERecords != 1 {
		t.Errorf("status = %+v", st)
	}
}

func TestUpdateIsIncremental(t *testing.T) {
	src := makeMirror(t)
	path := filepath.Join(t.TempDir(), "vigil.db")
	update(t, path, feed.FromMirror(src))
	before, _ := os.Stat(path)

	sum := update(t, path, feed.FromMirror(src))
	if sum.Changed || sum.Revision != 1 {
		t.Errorf("unchanged sources: changed=%v revision=%d", sum.Changed, sum.Revision)
	}
	for name, st := range statuses(sum) {
		if st != "unchanged" {
			t.Errorf("source %s: %s, want unchanged", name, st)
		}
	}
	after, _ := os.Stat(path)
	if !os.SameFile(before, after) {
		t.Error("an update with nothing new replaced the file")
	}

	// One new npm record: only osv/npm is re-ingested, one package changes.
	files, _ := filepath.Glob(filepath.Join("testdata", "mirror", "osv", "npm", "*.json"))
	extra := filepath.Join(t.TempDir(), "GHSA-35jh-r3h4-6jhm.json")
	os.WriteFile(extra, []byte(`{"id":"GHSA-35jh-r3h4-6jhm","modified":"2024-03-01T00:00:00Z","aliases":["CVE-2021-23337"],
		"summary":"Command Injection in lodash","affected":[{"package":{"ecosystem":"npm","name":"lodash.template"},
		"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"4.17.21"}]}]}]}`), 0o644)
	writeZip(t, filepath.Join(src, "osv", "npm", "all.zip"), append(files, extra), func(f string) string { return filepath.Base(f) })
	sum = update(t, path, feed.FromMirror(src))
	st := statuses(sum)
	if !sum.Changed || sum.Revision != 2 || st["osv/npm"] != "updated" || st["osv/Go"] != "unchanged" || st["epss"] != "unchanged" {
		t.Errorf("after one change: changed=%v revision=%d statuses=%v", sum.Changed, sum.Revision, st)
	}
	if sum.ChangedPackages != 1 {
		t.Errorf("changed packages = %d, want 1 (lodash.template)", sum.ChangedPackages)
	}
	db := open(t, path)
	if v := show(t, db, "CVE-2021-23337"); v.ID != "CVE-2021-23337" {
		t.Errorf("new record not found")
	}
	keys, err := db.Changes(context.Background(), 2)
	if err != nil || len(keys) != 1 || keys[0].Package != "lodash.template" || keys[0].Ecosystem != "npm" {
		t.Errorf("Changes(2) = %+v, %v", keys, err)
	}
}

func TestBadSourceKeepsPreviousData(t *testing.T) {
	src := makeMirror(t)
	path := filepath.Join(t.TempDir(), "vigil.db")
	update(t, path, feed.FromMirror(src))

	// A truncated npm zip and a KEV file of the wrong shape.
	zipPath := filepath.Join(src, "osv", "npm", "all.zip")
	data, _ := os.ReadFile(zipPath)
	os.WriteFile(zipPath, data[:len(data)/2], 0o644)
	os.WriteFile(filepath.Join(src, "kev", "known_exploited_vulnerabilities.json"), []byte(`{"vulnerabilities": "none"}`), 0o644)
	os.Remove(filepath.Join(src, "epss", "epss_scores-2026-08-16.csv.gz"))

	sum := update(t, path, feed.FromMirror(src))
	st := statuses(sum)
	if st["osv/npm"] != "failed" || st["kev"] != "failed" || st["epss"] != "missing" || st["osv/Go"] != "unchanged" {
		t.Errorf("statuses = %v", st)
	}
	db := open(t, path)
	if v := show(t, db, "GHSA-p6mc-m468-83gw"); v.EPSS == nil {
		t.Error("npm or EPSS data lost after a failed update")
	}
	if v := show(t, db, "CVE-2021-44228"); v.KEV == nil {
		t.Error("KEV data lost after a failed update")
	}
	status, err := db.Status(context.Background(), time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(status.Warnings, "\n")
	for _, want := range []string{"osv/npm: source failed", "kev: source failed", "epss: source missing"} {
		if !strings.Contains(joined, want) {
			t.Errorf("warnings lack %q:\n%s", want, joined)
		}
	}
}

func TestBadRecordsAreCountedAndNamed(t *testing.T) {
	src := makeMirror(t)
	files, _ := filepath.Glob(filepath.Join("testdata", "mirror", "osv", "PyPI", "*.json"))
	dir := t.TempDir()
	bad := map[string]string{
		"PYSEC-0000-1.json": `{"id": "PYSEC-0000-1", "modified": `,
		"PYSEC-0000-2.json": `{"id":"PYSEC-0000-2","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"PyPI","name":"steam"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2019-09-12"}]}]}]}`,
		"PYSEC-0000-3.json": `{"id":"PYSEC-0000-3","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Atari","name":"pong"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}]}]}`,
	}
	for name, body := range bad {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		files = append(files, p)
	}
	writeZip(t, filepath.Join(src, "osv", "PyPI", "all.zip"), files, func(f string) string { return filepath.Base(f) })
	path := filepath.Join(t.TempDir(), "vigil.db")
	sum := update(t, path, feed.FromMirror(src))
	for _, s := range sum.Sources {
		if s.Name == "osv/PyPI" {
			if s.Status != "updated" || s.Records != 3 || s.Skipped != 1 || s.Problems != 4 {
				t.Errorf("osv/PyPI: %+v", s)
			}
		}
	}
	st, err := open(t, path).Status(context.Background(), time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(st.Warnings, "\n")
	for _, want := range []string{"PYSEC-0000-1.json", "2019-09-12", "Atari"} {
		if !strings.Contains(joined, want) {
			t.Errorf("warnings do not name %q:\n%s", want, joined)
		}
	}
	if st.Ecosystems["PyPI"] != 2 {
		t.Errorf("PyPI advisories = %d, want 2", st.Ecosystems["PyPI"])
	}
}

func TestInterruptedUpdateLeavesDatabaseIntact(t *testing.T) {
	src := makeMirror(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "vigil.db")
	update(t, path, feed.FromMirror(src))
	// Touch every zip so that everything is re-ingested, then cancel the
	// update in the middle of it.
	ctx, cancel := context.WithCancel(context.Background())
	_, err := vulndb.Update(ctx, vulndb.Options{Path: path, Sources: feed.FromMirror(src), Force: true, Progress: func(p vulndb.Progress) {
		if p.Step == "ingest" && p.Source == "osv/PyPI" {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted update: err = %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
	db := open(t, path)
	if db.Meta().Revision != 1 {
		t.Errorf("revision = %d after an interrupted update", db.Meta().Revision)
	}
	if v := show(t, db, "CVE-2021-44228"); v.KEV == nil {
		t.Error("data lost")
	}
}

func TestOpenErrorsSayWhatToDo(t *testing.T) {
	dir := t.TempDir()
	_, err := vulndb.Open(filepath.Join(dir, "none.db"))
	var verr *vigil.Error
	if !errors.As(err, &verr) || verr.Code != vigil.EUNAVAILABLE || !strings.Contains(err.Error(), "vigil db update") {
		t.Errorf("missing database: %v", err)
	}
	junk := filepath.Join(dir, "junk.db")
	os.WriteFile(junk, []byte("this is not a database"), 0o644)
	if _, err := vulndb.Open(junk); err == nil || !strings.Contains(err.Error(), "vigil db update") {
		t.Errorf("junk database: %v", err)
	}
	// An update over a junk file rebuilds it.
	sum := update(t, junk, feed.FromMirror(makeMirror(t)))
	if len(sum.Warnings) != 1 || !strings.Contains(sum.Warnings[0], "rebuilding") {
		t.Errorf("warnings = %q", sum.Warnings)
	}
	open(t, junk)
}

func TestHTTPMirrorRoundTrip(t *testing.T) {
	src := makeMirror(t)
	out := t.TempDir()
	res, err := mirror.Run(context.Background(), &feed.Fetcher{}, feed.FromMirror(src), out, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Status != "copied" {
			t.Errorf("mirror %s: %s %s", r.Name, r.Status, r.Error)
		}
	}
	var requests []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests = append(requests, r.Method+" "+r.URL.Path)
		http.FileServer(http.Dir(out)).ServeHTTP(w, r)
	}))
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "vigil.db")
	sum := update(t, path, feed.FromMirror(srv.URL))
	for name, st := range statuses(sum) {
		if st != "updated" {
			t.Errorf("source %s: %s", name, st)
		}
	}
	if v := show(t, open(t, path), "GHSA-jfh8-c2jp-5v3q"); v.KEV == nil || v.EPSS == nil {
		t.Errorf("log4shell over HTTP: %+v", v)
	}
	// A second run is answered by conditional requests.
	sum = update(t, path, feed.FromMirror(srv.URL))
	if sum.Changed {
		t.Errorf("second HTTP update changed the database: %v", statuses(sum))
	}
	// A second mirror run copies nothing.
	res, err = mirror.Run(context.Background(), &feed.Fetcher{}, feed.FromMirror(src), out, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Status != "unchanged" {
			t.Errorf("second mirror %s: %s", r.Name, r.Status)
		}
	}
	_ = io.Discard
}

func TestOpenReaderSurvivesAnUpdate(t *testing.T) {
	src := makeMirror(t)
	path := filepath.Join(t.TempDir(), "vigil.db")
	update(t, path, feed.FromMirror(src))
	reader := open(t, path)
	if _, err := vulndb.Update(context.Background(), vulndb.Options{Path: path, Sources: feed.FromMirror(src), Force: true}); err != nil {
		t.Fatal(err)
	}
	// The reader still sees its revision, whole; a new one sees the next.
	if v := show(t, reader, "CVE-2021-44228"); v.KEV == nil || reader.Meta().Revision != 1 {
		t.Errorf("old reader: revision %d", reader.Meta().Revision)
	}
	if r := open(t, path).Meta().Revision; r != 2 {
		t.Errorf("new reader: revision %d", r)
	}
	if _, err := vulndb.Update(context.Background(), vulndb.Options{Path: path, Sources: feed.FromMirror(src)}); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentUpdatesAreRefused(t *testing.T) {
	src := makeMirror(t)
	path := filepath.Join(t.TempDir(), "vigil.db")
	started := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error)
	go func() {
		_, err := vulndb.Update(context.Background(), vulndb.Options{Path: path, Sources: feed.FromMirror(src), Progress: func(p vulndb.Progress) {
			if p.Step == "merge" {
				close(started)
				<-release
			}
		}})
		done <- err
	}()
	<-started
	_, err := vulndb.Update(context.Background(), vulndb.Options{Path: path, Sources: feed.FromMirror(src)})
	var verr *vigil.Error
	if !errors.As(err, &verr) || verr.Code != vigil.ECONFLICT {
		t.Errorf("second concurrent update: %v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A source that fails after its old rows were deleted (a gzip truncated in
// the middle, a zip whose every record is bad) keeps its earlier data, also
// through later updates that rebuild the merged view.
func TestSourceFailingMidIngestKeepsItsRows(t *testing.T) {
	src := makeMirror(t)
	path := filepath.Join(t.TempDir(), "vigil.db")
	update(t, path, feed.FromMirror(src))

	// EPSS: a valid start, then garbage.
	var rows strings.Builder
	rows.WriteString("#model_version:v1,score_date:2026-08-17T00:00:00+0000\ncve,epss,percentile\n")
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&rows, "CVE-2020-%d,0.1,0.2\n", 10000+i)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(rows.String()))
	zw.Close()
	epssPath := filepath.Join(src, "epss", "epss_scores-2026-08-16.csv.gz")
	os.WriteFile(epssPath, gz.Bytes()[:gz.Len()*2/3], 0o644)
	// Debian: a zip whose only record is not JSON.
	bad := filepath.Join(t.TempDir(), "DSA-0000-1.json")
	os.WriteFile(bad, []byte("{not json"), 0o644)
	writeZip(t, filepath.Join(src, "osv", "Debian", "all.zip"), []string{bad}, func(f string) string { return filepath.Base(f) })

	sum := update(t, path, feed.FromMirror(src))
	st := statuses(sum)
	if st["epss"] != "failed" || st["osv/Debian"] != "failed" {
		t.Fatalf("statuses = %v", st)
	}
	// Now change another OSV source, so that the merged view is rebuilt.
	files, _ := filepath.Glob(filepath.Join("testdata", "mirror", "osv", "npm", "*.json"))
	writeZip(t, filepath.Join(src, "osv", "npm", "all.zip"), files[:1], func(f string) string { return filepath.Base(f) })
	update(t, path, feed.FromMirror(src))

	db := open(t, path)
	v := show(t, db, "CVE-2022-0778")
	if len(v.Affected) != 2 || v.EPSS == nil || v.EPSS.Score != 0.70561 {
		t.Errorf("Debian or EPSS data lost: affected %d, epss %+v", len(v.Affected), v.EPSS)
	}
	status, _ := db.Status(context.Background(), time.Now(), time.Hour)
	if status.EPSSScores != 3 {
		t.Errorf("epss scores = %d, want the 3 of before", status.EPSSScores)
	}
}

func TestNoReadableSourceIsAnError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vigil.db")
	nowhere := feed.Sources{OSV: "http://127.0.0.1:1/osv", KEV: "http://127.0.0.1:1/kev.json"}
	_, err := vulndb.Update(context.Background(), vulndb.Options{Path: path, Sources: nowhere})
	var verr *vigil.Error
	if !errors.As(err, &verr) || verr.Code != vigil.EUNAVAILABLE {
		t.Fatalf("update from nowhere: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Error("a failed first update left a database behind")
	}
	// An existing database stays as it was, and goes stale.
	then := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := vulndb.Update(context.Background(), vulndb.Options{Path: path, Sources: feed.FromMirror(makeMirror(t)), Now: func() time.Time { return then }}); err != nil {
		t.Fatal(err)
	}
	if _, err := vulndb.Update(context.Background(), vulndb.Options{Path: path, Sources: nowhere}); err == nil {
		t.Fatal("update from nowhere succeeded")
	}
	if got := open(t, path).Meta().CheckedAt; !got.Equal(then) {
		t.Errorf("checked at %v after a failed update, want %v", got, then)
	}
}

func TestEmptyKEVIsAFailure(t *testing.T) {
	src := makeMirror(t)
	path := filepath.Join(t.TempDir(), "vigil.db")
	update(t, path, feed.FromMirror(src))
	os.WriteFile(filepath.Join(src, "kev", "known_exploited_vulnerabilities.json"), []byte(`{"vulnerabilities": []}`), 0o644)
	sum := update(t, path, feed.FromMirror(src))
	if st := statuses(sum); st["kev"] != "failed" {
		t.Errorf("kev = %s", st["kev"])
	}
	if v := show(t, open(t, path), "CVE-2021-44228"); v.KEV == nil {
		t.Error("KEV data lost")
	}
}

func TestRecordNamingTwoCVEsDoesNotMergeThem(t *testing.T) {
	src := makeMirror(t)
	dir := t.TempDir()
	// A record that names both Log4Shell and another CVE must not fold
	// them into one vulnerability.
	stray := filepath.Join(dir, "GHSA-xxxx-yyyy-zzzz.json")
	os.WriteFile(stray, []byte(`{"id":"GHSA-xxxx-yyyy-zzzz","modified":"2024-01-01T00:00:00Z","aliases":["CVE-2021-44228","CVE-2020-8203"],
		"summary":"stray","affected":[{"package":{"ecosystem":"npm","name":"evil"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.0.0"}]}]}]}`), 0o644)
	files, _ := filepath.Glob(filepath.Join("testdata", "mirror", "osv", "npm", "*.json"))
	writeZip(t, filepath.Join(src, "osv", "npm", "all.zip"), append(files, stray), func(f string) string { return filepath.Base(f) })
	path := filepath.Join(t.TempDir(), "vigil.db")
	update(t, path, feed.FromMirror(src))
	db := open(t, path)
	if v := show(t, db, "CVE-2020-8203"); v.ID != "CVE-2020-8203" || slices.Contains(v.Aliases, "CVE-2021-44228") || v.Summary != "Prototype Pollution in lodash" {
		t.Errorf("lodash: %s %q %q", v.ID, v.Aliases, v.Summary)
	}
	if v := show(t, db, "CVE-2021-44228"); !slices.Contains(v.Related, "GHSA-xxxx-yyyy-zzzz") || v.Summary != "Remote code injection in Log4j" {
		t.Errorf("log4shell: related %q summary %q", v.Related, v.Summary)
	}
	ids, _ := db.Resolve(context.Background(), "ghsa-xxxx-yyyy-zzzz")
	if !slices.Equal(ids, []string{"CVE-2020-8203", "CVE-2021-44228"}) {
		t.Errorf("Resolve(stray, lower case) = %q", ids)
	}
	if v := show(t, db, "ghsa-jfh8-c2jp-5v3q"); v.ID != "CVE-2021-44228" {
		t.Errorf("lower-case GHSA id resolves to %s", v.ID)
	}
}

func TestReadersDuringUpdatesWithNothingNew(t *testing.T) {
	src := makeMirror(t)
	path := filepath.Join(t.TempDir(), "vigil.db")
	update(t, path, feed.FromMirror(src))
	stop := make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		for {
			select {
			case <-stop:
				return
			default:
			}
			db, err := vulndb.Open(path)
			if err != nil {
				errs <- err
				return
			}
			_, err = db.Get(context.Background(), "CVE-2021-44228")
			db.Close()
			if err != nil {
				errs <- err
				return
			}
		}
	}()
	for i := 0; i < 30; i++ {
		if _, err := vulndb.Update(context.Background(), vulndb.Options{Path: path, Sources: feed.FromMirror(src)}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	if err := <-errs; err != nil {
		t.Errorf("a reader failed during updates: %v", err)
	}
}

func TestVanishedEcosystemIsReported(t *testing.T) {
	src := makeMirror(t)
	path := filepath.Join(t.TempDir(), "vigil.db")
	update(t, path, feed.FromMirror(src))
	os.RemoveAll(filepath.Join(src, "osv", "crates.io"))
	sum := update(t, path, feed.FromMirror(src))
	if st := statuses(sum); st["osv/crates.io"] != "missing" {
		t.Errorf("statuses = %v", st)
	}
	if v := show(t, open(t, path), "RUSTSEC-2020-0159"); v == nil {
		t.Error("crates.io data dropped")
	}
}

func TestStaleTemporaryFilesAreRemoved(t *testing.T) {
	src := makeMirror(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "vigil.db")
	os.WriteFile(path+".tmp-123", []byte("left by a killed update"), 0o644)
	update(t, path, feed.FromMirror(src))
	if _, err := os.Stat(path + ".tmp-123"); !os.IsNotExist(err) {
		t.Error("stale temporary database not removed")
	}
}

// TestChangesSinceNamesVulnsWhoseIntelligenceChanged: a KEV addition moves
// no package range, yet the findings of its vulnerability must change; a
// store that missed revisions beyond what the file keeps must match
// everything again.
func TestChangesSinceNamesVulnsWhoseIntelligenceChanged(t *testing.T) {
	src := makeMirror(t)
	path := filepath.Join(t.TempDir(), "vigil.db")
	update(t, path, feed.FromMirror(src))
	kevPath := filepath.Join(src, "kev", "known_exploited_vulnerabilities.json")
	body, err := os.ReadFile(kevPath)
	if err != nil {
		t.Fatal(err)
	}
	added := strings.Replace(string(body), `"vulnerabilities": [`, `"vulnerabilities": [
        {"cveID": "CVE-2022-0778", "vendorProject": "OpenSSL", "product": "OpenSSL", "vulnerabilityName": "OpenSSL Infinite Loop",
         "dateAdded": "2026-11-20", "shortDescription": "x", "requiredAction": "Apply updates.", "dueDate": "2026-12-11",
         "knownRansomwareCampaignUse": "Unknown", "notes": ""},`, 1)
	added = strings.Replace(added, `"count": 1`, `"count": 2`, 1)
	if err := os.WriteFile(kevPath, []byte(added), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := update(t, path, feed.FromMirror(src))
	if sum.Revision != 2 || sum.ChangedPackages != 0 || sum.ChangedVulns != 1 {
		t.Fatalf("after a KEV addition: revision %d, %d packages, %d vulns changed", sum.Revision, sum.ChangedPackages, sum.ChangedVulns)
	}
	db := open(t, path)
	cs, complete, err := db.ChangesSince(context.Background(), 1)
	if err != nil || !complete || len(cs.Packages) != 0 || !slices.Equal(cs.Vulns, []string{"CVE-2022-0778"}) {
		t.Fatalf("ChangesSince(1) = %+v, %v, %v", cs, complete, err)
	}
	if cs, complete, _ := db.ChangesSince(context.Background(), 2); !complete || len(cs.Vulns)+len(cs.Packages) != 0 {
		t.Errorf("ChangesSince(current) = %+v, %v", cs, complete)
	}
	// Revision 1 was the first build: it has no change set of its own.
	if _, complete, _ := db.ChangesSince(context.Background(), 0); complete {
		t.Error("changes since revision 0 claimed complete")
	}
}
