package collect

import (
	"archive/zip"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/source"
)

func TestParseOSRelease(t *testing.T) {
	m := parseOSRelease(strings.NewReader(`# comment
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME='Debian'
VERSION_ID="12"
BROKEN LINE
 ID = debian
HOME_URL="https://www.debian.org/"
QUOTED="a \"b\" c"
`))
	for k, want := range map[string]string{"PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)", "NAME": "Debian", "VERSION_ID": "12", "ID": "debian", "QUOTED": `a "b" c`} {
		if m[k] != want {
			t.Errorf("%s = %q, want %q", k, m[k], want)
		}
	}
}

func TestOSEcosystem(t *testing.T) {
	for _, c := range []struct {
		release string
		want    string
	}{
		{"ID=debian\nVERSION_ID=12\nVERSION_CODENAME=bookworm", "Debian:12"},
		{"ID=debian\nVERSION_ID=11", "Debian:11"},
		{"ID=debian\nVERSION_CODENAME=trixie\nPRETTY_NAME=\"Debian GNU/Linux trixie/sid\"", "Debian:unstable"},
		{"ID=ubuntu\nVERSION_ID=22.04\nVERSION=\"22.04.4 LTS (Jammy Jellyfish)\"", "Ubuntu:22.04:LTS"},
		{"ID=ubuntu\nVERSION_ID=23.10\nVERSION=\"23.10 (Mantic Minotaur)\"", "Ubuntu:23.10"},
		{"ID=alpine\nVERSION_ID=3.20.3", "Alpine:v3.20"},
		{"ID=rocky\nVERSION_ID=9.3", "Rocky Linux:9"},
		{"ID=almalinux\nVERSION_ID=8.9", "AlmaLinux:8"},
		{"ID=rhel\nVERSION_ID=9.4", "Red Hat:enterprise_linux:9"},
		{"ID=amzn\nVERSION_ID=2023", ""},
		{"ID=wolfi", "Wolfi"},
		{"ID=sles\nVERSION_ID=15.5", "SUSE:Linux Enterprise Server 15 SP5"},
	} {
		o := osInfo(parseOSRelease(strings.NewReader(c.release)))
		if o == nil || o.Ecosystem != c.want {
			t.Errorf("%q: %+v, want ecosystem %q", c.release, o, c.want)
		}
	}
	if osInfo(map[string]string{}) != nil {
		t.Error("no ID, still an OS")
	}
}

func TestVFSResolve(t *testing.T) {
	v := newVFS()
	v.files["usr/lib/os-release"] = &vfile{data: []byte("ID=debian"), size: 9}
	v.links["etc/os-release"] = "../usr/lib/os-release"
	v.links["abs"] = "/usr/lib/os-release"
	v.links["up"] = "../../../../usr/lib/os-release"
	v.links["loop-a"] = "loop-b"
	v.links["loop-b"] = "loop-a"
	v.links["lib"] = "usr/lib"
	for _, c := range []struct {
		in, want string
		ok       bool
	}{
		{"etc/os-release", "usr/lib/os-release", true},
		{"abs", "usr/lib/os-release", true},
		{"up", "usr/lib/os-release", true},
		{"lib/os-release", "usr/lib/os-release", true},
		{"loop-a", "", false},
	} {
		got, ok := v.resolve(c.in, true)
		if got != c.want || ok != c.ok {
			t.Errorf("resolve(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
	f, err := v.Open("etc/os-release")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	entries, err := v.ReadDir("usr/lib")
	if err != nil || len(entries) != 1 || entries[0].Name() != "os-release" {
		t.Errorf("ReadDir = %v, %v", entries, err)
	}
}

func TestOwnersParsers(t *testing.T) {
	owners := map[string]string{}
	parseDpkgList("python3-requests.list", []byte("/.\n/usr\n/usr/lib/python3/dist-packages/requests-2.28.1.egg-info/PKG-INFO\n"), owners)
	parseDpkgList("libssl3:amd64.list", []byte("/usr/lib/x86_64-linux-gnu/libssl.so.3\n"), owners)
	parseApkInstalled([]byte("P:musl\nV:1.2.5-r0\nF:lib\nR:ld-musl-x86_64.so.1\n\nP:py3-yaml\nF:usr/lib/python3.12/site-packages/PyYAML-6.0.1.dist-info\nR:METADATA\n"), owners)
	for p, want := range map[string]string{
		"usr/lib/python3/dist-packages/requests-2.28.1.egg-info/PKG-INFO":  "python3-requests",
		"usr/lib/x86_64-linux-gnu/libssl.so.3":                             "libssl3",
		"lib/ld-musl-x86_64.so.1":                                          "musl",
		"usr/lib/python3.12/site-packages/PyYAML-6.0.1.dist-info/METADATA": "py3-yaml",
	} {
		if owners[p] != want {
			t.Errorf("owner of %s = %q, want %q", p, owners[p], want)
		}
	}
	if _, ok := owners["."]; ok {
		t.Error("the root is owned")
	}
}

// A root filesystem's links never lead out of it: an os-release linked to
// a file of the host is not read.
func TestRootfsLinksStayInside(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "os-release")
	os.WriteFile(outside, []byte("ID=evil\nVERSION_ID=6.6.6\n"), 0o644)
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.MkdirAll(filepath.Join(root, "var/lib/dpkg"), 0o755)
	os.Symlink(outside, filepath.Join(root, "etc/os-release"))
	os.Symlink("loop-b", filepath.Join(root, "etc/loop-a"))
	os.Symlink("loop-a", filepath.Join(root, "etc/loop-b"))
	os.Symlink("/", filepath.Join(root, "hostroot"))
	// A corrupt dpkg status: a warning at worst, never a crash.
	os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), []byte("Package: \x00\x01\nVersion\n\n\n:::\nPackage: ok\nStatus: install ok installed\nVersion: 1.0\n"), 0o644)
	tg, err := source.Open(context.Background(), root, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	inv, err := Collect(context.Background(), tg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if inv.OS != nil {
		t.Errorf("os read through a link out of the root: %+v", inv.OS)
	}
	for _, p := range inv.Packages {
		if strings.HasPrefix(p.Path, "hostroot") {
			t.Errorf("walked the host through a link: %s", p.Path)
		}
	}
}

// Jars nested beyond the depth limit are not followed forever.
func TestNestedArchivesAreBounded(t *testing.T) {
	inner := jar(t, map[string][]byte{"META-INF/maven/org.example/deep/pom.properties": []byte("groupId=org.example\nartifactId=deep\nversion=1.0\n")})
	for i := 0; i < 30; i++ {
		inner = jar(t, map[string][]byte{"lib/inner.jar": inner})
	}
	p := filepath.Join(t.TempDir(), "outer.jar")
	os.WriteFile(p, inner, 0o644)
	tg, err := source.Open(context.Background(), p, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	inv, err := Collect(context.Background(), tg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range inv.Packages {
		if pkg.Name == "org.example:deep" {
			t.Errorf("followed 31 levels of nested archives: %+v", pkg)
		}
	}
	if !strings.Contains(strings.Join(inv.Warnings, "\n"), "max zip depth") {
		t.Errorf("no warning about the depth: %q", inv.Warnings)
	}
	// Within the limit, the nested jar is found.
	shallow := jar(t, map[string][]byte{"META-INF/maven/org.example/deep/pom.properties": []byte("groupId=org.example\nartifactId=deep\nversion=1.0\n")})
	for i := 0; i < 3; i++ {
		shallow = jar(t, map[string][]byte{"lib/inner.jar": shallow})
	}
	os.WriteFile(p, shallow, 0o644)
	tg2, err := source.Open(context.Background(), p, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tg2.Close()
	inv, err = Collect(context.Background(), tg2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, pkg := range inv.Packages {
		found = found || pkg.Name == "org.example:deep"
	}
	if !found {
		t.Errorf("a jar nested 3 deep was not read: %+v", inv.Packages)
	}
}

func jar(t *testing.T, files map[string][]byte) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	zw.Close()
	return buf.Bytes()
}

func FuzzParseOSRelease(f *testing.F) {
	f.Add("ID=debian\nVERSION_ID=\"12\"\n")
	f.Add("ID=ubuntu\nVERSION=\"22.04 LTS\"\nVERSION_ID=22.04\n")
	f.Add("ID=alpine\nVERSION_ID=3\n")
	f.Fuzz(func(t *testing.T, s string) {
		m := parseOSRelease(strings.NewReader(s))
		if o := osInfo(m); o != nil && o.ID == "" {
			t.Fatal("an OS without an id")
		}
	})
}

func FuzzOwners(f *testing.F) {
	f.Add([]byte("/usr/bin/x\n/.\n"), []byte("P:a\nF:usr\nR:b\n"))
	f.Fuzz(func(t *testing.T, list, apk []byte) {
		owners := map[string]string{}
		parseDpkgList("pkg:amd64.list", list, owners)
		parseApkInstalled(apk, owners)
		for p, o := range owners {
			if p == "" || o == "" {
				t.Fatalf("empty owner entry %q -> %q", p, o)
			}
		}
	})
}

func FuzzVFS(f *testing.F) {
	f.Add("etc/os-release", "../usr/lib/os-release", "a/b")
	f.Add("x", "/x", "x/y")
	f.Fuzz(func(t *testing.T, link, target, open string) {
		v := newVFS()
		v.files["usr/lib/os-release"] = &vfile{data: []byte("ID=x"), size: 4}
		v.links[link] = target
		v.links[target] = link
		if p, ok := v.resolve(open, true); ok && (strings.HasPrefix(p, "/") || strings.HasPrefix(p, "../") || p == "..") {
			t.Fatalf("resolve(%q) = %q escapes", open, p)
		}
		if f, err := v.Open(open); err == nil {
			f.Close()
		}
		v.ReadDir(open)
	})
}

var _ = vigil.InventorySchemaVersion

// Third-party SBOMs: Syft names a deb's source in the upstream qualifier,
// Trivy in its SrcName property; the release comes from the distro
// qualifier.
func TestThirdPartySBOMs(t *testing.T) {
	dir := t.TempDir()
	syft := filepath.Join(dir, "syft.cdx.json")
	os.WriteFile(syft, []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"components":[
		{"type":"library","name":"libssl3","version":"3.0.11-1~deb12u2","purl":"pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&upstream=openssl&distro=debian-12"},
		{"type":"library","name":"libssh2-1","version":"1.10.0-3+b1","purl":"pkg:deb/debian/libssh2-1@1.10.0-3%2Bb1?arch=amd64&upstream=libssh2%401.10.0-3&distro=debian-12"},
		{"type":"library","name":"lodash","version":"4.17.15","purl":"pkg:npm/lodash@4.17.15"}]}`), 0o644)
	trivy := filepath.Join(dir, "trivy.cdx.json")
	os.WriteFile(trivy, []byte(`{"bomFormat":"CycloneDX","specVersion":"1.5","version":1,"components":[
		{"type":"operating-system","name":"debian","version":"12.15"},
		{"type":"library","name":"libssl3","version":"3.0.11-1~deb12u2","purl":"pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12.15",
		 "properties":[{"name":"aquasecurity:trivy:SrcName","value":"openssl"},{"name":"aquasecurity:trivy:SrcVersion","value":"3.0.11-1~deb12u2"}]}]}`), 0o644)
	for _, c := range []struct {
		file string
		want []string
	}{
		{syft, []string{"Debian:12 libssh2-1 1.10.0-3+b1 libssh2 1.10.0-3", "Debian:12 libssl3 3.0.11-1~deb12u2 openssl 3.0.11-1~deb12u2", "npm lodash 4.17.15  "}},
		{trivy, []string{"Debian:12 libssl3 3.0.11-1~deb12u2 openssl 3.0.11-1~deb12u2"}},
	} {
		tg, err := source.Open(context.Background(), c.file, source.Options{})
		if err != nil {
			t.Fatal(err)
		}
		inv, err := Collect(context.Background(), tg, Options{})
		tg.Close()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range inv.Packages {
			got = append(got, strings.Join([]string{p.Ecosystem, p.Name, p.Version, p.SourceName, p.SourceVersion}, " "))
		}
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("%s:\n got %q\nwant %q", filepath.Base(c.file), got, c.want)
		}
	}
}

// A requirement that allows a range says nothing of what is installed.
func TestRequirementsRanges(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "requirements.txt"), []byte("requests>=2.0\nflask==2.0.1\nurllib3~=1.26\n"), 0o644)
	tg, err := source.Open(context.Background(), root, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	inv, err := Collect(context.Background(), tg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Packages) != 1 || inv.Packages[0].Name != "flask" || inv.Packages[0].Version != "2.0.1" {
		t.Errorf("packages %+v", inv.Packages)
	}
}
