// Package epss parses FIRST's Exploit Prediction Scoring System CSV
// (epss_scores-YYYY-MM-DD.csv, plain or gzipped).
//
// The layout is an optional comment line
//
//	#model_version:v2025.03.14,score_date:2026-08-16T00:00:00+0000
//
// then a header row naming the columns cve, epss and percentile, then one row
// per CVE. The file is untrusted input: Parse skips rows it cannot use and
// counts them in a *feed.Problems, and fails only when the file as a whole is
// unusable.
package epss

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/feed"
)

// Header is what the file's comment line says about the scores.
type Header struct {
	ModelVersion string
	// ScoreDate is the date part (YYYY-MM-DD) of the score_date.
	ScoreDate string
}

// maxLine bounds a line: longer lines are skipped (and counted) without
// being held in memory.
const maxLine = 64 << 10

var cveID = regexp.MustCompile(`^CVE-\d{4}-\d{4,}$`)

// Parse reads an EPSS CSV file, plain or gzipped (gzip is detected by its
// magic number), and calls fn for each good row in file order, with
// EPSS.Date set to the header's score date. It holds one row at a time.
//
// A file without the cve,epss,percentile header row, a truncated or corrupt
// gzip stream and a read error are errors. A row with a bad CVE id, a score
// or percentile that is not a number in [0, 1], or the wrong number of
// columns is skipped and recorded in probs; so is a bad score_date in the
// comment line. If fn returns an error, Parse stops and returns that error
// unchanged. probs may be nil.
func Parse(r io.Reader, probs *feed.Problems, fn func(cve string, s vigil.EPSS) error) (Header, error) {
	if probs == nil {
		probs = new(feed.Problems)
	}
	var hdr Header
	br := bufio.NewReaderSize(r, maxLine)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return hdr, fmt.Errorf("epss: gzip: %w", noEOF(err))
		}
		defer zr.Close()
		br = bufio.NewReaderSize(zr, maxLine)
	}
	lr := &lineReader{br: br}

	// Comment lines and the header row.
	var cols map[string]int
	var ncols int
	for cols == nil {
		line, err := lr.next()
		if err == io.EOF {
			return hdr, errors.New("epss: wrong shape: no header row (cve,epss,percentile)")
		}
		if err != nil {
			return hdr, fmt.Errorf("epss: read: %w", err)
		}
		if lr.n == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // UTF-8 BOM
		}
		switch {
		case lr.long:
			return hdr, fmt.Errorf("epss: wrong shape: line %d is over %d bytes", lr.n, maxLine)
		case len(bytes.TrimSpace(line)) == 0:
			continue
		case line[0] == '#':
			parseComment(string(line[1:]), lr.n, &hdr, probs)
			continue
		}
		names := strings.Split(string(line), ",")
		cols = map[string]int{}
		for i, name := range names {
			name = strings.ToLower(strings.TrimSpace(name))
			if _, dup := cols[name]; !dup {
				cols[name] = i
			}
		}
		for _, want := range []string{"cve", "epss", "percentile"} {
			if _, ok := cols[want]; !ok {
				return hdr, fmt.Errorf("epss: wrong shape: line %d is not a header row with columns cve,epss,percentile: %.100q", lr.n, line)
			}
		}
		ncols = len(names)
	}
	ci, si, pi := cols["cve"], cols["epss"], cols["percentile"]

	fields := make([]string, 0, ncols)
	for {
		line, err := lr.next()
		if err == io.EOF {
			return hdr, nil
		}
		if err != nil {
			return hdr, fmt.Errorf("epss: read: %w", err)
		}
		if lr.long {
			probs.Addf("epss: line %d: over %d bytes", lr.n, maxLine)
			continue
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		fields = splitComma(fields[:0], string(line))
		if len(fields) != ncols {
			probs.Addf("epss: line %d: %d columns, want %d", lr.n, len(fields), ncols)
			continue
		}
		cve := strings.TrimSpace(fields[ci])
		if !cveID.MatchString(cve) {
			probs.Addf("epss: line %d: bad CVE id %.100q", lr.n, cve)
			continue
		}
		score, ok := prob(fields[si])
		if !ok {
			probs.Addf("epss: line %d (%s): bad epss %.100q", lr.n, cve, fields[si])
			continue
		}
		pct, ok := prob(fields[pi])
		if !ok {
			probs.Addf("epss: line %d (%s): bad percentile %.100q", lr.n, cve, fields[pi])
			continue
		}
		if err := fn(cve, vigil.EPSS{Score: score, Percentile: pct, Date: hdr.ScoreDate}); err != nil {
			return hdr, err
		}
	}
}

// parseComment reads the key:value pairs of a comment line (without its
// '#'), such as "model_version:v2025.03.14,score_date:2026-08-16T00:00:00+0000".
func parseComment(s string, lineno int, hdr *Header, probs *feed.Problems) {
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, ":")
		v = strings.TrimSpace(v)
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "model_version":
			hdr.ModelVersion = v
		case "score_date":
			// The date part of a timestamp, or a bare date.
			d := v
			if len(d) > len("2006-01-02") && (d[10] == 'T' || d[10] == ' ') {
				d = d[:10]
			}
			if _, err := time.Parse("2006-01-02", d); err != nil || len(d) != 10 {
				probs.Addf("epss: line %d: bad score_date %.100q", lineno, v)
				continue
			}
			hdr.ScoreDate = d
		}
	}
}

// prob parses a probability: a finite number in [0, 1].
func prob(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	// Plain decimal notation only: ParseFloat would also take hex floats,
	// underscores, "Inf" and "NaN".
	if s == "" || strings.TrimLeft(s, "0123456789.eE+-") != "" {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1 {
		return 0, false
	}
	return f, true
}

// splitComma appends the comma-separated fields of s to dst. EPSS files do
// not quote fields.
func splitComma(dst []string, s string) []string {
	for {
		i := strings.IndexByte(s, ',')
		if i < 0 {
			return append(dst, s)
		}
		dst = append(dst, s[:i])
		s = s[i+1:]
	}
}

// lineReader reads lines of at most maxLine bytes, without their line ending.
type lineReader struct {
	br   *bufio.Reader
	n    int  // number of the line last returned, from 1
	long bool // whether that line was over maxLine bytes (its text is dropped)
}

// next returns the next line; the slice is valid until the next call. At the
// end of the input it returns io.EOF; a last line without a newline is
// returned first.
func (lr *lineReader) next() ([]byte, error) {
	line, err := lr.br.ReadSlice('\n')
	lr.long = false
	if err == bufio.ErrBufferFull {
		lr.long = true
		for err == bufio.ErrBufferFull {
			_, err = lr.br.ReadSlice('\n')
		}
		line = nil
	}
	if err != nil && err != io.EOF {
		return nil, noEOF(err)
	}
	if err == io.EOF && len(line) == 0 && !lr.long {
		return nil, io.EOF
	}
	lr.n++
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	return line, nil
}

// noEOF turns io.EOF into io.ErrUnexpectedEOF; it is for reads that must not
// hit the end of the input, such as a gzip header.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
