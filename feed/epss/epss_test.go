package epss

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vigil-project/vigil/internal/testutil"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/feed"
)

type row struct {
	CVE string
	vigil.EPSS
}

func collect(t *testing.T, r io.Reader) (Header, []row, *feed.Problems, error) {
	t.Helper()
	var rows []row
	var probs feed.Problems
	hdr, err := Parse(r, &probs, func(cve string, s vigil.EPSS) error {
		rows = append(rows, row{cve, s})
		return nil
	})
	return hdr, rows, &probs, err
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func gzipped(t testing.TB, data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestParseSample(t *testing.T) {
	data := readFile(t, "sample.csv")
	wantHdr := Header{ModelVersion: "v2025.03.14", ScoreDate: "2026-08-16"}
	d := "2026-08-16"
	wantRows := []row{
		{"CVE-1999-0001", vigil.EPSS{Score: 0.03351, Percentile: 0.8765, Date: d}},
		{"CVE-2021-44228", vigil.EPSS{Score: 0.99999, Percentile: 1, Date: d}},
		{"CVE-2024-43796", vigil.EPSS{Score: 0.00123, Percentile: 0.3, Date: d}},
		{"CVE-2026-74439", vigil.EPSS{Score: 0, Percentile: 0, Date: d}},
	}
	for name, in := range map[string][]byte{"plain": data, "gzip": gzipped(t, data)} {
		hdr, rows, probs, err := collect(t, bytes.NewReader(in))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if hdr != wantHdr {
			t.Errorf("%s: header %+v, want %+v", name, hdr, wantHdr)
		}
		if !reflect.DeepEqual(rows, wantRows) {
			t.Errorf("%s: rows\n got %+v\nwant %+v", name, rows, wantRows)
		}
		if probs.Count() != 0 {
			t.Errorf("%s: problems %q", name, probs.First())
		}
	}
}

func TestParseCRLFReordered(t *testing.T) {
	hdr, rows, probs, err := collect(t, bytes.NewReader(readFile(t, "crlf_reordered.csv")))
	if err != nil {
		t.Fatal(err)
	}
	if hdr != (Header{}) {
		t.Errorf("header %+v, want none", hdr)
	}
	want := []row{
		{"CVE-2021-44228", vigil.EPSS{Score: 0.25, Percentile: 0.5}},
		{"CVE-2024-0001", vigil.EPSS{Score: 0.001, Percentile: 1}},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("rows\n got %+v\nwant %+v", rows, want)
	}
	if got := probs.First(); probs.Count() != 1 || got[0] != "epss: line 2: 1 columns, want 3" {
		t.Errorf("problems %d %q", probs.Count(), got)
	}
}

func TestParseBadRows(t *testing.T) {
	hdr, rows, probs, err := collect(t, bytes.NewReader(readFile(t, "bad_rows.csv")))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Header{ModelVersion: "v2023.03.01", ScoreDate: "2026-08-16"}); hdr != want {
		t.Errorf("header %+v, want %+v", hdr, want)
	}
	var got []string
	for _, r := range rows {
		got = append(got, r.CVE)
	}
	if want := []string{"CVE-2021-44228", "CVE-2021-0010"}; !reflect.DeepEqual(got, want) {
		t.Errorf("rows %v, want %v", got, want)
	}
	if probs.Count() != 11 {
		t.Errorf("problems = %d, want 11", probs.Count())
	}
	want := []string{
		`epss: line 4: bad CVE id "CVE-21-1"`,
		`epss: line 5: bad CVE id "cve-2021-0001"`,
		`epss: line 6 (CVE-2021-0002): bad epss "abc"`,
		`epss: line 7 (CVE-2021-0003): bad percentile "1.5"`,
		`epss: line 8 (CVE-2021-0004): bad epss "-0.1"`,
	}
	if !reflect.DeepEqual(probs.First(), want) {
		t.Errorf("problems\n got %q\nwant %q", probs.First(), want)
	}
}

func TestParseRowProblems(t *testing.T) {
	tests := []struct{ row, want string }{
		{"CVE-2021-0005,NaN,0.1", `epss: line 3 (CVE-2021-0005): bad epss "NaN"`},
		{"CVE-2021-0005,Inf,0.1", `epss: line 3 (CVE-2021-0005): bad epss "Inf"`},
		{"CVE-2021-0006,0x1p-2,0.1", `epss: line 3 (CVE-2021-0006): bad epss "0x1p-2"`},
		{"CVE-2021-0006,1_0,0.1", `epss: line 3 (CVE-2021-0006): bad epss "1_0"`},
		{"CVE-2021-0007,0.1", `epss: line 3: 2 columns, want 3`},
		{"CVE-2021-0008,0.1,0.1,0.1", `epss: line 3: 4 columns, want 3`},
		{",0.1,0.1", `epss: line 3: bad CVE id ""`},
		{"CVE-2021-0009,,0.1", `epss: line 3 (CVE-2021-0009): bad epss ""`},
		{"CVE-2021-0009,0.1,", `epss: line 3 (CVE-2021-0009): bad percentile ""`},
		{"#model_version:x,score_date:y,z", `epss: line 3: bad CVE id "#model_version:x"`},
		{"CVE-2021-0009," + strings.Repeat("1", maxLine) + ",0.1", `epss: line 3: over 65536 bytes`},
	}
	for _, tt := range tests {
		in := "#model_version:m,score_date:2026-08-16T00:00:00+0000\ncve,epss,percentile\n" + tt.row + "\nCVE-2021-0001,0.5,0.5\n"
		_, rows, probs, err := collect(t, strings.NewReader(in))
		if err != nil {
			t.Errorf("%.40s: %v", tt.row, err)
			continue
		}
		if len(rows) != 1 || rows[0].CVE != "CVE-2021-0001" {
			t.Errorf("%.40s: rows %+v", tt.row, rows)
		}
		if probs.Count() != 1 || probs.First()[0] != tt.want {
			t.Errorf("%.40s: problems %q, want %q", tt.row, probs.First(), tt.want)
		}
	}
}

func TestParseComment(t *testing.T) {
	tests := []struct {
		line  string
		want  Header
		probs int
	}{
		{"#model_version:v2025.03.14,score_date:2026-08-16T00:00:00+0000", Header{"v2025.03.14", "2026-08-16"}, 0},
		{"#score_date:2026-08-16T00:00:00Z,model_version:v2", Header{"v2", "2026-08-16"}, 0},
		{"# model_version: v3 , score_date: 2026-08-16 ", Header{"v3", "2026-08-16"}, 0},
		{"#model_version:v2,score_date:yesterday", Header{"v2", ""}, 1},
		{"#model_version:v2,score_date:2026-13-01T00:00:00Z", Header{"v2", ""}, 1},
		{"#something else entirely", Header{}, 0},
		{"\xef\xbb\xbf#model_version:v4", Header{"v4", ""}, 0},
	}
	for _, tt := range tests {
		hdr, rows, probs, err := collect(t, strings.NewReader(tt.line+"\ncve,epss,percentile\nCVE-2021-0001,0.5,0.5\n"))
		if err != nil {
			t.Errorf("%q: %v", tt.line, err)
			continue
		}
		if hdr != tt.want || probs.Count() != tt.probs {
			t.Errorf("%q: header %+v problems %q, want %+v and %d problems", tt.line, hdr, probs.First(), tt.want, tt.probs)
		}
		if len(rows) != 1 || rows[0].Date != tt.want.ScoreDate {
			t.Errorf("%q: rows %+v", tt.line, rows)
		}
	}
}

func TestParseErrors(t *testing.T) {
	sample := readFile(t, "sample.csv")
	gz := gzipped(t, sample)
	corrupt := append([]byte(nil), gz...)
	corrupt[len(corrupt)-6] ^= 0xff // CRC-32
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "wrong shape: no header row"},
		{"comment only", []byte("#model_version:x\n"), "wrong shape: no header row"},
		{"no header row", []byte("CVE-2021-44228,0.9,0.9\n"), "wrong shape: line 1 is not a header row"},
		{"missing column", []byte("#x\ncve,epss\nCVE-2021-44228,0.9\n"), "wrong shape: line 2 is not a header row"},
		{"json", []byte(`{"data": []}`), "wrong shape"},
		{"long header", []byte(strings.Repeat("x", maxLine+1) + "\n"), "wrong shape: line 1 is over"},
		{"truncated gzip", gz[:len(gz)/2], "epss: read: unexpected EOF"},
		{"truncated gzip trailer", gz[:len(gz)-4], "epss: read: unexpected EOF"},
		{"gzip magic only", []byte{0x1f, 0x8b}, "epss: gzip: unexpected EOF"},
		{"bad gzip header", []byte{0x1f, 0x8b, 0, 0, 0, 0, 0, 0, 0, 0}, "epss: gzip:"},
		{"gzip checksum", corrupt, "epss: read: gzip: invalid checksum"},
	}
	for _, tt := range tests {
		_, _, _, err := collect(t, bytes.NewReader(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want it to contain %q", tt.name, err, tt.want)
		}
	}
}

func TestParseCallbackError(t *testing.T) {
	stop := errors.New("stop")
	var n int
	_, err := Parse(bytes.NewReader(readFile(t, "sample.csv")), nil, func(string, vigil.EPSS) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if err != stop || n != 2 {
		t.Errorf("err %v after %d rows, want %v after 2", err, n, stop)
	}
}

func TestParseReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("cve,epss,percentile\nCVE-2021-0001,0.5,0.5\n"), &errReader{boom})
	if _, err := Parse(r, nil, func(string, vigil.EPSS) error { return nil }); !errors.Is(err, boom) {
		t.Errorf("error %v, want it to wrap %v", err, boom)
	}
}

type errReader struct{ err error }

func (r *errReader) Read([]byte) (int, error) { return 0, r.err }

func vulndata(t *testing.T) string { return testutil.Vulndata(t) }

func TestRealFile(t *testing.T) {
	f, err := os.Open(filepath.Join(vulndata(t), "epss", "epss_scores-2026-08-16.csv.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var probs feed.Problems
	var n int
	var log4shell vigil.EPSS
	hdr, err := Parse(f, &probs, func(cve string, s vigil.EPSS) error {
		n++
		if cve == "CVE-2021-44228" {
			log4shell = s
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if probs.Count() != 0 {
		t.Errorf("problems %d %q", probs.Count(), probs.First())
	}
	if hdr != (Header{ModelVersion: "unknown", ScoreDate: "2026-08-16"}) {
		t.Errorf("header %+v", hdr)
	}
	if n != 360142 {
		t.Errorf("%d rows, want 360142", n)
	}
	if log4shell.Score <= 0.9 || log4shell.Date != "2026-08-16" {
		t.Errorf("CVE-2021-44228: %+v", log4shell)
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"sample.csv", "bad_rows.csv", "crlf_reordered.csv"} {
		data := readFile(f, name)
		f.Add(data)
		f.Add(gzipped(f, data))
	}
	for _, s := range []string{
		"", "#", "\n\n", "cve,epss,percentile", "cve,epss,percentile,cve\nCVE-2021-0001,0.1,0.2,x",
		"#model_version:,score_date:\ncve,epss,percentile\nCVE-2021-0001,1,1\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var probs feed.Problems
		hdr, err := Parse(bytes.NewReader(data), &probs, func(cve string, s vigil.EPSS) error {
			if !cveID.MatchString(cve) {
				t.Fatalf("bad CVE id %q passed", cve)
			}
			if !(s.Score >= 0 && s.Score <= 1 && s.Percentile >= 0 && s.Percentile <= 1) {
				t.Fatalf("%s: bad scores %+v", cve, s)
			}
			return nil
		})
		if err != nil && !strings.HasPrefix(err.Error(), "epss: ") {
			t.Fatalf("error %q lacks package prefix", err)
		}
		if hdr.ScoreDate != "" && len(hdr.ScoreDate) != 10 {
			t.Fatalf("score date %q", hdr.ScoreDate)
		}
	})
}
