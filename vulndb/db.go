package vulndb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite" // the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/score"
)

// DB is an open vulnerability database, read-only. It is safe for
// concurrent use.
type DB struct {
	sql  *sql.DB
	path string
	meta Meta

	mu    sync.RWMutex
	cache map[lookupKey][]Entry
	// vulns caches Get: a fleet's inventories meet the same
	// vulnerabilities again and again.
	vulns map[string]*vigil.Vulnerability
	// memo holds results derived from this revision (see Memo).
	memo map[any]any
	ecos map[string]int
	stmt *sql.Stmt
}

// Meta describes a database file.
type Meta struct {
	SchemaVersion int
	Revision      int64
	// BuiltAt is when the content last changed; CheckedAt when an update
	// last confirmed it against the sources.
	BuiltAt   time.Time
	CheckedAt time.Time
}

type lookupKey struct{ eco, key string }

// maxCached bounds the lookup cache, in (ecosystem, package) keys.
const maxCached = 1 << 20

// Entry is one affected package of one vulnerability: what a lookup by
// (ecosystem, package) returns.
type Entry struct {
	VulnID   string
	Affected vigil.Affected
}

// Open opens the database at path read-only. A file that is missing, not a
// Vigil database, or of another schema version is an error that says what
// to do.
func Open(path string) (*DB, error) {
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, vigil.Errorf(vigil.EUNAVAILABLE, "no vulnerability database at %s: run `vigil db update` to build it", path)
	}
	if err != nil {
		return nil, fmt.Errorf("vulndb: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, vigil.Errorf(vigil.EINVALID, "vulndb: %s is not a file", path)
	}
	sdb, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=query_only(1)&_pragma=busy_timeout(10000)")
	if err != nil {
		return nil, fmt.Errorf("vulndb: %w", err)
	}
	db := &DB{sql: sdb, path: path, cache: map[lookupKey][]Entry{}, vulns: map[string]*vigil.Vulnerability{}, memo: map[any]any{}}
	if err := db.readMeta(); err != nil {
		sdb.Close()
		return nil, err
	}
	return db, nil
}

func (db *DB) readMeta() error {
	rows, err := db.sql.Query("SELECT key, value FROM meta")
	if err != nil {
		if isBusy(err) {
			return fmt.Errorf("vulndb: %s: %w", db.path, err)
		}
		return vigil.Errorf(vigil.EINVALID, "vulndb: %s is not a Vigil vulnerability database (%v): run `vigil db update` to rebuild it", db.path, err)
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return err
		}
		m[k] = v
	}
	if err := rows.Err(); err != nil {
		return vigil.Errorf(vigil.EINVALID, "vulndb: %s is corrupt (%v): run `vigil db update` to rebuild it", db.path, err)
	}
	db.meta.SchemaVersion, _ = strconv.Atoi(m["schema_version"])
	if db.meta.SchemaVersion != SchemaVersion {
		return vigil.Errorf(vigil.EINVALID, "vulndb: %s has schema version %q, this vigil reads %d: run `vigil db update` to rebuild it", db.path, m["schema_version"], SchemaVersion)
	}
	db.meta.Revision, _ = strconv.ParseInt(m["revision"], 10, 64)
	db.meta.BuiltAt, _ = time.Parse(time.RFC3339, m["built_at"])
	db.meta.CheckedAt, _ = time.Parse(time.RFC3339, m["checked_at"])
	return nil
}

func isBusy(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		code := se.Code() & 0xff
		return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
	}
	return false
}

// Close closes the database.
func (db *DB) Close() error {
	if db.stmt != nil {
		db.stmt.Close()
	}
	return db.sql.Close()
}

// Meta returns the database's metadata.
func (db *DB) Meta() Meta { return db.meta }

// Path returns the file the database was opened from.
func (db *DB) Path() string { return db.path }

// Lookup returns every affected entry for a package in an ecosystem, in
// the ecosystem's key normalisation (PackageKey). Entries of withdrawn
// advisories are included and marked; matching drops them. Results are
// cached: the slice must not be modified.
func (db *DB) Lookup(ctx context.Context, ecosystem, name string) ([]Entry, error) {
	k := lookupKey{ecosystem, PackageKey(ecosystem, name)}
	db.mu.RLock()
	es, ok := db.cache[k]
	db.mu.RUnlock()
	if ok {
		return es, nil
	}
	es, err := db.lookup(ctx, k)
	if err != nil {
		return nil, err
	}
	db.mu.Lock()
	if len(db.cache) >= maxCached {
		// Bound the memory of a long-running process that looks up
		// arbitrary names: start over.
		clear(db.cache)
	}
	db.cache[k] = es
	db.mu.Unlock()
	return es, nil
}

func (db *DB) lookup(ctx context.Context, k lookupKey) ([]Entry, error) {
	rows, err := db.sql.QueryContext(ctx, "SELECT vuln, body FROM affected WHERE ecosystem = ? AND key = ? ORDER BY vuln, seq", k.eco, k.key)
	if err != nil {
		return nil, fmt.Errorf("vulndb: lookup: %w", err)
	}
	defer rows.Close()
	var es []Entry
	for rows.Next() {
		var e Entry
		var body []byte
		if err := rows.Scan(&e.VulnID, &body); err != nil {
			return nil, fmt.Errorf("vulndb: lookup: %w", err)
		}
		if err := decode(body, &e.Affected); err != nil {
			return nil, err
		}
		es = append(es, e)
	}
	return es, rows.Err()
}

// Resolve returns the ids of the vulnerabilities an id names: one for a
// vulnerability's own id or an alias, several for an advisory that covers
// several vulnerabilities, none for an unknown id. Ids are matched without
// regard to case.
func (db *DB) Resolve(ctx context.Context, id string) ([]string, error) {
	id = strings.TrimSpace(id)
	rows, err := db.sql.QueryContext(ctx, "SELECT vuln, kind FROM ids WHERE alias = ? ORDER BY kind, vuln", id)
	if err != nil {
		return nil, fmt.Errorf("vulndb: resolve: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		var kind int
		if err := rows.Scan(&v, &kind); err != nil {
			return nil, err
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out, rows.Err()
}

// Get returns one vulnerability by its primary id, with its KEV and EPSS
// data and its severity joined in. The result is shared with other
// callers: it must not be modified.
func (db *DB) Get(ctx context.Context, id string) (*vigil.Vulnerability, error) {
	db.mu.RLock()
	v, ok := db.vulns[id]
	db.mu.RUnlock()
	if ok {
		return v, nil
	}
	v, err := db.get(ctx, id)
	if err != nil {
		return nil, err
	}
	db.mu.Lock()
	if len(db.vulns) >= maxCachedVulns {
		clear(db.vulns)
	}
	db.vulns[id] = v
	db.mu.Unlock()
	return v, nil
}

// Memo returns what compute returns for key, computed once per database
// handle: results derived from this revision alone (a package version's
// matching entries) that many inventories ask for again. The result is
// shared: it must not be modified. Bounded: it starts over when full.
func (db *DB) Memo(key any, compute func() (any, error)) (any, error) {
	db.mu.RLock()
	v, ok := db.memo[key]
	db.mu.RUnlock()
	if ok {
		return v, nil
	}
	v, err := compute()
	if err != nil {
		return nil, err
	}
	db.mu.Lock()
	if len(db.memo) >= maxMemo {
		clear(db.memo)
	}
	db.memo[key] = v
	db.mu.Unlock()
	return v, nil
}

const maxMemo = 1 << 18

// maxCachedVulns bounds Get's cache.
const maxCachedVulns = 1 << 16

func (db *DB) get(ctx context.Context, id string) (*vigil.Vulnerability, error) {
	var body []byte
	err := db.sql.QueryRowContext(ctx, "SELECT body FROM vulns WHERE id = ?", id).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vigil.Errorf(vigil.ENOTFOUND, "vulnerability %s not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("vulndb: get: %w", err)
	}
	var v vigil.Vulnerability
	if err := decode(body, &v); err != nil {
		return nil, err
	}
	rows, err := db.sql.QueryContext(ctx, "SELECT body FROM affected WHERE vuln = ? ORDER BY seq", id)
	if err != nil {
		return nil, fmt.Errorf("vulndb: get: %w", err)
	}
	v.Affected = []vigil.Affected{}
	for rows.Next() {
		var b []byte
		var a vigil.Affected
		if err := rows.Scan(&b); err != nil {
			rows.Close()
			return nil, err
		}
		if err := decode(b, &a); err != nil {
			rows.Close()
			return nil, err
		}
		v.Affected = append(v.Affected, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, cid := range append([]string{v.ID}, v.Aliases...) {
		if !strings.HasPrefix(cid, "CVE-") {
			continue
		}
		if v.KEV == nil {
			var kb string
			err := db.sql.QueryRowContext(ctx, "SELECT body FROM kev WHERE cve = ?", cid).Scan(&kb)
			if err == nil {
				var k vigil.KEV
				if json.Unmarshal([]byte(kb), &k) == nil {
					v.KEV = &k
				}
			} else if !errors.Is(err, sql.ErrNoRows) {
				return nil, fmt.Errorf("vulndb: kev: %w", err)
			}
		}
		if v.EPSS == nil {
			if e, err := db.EPSS(ctx, cid); err != nil {
				return nil, err
			} else if e != nil {
				v.EPSS = e
			}
		}
	}
	v.Severity = score.Severity(v.CVSS, v.VendorSeverity)
	return &v, nil
}

// EPSS returns the EPSS score of a CVE, or nil when FIRST does not score it.
func (db *DB) EPSS(ctx context.Context, cveID string) (*vigil.EPSS, error) {
	key, ok := cveNumber(cveID)
	if !ok {
		return nil, nil
	}
	var s, p int64
	err := db.sql.QueryRowContext(ctx, "SELECT score, percentile FROM epss WHERE cve = ?", key).Scan(&s, &p)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vulndb: epss: %w", err)
	}
	var date string
	_ = db.sql.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = 'epss_date'").Scan(&date)
	return &vigil.EPSS{Score: float64(s) / 1e9, Percentile: float64(p) / 1e9, Date: date}, nil
}

func (db *DB) count(table string) (int, error) {
	var n int
	err := db.sql.QueryRow("SELECT count(*) FROM " + table).Scan(&n)
	return n, err
}

// PackageRef names a package in an ecosystem, by its normalised key.
type PackageRef struct {
	Ecosystem string `json:"ecosystem"`
	Package   string `json:"package"`
}

// Changes returns the (ecosystem, package) keys whose advisories changed in
// a revision: the packages whose stored inventories need re-matching. The
// database keeps the change sets of its last 16 revisions.
func (db *DB) Changes(ctx context.Context, revision int64) ([]PackageRef, error) {
	rows, err := db.sql.QueryContext(ctx, "SELECT ecosystem, key FROM changes WHERE revision = ? ORDER BY ecosystem, key", revision)
	if err != nil {
		return nil, fmt.Errorf("vulndb: changes: %w", err)
	}
	defer rows.Close()
	var out []PackageRef
	for rows.Next() {
		var p PackageRef
		if err := rows.Scan(&p.Ecosystem, &p.Package); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// keptRevisions is how many revisions' change sets a database keeps.
const keptRevisions = 16

// ChangeSet is what changed between two revisions.
type ChangeSet struct {
	// Packages are the (ecosystem, package) keys whose affected ranges
	// changed: the inventories holding one must be matched again.
	Packages []PackageRef
	// Vulns are the vulnerabilities whose record, KEV entry or EPSS score
	// changed: their open findings must be refreshed.
	Vulns []string
}

// ChangesSince returns what changed after revision from up to this database's
// revision. complete is false when the database no longer keeps (or
// never had) the change set of one of those revisions: then every stored
// inventory must be matched again.
func (db *DB) ChangesSince(ctx context.Context, from int64) (cs ChangeSet, complete bool, err error) {
	to := db.meta.Revision
	if from >= to {
		return cs, true, nil
	}
	var since int64
	var v string
	if err := db.sql.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = 'changes_since'").Scan(&v); err == nil {
		since, _ = strconv.ParseInt(v, 10, 64)
	}
	if from <= 0 || from+1 < since || from+1 <= to-keptRevisions {
		return cs, false, nil
	}
	seen := map[PackageRef]bool{}
	for rev := from + 1; rev <= to; rev++ {
		keys, err := db.Changes(ctx, rev)
		if err != nil {
			return cs, false, err
		}
		for _, k := range keys {
			if !seen[k] {
				seen[k] = true
				cs.Packages = append(cs.Packages, k)
			}
		}
	}
	rows, err := db.sql.QueryContext(ctx, "SELECT DISTINCT vuln FROM vuln_changes WHERE revision > ? AND revision <= ? ORDER BY vuln", from, to)
	if err != nil {
		return cs, false, fmt.Errorf("vulndb: changes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return cs, false, err
		}
		cs.Vulns = append(cs.Vulns, id)
	}
	return cs, true, rows.Err()
}

// Packages lists every (ecosystem, package) key some advisory names.
func (db *DB) Packages(ctx context.Context) ([]PackageRef, error) {
	rows, err := db.sql.QueryContext(ctx, "SELECT ecosystem, key FROM package_digests ORDER BY ecosystem, key")
	if err != nil {
		return nil, fmt.Errorf("vulndb: packages: %w", err)
	}
	defer rows.Close()
	var out []PackageRef
	for rows.Next() {
		var p PackageRef
		if err := rows.Scan(&p.Ecosystem, &p.Package); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Ecosystems returns the number of advisories per OSV ecosystem.
func (db *DB) Ecosystems(ctx context.Context) (map[string]int, error) {
	db.mu.RLock()
	e := db.ecos
	db.mu.RUnlock()
	if e != nil {
		return e, nil
	}
	e, err := readPairs[string, int](ctx, db.sql, "SELECT name, advisories FROM ecosystems")
	if err != nil {
		return nil, fmt.Errorf("vulndb: ecosystems: %w", err)
	}
	db.mu.Lock()
	db.ecos = e
	db.mu.Unlock()
	return e, nil
}
