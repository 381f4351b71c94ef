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
	"github.com/vigil-project/vigil/httpapi"
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
	server := fs.String("server", "", "submit the inventory to this server (default $VIGIL_SERVER when --key is given), which matches and keeps it")
	key := fs.String("key", "", "the server's API key (default $VIGIL_KEY)")
	resName := fs.String("name", "", "with --server: the resource's name (default: the target)")
	resType := fs.String("resource-type", "", "with --server: host, image or function (default: from the target)")
	var tags multiFlag
	fs.Var(&tags, "tag", "with --server: a resource tag key=value (repeatable)")
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
	remote := *server != "" || *key != "" || e.getenv("VIGIL_SERVER") != "" && e.getenv("VIGIL_KEY") != ""
	if *offline && remote {
		return fail(vigil.Errorf(vigil.EINVALID, "--offline and --server exclude each other"))
	}
	if *offline && (tf.typ == "registry" || source.IsImageRef(pos[0])) {
		return fail(vigil.Errorf(vigil.EINVALID, "--offline: %s is a registry image; scan a docker-archive or OCI layout instead", pos[0]))
	}
	var c *client
	var db *vulndb.DB
	if remote {
		if c, err = e.newClient(*server, *key); err != nil {
			return fail(err)
		}
	} else {
		path, err := e.dbPath(*dbFlag)
		if err != nil {
			return fail(err)
		}
		if db, err = vulndb.Open(path); err != nil {
			return fail(err)
		}
		defer db.Close()
	}

	inv, err := e.collectTarget(ctx, pos[0], tf)
	if err != nil {
		return fail(err)
	}
	var res *match.Result
	var meta vulndb.Meta
	if remote {
		req := httpapi.SubmitRequest{Type: *resType, Name: *resName, Tags: map[string]string{}, Inventory: inv}
		if req.Name == "" {
			req.Name = inv.Target.Name
			if inv.Image != nil && len(inv.Image.RepoTags) > 0 {
				req.Name = inv.Image.RepoTags[0]
			}
		}
		if req.Type == "" {
			req.Type = map[string]string{vigil.TargetImage: vigil.ResourceImage, vigil.TargetFunction: vigil.ResourceFunction}[inv.Target.Type]
			if req.Type == "" {
				req.Type = vigil.ResourceHost
			}
		}
		for _, t := range tags {
			k, v, ok := strings.Cut(t, "=")
			if !ok || k == "" {
				return fail(vigil.Errorf(vigil.EINVALID, "--tag %q: want key=value", t))
			}
			req.Tags[k] = v
		}
		var resp httpapi.SubmitResponse
		if err := c.do(ctx, "POST", "/v1/inventories", req, &resp); err != nil {
			return fail(err)
		}
		res = &match.Result{Findings: resp.Findings, Warnings: resp.Warnings}
		fmt.Fprintf(e.stderr, "stored as %s %s (resource %s) in account %s: %d changes\n", resp.Resource.Type, resp.Resource.Name, resp.Resource.ID, resp.Resource.Account, len(resp.Events))
	} else {
		if res, err = match.Match(ctx, db, inv); err != nil {
			return fail(err)
		}
		meta = db.Meta()
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
	stale := !remote && now.Sub(meta.CheckedAt) > maxAge
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
