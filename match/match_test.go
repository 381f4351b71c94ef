package match_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/feed"
	"github.com/vigil-project/vigil/internal/testutil"
	"github.com/vigil-project/vigil/match"
	"github.com/vigil-project/vigil/vulndb"
)

// fixtureDB builds a database from the real-shaped records in
// testdata/mirror.
func fixtureDB(t testing.TB) *vulndb.DB {
	t.Helper()
	src := testutil.FixtureMirror(t, filepath.Join("testdata", "mirror"))
	path := filepath.Join(t.TempDir(), "vigil.db")
	if _, err := vulndb.Update(context.Background(), vulndb.Options{Path: path, Sources: feed.FromMirror(src)}); err != nil {
		t.Fatal(err)
	}
	db, err := vulndb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func deb(name, version, src, srcVersion string) vigil.Package {
	return vigil.Package{Name: name, Version: version, Ecosystem: "Debian:12", Type: "deb", SourceName: src, SourceVersion: srcVersion,
		PURL: "pkg:deb/debian/" + name + "@" + version, Path: "var/lib/dpkg/status"}
}

func find(res *match.Result, id string) *vigil.Finding {
	for i := range res.Findings {
		if res.Findings[i].Vulnerability.ID == id {
			return &res.Findings[i]
		}
	}
	return nil
}

func TestTraps(t *testing.T) {
	db := fixtureDB(t)
	inv := &vigil.Inventory{
		OS: &vigil.OSInfo{ID: "debian", VersionID: "12", Ecosystem: "Debian:12"},
		Packages: []vigil.Package{
			// One source package, two binaries: one finding listing both.
			deb("libssl3", "3.0.11-1~deb12u2", "openssl", "3.0.11-1~deb12u2"),
			deb("openssl", "3.0.11-1~deb12u2", "openssl", "3.0.11-1~deb12u2"),
			// Kernel headers are built from linux, but are not the kernel.
			deb("linux-headers-6.1.0-18-amd64", "6.1.76-1", "linux", "6.1.76-1"),
			deb("linux-libc-dev", "6.1.76-1", "linux", "6.1.76-1"),
			deb("linux-image-6.1.0-18-amd64", "6.1.76-1", "linux-signed-amd64", "6.1.76+1"),
			// Not kernels, whatever their names say.
			deb("libpam0g-linux", "1.0-1", "linux-pam", "1.0-1"),
			// Debian triage states are kept as vendor severity.
			deb("libpam-modules", "1.5.2-6+deb12u1", "pam", "1.5.2-6+deb12u1"),
			// A dist-info that dpkg installed: Debian's to judge.
			{Name: "requests", Version: "2.28.1", Ecosystem: "PyPI", Type: "pypi", Path: "usr/lib/python3/dist-packages/requests-2.28.1.egg-info/PKG-INFO", OwnedBy: "python3-requests"},
			// The same library installed by pip: PyPI's.
			{Name: "requests", Version: "2.28.1", Ecosystem: "PyPI", Type: "pypi", Path: "usr/local/lib/python3.11/site-packages/requests-2.28.1.dist-info/METADATA", PURL: "pkg:pypi/requests@2.28.1"},
			// The Go stdlib is matched at the binary's own Go version.
			{Name: "stdlib", Version: "1.19.0", Ecosystem: "Go", Type: "golang", Path: "usr/local/bin/app"},
			{Name: "stdlib", Version: "1.22.5", Ecosystem: "Go", Type: "golang", Path: "usr/local/bin/newer"},
			// Two copies of lodash, and lodash-es with no fix: PARTIAL.
			{Name: "lodash", Version: "4.17.15", Ecosystem: "npm", Type: "npm", Path: "app/node_modules/lodash/package.json", PURL: "pkg:npm/lodash@4.17.15"},
			{Name: "lodash", Version: "4.17.11", Ecosystem: "npm", Type: "npm", Path: "app/node_modules/x/node_modules/lodash/package.json", PURL: "pkg:npm/lodash@4.17.11"},
			{Name: "lodash-es", Version: "4.17.15", Ecosystem: "npm", Type: "npm", Path: "app/node_modules/lodash-es/package.json", PURL: "pkg:npm/lodash-es@4.17.15"},
			// Unknown to every feed.
			{Name: "thing", Version: "1.0", Ecosystem: "", Type: "generic"},
		},
	}
	res, err := match.Match(context.Background(), db, inv)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, f := range res.Findings {
		ids[f.Vulnerability.ID] = true
	}

	ssl := find(res, "CVE-2024-5535")
	if ssl == nil || len(ssl.Packages) != 2 || ssl.FixAvailable != vigil.FixYes {
		t.Fatalf("openssl finding: %+v", ssl)
	}
	for _, p := range ssl.Packages {
		if p.FixedVersion != "3.0.15-1~deb12u1" || p.Evidence.Matcher != match.MatcherDistro || p.Evidence.Package != "openssl" ||
			p.Evidence.Advisory != "DEBIAN-CVE-2024-5535" || p.VendorSeverity != "low" || !strings.Contains(p.Remediation, "apt-get install --only-upgrade "+p.Name) {
			t.Errorf("openssl package: %+v", p)
		}
	}
	if f := find(res, "CVE-2024-26925"); f == nil || len(f.Packages) != 1 || f.Packages[0].Name != "linux-image-6.1.0-18-amd64" ||
		f.Packages[0].Evidence.Package != "linux" || f.Packages[0].Evidence.Version != "6.1.76-1" {
		t.Errorf("kernel CVE: want the kernel image alone, through linux 6.1.76-1: %+v", f)
	}
	if res.Stats.KernelSkips != 2 {
		t.Errorf("kernel skips = %d, want 2 (the image is matched through linux-signed-amd64)", res.Stats.KernelSkips)
	}
	pam := find(res, "CVE-2024-22365")
	if pam == nil || pam.FixAvailable != vigil.FixNo || pam.Packages[0].VendorSeverity != "unimportant" || pam.Severity != "LOW" {
		t.Errorf("pam: %+v", pam)
	}
	req := find(res, "CVE-2023-32681")
	if req == nil || len(req.Packages) != 1 || !strings.HasPrefix(req.Packages[0].Path, "usr/local") {
		t.Errorf("requests: %+v", req)
	}
	if res.Stats.OwnedByOS != 1 {
		t.Errorf("owned by the OS = %d", res.Stats.OwnedByOS)
	}
	gof := find(res, "CVE-2022-27664")
	if gof == nil || len(gof.Packages) != 1 || gof.Packages[0].Path != "usr/local/bin/app" || gof.Packages[0].FixedVersion != "1.19.1" ||
		!strings.Contains(gof.Packages[0].Remediation, "Rebuild the binary with Go 1.19.1") {
		t.Errorf("stdlib: %+v", gof)
	}
	lo := find(res, "CVE-2020-8203")
	if lo == nil || len(lo.Packages) != 3 || lo.FixAvailable != vigil.FixPartial || lo.Score == nil || *lo.Score != 7.4 || lo.EPSS == nil {
		t.Fatalf("lodash: %+v", lo)
	}
	if ids["GHSA-wdrw-wthd-wxxx"] {
		t.Error("a withdrawn advisory matched")
	}
	if res.Stats.NoEcosystem != 1 {
		t.Errorf("no-ecosystem = %d", res.Stats.NoEcosystem)
	}
}

// A release with no advisory data says so instead of a clean result.
func TestReleaseWithoutData(t *testing.T) {
	db := fixtureDB(t)
	inv := &vigil.Inventory{
		OS:       &vigil.OSInfo{ID: "debian", VersionID: "13", Ecosystem: "Debian:13"},
		Packages: []vigil.Package{{Name: "libssl3t64", Version: "3.5.1-1", Ecosystem: "Debian:13", Type: "deb", SourceName: "openssl", SourceVersion: "3.5.1-1"}},
	}
	res, err := match.Match(context.Background(), db, inv)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) != 0 || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "no advisories for Debian:13") {
		t.Errorf("findings %d, warnings %q", len(res.Findings), res.Warnings)
	}
	inv.OS = &vigil.OSInfo{ID: "amzn", VersionID: "2023", PrettyName: "Amazon Linux 2023"}
	inv.Packages[0].Ecosystem = ""
	res, _ = match.Match(context.Background(), db, inv)
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "Amazon Linux 2023") {
		t.Errorf("warnings %q", res.Warnings)
	}
}

// Two advisories of one vulnerability with different fixes: the highest
// fix is the one that clears both.
func TestHighestFixAcrossAdvisories(t *testing.T) {
	src := testutil.FixtureMirror(t, filepath.Join("testdata", "mirror"))
	dir := t.TempDir()
	a := filepath.Join(dir, "DSA-9999-1.json")
	b := filepath.Join(dir, "DEBIAN-CVE-2099-0001.json")
	os.WriteFile(a, []byte(`{"id":"DSA-9999-1","modified":"2024-01-01T00:00:00Z","upstream":["CVE-2099-0001"],"summary":"zlib - security update","affected":[{"package":{"ecosystem":"Debian:12","name":"zlib"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1:1.2.13.dfsg-1+deb12u5"}]}]}]}`), 0o644)
	os.WriteFile(b, []byte(`{"id":"DEBIAN-CVE-2099-0001","modified":"2024-01-01T00:00:00Z","upstream":["CVE-2099-0001"],"summary":"zlib: security fix","affected":[{"package":{"ecosystem":"Debian:12","name":"zlib"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1:1.2.13.dfsg-1+deb12u1"}]}]}]}`), 0o644)
	files, _ := filepath.Glob(filepath.Join("testdata", "mirror", "osv", "Debian", "*.json"))
	testutil.WriteZip(t, filepath.Join(src, "osv", "Debian", "all.zip"), append(files, a, b), func(f string) string { return filepath.Base(f) })
	path := filepath.Join(t.TempDir(), "vigil.db")
	if _, err := vulndb.Update(context.Background(), vulndb.Options{Path: path, Sources: feed.FromMirror(src)}); err != nil {
		t.Fatal(err)
	}
	db, err := vulndb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	inv := &vigil.Inventory{Packages: []vigil.Package{deb("zlib1g", "1:1.2.13.dfsg-1", "zlib", "1:1.2.13.dfsg-1")}}
	res, err := match.Match(context.Background(), db, inv)
	if err != nil {
		t.Fatal(err)
	}
	f := find(res, "CVE-2099-0001")
	if f == nil || len(f.Packages) != 1 || f.Packages[0].FixedVersion != "1:1.2.13.dfsg-1+deb12u5" {
		t.Errorf("finding %+v", f)
	}
}
