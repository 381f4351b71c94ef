package report

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	spdxjson "github.com/spdx/tools-golang/json"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/collect"
	"github.com/vigil-project/vigil/source"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func fixtureInventory(t *testing.T) *vigil.Inventory {
	t.Helper()
	tg, err := source.Open(context.Background(), filepath.Join("testdata", "rootfs"), source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	inv, err := collect.Collect(context.Background(), tg, collect.Options{
		Version: "test",
		Now:     func() time.Time { return time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		t.Fatal(err)
	}
	inv.Stats = vigil.InventoryStats{} // timings vary
	return inv
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update to accept):\n%s", name, got)
	}
}

func TestSBOMGolden(t *testing.T) {
	inv := fixtureInventory(t)
	if len(inv.Packages) != 7 {
		t.Fatalf("fixture packages = %+v", inv.Packages)
	}

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(inv); err != nil {
		t.Fatal(err)
	}
	golden(t, "rootfs.inventory.json", buf.Bytes())

	buf.Reset()
	if err := CycloneDX(&buf, inv); err != nil {
		t.Fatal(err)
	}
	golden(t, "rootfs.cdx.json", buf.Bytes())
	// It parses back as CycloneDX 1.6 with every package and its PURL.
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(buf.Bytes()), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatal(err)
	}
	if bom.SpecVersion != cdx.SpecVersion1_6 || bom.Components == nil || len(*bom.Components) != len(inv.Packages)+1 {
		t.Errorf("cyclonedx: spec %v, components %v", bom.SpecVersion, bom.Components)
	}
	for _, c := range *bom.Components {
		if c.Type == cdx.ComponentTypeLibrary && c.PackageURL == "" {
			t.Errorf("component %s without a purl", c.Name)
		}
	}

	buf.Reset()
	if err := SPDX(&buf, inv); err != nil {
		t.Fatal(err)
	}
	golden(t, "rootfs.spdx.json", buf.Bytes())
	doc, err := spdxjson.Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	purls := 0
	for _, p := range doc.Packages {
		for _, r := range p.PackageExternalReferences {
			if r.RefType == "purl" {
				purls++
			}
		}
	}
	if doc.SPDXVersion != "SPDX-2.3" || purls != len(inv.Packages) {
		t.Errorf("spdx: version %s, %d purls for %d packages", doc.SPDXVersion, purls, len(inv.Packages))
	}
}

// An SBOM Vigil wrote reads back as the same packages.
func TestSBOMRoundTrip(t *testing.T) {
	inv := fixtureInventory(t)
	for _, format := range []string{"cdx", "spdx"} {
		var buf bytes.Buffer
		var err error
		if format == "cdx" {
			err = CycloneDX(&buf, inv)
		} else {
			err = SPDX(&buf, inv)
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "sbom.json")
		os.WriteFile(p, buf.Bytes(), 0o644)
		tg, err := source.Open(context.Background(), p, source.Options{})
		if err != nil {
			t.Fatal(err)
		}
		back, err := collect.Collect(context.Background(), tg, collect.Options{})
		tg.Close()
		if err != nil {
			t.Fatal(err)
		}
		if back.Target.Type != vigil.TargetSBOM {
			t.Errorf("%s read as %+v", format, back.Target)
		}
		// Everything matching needs survives: ecosystems, source
		// packages, ownership, paths, the OS.
		key := func(p vigil.Package) string {
			return strings.Join([]string{p.Ecosystem, p.Name, p.Version, p.SourceName, p.SourceVersion, p.OwnedBy, p.Path}, "|")
		}
		want := map[string]bool{}
		for _, p := range inv.Packages {
			want[key(p)] = true
		}
		got := map[string]bool{}
		for _, p := range back.Packages {
			got[key(p)] = true
		}
		for k := range want {
			if !got[k] {
				t.Errorf("%s: %s lost in the round trip (got %v)", format, k, got)
			}
		}
		if back.OS == nil || back.OS.Ecosystem != "Debian:12" {
			t.Errorf("%s: os %+v", format, back.OS)
		}
	}
}
