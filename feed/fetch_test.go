package feed

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFetchLocal(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.json")
	os.WriteFile(p, []byte("hello"), 0o644)
	f := &Fetcher{}
	got, err := f.Fetch(context.Background(), p, Fingerprint{}, nil)
	if err != nil || got.Unchanged || got.Path != p || !strings.HasPrefix(got.Fingerprint.Digest, "sha256:2cf24dba") {
		t.Fatalf("first fetch: %+v %v", got, err)
	}
	again, err := f.Fetch(context.Background(), p, got.Fingerprint, nil)
	if err != nil || !again.Unchanged {
		t.Errorf("same content: %+v %v", again, err)
	}
	if _, err := f.Fetch(context.Background(), filepath.Join(dir, "none"), Fingerprint{}, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := f.Fetch(context.Background(), dir, Fingerprint{}, nil); err == nil {
		t.Error("a directory fetched as a file")
	}
}

func TestFetchHTTP(t *testing.T) {
	body := "content"
	etag := `"v1"`
	var mode string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch mode {
		case "etag":
			if r.Header.Get("If-None-Match") == etag {
				w.WriteHeader(http.StatusNotModified)
				return
			}
			w.Header().Set("ETag", etag)
			w.Write([]byte(body))
		case "ignores-conditionals":
			w.Write([]byte(body))
		case "500":
			http.Error(w, "boom", http.StatusInternalServerError)
		case "truncated":
			w.Header().Set("Content-Length", "100")
			w.Write([]byte(body))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	f := &Fetcher{TempDir: t.TempDir()}
	ctx := context.Background()

	mode = "etag"
	got, err := f.Fetch(ctx, srv.URL+"/x", Fingerprint{}, nil)
	if err != nil || got.Unchanged || got.Fingerprint.ETag != etag {
		t.Fatalf("first: %+v %v", got, err)
	}
	data, _ := os.ReadFile(got.Path)
	if string(data) != body {
		t.Errorf("downloaded %q", data)
	}
	got.Close()
	if _, err := os.Stat(got.Path); !os.IsNotExist(err) {
		t.Error("Close left the download behind")
	}
	again, err := f.Fetch(ctx, srv.URL+"/x", got.Fingerprint, nil)
	if err != nil || !again.Unchanged {
		t.Errorf("304: %+v %v", again, err)
	}

	mode = "ignores-conditionals"
	again, err = f.Fetch(ctx, srv.URL+"/x", got.Fingerprint, nil)
	if err != nil || !again.Unchanged || again.Path != "" {
		t.Errorf("same digest without 304: %+v %v", again, err)
	}

	mode = "500"
	if _, err := f.Fetch(ctx, srv.URL+"/x", Fingerprint{}, nil); err == nil || !strings.Contains(err.Error(), "500") {
		t.Errorf("500: %v", err)
	}
	mode = "404"
	if _, err := f.Fetch(ctx, srv.URL+"/x", Fingerprint{}, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("404: %v", err)
	}
	mode = "truncated"
	if _, err := f.Fetch(ctx, srv.URL+"/x", Fingerprint{}, nil); err == nil {
		t.Error("truncated download accepted")
	}
	mode = "etag"
	small := &Fetcher{TempDir: t.TempDir(), MaxSize: 3}
	if _, err := small.Fetch(ctx, srv.URL+"/x", Fingerprint{}, nil); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("over the size limit: %v", err)
	}
	entries, _ := os.ReadDir(f.TempDir)
	if len(entries) != 0 {
		t.Errorf("failed downloads left %d files behind", len(entries))
	}
}

func TestResolveEPSS(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"epss_scores-2026-08-14.csv.gz", "epss_scores-2026-08-16.csv.gz", "epss_scores-2026-08-15.csv.gz"} {
		os.WriteFile(filepath.Join(dir, n), nil, 0o644)
	}
	got, err := ResolveEPSS(dir)
	if err != nil || filepath.Base(got) != "epss_scores-2026-08-16.csv.gz" {
		t.Errorf("newest = %s, %v", got, err)
	}
	os.WriteFile(filepath.Join(dir, MirrorEPSSFile), nil, 0o644)
	if got, _ := ResolveEPSS(dir); filepath.Base(got) != MirrorEPSSFile {
		t.Errorf("current not preferred: %s", got)
	}
	if _, err := ResolveEPSS(t.TempDir()); !errors.Is(err, ErrNotFound) {
		t.Errorf("empty dir: %v", err)
	}
}
