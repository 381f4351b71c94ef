package vulndb

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/vigil-project/vigil/feed"
)

// DefaultMaxAge is how old a database may be before it is stale.
const DefaultMaxAge = 24 * time.Hour

// Status describes a database: what `vigil db status` prints.
type Status struct {
	Path          string    `json:"path"`
	SchemaVersion int       `json:"schemaVersion"`
	Revision      int64     `json:"revision"`
	BuiltAt       time.Time `json:"builtAt"`
	CheckedAt     time.Time `json:"checkedAt"`
	// Stale is set when the last successful check of the sources is older
	// than MaxAge.
	Stale           bool   `json:"stale"`
	MaxAge          string `json:"maxAge"`
	SizeBytes       int64  `json:"sizeBytes"`
	Vulnerabilities int    `json:"vulnerabilities"`
	KEVEntries      int    `json:"kevEntries"`
	EPSSScores      int    `json:"epssScores"`
	CVERecords      int    `json:"cveRecords"`
	// Ecosystems maps each OSV ecosystem name to the number of advisory
	// records that affect a package in it.
	Ecosystems map[string]int `json:"ecosystems"`
	// EcosystemDetails adds the number of vulnerabilities and of distinct
	// packages per ecosystem.
	EcosystemDetails map[string]EcosystemStatus `json:"ecosystemDetails"`
	Sources          []SourceStatus             `json:"sources"`
	// LastUpdate is what the most recent update did with each source,
	// including those it could not read.
	LastUpdate []SourceResult `json:"lastUpdate"`
	Warnings   []string       `json:"warnings"`
}

// EcosystemStatus counts one ecosystem's content.
type EcosystemStatus struct {
	Advisories      int `json:"advisories"`
	Vulnerabilities int `json:"vulnerabilities"`
	Packages        int `json:"packages"`
}

// SourceStatus is one ingested source.
type SourceStatus struct {
	Name        string           `json:"name"`
	Kind        string           `json:"kind"`
	Location    string           `json:"location"`
	Records     int              `json:"records"`
	Skipped     int              `json:"skipped"`
	Problems    int              `json:"problems"`
	SourceDate  string           `json:"sourceDate"`
	Digest      string           `json:"digest"`
	Fingerprint feed.Fingerprint `json:"fingerprint"`
	IngestedAt  time.Time        `json:"ingestedAt"`
	Warnings    []string         `json:"warnings"`
}

// Status reports on the database. now and maxAge decide staleness.
func (db *DB) Status(ctx context.Context, now time.Time, maxAge time.Duration) (*Status, error) {
	s := &Status{
		Path:             db.path,
		SchemaVersion:    db.meta.SchemaVersion,
		Revision:         db.meta.Revision,
		BuiltAt:          db.meta.BuiltAt,
		CheckedAt:        db.meta.CheckedAt,
		MaxAge:           maxAge.String(),
		Ecosystems:       map[string]int{},
		EcosystemDetails: map[string]EcosystemStatus{},
		Sources:          []SourceStatus{},
		LastUpdate:       []SourceResult{},
		Warnings:         []string{},
	}
	if st, err := os.Stat(db.path); err == nil {
		s.SizeBytes = st.Size()
	}
	if age := now.Sub(db.meta.CheckedAt); age > maxAge {
		s.Stale = true
		s.Warnings = append(s.Warnings, fmt.Sprintf("database is stale: sources last checked %s ago (%s), more than %s: run `vigil db update`",
			age.Round(time.Minute), db.meta.CheckedAt.Format(time.RFC3339), maxAge))
	}
	var err error
	for _, c := range []struct {
		n     *int
		table string
	}{{&s.Vulnerabilities, "vulns"}, {&s.KEVEntries, "kev"}, {&s.EPSSScores, "epss"}, {&s.CVERecords, "cves"}} {
		if *c.n, err = db.count(c.table); err != nil {
			return nil, fmt.Errorf("vulndb: status: %w", err)
		}
	}
	rows, err := db.sql.QueryContext(ctx, "SELECT name, advisories, vulns, packages FROM ecosystems ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("vulndb: status: %w", err)
	}
	for rows.Next() {
		var name string
		var e EcosystemStatus
		if err := rows.Scan(&name, &e.Advisories, &e.Vulnerabilities, &e.Packages); err != nil {
			rows.Close()
			return nil, err
		}
		s.Ecosystems[name] = e.Advisories
		s.EcosystemDetails[name] = e
	}
	rows.Close()
	rows, err = db.sql.QueryContext(ctx, "SELECT name, kind, location, fingerprint, records, skipped, problems, source_date, ingested_at, warnings FROM sources ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("vulndb: status: %w", err)
	}
	for rows.Next() {
		var src SourceStatus
		var fpj, ing, warn string
		if err := rows.Scan(&src.Name, &src.Kind, &src.Location, &fpj, &src.Records, &src.Skipped, &src.Problems, &src.SourceDate, &ing, &warn); err != nil {
			rows.Close()
			return nil, err
		}
		_ = json.Unmarshal([]byte(fpj), &src.Fingerprint)
		src.Digest = src.Fingerprint.Digest
		_ = json.Unmarshal([]byte(warn), &src.Warnings)
		if src.Warnings == nil {
			src.Warnings = []string{}
		}
		src.IngestedAt, _ = time.Parse(time.RFC3339, ing)
		if src.Problems > 0 {
			s.Warnings = append(s.Warnings, fmt.Sprintf("%s: %d record(s) skipped, %d problem(s) in all", src.Name, src.Skipped, src.Problems))
			for _, w := range src.Warnings {
				if !strings.HasPrefix(w, src.Kind+":") {
					w = src.Name + ": " + w
				}
				s.Warnings = append(s.Warnings, w)
			}
		}
		s.Sources = append(s.Sources, src)
	}
	rows.Close()
	var last string
	if err := db.sql.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = 'last_update'").Scan(&last); err == nil {
		_ = json.Unmarshal([]byte(last), &s.LastUpdate)
	}
	for _, r := range s.LastUpdate {
		switch r.Status {
		case "missing":
			s.Warnings = append(s.Warnings, fmt.Sprintf("%s: source missing at the last update (%s)", r.Name, r.Error))
		case "failed":
			s.Warnings = append(s.Warnings, fmt.Sprintf("%s: source failed at the last update, earlier data kept (%s)", r.Name, r.Error))
		}
	}
	return s, nil
}
