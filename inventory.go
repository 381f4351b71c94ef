package vigil

import "time"

// InventorySchemaVersion is the version of the Inventory document. It
// changes only when a field changes meaning or goes away; new fields may
// appear within a version.
const InventorySchemaVersion = 1

// Inventory is what is installed in one target: a root filesystem, a
// container image, a function package, a file or an SBOM. It is
// self-contained: the server stores it and matches it again whenever the
// vulnerability database changes, without reading the target again, so it
// holds everything matching needs.
type Inventory struct {
	SchemaVersion int `json:"schemaVersion"`
	// Digest identifies the content: a hash of the target, OS and packages,
	// not of when or by what it was collected. An unchanged digest means
	// nothing downstream needs to run.
	Digest    string         `json:"digest"`
	Scanner   ScannerInfo    `json:"scanner"`
	Target    TargetInfo     `json:"target"`
	OS        *OSInfo        `json:"os,omitempty"`
	Image     *ImageInfo     `json:"image,omitempty"`
	Function  *FunctionInfo  `json:"function,omitempty"`
	Packages  []Package      `json:"packages"`
	Warnings  []string       `json:"warnings"`
	Collected time.Time      `json:"collectedAt"`
	Stats     InventoryStats `json:"stats"`
}

// ScannerInfo says what produced an inventory: part of its identity, since
// a new collector version can find more.
type ScannerInfo struct {
	Name       string          `json:"name"`
	Version    string          `json:"version"`
	Collectors []CollectorInfo `json:"collectors"`
}

// CollectorInfo names one collector and its version.
type CollectorInfo struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
}

// Target types.
const (
	TargetRootFS   = "rootfs"
	TargetImage    = "image"
	TargetFunction = "function"
	TargetFile     = "file"
	TargetSBOM     = "sbom"
)

// TargetInfo describes what was read.
type TargetInfo struct {
	// Type is rootfs, image, function, file or sbom.
	Type string `json:"type"`
	// Name is how the user named the target: a path or an image reference.
	Name string `json:"name"`
	// Format says how it was read: "directory", "docker-archive",
	// "oci-layout", "registry", "zip", "cyclonedx-json", "spdx-json", …
	Format string `json:"format"`
}

// OSInfo is the operating system of a target, from its os-release.
type OSInfo struct {
	ID         string `json:"id"`
	VersionID  string `json:"versionId,omitempty"`
	Codename   string `json:"codename,omitempty"`
	PrettyName string `json:"prettyName,omitempty"`
	// Ecosystem is the OSV ecosystem of its packages: "Debian:12",
	// "Alpine:v3.20", "Ubuntu:22.04:LTS"; empty when OSV has none.
	Ecosystem string `json:"ecosystem,omitempty"`
}

// ImageInfo describes a container image.
type ImageInfo struct {
	// Digest is the manifest digest, when known.
	Digest string `json:"digest,omitempty"`
	// ID is the config digest.
	ID           string            `json:"id"`
	RepoTags     []string          `json:"repoTags,omitempty"`
	RepoDigests  []string          `json:"repoDigests,omitempty"`
	Architecture string            `json:"architecture,omitempty"`
	OS           string            `json:"os,omitempty"`
	Created      time.Time         `json:"created,omitzero"`
	User         string            `json:"user,omitempty"`
	Env          []string          `json:"env,omitempty"`
	ExposedPorts []string          `json:"exposedPorts,omitempty"`
	Entrypoint   []string          `json:"entrypoint,omitempty"`
	Cmd          []string          `json:"cmd,omitempty"`
	WorkingDir   string            `json:"workingDir,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	Layers       []LayerInfo       `json:"layers"`
}

// LayerInfo is one layer of an image, bottom first.
type LayerInfo struct {
	DiffID    string `json:"diffId"`
	Digest    string `json:"digest,omitempty"`
	Size      int64  `json:"size,omitempty"`
	CreatedBy string `json:"createdBy,omitempty"`
}

// FunctionInfo describes a serverless function package.
type FunctionInfo struct {
	Runtime string `json:"runtime,omitempty"`
	// Layers are the layer archives, in the order given.
	Layers []string `json:"layers,omitempty"`
}

// Package is one installed package.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Ecosystem is the OSV ecosystem: "Debian:12", "npm", "PyPI", "Go",
	// "Maven", … Empty when there is none (an unknown OS).
	Ecosystem string `json:"ecosystem"`
	PURL      string `json:"purl"`
	// Type is the package's kind: deb, rpm, apk, npm, pypi, golang, maven,
	// cargo, gem, nuget, composer.
	Type string `json:"type"`
	// SourceName and SourceVersion are the source package of a
	// distribution's binary package, as its advisories are keyed.
	SourceName    string `json:"sourceName,omitempty"`
	SourceVersion string `json:"sourceVersion,omitempty"`
	// Path is the file the package was read from, relative to the target's
	// root: a package database, a lockfile, a manifest, a binary, an archive
	// (with !/ separating nested archive members).
	Path string `json:"path,omitempty"`
	// Layer is the diff id of the image layer that introduced the package.
	Layer string `json:"layer,omitempty"`
	// OwnedBy is the OS package whose files include this language
	// package's, when the OS package manager installed it.
	OwnedBy   string   `json:"ownedBy,omitempty"`
	Collector string   `json:"collector"`
	Licenses  []string `json:"licenses,omitempty"`
	// Dev is set for development-only dependencies declared in a lockfile.
	Dev bool `json:"dev,omitempty"`
}

// InventoryStats counts what a collection read.
type InventoryStats struct {
	Files      int64 `json:"files"`
	Bytes      int64 `json:"bytes"`
	Extracted  int64 `json:"extracted"`
	DurationMS int64 `json:"durationMs"`
}
