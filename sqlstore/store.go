// Package sqlstore is Vigil's store of accounts, keys, resources, their
// inventories and findings, and the events of their changes, on SQLite
// (embedded, the default) or PostgreSQL: the same code, the same numbered
// migrations in each database's dialect, the same behaviour, proven by one
// conformance suite (internal/storetest) run against both. Every state
// change is one transaction.
package sqlstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // the "sqlite" database/sql driver

	"github.com/vigil-project/vigil"
)

//go:embed migrations
var migrations embed.FS

// Store is an open store.
type Store struct {
	db *sql.DB
	// rdb serves reads that need no transaction. On SQLite it is a pool
	// of its own: the store's one write connection is busy for most of a
	// re-evaluation, and WAL readers need not wait for it. On PostgreSQL
	// it is db.
	rdb      *sql.DB
	postgres bool
	// stop ends the SQLite checkpointer; done says it has ended.
	stop    context.CancelFunc
	done    chan struct{}
	closing sync.Once
	// Now is the clock; tests set it.
	Now func() time.Time
	// Policy says which resources continuous scanning leaves out; the
	// coverage reasons follow it.
	Policy vigil.CoveragePolicy
	// writes counts submissions, for upkeep every optimizeEvery (see
	// wrote).
	writes atomic.Int64
}

// optimizeEvery is how many submissions pass between refreshes of
// SQLite's planner statistics.
const optimizeEvery = 200

// Optimize refreshes the query planner's statistics. Without them a
// planner walks the wrong index (SQLite: a whole account's findings to
// list one resource's; PostgreSQL: every finding of a tag, sorted, rather
// than the first page of the severity index). On SQLite it runs PRAGMA
// optimize, which analyses only tables whose size changed much since their
// last analysis, with a bounded sample; it runs at open and every
// optimizeEvery submissions. On PostgreSQL it analyses the finding tables
// (a bounded sample of rows each) every optimizeEvery submissions, as
// autovacuum would where it is on. The server also runs it hourly.
func (s *Store) Optimize(ctx context.Context) error {
	query := "PRAGMA optimize=0x10002"
	if s.postgres {
		query = "ANALYZE findings, finding_packages, resource_tags, resources, agg_groups"
	}
	if _, err := s.db.ExecContext(ctx, query); err != nil {
		return fmt.Errorf("sqlstore: optimize: %w", err)
	}
	if s.rdb != s.db {
		// A SQLite connection reads the statistics when it opens, and
		// not again when another connection analyses: the readers open
		// again (those busy now, within their lifetime). Without this a
		// resource's findings were listed in 112 ms, not 2.
		s.rdb.SetMaxIdleConns(0)
		s.rdb.SetMaxIdleConns(readers)
	}
	return nil
}

// wrote counts a submission and, every optimizeEvery, refreshes the
// planner's statistics and, on PostgreSQL, vacuums agg_groups. Statistics
// taken while the tables were small make PostgreSQL scan finding_packages
// whole to delete a few rows, so ingest slows as the store grows. Every
// submission updates the same few agg_groups rows (its account, its
// repository, its packages); each update leaves a dead row version, and
// until a vacuum removes them each later update of the row walks past all
// of them. Autovacuum does both where it is on and has caught up; this
// does not depend on it. A failure only costs speed, so it is not the
// submitter's error.
func (s *Store) wrote(ctx context.Context) {
	if s.writes.Add(1)%optimizeEvery != 0 {
		return
	}
	if s.postgres {
		_, _ = s.db.ExecContext(ctx, "VACUUM agg_groups")
	}
	_ = s.Optimize(ctx)
}

// Open opens a store: a postgres:// or postgresql:// URL, or a SQLite file
// path. It applies the migrations the database lacks.
func Open(ctx context.Context, dsn string) (*Store, error) {
	s := &Store{Now: time.Now}
	var err error
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		s.postgres = true
		s.db, err = sql.Open("pgx", dsn)
		s.rdb = s.db
	} else {
		// One writer at a time, waiting rather than failing when busy. A
		// 128 MiB page cache and reads through a memory map (as much as
		// SQLite maps, 2 GiB): a fleet's store is gigabytes, and without
		// them a fifth of a re-evaluation went to reading pages one system
		// call at a time. The writer's statement journals in memory, not
		// in temporary files. The writer checkpoints the WAL itself only
		// once it has outgrown 64 MiB (the checkpointer below does it on
		// a reader connection, off the writer's path). The WAL file keeps
		// the size it grew to: cut back, it would grow again, and a commit
		// that grows the file waits for the file system's own journal
		// (a re-evaluation of 10,000 hosts took a quarter longer).
		const common = "&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=mmap_size(2147418112)"
		s.db, err = sql.Open("sqlite", "file:"+dsn+"?_pragma=journal_mode(WAL)&_pragma=cache_size(-131072)&_pragma=temp_store(2)&_pragma=wal_autocheckpoint(16384)&_txlock=immediate"+common)
		if err == nil {
			s.db.SetMaxOpenConns(1)
			// Readers see the last commit, never a transaction in
			// progress; query_only keeps a write from slipping in here.
			s.rdb, err = sql.Open("sqlite", "file:"+dsn+"?_pragma=query_only(1)&_pragma=cache_size(-32768)"+common)
			if err != nil {
				s.db.Close()
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: %w", err)
	}
	fail := func(err error) (*Store, error) {
		s.db.Close()
		if s.rdb != s.db {
			s.rdb.Close()
		}
		return nil, err
	}
	if err := s.db.PingContext(ctx); err != nil {
		return fail(fmt.Errorf("sqlstore: connect: %w", err))
	}
	if err := s.migrate(ctx); err != nil {
		return fail(err)
	}
	// SQLite's recommended use of PRAGMA optimize: at every open. On
	// PostgreSQL, an ANALYZE at every open would be start-up work that
	// the upkeep does anyway.
	if !s.postgres {
		if err := s.Optimize(ctx); err != nil {
			return fail(err)
		}
		// Readers beside the writer need WAL. Where SQLite could not
		// turn it on (a file system without shared memory), reads take
		// turns with writes on the one connection, as before.
		var mode string
		if err := s.db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
			return fail(err)
		}
		if !strings.EqualFold(mode, "wal") {
			s.rdb.Close()
			s.rdb = s.db
			return s, nil
		}
		s.rdb.SetMaxOpenConns(readers)
		s.rdb.SetMaxIdleConns(readers)
		s.rdb.SetConnMaxLifetime(5 * time.Minute)
		var cctx context.Context
		cctx, s.stop = context.WithCancel(context.Background())
		s.done = make(chan struct{})
		go s.checkpointer(cctx)
	}
	return s, nil
}

// readers is the number of SQLite reader connections.
const readers = 4

// checkpointInterval is how often the checkpointer copies the WAL's
// committed pages into the SQLite database file.
const checkpointInterval = 250 * time.Millisecond

// checkpointer copies committed pages from the WAL into the database file
// on a reader connection (a passive checkpoint: it waits for no reader
// and no writer), so that the writer does not stop to do it at every
// 1,000 pages as SQLite's automatic checkpoint would. Once every page is
// copied the next write starts the WAL from its beginning again.
func (s *Store) checkpointer(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// A failure (the file is busy, gone) costs the writer the
			// work, at its own 64 MiB threshold; nothing is lost.
			_, _ = s.rdb.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
		}
	}
}

// Close closes the store.
func (s *Store) Close() error {
	s.closing.Do(func() {
		if s.stop != nil {
			s.stop()
			<-s.done
		}
		if s.rdb != s.db {
			s.rdb.Close()
		}
	})
	return s.db.Close()
}

// q rewrites ? placeholders as PostgreSQL's $n.
func (s *Store) q(query string) string {
	if !s.postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// migrate applies, in order and each in its own transaction, the embedded
// migrations the database has not recorded.
func (s *Store) migrate(ctx context.Context) error {
	dialect := "sqlite"
	if s.postgres {
		dialect = "postgres"
	}
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("sqlstore: migrations table: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/"+dialect+"/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		v, err := strconv.Atoi(strings.SplitN(path.Base(name), "_", 2)[0])
		if err != nil {
			return fmt.Errorf("sqlstore: migration %s: bad name", name)
		}
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, s.q("SELECT count(*) FROM schema_migrations WHERE version = ?"), v).Scan(&n); err != nil {
			tx.Rollback()
			return err
		}
		if n > 0 {
			tx.Rollback()
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			tx.Rollback()
			return err
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("sqlstore: migration %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, s.q("INSERT INTO schema_migrations(version, applied_at) VALUES (?, ?)"), v, s.Now().UnixMicro()); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("sqlstore: migration %s: %w", name, err)
		}
	}
	return nil
}

func micros(t time.Time) int64 { return t.UTC().UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

// CreateAccount creates an account; admin, if set, names the organisation
// administrator it is a member of.
func (s *Store) CreateAccount(ctx context.Context, name, admin string) (*vigil.Account, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 128 || strings.ContainsAny(name, " \t\n/") {
		return nil, vigil.Errorf(vigil.EINVALID, "account name %q: want 1 to 128 characters without spaces or slashes", name)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var adminID *int64
	if admin != "" {
		var id int64
		var parent sql.NullInt64
		err := tx.QueryRowContext(ctx, s.q("SELECT id, admin_id FROM accounts WHERE name = ?"), admin).Scan(&id, &parent)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, vigil.Errorf(vigil.ENOTFOUND, "administrator account %q not found", admin)
		}
		if err != nil {
			return nil, err
		}
		if parent.Valid {
			return nil, vigil.Errorf(vigil.EINVALID, "%q is itself a member of an organisation: it cannot administer one", admin)
		}
		adminID = &id
	}
	now := s.Now()
	var id int64
	err = tx.QueryRowContext(ctx, s.q("INSERT INTO accounts(name, admin_id, created_at) VALUES (?, ?, ?) RETURNING id"), name, adminID, micros(now)).Scan(&id)
	if err != nil {
		if isUnique(err) {
			return nil, vigil.Errorf(vigil.ECONFLICT, "account %q already exists", name)
		}
		return nil, fmt.Errorf("sqlstore: create account: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return &vigil.Account{ID: id, Name: name, Admin: admin, Created: fromMicros(micros(now))}, nil
}

// Accounts lists the accounts a principal may see.
func (s *Store) Accounts(ctx context.Context, p vigil.Principal) ([]vigil.Account, error) {
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT a.id, a.name, COALESCE(b.name, ''), a.created_at FROM accounts a LEFT JOIN accounts b ON a.admin_id = b.id ORDER BY a.name`))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []vigil.Account
	for rows.Next() {
		var a vigil.Account
		var created int64
		if err := rows.Scan(&a.ID, &a.Name, &a.Admin, &created); err != nil {
			return nil, err
		}
		a.Created = fromMicros(created)
		if slices.Contains(p.Visible, a.ID) {
			out = append(out, a)
		}
	}
	return out, rows.Err()
}

// keyPrefix marks Vigil's API keys, so that secret scanners recognise them.
const keyPrefix = "vgl_"

// CreateKey creates an API key for an account. The secret is returned once
// and stored only as its SHA-256.
func (s *Store) CreateKey(ctx context.Context, account, role string, expires *time.Time) (string, *vigil.APIKey, error) {
	if !slices.Contains(vigil.Roles, role) {
		return "", nil, vigil.Errorf(vigil.EINVALID, "role %q: want one of %s", role, strings.Join(vigil.Roles, ", "))
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", nil, err
	}
	secret := keyPrefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw))
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return "", nil, err
	}
	defer tx.Rollback()
	var accountID int64
	err = tx.QueryRowContext(ctx, s.q("SELECT id FROM accounts WHERE name = ?"), account).Scan(&accountID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, vigil.Errorf(vigil.ENOTFOUND, "account %q not found", account)
	}
	if err != nil {
		return "", nil, err
	}
	now := s.Now()
	var exp *int64
	if expires != nil {
		v := micros(*expires)
		exp = &v
	}
	var id int64
	if err := tx.QueryRowContext(ctx, s.q("INSERT INTO api_keys(account_id, role, hash, prefix, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id"),
		accountID, role, hashKey(secret), secret[:12], micros(now), exp).Scan(&id); err != nil {
		return "", nil, fmt.Errorf("sqlstore: create key: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return "", nil, err
	}
	return secret, &vigil.APIKey{ID: id, Account: account, Role: role, Prefix: secret[:12], Created: fromMicros(micros(now)), Expires: expires}, nil
}

// RevokeKey revokes a key by id, within the accounts a principal manages.
func (s *Store) RevokeKey(ctx context.Context, p vigil.Principal, id int64) error {
	if p.Role != vigil.RoleAdmin {
		return vigil.Errorf(vigil.EFORBIDDEN, "revoking keys needs the admin role")
	}
	res, err := s.db.ExecContext(ctx, s.q("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL AND account_id IN ("+placeholders(len(p.Visible))+")"),
		append([]any{micros(s.Now()), id}, ids(p.Visible)...)...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return vigil.Errorf(vigil.ENOTFOUND, "key %d not found", id)
	}
	return nil
}

func hashKey(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// Authenticate finds the principal of an API key secret. Unknown, revoked
// and expired keys are all EUNAUTHORIZED, saying no more.
func (s *Store) Authenticate(ctx context.Context, secret string) (vigil.Principal, error) {
	var p vigil.Principal
	if !strings.HasPrefix(secret, keyPrefix) || len(secret) > 128 {
		return p, vigil.Errorf(vigil.EUNAUTHORIZED, "invalid API key")
	}
	var exp, revoked sql.NullInt64
	err := s.rdb.QueryRowContext(ctx, s.q(`SELECT k.account_id, a.name, k.role, k.expires_at, k.revoked_at FROM api_keys k JOIN accounts a ON a.id = k.account_id WHERE k.hash = ?`),
		hashKey(secret)).Scan(&p.AccountID, &p.Account, &p.Role, &exp, &revoked)
	if errors.Is(err, sql.ErrNoRows) || err == nil && (revoked.Valid || exp.Valid && !s.Now().Before(fromMicros(exp.Int64))) {
		return vigil.Principal{}, vigil.Errorf(vigil.EUNAUTHORIZED, "invalid API key")
	}
	if err != nil {
		return p, err
	}
	p.Visible = []int64{p.AccountID}
	rows, err := s.rdb.QueryContext(ctx, s.q("SELECT id FROM accounts WHERE admin_id = ? ORDER BY id"), p.AccountID)
	if err != nil {
		return p, err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return p, err
		}
		p.Visible = append(p.Visible, id)
	}
	return p, rows.Err()
}

func placeholders(n int) string {
	if n == 0 {
		return "NULL"
	}
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

func ids(v []int64) []any {
	out := make([]any, len(v))
	for i, x := range v {
		out[i] = x
	}
	return out
}

func isUnique(err error) bool {
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "unique") || strings.Contains(s, "duplicate key")
}

// RevokeKeyByID revokes any key: for the operator's `vigil admin`, which
// works on the database directly.
func (s *Store) RevokeKeyByID(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, s.q("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"), micros(s.Now()), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return vigil.Errorf(vigil.ENOTFOUND, "no active key %d", id)
	}
	return nil
}
