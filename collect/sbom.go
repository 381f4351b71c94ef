package collect

import (
	"encoding/json"
	"net/url"
	"strings"

	"github.com/vigil-project/vigil"
)

// sbomHint is what an SBOM says of a package beyond its PURL: what Vigil
// (or another scanner) knew when it wrote the document.
type sbomHint struct {
	ecosystem, sourceName, sourceVersion, ownedBy, path, layer string
}

// sbomHints reads the OS and per-package hints of a CycloneDX or SPDX JSON
// document: Vigil's own vigil:* properties and SPDX source info, Trivy's
// SrcName/SrcVersion properties, and the PURL qualifiers that name a
// distribution package's source (upstream, source, sourceversion).
func sbomHints(data []byte) (*vigil.OSInfo, map[string][]sbomHint) {
	hints := map[string][]sbomHint{}
	var doc struct {
		Components []struct {
			Type        string `json:"type"`
			Name        string `json:"name"`
			Version     string `json:"version"`
			Description string `json:"description"`
			PURL        string `json:"purl"`
			Properties  []struct {
				Name  string `json:"name"`
				Value string `json:"value"`
			} `json:"properties"`
		} `json:"components"`
		Packages []struct {
			Name       string `json:"name"`
			Version    string `json:"versionInfo"`
			Purpose    string `json:"primaryPackagePurpose"`
			SourceInfo string `json:"sourceInfo"`
			Desc       string `json:"description"`
			Refs       []struct {
				Type    string `json:"referenceType"`
				Locator string `json:"referenceLocator"`
			} `json:"externalRefs"`
		} `json:"packages"`
	}
	if json.Unmarshal(data, &doc) != nil {
		return nil, hints
	}
	var osi *vigil.OSInfo
	setOS := func(id, version, pretty, eco string) {
		if osi != nil || id == "" {
			return
		}
		osi = &vigil.OSInfo{ID: strings.ToLower(id), VersionID: version, PrettyName: pretty}
		osi.Ecosystem = eco
		if osi.Ecosystem == "" {
			osi.Ecosystem = osEcosystem(osi, map[string]string{"PRETTY_NAME": pretty, "VERSION": pretty})
		}
	}
	for _, c := range doc.Components {
		props := map[string]string{}
		for _, p := range c.Properties {
			props[p.Name] = p.Value
		}
		if c.Type == "operating-system" {
			setOS(c.Name, c.Version, c.Description, props["vigil:ecosystem"])
			continue
		}
		if c.PURL == "" {
			continue
		}
		h := sbomHint{
			ecosystem:     props["vigil:ecosystem"],
			sourceName:    first(props["vigil:sourceName"], props["aquasecurity:trivy:SrcName"]),
			sourceVersion: first(props["vigil:sourceVersion"], props["aquasecurity:trivy:SrcVersion"]),
			ownedBy:       props["vigil:ownedBy"],
			path:          first(props["vigil:path"], props["aquasecurity:trivy:FilePath"]),
			layer:         first(props["vigil:layer"], props["aquasecurity:trivy:LayerDiffID"]),
		}
		hints[purlKey(c.PURL)] = append(hints[purlKey(c.PURL)], h)
	}
	for _, p := range doc.Packages {
		if p.Purpose == "OPERATING-SYSTEM" {
			setOS(p.Name, p.Version, p.Desc, "")
			continue
		}
		for _, r := range p.Refs {
			if r.Type != "purl" {
				continue
			}
			h := sbomHint{}
			for _, kv := range strings.Split(p.SourceInfo, "; ") {
				k, v, _ := strings.Cut(kv, ": ")
				switch k {
				case "ecosystem":
					h.ecosystem = v
				case "path":
					h.path = v
				case "layer":
					h.layer = v
				case "ownedBy":
					h.ownedBy = v
				case "source":
					h.sourceName, h.sourceVersion, _ = strings.Cut(v, " ")
				}
			}
			hints[purlKey(r.Locator)] = append(hints[purlKey(r.Locator)], h)
		}
	}
	return osi, hints
}

// purlKey identifies a package by its PURL without qualifiers or subpath.
func purlKey(u string) string {
	u, _, _ = strings.Cut(u, "#")
	u, _, _ = strings.Cut(u, "?")
	if d, err := url.PathUnescape(u); err == nil {
		u = d
	}
	return strings.ToLower(u)
}

// purlQualifiers reads a PURL's qualifiers.
func purlQualifiers(u string) map[string]string {
	q := map[string]string{}
	_, rest, ok := strings.Cut(u, "?")
	if !ok {
		return q
	}
	rest, _, _ = strings.Cut(rest, "#")
	vals, err := url.ParseQuery(rest)
	if err != nil {
		return q
	}
	for k, v := range vals {
		if len(v) > 0 {
			q[strings.ToLower(k)] = v[0]
		}
	}
	return q
}

// debianReleases maps codenames to release numbers.
var debianReleases = map[string]string{
	"jessie": "8", "stretch": "9", "buster": "10", "bullseye": "11", "bookworm": "12", "trixie": "13", "forky": "14",
}

// distroEcosystem reads a distribution package's OSV ecosystem from its
// PURL's distro qualifier: debian-12, bookworm, alpine-3.20.1, …
func distroEcosystem(purlType, distro string) string {
	distro = strings.ToLower(distro)
	switch purlType {
	case "deb":
		if n, ok := debianReleases[distro]; ok {
			return "Debian:" + n
		}
		if v, ok := strings.CutPrefix(distro, "debian-"); ok {
			major, _, _ := strings.Cut(v, ".")
			return "Debian:" + major
		}
		if v, ok := strings.CutPrefix(distro, "ubuntu-"); ok {
			return osEcosystem(&vigil.OSInfo{ID: "ubuntu", VersionID: v}, map[string]string{})
		}
	case "apk":
		if v, ok := strings.CutPrefix(distro, "alpine-"); ok {
			return osEcosystem(&vigil.OSInfo{ID: "alpine", VersionID: v}, nil)
		}
	}
	return ""
}

// h0 is the ecosystem a hint gave the package, if any.
func h0(hints map[string][]sbomHint, p *vigil.Package) string {
	for _, h := range hints[purlKey(p.PURL)] {
		if h.ecosystem != "" {
			return h.ecosystem
		}
	}
	return ""
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// applySBOMHints completes the packages read from an SBOM with what the
// document says beyond their PURLs.
func applySBOMHints(inv *vigil.Inventory, data []byte) {
	osi, hints := sbomHints(data)
	if inv.OS == nil {
		inv.OS = osi
	}
	used := map[string]int{}
	for i := range inv.Packages {
		p := &inv.Packages[i]
		key := purlKey(p.PURL)
		if hs := hints[key]; len(hs) > 0 {
			h := hs[min(used[key], len(hs)-1)]
			used[key]++
			p.Ecosystem = first(h.ecosystem, p.Ecosystem)
			p.SourceName = first(h.sourceName, p.SourceName)
			p.SourceVersion = first(h.sourceVersion, p.SourceVersion)
			p.OwnedBy = first(h.ownedBy, p.OwnedBy)
			if h.path != "" {
				p.Path = h.path
			}
			p.Layer = first(h.layer, p.Layer)
		}
		switch p.Type {
		case "deb", "rpm", "apk":
			q := purlQualifiers(p.PURL)
			if p.SourceName == "" {
				src := first(q["upstream"], q["source"])
				// Syft writes upstream=name or upstream=name@version.
				name, ver, _ := strings.Cut(src, "@")
				p.SourceName = name
				p.SourceVersion = first(ver, q["sourceversion"], p.SourceVersion)
			}
			if p.SourceName == "" {
				p.SourceName = p.Name
			}
			if p.SourceVersion == "" {
				p.SourceVersion = p.Version
			}
			// The release as OSV names it: Debian:12, not Debian:12.15 nor a
			// bare Debian.
			if e := distroEcosystem(p.Type, q["distro"]); e != "" && h0(hints, p) == "" {
				p.Ecosystem = e
			} else if strings.Count(p.Ecosystem, ":") == 0 && inv.OS != nil && inv.OS.Ecosystem != "" {
				p.Ecosystem = inv.OS.Ecosystem
			}
		}
	}
}
