package httpapi

import (
	"errors"
	"net"

	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/engine"
	"github.com/vigil-project/vigil/sqlstore"
)

// ScanRequest names a registry image to scan (POST /v1/scans with a JSON
// body). Archives are posted as the raw body instead, with the same
// fields as query parameters.
type ScanRequest struct {
	Image   string            `json:"image"`
	Account string            `json:"account,omitempty"`
	Type    string            `json:"type,omitempty"`
	Name    string            `json:"name,omitempty"`
	Tags    map[string]string `json:"tags,omitempty"`
}

func (s *Server) submitScan(w http.ResponseWriter, r *http.Request, p vigil.Principal) {
	// Agents submit inventories only; scans make the server read archives
	// and reach registries.
	if p.Role != vigil.RoleAdmin && p.Role != vigil.RoleAnalyst {
		problem(w, r, vigil.Errorf(vigil.EFORBIDDEN, "a key with the %s role cannot submit scans", p.Role))
		return
	}
	var req ScanRequest
	upload := false
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		if err := decode(w, r, 1<<20, &req); err != nil {
			problem(w, r, err)
			return
		}
		if err := s.checkRegistry(req.Image); err != nil {
			problem(w, r, err)
			return
		}
		if req.Type == "" {
			req.Type = vigil.ResourceImage
		}
		if req.Name == "" {
			req.Name = req.Image
		}
	} else {
		upload = true
		q := r.URL.Query()
		for k := range q {
			if !slices.Contains([]string{"account", "type", "name", "tag"}, k) {
				problem(w, r, vigil.Errorf(vigil.EINVALID, "unknown parameter %q (known: account, type, name, tag)", k))
				return
			}
		}
		req = ScanRequest{Account: q.Get("account"), Type: q.Get("type"), Name: q.Get("name")}
		tags, err := parseTags(q, "tag")
		if err != nil {
			problem(w, r, err)
			return
		}
		req.Tags = tags
		if req.Name == "" {
			problem(w, r, vigil.Errorf(vigil.EINVALID, "name: required for an uploaded archive"))
			return
		}
		if req.Type == "" {
			req.Type = vigil.ResourceImage
		}
	}
	if !slices.Contains(vigil.ResourceTypes, req.Type) {
		problem(w, r, vigil.Errorf(vigil.EINVALID, "type %q: want host, image or function", req.Type))
		return
	}
	args := engine.ScanArgs{Type: req.Type, Name: req.Name, Tags: req.Tags}
	target := req.Image
	if upload {
		target = "upload"
		id, err := s.keepUpload(w, r, r.Body)
		if err != nil {
			problem(w, r, err)
			return
		}
		args.Upload = id
	} else {
		args.Image = req.Image
	}
	sc, err := s.startScan(r, p, req.Account, target, args)
	if err != nil {
		problem(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/scans/"+sc.ID)
	writeJSON(w, http.StatusAccepted, sc)
}

// keepUpload stores an uploaded archive in the store, where a worker on
// any machine can read it, within the upload limit.
func (s *Server) keepUpload(w http.ResponseWriter, r *http.Request, body io.Reader) (string, error) {
	id := sqlstore.NewUploadID()
	// Read at most one byte more than the limit: that byte means the
	// upload is over it.
	n, err := s.Store.PutUpload(r.Context(), id, io.LimitReader(body, s.MaxBody+1))
	if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) || err == nil && n > s.MaxBody {
		s.Store.DeleteUpload(context.WithoutCancel(r.Context()), id)
		return "", &vigil.Error{Code: "too_large", Message: fmt.Sprintf("upload over the %d byte limit", s.MaxBody)}
	}
	if err != nil {
		return "", vigil.Errorf(vigil.EINVALID, "upload: %v", err)
	}
	if n > s.MaxBody {
		s.Store.DeleteUpload(context.WithoutCancel(r.Context()), id)
		return "", &vigil.Error{Code: "too_large", Message: fmt.Sprintf("upload over the %d byte limit", s.MaxBody)}
	}
	if n == 0 {
		s.Store.DeleteUpload(context.WithoutCancel(r.Context()), id)
		return "", vigil.Errorf(vigil.EINVALID, "upload: empty body")
	}
	return id, nil
}

// startScan records a scan and enqueues its job, with its resource
// pending in coverage until the scan ends.
func (s *Server) startScan(r *http.Request, p vigil.Principal, account, target string, args engine.ScanArgs) (*sqlstore.Scan, error) {
	ctx := r.Context()
	drop := func() {
		for _, id := range append([]string{args.Upload}, args.Layers...) {
			if id != "" {
				s.Store.DeleteUpload(context.WithoutCancel(ctx), id)
			}
		}
	}
	accountID, _, err := s.Store.AccountFor(ctx, p, account)
	if err != nil {
		drop()
		return nil, err
	}
	args.AccountID = accountID
	if args.ResourceID == "" {
		if args.ResourceID, err = s.Store.PendingResource(ctx, accountID, args.Type, args.Name, args.Image, args.Registry); err != nil {
			drop()
			return nil, err
		}
	}
	sc, err := s.Store.CreateScan(ctx, p, account, target, args.Type, args.Name, func(sc *sqlstore.Scan) sqlstore.NewJob {
		args.Scan = sc.ID
		job := engine.ScanJob(args)
		job.Key = "" // a scan asked for is run, even if another is waiting
		return job
	})
	if err != nil {
		drop()
		return nil, err
	}
	sc.ResourceID = args.ResourceID
	s.Engine.Enqueued()
	return sc, nil
}

func (s *Server) getScan(w http.ResponseWriter, r *http.Request, p vigil.Principal) {
	sc, err := s.Store.GetScan(r.Context(), p, r.PathValue("id"))
	if err != nil {
		problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sc)
}

// checkRegistry accepts a registry reference whose host is not on this
// machine's or a private network, unless the operator allows those: a scan
// must not make the server a way into networks its users cannot reach.
// (Scans and polls are also refused such addresses when they connect: see
// registry.Guard. This check gives the user the answer at once.)
func (s *Server) checkRegistry(image string) error {
	ref, err := name.ParseReference(image)
	if err != nil || image == "" {
		return vigil.Errorf(vigil.EINVALID, "image %q: want a registry reference such as registry.example.com/app:1", image)
	}
	if err := s.checkHost(ref.Context().RegistryStr()); err != nil {
		return vigil.Errorf(err.(*vigil.Error).Code, "image %q: %s", image, err.(*vigil.Error).Message)
	}
	return nil
}

// checkHost refuses a registry host that resolves to a loopback, private
// or link-local address, unless the operator allows those.
func (s *Server) checkHost(host string) error {
	if s.InsecureRegistries || s.AllowPrivateRegistries {
		return nil
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return vigil.Errorf(vigil.EINVALID, "registry host %s does not resolve", host)
	}
	for _, ip := range ips {
		if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified() {
			return vigil.Errorf(vigil.EFORBIDDEN, "registry %s is on a local or private network (the server allows that with --allow-private-registries)", host)
		}
	}
	return nil
}
