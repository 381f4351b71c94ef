package vulndb_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vigil-project/vigil/feed"
	"github.com/vigil-project/vigil/internal/testutil"
	"github.com/vigil-project/vigil/vulndb"
)

// BenchmarkBuild is a full build of the database from ../shared/vulndata.
// Peak memory is measured by bench/vulndb.sh around the same build by the
// vigil binary.
func BenchmarkBuild(b *testing.B) {
	src := testutil.Vulndata(b)
	var size int64
	for b.Loop() {
		path := filepath.Join(b.TempDir(), "vigil.db")
		if _, err := vulndb.Update(context.Background(), vulndb.Options{Path: path, Sources: feed.FromMirror(src)}); err != nil {
			b.Fatal(err)
		}
		st, _ := os.Stat(path)
		size = st.Size()
	}
	b.ReportMetric(float64(size)/(1<<20), "MiB")
}

// BenchmarkLookupWarm is the matching path of a warm process: lookups by
// (ecosystem, package) over every key the database holds, one goroutine,
// so lookups/s is per core.
func BenchmarkLookupWarm(b *testing.B) {
	path, _ := sharedDB(b)
	db, err := vulndb.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	keys, err := db.Packages(ctx)
	if err != nil || len(keys) == 0 {
		b.Fatal(err, len(keys))
	}
	// Half the lookups are for packages no advisory names, as in a real
	// inventory, where most packages have no advisory.
	var probes []vulndb.PackageRef
	for _, k := range keys {
		probes = append(probes, k, vulndb.PackageRef{Ecosystem: k.Ecosystem, Package: k.Package + "-clean"})
	}
	for _, p := range probes {
		if _, err := db.Lookup(ctx, p.Ecosystem, p.Package); err != nil {
			b.Fatal(err)
		}
	}
	i := 0
	for b.Loop() {
		p := probes[i%len(probes)]
		if _, err := db.Lookup(ctx, p.Ecosystem, p.Package); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
}

// BenchmarkLookupCold is a lookup that misses the cache: a query of the
// file.
func BenchmarkLookupCold(b *testing.B) {
	path, _ := sharedDB(b)
	ctx := context.Background()
	db, err := vulndb.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	keys, _ := db.Packages(ctx)
	db.Close()
	i := 0
	for b.Loop() {
		b.StopTimer()
		db, err := vulndb.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		k := keys[i%len(keys)]
		if _, err := db.Lookup(ctx, k.Ecosystem, k.Package); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		db.Close()
		b.StartTimer()
		i++
	}
}

// BenchmarkOpenFirstLookup is opening the file and answering one lookup,
// in process.
func BenchmarkOpenFirstLookup(b *testing.B) {
	path, _ := sharedDB(b)
	ctx := context.Background()
	for b.Loop() {
		db, err := vulndb.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		es, err := db.Lookup(ctx, "Debian:12", "openssl")
		if err != nil || len(es) == 0 {
			b.Fatal(err, len(es))
		}
		db.Close()
	}
}

// BenchmarkFreshProcess is a fresh vigil process opening the database and
// answering its first lookup (`vigil db lookup`), start to exit.
func BenchmarkFreshProcess(b *testing.B) {
	path, _ := sharedDB(b)
	bin := filepath.Join(b.TempDir(), "vigil")
	build := exec.Command("go", "build", "-o", bin, "../cmd/vigil")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	for b.Loop() {
		cmd := exec.Command(bin, "db", "lookup", "Debian:12", "openssl", "--format", "json", "--db", path)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v\n%s", err, out)
		}
	}
}
