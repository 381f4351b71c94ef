package source

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/vigil-project/vigil"
)

// Target kinds that --type accepts.
var Types = []string{"rootfs", "image", "docker-archive", "oci-layout", "registry", "function", "file", "sbom"}

// Options says how to open a target.
type Options struct {
	// Type forces the kind of target (one of Types); empty detects it.
	Type string
	// Runtime of a function package (nodejs20.x, python3.12, java21,
	// provided.al2023, …); inferred from its files when empty.
	Runtime string
	// Layers are a function's layer zips.
	Layers []string
	// Insecure allows plain-HTTP registries.
	Insecure bool
	// Auth authenticates to the registry; nil uses the standard Docker
	// credential configuration.
	Auth authn.Authenticator
	// Transport, when set, carries the registry's requests.
	Transport http.RoundTripper
	Limits    Limits
}

// Open opens a target: a directory, an archive, a file, or a registry
// reference.
func Open(ctx context.Context, ref string, opts Options) (*Target, error) {
	if opts.Limits == (Limits{}) {
		opts.Limits = DefaultLimits
	}
	if opts.Type != "" && !contains(Types, opts.Type) {
		return nil, vigil.Errorf(vigil.EINVALID, "unknown target type %q (want one of %s)", opts.Type, strings.Join(Types, ", "))
	}
	if len(opts.Layers) > 0 && opts.Type != "" && opts.Type != "function" {
		return nil, vigil.Errorf(vigil.EINVALID, "layers are for function packages, not %s targets", opts.Type)
	}
	if opts.Type == "registry" {
		return openRegistry(ctx, ref, opts.Insecure, opts.Auth, opts.Transport, opts.Limits)
	}
	st, err := os.Stat(ref)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && (opts.Type == "" || opts.Type == "image") && isImageRef(ref) && !looksLikePath(ref) {
			return openRegistry(ctx, ref, opts.Insecure, opts.Auth, opts.Transport, opts.Limits)
		}
		if errors.Is(err, os.ErrNotExist) {
			return nil, vigil.Errorf(vigil.EINVALID, "%s: no such file or directory, and not an image reference", ref)
		}
		return nil, vigil.Errorf(vigil.EINVALID, "%s: %v", ref, err)
	}
	if st.IsDir() {
		isLayout := fileExists(filepath.Join(ref, "oci-layout")) && fileExists(filepath.Join(ref, "index.json"))
		switch opts.Type {
		case "", "image", "oci-layout":
			if isLayout {
				return openOCILayout(ref, opts.Limits)
			}
			if opts.Type != "" {
				return nil, vigil.Errorf(vigil.EINVALID, "%s: not an OCI image layout (no oci-layout and index.json)", ref)
			}
			return openDir(ref, opts.Limits)
		case "rootfs":
			return openDir(ref, opts.Limits)
		}
		return nil, vigil.Errorf(vigil.EINVALID, "%s is a directory, not a %s", ref, opts.Type)
	}
	if !st.Mode().IsRegular() {
		return nil, vigil.Errorf(vigil.EINVALID, "%s: not a regular file or directory", ref)
	}
	f, err := os.Open(ref)
	if err != nil {
		return nil, vigil.Errorf(vigil.EINVALID, "%s: %v", ref, err)
	}
	kind := opts.Type
	if kind == "" || kind == "image" {
		kind, err = detect(f, ref)
		if err != nil {
			f.Close()
			return nil, vigil.Errorf(vigil.EINVALID, "%s: %v", ref, err)
		}
		if opts.Type == "image" && kind != "docker-archive" && kind != "oci-layout" {
			f.Close()
			return nil, vigil.Errorf(vigil.EINVALID, "%s: not an image archive (docker-archive or OCI layout)", ref)
		}
		if len(opts.Layers) > 0 && kind == "file" && isZip(f) {
			kind = "function"
		}
	}
	f.Close()
	switch kind {
	case "docker-archive":
		return openDockerArchive(ref, opts.Limits)
	case "oci-layout":
		return openOCITar(ref, opts.Limits)
	case "function":
		t, err := openFunction(ref, opts.Layers, opts.Runtime, opts.Limits)
		if err != nil {
			return nil, vigil.Errorf(vigil.EINVALID, "%v", err)
		}
		if t.Function.Runtime == "" {
			t.Function.Runtime = inferRuntime(append([]string{ref}, opts.Layers...))
		}
		return t, nil
	case "sbom":
		t := openFile(ref, st)
		t.Info.Type, t.Info.Format = vigil.TargetSBOM, sbomFormat(ref)
		// The SBOM collectors recognise documents by name.
		name := "sbom.cdx.json"
		if t.Info.Format == "spdx-json" {
			name = "sbom.spdx.json"
		}
		t.Layers[0] = renamed(t.Layers[0], name)
		return t, nil
	case "file", "rootfs":
		if kind == "rootfs" {
			return nil, vigil.Errorf(vigil.EINVALID, "%s is a file, not a root filesystem directory", ref)
		}
		return openFile(ref, st), nil
	}
	return nil, vigil.Errorf(vigil.EINVALID, "%s: cannot open as %s", ref, kind)
}

// looksLikePath tells a mistyped path (its first element exists here, or it
// has no registry host and no tag) from an image reference.
func looksLikePath(ref string) bool {
	first, _, _ := strings.Cut(ref, "/")
	if _, err := os.Stat(first); err == nil && first != ref {
		return true
	}
	host := strings.ContainsAny(first, ".:") || first == "localhost"
	return strings.Contains(ref, "/") && !host && !strings.ContainsAny(ref, ":@")
}

// detect tells what a file is from its content.
func detect(f *os.File, ref string) (string, error) {
	head := make([]byte, 512)
	n, _ := f.ReadAt(head, 0)
	head = head[:n]
	if isZip(f) {
		switch strings.ToLower(path.Ext(ref)) {
		case ".jar", ".war", ".ear", ".par", ".sar", ".jpi", ".hpi", ".whl", ".egg", ".nupkg":
			return "file", nil
		}
		// A zip with a Java manifest and no function layout is an archive.
		if zr, err := zip.OpenReader(ref); err == nil {
			java := false
			for _, zf := range zr.File {
				if zf.Name == "META-INF/MANIFEST.MF" {
					java = true
				}
			}
			zr.Close()
			if java {
				return "file", nil
			}
		}
		return "function", nil
	}
	if trimmed := bytes.TrimSpace(head); len(trimmed) > 0 && trimmed[0] == '{' {
		if sbomFormat(ref) != "" {
			return "sbom", nil
		}
		return "file", nil
	}
	if isTar(head) {
		names, err := tarNames(f, 4096)
		if err != nil {
			return "", fmt.Errorf("read tar: %w", err)
		}
		switch {
		case names["manifest.json"]:
			return "docker-archive", nil
		case names["oci-layout"] && names["index.json"]:
			return "oci-layout", nil
		}
		return "", errors.New("a tar that is neither a docker-archive (no manifest.json) nor an OCI image layout (no oci-layout and index.json); unpack a root filesystem tar and scan the directory")
	}
	return "file", nil
}

func isTar(head []byte) bool {
	return len(head) >= 262 && string(head[257:262]) == "ustar"
}

// tarNames lists the top-level regular files of a tar, seeking past
// content.
func tarNames(f *os.File, max int) (map[string]bool, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	names := map[string]bool{}
	tr := tar.NewReader(f)
	for i := 0; i < max; i++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if p, ok := cleanPath(hdr.Name); ok && !strings.Contains(p, "/") {
			names[p] = true
		}
	}
	return names, nil
}

// sbomFormat tells an SBOM document's format from its first bytes, or "".
func sbomFormat(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	head := make([]byte, 64<<10)
	n, _ := io.ReadFull(f, head)
	s := string(head[:n])
	switch {
	case strings.Contains(s, `"bomFormat"`) && strings.Contains(s, "CycloneDX"):
		return "cyclonedx-json"
	case strings.Contains(s, `"spdxVersion"`):
		return "spdx-json"
	}
	return ""
}

// inferRuntime guesses a function's runtime family from its files.
func inferRuntime(zips []string) string {
	score := map[string]int{}
	for _, z := range zips {
		zr, err := zip.OpenReader(z)
		if err != nil {
			continue
		}
		for _, f := range zr.File {
			n := f.Name
			switch {
			case strings.Contains(n, "node_modules/") || path.Base(n) == "package.json":
				score["nodejs"]++
			case strings.HasSuffix(n, ".py") || strings.Contains(n, "site-packages/"):
				score["python"]++
			case strings.HasSuffix(n, ".jar") || strings.HasSuffix(n, ".class"):
				score["java"]++
			case strings.HasSuffix(n, ".rb") || path.Base(n) == "Gemfile.lock":
				score["ruby"]++
			case strings.HasSuffix(n, ".dll") || strings.HasSuffix(n, ".deps.json"):
				score["dotnet"]++
			case n == "bootstrap":
				score["provided"] += 1000
			}
		}
		zr.Close()
	}
	best, bestN := "", 0
	for k, n := range score {
		if n > bestN || n == bestN && k < best {
			best, bestN = k, n
		}
	}
	return best
}

func renamed(l Layer, name string) Layer {
	walk := l.Walk
	l.Walk = func(ctx context.Context, warn func(string), fn WalkFunc) error {
		return walk(ctx, warn, func(e *Entry, open Opener) error {
			e.Path = name
			return fn(e, open)
		})
	}
	return l
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
