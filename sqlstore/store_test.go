package sqlstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigil-project/vigil/internal/storetest"
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
	base := os.Getenv("VIGIL_TEST_POSTGRES")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	admin, err := sql.Open("pgx", base)
	if err == nil {
		err = admin.Ping()
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL unreachable at %s in CI: %v", base, err)
		}
		t.Skipf("PostgreSQL unreachable at %s (set VIGIL_TEST_POSTGRES): %v", base, err)
	}
	defer admin.Close()
	storetest.Run(t, func(t *testing.T) *sqlstore.Store {
		b := make([]byte, 6)
		rand.Read(b)
		name := "vigil_test_" + hex.EncodeToString(b)
		if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") })
		s, err := sqlstore.Open(context.Background(), "postgres://postgres@127.0.0.1:5432/"+name+"?sslmode=disable")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
