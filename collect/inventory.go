package collect

import (
	"bufio"
	"bytes"
	"cmp"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/google/osv-scalibr/extractor"
	requirementsmeta "github.com/google/osv-scalibr/extractor/filesystem/language/python/requirements"
	apkmeta "github.com/google/osv-scalibr/extractor/filesystem/os/apk/metadata"
	dpkgmeta "github.com/google/osv-scalibr/extractor/filesystem/os/dpkg/metadata"
	rpmmeta "github.com/google/osv-scalibr/extractor/filesystem/os/rpm/metadata"
	"github.com/google/osv-scalibr/purl"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/source"
)

// inventory assembles the Inventory from what the layers left.
func (e *engine) inventory(t *source.Target) *vigil.Inventory {
	inv := &vigil.Inventory{
		SchemaVersion: vigil.InventorySchemaVersion,
		Target:        t.Info,
		Image:         t.Image,
		Function:      t.Function,
		Packages:      []vigil.Package{},
	}
	inv.OS = e.os()
	owners := e.owners()
	layerID := func(i int) string {
		if i >= 0 && i < len(t.Layers) {
			return t.Layers[i].DiffID
		}
		return ""
	}
	paths := make([]string, 0, len(e.results))
	for p := range e.results {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		r := e.results[p]
		for i, pkg := range r.pkgs {
			vp, ok := convert(pkg, p, inv.OS)
			if !ok {
				continue
			}
			vp.Layer = layerID(r.layers[i])
			vp.OwnedBy = ownerOf(owners, vp, p)
			inv.Packages = append(inv.Packages, vp)
		}
	}
	if t.Info.Type == vigil.TargetSBOM {
		for _, name := range []string{"sbom.cdx.json", "sbom.spdx.json"} {
			if f, ok := e.v.files[name]; ok && f.data != nil {
				applySBOMHints(inv, f.data)
			}
		}
	}
	inv.Packages = dedup(inv.Packages)
	inv.Digest = digest(inv)
	return inv
}

// os identifies the operating system from the os-release the layers left.
func (e *engine) os() *vigil.OSInfo {
	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		f, err := e.v.Open(p)
		if err != nil {
			continue
		}
		m := parseOSRelease(f)
		f.Close()
		if o := osInfo(m); o != nil {
			return o
		}
	}
	// Alpine before os-release, Debian without it.
	if f, err := e.v.Open("etc/alpine-release"); err == nil {
		defer f.Close()
		b := make([]byte, 64)
		n, _ := f.Read(b)
		v := strings.TrimSpace(string(b[:n]))
		o := &vigil.OSInfo{ID: "alpine", VersionID: v}
		o.Ecosystem = osEcosystem(o, nil)
		return o
	}
	return nil
}

// owners maps each file that an OS package installed to that package:
// from dpkg's info/*.list files and apk's installed database.
func (e *engine) owners() map[string]string {
	owners := map[string]string{}
	for p, f := range e.v.files {
		if f.data != nil && strings.HasPrefix(p, "var/lib/dpkg/info/") && strings.HasSuffix(p, ".list") {
			parseDpkgList(path.Base(p), f.data, owners)
		}
	}
	if f, ok := e.v.files["lib/apk/db/installed"]; ok && f.data != nil {
		parseApkInstalled(f.data, owners)
	}
	return owners
}

// parseDpkgList reads var/lib/dpkg/info/<package>[:<arch>].list: the
// absolute paths of the package's files, one a line.
func parseDpkgList(name string, data []byte, owners map[string]string) {
	pkg := strings.TrimSuffix(name, ".list")
	pkg, _, _ = strings.Cut(pkg, ":") // libssl3:amd64
	if pkg == "" {
		return
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimPrefix(strings.TrimSpace(sc.Text()), "/")
		if line != "" && line != "." {
			owners[line] = pkg
		}
	}
}

// parseApkInstalled reads apk's installed database: stanzas of "K:value"
// lines, P: the package, F: a directory, R: a file in it.
func parseApkInstalled(data []byte, owners map[string]string) {
	var pkg, dir string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			pkg, dir = "", ""
			continue
		}
		if len(line) < 2 || line[1] != ':' {
			continue
		}
		switch line[0] {
		case 'P':
			pkg = line[2:]
		case 'F':
			dir = line[2:]
		case 'R':
			if pkg != "" && line[2:] != "" {
				owners[path.Join(dir, line[2:])] = pkg
			}
		}
	}
}

// ownerOf finds the OS package that installed a language package: the
// owner of its descriptor file, or of its install directory's files.
func ownerOf(owners map[string]string, p vigil.Package, file string) string {
	switch p.Type {
	case purl.TypeDebian, purl.TypeRPM, purl.TypeApk, "":
		return ""
	}
	if o := owners[file]; o != "" {
		return o
	}
	// Nested archive members ("a.jar!/b.jar") belong to the outer file.
	if outer, _, ok := strings.Cut(p.Path, "!"); ok {
		if o := owners[strings.TrimPrefix(outer, "/")]; o != "" {
			return o
		}
	}
	if o := owners[strings.TrimPrefix(p.Path, "/")]; o != "" {
		return o
	}
	return ""
}

// convert turns an extracted package into Vigil's, or drops it.
func convert(pkg *extractor.Package, file string, osi *vigil.OSInfo) (vigil.Package, bool) {
	if pkg.Name == "" {
		return vigil.Package{}, false
	}
	vp := vigil.Package{
		Name:     pkg.Name,
		Version:  pkg.Version,
		Type:     pkg.PURLType,
		Path:     file,
		Licenses: pkg.Licenses,
	}
	if len(pkg.Plugins) > 0 {
		vp.Collector = pkg.Plugins[0]
	}
	if loc := pkg.Location.PathOrEmpty(); loc != "" {
		vp.Path = strings.TrimPrefix(loc, "/")
	}
	osEco := ""
	if osi != nil {
		osEco = osi.Ecosystem
	}
	switch m := pkg.Metadata.(type) {
	case *dpkgmeta.Metadata:
		vp.Name = cmp.Or(m.PackageName, pkg.Name)
		vp.SourceName = cmp.Or(m.SourceName, vp.Name)
		vp.SourceVersion = cmp.Or(m.SourceVersion, vp.Version)
		vp.Ecosystem = osEco
	case *rpmmeta.Metadata:
		if m.Epoch > 0 {
			vp.Version = strconv.Itoa(m.Epoch) + ":" + vp.Version
		}
		vp.SourceName, vp.SourceVersion = splitSourceRPM(m.SourceRPM)
		if vp.SourceVersion != "" && m.Epoch > 0 {
			vp.SourceVersion = strconv.Itoa(m.Epoch) + ":" + vp.SourceVersion
		}
		vp.Ecosystem = osEco
	case *apkmeta.Metadata:
		vp.SourceName = cmp.Or(m.OriginName, vp.Name)
		vp.SourceVersion = vp.Version
		vp.Ecosystem = osEco
	default:
		vp.Ecosystem = pkg.Ecosystem().String()
	}
	// Lockfiles say which dependencies are for development only.
	if dg, ok := pkg.Metadata.(interface{ DepGroups() []string }); ok {
		vp.Dev = slices.Contains(dg.DepGroups(), "dev") && !slices.Contains(dg.DepGroups(), "prod")
	}
	if vp.Type == purl.TypeNPM && vp.Collector == "javascript/packagejson" && !installedPackageJSON(file) {
		// A package.json outside node_modules is a project, not one of its
		// dependencies; one deeper inside a package (a test fixture, a
		// benchmark) is not installed either.
		return vigil.Package{}, false
	}
	if vp.Type == purl.TypeGolang && vp.Name == "go" && vp.Collector == "go/binary" {
		// The toolchain a binary was built with: OSV's "stdlib".
		vp.Name = "stdlib"
		pkg = &extractor.Package{Name: "stdlib", Version: pkg.Version, PURLType: pkg.PURLType}
	}
	if m, ok := pkg.Metadata.(*requirementsmeta.Metadata); ok && m.VersionComparator != "" && m.VersionComparator != "==" && m.VersionComparator != "===" {
		// "requests>=2.0" says what is allowed, not what is installed.
		return vigil.Package{}, false
	}
	if vp.Type == purl.TypeGolang && vp.Version == "(devel)" {
		// The main module of a binary built from a work tree has no version.
		return vigil.Package{}, false
	}
	if u := pkg.PURL(); u != nil {
		if osi != nil && (vp.Type == purl.TypeDebian || vp.Type == purl.TypeRPM || vp.Type == purl.TypeApk) {
			u = osPURL(u, osi)
		} else if vp.Type == purl.TypeNPM {
			// osv-scalibr's "source" qualifier (PUBLIC_REGISTRY, LOCAL) is
			// not part of the npm PURL spec.
			u.Qualifiers = dropQualifier(u.Qualifiers, "source")
		}
		vp.PURL = u.String()
	}
	return vp, true
}

// installedPackageJSON reports whether p is the manifest of an installed
// package: node_modules/<name>/package.json or
// node_modules/@scope/<name>/package.json.
func installedPackageJSON(p string) bool {
	i := strings.LastIndex(p, "node_modules/")
	if i < 0 {
		return false
	}
	parts := strings.Split(p[i+len("node_modules/"):], "/")
	switch len(parts) {
	case 2:
		return parts[1] == "package.json" && !strings.HasPrefix(parts[0], "@")
	case 3:
		return parts[2] == "package.json" && strings.HasPrefix(parts[0], "@")
	}
	return false
}

func dropQualifier(qs purl.Qualifiers, key string) purl.Qualifiers {
	var out purl.Qualifiers
	for _, q := range qs {
		if q.Key != key {
			out = append(out, q)
		}
	}
	return out
}

// osPURL sets the distro qualifier of an OS package's PURL from the OS the
// target ended with.
func osPURL(u *purl.PackageURL, osi *vigil.OSInfo) *purl.PackageURL {
	distro := osi.Codename
	if distro == "" {
		distro = osi.ID + "-" + osi.VersionID
	}
	q := map[string]string{}
	for _, kv := range u.Qualifiers {
		q[kv.Key] = kv.Value
	}
	q["distro"] = distro
	u.Qualifiers = purl.QualifiersFromMap(q)
	if u.Namespace == "" || u.Namespace == "linux" {
		u.Namespace = osi.ID
	}
	return u
}

// splitSourceRPM reads name and version-release from
// "openssl-3.0.7-27.el9.src.rpm".
func splitSourceRPM(s string) (string, string) {
	s = strings.TrimSuffix(s, ".rpm")
	s = strings.TrimSuffix(s, ".src")
	s = strings.TrimSuffix(s, ".nosrc")
	// name-version-release: the last two dashes.
	i := strings.LastIndexByte(s, '-')
	if i <= 0 {
		return "", ""
	}
	j := strings.LastIndexByte(s[:i], '-')
	if j <= 0 {
		return "", ""
	}
	return s[:j], s[j+1:]
}

// npmLockfiles are the collectors of JavaScript lockfiles.
var npmLockfiles = map[string]bool{"javascript/packagelockjson": true, "javascript/yarnlock": true, "javascript/pnpmlock": true}

// dedup drops packages found twice: the same package at the same path
// from two collectors, and npm lockfile entries for projects whose
// node_modules shows what is really installed (a lockfile can list what a
// later layer removed).
func dedup(pkgs []vigil.Package) []vigil.Package {
	installedRoots := map[string]bool{}
	for _, p := range pkgs {
		if p.Type == purl.TypeNPM && p.Collector == "javascript/packagejson" {
			if i := strings.Index(p.Path, "node_modules/"); i >= 0 {
				installedRoots[strings.TrimSuffix(p.Path[:i], "/")] = true
			}
		}
	}
	out := pkgs[:0]
	seen := map[string]bool{}
	for _, p := range pkgs {
		if p.Type == purl.TypeNPM && npmLockfiles[p.Collector] {
			root := path.Dir(p.Path)
			root = strings.TrimSuffix(strings.TrimSuffix(root, "node_modules"), "/") // the hidden lockfile
			if root == "." {
				root = ""
			}
			if installedRoots[root] {
				continue
			}
		}
		k := p.Ecosystem + "\x00" + p.Name + "\x00" + p.Version + "\x00" + p.Path + "\x00" + p.Type
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, p)
	}
	slices.SortStableFunc(out, func(a, b vigil.Package) int {
		return cmp.Or(cmp.Compare(a.Ecosystem, b.Ecosystem), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version), cmp.Compare(a.Path, b.Path))
	})
	return out
}
