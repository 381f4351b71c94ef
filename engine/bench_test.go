package engine_test

import (
	"archive/zip"
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/collect"
	"github.com/vigil-project/vigil/engine"
	"github.com/vigil-project/vigil/feed"
	"github.com/vigil-project/vigil/httpapi"
	"github.com/vigil-project/vigil/internal/testutil"
	"github.com/vigil-project/vigil/match"
	"github.com/vigil-project/vigil/registry"
	"github.com/vigil-project/vigil/source"
	"github.com/vigil-project/vigil/sqlstore"
	"github.com/vigil-project/vigil/vulndb"
	"github.com/vigil-project/vigil/worker"
	"golang.org/x/sys/unix"
)

// BenchmarkReevaluation measures continuous scanning's answer to new
// intelligence: a fleet of stored inventories (VIGIL_BENCH_FLEET, default
// 1000; the scale is 10000), each the real Debian 12 root
// filesystem's 188 packages plus about 110 PyPI, Go and crates.io packages
// at versions taken from real advisories, matched against revision 1 of
// the database built from ../shared/vulndata without a few hundred of its
// advisories (VIGIL_BENCH_CHANGED, default 300); revision 2 is the full
// snapshot. It times, from the enqueue of the re-evaluation to the last
// rematch job's completion, with worker processes (the vigil binary):
//
//   - incremental: only the resources holding a package a changed
//     advisory names, or an open finding of a changed vulnerability;
//   - full: every stored inventory.
//
// on SQLite and PostgreSQL (VIGIL_BENCH_BACKENDS), with 1 and 2 worker
// processes of one job each, and 1 process of two jobs. The stores are
// built once and cached (VIGIL_BENCH_CACHE, default ~/.cache/vigil-bench);
// each measurement runs on a fresh copy. Run it with bench/reeval.sh.
func BenchmarkReevaluation(b *testing.B) {
	vd := testutil.Vulndata(b)
	fleet := envInt("VIGIL_BENCH_FLEET", 1000)
	changed := envInt("VIGIL_BENCH_CHANGED", 300)
	cache := os.Getenv("VIGIL_BENCH_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "vigil-bench")
	}
	cache = filepath.Join(cache, fmt.Sprintf("reeval-v2-%d-%d", fleet, changed))
	if err := os.MkdirAll(cache, 0o755); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	rev1, rev2 := buildRevisions(b, vd, cache, changed)
	rev3 := buildKEVRevision(b, vd, cache, rev2, 20)
	base := baseInventory(b)
	bin := filepath.Join(b.TempDir(), "vigil")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/vigil").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	backends := strings.Split(envStr("VIGIL_BENCH_BACKENDS", "sqlite,postgres"), ",")
	b.ResetTimer()
	for range b.N {
		for _, backend := range backends {
			tmpl := buildFleet(b, backend, cache, rev1, base, fleet)
			// processes, jobs each: SQLite has one writer at a time, so
			// one process; PostgreSQL, one and two processes.
			configs := [][2]int{{1, 2}}
			if backend == "postgres" {
				configs = [][2]int{{1, 1}, {2, 1}, {1, 2}, {2, 2}}
			}
			if c := os.Getenv("VIGIL_BENCH_CONFIGS"); c != "" {
				configs = nil
				for _, pc := range strings.Split(c, ",") {
					p, j, _ := strings.Cut(pc, "x")
					np, _ := strconv.Atoi(p)
					nj, _ := strconv.Atoi(j)
					configs = append(configs, [2]int{np, nj})
				}
			}
			// incremental (revision 1 to 2) then kev (2 to 3) on one copy
			// of the fleet, full (1 to 2, every resource) on another.
			for _, modes := range [][]string{{"incremental", "kev"}, {"full"}} {
				for _, cfg := range configs {
					dsn, drop := cloneStore(b, backend, tmpl)
					for _, mode := range modes {
						db, from := rev2, int64(1)
						if mode == "kev" {
							db, from = rev3, 2
						}
						res := reevaluate(b, ctx, bin, dsn, db, from, mode == "full", cfg[0], cfg[1])
						fmt.Printf("reevaluation %-8s %-11s fleet=%d processes=%d jobs-each=%d: %d resources matched again, %d finding events, %.2fs (%.0f resources/s)\n",
							backend, mode, fleet, cfg[0], cfg[1], res.resources, res.events, res.elapsed.Seconds(), float64(res.resources)/res.elapsed.Seconds())
						b.ReportMetric(res.elapsed.Seconds(), backend+"-"+mode+"-"+strconv.Itoa(cfg[0])+"x"+strconv.Itoa(cfg[1])+"-s")
					}
					drop()
				}
			}
		}
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envStr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// buildRevisions builds (once) revision 1, from the snapshot without
// `changed` PyPI and Go advisories, and revision 2, the same file updated
// from the full snapshot. It returns their paths.
func buildRevisions(b *testing.B, vd, cache string, changed int) (string, string) {
	rev1, rev2 := filepath.Join(cache, "vulndb-rev1.db"), filepath.Join(cache, "vulndb-rev2.db")
	if _, err := os.Stat(rev2); err == nil {
		return rev1, rev2
	}
	ctx := context.Background()
	partial := filepath.Join(cache, "mirror-rev1")
	os.RemoveAll(partial)
	for _, d := range []string{"kev", "epss", "cve"} {
		if err := os.MkdirAll(partial, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(vd, d), filepath.Join(partial, d)); err != nil {
			b.Fatal(err)
		}
	}
	ecos, _ := os.ReadDir(filepath.Join(vd, "osv"))
	perEco := changed / 2
	for _, e := range ecos {
		src := filepath.Join(vd, "osv", e.Name(), "all.zip")
		dst := filepath.Join(partial, "osv", e.Name(), "all.zip")
		os.MkdirAll(filepath.Dir(dst), 0o755)
		drop := 0
		if e.Name() == "PyPI" || e.Name() == "Go" {
			drop = perEco
		}
		copyZipDropping(b, src, dst, drop)
	}
	if _, err := vulndb.Update(ctx, vulndb.Options{Path: rev1, Sources: feed.FromMirror(partial)}); err != nil {
		b.Fatal(err)
	}
	testutil.CopyFile(b, rev1, rev2+".tmp")
	sum, err := vulndb.Update(ctx, vulndb.Options{Path: rev2 + ".tmp", Sources: feed.FromMirror(vd)})
	if err != nil {
		b.Fatal(err)
	}
	fmt.Printf("database: revision 2 changes %d packages and %d vulnerabilities\n", sum.ChangedPackages, sum.ChangedVulns)
	if err := os.Rename(rev2+".tmp", rev2); err != nil {
		b.Fatal(err)
	}
	return rev1, rev2
}

// copyZipDropping copies a zip without every k-th of its first entries,
// dropping n in all, spread over the file.
func copyZipDropping(b *testing.B, src, dst string, n int) {
	zr, err := zip.OpenReader(src)
	if err != nil {
		b.Fatal(err)
	}
	defer zr.Close()
	out, err := os.Create(dst)
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	zw := zip.NewWriter(out)
	step := len(zr.File)
	if n > 0 {
		step = max(len(zr.File)/n, 1)
	}
	dropped := 0
	for i, f := range zr.File {
		if n > 0 && i%step == 0 && dropped < n {
			dropped++
			continue
		}
		r, err := f.Open()
		if err != nil {
			b.Fatal(err)
		}
		w, err := zw.Create(f.Name)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(w, r); err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
}

// buildKEVRevision builds (once) revision 3: revision 2 with n more KEV
// entries, for CVEs of advisories that name packages of the fleet's pool.
func buildKEVRevision(b *testing.B, vd, cache, rev2 string, n int) string {
	rev3 := filepath.Join(cache, "vulndb-rev3.db")
	if _, err := os.Stat(rev3); err == nil {
		return rev3
	}
	db, err := vulndb.Open(rev2)
	if err != nil {
		b.Fatal(err)
	}
	var cves []string
	seen := map[string]bool{}
	for _, p := range languagePool(b, db) {
		es, _ := db.Lookup(context.Background(), p.Ecosystem, p.Name)
		for _, e := range es {
			if strings.HasPrefix(e.VulnID, "CVE-") && !seen[e.VulnID] {
				seen[e.VulnID] = true
				cves = append(cves, e.VulnID)
			}
		}
	}
	db.Close()
	slices.Sort(cves)
	rng := rand.New(rand.NewPCG(7, 7))
	rng.Shuffle(len(cves), func(i, j int) { cves[i], cves[j] = cves[j], cves[i] })
	cves = cves[:min(n, len(cves))]
	mirror := filepath.Join(cache, "mirror-rev3")
	os.RemoveAll(mirror)
	os.MkdirAll(filepath.Join(mirror, "kev"), 0o755)
	for _, d := range []string{"osv", "epss", "cve"} {
		if err := os.Symlink(filepath.Join(vd, d), filepath.Join(mirror, d)); err != nil {
			b.Fatal(err)
		}
	}
	raw, err := os.ReadFile(filepath.Join(vd, "kev", "known_exploited_vulnerabilities.json"))
	if err != nil {
		b.Fatal(err)
	}
	var cat map[string]any
	if err := json.Unmarshal(raw, &cat); err != nil {
		b.Fatal(err)
	}
	list := cat["vulnerabilities"].([]any)
	for _, c := range cves {
		list = append(list, map[string]any{"cveID": c, "vendorProject": "bench", "product": "bench", "vulnerabilityName": c,
			"dateAdded": "2026-11-28", "shortDescription": "added by the benchmark", "requiredAction": "Apply updates.", "dueDate": "2026-12-19",
			"knownRansomwareCampaignUse": "Unknown", "notes": ""})
	}
	cat["vulnerabilities"], cat["count"] = list, len(list)
	out, _ := json.Marshal(cat)
	if err := os.WriteFile(filepath.Join(mirror, "kev", "known_exploited_vulnerabilities.json"), out, 0o644); err != nil {
		b.Fatal(err)
	}
	testutil.CopyFile(b, rev2, rev3+".tmp")
	sum, err := vulndb.Update(context.Background(), vulndb.Options{Path: rev3 + ".tmp", Sources: feed.FromMirror(mirror)})
	if err != nil {
		b.Fatal(err)
	}
	fmt.Printf("database: revision 3 adds %d KEV entries: %d vulnerabilities changed\n", len(cves), sum.ChangedVulns)
	if err := os.Rename(rev3+".tmp", rev3); err != nil {
		b.Fatal(err)
	}
	return rev3
}

// baseInventory is the real Debian 12 root filesystem's inventory.
func baseInventory(b *testing.B) *vigil.Inventory {
	dir := testutil.Target(b, "debian-bookworm")
	t, err := source.Open(context.Background(), filepath.Join(dir, "rootfs"), source.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer t.Close()
	inv, err := collect.Collect(context.Background(), t, collect.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return inv
}

// languagePool lists real PyPI, Go and crates.io packages at versions that
// real advisories name (an introduced, fixed or listed version), from
// the database.
func languagePool(b *testing.B, db *vulndb.DB) []vigil.Package {
	ctx := context.Background()
	refs, err := db.Packages(ctx)
	if err != nil {
		b.Fatal(err)
	}
	types := map[string]string{"PyPI": "pypi", "Go": "golang", "crates.io": "cargo"}
	var pool []vigil.Package
	for _, r := range refs {
		typ, ok := types[r.Ecosystem]
		if !ok || r.Package == "stdlib" {
			continue
		}
		es, err := db.Lookup(ctx, r.Ecosystem, r.Package)
		if err != nil || len(es) == 0 {
			continue
		}
		// Mostly fixed versions, as in a fleet that keeps up; some at a
		// version an advisory introduced.
		var fixed, introduced []string
		for _, e := range es {
			for _, rg := range e.Affected.Ranges {
				for _, ev := range rg.Events {
					if ev.Fixed != "" {
						fixed = append(fixed, ev.Fixed)
					}
					if ev.Introduced != "" && ev.Introduced != "0" {
						introduced = append(introduced, ev.Introduced)
					}
				}
			}
		}
		for _, list := range [][]string{fixed, fixed, fixed, fixed, introduced} {
			if len(list) == 0 {
				continue
			}
			slices.Sort(list)
			v := list[len(list)-1]
			pool = append(pool, vigil.Package{Name: r.Package, Version: v, Ecosystem: r.Ecosystem, Type: typ})
		}
	}
	return pool
}

// buildFleet builds (once) the template store of a backend: fleet hosts,
// each the Debian base with a tenth of its packages left out and about 110
// language packages from the pool, matched against revision 1.
func buildFleet(b *testing.B, backend, cache, rev1 string, base *vigil.Inventory, fleet int) string {
	ctx := context.Background()
	var dsn string
	if backend == "sqlite" {
		dsn = filepath.Join(cache, "store-template.db")
		if _, err := os.Stat(dsn + ".done"); err == nil {
			return dsn
		}
		os.Remove(dsn)
	} else {
		name := "vigil_bench_reeval_" + filepath.Base(cache)
		name = strings.ReplaceAll(name, "-", "_")
		admin := pgAdmin(b)
		defer admin.Close()
		var done bool
		admin.QueryRow("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)", name).Scan(&done)
		dsn = "postgres://postgres@127.0.0.1:5432/" + name + "?sslmode=disable"
		if done {
			return dsn
		}
		admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	store, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	store.CreateAccount(ctx, "fleet", "")
	p, _ := store.AccountPrincipal(ctx, 1)
	db, err := vulndb.Open(rev1)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	pool := languagePool(b, db)
	workers := 1
	if backend == "postgres" {
		workers = 4
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	var findings int64
	var mu sync.Mutex
	for w := range workers {
		wg.Go(func() {
			for i := w; i < fleet; i += workers {
				rng := rand.New(rand.NewPCG(uint64(i), 42))
				inv := *base
				inv.Packages = nil
				for _, p := range base.Packages {
					if rng.IntN(10) != 0 {
						inv.Packages = append(inv.Packages, p)
					}
				}
				for range 110 {
					inv.Packages = append(inv.Packages, pool[rng.IntN(len(pool))])
				}
				inv.Digest = fmt.Sprintf("sha256:host-%06d", i)
				res, err := match.Match(ctx, db, &inv)
				if err == nil {
					_, err = store.SubmitInventory(ctx, p, sqlstore.ResourceSpec{Type: vigil.ResourceHost, Name: fmt.Sprintf("host-%06d", i)}, &inv, res.Findings, db.Meta().Revision)
				}
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				findings += int64(len(res.Findings))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	if err := store.Optimize(ctx); err != nil {
		b.Fatal(err)
	}
	store.Close()
	fmt.Printf("fleet %s: %d hosts, %d findings, built in %.0fs\n", backend, fleet, findings, time.Since(start).Seconds())
	if backend == "sqlite" {
		os.WriteFile(dsn+".done", nil, 0o644)
	} else {
		admin := pgAdmin(b)
		defer admin.Close()
		name := strings.TrimSuffix(strings.TrimPrefix(dsn, "postgres://postgres@127.0.0.1:5432/"), "?sslmode=disable")
		if _, err := admin.Exec("ALTER DATABASE " + name + " WITH IS_TEMPLATE true"); err != nil {
			b.Fatal(err)
		}
	}
	return dsn
}

func pgAdmin(b *testing.B) *sql.DB {
	admin, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	if err == nil {
		err = admin.Ping()
	}
	if err != nil {
		b.Skipf("PostgreSQL unreachable: %v", err)
	}
	return admin
}

// cloneStore copies a template store for one measurement; drop deletes
// the copy (a fleet's store is gigabytes).
func cloneStore(b *testing.B, backend, tmpl string) (string, func()) {
	if backend == "sqlite" {
		dir, err := os.MkdirTemp("", "vigil-bench-")
		if err != nil {
			b.Fatal(err)
		}
		testutil.CopyFile(b, tmpl, filepath.Join(dir, "vigil-store.db"))
		// The copy's gigabytes written back now, not while the
		// measurement's own commits wait for the disk; and the
		// template's pages out of the page cache, which a server's
		// machine would not hold beside its store.
		syscall.Sync()
		if f, err := os.Open(tmpl); err == nil {
			unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
			f.Close()
		}
		return dir, func() { os.RemoveAll(dir) }
	}
	admin := pgAdmin(b)
	defer admin.Close()
	from := strings.TrimSuffix(strings.TrimPrefix(tmpl, "postgres://postgres@127.0.0.1:5432/"), "?sslmode=disable")
	name := fmt.Sprintf("vigil_bench_run_%d", time.Now().UnixNano())
	if _, err := admin.Exec("CREATE DATABASE " + name + " TEMPLATE " + from); err != nil {
		b.Fatal(err)
	}
	return "postgres://postgres@127.0.0.1:5432/" + name + "?sslmode=disable", func() {
		a := pgAdmin(b)
		a.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		a.Close()
	}
}

type reevalResult struct {
	resources, events int
	elapsed           time.Duration
}

// reevaluate starts worker processes on a store, enqueues the
// re-evaluation of revision 2 and waits for every rematch job to finish.
func reevaluate(b *testing.B, ctx context.Context, bin, dsn, dbPath string, from int64, full bool, processes, jobs int) reevalResult {
	storeFlag := []string{"--data-dir", dsn}
	openDSN := filepath.Join(dsn, "vigil-store.db")
	if strings.HasPrefix(dsn, "postgres://") {
		storeFlag, openDSN = []string{"--database", dsn}, dsn
	}
	store, err := sqlstore.Open(ctx, openDSN)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	// The workers' own loop must not start a re-evaluation of its own.
	if _, _, err := store.NoteRevision(ctx, "reevaluated_revision", from+1, nil); err != nil {
		b.Fatal(err)
	}
	var procs []*exec.Cmd
	for range processes {
		cmd := exec.Command(bin, append([]string{"worker", "--db", dbPath, "--workers", strconv.Itoa(jobs)}, storeFlag...)...)
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		ready := make(chan struct{})
		go func() {
			sc := bufio.NewScanner(stderr)
			once := sync.OnceFunc(func() { close(ready) })
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "vigil worker running") {
					once()
				}
			}
		}()
		<-ready
		procs = append(procs, cmd)
	}
	defer func() {
		// Interrupted, not killed, so that a VIGIL_CPUPROFILE is written.
		for _, p := range procs {
			p.Process.Signal(os.Interrupt)
			t := time.AfterFunc(15*time.Second, func() { p.Process.Kill() })
			p.Wait()
			t.Stop()
		}
	}()
	rematches := func() int {
		n := 0
		use, _ := store.Usage(ctx, vigil.Principal{AccountID: 1, Role: vigil.RoleAdmin, Visible: []int64{1}}, "", "")
		for _, u := range use {
			n += int(u.Rematches)
		}
		return n
	}
	before := rematches()
	body, _ := json.Marshal(engine.ReevaluateArgs{From: from, All: full})
	start := time.Now()
	if _, _, err := store.Enqueue(ctx, sqlstore.NewJob{Kind: engine.KindReevaluate, Args: body}); err != nil {
		b.Fatal(err)
	}
	for {
		c, err := store.JobCounts(ctx)
		if err != nil {
			b.Fatal(err)
		}
		busy := 0
		for _, st := range c {
			busy += st[sqlstore.JobAvailable] + st[sqlstore.JobRunning]
		}
		if busy == 0 && c[engine.KindReevaluate][sqlstore.JobCompleted] >= 1 {
			if n := c[engine.KindRematch][sqlstore.JobFailed] + c[engine.KindReevaluate][sqlstore.JobFailed]; n > 0 {
				b.Fatalf("%d jobs failed", n)
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	res := reevalResult{elapsed: time.Since(start), resources: rematches() - before}
	res.events = countEvents(b, openDSN, start)
	return res
}

// countEvents counts the finding events written since start.
func countEvents(b *testing.B, dsn string, start time.Time) int {
	driver := "sqlite"
	if strings.HasPrefix(dsn, "postgres://") {
		driver = "pgx"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var n int
	q := "SELECT count(*) FROM events WHERE at >= ?"
	if driver == "pgx" {
		q = "SELECT count(*) FROM events WHERE at >= $1"
	}
	db.QueryRow(q, start.UTC().UnixMicro()).Scan(&n)
	return n
}

// BenchmarkPushToFindings measures the latency from a registry's push
// notification to the pushed image's findings being stored, for the real
// Debian 12 image (a small random layer added per iteration makes each
// push a new image): the webhook, the job claim, the pull from an in-process
// registry, the inventory, the matching and the store, on SQLite.
func BenchmarkPushToFindings(b *testing.B) {
	dir := testutil.Target(b, "debian-bookworm")
	base, err := tarball.ImageFromPath(filepath.Join(dir, "image.docker.tar"), nil)
	if err != nil {
		b.Fatal(err)
	}
	r := newRig(b, filepath.Join(b.TempDir(), "store.db"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool := &worker.Pool{Store: r.store, Handlers: r.eng.Handlers(), Poll: 50 * time.Millisecond}
	r.eng.Enqueued = pool.Wake
	go pool.Run(ctx)
	api := httptest.NewServer((&httpapi.Server{Store: r.store, DB: r.eng.DB, Engine: r.eng}).Handler())
	defer api.Close()
	reg := newRegistry(b)
	watched, err := r.store.CreateRegistry(ctx, r.p, sqlstore.NewRegistry{Config: registry.Config{URL: reg.srv.URL}})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		layer, err := random.Layer(64, types.DockerLayer)
		if err != nil {
			b.Fatal(err)
		}
		img, err := mutate.AppendLayers(base, layer)
		if err != nil {
			b.Fatal(err)
		}
		ref := reg.push(b, fmt.Sprintf("app/web:%d", i), img)
		b.StartTimer()
		if code, out := postEvents(b, api, watched.ID, watched.WebhookSecret, event("push", "app/web", fmt.Sprint(i), digestOf(ref))); code != http.StatusAccepted {
			b.Fatalf("push: %d %v", code, out)
		}
		for {
			id, _ := r.store.ResourceByName(ctx, 1, vigil.ResourceImage, ref)
			if id != "" {
				if reason, _ := r.store.CoverageReason(ctx, id); reason == "" {
					break
				} else if reason != vigil.ReasonPendingInitialScan {
					b.Fatalf("scan: %s", reason)
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
