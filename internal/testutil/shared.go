// Package testutil holds helpers shared by tests.
package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// Shared returns the shared directory (real vulnerability data and scan
// targets): $VIGIL_SHARED if set, else ../shared beside the repository. A
// test that needs it is skipped, with a message, when it is absent.
func Shared(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("VIGIL_SHARED")
	if dir == "" {
		root, err := repoRoot()
		if err != nil {
			t.Skipf("shared data not available: %v", err)
		}
		dir = filepath.Join(root, "..", "shared")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("shared data not available (%v); set VIGIL_SHARED to the directory holding vulndata/ and targets/", err)
	}
	return dir
}

// Vulndata returns the shared vulnerability data snapshot, or skips.
func Vulndata(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(Shared(t), "vulndata")
	if _, err := os.Stat(filepath.Join(dir, "osv")); err != nil {
		t.Skipf("shared vulnerability data not available: %v", err)
	}
	return dir
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}
