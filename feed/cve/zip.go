package cve

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"strings"

	"github.com/vigil-project/vigil/feed"
)

// Limits on what ReadZip reads. They are variables so that tests can lower
// them.
var (
	// maxRecordSize bounds the uncompressed size of one record member.
	maxRecordSize int64 = 8 << 20
	// maxNestedInMemory is the largest nested zip read into memory; larger
	// ones are copied to a temporary file.
	maxNestedInMemory int64 = 64 << 20
	// maxNestedSize bounds the uncompressed size of a nested zip.
	maxNestedSize int64 = 2 << 30
)

// recordName matches the base name of a record member: CVE-2024-43796.json.
var recordName = regexp.MustCompile(`^CVE-\d{4}-\d{4,}\.json$`)

// ReadZip reads the CVE records in a zip laid out as cvelistV5's bulk zips
// are: members cves/<year>/<NN>xxx/CVE-<year>-<N>.json. A member that is
// itself a zip, such as the cves.zip inside the CVE Program's release assets,
// is read the same way, one level deep. Members whose base name is not
// CVE-*.json or *.zip are ignored.
//
// ReadZip calls fn for each good record and returns how many it passed. A
// member that is too large, fails to decompress (such as a CRC error), or
// does not parse with ParseRecord is skipped and recorded in probs; so is a
// nested zip that cannot be read, and a zip nested deeper than one level. A
// zip that cannot be opened is an error. If fn returns an error, ReadZip
// stops and returns that error unchanged. probs may be nil.
func ReadZip(ra io.ReaderAt, size int64, probs *feed.Problems, fn func(Record) error) (n int, err error) {
	if probs == nil {
		probs = new(feed.Problems)
	}
	zr, err := zip.NewReader(ra, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		// ErrInsecurePath comes with a usable reader; ReadZip never
		// writes member names to disk.
		return 0, fmt.Errorf("cve: open zip: %w", err)
	}
	z := &zipReader{probs: probs, fn: fn}
	err = z.read(zr, "", 1)
	return z.n, err
}

type zipReader struct {
	probs *feed.Problems
	fn    func(Record) error
	n     int
}

// read reads the members of zr. prefix names the enclosing zip member in
// problem messages; depth is 1 for the outer zip.
func (z *zipReader) read(zr *zip.Reader, prefix string, depth int) error {
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		name := prefix + f.Name
		base := path.Base(f.Name)
		switch {
		case recordName.MatchString(base):
			data, err := readMember(f, maxRecordSize)
			if err != nil {
				z.probs.Addf("cve: %.200s: %v", name, err)
				continue
			}
			rec, err := ParseRecord(data)
			if err != nil {
				z.probs.Addf("cve: %.200s: %v", name, strings.TrimPrefix(err.Error(), "cve: "))
				continue
			}
			if err := z.fn(rec); err != nil {
				return err
			}
			z.n++
		case strings.HasSuffix(strings.ToLower(base), ".zip"):
			if depth >= 2 {
				z.probs.Addf("cve: %.200s: zip nested too deep, skipped", name)
				continue
			}
			if err := z.readNested(f, name, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// readNested reads a zip member of a zip. Only an error from fn is returned;
// problems with the nested zip are recorded.
func (z *zipReader) readNested(f *zip.File, name string, depth int) error {
	var ra io.ReaderAt
	var size int64
	if f.UncompressedSize64 <= uint64(maxNestedInMemory) {
		data, err := readMember(f, maxNestedInMemory)
		if err != nil {
			z.probs.Addf("cve: %.200s: %v", name, err)
			return nil
		}
		ra, size = bytes.NewReader(data), int64(len(data))
	} else {
		tmp, n, err := spill(f, maxNestedSize)
		if err != nil {
			z.probs.Addf("cve: %.200s: %v", name, err)
			return nil
		}
		defer func() {
			tmp.Close()
			os.Remove(tmp.Name())
		}()
		ra, size = tmp, n
	}
	zr, err := zip.NewReader(ra, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		z.probs.Addf("cve: %.200s: open nested zip: %v", name, err)
		return nil
	}
	return z.read(zr, name+"!", depth)
}

// readMember reads a member of at most max bytes uncompressed.
func readMember(f *zip.File, max int64) ([]byte, error) {
	if f.UncompressedSize64 > uint64(max) {
		return nil, fmt.Errorf("%d bytes uncompressed, over the limit of %d", f.UncompressedSize64, max)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	// The declared size may lie; archive/zip checks it, but bound the read
	// regardless.
	data, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("over the limit of %d bytes uncompressed", max)
	}
	return data, nil
}

// spill copies a member of at most max bytes uncompressed to a temporary
// file, which the caller closes and removes.
func spill(f *zip.File, max int64) (*os.File, int64, error) {
	if f.UncompressedSize64 > uint64(max) {
		return nil, 0, fmt.Errorf("%d bytes uncompressed, over the limit of %d", f.UncompressedSize64, max)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, 0, err
	}
	defer rc.Close()
	tmp, err := os.CreateTemp("", "vigil-cve-*.zip")
	if err != nil {
		return nil, 0, err
	}
	n, err := io.Copy(tmp, io.LimitReader(rc, max+1))
	if err == nil && n > max {
		err = fmt.Errorf("over the limit of %d bytes uncompressed", max)
	}
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, 0, err
	}
	return tmp, n, nil
}
