package collect_test

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/collect"
	"github.com/vigil-project/vigil/internal/testutil"
	"github.com/vigil-project/vigil/source"
)

func inventory(t testing.TB, ref string, opts source.Options) *vigil.Inventory {
	t.Helper()
	tg, err := source.Open(context.Background(), ref, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	inv, err := collect.Collect(context.Background(), tg, collect.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func keys(pkgs []vigil.Package, filter func(vigil.Package) bool, key func(vigil.Package) string) []string {
	var out []string
	for _, p := range pkgs {
		if filter == nil || filter(p) {
			out = append(out, key(p))
		}
	}
	slices.Sort(out)
	return out
}

func diff(t *testing.T, what string, got, want []string) {
	t.Helper()
	var missing, extra []string
	for _, w := range want {
		if !slices.Contains(got, w) {
			missing = append(missing, w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			extra = append(extra, g)
		}
	}
	if len(missing)+len(extra) > 0 || len(got) != len(want) {
		t.Errorf("%s: got %d, want %d; missing %q; extra %q", what, len(got), len(want), missing, extra)
	}
}

// The Debian image's dpkg packages equal dpkg-query's, one for one, with
// their source packages.
func TestDebianRootfsMatchesDpkgQuery(t *testing.T) {
	dir := testutil.Target(t, "debian-bookworm")
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Skip("dpkg-query not installed")
	}
	root := filepath.Join(dir, "rootfs")
	out, err := exec.Command("dpkg-query", "--admindir="+filepath.Join(root, "var/lib/dpkg"), "-W",
		"-f=${db:Status-Abbrev}\t${Package}\t${Version}\t${source:Package}\t${source:Version}\n").Output()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if strings.HasPrefix(f[0], "ii") {
			want = append(want, strings.Join(f[1:], " "))
		}
	}
	slices.Sort(want)
	inv := inventory(t, root, source.Options{})
	got := keys(inv.Packages, func(p vigil.Package) bool { return p.Type == "deb" },
		func(p vigil.Package) string {
			return strings.Join([]string{p.Name, p.Version, p.SourceName, p.SourceVersion}, " ")
		})
	diff(t, "dpkg packages", got, want)
	if inv.OS == nil || inv.OS.Ecosystem != "Debian:12" || inv.OS.Codename != "bookworm" {
		t.Errorf("os = %+v", inv.OS)
	}
	for _, p := range inv.Packages {
		if p.Type == "deb" && (p.Ecosystem != "Debian:12" || !strings.Contains(p.PURL, "distro=bookworm")) {
			t.Errorf("deb package %s: ecosystem %q purl %q", p.Name, p.Ecosystem, p.PURL)
			break
		}
	}
}

// Language packages that dpkg installed are kept, linked to their OS
// package (Trivy drops them; matching must judge them as Debian's).
func TestDebianLanguagePackagesAreLinkedToDpkg(t *testing.T) {
	dir := testutil.Target(t, "debian-bookworm")
	inv := inventory(t, filepath.Join(dir, "rootfs"), source.Options{})
	want := map[string]string{
		"PyPI requests 2.28.1": "python3-requests",
		"PyPI PyYAML 6.0":      "python3-yaml",
		"Maven org.apache.logging.log4j:log4j-core 2.19.0":         "liblog4j2-java",
		"Maven org.yaml:snakeyaml 1.33":                            "libyaml-snake-java",
		"Maven com.fasterxml.jackson.core:jackson-databind 2.14.0": "libjackson2-databind-java",
	}
	found := map[string]string{}
	jars := 0
	for _, p := range inv.Packages {
		k := p.Ecosystem + " " + p.Name + " " + p.Version
		if _, ok := want[k]; ok {
			found[k] = p.OwnedBy
		}
		if p.Ecosystem == "Maven" {
			jars++
			if p.OwnedBy == "" {
				t.Errorf("jar %s at %s is not linked to its Debian package", p.Name, p.Path)
			}
		}
	}
	for k, owner := range want {
		if found[k] != owner {
			t.Errorf("%s: owned by %q, want %q", k, found[k], owner)
		}
	}
	var info struct {
		Jars int `json:"jar_files"`
	}
	data, _ := os.ReadFile(filepath.Join(dir, "info.json"))
	json.Unmarshal(data, &info)
	if jars < info.Jars {
		t.Errorf("%d Maven packages from %d jar files", jars, info.Jars)
	}
}

// The same image read as docker-archive, OCI layout directory, OCI layout
// tar, from a registry, and as the root filesystem gives the same packages.
func TestDebianImageFormatsAgree(t *testing.T) {
	dir := testutil.Target(t, "debian-bookworm")
	key := func(p vigil.Package) string {
		return strings.Join([]string{p.Ecosystem, p.Name, p.Version, p.Path, p.OwnedBy}, " ")
	}
	rootfs := keys(inventory(t, filepath.Join(dir, "rootfs"), source.Options{}).Packages, nil, key)

	archive := inventory(t, filepath.Join(dir, "image.docker.tar"), source.Options{})
	if archive.Target.Format != "docker-archive" || archive.Image == nil {
		t.Fatalf("docker-archive read as %+v", archive.Target)
	}
	img := archive.Image
	if img.User != "www-data" || !slices.Equal(img.ExposedPorts, []string{"80/tcp"}) || !slices.Equal(img.Entrypoint, []string{"/usr/sbin/nginx"}) ||
		len(img.Layers) != 1 || !strings.HasPrefix(img.ID, "sha256:") || img.OS != "linux" {
		t.Errorf("image metadata = %+v", img)
	}
	for _, p := range archive.Packages {
		if p.Layer != img.Layers[0].DiffID {
			t.Errorf("%s: layer %q, want %q", p.Name, p.Layer, img.Layers[0].DiffID)
			break
		}
	}
	diff(t, "docker-archive vs rootfs", keys(archive.Packages, nil, key), rootfs)

	oci := inventory(t, filepath.Join(dir, "image.oci"), source.Options{})
	if oci.Target.Format != "oci-layout" || oci.Image.ID != img.ID {
		t.Errorf("oci layout: %+v id %s", oci.Target, oci.Image.ID)
	}
	diff(t, "oci-layout vs rootfs", keys(oci.Packages, nil, key), rootfs)

	ociTar := filepath.Join(t.TempDir(), "image.oci.tar")
	tarDir(t, filepath.Join(dir, "image.oci"), ociTar)
	fromTar := inventory(t, ociTar, source.Options{})
	if fromTar.Target.Format != "oci-layout" {
		t.Errorf("oci tar read as %+v", fromTar.Target)
	}
	diff(t, "oci-layout tar vs rootfs", keys(fromTar.Packages, nil, key), rootfs)

	// A real registry, in process: push the image, scan it by reference.
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	ref, err := name.ParseReference(u.Host + "/debian:bookworm")
	if err != nil {
		t.Fatal(err)
	}
	v1img, err := tarball.ImageFromPath(filepath.Join(dir, "image.docker.tar"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, v1img); err != nil {
		t.Fatal(err)
	}
	reg := inventory(t, u.Host+"/debian:bookworm", source.Options{Insecure: true})
	if reg.Target.Format != "registry" || reg.Image.ID != img.ID || !strings.HasPrefix(reg.Image.Digest, "sha256:") || len(reg.Image.RepoDigests) != 1 {
		t.Errorf("registry: %+v %+v", reg.Target, reg.Image)
	}
	diff(t, "registry vs rootfs", keys(reg.Packages, nil, key), rootfs)
}

func tarDir(t *testing.T, dir, out string) {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	if err := tw.AddFS(os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

// The Node function's npm packages equal its package-lock's, install path
// for install path, with and without the lockfile in the zip.
func TestNodeFunctionMatchesItsLockfile(t *testing.T) {
	dir := testutil.Target(t, "node-function")
	data, err := os.ReadFile(filepath.Join(dir, "app", "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
			Link    bool   `json:"link"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(data, &lock); err != nil {
		t.Fatal(err)
	}
	var want []string
	for p, v := range lock.Packages {
		if p == "" || v.Link {
			continue
		}
		name := p[strings.LastIndex(p, "node_modules/")+len("node_modules/"):]
		want = append(want, fmt.Sprintf("var/task/%s/package.json %s %s", p, name, v.Version))
	}
	slices.Sort(want)
	for _, zip := range []string{"function.zip", "function-nolock.zip"} {
		inv := inventory(t, filepath.Join(dir, zip), source.Options{})
		if inv.Function == nil || inv.Function.Runtime != "nodejs" {
			t.Errorf("%s: function %+v", zip, inv.Function)
		}
		got := keys(inv.Packages, func(p vigil.Package) bool { return p.Ecosystem == "npm" },
			func(p vigil.Package) string { return p.Path + " " + p.Name + " " + p.Version })
		diff(t, zip, got, want)
	}
}

// The Go binary's modules equal `go version -m`, with its toolchain as
// stdlib, read from the binary and from the function zip holding it.
func TestGoBinaryMatchesBuildInfo(t *testing.T) {
	dir := testutil.Target(t, "go-binary")
	f, err := os.Open(filepath.Join(dir, "buildinfo.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var want []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) == 2 && strings.HasPrefix(fields[1], "go1"):
			want = append(want, "stdlib "+strings.TrimPrefix(fields[1], "go"))
		case len(fields) >= 3 && fields[0] == "dep":
			want = append(want, fields[1]+" "+strings.TrimPrefix(fields[2], "v"))
		}
	}
	slices.Sort(want)
	for _, target := range []string{"app", "function.zip"} {
		inv := inventory(t, filepath.Join(dir, target), source.Options{})
		got := keys(inv.Packages, func(p vigil.Package) bool { return p.Ecosystem == "Go" },
			func(p vigil.Package) string { return p.Name + " " + p.Version })
		diff(t, target, got, want)
		for _, p := range inv.Packages {
			if p.Name == "stdlib" && p.PURL != "pkg:golang/stdlib@"+p.Version {
				t.Errorf("stdlib purl %q", p.PURL)
			}
		}
	}
}
