package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/registry"
)

// Registry is a registry an account watches.
type Registry struct {
	ID       string   `json:"id"`
	Account  string   `json:"account"`
	URL      string   `json:"url"`
	Username string   `json:"username,omitempty"`
	Include  []string `json:"include"`
	Exclude  []string `json:"exclude"`
	// PollInterval is how often the registry is polled; 0 relies on its
	// notifications alone.
	PollInterval time.Duration `json:"-"`
	PollSeconds  int64         `json:"pollIntervalSeconds"`
	Created      time.Time     `json:"createdAt"`
	LastPolled   time.Time     `json:"lastPolledAt,omitzero"`
	LastError    string        `json:"lastError,omitempty"`
	// WebhookSecret is shown once, when the registry is registered.
	WebhookSecret string `json:"webhookSecret,omitempty"`

	AccountID int64  `json:"-"`
	password  string // never leaves the server
	secret    string
}

// Config is the registry's watch configuration, with its credentials.
func (r *Registry) Config() registry.Config {
	return registry.Config{URL: r.URL, Username: r.Username, Password: r.password, Include: r.Include, Exclude: r.Exclude}
}

// Secret is the shared secret its notifications must carry.
func (r *Registry) Secret() string { return r.secret }

// NewRegistry is a registry to watch.
type NewRegistry struct {
	Account            string
	Config             registry.Config
	PollInterval       time.Duration
	AllowPrivateTarget bool
}

// CreateRegistry registers a registry for the principal's account (or a
// member's), with a new webhook secret, returned once.
func (s *Store) CreateRegistry(ctx context.Context, p vigil.Principal, nr NewRegistry) (*Registry, error) {
	if p.Role != vigil.RoleAdmin {
		return nil, vigil.Errorf(vigil.EFORBIDDEN, "a %s key cannot register registries", p.Role)
	}
	if err := nr.Config.Validate(); err != nil {
		return nil, vigil.Errorf(vigil.EINVALID, "%v", err)
	}
	if nr.PollInterval != 0 && nr.PollInterval < time.Minute {
		return nil, vigil.Errorf(vigil.EINVALID, "poll interval %s: want 0 (webhook only) or at least 1m", nr.PollInterval)
	}
	accountID, account, err := s.accountFor(ctx, p, nr.Account)
	if err != nil {
		return nil, err
	}
	raw := make([]byte, 24)
	rand.Read(raw)
	r := &Registry{ID: newID(), Account: account, AccountID: accountID, URL: nr.Config.URL, Username: nr.Config.Username,
		Include: nonNil(nr.Config.Include), Exclude: nonNil(nr.Config.Exclude), PollInterval: nr.PollInterval, PollSeconds: int64(nr.PollInterval / time.Second),
		Created: fromMicros(micros(s.Now())), password: nr.Config.Password, secret: "whsec_" + base64.RawURLEncoding.EncodeToString(raw)}
	r.WebhookSecret = r.secret
	inc, _ := json.Marshal(r.Include)
	exc, _ := json.Marshal(r.Exclude)
	_, err = s.db.ExecContext(ctx, s.q(`INSERT INTO registries(id, account_id, url, username, password, include_patterns, exclude_patterns, webhook_secret, poll_interval, created_at, last_polled_at, last_error)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, '')`), r.ID, accountID, r.URL, r.Username, r.password, string(inc), string(exc), r.secret, r.PollSeconds, micros(r.Created))
	if err != nil && isUnique(err) {
		return nil, vigil.Errorf(vigil.ECONFLICT, "registry %s is already registered for %s", r.URL, account)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: registry: %w", err)
	}
	return r, nil
}

func nonNil(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

// AccountFor resolves the account a principal acts for: its own (name
// empty), or a member's it names.
func (s *Store) AccountFor(ctx context.Context, p vigil.Principal, name string) (int64, string, error) {
	return s.accountFor(ctx, p, name)
}

func (s *Store) accountFor(ctx context.Context, p vigil.Principal, account string) (int64, string, error) {
	if account == "" || account == p.Account {
		return p.AccountID, p.Account, nil
	}
	var id int64
	err := s.db.QueryRowContext(ctx, s.q("SELECT id FROM accounts WHERE name = ?"), account).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) || err == nil && !contains(p.Visible, id) {
		return 0, "", vigil.Errorf(vigil.ENOTFOUND, "account %q not found", account)
	}
	return id, account, err
}

const registryColumns = `r.id, a.name, r.account_id, r.url, r.username, r.password, r.include_patterns, r.exclude_patterns, r.webhook_secret, r.poll_interval, r.created_at, r.last_polled_at, r.last_error`

func scanRegistry(row interface{ Scan(...any) error }) (*Registry, error) {
	var r Registry
	var inc, exc string
	var created, polled int64
	if err := row.Scan(&r.ID, &r.Account, &r.AccountID, &r.URL, &r.Username, &r.password, &inc, &exc, &r.secret, &r.PollSeconds, &created, &polled, &r.LastError); err != nil {
		return nil, err
	}
	json.Unmarshal([]byte(inc), &r.Include)
	json.Unmarshal([]byte(exc), &r.Exclude)
	r.PollInterval = time.Duration(r.PollSeconds) * time.Second
	r.Created = fromMicros(created)
	if polled > 0 {
		r.LastPolled = fromMicros(polled)
	}
	return &r, nil
}

// Registries lists the registries the principal may see.
func (s *Store) Registries(ctx context.Context, p vigil.Principal) ([]Registry, error) {
	if p.Role == vigil.RoleAgent {
		return nil, vigil.Errorf(vigil.EFORBIDDEN, "an agent key cannot read registries")
	}
	return registryRows(s.rdb.QueryContext(ctx, s.q(`SELECT `+registryColumns+` FROM registries r JOIN accounts a ON a.id = r.account_id
		WHERE r.account_id IN (`+placeholders(len(p.Visible))+`) ORDER BY a.name, r.url`), ids(p.Visible)...))
}

func registryRows(rows *sql.Rows, err error) ([]Registry, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Registry{}
	for rows.Next() {
		r, err := scanRegistry(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	return out, rows.Err()
}

// RegistryByID returns a registry, with its credentials, for the server's
// own use (a webhook, a poll, a scan); p, when not nil, must see it.
func (s *Store) RegistryByID(ctx context.Context, p *vigil.Principal, id string) (*Registry, error) {
	r, err := scanRegistry(s.db.QueryRowContext(ctx, s.q(`SELECT `+registryColumns+` FROM registries r JOIN accounts a ON a.id = r.account_id WHERE r.id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) || err == nil && p != nil && !contains(p.Visible, r.AccountID) {
		return nil, vigil.Errorf(vigil.ENOTFOUND, "registry %s not found", id)
	}
	return r, err
}

// DeleteRegistry stops watching a registry; its images stay resources.
func (s *Store) DeleteRegistry(ctx context.Context, p vigil.Principal, id string) error {
	if p.Role != vigil.RoleAdmin {
		return vigil.Errorf(vigil.EFORBIDDEN, "a %s key cannot remove registries", p.Role)
	}
	if _, err := s.RegistryByID(ctx, &p, id); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, s.q("DELETE FROM registries WHERE id = ?"), id)
	return err
}

// RegistryPolled records a poll's time and error ("" for success).
func (s *Store) RegistryPolled(ctx context.Context, id string, errText string) error {
	_, err := s.db.ExecContext(ctx, s.q("UPDATE registries SET last_polled_at = ?, last_error = ? WHERE id = ?"), micros(s.Now()), errText, id)
	return err
}

// DueRegistries lists the registries whose poll is due.
func (s *Store) DueRegistries(ctx context.Context) ([]Registry, error) {
	now := micros(s.Now())
	return registryRows(s.rdb.QueryContext(ctx, s.q(`SELECT `+registryColumns+` FROM registries r JOIN accounts a ON a.id = r.account_id
		WHERE r.poll_interval > 0 AND r.last_polled_at + r.poll_interval * 1000000 <= ? ORDER BY r.id`), now))
}

// RegistryImages lists the resources scanned from a registry: their names
// (digest references) and ids.
func (s *Store) RegistryImages(ctx context.Context, registryID string) (map[string]string, error) {
	rows, err := s.db.QueryContext(ctx, s.q("SELECT name, id FROM resources WHERE registry_id = ? AND scan_status <> ?"), registryID, deleted)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var n, id string
		if err := rows.Scan(&n, &id); err != nil {
			return nil, err
		}
		out[n] = id
	}
	return out, rows.Err()
}
