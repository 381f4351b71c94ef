// Package httpapi is Vigil's HTTP API: JSON under /v1, described by the
// OpenAPI document it serves at /v1/openapi.json, errors as RFC 9457
// problem details, API keys as bearer tokens.
package httpapi

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/engine"
	"github.com/vigil-project/vigil/match"
	"github.com/vigil-project/vigil/reconcile"
	"github.com/vigil-project/vigil/sqlstore"
	"github.com/vigil-project/vigil/vulndb"
)

//go:embed openapi.json
var openapi []byte

// OpenAPI is the API's OpenAPI 3.1 document.
func OpenAPI() []byte { return openapi }

// Server serves the API.
type Server struct {
	Store *sqlstore.Store
	// DB is the vulnerability database to match with, reopened when its
	// file changes.
	DB *engine.DBSource
	// Engine runs scans and rescans as durable jobs; the API enqueues
	// them.
	Engine *engine.Engine
	// MaxBody bounds request bodies and uploads.
	MaxBody int64
	Log     *slog.Logger
	// InsecureRegistries allows plain-HTTP registries on any network
	// (tests); AllowPrivateRegistries allows registries on loopback and
	// private networks.
	InsecureRegistries     bool
	AllowPrivateRegistries bool
	// MaxJSON bounds JSON bodies (an inventory), apart from uploads.
	MaxJSON int64
	// Prices are the unit prices that usage is estimated at, per
	// resource type: a scan and a rematch, in Currency.
	Prices   map[string]Price
	Currency string

	requests  atomic.Int64
	failures  atomic.Int64
	submitted atomic.Int64
}

// Price is what one scan and one rematch of a resource type cost.
type Price struct {
	Scan    float64 `json:"scan"`
	Rematch float64 `json:"rematch"`
}

type ctxKey struct{}

// Handler returns the API's routes.
func (s *Server) Handler() http.Handler {
	if s.MaxBody <= 0 {
		s.MaxBody = 64 << 20
	}
	if s.MaxJSON <= 0 {
		s.MaxJSON = min(s.MaxBody, 32<<20)
	}
	if s.Log == nil {
		s.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.ready)
	mux.HandleFunc("GET /metrics", s.metrics)
	mux.HandleFunc("GET /v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openapi)
	})
	mux.Handle("POST /v1/inventories", s.auth(s.submitInventory))
	mux.Handle("POST /v1/scans", s.auth(s.submitScan))
	mux.Handle("GET /v1/scans/{id}", s.auth(s.getScan))
	mux.Handle("GET /v1/findings", s.auth(s.listFindings))
	mux.Handle("GET /v1/findings/{id}", s.auth(s.getFinding))
	mux.Handle("GET /v1/findings/aggregations", s.auth(s.aggregate))
	mux.Handle("GET /v1/resources", s.auth(s.listResources))
	mux.Handle("GET /v1/resources/{id}", s.auth(s.getResource))
	mux.Handle("PATCH /v1/resources/{id}/tags", s.auth(s.tagResource))
	mux.Handle("DELETE /v1/resources/{id}", s.auth(s.deleteResource))
	mux.Handle("POST /v1/resources/{id}/rescan", s.auth(s.rescan))
	mux.Handle("POST /v1/functions", s.auth(s.putFunction))
	mux.Handle("POST /v1/registries", s.auth(s.createRegistry))
	mux.Handle("GET /v1/registries", s.auth(s.listRegistries))
	mux.Handle("DELETE /v1/registries/{id}", s.auth(s.deleteRegistry))
	mux.Handle("POST /v1/registries/{id}/poll", s.auth(s.pollRegistry))
	mux.HandleFunc("POST /v1/registries/{id}/events", s.registryEvents)
	mux.Handle("GET /v1/coverage", s.auth(s.listCoverage))
	mux.Handle("GET /v1/coverage/stats", s.auth(s.coverageStats))
	mux.Handle("GET /v1/usage", s.auth(s.usage))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		problem(w, r, vigil.Errorf(vigil.ENOTFOUND, "no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return s.count(mux)
}

func (s *Server) count(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		rw := &statusWriter{ResponseWriter: w, status: 200}
		next.ServeHTTP(rw, r)
		if rw.status >= 500 {
			s.failures.Add(1)
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// auth resolves the bearer key to a principal; no key, a bad one, an
// expired or revoked one are all 401, with nothing done.
func (s *Server) auth(h func(http.ResponseWriter, *http.Request, vigil.Principal)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vigil"`)
			problem(w, r, vigil.Errorf(vigil.EUNAUTHORIZED, "an API key is required: Authorization: Bearer KEY"))
			return
		}
		p, err := s.Store.Authenticate(r.Context(), strings.TrimSpace(secret))
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vigil"`)
			problem(w, r, err)
			return
		}
		h(w, r, p)
	})
}

func (s *Server) vulnDB() (*vulndb.DB, error) { return s.DB.Get() }

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if _, err := s.vulnDB(); err != nil {
		problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintf(w, "# HELP vigil_http_requests_total HTTP requests served.\n# TYPE vigil_http_requests_total counter\nvigil_http_requests_total %d\n", s.requests.Load())
	fmt.Fprintf(w, "# HELP vigil_http_failures_total HTTP requests answered with a 5xx status.\n# TYPE vigil_http_failures_total counter\nvigil_http_failures_total %d\n", s.failures.Load())
	fmt.Fprintf(w, "# HELP vigil_inventories_submitted_total Inventories stored and matched.\n# TYPE vigil_inventories_submitted_total counter\nvigil_inventories_submitted_total %d\n", s.submitted.Load())
	if counts, err := s.Store.JobCounts(r.Context()); err == nil {
		fmt.Fprintf(w, "# HELP vigil_jobs Jobs of continuous scanning, by kind and state.\n# TYPE vigil_jobs gauge\n")
		kinds := make([]string, 0, len(counts))
		for k := range counts {
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
		for _, k := range kinds {
			for _, st := range []string{sqlstore.JobAvailable, sqlstore.JobRunning, sqlstore.JobCompleted, sqlstore.JobFailed} {
				fmt.Fprintf(w, "vigil_jobs{kind=%q,state=%q} %d\n", k, st, counts[k][st])
			}
		}
	}
	if db, err := s.vulnDB(); err == nil {
		fmt.Fprintf(w, "# HELP vigil_vulndb_revision Revision of the vulnerability database.\n# TYPE vigil_vulndb_revision gauge\nvigil_vulndb_revision %d\n", db.Meta().Revision)
		fmt.Fprintf(w, "# HELP vigil_vulndb_age_seconds Seconds since the database last checked its sources.\n# TYPE vigil_vulndb_age_seconds gauge\nvigil_vulndb_age_seconds %d\n", int64(time.Since(db.Meta().CheckedAt).Seconds()))
	}
}

// SubmitRequest is the body of POST /v1/inventories.
type SubmitRequest struct {
	Account   string            `json:"account,omitempty"`
	Type      string            `json:"type"`
	Name      string            `json:"name"`
	Tags      map[string]string `json:"tags,omitempty"`
	Inventory *vigil.Inventory  `json:"inventory"`
}

// SubmitResponse is its answer.
type SubmitResponse struct {
	Resource vigil.Resource    `json:"resource"`
	Findings []vigil.Finding   `json:"findings"`
	Events   []reconcile.Event `json:"events"`
	Warnings []string          `json:"warnings"`
}

func (s *Server) submitInventory(w http.ResponseWriter, r *http.Request, p vigil.Principal) {
	var req SubmitRequest
	if err := decode(w, r, s.MaxJSON, &req); err != nil {
		problem(w, r, err)
		return
	}
	if req.Inventory == nil {
		problem(w, r, vigil.Errorf(vigil.EINVALID, "inventory: required"))
		return
	}
	// A resource excluded by tag is not scanned: its report is not
	// stored or matched, and its findings stay as they were.
	if excluded, res, err := s.excluded(r, p, req); err != nil {
		problem(w, r, err)
		return
	} else if excluded {
		writeJSON(w, http.StatusOK, SubmitResponse{Resource: *res, Findings: []vigil.Finding{}, Events: []reconcile.Event{},
			Warnings: []string{"not scanned: the resource is excluded by its " + s.Store.ExcludeTag() + " tag"}})
		return
	}
	db, err := s.vulnDB()
	if err != nil {
		problem(w, r, err)
		return
	}
	res, err := match.Match(r.Context(), db, req.Inventory)
	if err != nil {
		problem(w, r, err)
		return
	}
	unsupported, msg := engine.UnsupportedOS(res)
	sub, err := s.Store.SubmitInventory(r.Context(), p, sqlstore.ResourceSpec{Account: req.Account, Type: req.Type, Name: req.Name, Tags: req.Tags,
		Unsupported: unsupported, Message: msg}, req.Inventory, res.Findings, db.Meta().Revision)
	if err != nil {
		problem(w, r, err)
		return
	}
	s.submitted.Add(1)
	writeJSON(w, http.StatusOK, SubmitResponse{Resource: sub.Resource, Findings: res.Findings, Events: nonNil(sub.Events), Warnings: nonNil(res.Warnings)})
}

// excluded reports whether an inventory's resource is excluded from
// scanning, by the tags it is submitted with or those it has.
func (s *Server) excluded(r *http.Request, p vigil.Principal, req SubmitRequest) (bool, *vigil.Resource, error) {
	key := s.Store.ExcludeTag()
	if _, ok := req.Tags[key]; ok {
		return true, &vigil.Resource{Type: req.Type, Name: req.Name, Tags: req.Tags}, nil
	}
	accountID, _, err := s.Store.AccountFor(r.Context(), p, req.Account)
	if err != nil {
		return false, nil, err
	}
	id, err := s.Store.ResourceByName(r.Context(), accountID, req.Type, req.Name)
	if err != nil || id == "" {
		return false, nil, err
	}
	reason, err := s.Store.CoverageReason(r.Context(), id)
	if err != nil || reason != vigil.ReasonExcludedByTag {
		return false, nil, err
	}
	res, err := s.Store.Resource(r.Context(), vigil.Principal{AccountID: accountID, Role: vigil.RoleAdmin, Visible: []int64{accountID}}, id)
	return err == nil, res, err
}

func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

// FindingList is the body of GET /v1/findings.
type FindingList struct {
	Findings   []reconcile.Stored `json:"findings"`
	NextCursor string             `json:"nextCursor,omitempty"`
}

var findingParams = []string{"status", "severity", "type", "resourceId", "resourceType", "resourceTag", "vulnerabilityId",
	"packageName", "packageVersion", "packageEcosystem", "fixAvailable", "exploitAvailable", "epssMin", "epssMax", "scoreMin", "scoreMax",
	"firstObservedFrom", "firstObservedTo", "lastObservedFrom", "lastObservedTo", "updatedFrom", "updatedTo", "titleContains",
	"sort", "limit", "cursor"}

// parseFilter reads the finding filter of a query; unknown parameters and
// bad values are errors.
func parseFilter(raw string, allowed []string) (sqlstore.FindingFilter, url.Values, error) {
	var f sqlstore.FindingFilter
	q, err := parseQuery(raw, allowed)
	if err != nil {
		return f, nil, err
	}
	list := func(name string, known []string) ([]string, error) {
		var out []string
		for _, v := range q[name] {
			for _, x := range strings.Split(v, ",") {
				x = strings.ToUpper(strings.TrimSpace(x))
				if !slices.Contains(known, x) {
					return nil, vigil.Errorf(vigil.EINVALID, "%s %q: want one of %s", name, x, strings.Join(known, ", "))
				}
				out = append(out, x)
			}
		}
		return out, nil
	}
	if f.Status, err = list("status", []string{reconcile.Active, reconcile.Suppressed, reconcile.Closed}); err != nil {
		return f, nil, err
	}
	if f.Severity, err = list("severity", []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "NONE", "UNTRIAGED"}); err != nil {
		return f, nil, err
	}
	f.Type, f.ResourceID, f.ResourceType = q.Get("type"), q.Get("resourceId"), q.Get("resourceType")
	f.VulnID, f.PackageName, f.PackageVersion, f.PackageEcosystem = q.Get("vulnerabilityId"), q.Get("packageName"), q.Get("packageVersion"), q.Get("packageEcosystem")
	f.TitleContains, f.Sort, f.Cursor = q.Get("titleContains"), q.Get("sort"), q.Get("cursor")
	if f.ResourceType != "" && !slices.Contains(vigil.ResourceTypes, f.ResourceType) {
		return f, nil, vigil.Errorf(vigil.EINVALID, "resourceType %q: want host, image or function", f.ResourceType)
	}
	if f.ResourceTags, err = parseTags(q, "resourceTag"); err != nil {
		return f, nil, err
	}
	if v := q.Get("fixAvailable"); v != "" {
		if !slices.Contains([]string{vigil.FixYes, vigil.FixNo, vigil.FixPartial}, strings.ToUpper(v)) {
			return f, nil, vigil.Errorf(vigil.EINVALID, "fixAvailable %q: want YES, NO or PARTIAL", v)
		}
		f.FixAvailable = strings.ToUpper(v)
	}
	if v := q.Get("exploitAvailable"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return f, nil, vigil.Errorf(vigil.EINVALID, "exploitAvailable %q: want true or false", v)
		}
		f.ExploitAvailable = &b
	}
	for _, r := range []struct {
		name     string
		dst      **float64
		min, max float64
	}{{"epssMin", &f.EPSSMin, 0, 1}, {"epssMax", &f.EPSSMax, 0, 1}, {"scoreMin", &f.ScoreMin, 0, 10}, {"scoreMax", &f.ScoreMax, 0, 10}} {
		if v := q.Get(r.name); v != "" {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil || math.IsNaN(x) || x < r.min || x > r.max {
				return f, nil, vigil.Errorf(vigil.EINVALID, "%s %q: want a number from %g to %g", r.name, v, r.min, r.max)
			}
			*r.dst = &x
		}
	}
	for _, r := range []struct {
		name string
		dst  *time.Time
	}{{"firstObservedFrom", &f.FirstObservedFrom}, {"firstObservedTo", &f.FirstObservedTo}, {"lastObservedFrom", &f.LastObservedFrom},
		{"lastObservedTo", &f.LastObservedTo}, {"updatedFrom", &f.UpdatedFrom}, {"updatedTo", &f.UpdatedTo}} {
		if v := q.Get(r.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return f, nil, vigil.Errorf(vigil.EINVALID, "%s %q: want an RFC 3339 time", r.name, v)
			}
			*r.dst = t
		}
	}
	for _, pair := range [][2]string{{"epssMin", "epssMax"}, {"scoreMin", "scoreMax"}} {
		lo, _ := strconv.ParseFloat(q.Get(pair[0]), 64)
		hi, _ := strconv.ParseFloat(q.Get(pair[1]), 64)
		if q.Get(pair[0]) != "" && q.Get(pair[1]) != "" && lo > hi {
			return f, nil, vigil.Errorf(vigil.EINVALID, "%s is above %s", pair[0], pair[1])
		}
	}
	for _, r := range []struct {
		name     string
		from, to time.Time
	}{{"firstObserved", f.FirstObservedFrom, f.FirstObservedTo}, {"lastObserved", f.LastObservedFrom, f.LastObservedTo}, {"updated", f.UpdatedFrom, f.UpdatedTo}} {
		if !r.from.IsZero() && !r.to.IsZero() && r.from.After(r.to) {
			return f, nil, vigil.Errorf(vigil.EINVALID, "%sFrom is after %sTo", r.name, r.name)
		}
	}
	if f.Limit, err = parseLimit(q); err != nil {
		return f, nil, err
	}
	return f, q, nil
}

// parseQuery parses a query string and refuses parameters not allowed.
func parseQuery(raw string, allowed []string) (url.Values, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, vigil.Errorf(vigil.EINVALID, "malformed query: %v", err)
	}
	for k := range q {
		if !slices.Contains(allowed, k) {
			return nil, vigil.Errorf(vigil.EINVALID, "unknown parameter %q (known: %s)", k, strings.Join(allowed, ", "))
		}
	}
	return q, nil
}

// parseTags reads a repeated key=value parameter; nil when absent.
func parseTags(q url.Values, name string) (map[string]string, error) {
	var tags map[string]string
	for _, t := range q[name] {
		k, v, ok := strings.Cut(t, "=")
		if !ok || k == "" {
			return nil, vigil.Errorf(vigil.EINVALID, "%s %q: want key=value", name, t)
		}
		if tags == nil {
			tags = map[string]string{}
		}
		tags[k] = v
	}
	return tags, nil
}

// parseLimit reads a page size, 1 to 1000; 0 when absent.
func parseLimit(q url.Values) (int, error) {
	l := q.Get("limit")
	if l == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(l)
	if err != nil || n < 1 || n > 1000 {
		return 0, vigil.Errorf(vigil.EINVALID, "limit %q: want 1 to 1000", l)
	}
	return n, nil
}

func (s *Server) listFindings(w http.ResponseWriter, r *http.Request, p vigil.Principal) {
	f, _, err := parseFilter(r.URL.RawQuery, findingParams)
	if err != nil {
		problem(w, r, err)
		return
	}
	list, next, err := s.Store.Findings(r.Context(), p, f)
	if err != nil {
		problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, FindingList{Findings: nonNil(list), NextCursor: next})
}

// AggregationList is a page of an aggregation.
type AggregationList struct {
	By           string               `json:"by"`
	Aggregations []sqlstore.Aggregate `json:"aggregations"`
	// NextCursor continues the listing; empty on the last page.
	NextCursor string `json:"nextCursor,omitempty"`
}

func (s *Server) aggregate(w http.ResponseWriter, r *http.Request, p vigil.Principal) {
	allowed := append([]string{"by", "limit", "cursor"}, findingParams[:len(findingParams)-3]...)
	f, q, err := parseFilter(r.URL.RawQuery, allowed)
	if err != nil {
		problem(w, r, err)
		return
	}
	rows, next, err := s.Store.Aggregate(r.Context(), p, q.Get("by"), f)
	if err != nil {
		problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, AggregationList{By: q.Get("by"), Aggregations: nonNil(rows), NextCursor: next})
}

func (s *Server) getResource(w http.ResponseWriter, r *http.Request, p vigil.Principal) {
	res, err := s.Store.Resource(r.Context(), p, r.PathValue("id"))
	if err != nil {
		problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// TagRequest is the body of PATCH /v1/resources/{id}/tags.
type TagRequest struct {
	Set    map[string]string `json:"set,omitempty"`
	Remove []string          `json:"remove,omitempty"`
}

func (s *Server) tagResource(w http.ResponseWriter, r *http.Request, p vigil.Principal) {
	var req TagRequest
	if err := decode(w, r, 1<<20, &req); err != nil {
		problem(w, r, err)
		return
	}
	res, err := s.Store.TagResource(r.Context(), p, r.PathValue("id"), req.Set, req.Remove)
	if err != nil {
		problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) deleteResource(w http.ResponseWriter, r *http.Request, p vigil.Principal) {
	events, err := s.Store.DeleteResource(r.Context(), p, r.PathValue("id"))
	if err != nil {
		problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": nonNil(events)})
}

// FindingDetail is the body of GET /v1/findings/{id}.
type FindingDetail struct {
	reconcile.Stored
	History []reconcile.Event `json:"history"`
}

func (s *Server) getFinding(w http.ResponseWriter, r *http.Request, p vigil.Principal) {
	f, err := s.Store.Finding(r.Context(), p, r.PathValue("id"))
	if err != nil {
		problem(w, r, err)
		return
	}
	hist, err := s.Store.History(r.Context(), p, f.ID)
	if err != nil {
		problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, FindingDetail{Stored: *f, History: hist})
}

func (s *Server) listResources(w http.ResponseWriter, r *http.Request, p vigil.Principal) {
	f, err := parseResourceFilter(r.URL.RawQuery)
	if err != nil {
		problem(w, r, err)
		return
	}
	list, next, err := s.Store.Resources(r.Context(), p, f)
	if err != nil {
		problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ResourceList{Resources: nonNil(list), NextCursor: next})
}

// parseResourceFilter reads the query of a resource listing.
func parseResourceFilter(raw string) (sqlstore.ResourceFilter, error) {
	var f sqlstore.ResourceFilter
	q, err := parseQuery(raw, []string{"type", "tag", "limit", "cursor"})
	if err != nil {
		return f, err
	}
	f.Type, f.Cursor = q.Get("type"), q.Get("cursor")
	if f.Type != "" && !slices.Contains(vigil.ResourceTypes, f.Type) {
		return f, vigil.Errorf(vigil.EINVALID, "type %q: want host, image or function", f.Type)
	}
	if f.Tags, err = parseTags(q, "tag"); err != nil {
		return f, err
	}
	f.Limit, err = parseLimit(q)
	return f, err
}

// ResourceList is a page of resources.
type ResourceList struct {
	Resources []vigil.Resource `json:"resources"`
	// NextCursor continues the listing; empty on the last page.
	NextCursor string `json:"nextCursor,omitempty"`
}

// decode reads a JSON body: bounded, one object, no unknown fields.
func decode(w http.ResponseWriter, r *http.Request, max int64, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, max))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &vigil.Error{Code: "too_large", Message: fmt.Sprintf("request body over the %d byte limit", max)}
		}
		return vigil.Errorf(vigil.EINVALID, "malformed JSON body: %v", err)
	}
	if dec.More() {
		return vigil.Errorf(vigil.EINVALID, "malformed JSON body: more than one value")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail"`
	Instance string `json:"instance,omitempty"`
	Code     string `json:"code"`
}

var statuses = map[string]int{
	vigil.EINVALID:      http.StatusBadRequest,
	vigil.EUNAUTHORIZED: http.StatusUnauthorized,
	vigil.EFORBIDDEN:    http.StatusForbidden,
	vigil.ENOTFOUND:     http.StatusNotFound,
	vigil.ECONFLICT:     http.StatusConflict,
	"too_large":         http.StatusRequestEntityTooLarge,
	vigil.EUNAVAILABLE:  http.StatusServiceUnavailable,
}

// problem writes an error as problem details: the error codes of the
// domain map to statuses here and nowhere else; anything unexpected is an
// internal error whose message stays in the log.
func problem(w http.ResponseWriter, r *http.Request, err error) {
	var e *vigil.Error
	p := Problem{Status: http.StatusInternalServerError, Code: vigil.EINTERNAL, Detail: "internal error", Instance: r.URL.Path}
	if errors.As(err, &e) {
		if st, ok := statuses[e.Code]; ok {
			p.Status, p.Code, p.Detail = st, e.Code, e.Message
		}
	} else if errors.Is(err, context.Canceled) {
		p.Status, p.Detail = 499, "request canceled"
	}
	if p.Status >= 500 && p.Status != http.StatusServiceUnavailable {
		// The detail stays here, in the log.
		slog.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	p.Title = http.StatusText(p.Status)
	p.Type = "https://github.com/vigil-project/vigil/blob/main/docs/api.md#" + p.Code
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}
