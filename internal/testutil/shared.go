// Package testutil holds helpers shared by tests.
package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
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

// SharedAvailable reports whether the shared directory is there, for
// tests that use it when they can and something smaller when they cannot.
func SharedAvailable() bool {
	dir := os.Getenv("VIGIL_SHARED")
	if dir == "" {
		root, err := repoRoot()
		if err != nil {
			return false
		}
		dir = filepath.Join(root, "..", "shared")
	}
	_, err := os.Stat(filepath.Join(dir, "targets", "build"))
	return err == nil
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

// Target builds (once; the script caches it outside the repository) a real
// scan target from ../shared/targets and returns its folder, or skips when
// the shared directory is absent. VIGIL_TARGETS overrides the cache.
func Target(t testing.TB, name string) string {
	t.Helper()
	script := filepath.Join(Shared(t), "targets", "build")
	if _, err := os.Stat(script); err != nil {
		t.Skipf("target scripts not available: %v", err)
	}
	targetMu.Lock()
	defer targetMu.Unlock()
	if dir, ok := targetDirs[name]; ok {
		return dir
	}
	// Test binaries of several packages run at once: build one at a time.
	cache := os.Getenv("VIGIL_TARGETS")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "vigil-targets")
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(cache, ".vigil-test.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	cmd := exec.Command("bash", script, name)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("build target %s: %v", name, err)
	}
	dir := strings.TrimSpace(string(out))
	if i := strings.LastIndexByte(dir, '\n'); i >= 0 {
		dir = dir[i+1:]
	}
	targetDirs[name] = dir
	return dir
}

var (
	targetMu   sync.Mutex
	targetDirs = map[string]string{}
)
