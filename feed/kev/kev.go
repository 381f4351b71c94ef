// Package kev parses CISA's Known Exploited Vulnerabilities catalog
// (known_exploited_vulnerabilities.json).
//
// The catalog is untrusted input: Parse skips entries it cannot use and
// counts them in a *feed.Problems, and fails only when the file as a whole is
// unusable.
package kev

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/feed"
)

// Catalog is a parsed KEV catalog.
type Catalog struct {
	// Version is the catalog's catalogVersion, such as "2025.08.25".
	Version string
	// Released is the catalog's dateReleased; zero if absent or bad.
	Released time.Time
	// Entries are the good entries, in file order, one per CVE.
	Entries []vigil.KEV
}

var cveID = regexp.MustCompile(`^CVE-\d{4}-\d{4,}$`)

// entry is one element of the catalog's "vulnerabilities" array.
type entry struct {
	CVEID                      string   `json:"cveID"`
	VendorProject              string   `json:"vendorProject"`
	Product                    string   `json:"product"`
	VulnerabilityName          string   `json:"vulnerabilityName"`
	ShortDescription           string   `json:"shortDescription"`
	DateAdded                  string   `json:"dateAdded"`
	RequiredAction             string   `json:"requiredAction"`
	DueDate                    string   `json:"dueDate"`
	KnownRansomwareCampaignUse string   `json:"knownRansomwareCampaignUse"`
	Notes                      string   `json:"notes"`
	CWEs                       []string `json:"cwes"`
}

// Parse reads a KEV catalog. The top level must be a JSON object with a
// "vulnerabilities" array; anything else is an error. Entries are decoded one
// at a time: an entry that is not an object of the expected field types, has
// a bad cveID, a dateAdded or dueDate that is not a YYYY-MM-DD date, or
// repeats an earlier entry's cveID is skipped and recorded in probs (the
// first entry of a CVE wins). A syntax error anywhere in the JSON is an
// error. probs may be nil.
func Parse(r io.Reader, probs *feed.Problems) (*Catalog, error) {
	if probs == nil {
		probs = new(feed.Problems)
	}
	dec := json.NewDecoder(r)
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("kev: decode: %w", noEOF(err))
	}
	if tok != json.Delim('{') {
		return nil, fmt.Errorf("kev: wrong shape: top level is %s, want an object", describe(tok))
	}
	cat := &Catalog{}
	sawVulns := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("kev: decode: %w", noEOF(err))
		}
		key, _ := tok.(string) // object keys are always strings
		switch key {
		case "catalogVersion":
			var v any
			if err := dec.Decode(&v); err != nil {
				return nil, fmt.Errorf("kev: decode catalogVersion: %w", noEOF(err))
			}
			if s, ok := v.(string); ok {
				cat.Version = s
			} else {
				probs.Addf("kev: catalogVersion is %s, want a string", describe(v))
			}
		case "dateReleased":
			var v any
			if err := dec.Decode(&v); err != nil {
				return nil, fmt.Errorf("kev: decode dateReleased: %w", noEOF(err))
			}
			s, _ := v.(string)
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				probs.Addf("kev: bad dateReleased %.100q", fmt.Sprint(v))
			} else {
				cat.Released = t
			}
		case "vulnerabilities":
			tok, err := dec.Token()
			if err != nil {
				return nil, fmt.Errorf("kev: decode vulnerabilities: %w", noEOF(err))
			}
			if tok != json.Delim('[') {
				return nil, fmt.Errorf("kev: wrong shape: vulnerabilities is %s, want an array", describe(tok))
			}
			sawVulns = true
			if err := parseEntries(dec, cat, probs); err != nil {
				return nil, err
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, fmt.Errorf("kev: decode %.50q: %w", key, noEOF(err))
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, fmt.Errorf("kev: decode: %w", noEOF(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			err = errors.New("data after the catalog object")
		}
		return nil, fmt.Errorf("kev: decode: %w", err)
	}
	if !sawVulns {
		return nil, errors.New(`kev: wrong shape: no "vulnerabilities" array`)
	}
	return cat, nil
}

// parseEntries reads the elements of the vulnerabilities array, after its
// opening '[', through its closing ']'.
func parseEntries(dec *json.Decoder, cat *Catalog, probs *feed.Problems) error {
	seen := make(map[string]bool, len(cat.Entries))
	for _, e := range cat.Entries {
		seen[e.CVE] = true
	}
	for i := 0; dec.More(); i++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("kev: decode entry %d: %w", i, noEOF(err))
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 || raw[0] != '{' {
			probs.Addf("kev: entry %d: %s, want an object", i, describeRaw(raw))
			continue
		}
		var e entry
		if err := json.Unmarshal(raw, &e); err != nil {
			// A type error still fills the fields it can, so cveID may
			// name the entry.
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				err = fmt.Errorf("field %s is a JSON %s", te.Field, te.Value)
			}
			probs.Addf("kev: entry %d (%s): %v", i, name(e.CVEID), err)
			continue
		}
		if !cveID.MatchString(e.CVEID) {
			probs.Addf("kev: entry %d: bad cveID %.100q", i, e.CVEID)
			continue
		}
		if !isDate(e.DateAdded) {
			probs.Addf("kev: entry %d (%s): bad dateAdded %.100q", i, e.CVEID, e.DateAdded)
			continue
		}
		if e.DueDate != "" && !isDate(e.DueDate) {
			probs.Addf("kev: entry %d (%s): bad dueDate %.100q", i, e.CVEID, e.DueDate)
			continue
		}
		if seen[e.CVEID] {
			probs.Addf("kev: entry %d (%s): duplicate cveID, keeping the first", i, e.CVEID)
			continue
		}
		seen[e.CVEID] = true
		var cwes []string
		if len(e.CWEs) > 0 {
			cwes = e.CWEs
		}
		cat.Entries = append(cat.Entries, vigil.KEV{
			CVE:             e.CVEID,
			VendorProject:   e.VendorProject,
			Product:         e.Product,
			Name:            e.VulnerabilityName,
			Description:     e.ShortDescription,
			DateAdded:       e.DateAdded,
			DueDate:         e.DueDate,
			KnownRansomware: strings.EqualFold(strings.TrimSpace(e.KnownRansomwareCampaignUse), "Known"),
			RequiredAction:  e.RequiredAction,
			Notes:           e.Notes,
			CWEs:            cwes,
		})
	}
	if _, err := dec.Token(); err != nil { // the closing ']'
		return fmt.Errorf("kev: decode vulnerabilities: %w", noEOF(err))
	}
	return nil
}

// isDate reports whether s is a calendar date written YYYY-MM-DD.
func isDate(s string) bool {
	if len(s) != len("2006-01-02") {
		return false
	}
	_, err := time.Parse("2006-01-02", s)
	return err == nil
}

func name(id string) string {
	if id == "" {
		return "no cveID"
	}
	return fmt.Sprintf("%.100s", id)
}

// noEOF turns io.EOF, which the decoder returns when the input stops between
// tokens, into io.ErrUnexpectedEOF: inside a catalog, the end of input is
// always premature.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// describe names the JSON kind of a decoded token or value.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case json.Delim:
		switch v {
		case '{':
			return "an object"
		case '[':
			return "an array"
		}
		return fmt.Sprintf("%q", v)
	case string:
		return "a string"
	case float64, json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("%T", v)
}

func describeRaw(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "empty"
	}
	switch raw[0] {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	}
	return "a number"
}
