// Package report encodes inventories and findings for people and tools:
// CycloneDX and SPDX SBOMs here.
package report

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	spdxjson "github.com/spdx/tools-golang/json"
	spdxcommon "github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"

	"github.com/vigil-project/vigil"
)

// uuidFrom derives a stable UUID (version 5 layout) from a string, so that
// the same inventory always gives the same serial number.
func uuidFrom(s string) string {
	h := sha256.Sum256([]byte(s))
	h[6] = (h[6] & 0x0f) | 0x50
	h[8] = (h[8] & 0x3f) | 0x80
	x := hex.EncodeToString(h[:16])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// packageRef is a package's identifier within one document: stable, and
// unique even for the same package found at several paths.
func packageRef(p vigil.Package) string {
	h := sha256.Sum256([]byte(p.PURL + "\x00" + p.Path + "\x00" + p.Layer + "\x00" + p.Name + "\x00" + p.Version))
	return hex.EncodeToString(h[:8])
}

func props(p vigil.Package) []cdx.Property {
	var out []cdx.Property
	add := func(k, v string) {
		if v != "" {
			out = append(out, cdx.Property{Name: "vigil:" + k, Value: v})
		}
	}
	add("ecosystem", p.Ecosystem)
	add("type", p.Type)
	add("path", p.Path)
	add("layer", p.Layer)
	add("sourceName", p.SourceName)
	add("sourceVersion", p.SourceVersion)
	add("ownedBy", p.OwnedBy)
	add("collector", p.Collector)
	return out
}

var spdxLicenseRe = regexp.MustCompile(`^[A-Za-z0-9.+-]+( (AND|OR|WITH) [A-Za-z0-9.+-]+)*$`)

// CycloneDX writes the inventory as a CycloneDX 1.6 JSON SBOM.
func CycloneDX(w io.Writer, inv *vigil.Inventory) error {
	return encodeBOM(w, bomFor(inv))
}

// bomFor describes the inventory as a CycloneDX BOM.
func bomFor(inv *vigil.Inventory) *cdx.BOM {
	bom := cdx.NewBOM()
	bom.SpecVersion = cdx.SpecVersion1_6
	bom.SerialNumber = "urn:uuid:" + uuidFrom(inv.Digest)
	root := cdx.Component{BOMRef: "target", Name: inv.Target.Name, Type: cdx.ComponentTypeFile}
	switch inv.Target.Type {
	case vigil.TargetImage:
		root.Type = cdx.ComponentTypeContainer
		if inv.Image != nil {
			root.Version = inv.Image.ID
			if len(inv.Image.RepoTags) > 0 {
				root.Name = inv.Image.RepoTags[0]
			}
		}
	case vigil.TargetFunction, vigil.TargetRootFS:
		root.Type = cdx.ComponentTypeApplication
	}
	meta := []cdx.Property{{Name: "vigil:inventoryDigest", Value: inv.Digest}, {Name: "vigil:targetType", Value: inv.Target.Type}, {Name: "vigil:targetFormat", Value: inv.Target.Format}}
	if inv.Function != nil && inv.Function.Runtime != "" {
		meta = append(meta, cdx.Property{Name: "vigil:runtime", Value: inv.Function.Runtime})
	}
	root.Properties = &meta
	bom.Metadata = &cdx.Metadata{
		Timestamp: inv.Collected.UTC().Format(time.RFC3339),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeApplication, Name: "vigil", Version: inv.Scanner.Version,
		}}},
		Component: &root,
	}
	comps := []cdx.Component{}
	var rootDeps []string
	if inv.OS != nil {
		comps = append(comps, cdx.Component{
			BOMRef: "os", Type: cdx.ComponentTypeOS, Name: inv.OS.ID, Version: inv.OS.VersionID,
			Description: inv.OS.PrettyName,
			Properties:  &[]cdx.Property{{Name: "vigil:ecosystem", Value: inv.OS.Ecosystem}},
		})
		rootDeps = append(rootDeps, "os")
	}
	for _, p := range inv.Packages {
		c := cdx.Component{
			BOMRef:     packageRef(p),
			Type:       cdx.ComponentTypeLibrary,
			Name:       p.Name,
			Version:    p.Version,
			PackageURL: p.PURL,
		}
		if pr := props(p); len(pr) > 0 {
			c.Properties = &pr
		}
		var lics cdx.Licenses
		for _, l := range p.Licenses {
			if l = strings.TrimSpace(l); l == "" {
				continue
			}
			if spdxLicenseRe.MatchString(l) && strings.ContainsAny(l, " ") {
				lics = append(lics, cdx.LicenseChoice{Expression: l})
			} else {
				lics = append(lics, cdx.LicenseChoice{License: &cdx.License{Name: l}})
			}
		}
		if len(lics) > 0 {
			c.Licenses = &lics
		}
		comps = append(comps, c)
		rootDeps = append(rootDeps, c.BOMRef)
	}
	bom.Components = &comps
	bom.Dependencies = &[]cdx.Dependency{{Ref: "target", Dependencies: &rootDeps}}
	return bom
}

func encodeBOM(w io.Writer, bom *cdx.BOM) error {
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	enc.SetEscapeHTML(false)
	if err := enc.EncodeVersion(bom, cdx.SpecVersion1_6); err != nil {
		return fmt.Errorf("report: cyclonedx: %w", err)
	}
	return nil
}

var spdxIDRe = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

// SPDX writes the inventory as an SPDX 2.3 JSON document.
func SPDX(w io.Writer, inv *vigil.Inventory) error {
	name := inv.Target.Name
	if inv.Image != nil && len(inv.Image.RepoTags) > 0 {
		name = inv.Image.RepoTags[0]
	}
	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    "DOCUMENT",
		DocumentName:      name,
		DocumentNamespace: "https://vigil.invalid/spdx/" + uuidFrom(inv.Digest),
		CreationInfo: &spdx.CreationInfo{
			Creators: []spdxcommon.Creator{{CreatorType: "Tool", Creator: "vigil-" + inv.Scanner.Version}},
			Created:  inv.Collected.UTC().Format(time.RFC3339),
		},
	}
	rootID := spdxcommon.ElementID("Target")
	root := &spdx.Package{
		PackageName:             name,
		PackageSPDXIdentifier:   rootID,
		PackageDownloadLocation: "NOASSERTION",
		PrimaryPackagePurpose:   "APPLICATION",
		PackageComment:          "vigil target: " + inv.Target.Type + " (" + inv.Target.Format + "); inventory " + inv.Digest,
	}
	if inv.Target.Type == vigil.TargetImage {
		root.PrimaryPackagePurpose = "CONTAINER"
		if inv.Image != nil {
			root.PackageVersion = inv.Image.ID
		}
	}
	doc.Packages = append(doc.Packages, root)
	doc.Relationships = append(doc.Relationships, &spdx.Relationship{
		RefA: spdxcommon.MakeDocElementID("", "DOCUMENT"), RefB: spdxcommon.MakeDocElementID("", string(rootID)), Relationship: "DESCRIBES",
	})
	if inv.OS != nil {
		osp := &spdx.Package{
			PackageName:             inv.OS.ID,
			PackageSPDXIdentifier:   "OperatingSystem",
			PackageVersion:          inv.OS.VersionID,
			PackageDownloadLocation: "NOASSERTION",
			PrimaryPackagePurpose:   "OPERATING-SYSTEM",
			PackageDescription:      inv.OS.PrettyName,
		}
		doc.Packages = append(doc.Packages, osp)
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{
			RefA: spdxcommon.MakeDocElementID("", string(rootID)), RefB: spdxcommon.MakeDocElementID("", "OperatingSystem"), Relationship: "CONTAINS",
		})
	}
	for i, p := range inv.Packages {
		id := spdxcommon.ElementID("Package-" + strconv.Itoa(i) + "-" + packageRef(p))
		sp := &spdx.Package{
			PackageName:             p.Name,
			PackageSPDXIdentifier:   id,
			PackageVersion:          p.Version,
			PackageDownloadLocation: "NOASSERTION",
			PrimaryPackagePurpose:   "LIBRARY",
			PackageLicenseConcluded: "NOASSERTION",
			PackageLicenseDeclared:  "NOASSERTION",
			PackageCopyrightText:    "NOASSERTION",
		}
		var info []string
		for _, kv := range [][2]string{{"ecosystem", p.Ecosystem}, {"path", p.Path}, {"layer", p.Layer}, {"source", strings.TrimSpace(p.SourceName + " " + p.SourceVersion)}, {"ownedBy", p.OwnedBy}} {
			if kv[1] != "" {
				info = append(info, kv[0]+": "+kv[1])
			}
		}
		sp.PackageSourceInfo = strings.Join(info, "; ")
		if len(p.Licenses) == 1 && spdxLicenseRe.MatchString(p.Licenses[0]) {
			sp.PackageLicenseDeclared = p.Licenses[0]
		}
		if p.PURL != "" {
			sp.PackageExternalReferences = []*spdx.PackageExternalReference{{Category: "PACKAGE-MANAGER", RefType: "purl", Locator: p.PURL}}
		}
		doc.Packages = append(doc.Packages, sp)
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{
			RefA: spdxcommon.MakeDocElementID("", string(rootID)), RefB: spdxcommon.MakeDocElementID("", string(id)), Relationship: "CONTAINS",
		})
	}
	if err := spdxjson.Write(doc, w, spdxjson.Indent("  "), spdxjson.EscapeHTML(false)); err != nil {
		return fmt.Errorf("report: spdx: %w", err)
	}
	return nil
}

var _ = spdxIDRe
