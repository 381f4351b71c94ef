package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/engine"
	"github.com/vigil-project/vigil/feed"
	"github.com/vigil-project/vigil/httpapi"
	"github.com/vigil-project/vigil/sqlstore"
	"github.com/vigil-project/vigil/worker"
)

// storeFlags say where the server's store is.
type storeFlags struct{ dataDir, database string }

func (s *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.dataDir, "data-dir", "", "directory of the embedded SQLite store (default: the user data directory)")
	fs.StringVar(&s.database, "database", "", "PostgreSQL URL (postgres://…) instead of the embedded store")
}

func (e *env) openStore(ctx context.Context, s storeFlags) (*sqlstore.Store, error) {
	dsn := s.database
	if dsn == "" {
		dsn = e.getenv("VIGIL_DATABASE")
	}
	if dsn == "" {
		dir := s.dataDir
		if dir == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return nil, err
			}
			dir = filepath.Join(home, ".local", "share", "vigil")
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		dsn = filepath.Join(dir, "vigil-store.db")
	}
	return sqlstore.Open(ctx, dsn)
}

// continuousFlags configure continuous scanning, in the server and in
// workers.
type continuousFlags struct {
	workers                  int
	lease                    time.Duration
	excludeTag               string
	staleAfter               time.Duration
	eligibility              string
	rescanEvery, updateEvery time.Duration
	insecureRegistries       bool
	allowPrivate             bool
	src                      sourceFlags
}

func (c *continuousFlags) register(fs *flag.FlagSet, defWorkers int) {
	fs.IntVar(&c.workers, "workers", defWorkers, "jobs (scans, re-evaluations, polls) run at once in this process")
	fs.DurationVar(&c.lease, "lease", 30*time.Second, "how long a job stays claimed without a heartbeat: a dead worker's job runs again after this")
	fs.StringVar(&c.excludeTag, "exclude-tag", vigil.DefaultExcludeTag, "tag key that excludes a resource from scanning")
	fs.DurationVar(&c.staleAfter, "stale-after", 7*24*time.Hour, "a host whose agent has not reported for this long shows STALE_INVENTORY")
	fs.StringVar(&c.eligibility, "scan-eligibility", "lifetime", "how long an image stays under continuous scanning after its push or last pull: lifetime, 14d, 30d, 90d or 180d")
	fs.DurationVar(&c.rescanEvery, "rescan-interval", 0, "read registry images again when their last scan is this old (0: never; new vulnerabilities are found by re-evaluation without it)")
	fs.DurationVar(&c.updateEvery, "db-update-interval", 0, "update the vulnerability database this often from the --source feeds (0: never; `vigil db update` on the same file works too)")
	fs.BoolVar(&c.insecureRegistries, "insecure-registries", false, "read registries over plain HTTP")
	fs.BoolVar(&c.allowPrivate, "allow-private-registries", false, "let scans and polls reach registries on loopback and private networks")
	c.src.register(fs)
}

func (c *continuousFlags) policy() (vigil.CoveragePolicy, error) {
	p := vigil.CoveragePolicy{ExcludeTag: c.excludeTag, StaleAfter: c.staleAfter}
	switch c.eligibility {
	case "lifetime", "":
	case "14d", "30d", "90d", "180d":
		days, _ := strconv.Atoi(strings.TrimSuffix(c.eligibility, "d"))
		p.Eligibility = time.Duration(days) * 24 * time.Hour
	default:
		return p, vigil.Errorf(vigil.EINVALID, "--scan-eligibility %q: want lifetime, 14d, 30d, 90d or 180d", c.eligibility)
	}
	if strings.TrimSpace(p.ExcludeTag) == "" {
		return p, vigil.Errorf(vigil.EINVALID, "--exclude-tag: empty")
	}
	return p, nil
}

// startContinuous starts this process's workers and the loops of
// continuous scanning; it returns the engine and a function that waits for
// them to stop once ctx ends.
func (e *env) startContinuous(ctx context.Context, store *sqlstore.Store, dbPath string, c *continuousFlags, log *slog.Logger) (*engine.Engine, func(), error) {
	pol, err := c.policy()
	if err != nil {
		return nil, nil, err
	}
	store.Policy = pol
	// Matching kept inventories again allocates briskly (decoding them)
	// while the live heap stays small (the database's caches): with Go's
	// default GOGC the collector took a fifth of a worker's CPU in the
	// re-evaluation benchmark. Unless the operator sets GOGC, collect less
	// often, with a soft memory limit as the backstop.
	if c.workers > 0 && os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
		if os.Getenv("GOMEMLIMIT") == "" {
			debug.SetMemoryLimit(2 << 30)
		}
	}
	var sources feed.Sources
	if c.updateEvery > 0 {
		if sources, err = c.src.sources(); err != nil {
			return nil, nil, err
		}
	}
	tmp := filepath.Join(filepath.Dir(dbPath), "scans")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, nil, err
	}
	eng := &engine.Engine{Store: store, DB: &engine.DBSource{Path: dbPath}, TempDir: tmp, InsecureRegistries: c.insecureRegistries,
		AllowPrivateRegistries: c.allowPrivate, Sources: sources, Log: log}
	pool := &worker.Pool{Store: store, Handlers: eng.Handlers(), Concurrency: c.workers, Lease: c.lease, Log: log}
	eng.Enqueued = pool.Wake
	var wg sync.WaitGroup
	if c.workers > 0 {
		wg.Go(func() { pool.Run(ctx) })
	}
	wg.Go(func() { eng.Run(ctx, engine.Loops{RescanEvery: c.rescanEvery, UpdateEvery: c.updateEvery}) })
	return eng, wg.Wait, nil
}

func (e *env) server(ctx context.Context, args []string) int {
	fs := newFlagSet(e, "server", "vigil server [--listen ADDR] [--data-dir DIR | --database URL] [--db PATH] [--workers N] [--max-upload BYTES]")
	listen := fs.String("listen", "127.0.0.1:8080", "address to listen on")
	dbFlag := fs.String("db", "", "vulnerability database (default $VIGIL_DB, else the user cache directory)")
	maxUpload := fs.Int64("max-upload", 1<<30, "largest upload (an archive to scan), in bytes")
	maxJSON := fs.Int64("max-json", 32<<20, "largest JSON body (an inventory), in bytes")
	retention := fs.Duration("closed-retention", 0, "delete closed findings this long after they closed (default: keep them)")
	prices := fs.String("prices", "", "unit prices for usage estimates: TYPE:scan=PRICE,TYPE:rematch=PRICE,… (TYPE host, image or function)")
	currency := fs.String("currency", "USD", "currency of --prices")
	var sf storeFlags
	sf.register(fs)
	var cf continuousFlags
	cf.register(fs, 2)
	if pos, err := parseFlags(fs, args); err != nil || len(pos) > 0 {
		return exitUsage
	}
	priceTable, err := httpapi.ParsePrices(*prices)
	if err != nil {
		return e.fail(vigil.Errorf(vigil.EINVALID, "--prices: %v", err))
	}
	dbPath, store, log, err := e.openForJobs(ctx, *dbFlag, sf)
	if err != nil {
		return e.fail(err)
	}
	defer store.Close()
	jobCtx, stopJobs := context.WithCancel(context.Background())
	eng, wait, err := e.startContinuous(jobCtx, store, dbPath, &cf, log)
	if err != nil {
		stopJobs()
		return e.fail(err)
	}
	defer func() { stopJobs(); wait() }()
	api := &httpapi.Server{Store: store, DB: eng.DB, Engine: eng, MaxBody: *maxUpload, MaxJSON: *maxJSON, Log: log,
		AllowPrivateRegistries: cf.allowPrivate, InsecureRegistries: cf.insecureRegistries, Prices: priceTable, Currency: *currency}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return e.fail(err)
	}
	go e.upkeep(ctx, store, *retention, log)
	srv := &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(e.stderr, "vigil server listening on http://%s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(shut)
		return exitOK
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return exitOK
		}
		return e.fail(err)
	}
}

// upkeep runs hourly: closed-finding retention, finished-job retention,
// then fresh planner statistics.
func (e *env) upkeep(ctx context.Context, store *sqlstore.Store, retention time.Duration, log *slog.Logger) {
	for {
		if retention > 0 {
			if n, err := store.PurgeClosed(ctx, time.Now().Add(-retention)); err != nil {
				log.Error("purging closed findings", "err", err)
			} else if n > 0 {
				log.Info("closed findings purged", "count", n)
			}
		}
		if _, err := store.PurgeJobs(ctx, time.Now().Add(-7*24*time.Hour)); err != nil && ctx.Err() == nil {
			log.Error("purging finished jobs", "err", err)
		}
		if err := store.Optimize(ctx); err != nil && ctx.Err() == nil {
			log.Error("refreshing planner statistics", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Hour):
		}
	}
}

// openForJobs finds the vulnerability database, opens the store and sets
// up logging, for the server and for workers.
func (e *env) openForJobs(ctx context.Context, dbFlag string, sf storeFlags) (string, *sqlstore.Store, *slog.Logger, error) {
	dbPath, err := e.dbPath(dbFlag)
	if err != nil {
		return "", nil, nil, err
	}
	store, err := e.openStore(ctx, sf)
	if err != nil {
		return "", nil, nil, err
	}
	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	slog.SetDefault(log)
	return dbPath, store, log, nil
}

// worker runs only the jobs of continuous scanning: any number of worker
// processes share one PostgreSQL store (or one SQLite file on one
// machine).
func (e *env) worker(ctx context.Context, args []string) int {
	fs := newFlagSet(e, "worker", "vigil worker [--data-dir DIR | --database URL] [--db PATH] [--workers N]")
	dbFlag := fs.String("db", "", "vulnerability database (default $VIGIL_DB, else the user cache directory)")
	var sf storeFlags
	sf.register(fs)
	var cf continuousFlags
	cf.register(fs, 2)
	if pos, err := parseFlags(fs, args); err != nil || len(pos) > 0 {
		return exitUsage
	}
	if cf.workers <= 0 {
		return e.fail(vigil.Errorf(vigil.EINVALID, "--workers: want at least 1"))
	}
	dbPath, store, log, err := e.openForJobs(ctx, *dbFlag, sf)
	if err != nil {
		return e.fail(err)
	}
	defer store.Close()
	// A signal stops claiming; jobs in flight are put back for others.
	_, wait, err := e.startContinuous(ctx, store, dbPath, &cf, log)
	if err != nil {
		return e.fail(err)
	}
	fmt.Fprintf(e.stderr, "vigil worker running %d jobs at once\n", cf.workers)
	wait()
	return exitOK
}

const adminUsage = `Usage: vigil admin <command> [--data-dir DIR | --database URL]

  account create NAME [--admin ORG]            create an account (a member of ORG's organisation)
  key create --account NAME --role ROLE [--expires DURATION]
                                               create an API key and print it (shown once)
  key revoke ID                                revoke a key
`

func (e *env) admin(ctx context.Context, args []string) int {
	if len(args) < 2 {
		fmt.Fprint(e.stderr, adminUsage)
		return exitUsage
	}
	var sf storeFlags
	switch args[0] + " " + args[1] {
	case "account create":
		fs := newFlagSet(e, "admin account create", "vigil admin account create NAME [--admin ORG]")
		adminOf := fs.String("admin", "", "the organisation administrator account this one is a member of")
		sf.register(fs)
		pos, err := parseFlags(fs, args[2:])
		if err != nil || len(pos) != 1 {
			return exitUsage
		}
		store, err := e.openStore(ctx, sf)
		if err != nil {
			return e.fail(err)
		}
		defer store.Close()
		a, err := store.CreateAccount(ctx, pos[0], *adminOf)
		if err != nil {
			return e.fail(err)
		}
		fmt.Fprintf(e.stdout, "account %s created (id %d)\n", a.Name, a.ID)
		return exitOK
	case "key create":
		fs := newFlagSet(e, "admin key create", "vigil admin key create --account NAME --role ROLE [--expires DURATION]")
		account := fs.String("account", "", "the key's account")
		role := fs.String("role", "", "admin, analyst, read-only or agent")
		expires := fs.Duration("expires", 0, "lifetime of the key (default: no expiry)")
		sf.register(fs)
		pos, err := parseFlags(fs, args[2:])
		if err != nil || len(pos) != 0 || *account == "" || *role == "" {
			fs.Usage()
			return exitUsage
		}
		store, err := e.openStore(ctx, sf)
		if err != nil {
			return e.fail(err)
		}
		defer store.Close()
		if *expires < 0 {
			return e.fail(vigil.Errorf(vigil.EINVALID, "--expires %s: want a positive lifetime", *expires))
		}
		var exp *time.Time
		if *expires > 0 {
			t := time.Now().Add(*expires)
			exp = &t
		}
		secret, k, err := store.CreateKey(ctx, *account, *role, exp)
		if err != nil {
			return e.fail(err)
		}
		fmt.Fprintln(e.stdout, secret)
		fmt.Fprintf(e.stderr, "key %d (%s, %s) created; it is shown once\n", k.ID, k.Account, k.Role)
		return exitOK
	case "key revoke":
		fs := newFlagSet(e, "admin key revoke", "vigil admin key revoke ID")
		sf.register(fs)
		pos, err := parseFlags(fs, args[2:])
		if err != nil || len(pos) != 1 {
			fs.Usage()
			return exitUsage
		}
		id, err := strconv.ParseInt(pos[0], 10, 64)
		if err != nil {
			return e.fail(vigil.Errorf(vigil.EINVALID, "key id %q: want a number", pos[0]))
		}
		store, err := e.openStore(ctx, sf)
		if err != nil {
			return e.fail(err)
		}
		defer store.Close()
		if err := store.RevokeKeyByID(ctx, id); err != nil {
			return e.fail(err)
		}
		fmt.Fprintf(e.stdout, "key %d revoked\n", id)
		return exitOK
	}
	fmt.Fprintf(e.stderr, "vigil admin: unknown command %q\n\n%s", strings.Join(args[:2], " "), adminUsage)
	return exitUsage
}

// client talks to a server.
type client struct {
	base, key string
	http      *http.Client
}

func (e *env) newClient(server, key string) (*client, error) {
	if server == "" {
		server = e.getenv("VIGIL_SERVER")
	}
	if key == "" {
		key = e.getenv("VIGIL_KEY")
	}
	if server == "" || key == "" {
		return nil, vigil.Errorf(vigil.EINVALID, "--server and --key (or VIGIL_SERVER and VIGIL_KEY) are required")
	}
	if u, err := url.Parse(server); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, vigil.Errorf(vigil.EINVALID, "--server %q is not an http(s) URL", server)
	}
	return &client{base: strings.TrimRight(server, "/"), key: key, http: &http.Client{Timeout: 5 * time.Minute}}, nil
}

func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	return c.send(ctx, method, path, "application/json", rd, out)
}

// send sends a body of any type and decodes the JSON answer into out
// (nothing for 204 No Content).
func (c *client) send(ctx context.Context, method, path, contentType string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", contentType)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		var p httpapi.Problem
		json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&p)
		return fmt.Errorf("server: %s: %s", resp.Status, p.Detail)
	}
	if resp.StatusCode == http.StatusNoContent || out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (e *env) findings(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, "Usage: vigil findings <list|get ID|aggregate --by GROUP> [--server URL] [--key KEY] [filters] [--format table|json]\n")
		return exitUsage
	}
	fs := newFlagSet(e, "findings "+args[0], "vigil findings list|get ID [--server URL] [--key KEY] [--status S] [--severity S] [--resource ID] [--vuln ID] [--package NAME] [--limit N] [--format table|json]")
	server := fs.String("server", "", "server URL (default $VIGIL_SERVER)")
	key := fs.String("key", "", "API key (default $VIGIL_KEY)")
	format := fs.String("format", "table", "table or json")
	status := fs.String("status", "", "ACTIVE, SUPPRESSED, CLOSED (comma-separated)")
	severity := fs.String("severity", "", "severities (comma-separated)")
	resource := fs.String("resource", "", "resource id")
	vuln := fs.String("vuln", "", "vulnerability id")
	pkg := fs.String("package", "", "package name")
	limit := fs.Int("limit", 100, "page size (1–1000)")
	by := fs.String("by", "", "aggregate: resource, package, vulnerability, repository, layer or account")
	var filters multiFlag
	fs.Var(&filters, "filter", "any API filter as name=value, e.g. exploitAvailable=true, epssMin=0.5, resourceTag=env=prod (repeatable)")
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return exitUsage
	}
	if err := oneOf(*format, "table", "json"); err != nil {
		return e.fail(err)
	}
	c, err := e.newClient(*server, *key)
	if err != nil {
		return e.fail(err)
	}
	switch args[0] {
	case "get":
		if len(pos) != 1 {
			fs.Usage()
			return exitUsage
		}
		var d httpapi.FindingDetail
		if err := c.do(ctx, http.MethodGet, "/v1/findings/"+url.PathEscape(pos[0]), nil, &d); err != nil {
			return e.fail(err)
		}
		return e.printJSON(d)
	case "list", "aggregate":
		q := url.Values{}
		for k, v := range map[string]string{"status": *status, "severity": *severity, "resourceId": *resource, "vulnerabilityId": *vuln, "packageName": *pkg} {
			if v != "" {
				q.Set(k, v)
			}
		}
		for _, f := range filters {
			k, v, ok := strings.Cut(f, "=")
			if !ok || k == "" {
				return e.fail(vigil.Errorf(vigil.EINVALID, "--filter %q: want name=value", f))
			}
			q.Add(k, v)
		}
		if args[0] == "aggregate" {
			if *by == "" {
				return e.fail(vigil.Errorf(vigil.EINVALID, "aggregate needs --by"))
			}
			q.Set("by", *by)
			q.Set("limit", fmt.Sprint(*limit))
			var agg httpapi.AggregationList
			if err := c.do(ctx, http.MethodGet, "/v1/findings/aggregations?"+q.Encode(), nil, &agg); err != nil {
				return e.fail(err)
			}
			if *format == "json" {
				return e.printJSON(agg)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "GROUP\tCRITICAL\tHIGH\tMEDIUM\tLOW\tUNTRIAGED\tTOTAL")
			for _, a := range agg.Aggregations {
				var key []string
				for _, k := range []string{"account", "repository", "resourceName", "ecosystem", "name", "version", "vulnerabilityId", "layer"} {
					if v := a.Key[k]; v != "" {
						key = append(key, v)
					}
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\n", strings.Join(key, " "), a.Counts["CRITICAL"], a.Counts["HIGH"], a.Counts["MEDIUM"], a.Counts["LOW"], a.Counts["UNTRIAGED"]+a.Counts["NONE"], a.Total)
			}
			tw.Flush()
			if agg.NextCursor != "" {
				fmt.Fprintf(e.stderr, "more groups: add --filter cursor=%s\n", agg.NextCursor)
			}
			return exitOK
		}
		q.Set("limit", fmt.Sprint(*limit))
		var list httpapi.FindingList
		if err := c.do(ctx, http.MethodGet, "/v1/findings?"+q.Encode(), nil, &list); err != nil {
			return e.fail(err)
		}
		if *format == "json" {
			return e.printJSON(list)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATUS\tSEVERITY\tVULNERABILITY\tPACKAGES\tLAST OBSERVED")
		for _, f := range list.Findings {
			var names []string
			for _, p := range f.Finding.Packages {
				names = append(names, p.Name+" "+p.Version)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.ID[:12], f.Status, f.Finding.Severity, f.Finding.Vulnerability.ID, strings.Join(names, ", "), f.LastObserved.Format(time.RFC3339))
		}
		tw.Flush()
		if list.NextCursor != "" {
			fmt.Fprintf(e.stderr, "more findings: add --filter cursor=%s\n", list.NextCursor)
		}
		return exitOK
	}
	return exitUsage
}

func (e *env) resources(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, "Usage: vigil resources <list|get ID|tag ID k=v…|untag ID k…|rescan ID [--wait]|delete ID> [--server URL] [--key KEY] [--type TYPE] [--tag k=v]… [--format table|json]\n")
		return exitUsage
	}
	fs := newFlagSet(e, "resources "+args[0], "vigil resources list|get ID|tag ID k=v…|untag ID k…|rescan ID [--wait]|delete ID [--server URL] [--key KEY] [--type TYPE] [--tag k=v]… [--format table|json]")
	wait := fs.Duration("wait", 0, "rescan: wait this long for the scan to end, then print it (0: print it queued)")
	server := fs.String("server", "", "server URL (default $VIGIL_SERVER)")
	key := fs.String("key", "", "API key (default $VIGIL_KEY)")
	format := fs.String("format", "table", "table or json")
	typ := fs.String("type", "", "list: host, image or function")
	var tagFilter multiFlag
	fs.Var(&tagFilter, "tag", "list: only resources with this tag, key=value (repeatable)")
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return exitUsage
	}
	if err := oneOf(*format, "table", "json"); err != nil {
		return e.fail(err)
	}
	c, err := e.newClient(*server, *key)
	if err != nil {
		return e.fail(err)
	}
	need := func(n int) bool {
		if len(pos) < n {
			fs.Usage()
			return false
		}
		return true
	}
	switch args[0] {
	case "list":
		// Every page: resources are listed whole.
		var out httpapi.ResourceList
		q := url.Values{"limit": {"1000"}}
		if *typ != "" {
			q.Set("type", *typ)
		}
		for _, t := range tagFilter {
			q.Add("tag", t)
		}
		for {
			var page httpapi.ResourceList
			if err := c.do(ctx, http.MethodGet, "/v1/resources?"+q.Encode(), nil, &page); err != nil {
				return e.fail(err)
			}
			out.Resources = append(out.Resources, page.Resources...)
			if page.NextCursor == "" {
				break
			}
			q.Set("cursor", page.NextCursor)
		}
		if *format == "json" {
			return e.printJSON(out)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTYPE\tNAME\tACCOUNT\tTAGS\tLAST SCANNED")
		for _, r := range out.Resources {
			var tags []string
			for k, v := range r.Tags {
				tags = append(tags, k+"="+v)
			}
			slices.Sort(tags)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Type, r.Name, r.Account, strings.Join(tags, ","), r.LastScanned.Format(time.RFC3339))
		}
		tw.Flush()
		return exitOK
	case "get":
		if !need(1) {
			return exitUsage
		}
		var r vigil.Resource
		if err := c.do(ctx, http.MethodGet, "/v1/resources/"+url.PathEscape(pos[0]), nil, &r); err != nil {
			return e.fail(err)
		}
		return e.printJSON(r)
	case "tag", "untag":
		if !need(2) {
			return exitUsage
		}
		req := httpapi.TagRequest{Set: map[string]string{}}
		for _, t := range pos[1:] {
			if args[0] == "untag" {
				req.Remove = append(req.Remove, t)
				continue
			}
			k, v, ok := strings.Cut(t, "=")
			if !ok || k == "" {
				return e.fail(vigil.Errorf(vigil.EINVALID, "tag %q: want key=value", t))
			}
			req.Set[k] = v
		}
		var r vigil.Resource
		if err := c.do(ctx, http.MethodPatch, "/v1/resources/"+url.PathEscape(pos[0])+"/tags", req, &r); err != nil {
			return e.fail(err)
		}
		return e.printJSON(r)
	case "rescan":
		if !need(1) {
			return exitUsage
		}
		var sc sqlstore.Scan
		if err := c.do(ctx, http.MethodPost, "/v1/resources/"+url.PathEscape(pos[0])+"/rescan", nil, &sc); err != nil {
			return e.fail(err)
		}
		if *wait > 0 {
			done, err := c.waitScan(ctx, sc.ID, *wait)
			if err != nil {
				return e.fail(err)
			}
			sc = *done
		}
		e.printJSON(sc)
		if sc.Status == sqlstore.ScanFailed {
			return exitFail
		}
		return exitOK
	case "delete":
		if !need(1) {
			return exitUsage
		}
		var out map[string]any
		if err := c.do(ctx, http.MethodDelete, "/v1/resources/"+url.PathEscape(pos[0]), nil, &out); err != nil {
			return e.fail(err)
		}
		return e.printJSON(out)
	}
	fs.Usage()
	return exitUsage
}
