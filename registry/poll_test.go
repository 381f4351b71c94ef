package registry

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/vigil-project/vigil/internal/testutil"
)

// fast keeps go-containerregistry's own retries (1s, 3s by default) short.
var fast = remote.WithRetryBackoff(remote.Backoff{Duration: time.Millisecond, Factor: 1, Steps: 2})

var quiet = log.New(io.Discard, "", 0)

// serve starts an in-process registry, its handler wrapped by wrap when
// given, and returns the server and a Config for it.
func serve(t *testing.T, wrap func(http.Handler) http.Handler) (*httptest.Server, Config) {
	t.Helper()
	var h http.Handler = ggcrregistry.New(ggcrregistry.Logger(quiet))
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, Config{URL: srv.URL}
}

// push writes img (a v1.Image or v1.ImageIndex) to host/repo:tag and
// returns its digest.
func push(t *testing.T, c Config, repoTag string, img any, opts ...remote.Option) string {
	t.Helper()
	ref, err := name.NewTag(c.Host()+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	var d v1.Hash
	switch img := img.(type) {
	case v1.Image:
		err = remote.Write(ref, img, opts...)
		if err == nil {
			d, err = img.Digest()
		}
	case v1.ImageIndex:
		err = remote.WriteIndex(ref, img, opts...)
		if err == nil {
			d, err = img.Digest()
		}
	}
	if err != nil {
		t.Fatalf("push %s: %v", repoTag, err)
	}
	return d.String()
}

func randomImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func poll(t *testing.T, c Config, opts ...remote.Option) PollResult {
	t.Helper()
	res, err := Poll(context.Background(), c, append([]remote.Option{fast}, opts...)...)
	if err != nil {
		t.Fatalf("Poll: %v", err)
	}
	return res
}

func TestPollCatalogIncludeExclude(t *testing.T) {
	_, c := serve(t, nil)
	want := map[string]string{}
	for _, rt := range []string{"team/app:1.0", "team/app:latest", "team/tools:v1", "other/x:1", "team/db:15", "team/deep/nested:1"} {
		want[rt] = push(t, c, rt, randomImage(t))
	}
	c.Include = []string{"team/*"}
	c.Exclude = []string{"team/tools"}
	res := poll(t, c)
	var got []string
	for _, img := range res.Images {
		got = append(got, img.Repository+":"+img.Tag)
		if img.Digest != want[img.Repository+":"+img.Tag] {
			t.Errorf("%s:%s digest %s, pushed %s", img.Repository, img.Tag, img.Digest, want[img.Repository+":"+img.Tag])
		}
		if img.MediaType != string(types.DockerManifestSchema2) {
			t.Errorf("%s:%s media type %s", img.Repository, img.Tag, img.MediaType)
		}
	}
	if g, w := strings.Join(got, " "), "team/app:1.0 team/app:latest team/db:15"; g != w {
		t.Errorf("images %q, want %q (sorted; team/tools excluded; * does not cross /)", g, w)
	}
	if len(res.Skipped) != 0 {
		t.Errorf("skipped %v", res.Skipped)
	}
	ref := res.Images[0].Ref(c)
	if w := c.Host() + "/team/app@" + want["team/app:1.0"]; ref != w {
		t.Errorf("Ref %q, want %q", ref, w)
	}
	if _, err := name.NewDigest(ref); err != nil {
		t.Errorf("Ref %q does not parse as a digest reference: %v", ref, err)
	}

	// No Include: everything.
	c.Include, c.Exclude = nil, nil
	if n := len(poll(t, c).Images); n != 6 {
		t.Errorf("all repositories: %d images, want 6", n)
	}
}

func TestPollTagMoved(t *testing.T) {
	_, c := serve(t, nil)
	first := push(t, c, "app:latest", randomImage(t))
	res := poll(t, c)
	if len(res.Images) != 1 || res.Images[0].Digest != first {
		t.Fatalf("before: %+v, want digest %s", res.Images, first)
	}
	second := push(t, c, "app:latest", randomImage(t))
	res = poll(t, c)
	if len(res.Images) != 1 || res.Images[0].Digest != second || second == first {
		t.Fatalf("after moving the tag: %+v, want digest %s (was %s)", res.Images, second, first)
	}
}

func TestPollIndex(t *testing.T) {
	_, c := serve(t, nil)
	idx, err := random.Index(128, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	d := push(t, c, "multi:latest", idx)
	res := poll(t, c)
	if len(res.Images) != 1 {
		t.Fatalf("images %+v", res.Images)
	}
	if img := res.Images[0]; img.Digest != d || img.MediaType != string(types.OCIImageIndex) {
		t.Errorf("index: %+v, want digest %s, media type %s", img, d, types.OCIImageIndex)
	}
}

func TestPollSkipsArtifacts(t *testing.T) {
	_, c := serve(t, nil)
	// A Helm chart as `helm push` stores it: an OCI manifest with a Helm
	// config and one chart layer.
	chart, err := mutate.Append(
		mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), "application/vnd.cncf.helm.config.v1+json"),
		mutate.Addendum{Layer: static.NewLayer([]byte("chart.tgz bytes"), "application/vnd.cncf.helm.chart.content.v1.tar+gzip")})
	if err != nil {
		t.Fatal(err)
	}
	push(t, c, "charts/web:1.2.3", chart)
	// A signature: image config, but a layer that is not a filesystem.
	sig, err := mutate.Append(
		mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON),
		mutate.Addendum{Layer: static.NewLayer([]byte(`{"critical":{}}`), "application/vnd.dev.cosign.simplesigning.v1+json")})
	if err != nil {
		t.Fatal(err)
	}
	push(t, c, "charts/web:sha256-abc.sig", sig)
	// A real OCI image beside them is kept.
	oci := mutate.ConfigMediaType(mutate.MediaType(randomImage(t), types.OCIManifestSchema1), types.OCIConfigJSON)
	ociLayer, err := random.Layer(64, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	if oci, err = mutate.Append(empty.Image, mutate.Addendum{Layer: ociLayer}); err != nil {
		t.Fatal(err)
	}
	oci = mutate.ConfigMediaType(mutate.MediaType(oci, types.OCIManifestSchema1), types.OCIConfigJSON)
	ociDigest := push(t, c, "charts/web:image", oci)

	res := poll(t, c)
	if len(res.Images) != 1 || res.Images[0].Digest != ociDigest || res.Images[0].MediaType != string(types.OCIManifestSchema1) {
		t.Errorf("images %+v, want only charts/web:image %s", res.Images, ociDigest)
	}
	if len(res.Skipped) != 2 {
		t.Fatalf("skipped %+v, want the chart and the signature", res.Skipped)
	}
	for i, want := range []struct{ ref, reason string }{
		{"charts/web:1.2.3", "config media type application/vnd.cncf.helm.config.v1+json"},
		{"charts/web:sha256-abc.sig", "application/vnd.dev.cosign.simplesigning.v1+json"},
	} {
		s := res.Skipped[i]
		if s.Ref != c.Host()+"/"+want.ref || !strings.Contains(s.Reason, want.reason) || !strings.Contains(s.Reason, "not a container image") {
			t.Errorf("skipped[%d] = %+v, want %s for %q", i, s, want.ref, want.reason)
		}
	}
}

func TestPollHeadNotSupported(t *testing.T) {
	var heads int
	noHead := false // set after pushing, which uses HEAD
	_, c := serve(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if noHead && r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/manifests/") {
				heads++
				http.Error(w, "no HEAD here", http.StatusMethodNotAllowed)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	d := push(t, c, "app:1", randomImage(t))
	noHead = true
	res := poll(t, c)
	if len(res.Images) != 1 || res.Images[0].Digest != d {
		t.Fatalf("images %+v, want app:1 %s through GET", res.Images, d)
	}
	if heads == 0 {
		t.Error("Poll never tried HEAD")
	}
}

// basicAuth wraps a registry with a basic-auth check, as a registry behind
// htpasswd does.
func basicAuth(user, pass string) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="Registry Realm"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
				return
			}
			h.ServeHTTP(w, r)
		})
	}
}

func TestPollCredentials(t *testing.T) {
	_, c := serve(t, basicAuth("vigil", "s3cret"))
	d := push(t, c, "private/app:1", randomImage(t), remote.WithAuth(&authn.Basic{Username: "vigil", Password: "s3cret"}))

	c.Username, c.Password = "vigil", "s3cret"
	if res := poll(t, c); len(res.Images) != 1 || res.Images[0].Digest != d {
		t.Errorf("right credentials: %+v", res.Images)
	}

	for _, tc := range []struct{ name, user, pass string }{
		{"wrong password", "vigil", "wrong"},
		{"anonymous", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.Username, c.Password = tc.user, tc.pass
			_, err := Poll(context.Background(), c, fast)
			if err == nil {
				t.Fatal("Poll succeeded")
			}
			t.Log(err)
			if Retryable(err) {
				t.Errorf("Retryable(%v) = true; wrong credentials do not get better", err)
			}
			want := "registry " + c.Host() + ": credentials refused (401): list the catalog"
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q, want it to start %q", err, want)
			}
			if strings.Contains(err.Error(), "wrong") {
				t.Errorf("error %q shows the password", err)
			}
			var e *Error
			if !errors.As(err, &e) || e.Status != http.StatusUnauthorized {
				t.Errorf("error %#v, want *Error with status 401", err)
			}
		})
	}
}

func TestPollUnavailable(t *testing.T) {
	var calls int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	c := Config{URL: srv.URL}
	_, err := Poll(context.Background(), c, fast)
	if err == nil {
		t.Fatal("Poll succeeded against a 503")
	}
	t.Log(err)
	if !Retryable(err) {
		t.Errorf("Retryable(%v) = false, want true", err)
	}
	if want := "registry " + c.Host() + ": unavailable (503): list the catalog: "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q, want it to start %q", err, want)
	}
}

func TestPollRegistryDown(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	c := Config{URL: srv.URL}
	srv.Close()
	_, err := Poll(context.Background(), c, fast)
	if err == nil {
		t.Fatal("Poll succeeded against a closed listener")
	}
	t.Log(err)
	if !Retryable(err) {
		t.Errorf("Retryable(%v) = false, want true", err)
	}
	if want := "registry " + c.Host() + ": unreachable: list the catalog: "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q, want it to start %q", err, want)
	}
}

func TestPollCanceled(t *testing.T) {
	_, c := serve(t, nil)
	push(t, c, "app:1", randomImage(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Poll(ctx, c, fast)
	if err == nil || Retryable(err) || !errors.Is(err, context.Canceled) {
		t.Errorf("canceled poll: %v (retryable %v)", err, Retryable(err))
	}
}

func TestPollHTTPSStaysOnTLS(t *testing.T) {
	// go-containerregistry would speak plain HTTP to a loopback address;
	// an https:// registry must get TLS.
	srv := httptest.NewUnstartedServer(ggcrregistry.New(ggcrregistry.Logger(quiet)))
	srv.Config.ErrorLog = quiet // the plain-HTTP ping racing the TLS one
	srv.StartTLS()
	defer srv.Close()
	old := defaultTransport
	defaultTransport = srv.Client().Transport
	defer func() { defaultTransport = old }()
	c := Config{URL: srv.URL}
	ref, err := name.NewTag(c.Host() + "/app:1")
	if err != nil {
		t.Fatal(err)
	}
	img := randomImage(t)
	if err := remote.Write(ref, img, remote.WithTransport(httpsOnly{c.Host(), srv.Client().Transport})); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	if res := poll(t, c); len(res.Images) != 1 || res.Images[0].Digest != d.String() {
		t.Errorf("images over TLS: %+v", res.Images)
	}
}

func TestPollBadConfig(t *testing.T) {
	_, err := Poll(context.Background(), Config{URL: "ftp://example.com"})
	if err == nil || !strings.Contains(err.Error(), "scheme") {
		t.Errorf("Poll with a bad URL: %v", err)
	}
}

// TestPollDebian pushes the real Debian image from ../shared/targets and
// finds it by its digest.
func TestPollDebian(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the Debian target")
	}
	dir := testutil.Target(t, "debian-bookworm")
	img, err := tarball.ImageFromPath(filepath.Join(dir, "image.docker.tar"), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, c := serve(t, nil)
	d := push(t, c, "library/debian:bookworm", img)
	push(t, c, "library/debian:12", img)
	res := poll(t, c)
	if len(res.Images) != 2 {
		t.Fatalf("images %+v", res.Images)
	}
	for _, got := range res.Images {
		if got.Digest != d || got.MediaType != string(types.DockerManifestSchema2) {
			t.Errorf("%+v, want digest %s", got, d)
		}
	}
	if ref := res.Images[0].Ref(c); ref != c.Host()+"/library/debian@"+d {
		t.Errorf("Ref %q", ref)
	}
}

func TestPollRepositoryDenied(t *testing.T) {
	_, c := serve(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v2/secret/tags/list" {
				http.Error(w, `{"errors":[{"code":"DENIED","message":"no"}]}`, http.StatusForbidden)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	d := push(t, c, "open:1", randomImage(t))
	push(t, c, "secret:1", randomImage(t))
	res := poll(t, c)
	if len(res.Images) != 1 || res.Images[0].Digest != d {
		t.Errorf("images %+v, want open:1", res.Images)
	}
	want := Skip{Ref: c.Host() + "/secret", Reason: "list the tags of secret: access denied (403)"}
	if len(res.Skipped) != 1 || res.Skipped[0] != want {
		t.Errorf("skipped %+v, want %+v", res.Skipped, want)
	}
}
