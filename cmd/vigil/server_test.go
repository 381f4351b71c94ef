package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-project/vigil/httpapi"
	"github.com/vigil-project/vigil/internal/testutil"
)

// End to end through HTTP with a real server process: bootstrap an
// account and keys, submit the Debian image, list its findings, submit a
// changed inventory and see the findings close, then reopen.
func TestServerEndToEnd(t *testing.T) {
	db := sharedScanDB(t)
	deb := testutil.Target(t, "debian-bookworm")
	bin := buildVigil(t)
	data := filepath.Join(t.TempDir(), "data")
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "VIGIL_DB="+db)
		out, err := cmd.Output()
		if err != nil {
			var stderr string
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("vigil %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
		}
		return string(out)
	}
	run("admin", "account", "create", "acme", "--data-dir", data)
	adminKey := strings.TrimSpace(run("admin", "key", "create", "--account", "acme", "--role", "admin", "--data-dir", data))
	agentKey := strings.TrimSpace(run("admin", "key", "create", "--account", "acme", "--role", "agent", "--data-dir", data))
	if !strings.HasPrefix(adminKey, "vgl_") || adminKey == agentKey {
		t.Fatalf("keys %q %q", adminKey, agentKey)
	}
	spare := strings.TrimSpace(run("admin", "key", "create", "--account", "acme", "--role", "read-only", "--data-dir", data))
	run("admin", "key", "revoke", "3", "--data-dir", data)

	_, url := startProcess(t, bin, "vigil server listening on ", "server", "--listen", "127.0.0.1:0", "--data-dir", data, "--db", db)

	scan := func(target string) {
		t.Helper()
		run("scan", "--server", url, "--key", agentKey, "--name", "debian-web", "--resource-type", "image", "--tag", "env=prod", "--format", "json", target)
	}
	list := func(args ...string) httpapi.FindingList {
		t.Helper()
		var l httpapi.FindingList
		out := run(append([]string{"findings", "list", "--server", url, "--key", adminKey, "--format", "json", "--limit", "1000"}, args...)...)
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return l
	}

	scan(filepath.Join(deb, "image.docker.tar"))
	active := list("--status", "ACTIVE")
	if len(active.Findings) != 91 {
		t.Fatalf("%d active findings after the first scan, want the 91 of a local scan", len(active.Findings))
	}
	openssl := list("--package", "libssl3")
	if len(openssl.Findings) == 0 {
		t.Fatal("no libssl3 findings")
	}
	// A revoked key is refused; the agent may submit, not read.
	if out, err := exec.Command(bin, "findings", "list", "--server", url, "--key", spare).CombinedOutput(); err == nil || !strings.Contains(string(out), "401") {
		t.Errorf("revoked key: %v %s", err, out)
	}
	cmd := exec.Command(bin, "findings", "list", "--server", url, "--key", agentKey)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "403") {
		t.Errorf("agent read findings: %v %s", err, out)
	}

	// A changed inventory: the image rebuilt without those packages.
	scan(filepath.Join("..", "..", "report", "testdata", "rootfs"))
	closed := list("--status", "CLOSED")
	still := list("--status", "ACTIVE")
	// The rebuilt image still has an old openssl: its CVEs stay, the rest
	// close; its npm lockfile opens new ones.
	before := map[string]bool{}
	for _, f := range active.Findings {
		before[f.ID] = true
	}
	kept := 0
	for _, f := range still.Findings {
		if !before[f.ID] {
			continue
		}
		kept++
		if f.Finding.Packages[0].Name != "libssl3" && f.Finding.Packages[0].Name != "openssl" {
			t.Errorf("%s still active on %s", f.Finding.Vulnerability.ID, f.Finding.Packages[0].Name)
		}
	}
	if len(closed.Findings) == 0 || len(closed.Findings)+kept != 91 {
		t.Errorf("%d closed and %d kept after the rebuild, want 91 in all", len(closed.Findings), kept)
	}
	active = closed
	scan(filepath.Join(deb, "image.docker.tar"))
	if n := len(list("--status", "ACTIVE", "--vuln", active.Findings[0].Finding.Vulnerability.ID).Findings); n != 1 {
		t.Errorf("finding not reopened: %d", n)
	}
	out := run("findings", "get", active.Findings[0].ID, "--server", url, "--key", adminKey)
	var d httpapi.FindingDetail
	json.Unmarshal([]byte(out), &d)
	if len(d.History) != 3 || d.History[2].Type != "FINDING_REOPENED" || d.FirstObserved.After(d.LastObserved) {
		t.Errorf("history: %+v", d.History)
	}

	agg := run("findings", "aggregate", "--by", "package", "--server", url, "--key", adminKey)
	if !strings.Contains(agg, "Debian:12 libssl3 3.0.20-1~deb12u2") {
		t.Errorf("aggregate by package:\n%s", agg)
	}
	res := run("resources", "list", "--server", url, "--key", adminKey, "--format", "json")
	var rl struct {
		Resources []struct {
			ID   string            `json:"id"`
			Name string            `json:"name"`
			Tags map[string]string `json:"tags"`
		} `json:"resources"`
	}
	json.Unmarshal([]byte(res), &rl)
	if len(rl.Resources) != 1 || rl.Resources[0].Name != "debian-web" || rl.Resources[0].Tags["env"] != "prod" {
		t.Fatalf("resources: %s", res)
	}
	run("resources", "tag", rl.Resources[0].ID, "owner=platform", "--server", url, "--key", adminKey)
	if n := len(list("--filter", "resourceTag=owner=platform", "--status", "ACTIVE").Findings); n != 91 {
		t.Errorf("%d findings by the new tag", n)
	}
}
