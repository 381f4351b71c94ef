// Package suppress applies ignore rules and VEX statements to findings.
// A suppressed finding is kept and marked with the reason, never dropped;
// a rule past its expiry date stops suppressing.
package suppress

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vigil-project/vigil"
)

// Rule hides one vulnerability, optionally on one package only.
type Rule struct {
	ID string `yaml:"id" json:"id"`
	// Package scopes the rule: a package name, or a PURL (with or without
	// its version).
	Package string `yaml:"package,omitempty" json:"package,omitempty"`
	Reason  string `yaml:"reason" json:"reason"`
	// Expires is a date (YYYY-MM-DD) from which the rule no longer applies.
	Expires string `yaml:"expires,omitempty" json:"expires,omitempty"`
	// VendorSeverity hides packages a distribution rated so (Debian's
	// unimportant, no-dsa, postponed, end-of-life; Ubuntu's negligible),
	// for any vulnerability when ID is empty.
	VendorSeverity []string `yaml:"vendorSeverity,omitempty" json:"vendorSeverity,omitempty"`
	// Source says where the rule comes from, for the report.
	Source string `yaml:"-" json:"-"`
	// Status is "ignored" for ignore rules, the VEX status for statements.
	Status  string    `yaml:"-" json:"-"`
	expires time.Time `yaml:"-" json:"-"`
}

// Rules is a set of ignore rules.
type Rules struct {
	rules []Rule
}

// Load reads an ignore file: a YAML list of rules (or an object with an
// "ignore" list), or an OpenVEX JSON document.
func Load(path string) (*Rules, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, vigil.Errorf(vigil.EINVALID, "ignore file: %v", err)
	}
	rs, err := Parse(data, path)
	if err != nil {
		return nil, vigil.Errorf(vigil.EINVALID, "ignore file %s: %v", path, err)
	}
	return rs, nil
}

// Parse reads an ignore file's content; name labels the rules' source.
func Parse(data []byte, name string) (*Rules, error) {
	trimmed := bytes.TrimSpace(data)
	if bytes.HasPrefix(trimmed, []byte("{")) && bytes.Contains(trimmed, []byte("openvex")) {
		return parseVEX(trimmed, name)
	}
	var list []Rule
	if err := yaml.Unmarshal(data, &list); err != nil {
		var doc struct {
			Ignore []Rule `yaml:"ignore"`
		}
		if err2 := yaml.Unmarshal(data, &doc); err2 != nil {
			return nil, fmt.Errorf("not a YAML list of rules nor an OpenVEX document: %w", err)
		}
		list = doc.Ignore
	}
	rs := &Rules{}
	for i, r := range list {
		r.ID = strings.TrimSpace(r.ID)
		if r.ID == "" && len(r.VendorSeverity) == 0 {
			return nil, fmt.Errorf("rule %d: no id (or vendorSeverity)", i+1)
		}
		if strings.TrimSpace(r.Reason) == "" {
			return nil, fmt.Errorf("rule %d (%s): no reason: every suppression says why", i+1, r.ID)
		}
		if r.Expires != "" {
			t, err := time.Parse("2006-01-02", r.Expires)
			if err != nil {
				return nil, fmt.Errorf("rule %d (%s): expires %q is not a date (YYYY-MM-DD)", i+1, r.ID, r.Expires)
			}
			r.expires = t
		}
		r.Source = fmt.Sprintf("%s rule %d", name, i+1)
		r.Status = "ignored"
		rs.rules = append(rs.rules, r)
	}
	return rs, nil
}

// parseVEX reads an OpenVEX document. For each (vulnerability, product)
// the latest statement wins (by its timestamp, else its place in the
// document); not_affected and fixed suppress. A product's subcomponents
// (the packages of an image) are what a statement is about when given.
func parseVEX(data []byte, name string) (*Rules, error) {
	type statement struct {
		Vulnerability json.RawMessage   `json:"vulnerability"`
		Products      []json.RawMessage `json:"products"`
		Status        string            `json:"status"`
		Justification string            `json:"justification"`
		Impact        string            `json:"impact_statement"`
		Timestamp     string            `json:"timestamp"`
	}
	var doc struct {
		Context    string      `json:"@context"`
		Timestamp  string      `json:"timestamp"`
		Statements []statement `json:"statements"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("OpenVEX: %w", err)
	}
	if !strings.Contains(doc.Context, "openvex") {
		return nil, fmt.Errorf("OpenVEX: @context %q is not OpenVEX's", doc.Context)
	}
	type latest struct {
		at    time.Time
		index int
		st    statement
	}
	byKey := map[string]latest{}
	var order []string
	for i, st := range doc.Statements {
		id := vexName(st.Vulnerability)
		if id == "" {
			return nil, fmt.Errorf("OpenVEX statement %d: no vulnerability name", i+1)
		}
		at, _ := time.Parse(time.RFC3339, first(st.Timestamp, doc.Timestamp))
		var products []string
		for _, raw := range st.Products {
			var p struct {
				Subcomponents []json.RawMessage `json:"subcomponents"`
			}
			_ = json.Unmarshal(raw, &p)
			if len(p.Subcomponents) > 0 {
				for _, sc := range p.Subcomponents {
					if n := vexName(sc); n != "" {
						products = append(products, n)
					}
				}
			} else if n := vexName(raw); n != "" {
				products = append(products, n)
			}
		}
		if len(products) == 0 {
			products = []string{""}
		}
		for _, p := range products {
			k := strings.ToUpper(id) + "\x00" + p
			old, seen := byKey[k]
			if !seen {
				order = append(order, k)
			}
			if !seen || !at.Before(old.at) {
				byKey[k] = latest{at: at, index: i, st: st}
			}
		}
	}
	rs := &Rules{}
	for _, k := range order {
		l := byKey[k]
		if l.st.Status != "not_affected" && l.st.Status != "fixed" {
			continue
		}
		id, product, _ := strings.Cut(k, "\x00")
		reason := "VEX: " + l.st.Status
		if l.st.Justification != "" {
			reason += " (" + l.st.Justification + ")"
		}
		if l.st.Impact != "" {
			reason += ": " + l.st.Impact
		}
		rs.rules = append(rs.rules, Rule{ID: id, Package: product, Reason: reason, Status: l.st.Status,
			Source: fmt.Sprintf("%s statement %d", name, l.index+1)})
	}
	return rs, nil
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// vexName reads a VEX vulnerability or product: a string, or an object
// with "name" or "@id".
func vexName(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		Name string `json:"name"`
		ID   string `json:"@id"`
	}
	if json.Unmarshal(raw, &o) == nil {
		if o.Name != "" {
			return o.Name
		}
		return o.ID
	}
	return ""
}

// Apply marks the findings the rules suppress. A rule scoped to some of a
// finding's packages splits it: the suppressed packages in a suppressed
// copy, the rest still active. It returns warnings for expired rules.
func (rs *Rules) Apply(fs []vigil.Finding, now time.Time) ([]vigil.Finding, []string) {
	if rs == nil || len(rs.rules) == 0 {
		return fs, nil
	}
	var warns []string
	warned := map[int]bool{}
	out := make([]vigil.Finding, 0, len(fs))
	for _, f := range fs {
		ids := append([]string{f.Vulnerability.ID}, f.Vulnerability.Aliases...)
		var active, hidden []vigil.VulnerablePackage
		var by *Rule
		for _, p := range f.Packages {
			var hit *Rule
			for i := range rs.rules {
				r := &rs.rules[i]
				if r.ID != "" && !slices.ContainsFunc(ids, func(id string) bool { return strings.EqualFold(id, r.ID) }) || !r.matches(p) {
					continue
				}
				if !r.expires.IsZero() && !now.Before(r.expires) {
					if !warned[i] {
						warned[i] = true
						warns = append(warns, fmt.Sprintf("%s for %s expired on %s: no longer suppressing", r.Source, r.ID, r.Expires))
					}
					continue
				}
				hit = r
				break
			}
			if hit != nil {
				hidden = append(hidden, p)
				if by == nil {
					by = hit
				}
			} else {
				active = append(active, p)
			}
		}
		if len(active) > 0 {
			a := f
			a.Packages = active
			a.FixAvailable = vigil.FixAvailability(active)
			out = append(out, a)
		}
		if len(hidden) > 0 {
			h := f
			h.Packages = hidden
			h.FixAvailable = vigil.FixAvailability(hidden)
			h.Suppressed = &vigil.Suppression{Status: by.Status, Reason: by.Reason, Source: by.Source, Expires: by.Expires}
			out = append(out, h)
		}
	}
	return out, warns
}

func (r *Rule) matches(p vigil.VulnerablePackage) bool {
	if len(r.VendorSeverity) > 0 && !slices.ContainsFunc(r.VendorSeverity, func(s string) bool { return strings.EqualFold(s, p.VendorSeverity) }) {
		return false
	}
	if r.Package == "" {
		return true
	}
	if strings.HasPrefix(r.Package, "pkg:") {
		want, _, _ := strings.Cut(r.Package, "?")
		got, _, _ := strings.Cut(p.PURL, "?")
		if !strings.Contains(want, "@") {
			got, _, _ = strings.Cut(got, "@")
		}
		return got == want
	}
	return r.Package == p.Name || r.Package == p.SourceName && p.SourceName != ""
}
