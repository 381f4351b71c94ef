package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/match"
	"github.com/vigil-project/vigil/report"
	"github.com/vigil-project/vigil/score"
	"github.com/vigil-project/vigil/source"
	"github.com/vigil-project/vigil/suppress"
	"github.com/vigil-project/vigil/vulndb"
)

var severities = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "NONE", "UNTRIAGED"}

// scan exit codes: 0 nothing at or above --fail-on, 1 something is, 2 the
// scan could not be done (usage, input, no database).
func (e *env) scan(ctx context.Context, args []string) int {
	fs := newFlagSet(e, "scan", "vigil scan [--db PATH] [--format table|json|sarif|cyclonedx-json] [--output FILE] [--severity LIST] [--fail-on SEVERITY] [--ignore-file FILE] [--offline] TARGET")
	dbFlag := fs.String("db", "", "vulnerability database (default $VIGIL_DB, else the user cache directory)")
	format := fs.String("format", "", "output format: table (default on a terminal), json (default otherwise), sarif, cyclonedx-json")
	output := fs.String("output", "", "write to FILE instead of stdout")
	sevList := fs.String("severity", "", "report only these severities, comma-separated (e.g. CRITICAL,HIGH)")
	failOn := fs.String("fail-on", "", "exit 1 when an active finding is at or above this severity (CRITICAL, HIGH, MEDIUM, LOW, or UNTRIAGED for any)")
	ignoreFile := fs.String("ignore-file", "", "YAML ignore rules or an OpenVEX document")
	offline := fs.Bool("offline", false, "never reach the network: refuse registry targets")
	var tf targetFlags
	tf.register(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return exitUsage
	}
	fail := func(err error) int {
		fmt.Fprintln(e.stderr, "vigil:", err)
		return exitUsage
	}
	if len(pos) != 1 {
		fs.Usage()
		return exitUsage
	}
	if *format == "" {
		*format = "json"
		if *output == "" && e.stdoutIsTerminal() {
			*format = "table"
		}
	}
	if err := oneOf(*format, "table", "json", "sarif", "cyclonedx-json"); err != nil {
		return fail(err)
	}
	wanted := map[string]bool{}
	if *sevList != "" {
		for _, s := range strings.Split(strings.ToUpper(*sevList), ",") {
			s = strings.TrimSpace(s)
			if err := oneOf(s, severities...); err != nil {
				return fail(vigil.Errorf(vigil.EINVALID, "--severity: %q is not a severity (want %s)", s, strings.Join(severities, ", ")))
			}
			wanted[s] = true
		}
	}
	failRank := -1
	if *failOn != "" {
		s := strings.ToUpper(*failOn)
		if err := oneOf(s, severities...); err != nil {
			return fail(vigil.Errorf(vigil.EINVALID, "--fail-on: %q is not a severity (want %s)", *failOn, strings.Join(severities, ", ")))
		}
		failRank = score.Rank(s)
	}
	var rules *suppress.Rules
	if *ignoreFile != "" {
		if rules, err = suppress.Load(*ignoreFile); err != nil {
			return fail(err)
		}
	}
	path, err := e.dbPath(*dbFlag)
	if err != nil {
		return fail(err)
	}
	db, err := vulndb.Open(path)
	if err != nil {
		return fail(err)
	}
	defer db.Close()
	if *offline && (tf.typ == "registry" || source.IsImageRef(pos[0])) {
		return fail(vigil.Errorf(vigil.EINVALID, "--offline: %s is a registry image; scan a docker-archive or OCI layout instead", pos[0]))
	}

	inv, err := e.collectTarget(ctx, pos[0], tf)
	if err != nil {
		return fail(err)
	}
	res, err := match.Match(ctx, db, inv)
	if err != nil {
		return fail(err)
	}
	now := time.Now()
	findings, warns := rules.Apply(res.Findings, now)
	match.Sort(findings)
	// --fail-on judges every active finding; --severity only chooses
	// what is shown.
	failed := false
	if failRank >= 0 {
		for _, f := range findings {
			if f.Suppressed == nil && score.Rank(f.Severity) >= failRank {
				failed = true
			}
		}
	}
	if len(wanted) > 0 {
		kept := findings[:0]
		for _, f := range findings {
			if wanted[f.Severity] {
				kept = append(kept, f)
			}
		}
		findings = kept
	}
	maxAge, err := e.maxAge()
	if err != nil {
		return fail(err)
	}
	meta := db.Meta()
	stale := now.Sub(meta.CheckedAt) > maxAge
	var warnings []string
	warnings = append(warnings, inv.Warnings...)
	warnings = append(warnings, res.Warnings...)
	warnings = append(warnings, warns...)
	if stale {
		warnings = append(warnings, fmt.Sprintf("the vulnerability database was last updated %s (more than %s ago): run `vigil db update`", meta.CheckedAt.Format(time.RFC3339), maxAge))
	}
	rep := &report.Scan{
		SchemaVersion: report.ScanSchemaVersion,
		Scanner:       inv.Scanner,
		Target:        inv.Target,
		OS:            inv.OS,
		Image:         inv.Image,
		Function:      inv.Function,
		Inventory:     inv.Digest,
		Database:      report.Database{Revision: meta.Revision, BuiltAt: meta.BuiltAt, CheckedAt: meta.CheckedAt, Stale: stale},
		Summary:       report.Summarise(findings),
		Findings:      findings,
		Warnings:      warnings,
		Packages:      len(inv.Packages),
		ScanTime:      now.UTC(),
	}
	if rep.Warnings == nil {
		rep.Warnings = []string{}
	}
	for _, w := range warnings {
		fmt.Fprintln(e.stderr, "warning:", w)
	}
	code := e.writeOutput(*output, func(w io.Writer) error {
		switch *format {
		case "table":
			return report.Table(w, rep, *output == "" && e.stdoutIsTerminal())
		case "sarif":
			return report.SARIF(w, rep)
		case "cyclonedx-json":
			return report.CycloneDXScan(w, inv, rep)
		}
		return report.JSON(w, rep)
	})
	if code != exitOK {
		return exitUsage
	}
	if failed {
		return exitFail
	}
	return exitOK
}

func (e *env) stdoutIsTerminal() bool {
	f, ok := e.stdout.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
