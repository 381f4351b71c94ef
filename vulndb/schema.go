// Package vulndb is Vigil's vulnerability database: one versioned SQLite
// file, built by Update from the feeds and opened read-only by everything
// that matches (the CLI, the server, every worker, an air-gapped copy).
//
// The file holds the ingested records of each source (so that an update
// re-ingests only the sources whose content changed), the KEV and EPSS
// tables, and the merged view that matching reads: one entry per
// vulnerability, an alias index, and an index of affected packages keyed by
// (ecosystem, package).
package vulndb

import (
	"regexp"
	"strings"
)

// SchemaVersion is the layout of the file. A file of another version is
// rebuilt by the next update and refused by Open.
const SchemaVersion = 3

const schema = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE sources (
	name TEXT PRIMARY KEY,
	kind TEXT NOT NULL,
	location TEXT NOT NULL,
	fingerprint TEXT NOT NULL,  -- feed.Fingerprint as JSON
	records INTEGER NOT NULL,
	skipped INTEGER NOT NULL,   -- records dropped whole
	problems INTEGER NOT NULL,  -- every problem, also in kept records
	source_date TEXT NOT NULL,  -- newest date the content carries, RFC 3339 or YYYY-MM-DD
	ingested_at TEXT NOT NULL,
	warnings TEXT NOT NULL      -- JSON list of the first problems
) WITHOUT ROWID;
-- Ingested OSV records, normalised (osv.Advisory as compressed JSON).
CREATE TABLE advisories (
	source TEXT NOT NULL,
	id TEXT NOT NULL,
	modified TEXT NOT NULL,
	body BLOB NOT NULL,
	PRIMARY KEY (source, id)
);
-- CVE JSON 5 records, as cve.Record compressed JSON.
CREATE TABLE cves (id TEXT PRIMARY KEY, body BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE kev (cve TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID;
-- EPSS keyed by the CVE number (year*100000000+sequence), scores in 1e-9.
CREATE TABLE epss (cve INTEGER PRIMARY KEY, score INTEGER NOT NULL, percentile INTEGER NOT NULL);

-- The merged view, derived from the tables above on every update that
-- changes them.
CREATE TABLE vulns (id TEXT PRIMARY KEY, modified TEXT NOT NULL, body BLOB NOT NULL);
-- Every id of a vulnerability (its own, its aliases: kind 0) and advisories
-- that cover it among others (kind 1) point at its entry.
CREATE TABLE ids (alias TEXT NOT NULL COLLATE NOCASE, vuln TEXT NOT NULL, kind INTEGER NOT NULL, PRIMARY KEY (alias, vuln)) WITHOUT ROWID;
-- Affected packages: the lookup path of matching. key is the package name
-- normalised for its ecosystem (PackageKey).
CREATE TABLE affected (
	ecosystem TEXT NOT NULL,
	key TEXT NOT NULL,
	vuln TEXT NOT NULL,
	seq INTEGER NOT NULL,       -- order within the vulnerability
	body BLOB NOT NULL          -- vigil.Affected as JSON, compressed when large
);
CREATE INDEX affected_key ON affected(ecosystem, key);
CREATE INDEX affected_vuln ON affected(vuln);
-- A digest of each key's affected rows, so that an update can tell which
-- (ecosystem, package) keys changed and re-match only what they touch.
CREATE TABLE package_digests (ecosystem TEXT NOT NULL, key TEXT NOT NULL, digest BLOB NOT NULL, PRIMARY KEY (ecosystem, key)) WITHOUT ROWID;
-- Keys whose affected rows changed, per revision.
CREATE TABLE changes (revision INTEGER NOT NULL, ecosystem TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (revision, ecosystem, key)) WITHOUT ROWID;
-- A digest of what each vulnerability's findings show (its record, its
-- KEV entry, its EPSS score to 0.001), and the vulnerabilities whose
-- digest changed, per revision: findings to refresh though no package
-- range moved.
CREATE TABLE vuln_digests (vuln TEXT PRIMARY KEY, digest BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE vuln_changes (revision INTEGER NOT NULL, vuln TEXT NOT NULL, PRIMARY KEY (revision, vuln)) WITHOUT ROWID;
CREATE TABLE ecosystems (name TEXT PRIMARY KEY, advisories INTEGER NOT NULL, vulns INTEGER NOT NULL, packages INTEGER NOT NULL) WITHOUT ROWID;
`

var pypiSep = regexp.MustCompile(`[-_.]+`)

// PackageKey normalises a package name for lookups in its ecosystem: PyPI
// names as PEP 503 does, and the names of ecosystems that ignore case in
// lower case. Other names are kept as they are.
func PackageKey(ecosystem, name string) string {
	base, _, _ := strings.Cut(ecosystem, ":")
	switch base {
	case "PyPI":
		return pep503(name)
	case "NuGet", "Packagist", "Debian", "Ubuntu", "Alpine", "Wolfi", "Chainguard":
		return strings.ToLower(name)
	}
	return name
}

// pep503 normalises a PyPI name: lower case, runs of -_. as one -.
func pep503(name string) string {
	clean := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'A' && c <= 'Z' || c == '_' || c == '.' || c == '-' && i+1 < len(name) && name[i+1] == '-' {
			clean = false
			break
		}
	}
	if clean {
		return name
	}
	return pypiSep.ReplaceAllString(strings.ToLower(name), "-")
}

// cveNumber packs CVE-YYYY-NNNN into one integer, or reports false.
func cveNumber(id string) (int64, bool) {
	if len(id) < 13 || !strings.HasPrefix(id, "CVE-") || id[8] != '-' {
		return 0, false
	}
	var year, seq int64
	for _, c := range id[4:8] {
		if c < '0' || c > '9' {
			return 0, false
		}
		year = year*10 + int64(c-'0')
	}
	rest := id[9:]
	if len(rest) < 4 || len(rest) > 8 {
		return 0, false
	}
	for _, c := range rest {
		if c < '0' || c > '9' {
			return 0, false
		}
		seq = seq*10 + int64(c-'0')
	}
	return year*100_000_000 + seq, true
}
