// Package testserver starts, in-process, what Vigil's API server runs on,
// for the tests of the API and of the CLI against it: a vulnerability
// database built from the fixture mirror, a SQLite store with the
// accounts org, team (a member of org) and other, and an engine whose
// workers run until the test ends.
package testserver

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/collect"
	"github.com/vigil-project/vigil/engine"
	"github.com/vigil-project/vigil/feed"
	"github.com/vigil-project/vigil/internal/testutil"
	"github.com/vigil-project/vigil/source"
	"github.com/vigil-project/vigil/sqlstore"
	"github.com/vigil-project/vigil/vulndb"
	"github.com/vigil-project/vigil/worker"
)

// Env is a started test environment.
type Env struct {
	Store  *sqlstore.Store
	Engine *engine.Engine
	// Inventory is the inventory of report/testdata/rootfs.
	Inventory *vigil.Inventory
}

// Start starts an environment; root is the repository's root, relative
// to the test's directory.
func Start(t testing.TB, root string) *Env {
	t.Helper()
	ctx := context.Background()
	mirror := testutil.FixtureMirror(t, filepath.Join(root, "match", "testdata", "mirror"))
	dbPath := filepath.Join(t.TempDir(), "vigil.db")
	if _, err := vulndb.Update(ctx, vulndb.Options{Path: dbPath, Sources: feed.FromMirror(mirror)}); err != nil {
		t.Fatal(err)
	}
	store, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	for _, a := range [][2]string{{"org", ""}, {"team", "org"}, {"other", ""}} {
		if _, err := store.CreateAccount(ctx, a[0], a[1]); err != nil {
			t.Fatal(err)
		}
	}
	eng := &engine.Engine{Store: store, DB: &engine.DBSource{Path: dbPath}, TempDir: t.TempDir(), AllowPrivateRegistries: true}
	pool := &worker.Pool{Store: store, Handlers: eng.Handlers(), Poll: 20 * time.Millisecond, Backoff: func(int) time.Duration { return 50 * time.Millisecond }}
	eng.Enqueued = pool.Wake
	jobs, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { pool.Run(jobs); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	tg, err := source.Open(ctx, filepath.Join(root, "report", "testdata", "rootfs"), source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	inv, err := collect.Collect(ctx, tg, collect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &Env{Store: store, Engine: eng, Inventory: inv}
}

// Key creates an API key of a role in an account.
func (e *Env) Key(t testing.TB, account, role string) string {
	t.Helper()
	s, _, err := e.Store.CreateKey(context.Background(), account, role, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
