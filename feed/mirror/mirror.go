// Package mirror copies the upstream feeds into a directory laid out as
// `vigil db update --source DIR` reads it, so that an air-gapped site can
// carry the feeds across and build its database there.
package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigil-project/vigil/feed"
	"github.com/vigil-project/vigil/feed/osv"
)

// Result is what the mirror did with one file.
type Result struct {
	Name   string `json:"name"`
	From   string `json:"from"`
	To     string `json:"to"`
	Status string `json:"status"` // copied, unchanged, missing, failed
	Bytes  int64  `json:"bytes"`
	Error  string `json:"error,omitempty"`
}

const stateFile = ".vigil-mirror.json"

// Run copies src into dir. Files whose content is unchanged since the last
// run (by ETag or digest) are not copied again. Each file is written to a
// temporary name and renamed, so an interrupted run leaves every file
// whole.
func Run(ctx context.Context, f *feed.Fetcher, src feed.Sources, dir string, progress func(name string, done, total int64)) ([]Result, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("mirror: %w", err)
	}
	if progress == nil {
		progress = func(string, int64, int64) {}
	}
	state := map[string]feed.Fingerprint{}
	if data, err := os.ReadFile(filepath.Join(dir, stateFile)); err == nil {
		_ = json.Unmarshal(data, &state)
	}
	if f.TempDir == "" {
		f.TempDir = dir
	}
	type item struct{ name, from, to string }
	var items []item
	var results []Result
	if src.OSV != "" {
		ecos, err := osv.Ecosystems(ctx, f, src.OSV)
		if err != nil {
			results = append(results, Result{Name: "osv", From: src.OSV, Status: status(err), Error: err.Error()})
		}
		for _, e := range ecos {
			items = append(items, item{"osv/" + e, osv.ZipPath(src.OSV, e), filepath.Join(dir, feed.MirrorOSV, e, "all.zip")})
		}
	}
	if src.KEV != "" {
		items = append(items, item{"kev", src.KEV, filepath.Join(dir, filepath.FromSlash(feed.MirrorKEV))})
	}
	if src.EPSS != "" {
		loc, err := feed.ResolveEPSS(src.EPSS)
		if err != nil {
			results = append(results, Result{Name: "epss", From: src.EPSS, Status: status(err), Error: err.Error()})
		} else {
			items = append(items, item{"epss", loc, filepath.Join(dir, feed.MirrorEPSSDir, feed.MirrorEPSSFile)})
		}
	}
	if src.CVE != "" {
		items = append(items, item{"cve", src.CVE, filepath.Join(dir, filepath.FromSlash(feed.MirrorCVE))})
	}
	var ecosystems []string
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return results, err
		}
		r := Result{Name: it.name, From: it.from, To: it.to}
		prev := state[it.name]
		if _, err := os.Stat(it.to); err != nil {
			prev = feed.Fingerprint{} // the file went away: copy it again
		}
		fetched, err := f.Fetch(ctx, it.from, prev, func(done, total int64) { progress(it.name, done, total) })
		switch {
		case err != nil:
			r.Status, r.Error = status(err), err.Error()
		case fetched.Unchanged:
			r.Status, r.Bytes = "unchanged", fetched.Fingerprint.Size
			state[it.name] = fetched.Fingerprint
		default:
			r.Bytes = fetched.Fingerprint.Size
			if err := install(fetched.Path, it.to); err != nil {
				r.Status, r.Error = "failed", err.Error()
			} else {
				r.Status = "copied"
				state[it.name] = fetched.Fingerprint
			}
			fetched.Close()
		}
		if strings.HasPrefix(it.name, "osv/") && (r.Status == "copied" || r.Status == "unchanged") {
			ecosystems = append(ecosystems, strings.TrimPrefix(it.name, "osv/"))
		}
		results = append(results, r)
	}
	if len(ecosystems) > 0 {
		// The index that lets an HTTP server of this directory be a source.
		if err := writeAtomic(filepath.Join(dir, feed.MirrorOSV, "ecosystems.txt"), []byte(strings.Join(ecosystems, "\n")+"\n")); err != nil {
			return results, err
		}
	}
	data, _ := json.MarshalIndent(state, "", "  ")
	if err := writeAtomic(filepath.Join(dir, stateFile), data); err != nil {
		return results, err
	}
	return results, nil
}

func status(err error) string {
	if errors.Is(err, feed.ErrNotFound) {
		return "missing"
	}
	return "failed"
}

// install copies a fetched file to its place in the mirror.
func install(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(to), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), to)
}

func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
