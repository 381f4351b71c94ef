package testutil

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// Postgres creates a fresh, empty PostgreSQL database for one test or
// benchmark and returns its URL; the database is dropped when the test
// ends. The server is VIGIL_TEST_POSTGRES (default the local one on
// 127.0.0.1:5432, user postgres). An unreachable server skips the test,
// except in CI (CI set), where it fails it.
func Postgres(t testing.TB) string {
	t.Helper()
	base := os.Getenv("VIGIL_TEST_POSTGRES")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	admin, err := sql.Open("pgx", base)
	if err == nil {
		err = admin.Ping()
	}
	if err != nil {
		if admin != nil {
			admin.Close()
		}
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL unreachable at %s in CI: %v", base, err)
		}
		t.Skipf("PostgreSQL unreachable at %s (set VIGIL_TEST_POSTGRES): %v", base, err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "vigil_test_" + hex.EncodeToString(b)
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		admin.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		admin.Close()
	})
	cfg, err := pgxURL(base, name)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// pgxURL is base with its database replaced by name.
func pgxURL(base, name string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}
