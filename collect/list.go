package collect

import (
	"fmt"

	cpb "github.com/google/osv-scalibr/binary/proto/config_go_proto"
	"github.com/google/osv-scalibr/extractor/filesystem"
	"github.com/google/osv-scalibr/extractor/filesystem/language/dotnet/depsjson"
	"github.com/google/osv-scalibr/extractor/filesystem/language/dotnet/packagesconfig"
	"github.com/google/osv-scalibr/extractor/filesystem/language/dotnet/packageslockjson"
	"github.com/google/osv-scalibr/extractor/filesystem/language/golang/gobinary"
	"github.com/google/osv-scalibr/extractor/filesystem/language/golang/gomod"
	javaarchive "github.com/google/osv-scalibr/extractor/filesystem/language/java/archive"
	"github.com/google/osv-scalibr/extractor/filesystem/language/java/gradlelockfile"
	"github.com/google/osv-scalibr/extractor/filesystem/language/javascript/packagejson"
	"github.com/google/osv-scalibr/extractor/filesystem/language/javascript/packagelockjson"
	"github.com/google/osv-scalibr/extractor/filesystem/language/javascript/pnpmlock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/javascript/yarnlock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/php/composerlock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/python/pdmlock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/python/pipfilelock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/python/poetrylock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/python/requirements"
	"github.com/google/osv-scalibr/extractor/filesystem/language/python/uvlock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/python/wheelegg"
	"github.com/google/osv-scalibr/extractor/filesystem/language/ruby/gemfilelock"
	"github.com/google/osv-scalibr/extractor/filesystem/language/ruby/gemspec"
	"github.com/google/osv-scalibr/extractor/filesystem/language/rust/cargoauditable"
	"github.com/google/osv-scalibr/extractor/filesystem/language/rust/cargolock"
	"github.com/google/osv-scalibr/extractor/filesystem/os/apk"
	"github.com/google/osv-scalibr/extractor/filesystem/os/dpkg"
	"github.com/google/osv-scalibr/extractor/filesystem/os/rpm"
	"github.com/google/osv-scalibr/extractor/filesystem/sbom/cdx"
	"github.com/google/osv-scalibr/extractor/filesystem/sbom/spdx"
)

// The collectors Vigil runs, listed here and nowhere else: what runs is
// readable in one place. Each is an osv-scalibr filesystem extractor; the
// engine in this package owns the walk, the limits and layer attribution.
var collectors = []func(*cpb.PluginConfig) (filesystem.Extractor, error){
	// Operating system package databases.
	dpkg.New, // dpkg status and status.d (Debian, Ubuntu, distroless)
	rpm.New,  // rpm databases: sqlite, Berkeley DB, ndb
	apk.New,  // apk installed database (Alpine, Wolfi)
	// JavaScript.
	packagelockjson.New, // package-lock.json v1–v3, npm-shrinkwrap, node_modules/.package-lock.json
	packagejson.New,     // installed node_modules/*/package.json
	yarnlock.New,
	pnpmlock.New,
	// Python.
	wheelegg.New, // installed dist-info / egg-info, wheels, eggs
	requirements.New,
	poetrylock.New,
	pipfilelock.New,
	pdmlock.New,
	uvlock.New,
	// Go.
	gobinary.New, // build info of Go executables, the toolchain as stdlib
	gomod.New,
	// Java.
	javaarchive.New, // jar, war, ear and nested archives, by pom.properties and manifests
	gradlelockfile.New,
	// Rust.
	cargolock.New,
	cargoauditable.New,
	// Ruby.
	gemfilelock.New,
	gemspec.New,
	// .NET.
	packageslockjson.New,
	depsjson.New,
	packagesconfig.New,
	// PHP.
	composerlock.New,
	// SBOMs.
	cdx.New,
	spdx.New,
}

// Extractors returns a fresh instance of every collector.
func Extractors() ([]filesystem.Extractor, error) {
	cfg := &cpb.PluginConfig{
		PluginSpecific: []*cpb.PluginSpecificConfig{{
			// Nested jars are opened in memory: bound how deep and how much.
			Config: &cpb.PluginSpecificConfig_JavaArchive{JavaArchive: &cpb.JavaArchiveConfig{
				MaxZipDepth:    8,
				MaxOpenedBytes: 256 << 20,
			}},
		}},
	}
	out := make([]filesystem.Extractor, 0, len(collectors))
	for _, newFn := range collectors {
		e, err := newFn(cfg)
		if err != nil {
			return nil, fmt.Errorf("collect: init collector: %w", err)
		}
		out = append(out, e)
	}
	return out, nil
}
