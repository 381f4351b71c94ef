// Package match joins an Inventory and a vulnerability database revision
// into findings: one per vulnerability, listing every vulnerable package it
// touches, each with the evidence of why it matched. It reads the database
// and the inventory and writes nothing.
package match

import (
	"cmp"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/google/osv-scalibr/semantic"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/score"
	"github.com/vigil-project/vigil/vulndb"
)

// Matcher names, recorded in each match's evidence.
const (
	// MatcherDistro matches a distribution's binary package through its
	// source package and source version, as the distribution's advisories
	// are keyed.
	MatcherDistro = "distro-source"
	// MatcherOSV matches a language package's own name and version against
	// OSV ranges.
	MatcherOSV = "osv-ranges"
)

// Result is what matching found.
type Result struct {
	Findings []vigil.Finding `json:"findings"`
	// Warnings say what could not be checked, and why.
	Warnings []string `json:"warnings"`
	Stats    Stats    `json:"stats"`
}

// Stats count what matching did.
type Stats struct {
	Packages int `json:"packages"`
	// Checked packages were looked up; the others were left to the OS
	// package that installed them, have no ecosystem, or no advisory
	// data covers their ecosystem.
	Checked     int   `json:"checked"`
	OwnedByOS   int   `json:"ownedByOS"`
	NoEcosystem int   `json:"noEcosystem"`
	NoData      int   `json:"noData"`
	KernelSkips int   `json:"kernelSkips"`
	Unparseable int   `json:"unparseableVersions"`
	Vulnerable  int   `json:"vulnerablePackages"`
	DBRevision  int64 `json:"dbRevision"`
}

// distroTypes are the package types matched through their source package.
var distroTypes = map[string]bool{"deb": true, "rpm": true, "apk": true}

// kernelSource matches the source packages of Linux kernels, by name:
// Debian's linux and linux-signed-*, Ubuntu's flavours (linux-aws,
// linux-hwe-6.8, …), Alpine's linux-lts and linux-virt. Other packages whose
// names start with linux- (linux-pam, linux-atm) are not kernels.
var kernelSource = regexp.MustCompile(`^linux(-signed(-[a-z0-9.-]+)?|-lts|-virt|-rpi|-edge|-(aws|azure|gcp|gke|oracle|ibm|kvm|lowlatency|raspi|hwe|oem|nvidia|intel|riscv|realtime|generic)(-[a-z0-9.]+)*)?$`)

// Match finds the vulnerabilities of an inventory.
func Match(ctx context.Context, db *vulndb.DB, inv *vigil.Inventory) (*Result, error) {
	res := &Result{Findings: []vigil.Finding{}, Warnings: []string{}}
	res.Stats.Packages = len(inv.Packages)
	res.Stats.DBRevision = db.Meta().Revision
	ecos, err := db.Ecosystems(ctx)
	if err != nil {
		return nil, err
	}
	byID := map[string]*vigil.Finding{}
	vulns := map[string]*vigil.Vulnerability{}
	noData := map[string]int{}
	for _, p := range inv.Packages {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		switch {
		case p.OwnedBy != "":
			// The distribution judges what its package manager installed: it
			// backports fixes without changing the upstream version.
			res.Stats.OwnedByOS++
			continue
		case p.Ecosystem == "":
			res.Stats.NoEcosystem++
			continue
		case ecos[p.Ecosystem] == 0 && distroTypes[p.Type]:
			noData[p.Ecosystem]++
			res.Stats.NoData++
			continue
		}
		name, version, matcher, ok := lookupName(p)
		if !ok {
			res.Stats.KernelSkips++
			continue
		}
		res.Stats.Checked++
		iv, err := cachedVersion(version, p.Ecosystem)
		if err != nil {
			res.Stats.Unparseable++
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s %s %s: version not understood (%v): not checked", p.Ecosystem, p.Name, version, err))
			continue
		}
		hits, err := entriesAffecting(ctx, db, p.Ecosystem, name, version, iv)
		if err != nil {
			return nil, err
		}
		hit := false
		for _, h := range hits {
			e, m := h.e, h.m
			f := byID[e.VulnID]
			if f == nil {
				v, err := db.Get(ctx, e.VulnID)
				if err != nil {
					return nil, err
				}
				vulns[e.VulnID] = v
				f = newFinding(v)
				byID[e.VulnID] = f
			}
			vp := vigil.VulnerablePackage{
				Name: p.Name, Version: p.Version, Ecosystem: p.Ecosystem, PURL: p.PURL,
				SourceName: p.SourceName, SourceVersion: p.SourceVersion, Path: p.Path, Layer: p.Layer,
				FixedVersion:   m.fixed,
				VendorSeverity: e.Affected.Severity,
				Evidence: vigil.MatchEvidence{
					Matcher: matcher, Ecosystem: p.Ecosystem, Package: name, Version: version,
					Advisory: e.Affected.Advisory, Range: m.text,
				},
			}
			vp.Remediation = remediation(p, m.fixed)
			f.Packages = mergePackage(f.Packages, vp)
			hit = true
		}
		if hit {
			res.Stats.Vulnerable++
		}
	}
	for eco, n := range noData {
		res.Warnings = append(res.Warnings, fmt.Sprintf("the vulnerability database has no advisories for %s: its %d OS packages were not checked (an unsupported or end-of-life release is not a clean result)", eco, n))
	}
	if inv.OS != nil && inv.OS.Ecosystem == "" {
		res.Warnings = append(res.Warnings, fmt.Sprintf("no advisory source covers %s: its OS packages were not checked", cmp.Or(inv.OS.PrettyName, inv.OS.ID+" "+inv.OS.VersionID)))
	}
	for _, f := range byID {
		f.FixAvailable = vigil.FixAvailability(f.Packages)
		res.Findings = append(res.Findings, *f)
	}
	Sort(res.Findings)
	slices.Sort(res.Warnings)
	return res, nil
}

type hit struct {
	e vulndb.Entry
	m matched
}

type hitKey struct{ eco, name, version string }

// entriesAffecting are the database entries that affect one version of a
// package, worked out once per database handle: a fleet's inventories
// hold the same package versions again and again.
func entriesAffecting(ctx context.Context, db *vulndb.DB, eco, name, version string, iv semantic.Version) ([]hit, error) {
	v, err := db.Memo(hitKey{eco, name, version}, func() (any, error) {
		entries, err := db.Lookup(ctx, eco, name)
		if err != nil {
			return nil, err
		}
		var hits []hit
		for _, e := range entries {
			if e.Affected.Withdrawn {
				continue
			}
			if m, ok := affects(iv, version, eco, e.Affected); ok {
				hits = append(hits, hit{e, m})
			}
		}
		return hits, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]hit), nil
}

// signedKernel maps Debian's signed kernel wrapper (linux-signed-amd64
// 6.1.76+1) to the kernel source its advisories are keyed by (linux
// 6.1.76-1).
// lookupName is the name and version a package is looked up and judged
// under, and the matcher that judges it. Distribution packages are judged
// through their source package; ok is false for a kernel's headers and
// tools, which do not run the kernel's code.
func lookupName(p vigil.Package) (name, version, matcher string, ok bool) {
	if !distroTypes[p.Type] {
		return p.Name, p.Version, MatcherOSV, true
	}
	name, version = cmp.Or(p.SourceName, p.Name), cmp.Or(p.SourceVersion, p.Version)
	// A kernel's source builds headers, tools and libc headers too; only
	// the kernel image runs the kernel's code.
	if kernelSource.MatchString(name) && !strings.HasPrefix(p.Name, "linux-image") {
		return "", "", "", false
	}
	name, version = signedKernel(name, version)
	return name, version, MatcherDistro, true
}

// LookupKeys are the database keys an inventory's matching looks up,
// whether or not the database has data for them yet: the keys to keep
// with a stored inventory, so that a database update that changes one
// finds the inventories to match again.
func LookupKeys(inv *vigil.Inventory) []vulndb.PackageRef {
	seen := map[vulndb.PackageRef]bool{}
	var out []vulndb.PackageRef
	for _, p := range inv.Packages {
		if p.OwnedBy != "" || p.Ecosystem == "" {
			continue
		}
		name, _, _, ok := lookupName(p)
		if !ok {
			continue
		}
		k := vulndb.PackageRef{Ecosystem: p.Ecosystem, Package: vulndb.PackageKey(p.Ecosystem, name)}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

func signedKernel(name, version string) (string, string) {
	if !strings.HasPrefix(name, "linux-signed") {
		return name, version
	}
	if i := strings.LastIndexByte(version, '+'); i > 0 {
		version = version[:i] + "-" + version[i+1:]
	}
	return "linux", version
}

// Sort orders findings by severity, then score, then id.
func Sort(fs []vigil.Finding) {
	slices.SortFunc(fs, func(a, b vigil.Finding) int {
		if c := cmp.Compare(score.Rank(b.Severity), score.Rank(a.Severity)); c != 0 {
			return c
		}
		if c := cmp.Compare(ptr(b.Score), ptr(a.Score)); c != 0 {
			return c
		}
		return strings.Compare(a.Vulnerability.ID, b.Vulnerability.ID)
	})
}

func ptr(f *float64) float64 {
	if f == nil {
		return -1
	}
	return *f
}

func newFinding(v *vigil.Vulnerability) *vigil.Finding {
	f := &vigil.Finding{
		Vulnerability: vigil.FindingVulnerability{
			ID: v.ID, Aliases: v.Aliases, Related: v.Related, Title: title(v), CWEs: v.CWEs,
		},
		Severity:         v.Severity,
		VendorSeverity:   v.VendorSeverity,
		KEV:              v.KEV,
		EPSS:             v.EPSS,
		ExploitAvailable: v.KEV != nil,
		Packages:         []vigil.VulnerablePackage{},
	}
	if f.Vulnerability.Aliases == nil {
		f.Vulnerability.Aliases = []string{}
	}
	if c, ok := score.Preferred(v.CVSS); ok {
		s := c.BaseScore
		f.Score, f.CVSS = &s, &c
	}
	for i, r := range v.References {
		if i == 20 {
			break
		}
		f.References = append(f.References, r.URL)
	}
	return f
}

// title is a one-line name for a vulnerability.
func title(v *vigil.Vulnerability) string {
	t := v.Summary
	if t == "" {
		t = v.Details
	}
	if i := strings.IndexByte(t, '\n'); i >= 0 {
		t = t[:i]
	}
	if len(t) > 200 {
		t = t[:197] + "..."
	}
	return strings.TrimSpace(t)
}

// mergePackage adds a package to a finding, once per (package, path): a
// vulnerability named by two advisories still lists the package once. When
// the advisories give different fixes, the highest wins, so that one
// upgrade clears the vulnerability whatever advisory is read.
func mergePackage(list []vigil.VulnerablePackage, vp vigil.VulnerablePackage) []vigil.VulnerablePackage {
	for i, o := range list {
		if o.Name == vp.Name && o.Version == vp.Version && o.Path == vp.Path && o.Ecosystem == vp.Ecosystem && o.Layer == vp.Layer {
			if o.FixedVersion == "" && vp.FixedVersion != "" {
				list[i] = vp
			} else if o.FixedVersion != "" && vp.FixedVersion != "" {
				if ov, err := parseVersion(o.FixedVersion, o.Ecosystem); err == nil {
					if c, err := compare(ov, o.Ecosystem, vp.FixedVersion); err == nil && c < 0 {
						list[i] = vp
					}
				}
			}
			return list
		}
	}
	return append(list, vp)
}

// parseVersion parses an installed version in its ecosystem's order.
func parseVersion(v, eco string) (sv semantic.Version, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("version parser panicked: %v", r)
		}
	}()
	if v == "" {
		return nil, fmt.Errorf("empty version")
	}
	return semantic.Parse(v, eco)
}
