package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/feed"
	"github.com/vigil-project/vigil/feed/mirror"
	"github.com/vigil-project/vigil/feed/osv"
	"github.com/vigil-project/vigil/vulndb"
)

const dbUsage = `Usage: vigil db <update|status|show|mirror> [flags]

  update [--source DIR|URL] [--db PATH]   build or update the database
  status [--format json]                  describe the database
  show ID [--format json]                 show one vulnerability
  lookup ECOSYSTEM PACKAGE [--format json] list the advisories that name a package
  mirror DIR [--source URL]               copy the feeds into DIR
`

func (e *env) db(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, dbUsage)
		return exitUsage
	}
	switch args[0] {
	case "update":
		return e.dbUpdate(ctx, args[1:])
	case "status":
		return e.dbStatus(ctx, args[1:])
	case "show":
		return e.dbShow(ctx, args[1:])
	case "mirror":
		return e.dbMirror(ctx, args[1:])
	case "lookup":
		return e.dbLookup(ctx, args[1:])
	case "-h", "--help", "help":
		fmt.Fprint(e.stdout, dbUsage)
		return exitOK
	}
	fmt.Fprintf(e.stderr, "vigil db: unknown command %q\n\n%s", args[0], dbUsage)
	return exitUsage
}

// sourceFlags are the flags that say where the feeds are.
type sourceFlags struct {
	source, osv, kev, epss, cve string
}

func (s *sourceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.source, "source", "", "a mirror (directory or URL) laid out as `vigil db mirror` writes it (default: the public feeds)")
	fs.StringVar(&s.osv, "osv-source", "", "OSV export: directory or URL holding <Ecosystem>/all.zip")
	fs.StringVar(&s.kev, "kev-source", "", "CISA KEV catalog JSON: file or URL")
	fs.StringVar(&s.epss, "epss-source", "", "FIRST EPSS scores (.csv.gz): file, directory or URL")
	fs.StringVar(&s.cve, "cve-source", "", "CVE JSON 5 bulk zip (cvelistV5 layout): file or URL")
}

func (s *sourceFlags) sources() (feed.Sources, error) {
	src := feed.Upstream()
	if s.source != "" {
		if !feed.IsURL(s.source) {
			st, err := os.Stat(s.source)
			if err != nil {
				return src, vigil.Errorf(vigil.EINVALID, "--source %s: %v", s.source, err)
			}
			if !st.IsDir() {
				return src, vigil.Errorf(vigil.EINVALID, "--source %s: not a directory", s.source)
			}
		}
		src = feed.FromMirror(s.source)
	}
	for _, o := range []struct {
		v   string
		dst *string
	}{{s.osv, &src.OSV}, {s.kev, &src.KEV}, {s.epss, &src.EPSS}, {s.cve, &src.CVE}} {
		if o.v != "" {
			*o.dst = o.v
		}
	}
	return src, nil
}

func (e *env) isTerminal() bool {
	f, ok := e.stderr.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (e *env) dbUpdate(ctx context.Context, args []string) int {
	fs := newFlagSet(e, "db update", "vigil db update [--source DIR|URL] [--db PATH] [--force] [--format text|json]")
	dbFlag := fs.String("db", "", "database file (default $VIGIL_DB, else the user cache directory)")
	force := fs.Bool("force", false, "re-ingest every source even if unchanged")
	format := fs.String("format", "text", "summary format: text or json")
	var sf sourceFlags
	sf.register(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return exitUsage
	}
	if len(pos) > 0 {
		return e.fail(vigil.Errorf(vigil.EINVALID, "db update takes no arguments, got %q", pos))
	}
	if err := oneOf(*format, "text", "json"); err != nil {
		return e.fail(err)
	}
	path, err := e.dbPath(*dbFlag)
	if err != nil {
		return e.fail(err)
	}
	src, err := sf.sources()
	if err != nil {
		return e.fail(err)
	}
	opts := vulndb.Options{Path: path, Sources: src, Fetcher: &feed.Fetcher{}, Force: *force}
	var bar *progressBar
	if e.isTerminal() {
		bar = &progressBar{w: e.stderr}
		opts.Progress = bar.update
	}
	sum, err := vulndb.Update(ctx, opts)
	bar.finish()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(e.stderr, "vigil: update interrupted; the previous database is unchanged")
			return exitFail
		}
		return e.fail(err)
	}
	if *format == "json" {
		if code := e.printJSON(sum); code != exitOK {
			return code
		}
	} else {
		for _, w := range sum.Warnings {
			fmt.Fprintln(e.stderr, "warning:", w)
		}
		counts := map[string]int{}
		skipped := 0
		for _, s := range sum.Sources {
			counts[s.Status]++
			skipped += s.Skipped
			switch s.Status {
			case "missing", "failed":
				fmt.Fprintf(e.stderr, "warning: %s %s: %s\n", s.Name, s.Status, s.Error)
			}
		}
		var parts []string
		for _, st := range []string{"updated", "unchanged", "missing", "failed", "skipped"} {
			if counts[st] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", counts[st], st))
			}
		}
		what := "up to date"
		if sum.Changed {
			what = "updated"
		}
		line := fmt.Sprintf("vigil db: %s: revision %d, %d vulnerabilities; sources: %s", what, sum.Revision, sum.Vulns, strings.Join(parts, ", "))
		if skipped > 0 {
			line += fmt.Sprintf("; %d bad records skipped (see `vigil db status`)", skipped)
		}
		if sum.Changed {
			line += fmt.Sprintf("; %d packages changed", sum.ChangedPackages)
		}
		fmt.Fprintf(e.stdout, "%s; %s (%s)\n", line, sum.Duration.Round(time.Millisecond), path)
	}
	return exitOK
}

func (e *env) maxAge() (time.Duration, error) {
	if v := e.getenv("VIGIL_DB_MAX_AGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return 0, vigil.Errorf(vigil.EINVALID, "VIGIL_DB_MAX_AGE=%q is not a positive duration such as 24h", v)
		}
		return d, nil
	}
	return vulndb.DefaultMaxAge, nil
}

func (e *env) dbStatus(ctx context.Context, args []string) int {
	fs := newFlagSet(e, "db status", "vigil db status [--db PATH] [--format text|json] [--max-age DURATION]")
	dbFlag := fs.String("db", "", "database file (default $VIGIL_DB, else the user cache directory)")
	format := fs.String("format", "text", "output format: text or json")
	maxAgeFlag := fs.Duration("max-age", 0, "age after which the database is stale (default $VIGIL_DB_MAX_AGE, else 24h)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return exitUsage
	}
	if len(pos) > 0 {
		return e.fail(vigil.Errorf(vigil.EINVALID, "db status takes no arguments, got %q", pos))
	}
	if err := oneOf(*format, "text", "json"); err != nil {
		return e.fail(err)
	}
	maxAge, err := e.maxAge()
	if err != nil {
		return e.fail(err)
	}
	if *maxAgeFlag > 0 {
		maxAge = *maxAgeFlag
	}
	path, err := e.dbPath(*dbFlag)
	if err != nil {
		return e.fail(err)
	}
	db, err := vulndb.Open(path)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	st, err := db.Status(ctx, time.Now(), maxAge)
	if err != nil {
		return e.fail(err)
	}
	if *format == "json" {
		return e.printJSON(st)
	}
	printStatus(e.stdout, st)
	return exitOK
}

func printStatus(w io.Writer, st *vulndb.Status) {
	fresh := "fresh"
	if st.Stale {
		fresh = "STALE"
	}
	fmt.Fprintf(w, "Database:        %s (%s)\n", st.Path, humanBytes(st.SizeBytes))
	fmt.Fprintf(w, "Schema version:  %d\n", st.SchemaVersion)
	fmt.Fprintf(w, "Revision:        %d\n", st.Revision)
	fmt.Fprintf(w, "Built at:        %s\n", st.BuiltAt.Format(time.RFC3339))
	fmt.Fprintf(w, "Checked at:      %s (%s; max age %s)\n", st.CheckedAt.Format(time.RFC3339), fresh, st.MaxAge)
	fmt.Fprintf(w, "Vulnerabilities: %d (KEV entries %d, EPSS scores %d, CVE records %d)\n\n", st.Vulnerabilities, st.KEVEntries, st.EPSSScores, st.CVERecords)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tRECORDS\tSKIPPED\tSOURCE DATE\tDIGEST")
	for _, s := range st.Sources {
		d := s.Digest
		if len(d) > 19 {
			d = d[:19]
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", s.Name, s.Records, s.Skipped, s.SourceDate, d)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ECOSYSTEM\tADVISORIES\tVULNERABILITIES\tPACKAGES")
	names := make([]string, 0, len(st.EcosystemDetails))
	for n := range st.EcosystemDetails {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		d := st.EcosystemDetails[n]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", n, d.Advisories, d.Vulnerabilities, d.Packages)
	}
	tw.Flush()
	if len(st.Warnings) > 0 {
		fmt.Fprintln(w, "\nWarnings:")
		for _, s := range st.Warnings {
			fmt.Fprintln(w, "  "+s)
		}
	}
}

func (e *env) dbShow(ctx context.Context, args []string) int {
	fs := newFlagSet(e, "db show", "vigil db show ID [--db PATH] [--format text|json]")
	dbFlag := fs.String("db", "", "database file (default $VIGIL_DB, else the user cache directory)")
	format := fs.String("format", "text", "output format: text or json")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return exitUsage
	}
	if len(pos) != 1 {
		fs.Usage()
		return exitUsage
	}
	if err := oneOf(*format, "text", "json"); err != nil {
		return e.fail(err)
	}
	path, err := e.dbPath(*dbFlag)
	if err != nil {
		return e.fail(err)
	}
	db, err := vulndb.Open(path)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	ids, err := db.Resolve(ctx, pos[0])
	if err != nil {
		return e.fail(err)
	}
	switch len(ids) {
	case 0:
		return e.fail(vigil.Errorf(vigil.ENOTFOUND, "%s: no such vulnerability or advisory in %s", pos[0], path))
	case 1:
	default:
		return e.fail(vigil.Errorf(vigil.ENOTFOUND, "%s is an advisory covering %d vulnerabilities: %s; show one of them", pos[0], len(ids), strings.Join(ids, ", ")))
	}
	v, err := db.Get(ctx, ids[0])
	if err != nil {
		return e.fail(err)
	}
	if *format == "json" {
		return e.printJSON(v)
	}
	printVuln(e.stdout, v)
	return exitOK
}

func printVuln(w io.Writer, v *vigil.Vulnerability) {
	fmt.Fprintf(w, "%s  %s\n", v.ID, v.Severity)
	if v.Summary != "" {
		fmt.Fprintf(w, "%s\n", v.Summary)
	}
	if v.Withdrawn != nil {
		fmt.Fprintf(w, "WITHDRAWN %s\n", v.Withdrawn.Format("2006-01-02"))
	}
	if len(v.Aliases) > 0 {
		fmt.Fprintf(w, "Aliases:   %s\n", strings.Join(v.Aliases, ", "))
	}
	if len(v.Related) > 0 {
		fmt.Fprintf(w, "Related:   %s\n", strings.Join(v.Related, ", "))
	}
	if !v.Published.IsZero() {
		fmt.Fprintf(w, "Published: %s\n", v.Published.Format("2006-01-02"))
	}
	for _, c := range v.CVSS {
		fmt.Fprintf(w, "CVSS %s:  %.1f %s  %s  (%s)\n", c.Version, c.BaseScore, c.Severity, c.Vector, c.Source)
	}
	for _, s := range v.VendorSeverity {
		fmt.Fprintf(w, "Severity:  %s (%s)\n", s.Severity, s.Source)
	}
	if v.KEV != nil {
		rw := ""
		if v.KEV.KnownRansomware {
			rw = ", known ransomware use"
		}
		fmt.Fprintf(w, "KEV:       added %s, due %s%s\n", v.KEV.DateAdded, v.KEV.DueDate, rw)
	}
	if v.EPSS != nil {
		date := ""
		if v.EPSS.Date != "" {
			date = ", " + v.EPSS.Date
		}
		fmt.Fprintf(w, "EPSS:      %.5f (percentile %.5f%s)\n", v.EPSS.Score, v.EPSS.Percentile, date)
	}
	if len(v.CWEs) > 0 {
		fmt.Fprintf(w, "CWE:       %s\n", strings.Join(v.CWEs, ", "))
	}
	fmt.Fprintln(w, "\nAffected:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  ECOSYSTEM\tPACKAGE\tAFFECTED\tFIXED\tADVISORY")
	for _, a := range v.Affected {
		fixed := strings.Join(a.Fixed(), ", ")
		if fixed == "" {
			fixed = "-"
		}
		adv := a.Advisory
		if a.Withdrawn {
			adv += " (withdrawn)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", a.Ecosystem, a.Package, rangeText(a), fixed, adv)
	}
	tw.Flush()
	if len(v.References) > 0 {
		fmt.Fprintln(w, "\nReferences:")
		for i, r := range v.References {
			if i == 10 {
				fmt.Fprintf(w, "  … and %d more\n", len(v.References)-10)
				break
			}
			fmt.Fprintf(w, "  %s\n", r.URL)
		}
	}
}

// rangeText renders an entry's ranges as intervals: ">=2.0.0-beta9, <2.15.0".
func rangeText(a vigil.Affected) string {
	var parts []string
	for _, r := range a.Ranges {
		if r.Type == "GIT" {
			continue
		}
		lo := ""
		for _, ev := range r.Events {
			switch {
			case ev.Introduced != "":
				lo = ev.Introduced
			case ev.Fixed != "":
				parts = append(parts, interval(lo, "<"+ev.Fixed))
				lo = ""
			case ev.LastAffected != "":
				parts = append(parts, interval(lo, "<="+ev.LastAffected))
				lo = ""
			case ev.Limit != "":
				parts = append(parts, interval(lo, "<"+ev.Limit))
				lo = ""
			}
		}
		if lo != "" {
			parts = append(parts, interval(lo, ""))
		}
	}
	if len(a.Versions) > 0 && len(parts) == 0 {
		if len(a.Versions) > 4 {
			return fmt.Sprintf("%s … (%d versions)", strings.Join(a.Versions[:3], ", "), len(a.Versions))
		}
		return strings.Join(a.Versions, ", ")
	}
	return strings.Join(parts, "; ")
}

func interval(lo, hi string) string {
	switch {
	case lo == "0" || lo == "":
		if hi == "" {
			return "all versions"
		}
		return hi
	case hi == "":
		return ">=" + lo
	}
	return ">=" + lo + ", " + hi
}

// lookupRow is one line of `db lookup`.
type lookupRow struct {
	ID        string         `json:"id"`
	Severity  string         `json:"severity"`
	Summary   string         `json:"summary,omitempty"`
	Withdrawn bool           `json:"withdrawn,omitempty"`
	Affected  vigil.Affected `json:"affected"`
}

func (e *env) dbLookup(ctx context.Context, args []string) int {
	fs := newFlagSet(e, "db lookup", "vigil db lookup ECOSYSTEM PACKAGE [--db PATH] [--format text|json]")
	dbFlag := fs.String("db", "", "database file (default $VIGIL_DB, else the user cache directory)")
	format := fs.String("format", "text", "output format: text or json")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return exitUsage
	}
	if len(pos) != 2 {
		fs.Usage()
		return exitUsage
	}
	if err := oneOf(*format, "text", "json"); err != nil {
		return e.fail(err)
	}
	path, err := e.dbPath(*dbFlag)
	if err != nil {
		return e.fail(err)
	}
	if !osv.Supported(pos[0]) {
		return e.fail(vigil.Errorf(vigil.EINVALID, "unknown ecosystem %q: use OSV's names, such as npm, PyPI, Go, Maven, Debian:12", pos[0]))
	}
	db, err := vulndb.Open(path)
	if err != nil {
		return e.fail(err)
	}
	defer db.Close()
	entries, err := db.Lookup(ctx, pos[0], pos[1])
	if err != nil {
		return e.fail(err)
	}
	rows := []lookupRow{}
	for _, en := range entries {
		v, err := db.Get(ctx, en.VulnID)
		if err != nil {
			return e.fail(err)
		}
		rows = append(rows, lookupRow{ID: v.ID, Severity: v.Severity, Summary: v.Summary, Withdrawn: en.Affected.Withdrawn, Affected: en.Affected})
	}
	if *format == "json" {
		return e.printJSON(rows)
	}
	if len(rows) == 0 {
		fmt.Fprintf(e.stdout, "No advisory names %s in %s.\n", pos[1], pos[0])
		return exitOK
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSEVERITY\tAFFECTED\tFIXED\tADVISORY\tSUMMARY")
	for _, r := range rows {
		fixed := strings.Join(r.Affected.Fixed(), ", ")
		if fixed == "" {
			fixed = "-"
		}
		adv := r.Affected.Advisory
		if r.Withdrawn {
			adv += " (withdrawn)"
		}
		sum := r.Summary
		if len(sum) > 60 {
			sum = sum[:57] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Severity, rangeText(r.Affected), fixed, adv, sum)
	}
	tw.Flush()
	return exitOK
}

func (e *env) dbMirror(ctx context.Context, args []string) int {
	fs := newFlagSet(e, "db mirror", "vigil db mirror DIR [--source DIR|URL] [--format text|json]")
	format := fs.String("format", "text", "summary format: text or json")
	var sf sourceFlags
	sf.register(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return exitUsage
	}
	if len(pos) != 1 {
		fs.Usage()
		return exitUsage
	}
	if err := oneOf(*format, "text", "json"); err != nil {
		return e.fail(err)
	}
	src, err := sf.sources()
	if err != nil {
		return e.fail(err)
	}
	var bar *progressBar
	var progress func(string, int64, int64)
	if e.isTerminal() {
		bar = &progressBar{w: e.stderr}
		progress = func(name string, done, total int64) {
			bar.update(vulndb.Progress{Source: name, Step: "fetch", Done: done, Total: total})
		}
	}
	res, err := mirror.Run(ctx, &feed.Fetcher{}, src, pos[0], progress)
	bar.finish()
	if err != nil {
		return e.fail(err)
	}
	if *format == "json" {
		return e.printJSON(res)
	}
	counts := map[string]int{}
	var bytes int64
	for _, r := range res {
		counts[r.Status]++
		if r.Status == "copied" {
			bytes += r.Bytes
		}
		if r.Error != "" {
			fmt.Fprintf(e.stderr, "warning: %s %s: %s\n", r.Name, r.Status, r.Error)
		}
	}
	fmt.Fprintf(e.stdout, "vigil db mirror: %d copied (%s), %d unchanged, %d missing, %d failed into %s\n",
		counts["copied"], humanBytes(bytes), counts["unchanged"], counts["missing"], counts["failed"], pos[0])
	if counts["copied"]+counts["unchanged"] == 0 {
		return exitFail
	}
	return exitOK
}

// progressBar draws one bar per source on a terminal.
type progressBar struct {
	w      io.Writer
	cur    string
	bar    *progressbar.ProgressBar
	actual int64
}

func (p *progressBar) update(ev vulndb.Progress) {
	if p == nil {
		return
	}
	name := ev.Source + " " + ev.Step
	if ev.Source == "" {
		name = ev.Step
	}
	if name != p.cur || p.bar == nil {
		p.finish()
		p.cur = name
		p.bar = progressbar.NewOptions64(ev.Total,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription(fmt.Sprintf("%-22s", name)),
			progressbar.OptionShowBytes(ev.Total > 0),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionSpinnerType(14),
		)
	}
	if ev.Done > 0 {
		_ = p.bar.Set64(ev.Done)
	}
}

func (p *progressBar) finish() {
	if p == nil || p.bar == nil {
		return
	}
	_ = p.bar.Finish()
	p.bar = nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
