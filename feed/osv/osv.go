// Package osv parses OSV records (https://ossf.github.io/osv-schema/) and the
// osv.dev export zips that hold them, into advisories normalised for
// matching: every range validated in its ecosystem's version order, every
// CVSS vector scored, vendor severities kept beside them.
package osv

import (
	"archive/zip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/osv-scalibr/semantic"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/feed"
	"github.com/vigil-project/vigil/score"
)

// Advisory is one OSV record, normalised.
type Advisory struct {
	ID             string                 `json:"id"`
	Aliases        []string               `json:"aliases,omitempty"`
	Upstream       []string               `json:"upstream,omitempty"`
	Related        []string               `json:"related,omitempty"`
	Summary        string                 `json:"summary,omitempty"`
	Details        string                 `json:"details,omitempty"`
	Published      time.Time              `json:"published,omitzero"`
	Modified       time.Time              `json:"modified,omitzero"`
	Withdrawn      *time.Time             `json:"withdrawn,omitempty"`
	CVSS           []vigil.CVSS           `json:"cvss,omitempty"`
	VendorSeverity []vigil.VendorSeverity `json:"vendorSeverity,omitempty"`
	CWEs           []string               `json:"cwes,omitempty"`
	References     []vigil.Reference      `json:"references,omitempty"`
	Affected       []vigil.Affected       `json:"affected,omitempty"`
	// Ecosystems are the supported ecosystems the record names, including
	// those of affected entries that were dropped as unusable.
	Ecosystems []string `json:"ecosystems,omitempty"`
}

// MaxRecordSize bounds one record's JSON; osv.dev's largest records are a few
// MiB (long version lists).
const MaxRecordSize = 32 << 20

// record is the OSV schema, as much of it as Vigil reads.
type record struct {
	ID        string          `json:"id"`
	Modified  string          `json:"modified"`
	Published string          `json:"published"`
	Withdrawn string          `json:"withdrawn"`
	Aliases   []string        `json:"aliases"`
	Upstream  []string        `json:"upstream"`
	Related   []string        `json:"related"`
	Summary   string          `json:"summary"`
	Details   string          `json:"details"`
	Severity  []severity      `json:"severity"`
	Affected  []affected      `json:"affected"`
	Refs      []reference     `json:"references"`
	DBSpec    json.RawMessage `json:"database_specific"`
}

type severity struct {
	Type  string `json:"type"`
	Score string `json:"score"`
}

type reference struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}

type affected struct {
	Package struct {
		Ecosystem string `json:"ecosystem"`
		Name      string `json:"name"`
		PURL      string `json:"purl"`
	} `json:"package"`
	Severity []severity `json:"severity"`
	Ranges   []struct {
		Type   string            `json:"type"`
		Events []json.RawMessage `json:"events"`
	} `json:"ranges"`
	Versions []string        `json:"versions"`
	EcoSpec  json.RawMessage `json:"ecosystem_specific"`
	DBSpec   json.RawMessage `json:"database_specific"`
}

var (
	cweRe = regexp.MustCompile(`^CWE-[0-9]{1,6}$`)
	idRe  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}$`)
)

// Parse parses one OSV record. Parts that are unusable on their own (an
// affected package in an ecosystem Vigil has no version order for, a range
// whose versions do not parse, a CVSS vector that does not score) are dropped
// and recorded in probs; a record that is unusable as a whole (not JSON, no
// id, nothing affected left) is an error.
func Parse(data []byte, probs *feed.Problems) (Advisory, error) {
	if probs == nil {
		probs = new(feed.Problems)
	}
	if len(data) > MaxRecordSize {
		return Advisory{}, fmt.Errorf("osv: record of %d bytes exceeds the %d byte limit", len(data), MaxRecordSize)
	}
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return Advisory{}, fmt.Errorf("osv: decode: %w", err)
	}
	if !idRe.MatchString(r.ID) {
		return Advisory{}, fmt.Errorf("osv: missing or malformed id %q", clip(r.ID))
	}
	a := Advisory{
		ID:       r.ID,
		Aliases:  cleanIDs(r.Aliases, r.ID),
		Upstream: cleanIDs(r.Upstream, r.ID),
		Related:  cleanIDs(r.Related, r.ID),
		Summary:  strings.TrimSpace(r.Summary),
		Details:  strings.TrimSpace(r.Details),
	}
	var err error
	if a.Modified, err = parseTime(r.Modified); err != nil {
		return Advisory{}, fmt.Errorf("osv: %s: modified: %w", r.ID, err)
	}
	if a.Published, err = parseTime(r.Published); err != nil {
		probs.Addf("osv: %s: published: %v", r.ID, err)
	}
	if r.Withdrawn != "" {
		t, err := parseTime(r.Withdrawn)
		if err != nil {
			// A withdrawal we cannot date is still a withdrawal.
			probs.Addf("osv: %s: withdrawn: %v", r.ID, err)
			t = a.Modified
		}
		a.Withdrawn = &t
	}
	a.CVSS, a.VendorSeverity = severities(r.ID, r.ID, r.Severity, probs)
	dbSpecific(&a, r.DBSpec)
	for _, ref := range r.Refs {
		if u := strings.TrimSpace(ref.URL); u != "" && len(u) < 4096 {
			a.References = append(a.References, vigil.Reference{Type: ref.Type, URL: u})
		}
	}
	for i, af := range r.Affected {
		if eco := strings.TrimSpace(af.Package.Ecosystem); eco != "" && Supported(eco) && !slices.Contains(a.Ecosystems, eco) {
			a.Ecosystems = append(a.Ecosystems, eco)
		}
		out, ok := parseAffected(r.ID, i, af, &a, probs)
		if ok {
			a.Affected = append(a.Affected, out)
		}
	}
	// A record none of whose affected entries is usable is kept: its text
	// and aliases are still true, and the dropped entries are counted.
	return a, nil
}

func parseAffected(id string, i int, af affected, a *Advisory, probs *feed.Problems) (vigil.Affected, bool) {
	eco, name := strings.TrimSpace(af.Package.Ecosystem), strings.TrimSpace(af.Package.Name)
	if eco == "" || name == "" {
		if af.Package.PURL == "" {
			probs.Addf("osv: %s: affected[%d]: no ecosystem or package name", id, i)
		}
		// Records keyed by PURL alone or by GIT ranges alone cannot be
		// matched by version; they are skipped like an unknown ecosystem.
		return vigil.Affected{}, false
	}
	if !Supported(eco) {
		probs.Addf("osv: %s: affected[%d]: unsupported ecosystem %q", id, i, clip(eco))
		return vigil.Affected{}, false
	}
	out := vigil.Affected{Ecosystem: eco, Package: name, PURL: af.Package.PURL, Advisory: id}
	for j, rg := range af.Ranges {
		r, err := parseRange(eco, rg.Type, rg.Events)
		if err != nil {
			probs.Addf("osv: %s: affected[%d] (%s %s): range %d: %v", id, i, eco, clip(name), j, err)
			continue
		}
		if r.Type != "GIT" {
			// An inverted interval is reported but kept: matching orders
			// events by version, and the range's other intervals stand.
			if err := checkOrder(eco, r.Events); err != nil {
				probs.Addf("osv: %s: affected[%d] (%s %s): range %d: %v", id, i, eco, clip(name), j, err)
			}
		}
		out.Ranges = append(out.Ranges, r)
	}
	for _, v := range af.Versions {
		if v = strings.TrimSpace(v); v != "" {
			out.Versions = append(out.Versions, v)
		}
	}
	if len(out.Ranges) == 0 && len(out.Versions) == 0 {
		if len(af.Ranges) > 0 {
			probs.Addf("osv: %s: affected[%d] (%s %s): no usable range left", id, i, eco, clip(name))
		} else {
			probs.Addf("osv: %s: affected[%d] (%s %s): no ranges and no versions", id, i, eco, clip(name))
		}
		return vigil.Affected{}, false
	}
	cv, vs := severities(id, id, af.Severity, probs)
	a.CVSS = appendNewCVSS(a.CVSS, cv...)
	a.VendorSeverity = append(a.VendorSeverity, vs...)
	if u := urgency(af.EcoSpec); u != "" {
		out.Severity = u
		a.VendorSeverity = appendVendor(a.VendorSeverity, vigil.VendorSeverity{Source: eco, Severity: u})
	}
	return out, true
}

// parseRange checks a range: its type, its events and that each version
// parses in the ecosystem's order.
func parseRange(eco, typ string, raw []json.RawMessage) (vigil.Range, error) {
	switch typ {
	case "ECOSYSTEM", "SEMVER", "GIT":
	default:
		return vigil.Range{}, fmt.Errorf("unknown range type %q", clip(typ))
	}
	r := vigil.Range{Type: typ}
	introduced := false
	for k, msg := range raw {
		var e map[string]string
		if err := json.Unmarshal(msg, &e); err != nil {
			return vigil.Range{}, fmt.Errorf("event %d: %w", k, err)
		}
		if len(e) != 1 {
			return vigil.Range{}, fmt.Errorf("event %d: want exactly one of introduced, fixed, last_affected, limit", k)
		}
		var ev vigil.Event
		for key, v := range e {
			v = strings.TrimSpace(v)
			if v == "" {
				return vigil.Range{}, fmt.Errorf("event %d: empty %s", k, key)
			}
			if typ != "GIT" && !(key == "introduced" && v == "0") && !(key == "limit" && v == "*") {
				if err := checkVersion(typ, eco, v); err != nil {
					return vigil.Range{}, fmt.Errorf("event %d: %s %q: %w", k, key, clip(v), err)
				}
			}
			switch key {
			case "introduced":
				ev.Introduced, introduced = v, true
			case "fixed":
				ev.Fixed = v
			case "last_affected":
				ev.LastAffected = v
			case "limit":
				ev.Limit = v
			default:
				return vigil.Range{}, fmt.Errorf("event %d: unknown event %q", k, clip(key))
			}
		}
		r.Events = append(r.Events, ev)
	}
	if !introduced {
		return vigil.Range{}, errors.New("no introduced event")
	}
	return r, nil
}

// checkOrder rejects a range whose fixed or last_affected version comes
// before the version it was introduced in.
func checkOrder(eco string, events []vigil.Event) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("version comparison panicked: %v", p)
		}
	}()
	lo := ""
	for _, e := range events {
		switch {
		case e.Introduced != "":
			lo = e.Introduced
		case e.Fixed != "" || e.LastAffected != "":
			hi := e.Fixed + e.LastAffected
			if lo == "" || lo == "0" {
				continue
			}
			v, perr := semantic.Parse(lo, eco)
			if perr != nil {
				return perr
			}
			c, cerr := v.CompareStr(hi)
			if cerr != nil {
				return cerr
			}
			if c > 0 {
				return fmt.Errorf("introduced %q comes after %q", clip(lo), clip(hi))
			}
		}
	}
	return nil
}

// Supported reports whether Vigil knows the version order of an OSV
// ecosystem ("Debian:12" counts as Debian).
func Supported(eco string) bool {
	_, err := semantic.Parse("0", eco)
	return !errors.Is(err, semantic.ErrUnsupportedEcosystem)
}

func checkVersion(typ, eco, v string) (err error) {
	defer func() {
		// The version parsers are third-party code fed untrusted input.
		if p := recover(); p != nil {
			err = fmt.Errorf("version parser panicked: %v", p)
		}
	}()
	if err := validVersion(typ, eco, v); err != nil {
		return err
	}
	_, err = semantic.Parse(v, eco)
	return err
}

func severities(id, source string, ss []severity, probs *feed.Problems) ([]vigil.CVSS, []vigil.VendorSeverity) {
	var cv []vigil.CVSS
	var vs []vigil.VendorSeverity
	for _, s := range ss {
		switch s.Type {
		case "CVSS_V2", "CVSS_V3", "CVSS_V4":
			c, err := score.Parse(s.Type, s.Score)
			if err != nil {
				probs.Addf("osv: %s: severity %s %q: %v", id, s.Type, clip(s.Score), err)
				continue
			}
			c.Source = source
			cv = appendNewCVSS(cv, c)
		default:
			// Ubuntu and others state severity in words.
			if t, sc := strings.TrimSpace(s.Type), strings.TrimSpace(s.Score); t != "" && sc != "" && len(sc) < 64 {
				vs = appendVendor(vs, vigil.VendorSeverity{Source: t, Severity: strings.ToUpper(sc)})
			}
		}
	}
	return cv, vs
}

func appendNewCVSS(list []vigil.CVSS, cs ...vigil.CVSS) []vigil.CVSS {
	for _, c := range cs {
		if !slices.ContainsFunc(list, func(o vigil.CVSS) bool { return o.Vector == c.Vector && o.Source == c.Source }) {
			list = append(list, c)
		}
	}
	return list
}

func appendVendor(list []vigil.VendorSeverity, v vigil.VendorSeverity) []vigil.VendorSeverity {
	if slices.Contains(list, v) {
		return list
	}
	return append(list, v)
}

// dbSpecific reads the database_specific fields that GitHub's advisories
// carry: a severity in words and CWE ids.
func dbSpecific(a *Advisory, raw json.RawMessage) {
	if len(raw) == 0 {
		return
	}
	var d struct {
		Severity any   `json:"severity"`
		CWEIDs   []any `json:"cwe_ids"`
	}
	if json.Unmarshal(raw, &d) != nil {
		return
	}
	if s, ok := d.Severity.(string); ok && s != "" && len(s) < 64 {
		src := "OSV"
		if strings.HasPrefix(a.ID, "GHSA-") {
			src = "GHSA"
		}
		a.VendorSeverity = appendVendor(a.VendorSeverity, vigil.VendorSeverity{Source: src, Severity: strings.ToUpper(s)})
	}
	for _, c := range d.CWEIDs {
		if s, ok := c.(string); ok && cweRe.MatchString(s) && !slices.Contains(a.CWEs, s) {
			a.CWEs = append(a.CWEs, s)
		}
	}
	slices.Sort(a.CWEs)
}

// urgency reads Debian's ecosystem_specific.urgency.
func urgency(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var d struct {
		Urgency any `json:"urgency"`
	}
	if json.Unmarshal(raw, &d) != nil {
		return ""
	}
	if s, ok := d.Urgency.(string); ok && len(s) < 64 {
		return strings.TrimSpace(s)
	}
	return ""
}

func cleanIDs(ids []string, self string) []string {
	var out []string
	for _, id := range ids {
		id = strings.TrimSpace(id)
		if id != self && idRe.MatchString(id) && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad timestamp %q", clip(s))
	}
	return t.UTC(), nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// ReadZip reads an osv.dev export zip (<Ecosystem>/all.zip): every *.json
// member is one record. Members that fail to decompress or parse are skipped
// and recorded in probs; a zip that cannot be opened at all is an error.
// Members are decompressed and parsed on all cores; fn is called from one
// goroutine at a time, in no particular order.
func ReadZip(ra io.ReaderAt, size int64, probs *feed.Problems, fn func(Advisory) error) (read, skipped int, err error) {
	zr, err := zip.NewReader(ra, size)
	if err != nil {
		return 0, 0, fmt.Errorf("osv: open zip: %w", err)
	}
	var files []*zip.File
	for _, f := range zr.File {
		if f.FileInfo().IsDir() || path.Ext(f.Name) != ".json" {
			continue
		}
		if f.UncompressedSize64 > MaxRecordSize {
			probs.Addf("osv: %s: %d bytes exceeds the record size limit", clip(f.Name), f.UncompressedSize64)
			skipped++
			continue
		}
		files = append(files, f)
	}
	workers := min(runtime.GOMAXPROCS(0), 8)
	next := make(chan *zip.File)
	out := make(chan Advisory, 64)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range next {
				data, err := readMember(f)
				if err != nil {
					probs.Addf("osv: %s: %v", clip(f.Name), err)
					continue
				}
				a, err := Parse(data, probs)
				if err != nil {
					probs.Addf("%s: %v", clip(f.Name), err)
					continue
				}
				select {
				case out <- a:
				case <-done:
					return
				}
			}
		}()
	}
	go func() {
		defer close(next)
		for _, f := range files {
			select {
			case next <- f:
			case <-done:
				return
			}
		}
	}()
	go func() { wg.Wait(); close(out) }()
	n := 0
	var ferr error
	for a := range out {
		if ferr != nil {
			continue
		}
		if ferr = fn(a); ferr != nil {
			close(done)
			continue
		}
		n++
	}
	if ferr != nil {
		return n, skipped, ferr
	}
	return n, skipped + len(files) - n, nil
}

func readMember(f *zip.File) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	// The header's size may lie: bound what we read whatever it says.
	data, err := io.ReadAll(io.LimitReader(rc, MaxRecordSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxRecordSize {
		return nil, errors.New("exceeds the record size limit")
	}
	return data, nil
}
