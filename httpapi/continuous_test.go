package httpapi_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/httpapi"
	"github.com/vigil-project/vigil/sqlstore"
)

// functionZip is a Node.js function package whose lockfile pins lodash.
func functionZip(t *testing.T, lodash string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	files := map[string]string{
		"index.js":     "exports.handler = async () => require('lodash').VERSION;\n",
		"package.json": `{"name": "fn", "version": "1.0.0", "dependencies": {"lodash": "` + lodash + `"}}`,
		"package-lock.json": `{"name": "fn", "version": "1.0.0", "lockfileVersion": 3, "requires": true, "packages": {
			"": {"name": "fn", "version": "1.0.0", "dependencies": {"lodash": "` + lodash + `"}},
			"node_modules/lodash": {"version": "` + lodash + `", "resolved": "https://registry.npmjs.org/lodash/-/lodash-` + lodash + `.tgz"}}}`,
	}
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, body)
	}
	zw.Close()
	return buf.Bytes()
}

func (f *fixture) putFunction(t *testing.T, key string, fields map[string]string, zipBody []byte) (int, []byte) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	if zipBody != nil {
		w, _ := mw.CreateFormFile("package", "fn.zip")
		w.Write(zipBody)
	}
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/v1/functions", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

func (f *fixture) waitScan(t *testing.T, key, id string) sqlstore.Scan {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, body, _ := f.call(t, "GET", "/v1/scans/"+id, key, nil)
		var sc sqlstore.Scan
		json.Unmarshal(body, &sc)
		if sc.Status == sqlstore.ScanDone || sc.Status == sqlstore.ScanFailed {
			return sc
		}
		if time.Now().After(deadline) {
			t.Fatalf("scan %s: %s", id, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFunctionVersionsReplaceEachOther: a function's new version replaces
// the old one in coverage, and the old version's findings close.
func TestFunctionVersionsReplaceEachOther(t *testing.T) {
	f := setup(t)
	code, body := f.putFunction(t, f.member, map[string]string{"name": "checkout", "runtime": "nodejs20.x", "tag": "team=pay"}, functionZip(t, "4.17.15"))
	if code != http.StatusAccepted {
		t.Fatalf("put: %d %s", code, body)
	}
	var sc sqlstore.Scan
	json.Unmarshal(body, &sc)
	if sc = f.waitScan(t, f.member, sc.ID); sc.Status != sqlstore.ScanDone || sc.Findings == 0 {
		t.Fatalf("first version: %+v", sc)
	}
	resource := sc.ResourceID
	code, body = f.putFunction(t, f.member, map[string]string{"name": "checkout", "runtime": "nodejs20.x"}, functionZip(t, "4.17.21"))
	json.Unmarshal(body, &sc)
	if sc = f.waitScan(t, f.member, sc.ID); sc.Status != sqlstore.ScanDone || sc.ResourceID != resource {
		t.Fatalf("second version: %+v", sc)
	}
	_, body, _ = f.call(t, "GET", "/v1/findings?resourceId="+resource+"&status=ACTIVE", f.member, nil)
	var list httpapi.FindingList
	json.Unmarshal(body, &list)
	if len(list.Findings) != 0 {
		t.Errorf("findings of the old version still active: %s", body)
	}
	_, body, _ = f.call(t, "GET", "/v1/findings?resourceId="+resource+"&status=CLOSED", f.member, nil)
	json.Unmarshal(body, &list)
	if len(list.Findings) == 0 {
		t.Errorf("no closed findings: %s", body)
	}
	_, body, _ = f.call(t, "GET", "/v1/coverage?resourceType=function", f.member, nil)
	var cov struct{ Coverage []vigil.Coverage }
	json.Unmarshal(body, &cov)
	if len(cov.Coverage) != 1 || cov.Coverage[0].ScanStatus != vigil.ScanActive || cov.Coverage[0].Tags["team"] != "pay" {
		t.Errorf("coverage: %s", body)
	}

	// Bad input: no package, no name, not a function, wrong media type, an
	// agent key.
	for _, c := range []struct {
		fields map[string]string
		zip    []byte
		key    string
		want   int
	}{
		{map[string]string{"name": "x"}, nil, f.member, 400},
		{map[string]string{}, functionZip(t, "1.0.0"), f.member, 400},
		{map[string]string{"name": "x", "bogus": "1"}, functionZip(t, "1.0.0"), f.member, 400},
		{map[string]string{"name": "x"}, functionZip(t, "1.0.0"), f.agent, 403},
	} {
		if code, body := f.putFunction(t, c.key, c.fields, c.zip); code != c.want {
			t.Errorf("%v: %d %s", c.fields, code, body)
		}
	}
	if code, body, _ := f.call(t, "POST", "/v1/functions", f.member, []byte("not multipart")); code != 400 {
		t.Errorf("raw body: %d %s", code, body)
	}
	code, body = f.putFunction(t, f.member, map[string]string{"name": "junk"}, []byte("this is not a zip"))
	json.Unmarshal(body, &sc)
	if sc = f.waitScan(t, f.member, sc.ID); sc.Status != sqlstore.ScanFailed || sc.Error == "" || strings.Contains(sc.Error, "/") {
		t.Errorf("a package that is not a zip: %+v", sc)
	}
	_, body, _ = f.call(t, "GET", "/v1/coverage?reason=UNSUPPORTED_MEDIA_TYPE", f.member, nil)
	if !strings.Contains(string(body), `"junk"`) {
		t.Errorf("coverage of the junk upload: %s", body)
	}
}

// TestExclusionRescanCoverageUsage: an excluded host's reports are not
// scanned; a rescan matches a kept inventory again; coverage filters and
// usage estimates work and refuse bad input.
func TestExclusionRescanCoverageUsage(t *testing.T) {
	f := setup(t)
	f.api.Prices = map[string]httpapi.Price{"host": {Scan: 0.5, Rematch: 0.01}}
	f.api.Currency = "EUR"
	req := httpapi.SubmitRequest{Type: "host", Name: "db-1", Inventory: f.inventory}
	if code, body, _ := f.call(t, "POST", "/v1/inventories", f.agent, req); code != 200 {
		t.Fatalf("submit: %d %s", code, body)
	}
	_, body, _ := f.call(t, "GET", "/v1/resources?type=host", f.member, nil)
	var rl httpapi.ResourceList
	json.Unmarshal(body, &rl)
	id := rl.Resources[0].ID

	// On-demand rescan of a host: its kept inventory is matched again.
	code, body, _ := f.call(t, "POST", "/v1/resources/"+id+"/rescan", f.member, nil)
	var sc sqlstore.Scan
	json.Unmarshal(body, &sc)
	if code != 202 {
		t.Fatalf("rescan: %d %s", code, body)
	}
	if sc = f.waitScan(t, f.member, sc.ID); sc.Status != sqlstore.ScanDone || sc.Findings != 2 {
		t.Fatalf("rescan: %+v", sc)
	}
	// The scan's status is written just before its job completes.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, body, _ := f.call(t, "GET", "/metrics", "", nil)
		if strings.Contains(string(body), `vigil_jobs{kind="rescan",state="completed"} 1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics:\n%s", body)
		}
	}
	for _, c := range []struct {
		key, path string
		want      int
	}{{f.reader, "/v1/resources/" + id + "/rescan", 403}, {f.member, "/v1/resources/nope/rescan", 404}, {f.other, "/v1/resources/" + id + "/rescan", 404}} {
		if code, body, _ := f.call(t, "POST", c.path, c.key, nil); code != c.want {
			t.Errorf("%s: %d %s", c.path, code, body)
		}
	}

	// Excluded: a report is not stored or matched.
	if code, body, _ := f.call(t, "PATCH", "/v1/resources/"+id+"/tags", f.member, httpapi.TagRequest{Set: map[string]string{vigil.DefaultExcludeTag: "yes"}}); code != 200 {
		t.Fatalf("tag: %d %s", code, body)
	}
	req.Inventory = f.emptyInventory
	code, body, _ = f.call(t, "POST", "/v1/inventories", f.agent, req)
	if code != 200 || !strings.Contains(string(body), "excluded") {
		t.Fatalf("excluded submit: %d %s", code, body)
	}
	_, body, _ = f.call(t, "GET", "/v1/findings?resourceId="+id+"&status=ACTIVE", f.member, nil)
	var list httpapi.FindingList
	json.Unmarshal(body, &list)
	if len(list.Findings) != 2 {
		t.Errorf("an excluded report changed findings: %s", body)
	}
	_, body, _ = f.call(t, "GET", "/v1/coverage?scanStatus=INACTIVE", f.member, nil)
	if !strings.Contains(string(body), vigil.ReasonExcludedByTag) {
		t.Errorf("coverage: %s", body)
	}
	_, body, _ = f.call(t, "GET", "/v1/coverage/stats", f.member, nil)
	if !strings.Contains(string(body), `"EXCLUDED_BY_TAG":1`) {
		t.Errorf("stats: %s", body)
	}
	for _, q := range []string{"scanStatus=MAYBE", "reason=BORED", "resourceType=vm", "limit=0", "cursor=zz", "bogus=1"} {
		if code, body, _ := f.call(t, "GET", "/v1/coverage?"+q, f.member, nil); code != 400 {
			t.Errorf("coverage?%s: %d %s", q, code, body)
		}
	}

	// Usage: one scan and one rematch of a host this month, at the prices.
	code, body, _ = f.call(t, "GET", "/v1/usage", f.member, nil)
	var use struct {
		Usage          []vigil.Usage
		EstimatedTotal float64
		Currency       string
	}
	json.Unmarshal(body, &use)
	month := time.Now().UTC().Format("2006-01")
	if code != 200 || len(use.Usage) != 1 || use.Usage[0].Month != month || use.Usage[0].Scans != 1 || use.Usage[0].Rematches != 1 ||
		use.EstimatedTotal != 0.51 || use.Currency != "EUR" {
		t.Errorf("usage: %d %s", code, body)
	}
	for _, q := range []string{"from=2026-13", "to=yesterday", "x=1"} {
		if code, body, _ := f.call(t, "GET", "/v1/usage?"+q, f.member, nil); code != 400 {
			t.Errorf("usage?%s: %d %s", q, code, body)
		}
	}
	if _, err := httpapi.ParsePrices("image:scan=0.09,host:rematch=0.001"); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"image=1", "vm:scan=1", "image:scan=-1", "image:scan=x", "image:pull=1"} {
		if _, err := httpapi.ParsePrices(bad); err == nil {
			t.Errorf("prices %q accepted", bad)
		}
	}
}
