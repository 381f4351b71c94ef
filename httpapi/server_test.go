package httpapi_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/httpapi"
	"github.com/vigil-project/vigil/internal/testserver"
	"github.com/vigil-project/vigil/sqlstore"
)

type fixture struct {
	api                       *httpapi.Server
	srv                       *httptest.Server
	org, member, other, agent string
	reader                    string
	inventory, emptyInventory *vigil.Inventory
}

func setup(t *testing.T) *fixture {
	t.Helper()
	env := testserver.Start(t, "..")
	api := &httpapi.Server{Store: env.Store, DB: env.Engine.DB, Engine: env.Engine, MaxBody: 1 << 20}
	f := &fixture{
		api: api,
		srv: httptest.NewServer(api.Handler()),
		org: env.Key(t, "org", vigil.RoleAdmin), member: env.Key(t, "team", vigil.RoleAnalyst), other: env.Key(t, "other", vigil.RoleAdmin),
		agent: env.Key(t, "team", vigil.RoleAgent), reader: env.Key(t, "team", vigil.RoleReadOnly),
		inventory: env.Inventory,
	}
	t.Cleanup(f.srv.Close)
	empty := *f.inventory
	empty.Packages, empty.Digest = []vigil.Package{}, "sha256:empty"
	f.emptyInventory = &empty
	return f
}

func (f *fixture) call(t *testing.T, method, path, key string, body any) (int, []byte, http.Header) {
	t.Helper()
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, _ := json.Marshal(b)
		rd = bytes.NewReader(data)
		ctype = "application/json"
	}
	req, _ := http.NewRequest(method, f.srv.URL+path, rd)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data, resp.Header
}

func TestSubmitListAndLifecycle(t *testing.T) {
	f := setup(t)
	req := httpapi.SubmitRequest{Type: "image", Name: "registry.example.com/app:1", Tags: map[string]string{"team": "web"}, Inventory: f.inventory}
	code, body, _ := f.call(t, "POST", "/v1/inventories", f.agent, req)
	if code != 200 {
		t.Fatalf("submit: %d %s", code, body)
	}
	var sub httpapi.SubmitResponse
	json.Unmarshal(body, &sub)
	if len(sub.Findings) != 2 || len(sub.Events) != 2 || sub.Resource.Account != "team" {
		t.Fatalf("submit response: %s", body)
	}

	code, body, _ = f.call(t, "GET", "/v1/findings?severity=HIGH&status=ACTIVE", f.member, nil)
	var list httpapi.FindingList
	json.Unmarshal(body, &list)
	if code != 200 || len(list.Findings) != 1 || list.Findings[0].Finding.Vulnerability.ID != "CVE-2020-8203" {
		t.Fatalf("list: %d %s", code, body)
	}
	id := list.Findings[0].ID

	// The changed inventory closes both findings; the first comes back.
	req.Inventory = f.emptyInventory
	if code, body, _ := f.call(t, "POST", "/v1/inventories", f.agent, req); code != 200 {
		t.Fatalf("second submit: %d %s", code, body)
	}
	code, body, _ = f.call(t, "GET", "/v1/findings?status=CLOSED", f.member, nil)
	json.Unmarshal(body, &list)
	if len(list.Findings) != 2 {
		t.Errorf("closed: %s", body)
	}
	req.Inventory = f.inventory
	f.call(t, "POST", "/v1/inventories", f.agent, req)
	code, body, _ = f.call(t, "GET", "/v1/findings/"+id, f.member, nil)
	var d httpapi.FindingDetail
	json.Unmarshal(body, &d)
	var types []string
	for _, e := range d.History {
		types = append(types, e.Type)
	}
	if code != 200 || d.Status != "ACTIVE" || !slices.Equal(types, []string{"FINDING_OPENED", "FINDING_CLOSED", "FINDING_REOPENED"}) {
		t.Errorf("finding: %d %s", code, body)
	}

	code, body, _ = f.call(t, "GET", "/v1/resources?type=image", f.member, nil)
	if code != 200 || !strings.Contains(string(body), `"team":"web"`) {
		t.Errorf("resources: %d %s", code, body)
	}
	code, body, _ = f.call(t, "GET", "/v1/resources?tag=team%3Dweb&limit=1", f.member, nil)
	if code != 200 || !strings.Contains(string(body), `"team":"web"`) {
		t.Errorf("resources by tag: %d %s", code, body)
	}
	code, body, _ = f.call(t, "GET", "/v1/resources?tag=team%3Dother", f.member, nil)
	if code != 200 || strings.Contains(string(body), `"team":"web"`) {
		t.Errorf("resources by another tag: %d %s", code, body)
	}
	for _, bad := range []string{"tag=novalue", "limit=0", "limit=x", "cursor=x"} {
		if code, body, _ = f.call(t, "GET", "/v1/resources?"+bad, f.member, nil); code != 400 {
			t.Errorf("resources?%s: %d %s", bad, code, body)
		}
	}
}

func TestTenantIsolationOverHTTP(t *testing.T) {
	f := setup(t)
	req := httpapi.SubmitRequest{Type: "host", Name: "web-1", Inventory: f.inventory}
	if code, body, _ := f.call(t, "POST", "/v1/inventories", f.member, req); code != 200 {
		t.Fatalf("submit: %d %s", code, body)
	}
	var list httpapi.FindingList
	_, body, _ := f.call(t, "GET", "/v1/findings", f.member, nil)
	json.Unmarshal(body, &list)
	id := list.Findings[0].ID
	// Another organisation sees, reads and counts nothing of it.
	_, body, _ = f.call(t, "GET", "/v1/findings", f.other, nil)
	json.Unmarshal(body, &list)
	if len(list.Findings) != 0 {
		t.Errorf("another account lists %d findings", len(list.Findings))
	}
	if code, _, _ := f.call(t, "GET", "/v1/findings/"+id, f.other, nil); code != 404 {
		t.Errorf("another account reads a finding: %d", code)
	}
	_, body, _ = f.call(t, "GET", "/v1/resources", f.other, nil)
	if strings.Contains(string(body), "web-1") {
		t.Errorf("another account lists the resource: %s", body)
	}
	req.Account = "team"
	if code, _, _ := f.call(t, "POST", "/v1/inventories", f.other, req); code != 404 {
		t.Errorf("another account files under team: %d", code)
	}
	// The organisation's administrator sees its member's.
	_, body, _ = f.call(t, "GET", "/v1/findings", f.org, nil)
	json.Unmarshal(body, &list)
	if len(list.Findings) != 2 {
		t.Errorf("administrator lists %d findings", len(list.Findings))
	}
}

func TestErrorsAreProblems(t *testing.T) {
	f := setup(t)
	good := httpapi.SubmitRequest{Type: "host", Name: "h", Inventory: f.inventory}
	big := append([]byte(`{"type":"host","name":"h","inventory":{"schemaVersion":1,"packages":[],"warnings":["`), bytes.Repeat([]byte("x"), 2<<20)...)
	big = append(big, []byte(`"]}}`)...)
	for _, c := range []struct {
		name, method, path, key string
		body                    any
		status                  int
	}{
		{"no key", "GET", "/v1/findings", "", nil, 401},
		{"bad key", "GET", "/v1/findings", "vgl_nope", nil, 401},
		{"agent reads", "GET", "/v1/findings", f.agent, nil, 403},
		{"read-only submits", "POST", "/v1/inventories", f.reader, good, 403},
		{"malformed JSON", "POST", "/v1/inventories", f.member, []byte(`{"type":`), 400},
		{"unknown field", "POST", "/v1/inventories", f.member, []byte(`{"type":"host","name":"h","inventory":{},"extra":1}`), 400},
		{"wrong schema version", "POST", "/v1/inventories", f.member, []byte(`{"type":"host","name":"h","inventory":{"schemaVersion":7}}`), 400},
		{"bad type", "POST", "/v1/inventories", f.member, httpapi.SubmitRequest{Type: "toaster", Name: "h", Inventory: f.inventory}, 400},
		{"too large", "POST", "/v1/inventories", f.member, big, 413},
		{"unknown filter", "GET", "/v1/findings?colour=red", f.member, nil, 400},
		{"bad severity", "GET", "/v1/findings?severity=SEVERE", f.member, nil, 400},
		{"bad limit", "GET", "/v1/findings?limit=0", f.member, nil, 400},
		{"NaN bound", "GET", "/v1/findings?epssMin=NaN", f.member, nil, 400},
		{"inverted time range", "GET", "/v1/findings?lastObservedFrom=2026-02-01T00:00:00Z&lastObservedTo=2026-01-01T00:00:00Z", f.member, nil, 400},
		{"unknown resource parameter", "GET", "/v1/resources?bogus=1", f.member, nil, 400},
		{"bad tag", "POST", "/v1/inventories", f.member, httpapi.SubmitRequest{Type: "host", Name: "h", Tags: map[string]string{"": "x"}, Inventory: f.inventory}, 400},
		{"bad cursor", "GET", "/v1/findings?cursor=garbage!", f.member, nil, 400},
		{"malformed query", "GET", "/v1/findings?cursor=%%%", f.member, nil, 400},
		{"unknown finding", "GET", "/v1/findings/nope", f.member, nil, 404},
		{"unknown endpoint", "GET", "/v1/nothing", f.member, nil, 404},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, body, hdr := f.call(t, c.method, c.path, c.key, c.body)
			if code != c.status || hdr.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%d %s %s", code, hdr.Get("Content-Type"), body)
			}
			var p httpapi.Problem
			if err := json.Unmarshal(body, &p); err != nil || p.Status != c.status || p.Detail == "" || p.Title == "" {
				t.Errorf("problem: %s", body)
			}
		})
	}
	// Nothing was written by the refused requests.
	_, body, _ := f.call(t, "GET", "/v1/resources", f.org, nil)
	if !strings.Contains(string(body), `"resources":[]`) {
		t.Errorf("refused requests wrote resources: %s", body)
	}
}

func TestOperations(t *testing.T) {
	f := setup(t)
	for path, want := range map[string]string{"/healthz": `"ok"`, "/readyz": `"ready"`, "/metrics": "vigil_vulndb_revision 1"} {
		code, body, _ := f.call(t, "GET", path, "", nil)
		if code != 200 || !strings.Contains(string(body), want) {
			t.Errorf("%s: %d %s", path, code, body)
		}
	}
	// Every route the server answers is in the OpenAPI document, and the
	// document it serves is the one committed.
	code, body, _ := f.call(t, "GET", "/v1/openapi.json", "", nil)
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if code != 200 || json.Unmarshal(body, &doc) != nil || doc.OpenAPI != "3.1.0" || !bytes.Equal(body, httpapi.OpenAPI()) {
		t.Fatalf("openapi: %d", code)
	}
	src, _ := io.ReadAll(must(t, filepath.Join("server.go")))
	routes := regexp.MustCompile(`"(GET|POST|PUT|DELETE|PATCH) (/[^"]*)"`).FindAllStringSubmatch(string(src), -1)
	if len(routes) < 8 {
		t.Fatalf("found %d routes in server.go", len(routes))
	}
	for _, r := range routes {
		if _, ok := doc.Paths[r[2]][strings.ToLower(r[1])]; !ok {
			t.Errorf("%s %s is not documented", r[1], r[2])
		}
	}
}

func must(t *testing.T, path string) io.Reader {
	data, err := readFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(data)
}

func readFile(p string) ([]byte, error) { return os.ReadFile(p) }

func TestResourcesAndAggregationsOverHTTP(t *testing.T) {
	f := setup(t)
	req := httpapi.SubmitRequest{Type: "image", Name: "registry.example.com/app:1", Tags: map[string]string{"env": "prod"}, Inventory: f.inventory}
	_, body, _ := f.call(t, "POST", "/v1/inventories", f.member, req)
	var sub httpapi.SubmitResponse
	json.Unmarshal(body, &sub)
	id := sub.Resource.ID

	code, body, _ := f.call(t, "GET", "/v1/findings/aggregations?by=repository", f.org, nil)
	if code != 200 || !strings.Contains(string(body), `"repository":"registry.example.com/app"`) || !strings.Contains(string(body), `"total":2`) {
		t.Errorf("aggregate: %d %s", code, body)
	}
	code, body, _ = f.call(t, "GET", "/v1/findings/aggregations?by=package&severity=HIGH", f.org, nil)
	if code != 200 || !strings.Contains(string(body), `"name":"lodash"`) || strings.Contains(string(body), "libssl3") {
		t.Errorf("aggregate by package: %d %s", code, body)
	}
	// A page at a time: the pages hold every group once.
	var seen []string
	for cursor := ""; ; {
		code, body, _ = f.call(t, "GET", "/v1/findings/aggregations?by=vulnerability&limit=1&cursor="+cursor, f.org, nil)
		var page httpapi.AggregationList
		if err := json.Unmarshal(body, &page); code != 200 || err != nil || len(page.Aggregations) != 1 {
			t.Fatalf("aggregation page: %d %s", code, body)
		}
		seen = append(seen, page.Aggregations[0].Key["vulnerabilityId"])
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	_, body, _ = f.call(t, "GET", "/v1/findings/aggregations?by=vulnerability", f.org, nil)
	var whole httpapi.AggregationList
	json.Unmarshal(body, &whole)
	if len(seen) < 2 || len(seen) != len(whole.Aggregations) || whole.NextCursor != "" {
		t.Errorf("pages %v, whole %s", seen, body)
	}
	if code, body, _ = f.call(t, "GET", "/v1/findings/aggregations?by=package&cursor=x", f.org, nil); code != 400 {
		t.Errorf("bad aggregation cursor: %d %s", code, body)
	}
	if code, body, _ = f.call(t, "GET", "/v1/findings/aggregations?by=colour", f.org, nil); code != 400 {
		t.Errorf("bad aggregation: %d %s", code, body)
	}
	_, body, _ = f.call(t, "GET", "/v1/findings/aggregations?by=account", f.other, nil)
	if strings.Contains(string(body), "team") {
		t.Errorf("another organisation counts team's findings: %s", body)
	}
	code, body, _ = f.call(t, "GET", "/v1/findings?resourceTag=env%3Dprod&exploitAvailable=false&scoreMin=7&sort=score", f.member, nil)
	if code != 200 || strings.Count(string(body), `"PACKAGE_VULNERABILITY"`) != 1 {
		t.Errorf("filtered: %d %s", code, body)
	}
	if code, _, _ := f.call(t, "GET", "/v1/findings?scoreMin=8&scoreMax=2", f.member, nil); code != 400 {
		t.Errorf("inverted range: %d", code)
	}

	code, body, _ = f.call(t, "PATCH", "/v1/resources/"+id+"/tags", f.member, httpapi.TagRequest{Set: map[string]string{"owner": "web"}, Remove: []string{"env"}})
	if code != 200 || !strings.Contains(string(body), `"owner":"web"`) || strings.Contains(string(body), `"env"`) {
		t.Errorf("tag: %d %s", code, body)
	}
	if code, _, _ := f.call(t, "PATCH", "/v1/resources/"+id+"/tags", f.reader, httpapi.TagRequest{Set: map[string]string{"x": "y"}}); code != 403 {
		t.Errorf("read-only tags: %d", code)
	}
	if code, _, _ := f.call(t, "DELETE", "/v1/resources/"+id, f.other, nil); code != 404 {
		t.Errorf("another account deletes: %d", code)
	}
	code, body, _ = f.call(t, "DELETE", "/v1/resources/"+id, f.member, nil)
	if code != 200 || strings.Count(string(body), "FINDING_CLOSED") != 2 {
		t.Errorf("delete: %d %s", code, body)
	}
	if code, _, _ := f.call(t, "GET", "/v1/resources/"+id, f.member, nil); code != 404 {
		t.Errorf("deleted resource still served: %d", code)
	}
	_, body, _ = f.call(t, "GET", "/v1/findings?status=CLOSED", f.member, nil)
	if strings.Count(string(body), `"CLOSED"`) != 2 {
		t.Errorf("findings of the deleted resource: %s", body)
	}
}

func waitScan(t *testing.T, f *fixture, key, id string) sqlstore.Scan {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		_, body, _ := f.call(t, "GET", "/v1/scans/"+id, key, nil)
		var sc sqlstore.Scan
		json.Unmarshal(body, &sc)
		if sc.Status == sqlstore.ScanDone || sc.Status == sqlstore.ScanFailed {
			return sc
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the scan did not end")
	return sqlstore.Scan{}
}

// A one-layer Debian image with an old libssl3, as a docker-archive.
func debianImage(t *testing.T) (v1.Image, []byte) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct{ name, body string }{
		{"etc/os-release", "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n"},
		{"var/lib/dpkg/status", "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: 3.0.11-1~deb12u2\n\n"},
	} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(f.body))
	}
	tw.Close()
	layerBytes := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerBytes)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	tag, _ := name.NewTag("example.com/debian:12")
	if err := tarball.Write(tag, img, &out); err != nil {
		t.Fatal(err)
	}
	return img, out.Bytes()
}

func TestScansOfUploadsAndRegistries(t *testing.T) {
	f := setup(t)
	img, archive := debianImage(t)

	if code, _, _ := f.call(t, "POST", "/v1/scans?name=debian-12", f.agent, archive); code != 403 {
		t.Errorf("agent key scanned: %d", code)
	}
	code, body, hdr := f.call(t, "POST", "/v1/scans?name=debian-12&tag=env%3Dprod", f.member, archive)
	var sc sqlstore.Scan
	json.Unmarshal(body, &sc)
	if code != 202 || sc.Status != sqlstore.ScanQueued || hdr.Get("Location") != "/v1/scans/"+sc.ID {
		t.Fatalf("upload: %d %s", code, body)
	}
	done := waitScan(t, f, f.member, sc.ID)
	if done.Status != sqlstore.ScanDone || done.Findings != 1 || done.ResourceID == "" {
		t.Fatalf("upload scan: %+v", done)
	}
	_, body, _ = f.call(t, "GET", "/v1/findings?resourceId="+done.ResourceID, f.member, nil)
	if !strings.Contains(string(body), "CVE-2024-5535") {
		t.Errorf("findings of the uploaded image: %s", body)
	}

	// A registry image, by reference.
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	ref, _ := name.ParseReference(host + "/debian:12")
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	// A registry on this machine is refused unless the operator allows it.
	if code, body, _ := f.call(t, "POST", "/v1/scans", f.member, httpapi.ScanRequest{Image: host + "/debian:12"}); code != 403 || !strings.Contains(string(body), "private network") {
		t.Errorf("loopback registry: %d %s", code, body)
	}
	f.api.InsecureRegistries = true
	code, body, _ = f.call(t, "POST", "/v1/scans", f.member, httpapi.ScanRequest{Image: host + "/debian:12"})
	json.Unmarshal(body, &sc)
	if code != 202 {
		t.Fatalf("registry scan: %d %s", code, body)
	}
	if done := waitScan(t, f, f.member, sc.ID); done.Status != sqlstore.ScanDone || done.Findings != 1 {
		t.Errorf("registry scan: %+v", done)
	}

	// Failures: a clear reason in the scan; refusals before any work.
	code, body, _ = f.call(t, "POST", "/v1/scans?name=broken", f.member, []byte("this is not an archive"))
	json.Unmarshal(body, &sc)
	if failed := waitScan(t, f, f.member, sc.ID); failed.Status != sqlstore.ScanFailed || failed.Error == "" {
		t.Errorf("bad upload: %+v", failed)
	}
	if code, _, _ := f.call(t, "POST", "/v1/scans?name=x", f.reader, archive); code != 403 {
		t.Errorf("read-only scan: %d", code)
	}
	if code, _, _ := f.call(t, "POST", "/v1/scans", f.member, archive); code != 400 {
		t.Errorf("upload without a name: %d", code)
	}
	if code, _, _ := f.call(t, "POST", "/v1/scans?name=big", f.member, bytes.Repeat([]byte("x"), 2<<20)); code != 413 {
		t.Errorf("oversized upload: %d", code)
	}
	if code, _, _ := f.call(t, "GET", "/v1/scans/"+sc.ID, f.other, nil); code != 404 {
		t.Errorf("another account reads a scan: %d", code)
	}
}
