package match

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/google/osv-scalibr/semantic"

	"github.com/vigil-project/vigil"
)

// matched is why an affected entry applies to a version.
type matched struct {
	text  string // the range or version list that matched
	fixed string // the nearest fixed version above the installed one
}

// compare returns the order of installed against s (-1, 0, +1), or an
// error when s is not a version of the ecosystem.
func compare(installed semantic.Version, eco, s string) (c int, err error) {
	v, err := cachedVersion(s, eco)
	if err != nil {
		return 0, err
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("version comparison panicked: %v", r)
		}
	}()
	return installed.Compare(v)
}

// versions caches parsed versions: the same advisory versions are
// compared with every inventory of a fleet, and parsing them (PyPI's
// above all) is most of matching's work. Bounded: it starts over when
// full.
var versions = struct {
	sync.RWMutex
	m map[[2]string]parsedVersion
}{m: map[[2]string]parsedVersion{}}

type parsedVersion struct {
	v   semantic.Version
	err error
}

const maxCachedVersions = 1 << 18

// cachedVersion parses a version in an ecosystem's order, once.
func cachedVersion(s, eco string) (semantic.Version, error) {
	k := [2]string{eco, s}
	versions.RLock()
	p, ok := versions.m[k]
	versions.RUnlock()
	if ok {
		return p.v, p.err
	}
	v, err := parseVersion(s, eco)
	versions.Lock()
	if len(versions.m) >= maxCachedVersions {
		clear(versions.m)
	}
	versions.m[k] = parsedVersion{v, err}
	versions.Unlock()
	return v, err
}

// affects evaluates an OSV affected entry for an installed version: its
// explicit version list, then its ECOSYSTEM and SEMVER ranges (GIT ranges
// name commits and are not evaluated), following the OSV specification's
// evaluation of sorted events.
func affects(iv semantic.Version, version, eco string, a vigil.Affected) (matched, bool) {
	var m matched
	hit := false
	for _, v := range a.Versions {
		if v == version {
			hit, m.text = true, "version "+v+" listed"
			break
		}
		if c, err := compare(iv, eco, v); err == nil && c == 0 {
			hit, m.text = true, "version "+v+" listed"
			break
		}
	}
	for _, r := range a.Ranges {
		if r.Type == "GIT" {
			continue
		}
		in, err := inRange(iv, eco, r.Events)
		if err != nil {
			continue
		}
		if in && !hit {
			hit, m.text = true, rangeText(r)
		}
	}
	if !hit {
		return m, false
	}
	m.fixed = nearestFix(iv, a)
	return m, true
}

// inRange applies the OSV evaluation: walk the events in version order;
// introduced at or below the version makes it affected, fixed at or below
// and last_affected below make it unaffected.
func inRange(iv semantic.Version, eco string, events []vigil.Event) (bool, error) {
	type ev struct {
		kind, ver string
		v         semantic.Version
	}
	evs := make([]ev, 0, len(events))
	for _, e := range events {
		var x ev
		switch {
		case e.Introduced != "":
			x = ev{kind: "introduced", ver: e.Introduced}
		case e.Fixed != "":
			x = ev{kind: "fixed", ver: e.Fixed}
		case e.LastAffected != "":
			x = ev{kind: "last_affected", ver: e.LastAffected}
		default:
			continue // limit applies to GIT ranges only
		}
		if x.ver != "0" {
			v, err := cachedVersion(x.ver, eco)
			if err != nil {
				return false, err
			}
			x.v = v
		}
		evs = append(evs, x)
	}
	var sortErr error
	slices.SortStableFunc(evs, func(a, b ev) int {
		switch {
		case a.ver == "0" && b.ver == "0":
			return 0
		case a.ver == "0":
			return -1
		case b.ver == "0":
			return 1
		}
		c, err := a.v.Compare(b.v)
		if err != nil {
			sortErr = err
		}
		return c
	})
	if sortErr != nil {
		return false, sortErr
	}
	affected := false
	for _, e := range evs {
		if e.ver == "0" {
			if e.kind == "introduced" {
				affected = true
			}
			continue
		}
		c, err := compare(iv, eco, e.ver)
		if err != nil {
			return false, err
		}
		switch e.kind {
		case "introduced":
			if c >= 0 {
				affected = true
			}
		case "fixed":
			if c >= 0 {
				affected = false
			}
		case "last_affected":
			if c > 0 {
				affected = false
			}
		}
	}
	return affected, nil
}

// nearestFix is the lowest fixed version above the installed one.
func nearestFix(iv semantic.Version, a vigil.Affected) string {
	best := ""
	var bestV semantic.Version
	for _, f := range a.Fixed() {
		c, err := compare(iv, a.Ecosystem, f)
		if err != nil || c >= 0 {
			continue
		}
		if best == "" {
			best, bestV = f, mustParse(f, a.Ecosystem)
			continue
		}
		if bestV != nil {
			if c, err := compare(bestV, a.Ecosystem, f); err == nil && c > 0 {
				best, bestV = f, mustParse(f, a.Ecosystem)
			}
		}
	}
	return best
}

func mustParse(v, eco string) semantic.Version {
	sv, err := parseVersion(v, eco)
	if err != nil {
		return nil
	}
	return sv
}

// rangeText renders a range: ">=2.0-beta9 <2.3.1, >=2.4 <2.12.2".
func rangeText(r vigil.Range) string {
	var parts []string
	lo := ""
	for _, e := range r.Events {
		switch {
		case e.Introduced != "":
			lo = e.Introduced
		case e.Fixed != "":
			parts = append(parts, interval(lo, "<"+e.Fixed))
			lo = ""
		case e.LastAffected != "":
			parts = append(parts, interval(lo, "<="+e.LastAffected))
			lo = ""
		}
	}
	if lo != "" {
		parts = append(parts, interval(lo, ""))
	}
	return strings.Join(parts, ", ")
}

func interval(lo, hi string) string {
	switch {
	case (lo == "" || lo == "0") && hi == "":
		return "all versions"
	case lo == "" || lo == "0":
		return hi
	case hi == "":
		return ">=" + lo
	}
	return ">=" + lo + " " + hi
}
