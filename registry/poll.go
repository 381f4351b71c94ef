package registry

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Image is a tagged manifest found by Poll: an image or an index.
type Image struct {
	Repository string
	Tag        string
	Digest     string // "sha256:<hex>", the manifest's digest
	MediaType  string // the manifest's media type
	// Unsupported says why the manifest is not a container image (a Helm
	// chart, a signature); empty for images.
	Unsupported string
}

// Ref is the image's digest reference in registry c, "host/repo@sha256:...":
// a tag moved to another manifest is a new reference, hence a new scan.
func (i Image) Ref(c Config) string {
	return c.Host() + "/" + i.Repository + "@" + i.Digest
}

// Skip is a tag or repository Poll left out, and why.
type Skip struct {
	Ref    string // "host/repo:tag", or "host/repo" for a whole repository
	Reason string
	// Digest and Unsupported are set for a manifest that is not a
	// container image (UNSUPPORTED_MEDIA_TYPE in coverage).
	Digest      string
	Unsupported bool
}

// PollResult is what a registry holds: its images, sorted by repository then
// tag, and what was left out (artifacts that are not container images,
// repositories the credentials may not read, tags deleted while polling).
type PollResult struct {
	Images  []Image
	Skipped []Skip
}

// defaultTransport is the transport Poll starts from; tests swap it.
var defaultTransport http.RoundTripper = remote.DefaultTransport

// Poll lists what registry c holds now, for registries that send no
// notifications: the catalog (following its pages), the tags of each
// repository c wants, and the manifest each tag points at (HEAD, falling
// back to GET for registries that do not answer HEAD). OCI manifests are
// read to tell images from artifacts (Helm charts, signatures, SBOMs), which
// are skipped with the reason.
//
// It uses c's credentials (basic, exchanged for a token when the registry
// asks) or none, and plain HTTP when c.URL is http://. opts come after
// Poll's own options, so they can change the retry backoff or page size;
// remote.WithTransport replaces the transport that keeps an https registry
// on TLS even at a private address.
//
// A failure to read the catalog, and any retryable failure (network, 429,
// 5xx) fails the whole poll, so that a caller never mistakes a partial
// listing for deletions; a repository or tag the registry refuses (401, 403)
// or no longer has (404) is skipped with the reason.
func Poll(ctx context.Context, c Config, opts ...remote.Option) (PollResult, error) {
	if err := c.Validate(); err != nil {
		return PollResult{}, err
	}
	host := c.Host()
	var nameOpts []name.Option
	if c.plainHTTP() {
		nameOpts = append(nameOpts, name.Insecure)
	}
	tr := c.RoundTripper()
	reg, err := name.NewRegistry(host, nameOpts...)
	if err != nil {
		return PollResult{}, fmt.Errorf("registry %s: %v", host, err)
	}
	var auth authn.Authenticator = authn.Anonymous
	if c.Username != "" {
		auth = &authn.Basic{Username: c.Username, Password: c.Password}
	}
	p := &poller{
		ctx:      ctx,
		host:     host,
		opts:     append([]remote.Option{remote.WithContext(ctx), remote.WithAuth(auth), remote.WithTransport(tr)}, opts...),
		verdicts: map[string]string{},
	}

	repos, err := remote.Catalog(ctx, reg, p.opts...)
	if err != nil {
		return PollResult{}, wrap(host, "list the catalog", err)
	}
	slices.Sort(repos)
	repos = slices.Compact(repos)

	var res PollResult
	for _, r := range repos {
		if !c.Wants(r) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return PollResult{}, wrap(host, "poll", err)
		}
		if !validRepository(r) {
			res.Skipped = append(res.Skipped, Skip{Ref: host + "/" + r, Reason: "the catalog lists an invalid repository name"})
			continue
		}
		if err := p.repository(reg.Repo(r), &res); err != nil {
			return PollResult{}, err
		}
	}
	slices.SortFunc(res.Images, func(a, b Image) int {
		return cmp.Or(cmp.Compare(a.Repository, b.Repository), cmp.Compare(a.Tag, b.Tag))
	})
	slices.SortFunc(res.Skipped, func(a, b Skip) int { return cmp.Compare(a.Ref, b.Ref) })
	return res, nil
}

type poller struct {
	ctx  context.Context
	host string
	opts []remote.Option
	// verdicts caches, by manifest digest, why it is skipped ("" for an
	// image), so that a manifest under many tags is read once.
	verdicts map[string]string
}

func (p *poller) repository(repo name.Repository, res *PollResult) error {
	r := repo.RepositoryStr()
	tags, err := remote.List(repo, p.opts...)
	if err != nil {
		skip, err := p.failed(fmt.Sprintf("list the tags of %s", r), p.host+"/"+r, err)
		if skip != nil {
			res.Skipped = append(res.Skipped, *skip)
		}
		return err
	}
	slices.Sort(tags)
	tags = slices.Compact(tags)
	for _, tag := range tags {
		ref := p.host + "/" + r + ":" + tag
		if !tagRE.MatchString(tag) {
			res.Skipped = append(res.Skipped, Skip{Ref: ref, Reason: "the registry lists an invalid tag"})
			continue
		}
		img, reason, err := p.tag(repo, tag)
		if err != nil {
			return err
		}
		if reason != "" {
			res.Skipped = append(res.Skipped, Skip{Ref: ref, Reason: reason, Digest: img.Digest, Unsupported: img.Unsupported != ""})
			continue
		}
		res.Images = append(res.Images, img)
	}
	return nil
}

// tag resolves one tag: the image, or why it is skipped, or an error that
// fails the poll.
func (p *poller) tag(repo name.Repository, tag string) (Image, string, error) {
	r := repo.RepositoryStr()
	ref := repo.Tag(tag)
	op := fmt.Sprintf("resolve %s:%s", r, tag)
	img := Image{Repository: r, Tag: tag}
	var manifest []byte
	desc, err := remote.Head(ref, p.opts...)
	if err == nil {
		img.Digest, img.MediaType = desc.Digest.String(), string(desc.MediaType)
	} else {
		if Retryable(err) || isAuth(err) || errors.Is(err, context.Canceled) {
			return p.skipOrFail(op, err)
		}
		// No HEAD (405, 501, or an answer without the digest): GET.
		d, err := remote.Get(ref, p.opts...)
		if err != nil {
			return p.skipOrFail(op, err)
		}
		img.Digest, img.MediaType, manifest = d.Digest.String(), string(d.MediaType), d.Manifest
	}
	reason, err := p.verdict(repo, img, manifest)
	if err != nil {
		return p.skipOrFail(fmt.Sprintf("read the manifest of %s:%s", r, tag), err)
	}
	if reason != "" {
		// Not a container image: keep what it is, for coverage.
		img.Unsupported = reason
	}
	return img, reason, nil
}

func (p *poller) skipOrFail(op string, err error) (Image, string, error) {
	skip, err := p.failed(op, "", err)
	if err != nil {
		return Image{}, "", err
	}
	return Image{}, skip.Reason, nil
}

// failed turns an error into a skip (refused or gone: 401, 403, 404; a
// malformed manifest) or an error failing the poll (anything retryable,
// cancellation).
func (p *poller) failed(op, ref string, err error) (*Skip, error) {
	e := wrap(p.host, op, err).(*Error)
	if e.retry || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil, e
	}
	reason := op + ": " + e.What
	switch e.Status {
	case 0:
		reason += ": " + err.Error()
	case http.StatusNotFound:
		reason += " (404; deleted while polling?)"
	default:
		reason += fmt.Sprintf(" (%d)", e.Status)
	}
	return &Skip{Ref: ref, Reason: reason}, nil
}

func isAuth(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden)
}

// verdict says why the manifest img names is not a container image or
// index, or "" when it is one. manifest is its body when already fetched.
func (p *poller) verdict(repo name.Repository, img Image, manifest []byte) (string, error) {
	if v, ok := p.verdicts[img.Digest]; ok {
		return v, nil
	}
	mt := types.MediaType(img.MediaType)
	var v string
	switch {
	case mt.IsIndex() || mt == types.DockerManifestSchema2:
		// A Docker manifest's config is an image config.
	case mt == types.OCIManifestSchema1:
		if manifest == nil {
			d, err := remote.Get(repo.Digest(img.Digest), p.opts...)
			if err != nil {
				return "", err
			}
			manifest = d.Manifest
		}
		v = ociVerdict(manifest)
	case mt.IsSchema1():
		v = "Docker schema 1 manifest (a format retired in 2019), not scanned"
	case mt == "":
		v = "the registry gave no media type for the manifest"
	default:
		v = fmt.Sprintf("not a container image or index: manifest media type %s", mt)
	}
	p.verdicts[img.Digest] = v
	return v, nil
}

// ociVerdict tells an OCI image manifest from an artifact that borrows the
// format: an image has an image config and only filesystem layers.
func ociVerdict(manifest []byte) string {
	var m struct {
		ArtifactType string `json:"artifactType"`
		Config       struct {
			MediaType string `json:"mediaType"`
		} `json:"config"`
		Layers []struct {
			MediaType string `json:"mediaType"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		return fmt.Sprintf("malformed manifest: %v", err)
	}
	if m.ArtifactType != "" && !types.MediaType(m.ArtifactType).IsConfig() {
		return fmt.Sprintf("artifact of type %s, not a container image", m.ArtifactType)
	}
	if !types.MediaType(m.Config.MediaType).IsConfig() {
		return fmt.Sprintf("artifact with config media type %s, not a container image", m.Config.MediaType)
	}
	for _, l := range m.Layers {
		if !types.MediaType(l.MediaType).IsLayer() {
			return fmt.Sprintf("artifact with a layer of media type %s, not a container image", l.MediaType)
		}
	}
	return ""
}

// httpsOnly keeps requests to host on TLS. go-containerregistry speaks
// plain HTTP to private and loopback addresses unless told otherwise; a
// registry configured as https:// must not get credentials in the clear.
type httpsOnly struct {
	host string
	base http.RoundTripper
}

func (t httpsOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "http" && strings.EqualFold(r.URL.Host, t.host) {
		r = r.Clone(r.Context())
		r.URL.Scheme = "https"
	}
	return t.base.RoundTrip(r)
}

// Exists reports whether registry c still holds a manifest, by its digest
// reference ("host/repo@sha256:..."): a poll lists tags, so an image whose
// tag moved away is absent from the listing but may still be there (and
// running somewhere). Only a 404 means it is gone.
func Exists(ctx context.Context, c Config, ref string) (bool, error) {
	if err := c.Validate(); err != nil {
		return false, err
	}
	host := c.Host()
	var nameOpts []name.Option
	if c.plainHTTP() {
		nameOpts = append(nameOpts, name.Insecure)
	}
	tr := c.RoundTripper()
	d, err := name.NewDigest(ref, nameOpts...)
	if err != nil {
		return false, fmt.Errorf("registry %s: %q is not a digest reference: %v", host, ref, err)
	}
	var auth authn.Authenticator = authn.Anonymous
	if c.Username != "" {
		auth = &authn.Basic{Username: c.Username, Password: c.Password}
	}
	_, err = remote.Head(d, remote.WithContext(ctx), remote.WithAuth(auth), remote.WithTransport(tr))
	if err == nil {
		return true, nil
	}
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return false, nil
	}
	return false, wrap(host, "check "+ref, err)
}

// RoundTripper is the transport to reach the registry with: Transport (or
// the default), kept on TLS for an https registry even at a private
// address, where go-containerregistry would otherwise try plain HTTP and
// send credentials in the clear.
func (c Config) RoundTripper() http.RoundTripper {
	tr := c.Transport
	if tr == nil {
		tr = defaultTransport
	}
	if c.plainHTTP() {
		return tr
	}
	return httpsOnly{host: c.Host(), base: tr}
}

// Guard is a transport that refuses, when it connects (so after DNS
// resolution and on every redirect), addresses on loopback, private and
// link-local networks, unless allowPrivate: what keeps a registry scan
// from reaching the server's own network (a metadata service, an internal
// API) through a name that resolves there, now or later.
func Guard(allowPrivate bool) http.RoundTripper {
	base, ok := remote.DefaultTransport.(*http.Transport)
	if !ok || allowPrivate {
		return remote.DefaultTransport
	}
	t := base.Clone()
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: func(network, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			host = address
		}
		ip := net.ParseIP(host)
		if ip == nil || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified() || ip.IsMulticast() {
			return fmt.Errorf("refusing to connect to %s: a local or private address (the server allows that with --allow-private-registries)", host)
		}
		return nil
	}}
	t.DialContext = d.DialContext
	return t
}
