package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/httpapi"
	"github.com/vigil-project/vigil/internal/testserver"
	"github.com/vigil-project/vigil/sqlstore"
)

// continuousServer is a real API server in-process, with its workers, on
// a SQLite store and a database built from the fixture mirror.
type continuousServer struct {
	srv                  *httptest.Server
	admin, analyst       string // keys of the organisation "org" and its member "team"
	agent, other, reader string // team's agent and read-only keys; other's admin key
	inventory            *vigil.Inventory
}

func startContinuousServer(t *testing.T) *continuousServer {
	t.Helper()
	env := testserver.Start(t, filepath.Join("..", ".."))
	api := &httpapi.Server{
		Store: env.Store, DB: env.Engine.DB, Engine: env.Engine, MaxBody: 1 << 20, AllowPrivateRegistries: true,
		// Hosts and images have prices, functions none: usage shows both.
		Prices:   map[string]httpapi.Price{"host": {Scan: 0.5, Rematch: 0.01}, "image": {Scan: 0.09, Rematch: 0.001}},
		Currency: "EUR",
	}
	cs := &continuousServer{
		srv:   httptest.NewServer(api.Handler()),
		admin: env.Key(t, "org", vigil.RoleAdmin), analyst: env.Key(t, "team", vigil.RoleAnalyst),
		agent: env.Key(t, "team", vigil.RoleAgent), other: env.Key(t, "other", vigil.RoleAdmin), reader: env.Key(t, "team", vigil.RoleReadOnly),
		inventory: env.Inventory,
	}
	t.Cleanup(cs.srv.Close)
	return cs
}

// call sends a JSON request to the server and fails the test unless it
// answers want.
func (cs *continuousServer) call(t *testing.T, method, path, key string, body any, want int) []byte {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, cs.srv.URL+path, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, out, want)
	}
	return out
}

// nodeFunctionZip writes a Node.js function package whose lockfile pins
// lodash 4.17.15, which the fixture database knows vulnerable.
func nodeFunctionZip(t *testing.T, path string) {
	t.Helper()
	const lodash = "4.17.15"
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range [][2]string{
		{"index.js", "exports.handler = async () => require('lodash').VERSION;\n"},
		{"package.json", `{"name": "fn", "version": "1.0.0", "dependencies": {"lodash": "` + lodash + `"}}`},
		{"package-lock.json", `{"name": "fn", "version": "1.0.0", "lockfileVersion": 3, "requires": true, "packages": {
			"": {"name": "fn", "version": "1.0.0", "dependencies": {"lodash": "` + lodash + `"}},
			"node_modules/lodash": {"version": "` + lodash + `", "resolved": "https://registry.npmjs.org/lodash/-/lodash-` + lodash + `.tgz"}}}`},
	} {
		w, err := zw.Create(f[0])
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, f[1])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// continuousRedactions replace what changes from run to run: ids, times,
// webhook secrets. The server's URL and the month are replaced first.
var continuousRedactions = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\b[0-9a-f]{32}\b`), "<id>"},
	{regexp.MustCompile(`\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})`), "<time>"},
	{regexp.MustCompile(`whsec_[A-Za-z0-9_-]+`), "<secret>"},
}

func redactContinuous(s, server, tmp string) string {
	s = strings.ReplaceAll(s, server, "<server>")
	s = strings.ReplaceAll(s, tmp, "<tmp>")
	for _, r := range continuousRedactions {
		s = r.re.ReplaceAllString(s, r.with)
	}
	// After the times, so that only a month standing alone is replaced.
	return strings.ReplaceAll(s, time.Now().UTC().Format("2006-01"), "<month>")
}

// TestContinuousCLI runs the client commands of continuous scanning
// (coverage, usage, registry, function) against a real server, in both
// formats, and their error paths, comparing normalised output with golden
// files.
func TestContinuousCLI(t *testing.T) {
	cs := startContinuousServer(t)
	tmp := t.TempDir()

	// Content: two hosts and an image of team, by its agent; one host
	// excluded by tag.
	for _, r := range []httpapi.SubmitRequest{
		{Type: "host", Name: "web-1", Tags: map[string]string{"env": "prod"}, Inventory: cs.inventory},
		{Type: "host", Name: "db-1", Inventory: cs.inventory},
		{Type: "image", Name: "registry.example.com/app:1", Tags: map[string]string{"env": "prod"}, Inventory: cs.inventory},
	} {
		cs.call(t, http.MethodPost, "/v1/inventories", cs.agent, r, http.StatusOK)
	}
	var rl httpapi.ResourceList
	if err := json.Unmarshal(cs.call(t, http.MethodGet, "/v1/resources?type=host", cs.analyst, nil, http.StatusOK), &rl); err != nil {
		t.Fatal(err)
	}
	for _, r := range rl.Resources {
		if r.Name == "db-1" {
			cs.call(t, http.MethodPatch, "/v1/resources/"+r.ID+"/tags", cs.analyst, httpapi.TagRequest{Set: map[string]string{vigil.DefaultExcludeTag: "yes"}}, http.StatusOK)
		}
	}

	server := []string{"--server", cs.srv.URL, "--key", cs.admin}
	with := func(args ...string) []string { return append(args, server...) }
	fnZip := filepath.Join(tmp, "checkout.zip")
	nodeFunctionZip(t, fnZip)
	month := time.Now().UTC().Format("2006-01")

	// In order: the function is put before coverage and usage are read,
	// and registries are added before they are listed and removed.
	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		code   int
		golden string // compared with stdout
	}{
		{"function put", with("function", "put", fnZip, "--name", "checkout", "--runtime", "nodejs20.x", "--tag", "env=prod", "--account", "team", "--wait", "2m"), nil, exitOK, "continuous-function-put.json"},

		{"coverage list", with("coverage", "list"), nil, exitOK, "continuous-coverage-list.table"},
		{"coverage list json", with("coverage", "list", "--format", "json"), nil, exitOK, "continuous-coverage-list.json"},
		{"coverage list host", with("coverage", "list", "--type", "host", "--status", "ACTIVE"), nil, exitOK, "continuous-coverage-list-host.table"},
		{"coverage list excluded", with("coverage", "list", "--reason", vigil.ReasonExcludedByTag, "--format", "json"), nil, exitOK, "continuous-coverage-list-excluded.json"},
		{"coverage list by tag", with("coverage", "list", "--tag", "env=prod"), nil, exitOK, "continuous-coverage-list-tag.table"},
		{"coverage list none", with("coverage", "list", "--type", "image", "--status", "INACTIVE", "--format", "json"), nil, exitOK, "continuous-coverage-list-none.json"},
		{"coverage list other account", []string{"coverage", "list", "--server", cs.srv.URL, "--key", cs.other}, nil, exitOK, "continuous-coverage-list-other.table"},
		{"coverage stats", with("coverage", "stats"), nil, exitOK, "continuous-coverage-stats.table"},
		{"coverage stats json", with("coverage", "stats", "--format", "json"), nil, exitOK, "continuous-coverage-stats.json"},
		{"coverage stats from env", []string{"coverage", "stats"}, map[string]string{"VIGIL_SERVER": cs.srv.URL, "VIGIL_KEY": cs.admin}, exitOK, "continuous-coverage-stats.table"},

		{"usage", with("usage"), nil, exitOK, "continuous-usage.table"},
		{"usage json", with("usage", "--format", "json"), nil, exitOK, "continuous-usage.json"},
		{"usage this month", with("usage", "--from", month, "--to", month, "--format", "json"), nil, exitOK, "continuous-usage.json"},
		{"usage before", with("usage", "--to", "2001-01"), nil, exitOK, "continuous-usage-none.table"},

		{"registry add", with("registry", "add", "https://registry.example.com", "--include", "team/*", "--exclude", "team/tmp-*", "--account", "team"), nil, exitOK, "continuous-registry-add.txt"},
		{"registry add json", with("registry", "add", "http://10.0.0.5:5000", "--username", "bot", "--password-env", "REG_PASSWORD", "--format", "json"), map[string]string{"REG_PASSWORD": "s3cret"}, exitOK, "continuous-registry-add.json"},
		{"registry list", with("registry", "list"), nil, exitOK, "continuous-registry-list.table"},
		{"registry list json", with("registry", "list", "--format", "json"), nil, exitOK, "continuous-registry-list.json"},
	}
	run := func(t *testing.T, env map[string]string, args []string) (int, string, string) {
		t.Helper()
		code, stdout, stderr := runCLI(t, env, args...)
		return code, redactContinuous(stdout, cs.srv.URL, tmp), redactContinuous(stderr, cs.srv.URL, tmp)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(t, tt.env, tt.args)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tt.code, stderr)
			}
			if stderr != "" {
				t.Errorf("stderr: %q", stderr)
			}
			golden(t, tt.golden, stdout)
		})
	}

	// The password never comes back; the webhook secret only once.
	_, out, _ := runCLI(t, nil, with("registry", "list", "--format", "json")...)
	if strings.Contains(out, "s3cret") || strings.Contains(out, "whsec_") {
		t.Errorf("registry list shows a secret:\n%s", out)
	}

	// Remove a registry by its id; the list no longer has it.
	var regs struct {
		Registries []sqlstore.Registry `json:"registries"`
	}
	if err := json.Unmarshal([]byte(out), &regs); err != nil || len(regs.Registries) != 2 {
		t.Fatalf("registries: %v\n%s", err, out)
	}
	t.Run("registry remove", func(t *testing.T) {
		code, stdout, stderr := run(t, nil, with("registry", "remove", regs.Registries[0].ID))
		if code != exitOK || stderr != "" {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
		golden(t, "continuous-registry-remove.txt", stdout)
		_, stdout, _ = run(t, nil, with("registry", "list"))
		golden(t, "continuous-registry-list-after-remove.table", stdout)
	})

	// Error paths: each command's exit code and stderr, one golden file.
	missing := filepath.Join(tmp, "missing.zip")
	var errs strings.Builder
	for _, c := range []struct {
		args []string
		code int
	}{
		{with("coverage", "list", "--format", "xml"), exitUsage},
		{with("coverage", "stats", "--format", "yaml"), exitUsage},
		{with("usage", "--format", "csv"), exitUsage},
		{with("registry", "list", "--format", "xml"), exitUsage},
		{[]string{"coverage", "list"}, exitUsage},
		{[]string{"coverage", "stats", "--server", cs.srv.URL}, exitUsage},
		{[]string{"usage", "--key", cs.admin}, exitUsage},
		{[]string{"registry", "list"}, exitUsage},
		{[]string{"usage", "--server", "ftp://example.com", "--key", cs.admin}, exitUsage},
		{with("coverage"), exitUsage},
		{with("coverage", "frobnicate"), exitUsage},
		{with("coverage", "list", "extra"), exitUsage},
		{with("coverage", "list", "--status", "MAYBE"), exitFail},
		{with("registry", "add", "ftp://registry.example.com"), exitFail},
		{with("registry", "add", "https://registry.example.com/team/app"), exitFail},
		{with("registry", "add", "https://registry.example.com", "--account", "team"), exitFail},
		{with("registry", "add", "https://x.example.com", "--password-env", "UNSET", "--username", "u"), exitUsage},
		{with("registry", "add"), exitUsage},
		{with("registry", "remove", "nosuchregistry"), exitFail},
		{with("function", "put", missing, "--name", "checkout"), exitUsage},
		{with("function", "put", fnZip), exitUsage},
		{with("usage", "--from", "2026-13"), exitFail},
		{with("usage", "--to", "yesterday"), exitFail},
		{[]string{"coverage", "list", "--server", cs.srv.URL, "--key", "vgl_nosuchkey"}, exitFail},
		{[]string{"registry", "add", "https://y.example.com", "--server", cs.srv.URL, "--key", cs.reader}, exitFail},
	} {
		code, stdout, stderr := run(t, nil, c.args)
		line := strings.Join(c.args, " ")
		line = strings.ReplaceAll(strings.ReplaceAll(line, cs.srv.URL, "<server>"), tmp, "<tmp>")
		for _, k := range []string{cs.admin, cs.reader} {
			line = strings.ReplaceAll(line, k, "<key>")
		}
		if code != c.code {
			t.Errorf("vigil %s: exit %d, want %d; stderr %q", line, code, c.code, stderr)
		}
		if stdout != "" {
			t.Errorf("vigil %s: stdout %q", line, stdout)
		}
		fmt.Fprintf(&errs, "$ vigil %s\nexit %d\n%s\n", line, code, stderr)
	}
	golden(t, "continuous-errors.txt", errs.String())
}
