package collect_test

import (
	"archive/tar"
	"bytes"
	"io"
	"log"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/source"
)

// file is one tar entry of a test layer; a typeflag of 0 is a regular
// file.
type file struct {
	name, body, link string
	typ              byte
}

func layer(t testing.TB, files ...file) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: 0o644, ModTime: time.Unix(1704067200, 0), Typeflag: tar.TypeReg, Size: int64(len(f.body))}
		switch f.typ {
		case tar.TypeDir:
			hdr.Typeflag, hdr.Size, hdr.Mode = tar.TypeDir, 0, 0o755
		case tar.TypeSymlink, tar.TypeLink:
			hdr.Typeflag, hdr.Linkname, hdr.Size = f.typ, f.link, 0
		case tar.TypeFifo:
			hdr.Typeflag, hdr.Size = tar.TypeFifo, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			tw.Write([]byte(f.body))
		}
	}
	tw.Close()
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

const osRelease = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
`

func dpkgStatus(pkgs ...string) string {
	var b strings.Builder
	for _, p := range pkgs {
		name, version, _ := strings.Cut(p, "=")
		b.WriteString("Package: " + name + "\nStatus: install ok installed\nArchitecture: amd64\nVersion: " + version + "\n")
		if name == "libssl3" {
			b.WriteString("Source: openssl\n")
		}
		b.WriteString("\n")
	}
	return b.String()
}

func npmPackage(name, version string) string {
	return `{"name": "` + name + `", "version": "` + version + `"}`
}

// A three-layer image: packages added, upgraded and removed across layers,
// a whiteout, an opaque directory and a lockfile that outlives what it
// lists.
func testImage(t testing.TB) v1.Image {
	t.Helper()
	l1 := layer(t,
		file{name: "etc/os-release", body: osRelease},
		file{name: "var/lib/dpkg/status", body: dpkgStatus("base-files=12.4+deb12u5", "libssl3=3.0.11-1~deb12u2", "zlib1g=1:1.2.13.dfsg-1")},
		file{name: "app/package-lock.json", body: `{"name":"app","lockfileVersion":3,"packages":{"":{"name":"app"},"node_modules/lodash":{"version":"4.17.15"},"node_modules/minimist":{"version":"1.2.0"}}}`},
		file{name: "app/node_modules/lodash/package.json", body: npmPackage("lodash", "4.17.15")},
		file{name: "app/node_modules/minimist/package.json", body: npmPackage("minimist", "1.2.0")},
		file{name: "app/yarn.lock", body: "# yarn lockfile v1\n\nlodash@^4.17.15:\n  version \"4.17.15\"\n  resolved \"https://registry.yarnpkg.com/lodash/-/lodash-4.17.15.tgz\"\n\nminimist@^1.2.0:\n  version \"1.2.0\"\n"},
		file{name: "srv/node_modules/old/package.json", body: npmPackage("old", "1.0.0")},
		file{name: "opt/x/node_modules/hl/package.json", body: npmPackage("hl", "1.0.0")},
		file{name: "opt/x/node_modules/ff/package.json", body: npmPackage("ff", "1.0.0")},
		file{name: "etc/alternatives", typ: tar.TypeDir},
		file{name: "etc/alternatives/loop-a", typ: tar.TypeSymlink, link: "loop-b"},
		file{name: "etc/alternatives/loop-b", typ: tar.TypeSymlink, link: "loop-a"},
	)
	l2 := layer(t,
		// libssl3 upgraded, curl added; base-files and zlib1g unchanged.
		file{name: "var/lib/dpkg/status", body: dpkgStatus("base-files=12.4+deb12u5", "curl=7.88.1-10+deb12u5", "libssl3=3.0.15-1~deb12u1", "zlib1g=1:1.2.13.dfsg-1")},
		// minimist removed by a whiteout; the lockfile still lists it.
		file{name: "app/node_modules/.wh.minimist"},
		// A hard link and a FIFO replace two packages' manifests.
		file{name: "opt/x/node_modules/hl/package.json", typ: tar.TypeLink, link: "etc/os-release"},
		file{name: "opt/x/node_modules/ff/package.json", typ: tar.TypeFifo},
		// srv replaced wholesale.
		file{name: "srv/.wh..wh..opq"},
		file{name: "srv/node_modules/new/package.json", body: npmPackage("new", "2.0.0")},
	)
	l3 := layer(t,
		file{name: "srv/node_modules/later/package.json", body: npmPackage("later", "3.0.0")},
		// Escapes and odd names are ignored, never followed.
		file{name: "../../etc/evil/package.json", body: npmPackage("evil", "6.6.6")},
		file{name: "app/node_modules/ghost/package.json", typ: tar.TypeLink, link: "../../../etc/passwd"},
	)
	img, err := mutate.AppendLayers(empty.Image, l1, l2, l3)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := img.ConfigFile()
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config.User = "app"
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestLayersWhiteoutsAndAttribution(t *testing.T) {
	img := testImage(t)
	diffIDs := func() []string {
		ls, _ := img.Layers()
		var out []string
		for _, l := range ls {
			d, _ := l.DiffID()
			out = append(out, d.String())
		}
		return out
	}()
	dir := t.TempDir()
	archive := filepath.Join(dir, "image.tar")
	tag, _ := name.NewTag("example.com/app:1")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatal(err)
	}
	ociDir := filepath.Join(dir, "oci")
	p, err := layout.Write(ociDir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	ref, _ := name.ParseReference(u.Host + "/app:1")
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}

	want := []string{
		"Debian:12 base-files 12.4+deb12u5 layer0",
		"Debian:12 curl 7.88.1-10+deb12u5 layer1",
		"Debian:12 libssl3 3.0.15-1~deb12u1 layer1",
		"Debian:12 zlib1g 1:1.2.13.dfsg-1 layer0",
		"npm later 3.0.0 layer2",
		"npm lodash 4.17.15 layer0",
		"npm new 2.0.0 layer1",
	}
	for _, c := range []struct {
		ref  string
		opts source.Options
	}{{archive, source.Options{}}, {ociDir, source.Options{}}, {u.Host + "/app:1", source.Options{Insecure: true}}} {
		inv := inventory(t, c.ref, c.opts)
		got := keys(inv.Packages, nil, func(p vigil.Package) string {
			return p.Ecosystem + " " + p.Name + " " + p.Version + " layer" + itoa(slices.Index(diffIDs, p.Layer))
		})
		if !slices.Equal(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", c.ref, got, want)
		}
		for _, p := range inv.Packages {
			if p.Name == "libssl3" && (p.SourceName != "openssl" || p.SourceVersion != "3.0.15-1~deb12u1") {
				t.Errorf("libssl3 source = %s %s", p.SourceName, p.SourceVersion)
			}
		}
		if inv.Image.User != "app" || len(inv.Image.Layers) != 3 {
			t.Errorf("%s: image %+v", c.ref, inv.Image)
		}
		joined := strings.Join(inv.Warnings, "\n")
		if !strings.Contains(joined, "escapes the root") {
			t.Errorf("%s: no warning for the escaping entry: %q", c.ref, inv.Warnings)
		}
	}
}

func itoa(i int) string {
	if i < 0 {
		return "?"
	}
	return string(rune('0' + i))
}
