package cve

import (
	"archive/zip"
	"bytes"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vigil-project/vigil/internal/testutil"

	"github.com/vigil-project/vigil/feed"
)

// member is a zip member for makeZip.
type member struct {
	name string
	data []byte
	// badCRC stores the member with a wrong CRC-32.
	badCRC bool
}

func makeZip(t testing.TB, members ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range members {
		if m.badCRC {
			w, err := zw.CreateRaw(&zip.FileHeader{
				Name:               m.name,
				Method:             zip.Store,
				CRC32:              crc32.ChecksumIEEE(m.data) ^ 1,
				CompressedSize64:   uint64(len(m.data)),
				UncompressedSize64: uint64(len(m.data)),
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(m.data); err != nil {
				t.Fatal(err)
			}
			continue
		}
		w, err := zw.Create(m.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readZipBytes(t *testing.T, data []byte) ([]string, *feed.Problems, error) {
	t.Helper()
	var ids []string
	var probs feed.Problems
	n, err := ReadZip(bytes.NewReader(data), int64(len(data)), &probs, func(r Record) error {
		ids = append(ids, r.ID)
		return nil
	})
	if n != len(ids) {
		t.Errorf("ReadZip returned n = %d, but called fn %d times", n, len(ids))
	}
	return ids, &probs, err
}

// setLimit sets a package limit for the duration of a test.
func setLimit(t *testing.T, p *int64, v int64) {
	old := *p
	*p = v
	t.Cleanup(func() { *p = old })
}

func TestReadZip(t *testing.T) {
	data := makeZip(t,
		member{name: "cves/"},
		member{name: "cves/2099/0xxx/"},
		member{name: "cves/2099/0xxx/CVE-2099-0001.json", data: readFile(t, "CVE-2099-0001.json")},
		member{name: "cves/2099/0xxx/CVE-2099-0002.json", data: readFile(t, "CVE-2099-0002.json")},
		member{name: "cves/2099/0xxx/CVE-2099-0003.json", data: readFile(t, "CVE-2099-0003.json")},
		member{name: "cves/delta.json", data: []byte(`{"new": []}`)},
		member{name: "cves/deltaLog.json", data: []byte(`[]`)},
		member{name: "README.md", data: []byte("# cvelistV5\n")},
		member{name: "cves/2099/0xxx/CVE-2099-0009.txt", data: []byte("not a record")},
		member{name: "cves/2099/0xxx/CVE-2099-0006.json", data: []byte(`{"dataType": "CVE_RECORD", `)},
		member{name: "cves/2099/0xxx/CVE-2099-0007.json", data: readFile(t, "CVE-2099-0002.json"), badCRC: true},
		member{name: "cves/2099/0xxx/CVE-2099-0008.json", data: readFile(t, "not-a-record.json")},
	)
	ids, probs, err := readZipBytes(t, data)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"CVE-2099-0001", "CVE-2099-0002", "CVE-2099-0003"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("records %v, want %v", ids, want)
	}
	want := []string{
		`cve: cves/2099/0xxx/CVE-2099-0006.json: decode: unexpected end of JSON input`,
		`cve: cves/2099/0xxx/CVE-2099-0007.json: zip: checksum error`,
		`cve: cves/2099/0xxx/CVE-2099-0008.json: not a CVE record: dataType "CVE_RECORD_LIST"`,
	}
	if probs.Count() != len(want) || !reflect.DeepEqual(probs.First(), want) {
		t.Errorf("problems %d\n got %q\nwant %q", probs.Count(), probs.First(), want)
	}
}

func TestReadZipTooLarge(t *testing.T) {
	small := []byte(`{"dataType": "CVE_RECORD", "cveMetadata": {"cveId": "CVE-2099-0010"}}`)
	setLimit(t, &maxRecordSize, int64(len(small)))
	data := makeZip(t,
		member{name: "cves/2099/0xxx/CVE-2099-0001.json", data: readFile(t, "CVE-2099-0001.json")},
		member{name: "cves/2099/0xxx/CVE-2099-0010.json", data: small},
	)
	ids, probs, err := readZipBytes(t, data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ids, []string{"CVE-2099-0010"}) {
		t.Errorf("records %v", ids)
	}
	if probs.Count() != 1 || !strings.Contains(probs.First()[0], "CVE-2099-0001.json: ") || !strings.Contains(probs.First()[0], "over the limit") {
		t.Errorf("problems %q", probs.First())
	}
}

// nestedZip is an outer zip holding a record and cves.zip, as the CVE
// Program's release assets do; cves.zip holds two records and a zip nested
// one level too deep.
func nestedZip(t *testing.T) []byte {
	deeper := makeZip(t, member{name: "cves/2099/0xxx/CVE-2099-0003.json", data: readFile(t, "CVE-2099-0003.json")})
	inner := makeZip(t,
		member{name: "cves/2099/0xxx/CVE-2099-0001.json", data: readFile(t, "CVE-2099-0001.json")},
		member{name: "cves/2099/0xxx/CVE-2099-0002.json", data: readFile(t, "CVE-2099-0002.json")},
		member{name: "deeper.zip", data: deeper},
	)
	return makeZip(t,
		member{name: "cves.zip", data: inner},
		member{name: "CVE-2099-0003.json", data: readFile(t, "CVE-2099-0003.json")},
	)
}

func TestReadZipNested(t *testing.T) {
	path := filepath.Join(t.TempDir(), "2099-01-01_all_CVEs_at_midnight.zip.zip")
	if err := os.WriteFile(path, nestedZip(t), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, spill := range []bool{false, true} {
		if spill {
			// Force the nested zip through a temporary file.
			setLimit(t, &maxNestedInMemory, 16)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		var probs feed.Problems
		n, err := ReadZip(f, fi.Size(), &probs, func(r Record) error {
			ids = append(ids, r.ID)
			return nil
		})
		f.Close()
		if err != nil {
			t.Fatalf("spill=%v: %v", spill, err)
		}
		if want := []string{"CVE-2099-0001", "CVE-2099-0002", "CVE-2099-0003"}; n != 3 || !reflect.DeepEqual(ids, want) {
			t.Errorf("spill=%v: n=%d records %v, want %v", spill, n, ids, want)
		}
		if want := []string{"cve: cves.zip!deeper.zip: zip nested too deep, skipped"}; probs.Count() != 1 || !reflect.DeepEqual(probs.First(), want) {
			t.Errorf("spill=%v: problems %q, want %q", spill, probs.First(), want)
		}
	}
}

func TestReadZipNestedLimits(t *testing.T) {
	data := nestedZip(t)
	setLimit(t, &maxNestedInMemory, 16)
	setLimit(t, &maxNestedSize, 100)
	ids, probs, err := readZipBytes(t, data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ids, []string{"CVE-2099-0003"}) {
		t.Errorf("records %v", ids)
	}
	if probs.Count() != 1 || !strings.HasPrefix(probs.First()[0], "cve: cves.zip: ") || !strings.Contains(probs.First()[0], "over the limit") {
		t.Errorf("problems %q", probs.First())
	}
}

func TestReadZipBrokenNested(t *testing.T) {
	inner := makeZip(t, member{name: "cves/2099/0xxx/CVE-2099-0001.json", data: readFile(t, "CVE-2099-0001.json")})
	data := makeZip(t,
		member{name: "cves.zip", data: []byte("this is not a zip")},
		member{name: "crc.zip", data: inner, badCRC: true},
		member{name: "truncated.ZIP", data: inner[:len(inner)-10]},
	)
	ids, probs, err := readZipBytes(t, data)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 0 {
		t.Errorf("records %v", ids)
	}
	want := []string{
		"cve: cves.zip: open nested zip: zip: not a valid zip file",
		"cve: crc.zip: zip: checksum error",
		"cve: truncated.ZIP: open nested zip: zip: not a valid zip file",
	}
	if !reflect.DeepEqual(probs.First(), want) {
		t.Errorf("problems\n got %q\nwant %q", probs.First(), want)
	}
}

func TestReadZipCallbackError(t *testing.T) {
	stop := errors.New("stop")
	data := nestedZip(t)
	var calls int
	n, err := ReadZip(bytes.NewReader(data), int64(len(data)), nil, func(Record) error {
		calls++
		if calls == 2 {
			return stop
		}
		return nil
	})
	if err != stop || n != 1 || calls != 2 {
		t.Errorf("n=%d err=%v calls=%d, want 1, %v, 2", n, err, calls, stop)
	}
}

func TestReadZipErrors(t *testing.T) {
	for name, data := range map[string][]byte{
		"empty":     nil,
		"not a zip": []byte("hello, world"),
		"json":      readFile(t, "CVE-2099-0001.json"),
		"truncated": nestedZip(t)[:100],
	} {
		n, err := ReadZip(bytes.NewReader(data), int64(len(data)), nil, func(Record) error { return nil })
		if err == nil || n != 0 || !strings.HasPrefix(err.Error(), "cve: open zip: ") {
			t.Errorf("%s: n=%d err=%v, want an open zip error", name, n, err)
		}
	}
}

func vulndata(t *testing.T) string { return testutil.Vulndata(t) }

func TestRealZip(t *testing.T) {
	f, err := os.Open(filepath.Join(vulndata(t), "cve", "cvelistV5.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	var probs feed.Problems
	recs := map[string]Record{}
	n, err := ReadZip(f, fi.Size(), &probs, func(r Record) error {
		recs[r.ID] = r
		if len(r.Warnings) > 0 {
			t.Errorf("%s: warnings %q", r.ID, r.Warnings)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 7 || len(recs) != 7 || probs.Count() != 0 {
		t.Errorf("n=%d, %d distinct records, problems %q", n, len(recs), probs.First())
	}
	r, ok := recs["CVE-2024-43796"]
	if !ok {
		t.Fatal("CVE-2024-43796 missing")
	}
	if r.State != "PUBLISHED" || r.Assigner != "GitHub_M" || r.Title != "express vulnerable to XSS via response.redirect()" ||
		!strings.HasPrefix(r.Description, "Express.js minimalist web framework") || r.DateUpdated.IsZero() || r.DatePublished.IsZero() {
		t.Errorf("CVE-2024-43796: %+v", r)
	}
	if !reflect.DeepEqual(r.CWEs, []string{"CWE-79"}) {
		t.Errorf("CVE-2024-43796 CWEs %q", r.CWEs)
	}
	var found bool
	for _, c := range r.CVSS {
		if c.Vector == "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:L/A:L" {
			found = true
			if c.Version != "3.1" || c.BaseScore != 5.0 || c.Severity != "MEDIUM" || c.Source != "cve:GitHub_M" {
				t.Errorf("CVE-2024-43796 CVSS %+v", c)
			}
		}
	}
	if !found {
		t.Errorf("CVE-2024-43796: CVSS 3.1 vector missing: %+v", r.CVSS)
	}
	// CVE-2022-24999 has dates without a time zone.
	if r := recs["CVE-2022-24999"]; r.DateUpdated.IsZero() || r.Assigner != "mitre" {
		t.Errorf("CVE-2022-24999: %+v", r)
	}
}

func FuzzReadZip(f *testing.F) {
	rec := readFile(f, "CVE-2099-0002.json")
	f.Add(makeZip(f, member{name: "cves/2099/0xxx/CVE-2099-0002.json", data: rec}))
	f.Add(makeZip(f, member{name: "cves.zip", data: makeZip(f, member{name: "CVE-2099-0002.json", data: rec})}))
	f.Add(makeZip(f, member{name: "CVE-2099-0002.json", data: rec, badCRC: true}))
	f.Add([]byte("PK\x05\x06" + strings.Repeat("\x00", 18)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var probs feed.Problems
		calls := 0
		n, err := ReadZip(bytes.NewReader(data), int64(len(data)), &probs, func(r Record) error {
			calls++
			if !cveIDRe.MatchString(r.ID) {
				t.Fatalf("bad id %q", r.ID)
			}
			return nil
		})
		if n != calls || (err != nil && n != 0) {
			t.Fatalf("n=%d calls=%d err=%v", n, calls, err)
		}
	})
}
