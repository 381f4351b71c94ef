package testutil

import (
	"archive/zip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FixtureMirror lays out the fixture records of src (a directory holding
// osv/<Ecosystem>/*.json, cve/*.json, kev/ and epss/) as a feed mirror in a
// new temporary directory: each ecosystem's records zipped into
// osv/<Ecosystem>/all.zip as osv.dev exports them, and the CVE records into
// cve/cvelistV5.zip in cvelistV5's layout.
func FixtureMirror(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	ecos, err := os.ReadDir(filepath.Join(src, "osv"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ecos {
		files, _ := filepath.Glob(filepath.Join(src, "osv", e.Name(), "*.json"))
		WriteZip(t, filepath.Join(dst, "osv", e.Name(), "all.zip"), files, func(f string) string { return filepath.Base(f) })
	}
	cves, _ := filepath.Glob(filepath.Join(src, "cve", "*.json"))
	WriteZip(t, filepath.Join(dst, "cve", "cvelistV5.zip"), cves, func(f string) string {
		id := strings.TrimSuffix(filepath.Base(f), ".json") // CVE-2022-0778
		parts := strings.Split(id, "-")
		return "cves/" + parts[1] + "/" + parts[2][:len(parts[2])-3] + "xxx/" + id + ".json"
	})
	for _, rel := range []string{"kev/known_exploited_vulnerabilities.json", "epss/epss_scores-2026-08-16.csv.gz"} {
		CopyFile(t, filepath.Join(src, rel), filepath.Join(dst, rel))
	}
	return dst
}

// WriteZip writes files into a zip at path, each under name(file).
func WriteZip(t testing.TB, path string, files []string, name func(string) string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	zw := zip.NewWriter(out)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		w, err := zw.Create(name(f))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}

// CopyFile copies a file, creating the target's directory.
func CopyFile(t testing.TB, from, to string) {
	t.Helper()
	// Streamed: a benchmark's store is gigabytes, and a copy held in
	// memory would take the page cache from the store being measured.
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
