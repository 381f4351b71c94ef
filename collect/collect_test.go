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
