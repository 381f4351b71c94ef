// Package feed fetches the upstream vulnerability feeds (OSV exports, CISA
// KEV, FIRST EPSS, CVE records) as raw bytes with a fingerprint, apart from
// parsing them: a local mirror, an HTTP mirror and the real services are all
// just locations. The parsers live in the sub-packages.
package feed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ErrNotFound reports a source that does not exist at its location. Every
// source is optional: callers report it and go on.
var ErrNotFound = errors.New("not found")

// Fingerprint identifies the content of a source as it was last ingested.
type Fingerprint struct {
	Digest       string `json:"digest,omitempty"` // "sha256:<hex>"
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"lastModified,omitempty"`
	Size         int64  `json:"size,omitempty"`
}

// Fetched is the result of a fetch.
type Fetched struct {
	Location string
	// Unchanged is set when the content is the same as the previous
	// fingerprint's; Path is then empty.
	Unchanged   bool
	Path        string
	Fingerprint Fingerprint
	remove      bool
}

// Close removes the temporary copy of a downloaded source.
func (f *Fetched) Close() error {
	if f != nil && f.remove && f.Path != "" {
		return os.Remove(f.Path)
	}
	return nil
}

// Progress is told how many bytes of a fetch arrived, and the total when
// known (else -1).
type Progress func(done, total int64)

// Fetcher fetches sources from local paths or http(s) URLs.
type Fetcher struct {
	Client *http.Client
	// TempDir receives downloads; it should be on the same file system as
	// the database so that nothing large lands in a small /tmp.
	TempDir string
	// MaxSize bounds one download.
	MaxSize int64
}

// IsURL reports whether loc is an http(s) URL rather than a local path.
func IsURL(loc string) bool {
	return strings.HasPrefix(loc, "http://") || strings.HasPrefix(loc, "https://")
}

// Join appends path elements to a local path or a URL.
func Join(base string, elem ...string) string {
	if IsURL(base) {
		u := strings.TrimRight(base, "/")
		for _, e := range elem {
			u += "/" + url.PathEscape(e)
		}
		return u
	}
	return filepath.Join(append([]string{base}, elem...)...)
}

// Fetch makes the content at loc available as a local file, unless it is
// unchanged since prev. A local file is read in place and only hashed.
func (f *Fetcher) Fetch(ctx context.Context, loc string, prev Fingerprint, progress Progress) (*Fetched, error) {
	if IsURL(loc) {
		return f.fetchHTTP(ctx, loc, prev, progress)
	}
	st, err := os.Stat(loc)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", loc, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", loc)
	}
	file, err := os.Open(loc)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	h := sha256.New()
	if _, err := io.Copy(h, &ctxReader{ctx: ctx, r: file, progress: progress, total: st.Size()}); err != nil {
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	fp := Fingerprint{Digest: "sha256:" + hex.EncodeToString(h.Sum(nil)), Size: st.Size()}
	if prev.Digest == fp.Digest {
		return &Fetched{Location: loc, Unchanged: true, Fingerprint: fp}, nil
	}
	return &Fetched{Location: loc, Path: loc, Fingerprint: fp}, nil
}

func (f *Fetcher) client() *http.Client {
	if f.Client != nil {
		return f.Client
	}
	return &http.Client{Timeout: 30 * time.Minute}
}

func (f *Fetcher) fetchHTTP(ctx context.Context, loc string, prev Fingerprint, progress Progress) (*Fetched, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "vigil (+https://github.com/vigil-project/vigil)")
	if prev.ETag != "" {
		req.Header.Set("If-None-Match", prev.ETag)
	} else if prev.LastModified != "" {
		req.Header.Set("If-Modified-Since", prev.LastModified)
	}
	resp, err := f.client().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && prev.Digest != "":
		return &Fetched{Location: loc, Unchanged: true, Fingerprint: prev}, nil
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusForbidden && strings.Contains(loc, "storage.googleapis.com"):
		return nil, fmt.Errorf("%s: %w (HTTP %d)", loc, ErrNotFound, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%s: HTTP %s", loc, resp.Status)
	}
	tmp, err := os.CreateTemp(f.TempDir, "vigil-feed-*")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	limit := f.MaxSize
	if limit <= 0 {
		limit = 4 << 30
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), &ctxReader{ctx: ctx, r: io.LimitReader(resp.Body, limit+1), progress: progress, total: resp.ContentLength})
	if err != nil {
		return nil, fmt.Errorf("%s: download: %w", loc, err)
	}
	if n > limit {
		return nil, fmt.Errorf("%s: larger than the %d byte download limit", loc, limit)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return nil, fmt.Errorf("%s: download truncated at %d of %d bytes", loc, n, resp.ContentLength)
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	fp := Fingerprint{
		Digest:       "sha256:" + hex.EncodeToString(h.Sum(nil)),
		ETag:         resp.Header.Get("ETag"),
		LastModified: resp.Header.Get("Last-Modified"),
		Size:         n,
	}
	if fp.Digest == prev.Digest {
		// The server ignored the conditional request; the digest decides.
		os.Remove(tmp.Name())
		ok = true
		return &Fetched{Location: loc, Unchanged: true, Fingerprint: fp}, nil
	}
	ok = true
	return &Fetched{Location: loc, Path: tmp.Name(), Fingerprint: fp, remove: true}, nil
}

// ReadSmall reads a small text resource (an index such as ecosystems.txt)
// from a local path or URL.
func (f *Fetcher) ReadSmall(ctx context.Context, loc string) ([]byte, error) {
	const limit = 1 << 20
	if !IsURL(loc) {
		file, err := os.Open(loc)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", loc, ErrNotFound)
		}
		if err != nil {
			return nil, err
		}
		defer file.Close()
		return io.ReadAll(io.LimitReader(file, limit))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc, nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.client().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("%s: %w", loc, ErrNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %s", loc, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, limit))
}

// ctxReader stops a copy when the context ends and reports progress.
type ctxReader struct {
	ctx      context.Context
	r        io.Reader
	progress Progress
	total    int64
	done     int64
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.done += int64(n)
	if c.progress != nil && n > 0 {
		c.progress(c.done, c.total)
	}
	return n, err
}

// Sources says where each feed lives. An empty location means the feed is
// not configured and is reported as missing.
type Sources struct {
	// OSV is a directory or URL whose children are <Ecosystem>/all.zip, as
	// in the osv.dev export bucket.
	OSV string `json:"osv"`
	// KEV is the CISA KEV catalog JSON file or URL.
	KEV string `json:"kev"`
	// EPSS is a FIRST EPSS CSV (gzipped) file or URL, or a directory that
	// holds epss_scores-*.csv.gz files, of which the newest is taken.
	EPSS string `json:"epss"`
	// CVE is a cvelistV5 bulk zip, file or URL.
	CVE string `json:"cve"`
}

// The real services.
const (
	UpstreamOSV  = "https://osv-vulnerabilities.storage.googleapis.com"
	UpstreamKEV  = "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"
	UpstreamEPSS = "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz"
)

// Upstream returns the real services. The CVE Program publishes its bulk
// zips as release assets with a dated name, so it has no fixed location and
// must be given (or come from a mirror).
func Upstream() Sources {
	return Sources{OSV: UpstreamOSV, KEV: UpstreamKEV, EPSS: UpstreamEPSS}
}

// Mirror layout: the paths of each feed below a mirror's root, the layout
// `vigil db mirror` writes and `db update --source` reads.
const (
	MirrorOSV      = "osv"
	MirrorKEV      = "kev/known_exploited_vulnerabilities.json"
	MirrorEPSSDir  = "epss"
	MirrorEPSSFile = "epss_scores-current.csv.gz"
	MirrorCVE      = "cve/cvelistV5.zip"
)

// FromMirror returns the sources of a mirror (a local directory or a URL)
// laid out as `vigil db mirror` writes it.
func FromMirror(base string) Sources {
	s := Sources{
		OSV:  Join(base, MirrorOSV),
		KEV:  Join(base, strings.Split(MirrorKEV, "/")...),
		EPSS: Join(base, MirrorEPSSDir),
		CVE:  Join(base, strings.Split(MirrorCVE, "/")...),
	}
	if IsURL(base) {
		s.EPSS = Join(base, MirrorEPSSDir, MirrorEPSSFile)
	}
	return s
}

// ResolveEPSS turns an EPSS location into one file: a directory's newest
// epss_scores-*.csv.gz ("current" wins), or the location itself.
func ResolveEPSS(loc string) (string, error) {
	if IsURL(loc) {
		return loc, nil
	}
	st, err := os.Stat(loc)
	if err != nil || !st.IsDir() {
		return loc, nil
	}
	names, err := filepath.Glob(filepath.Join(loc, "epss_scores-*.csv.gz"))
	if err != nil {
		return "", err
	}
	if len(names) == 0 {
		return "", fmt.Errorf("%s: no epss_scores-*.csv.gz: %w", loc, ErrNotFound)
	}
	for _, n := range names {
		if filepath.Base(n) == MirrorEPSSFile {
			return n, nil
		}
	}
	// epss_scores-YYYY-MM-DD.csv.gz sorts by date.
	sort.Strings(names)
	return names[len(names)-1], nil
}
