package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/engine"
	"github.com/vigil-project/vigil/httpapi"
	"github.com/vigil-project/vigil/internal/testutil"
	"github.com/vigil-project/vigil/reconcile"
	"github.com/vigil-project/vigil/registry"
	"github.com/vigil-project/vigil/sqlstore"
)

// faultyRegistry is a real in-process OCI registry with faults to inject:
// requests whose path contains a key answer its status (for the first
// count times), credentials can be required, a blob can be corrupted.
type faultyRegistry struct {
	srv *httptest.Server
	mu  sync.Mutex
	// fail maps a path substring to a status and how many more times.
	fail    map[string][2]int
	user    string
	pass    string
	corrupt string // a blob digest served with flipped bytes
}

func newRegistry(t testing.TB) *faultyRegistry {
	f := &faultyRegistry{fail: map[string][2]int{}}
	inner := ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0)))
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		user, pass, corrupt := f.user, f.pass, f.corrupt
		status := 0
		for k, v := range f.fail {
			if strings.Contains(r.URL.Path, k) && v[1] > 0 {
				status = v[0]
				f.fail[k] = [2]int{v[0], v[1] - 1}
			}
		}
		f.mu.Unlock()
		if user != "" {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		if status != 0 {
			http.Error(w, "injected failure", status)
			return
		}
		if corrupt != "" && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+corrupt) {
			rec := httptest.NewRecorder()
			inner.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			if len(body) > 100 {
				body[len(body)/2] ^= 0xff
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(body)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *faultyRegistry) host() string { return strings.TrimPrefix(f.srv.URL, "http://") }

func (f *faultyRegistry) push(t testing.TB, repoTag string, img v1.Image) string {
	t.Helper()
	ref, err := name.ParseReference(f.host()+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	auth := authn.Anonymous
	if f.user != "" {
		auth = &authn.Basic{Username: f.user, Password: f.pass}
	}
	f.mu.Unlock()
	if err := remote.Write(ref, img, remote.WithAuth(auth)); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return f.host() + "/" + strings.SplitN(repoTag, ":", 2)[0] + "@" + d.String()
}

func randomImage(t *testing.T) v1.Image {
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// event is a CNCF Distribution notification envelope for one manifest.
func event(action, repo, tag, digest string) []byte {
	b, _ := json.Marshal(map[string]any{"events": []map[string]any{{
		"id": "ev-" + digest[len(digest)-6:], "timestamp": time.Now().UTC().Format(time.RFC3339Nano), "action": action,
		"target":  map[string]any{"mediaType": string(types.DockerManifestSchema2), "digest": digest, "repository": repo, "tag": tag, "size": 1234},
		"request": map[string]any{"id": "req", "method": "PUT"}, "source": map[string]any{"addr": "registry:5000"},
	}}})
	return b
}

func postEvents(t testing.TB, api *httptest.Server, regID, secret string, body []byte) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, api.URL+"/v1/registries/"+regID+"/events", bytes.NewReader(body))
	req.Header.Set("Content-Type", registry.EventsMediaType)
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	data, _ := io.ReadAll(resp.Body)
	json.Unmarshal(data, &out)
	return resp.StatusCode, out
}

func digestOf(ref string) string { return ref[strings.Index(ref, "@")+1:] }

func (r *rig) byName(t *testing.T, name string) vigil.Coverage {
	t.Helper()
	list, _, err := r.store.Coverage(context.Background(), r.p, sqlstore.CoverageFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list {
		if c.ResourceName == name {
			return c
		}
	}
	t.Fatalf("no resource %s in coverage", name)
	return vigil.Coverage{}
}

// TestRegistryWatching pushes real images to a real (in-process) registry
// and drives Vigil by its notifications and by polling: pushes are
// scanned, a moved tag is a new image, an untagged image stays, a deleted
// one closes its findings, artifacts are UNSUPPORTED_MEDIA_TYPE, and
// registry faults fail scans with a clear reason, retried where that can
// help, without disturbing anything else.
func TestRegistryWatching(t *testing.T) {
	r := newRig(t, filepath.Join(t.TempDir(), "store.db"))
	ctx := context.Background()
	api := httptest.NewServer((&httpapi.Server{Store: r.store, DB: r.eng.DB, Engine: r.eng}).Handler())
	t.Cleanup(api.Close)
	r.eng.Enqueued = func() {}
	reg := newRegistry(t)
	watched, err := r.store.CreateRegistry(ctx, r.p, sqlstore.NewRegistry{Config: registry.Config{URL: reg.srv.URL, Include: []string{"app/*"}}})
	if err != nil {
		t.Fatal(err)
	}

	// A push notification: the image is scanned. The Debian image when
	// the shared targets are here, else a random one.
	var web v1.Image = randomImage(t)
	if testutil.SharedAvailable() {
		dir := testutil.Target(t, "debian-bookworm")
		if web, err = tarball.ImageFromPath(filepath.Join(dir, "image.docker.tar"), nil); err != nil {
			t.Fatal(err)
		}
	}
	webRef := reg.push(t, "app/web:1", web)
	if code, _ := postEvents(t, api, watched.ID, "wrong", event("push", "app/web", "1", digestOf(webRef))); code != http.StatusUnauthorized {
		t.Fatalf("a notification with a bad secret: %d", code)
	}
	if code, _ := postEvents(t, api, watched.ID, watched.WebhookSecret, []byte(`{"events": [{"action": "push", "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "md5:1", "repository": "app/web"}}]}`)); code != http.StatusBadRequest {
		t.Fatalf("a malformed notification: %d", code)
	}
	code, out := postEvents(t, api, watched.ID, watched.WebhookSecret, event("push", "app/web", "1", digestOf(webRef)))
	if code != http.StatusAccepted || len(out["scans"].([]any)) != 1 {
		t.Fatalf("push notification: %d %v", code, out)
	}
	if _, out := postEvents(t, api, watched.ID, watched.WebhookSecret, event("push", "other/x", "1", digestOf(webRef))); out["ignored"] != float64(1) {
		t.Fatalf("a repository the registry's patterns exclude: %v", out)
	}
	if c := r.byName(t, webRef); c.Reason != vigil.ReasonPendingInitialScan {
		t.Fatalf("before its scan: %+v", c)
	}
	start := time.Now()
	r.drain(t)
	t.Logf("push notification to findings stored: %v", time.Since(start).Round(time.Millisecond))
	webCov := r.byName(t, webRef)
	if webCov.ScanStatus != vigil.ScanActive || webCov.SourceRef != webRef {
		t.Fatalf("after its scan: %+v", webCov)
	}
	webFindings := len(r.findings(t, webCov.ResourceID))
	if testutil.SharedAvailable() && webFindings == 0 {
		t.Fatal("the Debian image has no findings")
	}

	// Polling: a new repository, a tag moved to a new digest, a Helm
	// chart. The image the tag left stays: it is untagged, not deleted.
	apiRef := reg.push(t, "app/api:1", randomImage(t))
	web2Ref := reg.push(t, "app/web:1", randomImage(t))
	chart, _ := mutate.Append(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), "application/vnd.cncf.helm.config.v1+json"),
		mutate.Addendum{Layer: static.NewLayer([]byte("chart"), "application/vnd.cncf.helm.chart.content.v1.tar+gzip")})
	chartRef := reg.push(t, "app/chart:1", chart)
	reg.push(t, "elsewhere/x:1", randomImage(t))
	if _, _, err := r.store.Enqueue(ctx, engine.PollJob(watched.ID)); err != nil {
		t.Fatal(err)
	}
	r.drain(t)
	for _, ref := range []string{apiRef, web2Ref} {
		if c := r.byName(t, ref); c.ScanStatus != vigil.ScanActive {
			t.Errorf("%s after the poll: %+v", ref, c)
		}
	}
	if c := r.byName(t, chartRef); c.Reason != vigil.ReasonUnsupportedMediaType || !strings.Contains(c.Message, "helm") {
		t.Errorf("the chart: %+v", c)
	}
	if c := r.byName(t, webRef); c.ScanStatus != vigil.ScanActive {
		t.Errorf("the untagged image: %+v", c)
	}
	list, _, _ := r.store.Coverage(ctx, r.p, sqlstore.CoverageFilter{Limit: 1000})
	for _, c := range list {
		if strings.Contains(c.ResourceName, "elsewhere/") {
			t.Errorf("an excluded repository was scanned: %s", c.ResourceName)
		}
	}

	// The old image deleted from the registry: its findings close.
	d, _ := name.NewDigest(webRef, name.Insecure)
	if err := remote.Delete(d); err != nil {
		t.Fatal(err)
	}
	r.store.Enqueue(ctx, engine.PollJob(watched.ID))
	r.drain(t)
	for _, f := range r.findings(t, webCov.ResourceID) {
		if f.Status != reconcile.Closed {
			t.Errorf("finding %s of a deleted image is %s", f.ID, f.Status)
		}
	}

	// A registry failing with 503 longer than go-containerregistry's own
	// three tries: the scan fails with the reason in coverage, is retried
	// as a job, and succeeds.
	flakyRef := reg.push(t, "app/flaky:1", randomImage(t))
	reg.mu.Lock()
	reg.fail["/app/flaky/manifests/"] = [2]int{http.StatusServiceUnavailable, 3}
	reg.mu.Unlock()
	if code, out := postEvents(t, api, watched.ID, watched.WebhookSecret, event("push", "app/flaky", "1", digestOf(flakyRef))); code != http.StatusAccepted {
		t.Fatalf("flaky push: %d %v", code, out)
	}
	runOne(t, r)
	if c := r.byName(t, flakyRef); c.Reason != vigil.ReasonScanFailed || !strings.Contains(c.Message, "503") {
		t.Fatalf("after a 503: %+v", c)
	}
	r.drain(t)
	if c := r.byName(t, flakyRef); c.ScanStatus != vigil.ScanActive {
		t.Fatalf("after the retries: %+v", c)
	}
	jobs, _ := r.store.Jobs(ctx, engine.KindScan, sqlstore.JobCompleted, 100)
	for _, j := range jobs {
		if strings.Contains(string(j.Args), "app/flaky") && j.Attempt != 2 {
			t.Errorf("the flaky scan completed at attempt %d, want 2", j.Attempt)
		}
	}

	// A layer that fails its digest: the scan fails for good, clearly.
	bad := randomImage(t)
	badRef := reg.push(t, "app/bad:1", bad)
	layers, _ := bad.Layers()
	ld, _ := layers[0].Digest()
	reg.mu.Lock()
	reg.corrupt = ld.String()
	reg.mu.Unlock()
	postEvents(t, api, watched.ID, watched.WebhookSecret, event("push", "app/bad", "1", digestOf(badRef)))
	r.drain(t)
	if c := r.byName(t, badRef); c.Reason != vigil.ReasonScanFailed || !strings.Contains(strings.ToLower(c.Message), "digest") && !strings.Contains(c.Message, "sha256") {
		t.Fatalf("a corrupt layer: %+v", c)
	}
	reg.mu.Lock()
	reg.corrupt = ""
	reg.mu.Unlock()

	// Wrong credentials: the poll fails, the registry says why, and
	// nothing else changes.
	reg.mu.Lock()
	reg.user, reg.pass = "ci", "s3cret"
	reg.mu.Unlock()
	before := len(r.findings(t, r.byName(t, apiRef).ResourceID))
	locked, err := r.store.CreateRegistry(ctx, r.p, sqlstore.NewRegistry{Config: registry.Config{URL: strings.Replace(reg.srv.URL, "127.0.0.1", "localhost", 1), Username: "ci", Password: "wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	r.store.Enqueue(ctx, engine.PollJob(locked.ID))
	r.drain(t)
	regs, _ := r.store.Registries(ctx, r.p)
	for _, g := range regs {
		if g.ID == locked.ID && !strings.Contains(g.LastError, "credentials refused (401)") {
			t.Errorf("registry error %q", g.LastError)
		}
	}
	if after := len(r.findings(t, r.byName(t, apiRef).ResourceID)); after != before {
		t.Errorf("a failed poll changed another image's findings: %d -> %d", before, after)
	}
	lockedRef := strings.Replace(apiRef, "127.0.0.1", "localhost", 1)
	postEvents(t, api, locked.ID, locked.WebhookSecret, event("push", "app/api", "1", digestOf(lockedRef)))
	r.drain(t)
	if c := r.byName(t, lockedRef); c.Reason != vigil.ReasonScanFailed || !strings.Contains(c.Message, "401") && !strings.Contains(strings.ToLower(c.Message), "unauthorized") {
		t.Fatalf("a scan with wrong credentials: %+v", c)
	}
}

// runOne runs jobs until one fails and is put back to retry: the flaky
// scan's first attempt.
func runOne(t *testing.T, r *rig) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		j, err := r.store.Claim(ctx, "test", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if j == nil {
			all, _ := r.store.Jobs(ctx, "", "", 100)
			for _, j := range all {
				t.Logf("%d %s %s %d %s %s", j.ID, j.Kind, j.State, j.Attempt, j.Error, j.Args)
			}
			t.Fatal("no job to run")
		}
		err = r.eng.Handlers()[j.Kind](ctx, j)
		if err == nil {
			r.store.FinishJob(ctx, j, sqlstore.JobCompleted, "")
			continue
		}
		if err := r.store.RetryJob(ctx, j, time.Now(), err.Error()); err != nil {
			t.Fatal(err)
		}
		return
	}
}

// TestRegistryCredentialsStayHome: a scan that names a watched registry
// but an image elsewhere never sends that registry's credentials there;
// without --allow-private-registries, a scan cannot reach loopback or
// private addresses, whatever name resolves there.
func TestRegistryCredentialsStayHome(t *testing.T) {
	r := newRig(t, filepath.Join(t.TempDir(), "store.db"))
	ctx := context.Background()
	reg := newRegistry(t)
	ref := reg.push(t, "app/web:1", randomImage(t))
	watched, err := r.store.CreateRegistry(ctx, r.p, sqlstore.NewRegistry{Config: registry.Config{URL: reg.srv.URL, Username: "ci", Password: "s3cret"}})
	if err != nil {
		t.Fatal(err)
	}
	elsewhere := strings.Replace(ref, "127.0.0.1", "localhost", 1)
	if _, _, err := r.store.Enqueue(ctx, engine.ScanJob(engine.ScanArgs{AccountID: 1, Type: vigil.ResourceImage, Name: "x", Image: elsewhere, Registry: watched.ID})); err != nil {
		t.Fatal(err)
	}
	r.drain(t)
	if c := r.byName(t, "x"); c.Reason != vigil.ReasonScanFailed || !strings.Contains(c.Message, "is not in registry") {
		t.Fatalf("a scan naming another host: %+v", c)
	}

	r.eng.AllowPrivateRegistries = false
	if _, _, err := r.store.Enqueue(ctx, engine.ScanJob(engine.ScanArgs{AccountID: 1, Type: vigil.ResourceImage, Name: "y", Image: ref})); err != nil {
		t.Fatal(err)
	}
	r.drain(t)
	if c := r.byName(t, "y"); c.Reason != vigil.ReasonScanFailed || !strings.Contains(c.Message, "refusing to connect to 127.0.0.1") {
		t.Fatalf("a scan of a loopback registry: %+v", c)
	}
	r.store.Enqueue(ctx, engine.PollJob(watched.ID))
	r.drain(t)
	regs, _ := r.store.Registries(ctx, r.p)
	if len(regs) != 1 || !strings.Contains(regs[0].LastError, "refusing to connect") {
		t.Fatalf("a poll of a loopback registry: %+v", regs)
	}
}
