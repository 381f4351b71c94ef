package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/engine"
	"github.com/vigil-project/vigil/registry"
	"github.com/vigil-project/vigil/sqlstore"
)

// rescan starts a scan of a resource now (Inspector's on-demand scan):
// a registry image is read again; a resource Vigil cannot read itself (a
// host's agent report, an uploaded archive) has its kept inventory matched
// again against the current database.
func (s *Server) rescan(w http.ResponseWriter, r *http.Request, p vigil.Principal) {
	if p.Role != vigil.RoleAdmin && p.Role != vigil.RoleAnalyst {
		problem(w, r, vigil.Errorf(vigil.EFORBIDDEN, "a key with the %s role cannot start scans", p.Role))
		return
	}
	id := r.PathValue("id")
	_, typ, name, ref, _, err := s.Store.ResourceSource(r.Context(), &p, id)
	if err != nil {
		problem(w, r, err)
		return
	}
	res, err := s.Store.Resource(r.Context(), p, id)
	if err != nil {
		problem(w, r, err) // pending: nothing to rescan yet
		return
	}
	target := "rescan"
	if ref != "" {
		target = ref
	}
	sc, err := s.Store.CreateScan(r.Context(), p, res.Account, target, typ, name, func(sc *sqlstore.Scan) sqlstore.NewJob {
		job := engine.RescanJob(engine.RescanArgs{Resource: id, Scan: sc.ID})
		job.Key = "" // asked for now: run even if a scheduled rescan waits
		return job
	})
	if err != nil {
		problem(w, r, err)
		return
	}
	sc.ResourceID = id
	s.Engine.Enqueued()
	w.Header().Set("Location", "/v1/scans/"+sc.ID)
	writeJSON(w, http.StatusAccepted, sc)
}

// putFunction takes a function package: multipart/form-data with the
// fields name (required), runtime, account and tag (key=value, repeated),
// the file part "package" (the function's zip) and any number of file
// parts "layer" (its layers' zips, in order). The function's resource is
// named by the function: a new version replaces the old one, whose
// findings close.
func (s *Server) putFunction(w http.ResponseWriter, r *http.Request, p vigil.Principal) {
	if p.Role != vigil.RoleAdmin && p.Role != vigil.RoleAnalyst {
		problem(w, r, vigil.Errorf(vigil.EFORBIDDEN, "a key with the %s role cannot submit functions", p.Role))
		return
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		problem(w, r, vigil.Errorf(vigil.EINVALID, "want multipart/form-data with a package part (the function zip), layer parts and name, runtime, account, tag fields"))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.MaxBody)
	mr, err := r.MultipartReader()
	if err != nil {
		problem(w, r, vigil.Errorf(vigil.EINVALID, "multipart body: %v", err))
		return
	}
	args := engine.ScanArgs{Type: vigil.ResourceFunction, Tags: map[string]string{}}
	var account string
	var kept []string
	fail := func(err error) {
		for _, id := range kept {
			s.Store.DeleteUpload(context.WithoutCancel(r.Context()), id)
		}
		problem(w, r, err)
	}
	for {
		part, err := mr.NextPart()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			fail(vigil.Errorf(vigil.EINVALID, "multipart body: %v", err))
			return
		}
		field := part.FormName()
		switch field {
		case "package", "layer":
			id, err := s.keepUpload(w, r, part)
			if err != nil {
				fail(err)
				return
			}
			kept = append(kept, id)
			if field == "package" {
				if args.Upload != "" {
					fail(vigil.Errorf(vigil.EINVALID, "more than one package part"))
					return
				}
				args.Upload = id
			} else {
				args.Layers = append(args.Layers, id)
			}
		case "name", "runtime", "account", "tag":
			v := strings.TrimSpace(readSmall(part))
			switch field {
			case "name":
				args.Name = v
			case "runtime":
				args.Runtime = v
			case "account":
				account = v
			case "tag":
				k, val, ok := strings.Cut(v, "=")
				if !ok || k == "" {
					fail(vigil.Errorf(vigil.EINVALID, "tag %q: want key=value", v))
					return
				}
				args.Tags[k] = val
			}
		default:
			fail(vigil.Errorf(vigil.EINVALID, "unknown part %q (known: package, layer, name, runtime, account, tag)", field))
			return
		}
	}
	if args.Upload == "" {
		fail(vigil.Errorf(vigil.EINVALID, "package: required (the function's zip)"))
		return
	}
	if args.Name == "" {
		fail(vigil.Errorf(vigil.EINVALID, "name: required (the function's name)"))
		return
	}
	sc, err := s.startScan(r, p, account, "function", args)
	if err != nil {
		problem(w, r, err) // startScan dropped the uploads
		return
	}
	w.Header().Set("Location", "/v1/scans/"+sc.ID)
	writeJSON(w, http.StatusAccepted, sc)
}

// readSmall reads a form field of at most 4 KiB.
func readSmall(part io.Reader) string {
	buf := make([]byte, 4097)
	n := 0
	for n < len(buf) {
		m, err := part.Read(buf[n:])
		n += m
		if err != nil {
			break
		}
	}
	return string(buf[:min(n, 4096)])
}

// RegistryRequest registers a registry (POST /v1/registries).
type RegistryRequest struct {
	URL      string   `json:"url"`
	Username string   `json:"username,omitempty"`
	Password string   `json:"password,omitempty"`
	Include  []string `json:"include,omitempty"`
	Exclude  []string `json:"exclude,omitempty"`
	// PollInterval is a Go duration ("15m"); empty or "0" relies on the
	// registry's notifications alone.
	PollInterval string `json:"pollInterval,omitempty"`
	Account      string `json:"account,omitempty"`
}

func (s *Server) createRegistry(w http.ResponseWriter, r *http.Request, p vigil.Principal) {
	var req RegistryRequest
	if err := decode(w, r, 1<<16, &req); err != nil {
		problem(w, r, err)
		return
	}
	var every time.Duration
	if req.PollInterval != "" {
		d, err := time.ParseDuration(req.PollInterval)
		if err != nil {
			problem(w, r, vigil.Errorf(vigil.EINVALID, "pollInterval %q: want a duration such as 15m", req.PollInterval))
			return
		}
		every = d
	}
	cfg := registry.Config{URL: req.URL, Username: req.Username, Password: req.Password, Include: req.Include, Exclude: req.Exclude}
	if err := cfg.Validate(); err != nil {
		problem(w, r, vigil.Errorf(vigil.EINVALID, "%v", err))
		return
	}
	if err := s.checkHost(cfg.Host()); err != nil {
		problem(w, r, err)
		return
	}
	reg, err := s.Store.CreateRegistry(r.Context(), p, sqlstore.NewRegistry{Account: req.Account, Config: cfg, PollInterval: every})
	if err != nil {
		problem(w, r, err)
		return
	}
	if every > 0 {
		if _, _, err := s.Store.Enqueue(r.Context(), engine.PollJob(reg.ID)); err == nil {
			s.Engine.Enqueued()
		}
	}
	w.Header().Set("Location", "/v1/registries/"+reg.ID)
	writeJSON(w, http.StatusCreated, reg)
}

func (s *Server) listRegistries(w http.ResponseWriter, r *http.Request, p vigil.Principal) {
	list, err := s.Store.Registries(r.Context(), p)
	if err != nil {
		problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"registries": list})
}

func (s *Server) deleteRegistry(w http.ResponseWriter, r *http.Request, p vigil.Principal) {
	if err := s.Store.DeleteRegistry(r.Context(), p, r.PathValue("id")); err != nil {
		problem(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// pollRegistry polls a registry now.
func (s *Server) pollRegistry(w http.ResponseWriter, r *http.Request, p vigil.Principal) {
	if p.Role != vigil.RoleAdmin && p.Role != vigil.RoleAnalyst {
		problem(w, r, vigil.Errorf(vigil.EFORBIDDEN, "a key with the %s role cannot poll registries", p.Role))
		return
	}
	reg, err := s.Store.RegistryByID(r.Context(), &p, r.PathValue("id"))
	if err != nil {
		problem(w, r, err)
		return
	}
	id, queued, err := s.Store.Enqueue(r.Context(), engine.PollJob(reg.ID))
	if err != nil {
		problem(w, r, err)
		return
	}
	s.Engine.Enqueued()
	writeJSON(w, http.StatusAccepted, map[string]any{"registry": reg.ID, "job": id, "queued": queued})
}

// registryEvents receives a registry's notifications (the CNCF
// Distribution envelope), authenticated by the registry's shared secret
// rather than an API key: a push of an image the registry's patterns
// want starts its scan; a pull renews its scan eligibility; a delete of a
// manifest deletes its resource, closing its findings.
func (s *Server) registryEvents(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	reg, err := s.Store.RegistryByID(ctx, nil, r.PathValue("id"))
	if err != nil || !registry.Authenticate(r.Header, reg.Secret()) {
		// The same answer whether the registry exists or the secret is
		// wrong: the endpoint does not confirm ids.
		w.Header().Set("WWW-Authenticate", `Bearer realm="vigil-registry"`)
		problem(w, r, vigil.Errorf(vigil.EUNAUTHORIZED, "a registry notification needs its registry's shared secret: Authorization: Bearer SECRET"))
		return
	}
	events, err := registry.ParseEvents(http.MaxBytesReader(w, r.Body, registry.DefaultEventLimit), registry.DefaultEventLimit)
	if err != nil {
		problem(w, r, vigil.Errorf(vigil.EINVALID, "%v", err))
		return
	}
	cfg := reg.Config()
	p, err := s.Store.AccountPrincipal(ctx, reg.AccountID)
	if err != nil {
		problem(w, r, err)
		return
	}
	out := struct {
		Scans   []string `json:"scans"`
		Pulls   int      `json:"pulls"`
		Deleted int      `json:"deleted"`
		Ignored int      `json:"ignored"`
	}{Scans: []string{}}
	for _, ev := range events {
		if !cfg.Wants(ev.Repository) || ev.Digest == "" {
			out.Ignored++
			continue
		}
		ref := ev.Ref(cfg)
		switch ev.Action {
		case registry.ActionPush:
			id, err := s.Engine.EnqueueImage(ctx, reg, ref)
			if err != nil {
				problem(w, r, err)
				return
			}
			out.Scans = append(out.Scans, id)
		case registry.ActionPull:
			id, err := s.Store.ResourceByName(ctx, reg.AccountID, vigil.ResourceImage, ref)
			if err == nil && id != "" {
				// A registry's clock, but never the future: a pull
				// cannot renew eligibility beyond now.
				at := s.Store.Now()
				if !ev.Time.IsZero() && ev.Time.Before(at) {
					at = ev.Time
				}
				err = s.Store.RecordActivity(ctx, id, at)
				out.Pulls++
			}
			if err != nil {
				problem(w, r, err)
				return
			}
		case registry.ActionDelete:
			id, err := s.Store.ResourceByName(ctx, reg.AccountID, vigil.ResourceImage, ref)
			if err == nil && id != "" {
				_, err = s.Store.DeleteResource(ctx, p, id)
				out.Deleted++
			}
			if err != nil {
				problem(w, r, err)
				return
			}
		default:
			out.Ignored++
		}
	}
	writeJSON(w, http.StatusAccepted, out)
}

func (s *Server) listCoverage(w http.ResponseWriter, r *http.Request, p vigil.Principal) {
	q, err := parseQuery(r.URL.RawQuery, []string{"resourceType", "scanStatus", "reason", "tag", "limit", "cursor"})
	if err != nil {
		problem(w, r, err)
		return
	}
	tags, err := parseTags(q, "tag")
	if err != nil {
		problem(w, r, err)
		return
	}
	limit, err := parseLimit(q)
	if err != nil {
		problem(w, r, err)
		return
	}
	list, next, err := s.Store.Coverage(r.Context(), p, sqlstore.CoverageFilter{Type: q.Get("resourceType"), ScanStatus: q.Get("scanStatus"),
		Reason: q.Get("reason"), Tags: tags, Limit: limit, Cursor: q.Get("cursor")})
	if err != nil {
		problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"coverage": list, "nextCursor": next})
}

func (s *Server) coverageStats(w http.ResponseWriter, r *http.Request, p vigil.Principal) {
	if _, err := parseQuery(r.URL.RawQuery, nil); err != nil {
		problem(w, r, err)
		return
	}
	stats, err := s.Store.CoverageStats(r.Context(), p)
	if err != nil {
		problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"stats": stats})
}

// usage lists scans and rematches per account, resource type and month,
// with their estimated cost at the configured prices.
func (s *Server) usage(w http.ResponseWriter, r *http.Request, p vigil.Principal) {
	q, err := parseQuery(r.URL.RawQuery, []string{"from", "to"})
	if err != nil {
		problem(w, r, err)
		return
	}
	list, err := s.Store.Usage(r.Context(), p, q.Get("from"), q.Get("to"))
	if err != nil {
		problem(w, r, err)
		return
	}
	var total *float64
	for i := range list {
		u := &list[i]
		price, ok := s.Prices[u.ResourceType]
		if !ok {
			continue
		}
		cost := float64(u.Scans)*price.Scan + float64(u.Rematches)*price.Rematch
		cost = float64(int64(cost*100+0.5)) / 100
		u.EstimatedCost, u.Currency = &cost, s.Currency
		if total == nil {
			total = new(float64)
		}
		*total += cost
	}
	body := map[string]any{"usage": list}
	if total != nil {
		t := float64(int64(*total*100+0.5)) / 100
		body["estimatedTotal"], body["currency"] = t, s.Currency
	}
	writeJSON(w, http.StatusOK, body)
}

// ParsePrices reads unit prices: "image:scan=0.09,image:rematch=0.01,host:scan=1.2".
func ParsePrices(spec string) (map[string]Price, error) {
	out := map[string]Price{}
	if strings.TrimSpace(spec) == "" {
		return out, nil
	}
	for _, item := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(item), "=")
		typ, what, ok2 := strings.Cut(k, ":")
		var f float64
		_, err := fmt.Sscanf(v, "%g", &f)
		if !ok || !ok2 || err != nil || f < 0 || !slices.Contains(vigil.ResourceTypes, typ) || (what != "scan" && what != "rematch") {
			return nil, fmt.Errorf("price %q: want TYPE:scan=PRICE or TYPE:rematch=PRICE, TYPE one of host, image, function", item)
		}
		p := out[typ]
		if what == "scan" {
			p.Scan = f
		} else {
			p.Rematch = f
		}
		out[typ] = p
	}
	return out, nil
}
