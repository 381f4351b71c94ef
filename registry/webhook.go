package registry

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/types"
)

// EventsMediaType is the media type of a CNCF Distribution notification
// envelope.
const EventsMediaType = "application/vnd.docker.distribution.events.v1+json"

// DefaultEventLimit is the body size ParseEvents accepts when given a limit
// of zero or less. Distribution batches a few events per request; a megabyte
// is thousands of them.
const DefaultEventLimit = 1 << 20

// Actions a registry reports.
const (
	ActionPush   = "push"
	ActionPull   = "pull"
	ActionDelete = "delete"
	ActionMount  = "mount"
)

// Event is one manifest event from a registry notification.
type Event struct {
	ID         string
	Action     string // ActionPush, ActionPull, ActionDelete or ActionMount
	Repository string
	Tag        string // may be empty (a push by digest; a delete by digest)
	Digest     string // "sha256:<hex>"; empty only for a tag delete
	MediaType  string // empty for deletes, which Distribution sends without one
	Time       time.Time
}

// Ref is the reference of the event's manifest in registry c: by digest
// when the event has one ("host/repo@sha256:..."), else by tag.
func (e Event) Ref(c Config) string {
	if e.Digest != "" {
		return c.Host() + "/" + e.Repository + "@" + e.Digest
	}
	return c.Host() + "/" + e.Repository + ":" + e.Tag
}

// manifestTypes are the manifest media types Vigil scans: Docker v2 schema 2
// manifests and manifest lists, OCI image manifests and indexes.
var manifestTypes = map[string]bool{
	string(types.DockerManifestSchema2): true,
	string(types.DockerManifestList):    true,
	string(types.OCIManifestSchema1):    true,
	string(types.OCIImageIndex):         true,
}

func isIndex(mt string) bool {
	return mt == string(types.DockerManifestList) || mt == string(types.OCIImageIndex)
}

type envelope struct {
	Events *[]rawEvent `json:"events"`
}

type rawEvent struct {
	ID        string `json:"id"`
	Timestamp string `json:"timestamp"`
	Action    string `json:"action"`
	Target    struct {
		MediaType  string `json:"mediaType"`
		Digest     string `json:"digest"`
		Repository string `json:"repository"`
		URL        string `json:"url"`
		Tag        string `json:"tag"`
	} `json:"target"`
}

// ParseEvents reads a notification envelope of at most limit bytes
// (DefaultEventLimit when limit <= 0) and returns its manifest events, in
// order. Blob events, and manifests of other media types (schema 1,
// artifacts), are left out; so are actions other than push, pull, delete and
// mount, which later registries may add. Deletes carry no media type in
// Distribution's notifications: one is kept unless its URL names a blob.
//
// Any problem (malformed JSON, an oversized body, a kept event with a bad
// digest, a bad or empty repository, a bad timestamp) rejects the whole
// body with an error naming the event and what is wrong, so that a caller
// never applies half of a batch.
func ParseEvents(r io.Reader, limit int64) ([]Event, error) {
	if limit <= 0 {
		limit = DefaultEventLimit
	}
	body, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("registry events: read body: %w", err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("registry events: body larger than %d bytes", limit)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errors.New("registry events: empty body")
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("registry events: malformed JSON: %v", err)
	}
	if env.Events == nil {
		return nil, errors.New(`registry events: not a notification envelope: no "events" array`)
	}
	var out []Event
	for i, raw := range *env.Events {
		e, keep, err := convert(raw)
		if err != nil {
			where := fmt.Sprintf("event %d", i)
			if raw.ID != "" {
				where += fmt.Sprintf(" (id %q)", raw.ID)
			}
			return nil, fmt.Errorf("registry events: %s: %v", where, err)
		}
		if keep {
			out = append(out, e)
		}
	}
	return out, nil
}

func convert(raw rawEvent) (Event, bool, error) {
	t := raw.Target
	switch raw.Action {
	case ActionPush, ActionPull, ActionMount:
		if !manifestTypes[t.MediaType] {
			return Event{}, false, nil
		}
	case ActionDelete:
		if t.MediaType != "" && !manifestTypes[t.MediaType] {
			return Event{}, false, nil
		}
		if t.MediaType == "" && strings.Contains(t.URL, "/blobs/") {
			return Event{}, false, nil
		}
	default:
		return Event{}, false, nil
	}
	e := Event{
		ID:         raw.ID,
		Action:     raw.Action,
		Repository: t.Repository,
		Tag:        t.Tag,
		Digest:     t.Digest,
		MediaType:  t.MediaType,
	}
	if e.Repository == "" {
		return e, false, errors.New("empty repository")
	}
	if !validRepository(e.Repository) {
		return e, false, fmt.Errorf("bad repository name %q", e.Repository)
	}
	if e.Tag != "" && !tagRE.MatchString(e.Tag) {
		return e, false, fmt.Errorf("bad tag %q", e.Tag)
	}
	switch {
	case e.Digest != "":
		if err := checkDigest(e.Digest); err != nil {
			return e, false, err
		}
	case e.Action == ActionDelete && e.Tag != "":
		// Distribution's tag delete names the tag only.
	default:
		return e, false, fmt.Errorf("%s of %s: no digest", e.Action, e.Repository)
	}
	if raw.Timestamp != "" {
		ts, err := time.Parse(time.RFC3339Nano, raw.Timestamp)
		if err != nil {
			return e, false, fmt.Errorf("bad timestamp %q (want RFC 3339)", raw.Timestamp)
		}
		e.Time = ts
	}
	return e, true, nil
}

var (
	// From the OCI distribution spec (repository name components).
	repoRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRE  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	hexRE  = regexp.MustCompile(`^[a-f0-9]+$`)
)

func validRepository(repo string) bool {
	return len(repo) <= 255 && repoRE.MatchString(repo)
}

// checkDigest accepts "sha256:<64 hex>" and "sha512:<128 hex>", lower case.
func checkDigest(d string) error {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok {
		return fmt.Errorf("bad digest %q: want algorithm:hex, e.g. sha256:<64 hex digits>", d)
	}
	want := map[string]int{"sha256": 64, "sha512": 128}[alg]
	if want == 0 {
		return fmt.Errorf("bad digest %q: unsupported algorithm %q (want sha256 or sha512)", d, alg)
	}
	if len(hex) != want || !hexRE.MatchString(hex) {
		return fmt.Errorf("bad digest %q: %s wants %d lower-case hex digits", d, alg, want)
	}
	return nil
}

// Authenticate reports whether a notification request carries the shared
// secret that the registry's endpoint configuration sends as a static header:
// "Authorization: Bearer <secret>" or "Authorization: Token <secret>" (the
// scheme in any case). The comparison takes the same time whatever the
// secret's length and content; an empty secret authenticates nothing.
func Authenticate(h http.Header, secret string) bool {
	if secret == "" {
		return false
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(h.Get("Authorization")), " ")
	if !ok {
		return false
	}
	if !strings.EqualFold(scheme, "Bearer") && !strings.EqualFold(scheme, "Token") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	want := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}
