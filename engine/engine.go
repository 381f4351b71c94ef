// Package engine is Vigil's continuous scanning: the durable jobs that
// read resources (scan), match stored inventories again after a database
// update (reevaluate, rematch), rescan on demand or on schedule, poll
// watched registries and update the database; and the loops that start
// them on their own (a new database revision, a due poll, a due rescan).
// Every job is idempotent: run twice, it leaves what running it once
// does.
package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/collect"
	"github.com/vigil-project/vigil/feed"
	"github.com/vigil-project/vigil/match"
	"github.com/vigil-project/vigil/registry"
	"github.com/vigil-project/vigil/source"
	"github.com/vigil-project/vigil/sqlstore"
	"github.com/vigil-project/vigil/vulndb"
	"github.com/vigil-project/vigil/worker"
)

// Job kinds.
const (
	KindScan       = "scan"
	KindReevaluate = "reevaluate"
	KindRematch    = "rematch"
	KindRescan     = "rescan"
	KindPoll       = "registry-poll"
	KindDBUpdate   = "db-update"
)

// Engine runs the jobs of continuous scanning.
type Engine struct {
	Store *sqlstore.Store
	DB    *DBSource
	// TempDir holds uploads while a scan reads them.
	TempDir string
	// InsecureRegistries reads registries over plain HTTP (tests).
	InsecureRegistries bool
	// AllowPrivateRegistries lets scans and polls connect to addresses on
	// loopback and private networks; otherwise they are refused when
	// connecting (see registry.Guard).
	AllowPrivateRegistries bool
	// Sources are where a scheduled database update reads the feeds.
	Sources feed.Sources
	// RematchBatch is how many resources one rematch job matches again
	// (default 100): the unit that worker processes share.
	RematchBatch int
	// Enqueued is called after this process enqueues a job (to wake the
	// local pool).
	Enqueued func()
	Log      *slog.Logger

	Scans, Rematches atomic.Int64
	warnedBehind     atomic.Bool
}

func (e *Engine) log() *slog.Logger {
	if e.Log == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return e.Log
}

func (e *Engine) woke() {
	if e.Enqueued != nil {
		e.Enqueued()
	}
}

// Handlers are the engine's job handlers, for a worker.Pool.
func (e *Engine) Handlers() map[string]worker.Handler {
	return map[string]worker.Handler{
		KindScan:       e.scan,
		KindReevaluate: e.reevaluate,
		KindRematch:    e.rematch,
		KindRescan:     e.rescan,
		KindPoll:       e.poll,
		KindDBUpdate:   e.dbUpdate,
	}
}

// ScanArgs are a scan job's: what to read and where to file it.
type ScanArgs struct {
	// Scan is the scans row that reports the scan's progress, if any.
	Scan       string            `json:"scan,omitempty"`
	AccountID  int64             `json:"accountId"`
	ResourceID string            `json:"resourceId"`
	Type       string            `json:"type"`
	Name       string            `json:"name"`
	Tags       map[string]string `json:"tags,omitempty"`
	// Image is a registry reference; Registry the watched registry it is
	// in, whose credentials read it.
	Image    string `json:"image,omitempty"`
	Registry string `json:"registry,omitempty"`
	// Upload is an upload kept in the store; Layers are a function's
	// layer uploads, Runtime its runtime.
	Upload  string   `json:"upload,omitempty"`
	Layers  []string `json:"layers,omitempty"`
	Runtime string   `json:"runtime,omitempty"`
}

// ScanJob is the job of a scan: at most one waits or runs per resource
// and source.
func ScanJob(a ScanArgs) sqlstore.NewJob {
	body, _ := json.Marshal(a)
	key := ""
	if a.Image != "" {
		key = fmt.Sprintf("scan:%d:%s:%s", a.AccountID, a.Type, a.Image)
	}
	return sqlstore.NewJob{Kind: KindScan, Key: key, Args: body}
}

// unsupportedMedia marks an upload or manifest that is not something
// Vigil scans.
type unsupportedMedia struct{ msg string }

func (u unsupportedMedia) Error() string { return u.msg }

func (e *Engine) scan(ctx context.Context, j *sqlstore.Job) error {
	var a ScanArgs
	if err := json.Unmarshal(j.Args, &a); err != nil {
		return worker.Permanent(fmt.Errorf("scan job arguments: %w", err))
	}
	return e.runScan(ctx, j, a)
}

// runScan reads, matches and stores one resource, recording the outcome
// in its scan row and its coverage.
func (e *Engine) runScan(ctx context.Context, j *sqlstore.Job, a ScanArgs) error {
	if a.ResourceID == "" {
		id, err := e.Store.PendingResource(ctx, a.AccountID, a.Type, a.Name, a.Image, a.Registry)
		if err != nil {
			return err
		}
		a.ResourceID = id
	}
	reason, err := e.Store.CoverageReason(ctx, a.ResourceID)
	if err != nil {
		return err
	}
	if _, tagged := a.Tags[e.Store.ExcludeTag()]; tagged || reason == vigil.ReasonExcludedByTag {
		e.finishScan(ctx, a, sqlstore.ScanDone, 0, "not scanned: the resource is excluded by tag")
		e.dropUploads(a)
		return nil
	}
	e.finishScan(ctx, a, sqlstore.ScanRunning, 0, "")
	n, err := e.readAndStore(ctx, a)
	if err == nil {
		e.Scans.Add(1)
		e.finishScan(ctx, a, sqlstore.ScanDone, n, "")
		e.dropUploads(a)
		return nil
	}
	msg := describe(err)
	covReason := vigil.ReasonScanFailed
	var um unsupportedMedia
	if errors.As(err, &um) {
		covReason = vigil.ReasonUnsupportedMediaType
	}
	bg := context.WithoutCancel(ctx)
	if ctx.Err() != nil {
		return ctx.Err() // stopped, not failed: the job runs again
	}
	if err := e.Store.ScanFailed(bg, a.ResourceID, covReason, msg); err != nil {
		e.log().Warn("recording a failed scan", "err", err)
	}
	if retryable(err) && j.Attempt < j.MaxAttempts {
		e.finishScan(bg, a, sqlstore.ScanQueued, 0, fmt.Sprintf("attempt %d failed, retrying: %s", j.Attempt, msg))
		return err
	}
	e.finishScan(bg, a, sqlstore.ScanFailed, 0, msg)
	e.dropUploads(a)
	return worker.Permanent(err)
}

// stageError marks an error of the store or database stage, after the
// resource was read: worth retrying.
type stageError struct{ err error }

func (s stageError) Error() string { return s.err.Error() }
func (s stageError) Unwrap() error { return s.err }

// retryable: a registry failure that may pass (network, 429, 5xx), or a
// failure of the store or database after the resource was read.
func retryable(err error) bool {
	var se stageError
	if errors.As(err, &se) {
		var ve *vigil.Error
		return !errors.As(err, &ve) || ve.Code == vigil.EUNAVAILABLE
	}
	var um unsupportedMedia
	if errors.As(err, &um) || worker.IsPermanent(err) {
		return false
	}
	var re *registry.Error
	if errors.As(err, &re) {
		return registry.Retryable(err)
	}
	// Errors of reading a registry image come from go-containerregistry.
	return strings.HasPrefix(err.Error(), "registry: ") && registry.Retryable(err)
}

// describe is an error as a user reads it.
func describe(err error) string {
	msg := err.Error()
	var e *vigil.Error
	if errors.As(err, &e) {
		msg = e.Message
	}
	return msg
}

func (e *Engine) finishScan(ctx context.Context, a ScanArgs, status string, findings int, msg string) {
	if a.Scan == "" {
		return
	}
	if err := e.Store.UpdateScan(ctx, a.Scan, status, a.ResourceID, findings, msg); err != nil {
		e.log().Warn("recording a scan's status", "scan", a.Scan, "err", err)
	}
}

func (e *Engine) dropUploads(a ScanArgs) {
	for _, id := range append([]string{a.Upload}, a.Layers...) {
		if id != "" {
			e.Store.DeleteUpload(context.Background(), id)
		}
	}
}

// fetchUpload copies a kept upload to a private temporary file.
func (e *Engine) fetchUpload(ctx context.Context, id string) (string, error) {
	f, err := os.CreateTemp(e.TempDir, "vigil-scan-*")
	if err != nil {
		return "", stageError{err}
	}
	_, err = e.Store.ReadUpload(ctx, id, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		var ve *vigil.Error
		if errors.As(err, &ve) {
			return "", worker.Permanent(err)
		}
		return "", stageError{err}
	}
	return f.Name(), nil
}

// readAndStore reads the resource, matches its inventory and stores
// both; it returns the number of findings.
func (e *Engine) readAndStore(ctx context.Context, a ScanArgs) (int, error) {
	ref, opts := a.Image, source.Options{Type: "registry", Insecure: e.InsecureRegistries, Transport: registry.Guard(e.AllowPrivateRegistries)}
	if a.Upload != "" {
		path, err := e.fetchUpload(ctx, a.Upload)
		if err != nil {
			return 0, err
		}
		defer os.Remove(path)
		ref, opts = path, source.Options{Runtime: a.Runtime}
		for _, l := range a.Layers {
			lp, err := e.fetchUpload(ctx, l)
			if err != nil {
				return 0, err
			}
			defer os.Remove(lp)
			opts.Layers = append(opts.Layers, lp)
		}
		if len(a.Layers) > 0 || a.Type == vigil.ResourceFunction {
			opts.Type = "function"
		}
	} else if a.Registry != "" {
		r, err := e.Store.RegistryByID(ctx, nil, a.Registry)
		if err != nil {
			return 0, err
		}
		cfg := r.Config()
		cfg.Transport = opts.Transport
		// The registry's credentials go to the registry's host alone,
		// whatever reference a scan names.
		if !sameHost(a.Image, cfg.Host()) {
			return 0, worker.Permanent(vigil.Errorf(vigil.EINVALID, "%s is not in registry %s", a.Image, cfg.Host()))
		}
		if cfg.Username != "" {
			opts.Auth = &authn.Basic{Username: cfg.Username, Password: cfg.Password}
		}
		opts.Transport = cfg.RoundTripper()
		opts.Insecure = opts.Insecure || strings.HasPrefix(r.URL, "http://")
	}
	// Errors name the upload, not the server's temporary file.
	hide := func(err error) error { return err }
	if a.Upload != "" {
		hide = func(err error) error {
			if err == nil {
				return nil
			}
			msg := strings.ReplaceAll(err.Error(), ref, "the upload")
			for i, l := range opts.Layers {
				msg = strings.ReplaceAll(msg, l, fmt.Sprintf("layer %d", i+1))
			}
			return errors.New(msg)
		}
	}
	t, err := source.Open(ctx, ref, opts)
	if err != nil {
		if a.Upload != "" {
			return 0, unsupportedMedia{fmt.Sprintf("the upload is not an image archive (docker-archive or OCI layout), a function package or an SBOM: %v", hide(err))}
		}
		return 0, err
	}
	defer t.Close()
	if a.Upload != "" && !slices.Contains([]string{vigil.TargetImage, vigil.TargetFunction, vigil.TargetSBOM}, t.Info.Type) {
		return 0, unsupportedMedia{"the upload is not an image archive (docker-archive or OCI layout), a function package or an SBOM"}
	}
	inv, err := collect.Collect(ctx, t, collect.Options{Version: "server"})
	if err != nil {
		return 0, hide(err)
	}
	if a.Upload != "" {
		inv.Target.Name = a.Name
	}
	typ := a.Type
	if typ == "" {
		typ = map[string]string{vigil.TargetImage: vigil.ResourceImage, vigil.TargetFunction: vigil.ResourceFunction}[inv.Target.Type]
		if typ == "" {
			typ = vigil.ResourceHost
		}
	}
	db, err := e.DB.Get()
	if err != nil {
		return 0, stageError{err}
	}
	res, err := match.Match(ctx, db, inv)
	if err != nil {
		return 0, stageError{err}
	}
	p, err := e.Store.AccountPrincipal(ctx, a.AccountID)
	if err != nil {
		return 0, worker.Permanent(err)
	}
	unsupported, msg := UnsupportedOS(res)
	sub, err := e.Store.SubmitInventory(ctx, p, sqlstore.ResourceSpec{Type: typ, Name: a.Name, Tags: a.Tags, SourceRef: a.Image,
		Unsupported: unsupported, Message: msg}, inv, res.Findings, db.Meta().Revision)
	if err != nil {
		return 0, stageError{err}
	}
	e.CatchUp(ctx, sub.Resource.ID, db.Meta().Revision)
	return len(res.Findings), nil
}

// CatchUp re-matches a resource just stored against revision rev when the
// database has moved on meanwhile: the re-evaluation of the newer revision
// may have run before the resource's inventory was stored, and would then
// have missed it (or had its result overwritten).
func (e *Engine) CatchUp(ctx context.Context, resourceID string, rev int64) {
	db, err := e.DB.Get()
	if err != nil || db.Meta().Revision <= rev {
		return
	}
	body, _ := json.Marshal(RematchArgs{Revision: db.Meta().Revision, Resources: []string{resourceID}})
	if _, _, err := e.Store.Enqueue(ctx, sqlstore.NewJob{Kind: KindRematch, Key: fmt.Sprintf("rematch:%d:%s", db.Meta().Revision, resourceID), Args: body}); err != nil {
		e.log().Warn("catching a resource up with the database", "resource", resourceID, "err", err)
		return
	}
	e.woke()
}

// sameHost reports whether an image reference names a registry host.
func sameHost(ref, host string) bool {
	r, err := name.ParseReference(ref, name.Insecure)
	return err == nil && strings.EqualFold(r.Context().RegistryStr(), host)
}

// UnsupportedOS says whether matching could judge nothing because the
// OS has no advisory data: then the resource is INACTIVE, UNSUPPORTED_OS.
func UnsupportedOS(res *match.Result) (string, string) {
	if res.Stats.Checked > 0 || res.Stats.NoData == 0 && !slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.HasPrefix(w, "no advisory source covers") }) {
		return "", ""
	}
	return vigil.ReasonUnsupportedOS, strings.Join(res.Warnings, "; ")
}

// ReevaluateArgs are a re-evaluation's: the revision the fleet was last
// evaluated for; All matches every stored inventory again.
type ReevaluateArgs struct {
	From int64 `json:"from"`
	All  bool  `json:"all,omitempty"`
	// Force matches again even resources matched against this revision
	// or a later one (after the database's revision went back).
	Force bool `json:"force,omitempty"`
}

// reevaluate finds the resources a database update can affect and
// shares them out as rematch jobs.
func (e *Engine) reevaluate(ctx context.Context, j *sqlstore.Job) error {
	var a ReevaluateArgs
	if err := json.Unmarshal(j.Args, &a); err != nil {
		return worker.Permanent(fmt.Errorf("reevaluate job arguments: %w", err))
	}
	db, err := e.DB.Get()
	if err != nil {
		return err
	}
	rev := db.Meta().Revision
	cs, complete, err := db.ChangesSince(ctx, a.From)
	if err != nil {
		return err
	}
	all := a.All || !complete
	ids, err := e.Store.RematchSet(ctx, cs.Packages, cs.Vulns, all, a.From)
	if err != nil {
		return err
	}
	batch := e.RematchBatch
	if batch <= 0 {
		batch = 100
	}
	jobs := 0
	for chunk := range slices.Chunk(ids, batch) {
		body, _ := json.Marshal(RematchArgs{Revision: rev, Resources: chunk, Force: a.Force})
		if _, _, err := e.Store.Enqueue(ctx, sqlstore.NewJob{Kind: KindRematch, Key: fmt.Sprintf("rematch:%d:%s", rev, chunk[0]), Args: body}); err != nil {
			return err
		}
		jobs++
	}
	e.woke()
	e.log().Info("re-evaluation", "from", a.From, "to", rev, "all", all, "changedPackages", len(cs.Packages), "changedVulns", len(cs.Vulns), "resources", len(ids), "jobs", jobs)
	return nil
}

// RematchArgs are a rematch job's: resources to match again against
// Revision or later.
type RematchArgs struct {
	Revision  int64    `json:"revision"`
	Resources []string `json:"resources"`
	// Force matches again even a resource already matched against this
	// revision (an on-demand rescan).
	Force bool `json:"force,omitempty"`
	// Scan is the scans row of an on-demand rescan.
	Scan string `json:"scan,omitempty"`
}

func (e *Engine) rematch(ctx context.Context, j *sqlstore.Job) error {
	var a RematchArgs
	if err := json.Unmarshal(j.Args, &a); err != nil {
		return worker.Permanent(fmt.Errorf("rematch job arguments: %w", err))
	}
	_, err := e.Rematch(ctx, a)
	return err
}

// Rematch matches stored inventories again, and returns the number of
// findings events it caused.
func (e *Engine) Rematch(ctx context.Context, a RematchArgs) (int, error) {
	db, err := e.DB.Get()
	if err != nil {
		return 0, err
	}
	rev := db.Meta().Revision
	if rev < a.Revision {
		// This worker's copy of the database is behind the one that
		// asked: wait for it.
		return 0, fmt.Errorf("the vulnerability database here is at revision %d, the re-evaluation wants %d", rev, a.Revision)
	}
	invs, err := e.Store.Inventories(ctx, a.Resources)
	if err != nil {
		return 0, err
	}
	var items []sqlstore.RematchItem
	for _, si := range invs {
		if si.Reason == vigil.ReasonExcludedByTag || si.Reason == vigil.ReasonEligibilityExpired || !a.Force && si.MatchedRevision >= rev {
			continue
		}
		res, err := match.Match(ctx, db, si.Inventory)
		if err != nil {
			return 0, err
		}
		unsupported, msg := UnsupportedOS(res)
		items = append(items, sqlstore.RematchItem{ResourceID: si.ResourceID, InventoryDigest: si.Inventory.Digest, Matches: res.Findings, Unsupported: unsupported, Message: msg})
	}
	if len(items) == 0 {
		return 0, nil
	}
	out, err := e.Store.RematchBatch(ctx, items, rev, a.Force)
	if err != nil {
		return 0, err
	}
	events := 0
	for i, r := range out {
		if !r.Skipped {
			e.Rematches.Add(1)
		}
		events += len(r.Events)
		if a.Scan != "" {
			e.finishScan(ctx, ScanArgs{Scan: a.Scan, ResourceID: items[i].ResourceID}, sqlstore.ScanDone, len(items[i].Matches), "")
		}
	}
	return events, nil
}

// RescanArgs are an on-demand or scheduled rescan's.
type RescanArgs struct {
	Resource string `json:"resource"`
	Scan     string `json:"scan,omitempty"`
}

// RescanJob is the job of a rescan: at most one waits per resource.
func RescanJob(a RescanArgs) sqlstore.NewJob {
	body, _ := json.Marshal(a)
	return sqlstore.NewJob{Kind: KindRescan, Key: "rescan:" + a.Resource, Args: body}
}

// rescan reads a resource again where Vigil can (a registry image), and
// otherwise matches its kept inventory again now (a host's agent report,
// an uploaded archive).
func (e *Engine) rescan(ctx context.Context, j *sqlstore.Job) error {
	var a RescanArgs
	if err := json.Unmarshal(j.Args, &a); err != nil {
		return worker.Permanent(fmt.Errorf("rescan job arguments: %w", err))
	}
	accountID, typ, name, ref, reg, err := e.Store.ResourceSource(ctx, nil, a.Resource)
	if err != nil {
		e.finishScan(ctx, ScanArgs{Scan: a.Scan}, sqlstore.ScanFailed, 0, describe(err))
		return worker.Permanent(err)
	}
	if ref != "" {
		return e.runScan(ctx, j, ScanArgs{Scan: a.Scan, AccountID: accountID, ResourceID: a.Resource, Type: typ, Name: name, Image: ref, Registry: reg})
	}
	if reason, err := e.Store.CoverageReason(ctx, a.Resource); err == nil && (reason == vigil.ReasonExcludedByTag || reason == vigil.ReasonEligibilityExpired) {
		e.finishScan(ctx, ScanArgs{Scan: a.Scan, ResourceID: a.Resource}, sqlstore.ScanDone, 0, "not scanned: "+strings.ToLower(strings.ReplaceAll(reason, "_", " ")))
		return nil
	}
	db, err := e.DB.Get()
	if err != nil {
		return err
	}
	if invs, err := e.Store.Inventories(ctx, []string{a.Resource}); err != nil {
		return err
	} else if len(invs) == 0 {
		e.finishScan(ctx, ScanArgs{Scan: a.Scan, ResourceID: a.Resource}, sqlstore.ScanFailed, 0, "the resource has no inventory yet, and Vigil cannot read it itself: its agent or a new upload must report it")
		return nil
	}
	_, err = e.Rematch(ctx, RematchArgs{Revision: db.Meta().Revision, Resources: []string{a.Resource}, Force: true, Scan: a.Scan})
	return err
}

// PollArgs are a registry poll's.
type PollArgs struct {
	Registry string `json:"registry"`
}

// PollJob is the job of a registry poll: at most one waits per registry.
func PollJob(registryID string) sqlstore.NewJob {
	body, _ := json.Marshal(PollArgs{Registry: registryID})
	return sqlstore.NewJob{Kind: KindPoll, Key: "poll:" + registryID, Args: body, MaxAttempts: 3}
}

// poll lists a watched registry: a digest not seen before is a new image
// to scan (a tag moved to a new digest is one); an image seen before
// whose manifest the registry no longer holds is deleted, closing its
// findings (one merely untagged stays).
func (e *Engine) poll(ctx context.Context, j *sqlstore.Job) error {
	var a PollArgs
	if err := json.Unmarshal(j.Args, &a); err != nil {
		return worker.Permanent(fmt.Errorf("poll job arguments: %w", err))
	}
	r, err := e.Store.RegistryByID(ctx, nil, a.Registry)
	if err != nil {
		return worker.Permanent(err)
	}
	cfg := r.Config()
	cfg.Transport = registry.Guard(e.AllowPrivateRegistries)
	err = e.pollRegistry(ctx, r, cfg)
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	// Recorded whatever happened, so that a failing registry is not due
	// again at once.
	if rerr := e.Store.RegistryPolled(context.WithoutCancel(ctx), r.ID, msg); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil && !registry.Retryable(err) {
		return worker.Permanent(err)
	}
	return err
}

func (e *Engine) pollRegistry(ctx context.Context, r *sqlstore.Registry, cfg registry.Config) error {
	res, err := registry.Poll(ctx, cfg)
	if err != nil {
		return err
	}
	known, err := e.Store.RegistryImages(ctx, r.ID)
	if err != nil {
		return err
	}
	present := map[string]bool{}
	queued := 0
	for _, img := range res.Images {
		ref := img.Ref(cfg)
		present[ref] = true
		if _, ok := known[ref]; ok {
			continue
		}
		if _, err := e.EnqueueImage(ctx, r, ref); err != nil {
			return err
		}
		queued++
	}
	for _, sk := range res.Skipped {
		if !sk.Unsupported || sk.Digest == "" {
			continue
		}
		repo, _, _ := strings.Cut(strings.TrimPrefix(sk.Ref, cfg.Host()+"/"), ":")
		ref := cfg.Host() + "/" + repo + "@" + sk.Digest
		present[ref] = true
		if _, ok := known[ref]; ok {
			continue
		}
		id, err := e.Store.PendingResource(ctx, r.AccountID, vigil.ResourceImage, ref, ref, r.ID)
		if err != nil {
			return err
		}
		if err := e.Store.ScanFailed(ctx, id, vigil.ReasonUnsupportedMediaType, sk.Reason); err != nil {
			return err
		}
	}
	p, err := e.Store.AccountPrincipal(ctx, r.AccountID)
	if err != nil {
		return worker.Permanent(err)
	}
	gone := 0
	for ref, id := range known {
		if present[ref] {
			continue
		}
		// Untagged is not deleted: only a manifest the registry no longer
		// has closes its findings.
		exists, err := registry.Exists(ctx, cfg, ref)
		if err != nil {
			// Not known to be gone: keep it, and the rest of the poll.
			e.log().Warn("checking a known image", "image", ref, "err", err)
			continue
		}
		if exists {
			continue
		}
		if _, err := e.Store.DeleteResource(ctx, p, id); err != nil && !isNotFound(err) {
			return err
		}
		gone++
	}
	e.log().Info("registry polled", "registry", r.URL, "images", len(res.Images), "new", queued, "gone", gone, "skipped", len(res.Skipped))
	return nil
}

func isNotFound(err error) bool {
	var ve *vigil.Error
	return errors.As(err, &ve) && ve.Code == vigil.ENOTFOUND
}

// EnqueueImage starts the scan of an image of a watched registry (a push,
// a poll's new digest); a scan of the same image already waiting is not
// doubled. It returns the resource's id.
func (e *Engine) EnqueueImage(ctx context.Context, r *sqlstore.Registry, ref string) (string, error) {
	id, err := e.Store.PendingResource(ctx, r.AccountID, vigil.ResourceImage, ref, ref, r.ID)
	if err != nil {
		return "", err
	}
	if err := e.Store.RecordActivity(ctx, id, e.Store.Now()); err != nil {
		return "", err
	}
	if _, _, err := e.Store.Enqueue(ctx, ScanJob(ScanArgs{AccountID: r.AccountID, ResourceID: id, Type: vigil.ResourceImage, Name: ref, Image: ref, Registry: r.ID})); err != nil {
		return "", err
	}
	e.woke()
	return id, nil
}

// dbUpdate updates the vulnerability database from the configured
// sources; the watch loop notices the new revision.
func (e *Engine) dbUpdate(ctx context.Context, j *sqlstore.Job) error {
	if e.Sources == (feed.Sources{}) {
		return worker.Permanent(errors.New("no database sources configured (--db-source)"))
	}
	sum, err := vulndb.Update(ctx, vulndb.Options{Path: e.DB.Path, Sources: e.Sources, Fetcher: &feed.Fetcher{}})
	if err != nil {
		return err
	}
	e.log().Info("vulnerability database updated", "revision", sum.Revision, "changed", sum.Changed, "changedPackages", sum.ChangedPackages, "changedVulns", sum.ChangedVulns)
	return nil
}

// Loops are the timers of continuous scanning. Every process may run
// them: the store lets one of them act on each event.
type Loops struct {
	// WatchEvery is how often the database file is checked for a new
	// revision (default 2 s).
	WatchEvery time.Duration
	// RescanEvery rescans resources Vigil can read again (registry
	// images) whose last scan is older (0: never).
	RescanEvery time.Duration
	// UpdateEvery updates the database from Engine.Sources (0: never).
	UpdateEvery time.Duration
}

// Run runs the loops until ctx ends.
func (e *Engine) Run(ctx context.Context, l Loops) {
	if l.WatchEvery <= 0 {
		l.WatchEvery = 2 * time.Second
	}
	tick := time.NewTicker(l.WatchEvery)
	defer tick.Stop()
	var lastUpdate time.Time
	for {
		if err := e.Tick(ctx, l, &lastUpdate); err != nil && ctx.Err() == nil {
			e.log().Warn("continuous scanning", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Tick does one round of the loops: a new database revision starts a
// re-evaluation; due registries are polled; due rescans and database
// updates are enqueued.
func (e *Engine) Tick(ctx context.Context, l Loops, lastUpdate *time.Time) error {
	var errs []error
	if db, err := e.DB.Get(); err == nil {
		rev := db.Meta().Revision
		job := func(old int64) sqlstore.NewJob {
			body, _ := json.Marshal(ReevaluateArgs{From: old})
			return sqlstore.NewJob{Kind: KindReevaluate, Key: fmt.Sprintf("reevaluate:%d", rev), Args: body}
		}
		if old, moved, err := e.Store.NoteRevision(ctx, "reevaluated_revision", rev, job); err != nil {
			errs = append(errs, err)
		} else if moved {
			e.log().Info("new vulnerability database revision", "from", old, "to", rev)
			e.woke()
		} else if old > rev && !e.warnedBehind.Swap(true) {
			// A process whose copy lags behind another's, or a database
			// rebuilt from nothing: its findings lag until its revision
			// passes the fleet's (`vigil db update` keeps counting up
			// over an existing file; ReevaluateArgs.Force re-matches
			// everything).
			e.log().Warn("this vulnerability database is behind the revision the fleet was matched against", "here", rev, "fleet", old)
		}
	}
	regs, err := e.Store.DueRegistries(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	for _, r := range regs {
		if _, ok, err := e.Store.Enqueue(ctx, PollJob(r.ID)); err != nil {
			errs = append(errs, err)
		} else if ok {
			e.woke()
		}
	}
	if l.RescanEvery > 0 {
		ids, err := e.Store.SourcesScannedBefore(ctx, e.Store.Now().Add(-l.RescanEvery), 1000)
		if err != nil {
			errs = append(errs, err)
		}
		for _, id := range ids {
			if _, _, err := e.Store.Enqueue(ctx, RescanJob(RescanArgs{Resource: id})); err != nil {
				errs = append(errs, err)
			}
		}
		if len(ids) > 0 {
			e.woke()
		}
	}
	if l.UpdateEvery > 0 && time.Since(*lastUpdate) >= l.UpdateEvery {
		*lastUpdate = time.Now()
		if _, _, err := e.Store.Enqueue(ctx, sqlstore.NewJob{Kind: KindDBUpdate, Key: "db-update", MaxAttempts: 3}); err != nil {
			errs = append(errs, err)
		}
		e.woke()
	}
	return errors.Join(errs...)
}
