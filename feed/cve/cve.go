// Package cve reads CVE JSON 5 records (the CVE Program's record format) and
// the cvelistV5 bulk zips that carry them.
//
// Records are untrusted input. CVSS scores are always computed from the
// records' vectors with package score; the baseScore a record states is
// ignored.
package cve

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/score"
)

// Record is what Vigil uses of a CVE record.
type Record struct {
	ID string
	// State is the record's state: PUBLISHED or REJECTED.
	State string
	Title string
	// Description is the CNA's English description; for a rejected record
	// without one, its English rejection reason.
	Description string
	// Assigner is the short name of the CNA that assigned the id.
	Assigner      string
	DateUpdated   time.Time
	DatePublished time.Time
	// CVSS holds the CNA's and the ADPs' CVSS vectors, scored from the
	// vectors, with Source "cve:<CNA short name>" or "cve-adp:<ADP short
	// name>".
	CVSS []vigil.CVSS
	// CWEs are the CWE ids of the CNA's and the ADPs' problem types,
	// deduplicated and sorted.
	CWEs []string
	// Warnings describe problems with the record: parts that were dropped,
	// such as a CVSS vector that does not parse or a bad date, and oddities,
	// such as a cvssV3_1 metric holding a CVSS 3.0 vector.
	Warnings []string
}

var (
	cveIDRe = regexp.MustCompile(`^CVE-\d{4}-\d{4,}$`)
	cweIDRe = regexp.MustCompile(`^CWE-\d+$`)
)

type rawRecord struct {
	DataType    string `json:"dataType"`
	CVEMetadata struct {
		CVEID             string `json:"cveId"`
		State             string `json:"state"`
		AssignerShortName string `json:"assignerShortName"`
		DateUpdated       string `json:"dateUpdated"`
		DatePublished     string `json:"datePublished"`
	} `json:"cveMetadata"`
	Containers struct {
		CNA container   `json:"cna"`
		ADP []container `json:"adp"`
	} `json:"containers"`
}

type container struct {
	ProviderMetadata struct {
		ShortName string `json:"shortName"`
	} `json:"providerMetadata"`
	Title           string                       `json:"title"`
	Descriptions    []langValue                  `json:"descriptions"`
	RejectedReasons []langValue                  `json:"rejectedReasons"`
	Metrics         []map[string]json.RawMessage `json:"metrics"`
	ProblemTypes    []struct {
		Descriptions []struct {
			CWEID string `json:"cweId"`
		} `json:"descriptions"`
	} `json:"problemTypes"`
}

type langValue struct {
	Lang  string `json:"lang"`
	Value string `json:"value"`
}

// metricKeys are the metric keys that hold CVSS, in the order a metric
// object's CVSS entries are taken.
var metricKeys = []string{"cvssV4_0", "cvssV3_1", "cvssV3_0", "cvssV2_0"}

// ParseRecord parses one CVE JSON 5 record. It fails if data is not JSON of
// the record's shape, or not a CVE record (dataType other than CVE_RECORD, a
// missing or malformed cveId). Rejected records are parsed like published
// ones. Parts of a record that cannot be used, such as a CVSS vector that
// does not parse, are dropped and described in Record.Warnings.
func ParseRecord(data []byte) (Record, error) {
	var raw rawRecord
	if err := json.Unmarshal(data, &raw); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			if te.Field == "" {
				return Record{}, fmt.Errorf("cve: record is a JSON %s, want an object", te.Value)
			}
			return Record{}, fmt.Errorf("cve: field %s is a JSON %s", te.Field, te.Value)
		}
		return Record{}, fmt.Errorf("cve: decode: %w", err)
	}
	if raw.DataType != "CVE_RECORD" {
		return Record{}, fmt.Errorf("cve: not a CVE record: dataType %.50q", raw.DataType)
	}
	md := raw.CVEMetadata
	if !cveIDRe.MatchString(md.CVEID) {
		return Record{}, fmt.Errorf("cve: bad cveId %.50q", md.CVEID)
	}
	cna := raw.Containers.CNA
	rec := Record{
		ID:       md.CVEID,
		State:    md.State,
		Title:    cna.Title,
		Assigner: md.AssignerShortName,
	}
	rec.DateUpdated = rec.parseTime("dateUpdated", md.DateUpdated)
	rec.DatePublished = rec.parseTime("datePublished", md.DatePublished)

	rec.Description = english(cna.Descriptions)
	if rec.Description == "" {
		rec.Description = english(cna.RejectedReasons)
	}

	cnaName := cna.ProviderMetadata.ShortName
	if cnaName == "" {
		cnaName = md.AssignerShortName
	}
	rec.addMetrics("cna", source("cve", cnaName), cna.Metrics)
	cwes := rec.cwes(nil, "cna", cna)
	for i, adp := range raw.Containers.ADP {
		where := fmt.Sprintf("adp[%d]", i)
		rec.addMetrics(where, source("cve-adp", adp.ProviderMetadata.ShortName), adp.Metrics)
		cwes = rec.cwes(cwes, where, adp)
	}
	slices.Sort(cwes)
	rec.CWEs = slices.Compact(cwes)
	return rec, nil
}

func source(prefix, name string) string {
	if name == "" {
		return prefix
	}
	return prefix + ":" + name
}

// english returns the first description in English: lang "en", else a
// regional variant such as "en-US".
func english(ds []langValue) string {
	for _, d := range ds {
		if strings.EqualFold(strings.TrimSpace(d.Lang), "en") && d.Value != "" {
			return d.Value
		}
	}
	for _, d := range ds {
		l := strings.ToLower(strings.TrimSpace(d.Lang))
		if (strings.HasPrefix(l, "en-") || strings.HasPrefix(l, "en_")) && d.Value != "" {
			return d.Value
		}
	}
	return ""
}

func (rec *Record) warnf(format string, args ...any) {
	rec.Warnings = append(rec.Warnings, fmt.Sprintf(format, args...))
}

// parseTime parses a record timestamp. CVE JSON 5 timestamps are ISO 8601;
// older records omit the time zone, which means UTC.
func (rec *Record) parseTime(field, s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	rec.warnf("bad %s %.50q", field, s)
	return time.Time{}
}

// addMetrics scores the CVSS vectors of one container's metrics.
func (rec *Record) addMetrics(where, src string, metrics []map[string]json.RawMessage) {
	for i, m := range metrics {
		for _, key := range metricKeys {
			raw, ok := m[key]
			if !ok {
				continue
			}
			var v struct {
				VectorString string `json:"vectorString"`
			}
			if err := json.Unmarshal(raw, &v); err != nil || v.VectorString == "" {
				rec.warnf("%s metrics[%d] %s: no vectorString", where, i, key)
				continue
			}
			c, err := score.Parse("", v.VectorString)
			if err != nil {
				rec.warnf("%s metrics[%d] %s: %v", where, i, key, err)
				continue
			}
			if want := key[len("cvssV"):]; strings.ReplaceAll(c.Version, ".", "_") != want {
				// The vector says which version it is: keep it, scored as
				// that version.
				rec.warnf("%s metrics[%d] %s: vector %.100q is CVSS %s (kept)", where, i, key, c.Vector, c.Version)
			}
			c.Source = src
			rec.CVSS = append(rec.CVSS, c)
		}
	}
}

// cwes appends the CWE ids of a container's problem types to dst.
func (rec *Record) cwes(dst []string, where string, c container) []string {
	for _, pt := range c.ProblemTypes {
		for _, d := range pt.Descriptions {
			id := strings.TrimSpace(d.CWEID)
			switch {
			case id == "":
			case cweIDRe.MatchString(id):
				dst = append(dst, id)
			default:
				rec.warnf("%s problemTypes: bad cweId %.50q", where, id)
			}
		}
	}
	return dst
}
