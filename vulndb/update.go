package vulndb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/feed"
	"github.com/vigil-project/vigil/feed/cve"
	"github.com/vigil-project/vigil/feed/epss"
	"github.com/vigil-project/vigil/feed/kev"
	"github.com/vigil-project/vigil/feed/osv"
)

// Options configures an update.
type Options struct {
	// Path is the database file.
	Path    string
	Sources feed.Sources
	Fetcher *feed.Fetcher
	// Force re-ingests every source even if its content is unchanged.
	Force bool
	// Progress, if set, is told what the update is doing.
	Progress func(Progress)
	Now      func() time.Time
}

// Progress is one step of an update, for a progress bar.
type Progress struct {
	Source string // "osv/npm", "kev", …; empty for whole-database steps
	Step   string // "fetch", "ingest", "merge", "write"
	Done   int64
	Total  int64 // -1 when unknown
}

// SourceResult is what an update did with one source.
type SourceResult struct {
	Name     string `json:"name"`
	Location string `json:"location"`
	// Status is "updated", "unchanged", "missing" (not found or not
	// configured; data from an earlier update is kept), or "failed" (data
	// from an earlier update is kept).
	Status  string `json:"status"`
	Records int    `json:"records"`
	// Skipped counts records dropped whole; Problems counts every problem,
	// including parts of kept records (a range, a vector) that were dropped.
	Skipped  int      `json:"skipped"`
	Problems int      `json:"problems"`
	Error    string   `json:"error,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

// Summary is what an update did.
type Summary struct {
	Path     string         `json:"path"`
	Changed  bool           `json:"changed"`
	Revision int64          `json:"revision"`
	Vulns    int            `json:"vulnerabilities"`
	Sources  []SourceResult `json:"sources"`
	// ChangedPackages counts the (ecosystem, package) keys whose advisories
	// changed in this revision.
	ChangedPackages int `json:"changedPackages"`
	// ChangedVulns counts the vulnerabilities whose record, KEV entry or
	// EPSS score changed.
	ChangedVulns int           `json:"changedVulns"`
	Duration     time.Duration `json:"duration"`
	Warnings     []string      `json:"warnings,omitempty"`
}

type sourceState struct {
	fp feed.Fingerprint
}

// Update brings the database at opts.Path up to date with the sources. It
// fetches each source, re-ingests only those whose content changed, and
// rebuilds the merged view if anything did. The new file is written beside
// the old one and renamed over it, so a failed or interrupted update leaves
// the previous database intact and usable.
func Update(ctx context.Context, opts Options) (*Summary, error) {
	start := time.Now()
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Fetcher == nil {
		opts.Fetcher = &feed.Fetcher{}
	}
	if opts.Progress == nil {
		opts.Progress = func(Progress) {}
	}
	dir := filepath.Dir(opts.Path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("vulndb: %w", err)
	}
	if opts.Fetcher.TempDir == "" {
		opts.Fetcher.TempDir = dir
	}
	unlock, err := lockFile(opts.Path + ".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	removeStale(opts.Path, opts.Fetcher.TempDir)

	sum := &Summary{Path: opts.Path}
	prev, prevRev, err := readState(opts.Path)
	if err != nil {
		sum.Warnings = append(sum.Warnings, fmt.Sprintf("existing database not reusable (%v): rebuilding it", err))
		// Revisions keep counting up across a rebuild: stores remember
		// the revision each resource was matched against.
		prev, prevRev = nil, rawRevision(opts.Path)
	}
	exists := prev != nil
	if opts.Force {
		for k := range prev {
			prev[k] = sourceState{}
		}
	}

	// Fetch: each source becomes a local file, or "unchanged".
	type job struct {
		name, kind, loc string
		fetched         *feed.Fetched
		res             *SourceResult
	}
	var jobs []*job
	addJob := func(name, kind, loc string) *job {
		j := &job{name: name, kind: kind, loc: loc, res: &SourceResult{Name: name, Location: loc}}
		jobs = append(jobs, j)
		return j
	}
	defer func() {
		for _, j := range jobs {
			j.fetched.Close()
		}
	}()
	if opts.Sources.OSV == "" {
		sum.Sources = append(sum.Sources, SourceResult{Name: "osv", Status: "missing", Error: "not configured"})
	} else if ecos, err := osv.Ecosystems(ctx, opts.Fetcher, opts.Sources.OSV); err != nil {
		sum.Sources = append(sum.Sources, SourceResult{Name: "osv", Location: opts.Sources.OSV, Status: statusOf(err), Error: err.Error()})
	} else {
		listed := map[string]bool{}
		for _, e := range ecos {
			if !osv.Supported(e) {
				sum.Sources = append(sum.Sources, SourceResult{Name: "osv/" + e, Location: osv.ZipPath(opts.Sources.OSV, e), Status: "skipped", Error: "Vigil has no version order for this ecosystem"})
				continue
			}
			listed["osv/"+e] = true
			addJob("osv/"+e, "osv", osv.ZipPath(opts.Sources.OSV, e))
		}
		for name := range prev {
			if strings.HasPrefix(name, "osv/") && !listed[name] {
				sum.Sources = append(sum.Sources, SourceResult{Name: name, Location: opts.Sources.OSV, Status: "missing", Error: "no longer listed by the source; earlier data kept"})
			}
		}
	}
	for _, s := range []struct{ name, loc string }{{"kev", opts.Sources.KEV}, {"epss", opts.Sources.EPSS}, {"cve", opts.Sources.CVE}} {
		if s.loc == "" {
			sum.Sources = append(sum.Sources, SourceResult{Name: s.name, Status: "missing", Error: "not configured"})
			continue
		}
		loc := s.loc
		if s.name == "epss" {
			if loc, err = feed.ResolveEPSS(s.loc); err != nil {
				sum.Sources = append(sum.Sources, SourceResult{Name: s.name, Location: s.loc, Status: statusOf(err), Error: err.Error()})
				continue
			}
		}
		addJob(s.name, s.name, loc)
	}
	anyChange := !exists
	for _, j := range jobs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		opts.Progress(Progress{Source: j.name, Step: "fetch", Total: -1})
		f, err := opts.Fetcher.Fetch(ctx, j.loc, prev[j.name].fp, func(done, total int64) {
			opts.Progress(Progress{Source: j.name, Step: "fetch", Done: done, Total: total})
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			j.res.Status, j.res.Error = statusOf(err), err.Error()
			continue
		}
		j.fetched = f
		if f.Unchanged {
			j.res.Status = "unchanged"
			continue
		}
		anyChange = true
	}

	reachable := false
	for _, j := range jobs {
		if j.fetched != nil {
			reachable = true
		}
	}
	if !reachable {
		var errs []string
		for _, r := range sum.Sources {
			if r.Error != "" && r.Status != "skipped" {
				errs = append(errs, r.Name+": "+r.Error)
			}
		}
		for _, j := range jobs {
			errs = append(errs, j.name+": "+j.res.Error)
		}
		if len(errs) > 3 {
			errs = append(errs[:3], fmt.Sprintf("and %d more", len(errs)-3))
		}
		return nil, vigil.Errorf(vigil.EUNAVAILABLE, "vulndb: no source could be read, the database is unchanged: %s", strings.Join(errs, "; "))
	}

	now := opts.Now().UTC()
	if !anyChange {
		// Nothing to ingest: record that the sources were checked.
		for _, j := range jobs {
			sum.Sources = append(sum.Sources, *j.res)
		}
		if err := touch(opts.Path, now, sum.Sources); err != nil {
			return nil, err
		}
		sum.Revision = prevRev
		sum.Duration = time.Since(start)
		db, err := Open(opts.Path)
		if err == nil {
			sum.Vulns, _ = db.count("vulns")
			db.Close()
		}
		return sum, nil
	}

	// Build the new file beside the old one.
	tmp, err := os.CreateTemp(dir, filepath.Base(opts.Path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("vulndb: %w", err)
	}
	tmpPath := tmp.Name()
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("vulndb: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			os.Remove(tmpPath)
			os.Remove(tmpPath + "-journal")
		}
	}()
	if exists {
		if err := copyInto(tmp, opts.Path); err != nil {
			tmp.Close()
			return nil, fmt.Errorf("vulndb: copy previous database: %w", err)
		}
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", "file:"+tmpPath+"?_pragma=journal_mode(MEMORY)&_pragma=synchronous(OFF)&_pragma=cache_size(-16384)")
	if err != nil {
		return nil, fmt.Errorf("vulndb: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("vulndb: %w", err)
	}
	defer tx.Rollback()
	if !exists {
		if _, err := tx.ExecContext(ctx, schema); err != nil {
			return nil, fmt.Errorf("vulndb: create schema: %w", err)
		}
	}
	derivedDirty := !exists
	for _, j := range jobs {
		if j.fetched == nil || j.fetched.Unchanged {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		probs := new(feed.Problems)
		opts.Progress(Progress{Source: j.name, Step: "ingest", Total: j.fetched.Fingerprint.Size})
		if _, err := tx.ExecContext(ctx, "SAVEPOINT src"); err != nil {
			return nil, err
		}
		n, skipped, date, err := ingest(ctx, tx, j.kind, j.name, j.fetched.Path, probs, func(done, total int64) {
			opts.Progress(Progress{Source: j.name, Step: "ingest", Done: done, Total: total})
		})
		if err == nil {
			err = saveSource(ctx, tx, j.name, j.kind, j.loc, j.fetched.Fingerprint, n, skipped, probs, date, now)
		}
		if err != nil {
			if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO src; RELEASE src"); rerr != nil {
				return nil, rerr
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			j.res.Status, j.res.Error = "failed", err.Error()
			j.res.Problems, j.res.Warnings = probs.Count(), probs.First()
			continue
		}
		if _, err := tx.ExecContext(ctx, "RELEASE src"); err != nil {
			return nil, err
		}
		j.res.Status, j.res.Records, j.res.Skipped, j.res.Problems, j.res.Warnings = "updated", n, skipped, probs.Count(), probs.First()
		if j.kind == "osv" || j.kind == "cve" {
			derivedDirty = true
		}
	}
	for _, j := range jobs {
		sum.Sources = append(sum.Sources, *j.res)
	}
	changedAnything := derivedDirty || slices.ContainsFunc(sum.Sources, func(s SourceResult) bool { return s.Status == "updated" })
	if !changedAnything && exists {
		// Every changed source failed to ingest: keep the file as it is.
		tx.Rollback()
		db.Close()
		if err := touch(opts.Path, now, sum.Sources); err != nil {
			return nil, err
		}
		sum.Revision = prevRev
		if old, err := Open(opts.Path); err == nil {
			sum.Vulns, _ = old.count("vulns")
			old.Close()
		}
		sum.Duration = time.Since(start)
		return sum, nil
	}
	rev := prevRev
	if changedAnything {
		rev++
	}
	if derivedDirty {
		opts.Progress(Progress{Step: "merge", Total: -1})
		n, err := rebuildDerived(ctx, tx, rev)
		if err != nil {
			return nil, err
		}
		sum.ChangedPackages = n
	}
	if changedAnything {
		opts.Progress(Progress{Step: "changes", Total: -1})
		n, err := recordVulnChanges(ctx, tx, rev, exists)
		if err != nil {
			return nil, err
		}
		sum.ChangedVulns = n
	}
	lastUpdate, _ := json.Marshal(sum.Sources)
	for k, v := range map[string]string{
		"last_update":    string(lastUpdate),
		"schema_version": strconv.Itoa(SchemaVersion),
		"checked_at":     now.Format(time.RFC3339),
		"revision":       strconv.FormatInt(rev, 10),
	} {
		if _, err := tx.ExecContext(ctx, "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", k, v); err != nil {
			return nil, err
		}
	}
	if changedAnything || !exists {
		if _, err := tx.ExecContext(ctx, "INSERT OR REPLACE INTO meta(key, value) VALUES ('built_at', ?)", now.Format(time.RFC3339)); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("vulndb: commit: %w", err)
	}
	opts.Progress(Progress{Step: "write", Total: -1})
	if exists {
		// Reclaim the pages of replaced rows.
		if _, err := db.ExecContext(ctx, "VACUUM"); err != nil {
			return nil, fmt.Errorf("vulndb: vacuum: %w", err)
		}
	}
	if err := db.Close(); err != nil {
		return nil, fmt.Errorf("vulndb: close: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := syncFile(tmpPath); err != nil {
		return nil, err
	}
	if err := os.Rename(tmpPath, opts.Path); err != nil {
		return nil, fmt.Errorf("vulndb: install new database: %w", err)
	}
	committed = true
	if err := syncFile(dir); err != nil {
		return nil, err
	}
	sum.Changed = changedAnything
	sum.Revision = rev
	if fresh, err := Open(opts.Path); err == nil {
		sum.Vulns, _ = fresh.count("vulns")
		fresh.Close()
	}
	sum.Duration = time.Since(start)
	return sum, nil
}

func statusOf(err error) string {
	if errors.Is(err, feed.ErrNotFound) {
		return "missing"
	}
	return "failed"
}

// ingest replaces one source's rows with the content of the file at path.
func ingest(ctx context.Context, tx *sql.Tx, kind, name, path string, probs *feed.Problems, progress feed.Progress) (int, int, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, "", err
	}
	switch kind {
	case "osv":
		if _, err := tx.ExecContext(ctx, "DELETE FROM advisories WHERE source = ?", name); err != nil {
			return 0, 0, "", err
		}
		ins, err := tx.PrepareContext(ctx, "INSERT OR REPLACE INTO advisories(source, id, modified, body) VALUES (?, ?, ?, ?)")
		if err != nil {
			return 0, 0, "", err
		}
		defer ins.Close()
		var newest time.Time
		n, skipped, err := osv.ReadZip(f, st.Size(), probs, func(a osv.Advisory) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			body, err := encode(a)
			if err != nil {
				return err
			}
			if a.Modified.After(newest) {
				newest = a.Modified
			}
			if a.Published.After(newest) {
				// Some feeds (Go's) leave modified unset.
				newest = a.Published
			}
			_, err = ins.ExecContext(ctx, name, a.ID, a.Modified.Format(time.RFC3339), body)
			return err
		})
		if err != nil {
			return 0, 0, "", err
		}
		if n == 0 && skipped > 0 {
			return 0, 0, "", fmt.Errorf("no usable record in %s (%d skipped)", path, skipped)
		}
		return n, skipped, dateOf(newest), nil
	case "kev":
		cat, err := kev.Parse(&countingReader{r: f, total: st.Size(), progress: progress}, probs)
		if err != nil {
			return 0, 0, "", err
		}
		if len(cat.Entries) == 0 {
			return 0, 0, "", fmt.Errorf("no usable entry in %s", path)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM kev"); err != nil {
			return 0, 0, "", err
		}
		ins, err := tx.PrepareContext(ctx, "INSERT OR REPLACE INTO kev(cve, body) VALUES (?, ?)")
		if err != nil {
			return 0, 0, "", err
		}
		defer ins.Close()
		for _, e := range cat.Entries {
			body, err := json.Marshal(e)
			if err != nil {
				return 0, 0, "", err
			}
			if _, err := ins.ExecContext(ctx, e.CVE, string(body)); err != nil {
				return 0, 0, "", err
			}
		}
		date := cat.Version
		if !cat.Released.IsZero() {
			date = cat.Released.UTC().Format(time.RFC3339)
		}
		return len(cat.Entries), probs.Count(), date, nil
	case "epss":
		if _, err := tx.ExecContext(ctx, "DELETE FROM epss"); err != nil {
			return 0, 0, "", err
		}
		ins, err := tx.PrepareContext(ctx, "INSERT OR REPLACE INTO epss(cve, score, percentile) VALUES (?, ?, ?)")
		if err != nil {
			return 0, 0, "", err
		}
		defer ins.Close()
		n := 0
		hdr, err := epss.Parse(&countingReader{r: f, total: st.Size(), progress: progress}, probs, func(id string, s vigil.EPSS) error {
			key, ok := cveNumber(id)
			if !ok {
				probs.Addf("epss: %q is not a CVE id", id)
				return nil
			}
			if n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			n++
			_, err := ins.ExecContext(ctx, key, int64(s.Score*1e9+0.5), int64(s.Percentile*1e9+0.5))
			return err
		})
		if err != nil {
			return 0, 0, "", err
		}
		if n == 0 {
			return 0, 0, "", fmt.Errorf("no usable row in %s", path)
		}
		_, err = tx.ExecContext(ctx, "INSERT OR REPLACE INTO meta(key, value) VALUES ('epss_date', ?), ('epss_model', ?)", hdr.ScoreDate, hdr.ModelVersion)
		return n, probs.Count(), hdr.ScoreDate, err
	case "cve":
		if _, err := tx.ExecContext(ctx, "DELETE FROM cves"); err != nil {
			return 0, 0, "", err
		}
		ins, err := tx.PrepareContext(ctx, "INSERT OR REPLACE INTO cves(id, body) VALUES (?, ?)")
		if err != nil {
			return 0, 0, "", err
		}
		defer ins.Close()
		var newest time.Time
		var recordProblems int
		n, err := cve.ReadZip(f, st.Size(), probs, func(r cve.Record) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			for _, w := range r.Warnings {
				recordProblems++
				probs.Addf("%s: %s", r.ID, w)
			}
			body, err := encode(r)
			if err != nil {
				return err
			}
			if r.DateUpdated.After(newest) {
				newest = r.DateUpdated
			}
			_, err = ins.ExecContext(ctx, r.ID, body)
			return err
		})
		if err != nil {
			return 0, 0, "", err
		}
		skipped := probs.Count() - recordProblems
		if n == 0 && skipped > 0 {
			return 0, 0, "", fmt.Errorf("no usable record in %s (%d skipped)", path, skipped)
		}
		return n, skipped, dateOf(newest), nil
	}
	return 0, 0, "", fmt.Errorf("unknown source kind %q", kind)
}

func dateOf(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func saveSource(ctx context.Context, tx *sql.Tx, name, kind, loc string, fp feed.Fingerprint, n, skipped int, probs *feed.Problems, date string, now time.Time) error {
	fpj, _ := json.Marshal(fp)
	w, _ := json.Marshal(probs.First())
	_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO sources(name, kind, location, fingerprint, records, skipped, problems, source_date, ingested_at, warnings)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, name, kind, loc, string(fpj), n, skipped, probs.Count(), date, now.Format(time.RFC3339), string(w))
	return err
}

// rebuildDerived recomputes the merged view from the ingested records and
// records which (ecosystem, package) keys changed. It returns their number.
func rebuildDerived(ctx context.Context, tx *sql.Tx, rev int64) (int, error) {
	// Records of the same id can come from several exports (a GHSA listed
	// under npm and Maven): the newest wins.
	rows, err := tx.QueryContext(ctx, "SELECT id, body FROM advisories ORDER BY id, modified DESC")
	if err != nil {
		return 0, err
	}
	var advs []osv.Advisory
	last := ""
	for rows.Next() {
		var id string
		var body []byte
		if err := rows.Scan(&id, &body); err != nil {
			rows.Close()
			return 0, err
		}
		if id == last {
			continue
		}
		last = id
		var a osv.Advisory
		if err := decode(body, &a); err != nil {
			rows.Close()
			return 0, err
		}
		advs = append(advs, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	cves := map[string]cve.Record{}
	rows, err = tx.QueryContext(ctx, "SELECT body FROM cves")
	if err != nil {
		return 0, err
	}
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			rows.Close()
			return 0, err
		}
		var r cve.Record
		if err := decode(body, &r); err != nil {
			rows.Close()
			return 0, err
		}
		cves[r.ID] = r
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}

	m := merge(advs, cves)

	for _, t := range []string{"vulns", "ids", "affected", "ecosystems"} {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+t); err != nil {
			return 0, err
		}
	}
	insV, err := tx.PrepareContext(ctx, "INSERT INTO vulns(id, modified, body) VALUES (?, ?, ?)")
	if err != nil {
		return 0, err
	}
	defer insV.Close()
	insI, err := tx.PrepareContext(ctx, "INSERT OR IGNORE INTO ids(alias, vuln, kind) VALUES (?, ?, ?)")
	if err != nil {
		return 0, err
	}
	defer insI.Close()
	insA, err := tx.PrepareContext(ctx, "INSERT INTO affected(ecosystem, key, vuln, seq, body) VALUES (?, ?, ?, ?, ?)")
	if err != nil {
		return 0, err
	}
	defer insA.Close()
	type pkgKey struct{ eco, key string }
	digests := map[pkgKey][]byte{}
	ecoVulns := map[string]map[string]bool{}
	for _, v := range m.vulns {
		// The affected entries live in their own table; the entry's body
		// holds the rest.
		affected := v.Affected
		v.Affected = nil
		body, err := encode(v)
		v.Affected = affected
		if err != nil {
			return 0, err
		}
		if _, err := insV.ExecContext(ctx, v.ID, v.Modified.Format(time.RFC3339), body); err != nil {
			return 0, err
		}
		for _, id := range append([]string{v.ID}, v.Aliases...) {
			if _, err := insI.ExecContext(ctx, id, v.ID, 0); err != nil {
				return 0, err
			}
		}
		for seq, af := range v.Affected {
			b, err := encodeSmall(af)
			if err != nil {
				return 0, err
			}
			k := pkgKey{af.Ecosystem, PackageKey(af.Ecosystem, af.Package)}
			if _, err := insA.ExecContext(ctx, k.eco, k.key, v.ID, seq, b); err != nil {
				return 0, err
			}
			h := sha256.New()
			h.Write(digests[k])
			h.Write([]byte(v.ID))
			h.Write(b)
			digests[k] = h.Sum(nil)
			if ecoVulns[k.eco] == nil {
				ecoVulns[k.eco] = map[string]bool{}
			}
			ecoVulns[k.eco][v.ID] = true
		}
	}
	for adv, vs := range m.related {
		for _, v := range vs {
			if _, err := insI.ExecContext(ctx, adv, v, 1); err != nil {
				return 0, err
			}
		}
	}
	// Ecosystem statistics.
	pkgs := map[string]int{}
	for k := range digests {
		pkgs[k.eco]++
	}
	ecos := map[string]bool{}
	for e := range m.ecosystems {
		ecos[e] = true
	}
	for e := range ecoVulns {
		ecos[e] = true
	}
	for e := range ecos {
		if _, err := tx.ExecContext(ctx, "INSERT INTO ecosystems(name, advisories, vulns, packages) VALUES (?, ?, ?, ?)",
			e, m.ecosystems[e], len(ecoVulns[e]), pkgs[e]); err != nil {
			return 0, err
		}
	}
	// Diff the per-key digests against the previous revision's.
	old := map[pkgKey][]byte{}
	rows, err = tx.QueryContext(ctx, "SELECT ecosystem, key, digest FROM package_digests")
	if err != nil {
		return 0, err
	}
	for rows.Next() {
		var k pkgKey
		var d []byte
		if err := rows.Scan(&k.eco, &k.key, &d); err != nil {
			rows.Close()
			return 0, err
		}
		old[k] = d
	}
	rows.Close()
	var changed []pkgKey
	for k, d := range digests {
		if !bytes.Equal(old[k], d) {
			changed = append(changed, k)
		}
	}
	for k := range old {
		if _, ok := digests[k]; !ok {
			changed = append(changed, k)
		}
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM package_digests"); err != nil {
		return 0, err
	}
	insD, err := tx.PrepareContext(ctx, "INSERT INTO package_digests(ecosystem, key, digest) VALUES (?, ?, ?)")
	if err != nil {
		return 0, err
	}
	defer insD.Close()
	for k, d := range digests {
		if _, err := insD.ExecContext(ctx, k.eco, k.key, d); err != nil {
			return 0, err
		}
	}
	// Keep the change sets of the last few revisions only.
	if _, err := tx.ExecContext(ctx, "DELETE FROM changes WHERE revision <= ?", rev-keptRevisions); err != nil {
		return 0, err
	}
	insC, err := tx.PrepareContext(ctx, "INSERT OR IGNORE INTO changes(revision, ecosystem, key) VALUES (?, ?, ?)")
	if err != nil {
		return 0, err
	}
	defer insC.Close()
	for _, k := range changed {
		if _, err := insC.ExecContext(ctx, rev, k.eco, k.key); err != nil {
			return 0, err
		}
	}
	return len(changed), nil
}

// readState reads the fingerprints and revision of an existing database. A
// missing file gives a nil state; an unreadable one, an error.
func readState(path string) (map[string]sourceState, int64, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	db, err := Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer db.Close()
	st := map[string]sourceState{}
	rows, err := db.sql.Query("SELECT name, fingerprint FROM sources")
	if err != nil {
		return nil, 0, fmt.Errorf("vulndb: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, fpj string
		if err := rows.Scan(&name, &fpj); err != nil {
			return nil, 0, err
		}
		var fp feed.Fingerprint
		if err := json.Unmarshal([]byte(fpj), &fp); err != nil {
			return nil, 0, fmt.Errorf("vulndb: source %s: %w", name, err)
		}
		st[name] = sourceState{fp: fp}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	return st, db.meta.Revision, nil
}

// removeStale deletes what an update killed outright left behind: its
// temporary database and downloads. The caller holds the lock.
func removeStale(dbPath, tempDir string) {
	stale, _ := filepath.Glob(dbPath + ".tmp-*")
	if tempDir != "" {
		// Downloads are shared by the databases of a directory: only those
		// a day old are surely abandoned.
		more, _ := filepath.Glob(filepath.Join(tempDir, "vigil-feed-*"))
		for _, p := range more {
			if st, err := os.Stat(p); err == nil && time.Since(st.ModTime()) > 24*time.Hour {
				stale = append(stale, p)
			}
		}
	}
	for _, p := range stale {
		os.Remove(p)
	}
}

// touch records a check that found nothing new, in one SQLite transaction.
func touch(path string, now time.Time, results []SourceResult) error {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("vulndb: %w", err)
	}
	defer db.Close()
	last, _ := json.Marshal(results)
	if _, err := db.Exec("INSERT OR REPLACE INTO meta(key, value) VALUES ('checked_at', ?), ('last_update', ?)", now.Format(time.RFC3339), string(last)); err != nil {
		return fmt.Errorf("vulndb: record check: %w", err)
	}
	return db.Close()
}

func copyInto(dst *os.File, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	_, err = io.Copy(dst, in)
	return err
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("vulndb: sync: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("vulndb: sync: %w", err)
	}
	return nil
}

// lockFile serialises updates of one database between processes.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("vulndb: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, vigil.Errorf(vigil.ECONFLICT, "vulndb: another update of %s is running", strings.TrimSuffix(path, ".lock"))
		}
		return nil, fmt.Errorf("vulndb: lock: %w", err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// countingReader reports progress through a file being parsed.
type countingReader struct {
	r        io.Reader
	total    int64
	done     int64
	progress feed.Progress
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.done += int64(n)
	if c.progress != nil && n > 0 {
		c.progress(c.done, c.total)
	}
	return n, err
}

// rawRevision reads the revision of a database this version cannot reuse
// (another schema), or 0.
func rawRevision(path string) int64 {
	sdb, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=query_only(1)")
	if err != nil {
		return 0
	}
	defer sdb.Close()
	var v string
	if sdb.QueryRow("SELECT value FROM meta WHERE key = 'revision'").Scan(&v) != nil {
		return 0
	}
	n, _ := strconv.ParseInt(v, 10, 64)
	return max(n, 0)
}

// epssStep is the EPSS resolution at which a score change counts as a
// change of the vulnerability: finer daily drift is not news.
const epssStep = 1000

// recordVulnChanges digests what each vulnerability's findings show (its
// merged record, KEV entry and EPSS score) and records, for revision rev,
// the vulnerabilities whose digest differs from the previous revision's.
// Without a previous revision (hadPrev false, or no digests kept) it
// records none and notes in meta that change sets start after rev.
func recordVulnChanges(ctx context.Context, tx *sql.Tx, rev int64, hadPrev bool) (int, error) {
	old, err := readPairs[string, []byte](ctx, tx, "SELECT vuln, digest FROM vuln_digests")
	if err != nil {
		return 0, err
	}
	kevs, err := readPairs[string, string](ctx, tx, "SELECT cve, body FROM kev")
	if err != nil {
		return 0, err
	}
	epssBy, err := readPairs[int64, int64](ctx, tx, "SELECT cve, score FROM epss")
	if err != nil {
		return 0, err
	}
	// The CVE ids of each vulnerability: its own and its aliases.
	cvesOf := map[string][]string{}
	rows, err := tx.QueryContext(ctx, "SELECT alias, vuln FROM ids WHERE kind = 0 AND alias LIKE 'CVE-%' ORDER BY vuln, alias")
	if err != nil {
		return 0, err
	}
	for rows.Next() {
		var a, v string
		if err := rows.Scan(&a, &v); err != nil {
			rows.Close()
			return 0, err
		}
		cvesOf[v] = append(cvesOf[v], strings.ToUpper(a))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	digests := map[string][]byte{}
	rows, err = tx.QueryContext(ctx, "SELECT id, body FROM vulns")
	if err != nil {
		return 0, err
	}
	for rows.Next() {
		var id string
		var body []byte
		if err := rows.Scan(&id, &body); err != nil {
			rows.Close()
			return 0, err
		}
		h := sha256.New()
		h.Write(body)
		for _, c := range cvesOf[id] {
			fmt.Fprintf(h, "\x00%s\x00%s", c, kevs[c])
			if k, ok := cveNumber(c); ok {
				if sc, ok := epssBy[k]; ok {
					fmt.Fprintf(h, "\x00%d", (sc+500_000)/(1_000_000_000/epssStep))
				}
			}
		}
		digests[id] = h.Sum(nil)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	var changed []string
	if hadPrev && len(old) > 0 {
		for v, d := range digests {
			if !bytes.Equal(old[v], d) {
				changed = append(changed, v)
			}
		}
		for v := range old {
			if _, ok := digests[v]; !ok {
				changed = append(changed, v)
			}
		}
	} else if _, err := tx.ExecContext(ctx, "INSERT OR REPLACE INTO meta(key, value) VALUES ('changes_since', ?)", strconv.FormatInt(rev+1, 10)); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM vuln_digests"); err != nil {
		return 0, err
	}
	ins, err := tx.PrepareContext(ctx, "INSERT INTO vuln_digests(vuln, digest) VALUES (?, ?)")
	if err != nil {
		return 0, err
	}
	defer ins.Close()
	for v, d := range digests {
		if _, err := ins.ExecContext(ctx, v, d); err != nil {
			return 0, err
		}
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM vuln_changes WHERE revision <= ?", rev-keptRevisions); err != nil {
		return 0, err
	}
	insC, err := tx.PrepareContext(ctx, "INSERT OR IGNORE INTO vuln_changes(revision, vuln) VALUES (?, ?)")
	if err != nil {
		return 0, err
	}
	defer insC.Close()
	for _, v := range changed {
		if _, err := insC.ExecContext(ctx, rev, v); err != nil {
			return 0, err
		}
	}
	return len(changed), nil
}

// readPairs reads a query of two columns, on a transaction or a pool,
// into a map from the first to the second.
func readPairs[K comparable, V any](ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, query string) (map[K]V, error) {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[K]V{}
	for rows.Next() {
		var k K
		var v V
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, rows.Err()
}
