package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/engine"
	"github.com/vigil-project/vigil/internal/testutil"
	"github.com/vigil-project/vigil/reconcile"
	"github.com/vigil-project/vigil/sqlstore"
)

// buildVigil builds the vigil binary into a temporary directory.
func buildVigil(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vigil")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// startProcess starts a vigil process and waits for a line on its stderr
// that starts with ready; it returns what follows it.
func startProcess(t *testing.T, bin, ready string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	got := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), ready); ok {
				select {
				case got <- rest:
				default:
				}
			}
		}
	}()
	select {
	case s := <-got:
		return cmd, s
	case <-time.After(60 * time.Second):
		t.Fatalf("vigil %s did not start", args[0])
		return nil, ""
	}
}

// TestWorkerKilledMidScan runs the server (API only) and a worker as real
// processes sharing one store, kills the worker with SIGKILL while it
// scans the Debian image, and starts another: the scan's job is taken
// over once its lease runs out and finishes with the findings a local
// scan has, each created once, with one creation event each.
func TestWorkerKilledMidScan(t *testing.T) {
	db := sharedScanDB(t)
	deb := testutil.Target(t, "debian-bookworm")
	bin := buildVigil(t)
	for _, backend := range []string{"postgres", "sqlite"} {
		t.Run(backend, func(t *testing.T) {
			var storeFlag []string
			var dsn string
			if backend == "postgres" {
				dsn = testutil.Postgres(t)
				storeFlag = []string{"--database", dsn}
			} else {
				dir := t.TempDir()
				dsn = filepath.Join(dir, "vigil-store.db")
				storeFlag = []string{"--data-dir", dir}
			}
			admin := func(args ...string) string {
				out, err := exec.Command(bin, append(append([]string{"admin"}, args...), storeFlag...)...).Output()
				if err != nil {
					t.Fatalf("admin %v: %v", args, err)
				}
				return strings.TrimSpace(string(out))
			}
			admin("account", "create", "acme")
			key := admin("key", "create", "--account", "acme", "--role", "admin")

			_, url := startProcess(t, bin, "vigil server listening on ", append([]string{"server", "--listen", "127.0.0.1:0", "--db", db, "--workers", "0"}, storeFlag...)...)
			workerArgs := append([]string{"worker", "--db", db, "--workers", "1", "--lease", "3s"}, storeFlag...)
			first, _ := startProcess(t, bin, "vigil worker running", workerArgs...)

			f, err := os.Open(filepath.Join(deb, "image.docker.tar"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			req, _ := http.NewRequest(http.MethodPost, url+"/v1/scans?name=debian-web&type=image", f)
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("Content-Type", "application/octet-stream")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var sc sqlstore.Scan
			json.NewDecoder(resp.Body).Decode(&sc)
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted || sc.ID == "" {
				t.Fatalf("submit: %s %+v", resp.Status, sc)
			}
			get := func() sqlstore.Scan {
				req, _ := http.NewRequest(http.MethodGet, url+"/v1/scans/"+sc.ID, nil)
				req.Header.Set("Authorization", "Bearer "+key)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var s sqlstore.Scan
				json.NewDecoder(resp.Body).Decode(&s)
				return s
			}
			// Kill the worker as soon as it runs the scan.
			deadline := time.Now().Add(60 * time.Second)
			for get().Status != sqlstore.ScanRunning {
				if time.Now().After(deadline) {
					t.Fatalf("the scan never ran: %+v", get())
				}
				time.Sleep(5 * time.Millisecond)
			}
			if err := first.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			first.Wait()
			if s := get(); s.Status != sqlstore.ScanRunning {
				t.Fatalf("the scan ended before the kill (%s): nothing was tested", s.Status)
			}
			killedAt := time.Now()

			startProcess(t, bin, "vigil worker running", workerArgs...)
			for s := get(); s.Status != sqlstore.ScanDone; s = get() {
				if s.Status == sqlstore.ScanFailed || time.Now().After(deadline.Add(60*time.Second)) {
					t.Fatalf("after the kill: %+v", s)
				}
				time.Sleep(50 * time.Millisecond)
			}
			t.Logf("taken over and finished %v after the kill (lease 3 s)", time.Since(killedAt).Round(100*time.Millisecond))

			// Check the store itself.
			ctx := context.Background()
			store, err := sqlstore.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			// The scan's status is written just before its job completes.
			var jobs []sqlstore.Job
			for {
				jobs, err = store.Jobs(ctx, engine.KindScan, "", 10)
				if err != nil || len(jobs) != 1 {
					t.Fatalf("scan jobs: %+v %v", jobs, err)
				}
				if jobs[0].State != sqlstore.JobRunning || time.Now().After(deadline.Add(70*time.Second)) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if j := jobs[0]; j.State != sqlstore.JobCompleted || j.Attempt != 2 {
				t.Fatalf("scan job: %s at attempt %d (%s)", j.State, j.Attempt, j.Error)
			}
			id, err := store.ResourceByName(ctx, 1, vigil.ResourceImage, "debian-web")
			if err != nil || id == "" {
				t.Fatalf("resource: %q %v", id, err)
			}
			p, _ := store.AccountPrincipal(ctx, 1)
			list, _, err := store.Findings(ctx, p, sqlstore.FindingFilter{ResourceID: id, Limit: 1000, Status: []string{reconcile.Active, reconcile.Suppressed, reconcile.Closed}})
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 91 {
				t.Fatalf("%d findings, want the 91 of a local scan", len(list))
			}
			seen := map[string]bool{}
			for _, f := range list {
				key := f.Finding.Vulnerability.ID
				if seen[key] {
					t.Errorf("duplicate finding for %s", key)
				}
				seen[key] = true
				hist, err := store.History(ctx, p, f.ID)
				if err != nil {
					t.Fatal(err)
				}
				if len(hist) != 1 || hist[0].Type != reconcile.Opened {
					t.Errorf("%s history: %s", key, fmtHistory(hist))
				}
			}
		})
	}
}

func fmtHistory(h []reconcile.Event) string {
	var b strings.Builder
	for _, e := range h {
		fmt.Fprintf(&b, "%s@%s ", e.Type, e.At.Format(time.RFC3339Nano))
	}
	return b.String()
}
