package sqlstore_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/vigil-project/vigil/internal/storetest"
	"github.com/vigil-project/vigil/internal/testutil"
	"github.com/vigil-project/vigil/sqlstore"
)

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) *sqlstore.Store {
		s, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "vigil.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestPostgres runs the suite on PostgreSQL (VIGIL_TEST_POSTGRES, default
// the local server on 127.0.0.1:5432), one fresh database per test.
func TestPostgres(t *testing.T) {
	testutil.Postgres(t) // skips, or fails in CI, when the server is down
	storetest.Run(t, func(t *testing.T) *sqlstore.Store {
		s, err := sqlstore.Open(context.Background(), testutil.Postgres(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
