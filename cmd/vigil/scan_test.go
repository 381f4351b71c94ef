package main

import (
	"archive/zip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-project/vigil/feed"
	"github.com/vigil-project/vigil/internal/testutil"
	"github.com/vigil-project/vigil/vulndb"
)

// scanRedactions replace what changes from run to run in scan outputs.
var scanRedactions = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`"(scannedAt|collectedAt|builtAt|checkedAt|timestamp|created)": "[^"]*"`), `"$1": "<time>"`},
	{regexp.MustCompile(`"durationMs": [0-9]+`), `"durationMs": 0`},
	{regexp.MustCompile(`"version": "dev"`), `"version": "<version>"`},
	{regexp.MustCompile(`vigil-dev`), `vigil-<version>`},
}

func redactScan(s string) string {
	for _, r := range scanRedactions {
		s = r.re.ReplaceAllString(s, r.with)
	}
	return s
}

func buildDB(t *testing.T, mirror string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vigil.db")
	if _, err := vulndb.Update(context.Background(), vulndb.Options{Path: path, Sources: feed.FromMirror(mirror)}); err != nil {
		t.Fatal(err)
	}
	return path
}

// Golden files for every output format, on a fixture root filesystem and
// a fixture database.
func TestScanOutputsGolden(t *testing.T) {
	db := buildDB(t, testutil.FixtureMirror(t, filepath.Join("..", "..", "match", "testdata", "mirror")))
	rootfs := filepath.Join("..", "..", "report", "testdata", "rootfs")
	env := map[string]string{"VIGIL_DB": db}
	for _, format := range []string{"table", "json", "sarif", "cyclonedx-json"} {
		code, stdout, stderr := runCLI(t, env, "scan", "--format", format, rootfs)
		if code != exitOK {
			t.Fatalf("%s: exit %d: %s", format, code, stderr)
		}
		golden(t, "scan-rootfs."+format, redactScan(stdout))
		if format != "table" {
			var v any
			if err := json.Unmarshal([]byte(stdout), &v); err != nil {
				t.Errorf("%s output is not JSON: %v", format, err)
			}
		}
	}
}

func TestScanFlagsAndExitCodes(t *testing.T) {
	db := buildDB(t, testutil.FixtureMirror(t, filepath.Join("..", "..", "match", "testdata", "mirror")))
	rootfs := filepath.Join("..", "..", "report", "testdata", "rootfs")
	dir := t.TempDir()
	ignore := filepath.Join(dir, "ignore.yaml")
	os.WriteFile(ignore, []byte("- id: CVE-2024-5535\n  reason: not reachable in our build\n"), 0o644)
	ignoreAll := filepath.Join(dir, "ignore-all.yaml")
	os.WriteFile(ignoreAll, []byte("- id: CVE-2024-5535\n  reason: not reachable in our build\n  expires: 2999-01-01\n- id: GHSA-p6mc-m468-83gw\n  package: pkg:npm/lodash\n  reason: lodash.set is never called\n"), 0o644)
	expired := filepath.Join(dir, "expired.yaml")
	os.WriteFile(expired, []byte("- id: CVE-2024-5535\n  reason: accepted until the next release\n  expires: 2020-01-01\n"), 0o644)
	scoped := filepath.Join(dir, "scoped.yaml")
	os.WriteFile(scoped, []byte("ignore:\n  - id: cve-2024-5535\n    package: libssl3\n    reason: the library is never loaded\n"), 0o644)
	vex := filepath.Join(dir, "vex.json")
	os.WriteFile(vex, []byte(`{"@context":"https://openvex.dev/ns/v0.2.0","@id":"x","author":"me","timestamp":"2026-01-01T00:00:00Z","version":1,
		"statements":[{"vulnerability":{"name":"CVE-2024-5535"},"products":[{"@id":"pkg:deb/debian/libssl3"}],"status":"not_affected","justification":"vulnerable_code_not_in_execute_path"}]}`), 0o644)
	badIgnore := filepath.Join(dir, "bad.yaml")
	os.WriteFile(badIgnore, []byte("- id: CVE-2024-5535\n"), 0o644)
	env := map[string]string{"VIGIL_DB": db}

	type check func(t *testing.T, doc scanDoc)
	for _, c := range []struct {
		name   string
		args   []string
		code   int
		stderr string
		check  check
	}{
		{"no findings at fail-on", []string{"--fail-on", "CRITICAL"}, exitOK, "", nil},
		{"findings at fail-on", []string{"--fail-on", "LOW"}, exitFail, "", nil},
		{"any finding", []string{"--fail-on", "untriaged"}, exitFail, "", nil},
		{"severity filter", []string{"--severity", "CRITICAL,HIGH"}, exitOK, "", func(t *testing.T, d scanDoc) {
			if len(d.Findings) != 1 || d.Findings[0].Severity != "HIGH" {
				t.Errorf("findings %v", d.Findings)
			}
		}},
		{"ignored, reported as suppressed", []string{"--ignore-file", ignore}, exitOK, "", func(t *testing.T, d scanDoc) {
			if len(d.Findings) != 2 || d.Findings[1].Suppressed == nil || d.Findings[1].Suppressed.Reason != "not reachable in our build" || d.Summary["suppressed"] != 1 || d.Summary["HIGH"] != 1 {
				t.Errorf("findings %+v summary %v", d.Findings, d.Summary)
			}
		}},
		{"suppressed findings do not fail", []string{"--ignore-file", ignoreAll, "--fail-on", "LOW"}, exitOK, "", func(t *testing.T, d scanDoc) {
			if d.Summary["suppressed"] != 2 {
				t.Errorf("summary %v", d.Summary)
			}
		}},
		{"expired rule stops suppressing", []string{"--ignore-file", expired, "--fail-on", "LOW"}, exitFail, "expired on 2020-01-01", nil},
		{"scoped rule splits the finding", []string{"--ignore-file", scoped}, exitOK, "", func(t *testing.T, d scanDoc) {
			var active, hidden []string
			for _, f := range d.Findings {
				if f.Vulnerability.ID != "CVE-2024-5535" {
					continue
				}
				for _, p := range f.Packages {
					if f.Suppressed == nil {
						active = append(active, p.Name)
					} else {
						hidden = append(hidden, p.Name)
					}
				}
			}
			if strings.Join(active, ",") != "openssl" || strings.Join(hidden, ",") != "libssl3" {
				t.Errorf("active %q hidden %q", active, hidden)
			}
		}},
		{"openvex", []string{"--ignore-file", vex}, exitOK, "", func(t *testing.T, d scanDoc) {
			for _, f := range d.Findings {
				if f.Vulnerability.ID == "CVE-2024-5535" && f.Suppressed != nil {
					if len(f.Packages) != 1 || f.Packages[0].Name != "libssl3" || !strings.Contains(f.Suppressed.Reason, "vulnerable_code_not_in_execute_path") {
						t.Errorf("suppressed %+v", f)
					}
					return
				}
			}
			t.Errorf("nothing suppressed: %+v", d.Findings)
		}},
		{"rule without reason", []string{"--ignore-file", badIgnore}, exitUsage, "no reason", nil},
		{"bad severity", []string{"--severity", "SEVERE"}, exitUsage, "not a severity", nil},
		{"bad fail-on", []string{"--fail-on", "urgent"}, exitUsage, "not a severity", nil},
		{"offline registry", []string{"--offline", "registry.example.com/app:1"}, exitUsage, "--offline", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"scan", "--format", "json"}, c.args...)
			if !slices.Contains(c.args, "registry.example.com/app:1") {
				args = append(args, rootfs)
			}
			code, stdout, stderr := runCLI(t, env, args...)
			if code != c.code {
				t.Errorf("exit %d, want %d; stderr %q", code, c.code, stderr)
			}
			if c.stderr != "" && !strings.Contains(stderr, c.stderr) {
				t.Errorf("stderr %q lacks %q", stderr, c.stderr)
			}
			if c.check != nil {
				var d scanDoc
				if err := json.Unmarshal([]byte(stdout), &d); err != nil {
					t.Fatal(err)
				}
				c.check(t, d)
			}
		})
	}
	// No database: a clear error that gives the command to create one.
	code, _, stderr := runCLI(t, map[string]string{"VIGIL_DB": filepath.Join(dir, "none.db")}, "scan", rootfs)
	if code != exitUsage || !strings.Contains(stderr, "vigil db update") {
		t.Errorf("no database: exit %d %q", code, stderr)
	}
}

type scanDoc struct {
	SchemaVersion int            `json:"schemaVersion"`
	Summary       map[string]int `json:"summary"`
	Findings      []struct {
		Vulnerability struct {
			ID      string   `json:"id"`
			Aliases []string `json:"aliases"`
		} `json:"vulnerability"`
		Severity     string `json:"severity"`
		FixAvailable string `json:"fixAvailable"`
		Suppressed   *struct {
			Reason string `json:"reason"`
		} `json:"suppressed"`
		Packages []struct {
			Name, Version, Ecosystem, Purl, Path, Layer string
			FixedVersion                                string `json:"fixedVersion"`
		} `json:"packages"`
	} `json:"findings"`
	Warnings []string `json:"warnings"`
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedDBPath != "" {
		os.RemoveAll(filepath.Dir(sharedDBPath))
	}
	os.Exit(code)
}

var (
	sharedDBOnce sync.Once
	sharedDBPath string
	sharedDBErr  error
)

func sharedScanDB(t *testing.T) string {
	src := testutil.Vulndata(t)
	sharedDBOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vigil-scan-test-")
		if err != nil {
			sharedDBErr = err
			return
		}
		sharedDBPath = filepath.Join(dir, "vigil.db")
		_, sharedDBErr = vulndb.Update(context.Background(), vulndb.Options{Path: sharedDBPath, Sources: feed.FromMirror(src)})
	})
	if sharedDBErr != nil {
		t.Fatal(sharedDBErr)
	}
	return sharedDBPath
}

func scanJSON(t *testing.T, db, target string) scanDoc {
	t.Helper()
	code, stdout, stderr := runCLI(t, map[string]string{"VIGIL_DB": db}, "scan", "--format", "json", target)
	if code != exitOK {
		t.Fatalf("scan %s: exit %d: %s", target, code, stderr)
	}
	var d scanDoc
	if err := json.Unmarshal([]byte(stdout), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestScanNodeFunction(t *testing.T) {
	db := sharedScanDB(t)
	dir := testutil.Target(t, "node-function")
	d := scanJSON(t, db, filepath.Join(dir, "function.zip"))
	found := false
	for _, f := range d.Findings {
		if f.Vulnerability.ID == "CVE-2020-8203" {
			found = slices.Contains(f.Vulnerability.Aliases, "GHSA-p6mc-m468-83gw") && len(f.Packages) == 1 &&
				f.Packages[0].Name == "lodash" && f.Packages[0].Version == "4.17.15" && f.Packages[0].FixedVersion == "4.17.20"
		}
	}
	if !found {
		t.Error("lodash 4.17.15 lacks CVE-2020-8203 (GHSA-p6mc-m468-83gw) fixed in 4.17.20")
	}
	code, _, _ := runCLI(t, map[string]string{"VIGIL_DB": db}, "scan", "--format", "json", "--fail-on", "CRITICAL", filepath.Join(dir, "function.zip"))
	if code != exitFail {
		t.Errorf("--fail-on CRITICAL: exit %d, want 1", code)
	}
}

// The Debian image's libssl3 and openssl are listed together under each
// openssl CVE that the shared Debian:12 records fix in 3.0.22.
func TestScanDebianImage(t *testing.T) {
	db := sharedScanDB(t)
	dir := testutil.Target(t, "debian-bookworm")
	want := debian12Fixes(t, "openssl", "3.0.22")
	if len(want) == 0 {
		t.Fatal("no Debian:12 openssl records fixed in 3.0.22 in the shared data")
	}
	d := scanJSON(t, db, filepath.Join(dir, "image.docker.tar"))
	got := map[string]bool{}
	for _, f := range d.Findings {
		var names []string
		for _, p := range f.Packages {
			names = append(names, p.Name+" "+p.Version)
		}
		slices.Sort(names)
		if strings.Join(names, ",") == "libssl3 3.0.20-1~deb12u2,openssl 3.0.20-1~deb12u2" {
			got[f.Vulnerability.ID] = true
		}
	}
	for _, id := range want {
		if !got[id] {
			t.Errorf("%s does not list libssl3 and openssl together", id)
		}
	}
	// Python and Java packages that dpkg installed are not reported again.
	for _, f := range d.Findings {
		for _, p := range f.Packages {
			if p.Ecosystem == "PyPI" || p.Ecosystem == "Maven" {
				t.Errorf("%s reported on %s %s, which dpkg installed", f.Vulnerability.ID, p.Ecosystem, p.Name)
			}
		}
	}
}

// debian12Fixes reads the shared zip for the CVEs of a Debian:12 source
// package whose fixed version starts with prefix.
func debian12Fixes(t *testing.T, pkg, prefix string) []string {
	zr, err := zip.OpenReader(filepath.Join(testutil.Vulndata(t), "osv", "Debian", "all.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var out []string
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(rc)
		rc.Close()
		var rec struct {
			ID       string   `json:"id"`
			Upstream []string `json:"upstream"`
			Affected []struct {
				Package struct{ Ecosystem, Name string } `json:"package"`
				Ranges  []struct {
					Events []map[string]string `json:"events"`
				} `json:"ranges"`
			} `json:"affected"`
		}
		json.Unmarshal(data, &rec)
		for _, a := range rec.Affected {
			if a.Package.Ecosystem != "Debian:12" || a.Package.Name != pkg {
				continue
			}
			for _, r := range a.Ranges {
				for _, e := range r.Events {
					if strings.HasPrefix(e["fixed"], prefix) && len(rec.Upstream) == 1 {
						out = append(out, rec.Upstream[0])
					}
				}
			}
		}
	}
	return out
}
