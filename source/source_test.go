package source

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

var update = flag.Bool("update", false, "rewrite the hostile corpus in testdata/hostile")

func TestCleanPath(t *testing.T) {
	for _, c := range []struct {
		in, want string
		ok       bool
	}{
		{"usr/bin/x", "usr/bin/x", true},
		{"./usr/bin/x", "usr/bin/x", true},
		{"/etc/passwd", "etc/passwd", true},
		{"//etc//passwd", "etc/passwd", true},
		{"a/./b/", "a/b", true},
		{"../etc/passwd", "", false},
		{"a/../../etc", "", false},
		{"a/..", "", false},
		{`..\..\windows`, "", false},
		{".", ".", true},
		{"", ".", true},
	} {
		got, ok := cleanPath(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("cleanPath(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestWhiteout(t *testing.T) {
	for _, c := range []struct {
		in   string
		typ  EntryType
		path string
		ok   bool
	}{
		{"app/node_modules/.wh.minimist", TypeWhiteout, "app/node_modules/minimist", true},
		{".wh.etc", TypeWhiteout, "etc", true},
		{"srv/.wh..wh..opq", TypeOpaque, "srv", true},
		{".wh..wh..opq", TypeOpaque, ".", true},
		{"app/what.wh.ever", 0, "", false},
	} {
		typ, p, ok := whiteout(c.in)
		if typ != c.typ || p != c.path || ok != c.ok {
			t.Errorf("whiteout(%q) = %v %q %v", c.in, typ, p, ok)
		}
	}
}

type tarEntry struct {
	name, body, link string
	typ              byte
	size             int64 // declared size, when it differs from the body
}

func makeTar(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Mode: 0o644, Linkname: e.link, ModTime: time.Unix(1704067200, 0)}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	return buf.Bytes()
}

func walkAll(t testing.TB, data []byte, lim Limits) ([]string, []string, error) {
	var seen, warns []string
	err := walkTar(context.Background(), bytes.NewReader(data), lim, func(w string) { warns = append(warns, w) }, func(e *Entry, open Opener) error {
		s := e.Path
		if e.Link != "" {
			s += " -> " + e.Link
		}
		seen = append(seen, s)
		if open != nil {
			rc, err := open()
			if err != nil {
				return err
			}
			io.Copy(io.Discard, rc)
			rc.Close()
		}
		return nil
	})
	return seen, warns, err
}

func TestWalkTarHostileEntries(t *testing.T) {
	data := makeTar(t,
		tarEntry{name: "../../etc/cron.d/evil", body: "* * * * * root sh"},
		tarEntry{name: "/etc/os-release", body: "ID=debian"},
		tarEntry{name: "a/../../b", body: "x"},
		tarEntry{name: "link-out", typ: tar.TypeSymlink, link: "/etc/shadow"},
		tarEntry{name: "hard-out", typ: tar.TypeLink, link: "../../etc/shadow"},
		tarEntry{name: "big", body: strings.Repeat("x", 2048)},
	)
	lim := DefaultLimits
	lim.MaxFileBytes = 1024
	seen, warns, err := walkAll(t, data, lim)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"etc/os-release", "link-out -> /etc/shadow"}
	if strings.Join(seen, "|") != strings.Join(want, "|") {
		t.Errorf("entries = %q, want %q", seen, want)
	}
	if len(warns) != 4 {
		t.Errorf("warnings = %q", warns)
	}
}

// A layer that expands far beyond its compressed size stops at the limit.
func TestLayerDecompressionBomb(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Size: 32 << 20, Mode: 0o644})
	io.CopyN(tw, zeroReader{}, 32<<20)
	tw.Close()
	zw.Close()
	var n int64
	lim := Limits{MaxFileBytes: 1 << 30, MaxTotalBytes: 1 << 40, MaxRatio: 10, MinRatioBytes: 1 << 20}
	limit := max(int64(gz.Len())*lim.MaxRatio, lim.MinRatioBytes)
	err := walkBlob(context.Background(), bytes.NewReader(gz.Bytes()), zeroHash(), limit, &n, lim, func(string) {}, func(e *Entry, open Opener) error {
		if open != nil {
			rc, _ := open()
			_, err := io.Copy(io.Discard, rc)
			return err
		}
		return nil
	})
	if !errors.Is(err, ErrLimit) {
		t.Errorf("bomb: err = %v, read %d bytes", err, n)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestHostileCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "hostile")
	if *update {
		writeCorpus(t, dir)
	}
	ctx := context.Background()
	for _, c := range []struct {
		file    string
		errPart string // the open or walk must fail with this, or
		warn    string // warn with this
	}{
		{"escape.tar", "neither a docker-archive", ""}, // a tar that is not an image is refused
		{"truncated-layer.tar", "unexpected EOF", ""},
		{"wrong-diffid.tar", "fails its diff id", ""},
		{"bomb.zip", "", "decompression bomb"},
		{"escape.zip", "", "escapes the root"},
		{"not-an-archive.tar", "", ""}, // read as a plain file: nothing in it
	} {
		t.Run(c.file, func(t *testing.T) {
			tg, err := Open(ctx, filepath.Join(dir, c.file), Options{})
			if err != nil {
				if c.errPart == "" || !strings.Contains(err.Error(), c.errPart) {
					t.Fatalf("open: %v", err)
				}
				return
			}
			defer tg.Close()
			var warns []string
			var werr error
			for _, l := range tg.Layers {
				if werr = l.Walk(ctx, func(w string) { warns = append(warns, w) }, func(e *Entry, open Opener) error {
					if open != nil {
						rc, err := open()
						if err != nil {
							return err
						}
						defer rc.Close()
						_, err = io.Copy(io.Discard, rc)
						return err
					}
					return nil
				}); werr != nil {
					break
				}
			}
			switch {
			case c.errPart != "":
				if werr == nil || !strings.Contains(werr.Error(), c.errPart) {
					t.Errorf("walk error = %v, want %q", werr, c.errPart)
				}
			case werr != nil:
				t.Errorf("walk: %v", werr)
			}
			if c.warn != "" && !strings.Contains(strings.Join(warns, "\n"), c.warn) {
				t.Errorf("warnings %q lack %q", warns, c.warn)
			}
		})
	}
}

// writeCorpus writes the hostile archives (run with -update).
func writeCorpus(t *testing.T, dir string) {
	os.MkdirAll(dir, 0o755)
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("escape.tar", makeTar(t,
		tarEntry{name: "../../../tmp/vigil-pwned", body: "pwned"},
		tarEntry{name: "/etc/passwd", body: "root::0:0::/:/bin/sh"},
	))
	write("not-an-archive.tar", []byte("this is not a tar, whatever its name says\n"))
	// A docker-archive whose only layer is cut short.
	layerTar := makeTar(t, tarEntry{name: "etc/os-release", body: "ID=debian\nVERSION_ID=12\n"}, tarEntry{name: "var/lib/dpkg/status", body: strings.Repeat("Package: x\nVersion: 1\nStatus: install ok installed\n\n", 200)})
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.NoCompression)
	zw.Write(layerTar)
	zw.Close()
	diffID := sha256Hex(layerTar)
	write("truncated-layer.tar", dockerArchive(t, gz.Bytes()[:gz.Len()/2], diffID))
	write("wrong-diffid.tar", dockerArchive(t, gz.Bytes(), strings.Repeat("ab", 32)))
	// A zip member that claims a 1000:1 expansion of 100 MiB.
	var zb bytes.Buffer
	zwr := zip.NewWriter(&zb)
	w, _ := zwr.CreateHeader(&zip.FileHeader{Name: "node_modules/x/package.json", Method: zip.Deflate})
	io.CopyN(w, zeroReader{}, 100<<20)
	w, _ = zwr.Create("../../escape.txt")
	w.Write([]byte("out"))
	zwr.Close()
	write("bomb.zip", zb.Bytes())
	var ze bytes.Buffer
	zwr = zip.NewWriter(&ze)
	w, _ = zwr.Create("../../../tmp/vigil-pwned")
	w.Write([]byte("out"))
	w, _ = zwr.Create("node_modules/ok/package.json")
	w.Write([]byte(`{"name":"ok","version":"1.0.0"}`))
	zwr.Close()
	write("escape.zip", ze.Bytes())
}

func zeroHash() v1.Hash { return v1.Hash{} }

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// dockerArchive writes what `docker save` writes for a one-layer image.
func dockerArchive(t *testing.T, layerBlob []byte, diffIDHex string) []byte {
	cfg := `{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:` + diffIDHex + `"]}}`
	cfgName := sha256Hex([]byte(cfg)) + ".json"
	manifest := `[{"Config":"` + cfgName + `","RepoTags":["hostile:latest"],"Layers":["layer.tar.gz"]}]`
	return makeTar(t,
		tarEntry{name: "manifest.json", body: manifest},
		tarEntry{name: cfgName, body: cfg},
		tarEntry{name: "layer.tar.gz", body: string(layerBlob)},
	)
}

func FuzzWalkTar(f *testing.F) {
	f.Add(makeTar(f, tarEntry{name: "a/b", body: "x"}, tarEntry{name: "a/.wh.c"}, tarEntry{name: "l", typ: tar.TypeSymlink, link: "../x"}))
	f.Add(makeTar(f, tarEntry{name: "../x", body: "y"}, tarEntry{name: "h", typ: tar.TypeLink, link: "/etc/passwd"}))
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := DefaultLimits
		lim.MaxFileBytes = 1 << 16
		seen, _, _ := walkAll(t, data, lim)
		for _, s := range seen {
			p, _, _ := strings.Cut(s, " -> ")
			if strings.HasPrefix(p, "/") || p == ".." || strings.HasPrefix(p, "../") || strings.Contains(p, "/../") {
				t.Fatalf("entry escapes the root: %q", p)
			}
		}
	})
}

func FuzzWalkZip(f *testing.F) {
	for _, name := range []string{"bomb.zip", "escape.zip"} {
		if data, err := os.ReadFile(filepath.Join("testdata", "hostile", name)); err == nil && len(data) < 1<<20 {
			f.Add(data)
		}
	}
	f.Add([]byte("PK\x03\x04 truncated"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "f.zip")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		var total int64
		lim := DefaultLimits
		lim.MaxFileBytes = 1 << 20
		_ = walkZip(context.Background(), p, "var/task", lim, &total, func(string) {}, func(e *Entry, open Opener) error {
			if !strings.HasPrefix(e.Path, "var/task/") || strings.Contains(e.Path, "..") {
				t.Fatalf("entry escapes the root: %q", e.Path)
			}
			if open != nil {
				if rc, err := open(); err == nil {
					io.Copy(io.Discard, rc)
					rc.Close()
				}
			}
			return nil
		})
	})
}

func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"a/b", "../a", "/a/../../b", `a\..\..\b`, ".", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, ok := cleanPath(s)
		if !ok {
			return
		}
		if strings.HasPrefix(p, "/") || p == ".." || strings.HasPrefix(p, "../") || strings.Contains(p, "/../") {
			t.Fatalf("cleanPath(%q) = %q escapes", s, p)
		}
	})
}
