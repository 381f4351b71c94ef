package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vigil-project/vigil/internal/testutil"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/")

// redact replaces what changes from run to run (paths, times, durations).
var redactions = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`"(builtAt|checkedAt|ingestedAt)": "[^"]*"`), `"$1": "<time>"`},
	{regexp.MustCompile(`"sizeBytes": [0-9]+`), `"sizeBytes": 0`},
	{regexp.MustCompile(`"(path|location)": "[^"]*"`), `"$1": "<path>"`},
	{regexp.MustCompile(`"lastModified": "[^"]*"`), `"lastModified": "<time>"`},
	// Zips written by the test depend on the Go version's deflate.
	{regexp.MustCompile(`"digest": "sha256:[0-9a-f]{64}"`), `"digest": "<digest>"`},
	{regexp.MustCompile(`"size": [0-9]+`), `"size": 0`},
}

func redact(s, tmp string) string {
	s = strings.ReplaceAll(s, tmp, "<tmp>")
	for _, r := range redactions {
		s = r.re.ReplaceAllString(s, r.with)
	}
	return s
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden file (run with -update to accept):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := runWith(context.Background(), args, nil, &stdout, &stderr, func(k string) string { return env[k] })
	return code, stdout.String(), stderr.String()
}

func TestDBCommands(t *testing.T) {
	mirror := testutil.FixtureMirror(t, filepath.Join("..", "..", "vulndb", "testdata", "mirror"))
	tmp := t.TempDir()
	db := filepath.Join(tmp, "vigil.db")
	env := map[string]string{"VIGIL_DB": db}

	// No database yet: a clear error naming the command that builds one.
	code, _, stderr := runCLI(t, env, "db", "show", "CVE-2021-44228")
	if code != exitFail || !strings.Contains(stderr, "vigil db update") {
		t.Errorf("show without a database: exit %d, %q", code, stderr)
	}

	code, stdout, stderr := runCLI(t, env, "db", "update", "--source", mirror)
	if code != exitOK {
		t.Fatalf("update: exit %d: %s", code, stderr)
	}
	if !strings.HasPrefix(stdout, "vigil db: updated: revision 1, ") || strings.Count(stdout, "\n") != 1 {
		t.Errorf("update summary = %q", stdout)
	}
	code, stdout, _ = runCLI(t, env, "db", "update", "--source", mirror)
	if code != exitOK || !strings.HasPrefix(stdout, "vigil db: up to date: revision 1, ") {
		t.Errorf("second update: exit %d %q", code, stdout)
	}

	tests := []struct {
		name   string
		args   []string
		code   int
		golden string // compared with stdout when set
		stderr string // contained in stderr when set
	}{
		{"show json", []string{"db", "show", "CVE-2021-44228", "--format", "json"}, exitOK, "show-log4shell.json", ""},
		{"show by alias, flags first", []string{"db", "show", "--format", "json", "GHSA-p6mc-m468-83gw"}, exitOK, "show-lodash.json", ""},
		{"show text", []string{"db", "show", "DSA-5103-1"}, exitOK, "show-dsa-5103.txt", ""},
		{"show split advisory", []string{"db", "show", "DSA-3287-1"}, exitFail, "", "covering 2 vulnerabilities: CVE-2014-8176, CVE-2015-1789"},
		{"show unknown", []string{"db", "show", "CVE-1999-0000"}, exitFail, "", "no such vulnerability"},
		{"show no id", []string{"db", "show"}, exitUsage, "", "Usage:"},
		{"show bad format", []string{"db", "show", "CVE-2021-44228", "--format", "xml"}, exitUsage, "", `unknown format "xml"`},
		{"status json", []string{"db", "status", "--format", "json"}, exitOK, "status.json", ""},
		{"lookup", []string{"db", "lookup", "Debian:11", "openssl"}, exitOK, "lookup-openssl.txt", ""},
		{"lookup json", []string{"db", "lookup", "PyPI", "pygments", "--format", "json"}, exitOK, "lookup-pygments.json", ""},
		{"lookup nothing", []string{"db", "lookup", "npm", "left-pad"}, exitOK, "lookup-none.txt", ""},
		{"lookup unknown ecosystem", []string{"db", "lookup", "debian:12", "openssl"}, exitUsage, "", `unknown ecosystem "debian:12"`},
		{"unknown flag", []string{"db", "status", "--colour"}, exitUsage, "", "flag provided but not defined"},
		{"unknown subcommand", []string{"db", "frobnicate"}, exitUsage, "", `unknown command "frobnicate"`},
		{"update takes no args", []string{"db", "update", "extra"}, exitUsage, "", "takes no arguments"},
		{"update source not a dir", []string{"db", "update", "--source", filepath.Join(tmp, "nope")}, exitUsage, "", "--source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, env, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tt.code, stderr)
			}
			if tt.golden != "" {
				golden(t, tt.golden, redact(stdout, tmp))
			}
			if tt.stderr != "" && !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr %q lacks %q", stderr, tt.stderr)
			}
		})
	}

	// --db wins over VIGIL_DB.
	code, _, stderr = runCLI(t, env, "db", "status", "--db", filepath.Join(tmp, "other.db"))
	if code != exitFail || !strings.Contains(stderr, "other.db") {
		t.Errorf("--db ignored: exit %d %q", code, stderr)
	}
	// Staleness is configurable.
	code, stdout, _ = runCLI(t, map[string]string{"VIGIL_DB": db, "VIGIL_DB_MAX_AGE": "1ns"}, "db", "status", "--format", "json")
	if code != exitOK || !strings.Contains(stdout, `"stale": true`) || !strings.Contains(stdout, "database is stale") {
		t.Errorf("max age 1ns: exit %d\n%s", code, stdout)
	}
	code, _, stderr = runCLI(t, map[string]string{"VIGIL_DB": db, "VIGIL_DB_MAX_AGE": "soon"}, "db", "status")
	if code != exitUsage || !strings.Contains(stderr, "VIGIL_DB_MAX_AGE") {
		t.Errorf("bad max age: exit %d %q", code, stderr)
	}
}

func TestDBMirrorCommand(t *testing.T) {
	src := testutil.FixtureMirror(t, filepath.Join("..", "..", "vulndb", "testdata", "mirror"))
	out := filepath.Join(t.TempDir(), "mirror")
	code, stdout, stderr := runCLI(t, nil, "db", "mirror", out, "--source", src)
	if code != exitOK || !strings.Contains(stdout, "9 copied") {
		t.Fatalf("mirror: exit %d %q %q", code, stdout, stderr)
	}
	code, stdout, _ = runCLI(t, nil, "db", "mirror", out, "--source", src)
	if code != exitOK || !strings.Contains(stdout, "0 copied") || !strings.Contains(stdout, "9 unchanged") {
		t.Errorf("second mirror: exit %d %q", code, stdout)
	}
	// The mirror is a source as good as the original.
	db := filepath.Join(t.TempDir(), "vigil.db")
	code, stdout, stderr = runCLI(t, nil, "db", "update", "--source", out, "--db", db)
	if code != exitOK || !strings.Contains(stdout, "9 updated") {
		t.Errorf("update from mirror: exit %d %q %q", code, stdout, stderr)
	}
}

func TestSBOMCommand(t *testing.T) {
	rootfs := filepath.Join("..", "..", "report", "testdata", "rootfs")
	out := filepath.Join(t.TempDir(), "sbom.cdx.json")
	code, stdout, stderr := runCLI(t, nil, "sbom", rootfs, "--output", out)
	if code != exitOK || stdout != "" {
		t.Fatalf("sbom --output: exit %d %q %q", code, stdout, stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil || !strings.Contains(string(data), `"specVersion": "1.6"`) || !strings.Contains(string(data), "pkg:deb/debian/libssl3@3.0.11-1~deb12u2") {
		t.Errorf("cyclonedx output: %v\n%s", err, data)
	}
	for _, c := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"inventory json", []string{"sbom", "--format", "json", rootfs}, exitOK, `"schemaVersion": 1`, ""},
		{"spdx", []string{"sbom", rootfs, "--format", "spdx-json"}, exitOK, `"spdxVersion": "SPDX-2.3"`, ""},
		{"forced type", []string{"sbom", "--type", "rootfs", rootfs, "--format", "json"}, exitOK, `"type": "rootfs"`, ""},
		{"missing target", []string{"sbom", "/no/such/target"}, exitUsage, "", "no such file or directory"},
		{"unknown type", []string{"sbom", "--type", "floppy", rootfs}, exitUsage, "", `unknown target type "floppy"`},
		{"wrong type", []string{"sbom", "--type", "oci-layout", rootfs}, exitUsage, "", "not an OCI image layout"},
		{"bad format", []string{"sbom", rootfs, "--format", "xml"}, exitUsage, "", `unknown format "xml"`},
		{"no target", []string{"sbom"}, exitUsage, "", "Usage:"},
		{"tar that is no image", []string{"sbom", filepath.Join("..", "..", "source", "testdata", "hostile", "escape.tar")}, exitUsage, "", "neither a docker-archive"},
		{"truncated layer", []string{"sbom", filepath.Join("..", "..", "source", "testdata", "hostile", "truncated-layer.tar")}, exitFail, "", "unexpected EOF"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, nil, c.args...)
			if code != c.code {
				t.Errorf("exit %d, want %d; stderr %q", code, c.code, stderr)
			}
			if !strings.Contains(stdout, c.stdout) {
				t.Errorf("stdout lacks %q:\n%s", c.stdout, stdout)
			}
			if !strings.Contains(stderr, c.stderr) {
				t.Errorf("stderr %q lacks %q", stderr, c.stderr)
			}
		})
	}
}
