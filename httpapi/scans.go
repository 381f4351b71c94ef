package httpapi

import (
	"net"

	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/collect"
	"github.com/vigil-project/vigil/match"
	"github.com/vigil-project/vigil/source"
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

// startScans begins the scan workers: at most n scans at once.
func (s *Server) startScans() {
	s.once.Do(func() {
		n := s.ScanWorkers
		if n <= 0 {
			n = 2
		}
		s.slots = make(chan struct{}, n)
		if s.TempDir == "" {
			s.TempDir = os.TempDir()
		}
	})
}

func (s *Server) submitScan(w http.ResponseWriter, r *http.Request, p vigil.Principal) {
	// Agents submit inventories only; scans make the server read archives
	// and reach registries.
	if p.Role != vigil.RoleAdmin && p.Role != vigil.RoleAnalyst {
		problem(w, r, vigil.Errorf(vigil.EFORBIDDEN, "a key with the %s role cannot submit scans", p.Role))
		return
	}
	s.startScans()
	if s.pending.Load() >= int64(cap(s.slots)*8) {
		problem(w, r, vigil.Errorf(vigil.EUNAVAILABLE, "too many scans waiting: try again later"))
		return
	}
	var req ScanRequest
	var path string
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
		q := r.URL.Query()
		for k := range q {
			if !slices.Contains([]string{"account", "type", "name", "tag"}, k) {
				problem(w, r, vigil.Errorf(vigil.EINVALID, "unknown parameter %q (known: account, type, name, tag)", k))
				return
			}
		}
		req = ScanRequest{Account: q.Get("account"), Type: q.Get("type"), Name: q.Get("name"), Tags: map[string]string{}}
		for _, t := range q["tag"] {
			k, v, ok := strings.Cut(t, "=")
			if !ok || k == "" {
				problem(w, r, vigil.Errorf(vigil.EINVALID, "tag %q: want key=value", t))
				return
			}
			req.Tags[k] = v
		}
		if req.Name == "" {
			problem(w, r, vigil.Errorf(vigil.EINVALID, "name: required for an uploaded archive"))
			return
		}
		// The upload is kept in a private file until its scan ends.
		f, err := os.CreateTemp(s.TempDir, "vigil-upload-*")
		if err != nil {
			problem(w, r, err)
			return
		}
		path = f.Name()
		_, err = io.Copy(f, http.MaxBytesReader(w, r.Body, s.MaxBody))
		f.Close()
		if err != nil {
			os.Remove(path)
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				problem(w, r, &vigil.Error{Code: "too_large", Message: fmt.Sprintf("upload over the %d byte limit", s.MaxBody)})
				return
			}
			problem(w, r, vigil.Errorf(vigil.EINVALID, "upload: %v", err))
			return
		}
	}
	if req.Type != "" && !slices.Contains(vigil.ResourceTypes, req.Type) {
		os.Remove(path)
		problem(w, r, vigil.Errorf(vigil.EINVALID, "type %q: want host, image or function", req.Type))
		return
	}
	target := req.Image
	if path != "" {
		target = "upload"
	}
	sc, err := s.Store.CreateScan(r.Context(), p, req.Account, target, req.Type, req.Name)
	if err != nil {
		os.Remove(path)
		problem(w, r, err)
		return
	}
	s.pending.Add(1)
	go s.runScan(p, sc, req, path)
	w.Header().Set("Location", "/v1/scans/"+sc.ID)
	writeJSON(w, http.StatusAccepted, sc)
}

// runScan reads, matches and stores one scan's target.
func (s *Server) runScan(p vigil.Principal, sc *sqlstore.Scan, req ScanRequest, path string) {
	defer s.pending.Add(-1)
	s.slots <- struct{}{}
	defer func() { <-s.slots }()
	if path != "" {
		defer os.Remove(path)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	s.Store.UpdateScan(ctx, sc.ID, sqlstore.ScanRunning, "", 0, "")
	fail := func(err error) {
		msg := err.Error()
		var e *vigil.Error
		if !errors.As(err, &e) && !strings.Contains(msg, ":") {
			msg = "internal error"
		}
		s.Store.UpdateScan(ctx, sc.ID, sqlstore.ScanFailed, "", 0, msg)
	}
	ref, opts := req.Image, source.Options{Type: "registry", Insecure: s.InsecureRegistries}
	if path != "" {
		ref, opts = path, source.Options{}
	}
	t, err := source.Open(ctx, ref, opts)
	if err != nil {
		fail(err)
		return
	}
	defer t.Close()
	if path != "" && !slices.Contains([]string{vigil.TargetImage, vigil.TargetFunction, vigil.TargetSBOM}, t.Info.Type) {
		fail(vigil.Errorf(vigil.EINVALID, "the upload is not an image archive (docker-archive or OCI layout), a function package or an SBOM"))
		return
	}
	inv, err := collect.Collect(ctx, t, collect.Options{Version: "server"})
	if err != nil {
		fail(err)
		return
	}
	if path != "" {
		inv.Target.Name = req.Name
	}
	typ := req.Type
	if typ == "" {
		typ = map[string]string{vigil.TargetImage: vigil.ResourceImage, vigil.TargetFunction: vigil.ResourceFunction}[inv.Target.Type]
		if typ == "" {
			typ = vigil.ResourceHost
		}
	}
	db, err := s.vulnDB()
	if err != nil {
		fail(err)
		return
	}
	res, err := match.Match(ctx, db, inv)
	if err != nil {
		fail(err)
		return
	}
	sub, err := s.Store.SubmitInventory(ctx, p, sqlstore.ResourceSpec{Account: req.Account, Type: typ, Name: req.Name, Tags: req.Tags}, inv, res.Findings, db.Meta().Revision)
	if err != nil {
		fail(err)
		return
	}
	s.submitted.Add(1)
	s.Store.UpdateScan(ctx, sc.ID, sqlstore.ScanDone, sub.Resource.ID, len(res.Findings), "")
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
func (s *Server) checkRegistry(image string) error {
	ref, err := name.ParseReference(image)
	if err != nil || image == "" {
		return vigil.Errorf(vigil.EINVALID, "image %q: want a registry reference such as registry.example.com/app:1", image)
	}
	if s.InsecureRegistries || s.AllowPrivateRegistries {
		return nil
	}
	host := ref.Context().RegistryStr()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return vigil.Errorf(vigil.EINVALID, "image %q: registry host %s does not resolve", image, host)
	}
	for _, ip := range ips {
		if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified() {
			return vigil.Errorf(vigil.EFORBIDDEN, "image %q: registry %s is on a local or private network (the server allows that with --allow-private-registries)", image, host)
		}
	}
	return nil
}
