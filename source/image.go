package source

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"runtime"
	"slices"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/vigil-project/vigil"
)

// rawOpener opens layer i's blob as stored: compressed or not.
type rawOpener func(i int, l v1.Layer) (io.ReadCloser, error)

// storedBlob reads a layer's blob as the registry or layout stores it.
func storedBlob(_ int, l v1.Layer) (io.ReadCloser, error) { return l.Compressed() }

// blobInfo gives a layer's blob digest and size, when they are known
// without reading it.
type blobInfo func(i int, l v1.Layer) (digest string, size int64)

// manifestBlob reads them from the manifest (registries, OCI layouts).
func manifestBlob(_ int, l v1.Layer) (string, int64) {
	var d string
	if h, err := l.Digest(); err == nil {
		d = h.String()
	}
	s, _ := l.Size()
	return d, s
}

// imageTarget describes a v1.Image and walks its layers: each blob is
// decompressed as it streams past (gzip, zstd or none, by its magic), and
// its diff id checked against the image config as it is read, so a layer is
// read once and never written to disk.
func imageTarget(img v1.Image, info vigil.TargetInfo, lim Limits, raw rawOpener, blob blobInfo) (*Target, error) {
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image: read config: %w", err)
	}
	if cfg == nil {
		return nil, errors.New("image: no config")
	}
	id, err := img.ConfigName()
	if err != nil {
		return nil, fmt.Errorf("image: config digest: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("image: layers: %w", err)
	}
	ii := &vigil.ImageInfo{
		ID:           id.String(),
		Architecture: cfg.Architecture,
		OS:           cfg.OS,
		Created:      cfg.Created.Time.UTC(),
		User:         cfg.Config.User,
		Env:          cfg.Config.Env,
		Entrypoint:   cfg.Config.Entrypoint,
		Cmd:          cfg.Config.Cmd,
		WorkingDir:   cfg.Config.WorkingDir,
		Labels:       cfg.Config.Labels,
		Layers:       []vigil.LayerInfo{},
	}
	if info.Format != "docker-archive" {
		// A docker-archive has no manifest digest of its own; computing
		// one would mean compressing its layers.
		if d, err := img.Digest(); err == nil {
			ii.Digest = d.String()
		}
	}
	for p := range cfg.Config.ExposedPorts {
		ii.ExposedPorts = append(ii.ExposedPorts, p)
	}
	sort.Strings(ii.ExposedPorts)
	// History entries with empty_layer have no layer.
	var createdBy []string
	for _, h := range cfg.History {
		if !h.EmptyLayer {
			createdBy = append(createdBy, h.CreatedBy)
		}
	}
	t := &Target{Info: info, Image: ii}
	if len(cfg.RootFS.DiffIDs) != len(layers) {
		return nil, fmt.Errorf("image: the config lists %d layers, the manifest %d", len(cfg.RootFS.DiffIDs), len(layers))
	}
	var total int64
	for i, l := range layers {
		diffID := cfg.RootFS.DiffIDs[i]
		li := vigil.LayerInfo{DiffID: diffID.String()}
		li.Digest, li.Size = blob(i, l)
		if i < len(createdBy) && len(createdBy) == len(layers) {
			li.CreatedBy = createdBy[i]
		}
		ii.Layers = append(ii.Layers, li)
		layer, index := l, i
		compressed := li.Size
		t.Layers = append(t.Layers, Layer{
			DiffID:    li.DiffID,
			CreatedBy: li.CreatedBy,
			Walk: func(ctx context.Context, warn func(string), fn WalkFunc) error {
				rc, err := raw(index, layer)
				if err != nil {
					return fmt.Errorf("layer %s: %w", li.DiffID, err)
				}
				defer rc.Close()
				limit := lim.MaxTotalBytes - total
				if compressed > 0 && lim.MaxRatio > 0 {
					limit = min(limit, max(compressed*lim.MaxRatio, lim.MinRatioBytes))
				}
				var n int64
				err = walkBlob(ctx, rc, diffID, limit, &n, lim, warn, fn)
				total += n
				if err != nil {
					return fmt.Errorf("layer %s: %w", li.DiffID, err)
				}
				return nil
			},
		})
	}
	return t, nil
}

// openDockerArchive opens what `docker save` writes.
func openDockerArchive(p string, lim Limits) (*Target, error) {
	opener := func() (io.ReadCloser, error) { return os.Open(p) }
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, fmt.Errorf("docker-archive %s: %w", p, err)
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("docker-archive %s: manifest.json lists no image", p)
	}
	var tag *name.Tag
	if len(m) > 1 {
		if len(m[0].RepoTags) == 0 {
			return nil, fmt.Errorf("docker-archive %s: holds %d images; scanning the first needs a tag", p, len(m))
		}
		t, err := name.NewTag(m[0].RepoTags[0])
		if err != nil {
			return nil, fmt.Errorf("docker-archive %s: %w", p, err)
		}
		tag = &t
	}
	img, err := tarball.Image(opener, tag)
	if err != nil {
		return nil, fmt.Errorf("docker-archive %s: %w", p, err)
	}
	// Layers are read in place from the archive, by their member name.
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	members, err := indexTar(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("docker-archive %s: %w", p, err)
	}
	o := &ociTar{f: f, members: members}
	layerNames := m[0].Layers
	if tag != nil {
		for _, d := range m {
			if slices.Contains(d.RepoTags, tag.String()) || slices.Contains(d.RepoTags, tag.Name()) {
				layerNames = d.Layers
			}
		}
	}
	raw := func(i int, _ v1.Layer) (io.ReadCloser, error) {
		if i >= len(layerNames) {
			return nil, fmt.Errorf("manifest.json lists %d layers", len(layerNames))
		}
		r, err := o.open(layerNames[i])
		if err != nil {
			return nil, err
		}
		return io.NopCloser(r), nil
	}
	// A docker-archive's layers may be stored uncompressed: their registry
	// digest is not known (computing it would mean compressing them).
	archived := func(i int, _ v1.Layer) (string, int64) {
		if i < len(layerNames) {
			if m, ok := members[path.Clean(layerNames[i])]; ok {
				return "", m[1]
			}
		}
		return "", 0
	}
	t, err := imageTarget(img, vigil.TargetInfo{Type: vigil.TargetImage, Name: p, Format: "docker-archive"}, lim, raw, archived)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("docker-archive %s: %w", p, err)
	}
	t.closers = append(t.closers, f.Close)
	t.Image.RepoTags = m[0].RepoTags
	if len(m) > 1 {
		t.Warnings = append(t.Warnings, fmt.Sprintf("the archive holds %d images: only %s was read", len(m), m[0].RepoTags[0]))
	}
	// A docker-archive's manifest digest is not known: the image ID is.
	t.Image.Digest = ""
	return t, nil
}

// openOCILayout opens an OCI image layout directory.
func openOCILayout(dir string, lim Limits) (*Target, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("oci-layout %s: %w", dir, err)
	}
	img, refs, err := pickImage(idx)
	if err != nil {
		return nil, fmt.Errorf("oci-layout %s: %w", dir, err)
	}
	t, err := imageTarget(img, vigil.TargetInfo{Type: vigil.TargetImage, Name: dir, Format: "oci-layout"}, lim, storedBlob, manifestBlob)
	if err != nil {
		return nil, fmt.Errorf("oci-layout %s: %w", dir, err)
	}
	t.Image.RepoTags = refs
	return t, nil
}

// pickImage chooses the image of an index: this machine's platform, else
// linux/amd64, else the first; nested indexes are followed.
func pickImage(idx v1.ImageIndex) (v1.Image, []string, error) {
	for depth := 0; depth < 4; depth++ {
		m, err := idx.IndexManifest()
		if err != nil {
			return nil, nil, err
		}
		if len(m.Manifests) == 0 {
			return nil, nil, errors.New("the index lists no image")
		}
		best := -1
		for _, want := range []v1.Platform{{OS: "linux", Architecture: runtime.GOARCH}, {OS: "linux", Architecture: "amd64"}} {
			for i, d := range m.Manifests {
				if d.Platform != nil && d.Platform.OS == want.OS && d.Platform.Architecture == want.Architecture {
					best = i
					break
				}
			}
			if best >= 0 {
				break
			}
		}
		if best < 0 {
			best = 0
		}
		d := m.Manifests[best]
		var refs []string
		if r := d.Annotations["org.opencontainers.image.ref.name"]; r != "" {
			refs = append(refs, r)
		}
		if r := d.Annotations["io.containerd.image.name"]; r != "" && !slices.Contains(refs, r) {
			refs = append(refs, r)
		}
		switch d.MediaType {
		case types.OCIImageIndex, types.DockerManifestList:
			if idx, err = idx.ImageIndex(d.Digest); err != nil {
				return nil, nil, err
			}
			continue
		}
		img, err := idx.Image(d.Digest)
		return img, refs, err
	}
	return nil, nil, errors.New("indexes nested too deep")
}

// openRegistry pulls an image's manifest and config from a registry, with
// the standard Docker credential configuration; layers are streamed when
// walked.
func openRegistry(ctx context.Context, ref string, insecure bool, auth authn.Authenticator, tr http.RoundTripper, lim Limits) (*Target, error) {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("registry: %q is not an image reference: %w", ref, err)
	}
	platform := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	authOpt := remote.WithAuthFromKeychain(authn.DefaultKeychain)
	if auth != nil {
		authOpt = remote.WithAuth(auth)
	}
	ropts := []remote.Option{remote.WithContext(ctx), authOpt, remote.WithPlatform(platform)}
	if tr != nil {
		ropts = append(ropts, remote.WithTransport(tr))
	}
	img, err := remote.Image(r, ropts...)
	if err != nil {
		return nil, fmt.Errorf("registry: %s: %w", ref, err)
	}
	t, err := imageTarget(img, vigil.TargetInfo{Type: vigil.TargetImage, Name: ref, Format: "registry"}, lim, storedBlob, manifestBlob)
	if err != nil {
		return nil, fmt.Errorf("registry: %s: %w", ref, err)
	}
	if _, ok := r.(name.Tag); ok {
		t.Image.RepoTags = []string{r.Name()}
	}
	if t.Image.Digest != "" {
		t.Image.RepoDigests = []string{r.Context().Name() + "@" + t.Image.Digest}
	}
	return t, nil
}

// ociTar is an OCI image layout inside a tar file, read in place: an index
// of member offsets, and blobs as sections of the file.
type ociTar struct {
	f       *os.File
	members map[string][2]int64 // name -> offset, size
}

func indexTar(f *os.File) (map[string][2]int64, error) {
	members := map[string][2]int64{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return members, nil
		}
		if err != nil {
			return nil, err
		}
		if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeRegA {
			continue
		}
		off, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, err
		}
		p, ok := cleanPath(hdr.Name)
		if ok {
			members[p] = [2]int64{off, hdr.Size}
		}
	}
}

func (o *ociTar) open(p string) (*io.SectionReader, error) {
	m, ok := o.members[path.Clean(p)]
	if !ok {
		return nil, fmt.Errorf("%s: not in the archive", p)
	}
	return io.NewSectionReader(o.f, m[0], m[1]), nil
}

func (o *ociTar) read(p string, limit int64) ([]byte, error) {
	r, err := o.open(p)
	if err != nil {
		return nil, err
	}
	if r.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes: %w", p, r.Size(), ErrLimit)
	}
	return io.ReadAll(r)
}

func (o *ociTar) blobPath(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

// openOCITar opens an OCI image layout archived as a tar.
func openOCITar(p string, lim Limits) (*Target, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	members, err := indexTar(f)
	if err != nil {
		return nil, fmt.Errorf("oci-layout %s: %w", p, err)
	}
	o := &ociTar{f: f, members: members}
	raw, err := o.read("index.json", 16<<20)
	if err != nil {
		return nil, fmt.Errorf("oci-layout %s: %w", p, err)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("oci-layout %s: index.json: %w", p, err)
	}
	// Follow the index to one image manifest.
	var desc *v1.Descriptor
	for depth := 0; depth < 4 && desc == nil; depth++ {
		if len(idx.Manifests) == 0 {
			return nil, fmt.Errorf("oci-layout %s: the index lists no image", p)
		}
		d := idx.Manifests[0]
		for _, c := range idx.Manifests {
			if c.Platform != nil && c.Platform.OS == "linux" && c.Platform.Architecture == runtime.GOARCH {
				d = c
				break
			}
		}
		switch d.MediaType {
		case types.OCIImageIndex, types.DockerManifestList:
			raw, err := o.read(o.blobPath(d.Digest), 16<<20)
			if err != nil {
				return nil, fmt.Errorf("oci-layout %s: %w", p, err)
			}
			idx = v1.IndexManifest{}
			if err := json.Unmarshal(raw, &idx); err != nil {
				return nil, fmt.Errorf("oci-layout %s: %w", p, err)
			}
		default:
			desc = &d
		}
	}
	if desc == nil {
		return nil, fmt.Errorf("oci-layout %s: indexes nested too deep", p)
	}
	img, err := partial.CompressedToImage(&ociTarImage{o: o, desc: *desc})
	if err != nil {
		return nil, fmt.Errorf("oci-layout %s: %w", p, err)
	}
	t, err := imageTarget(img, vigil.TargetInfo{Type: vigil.TargetImage, Name: p, Format: "oci-layout"}, lim, storedBlob, manifestBlob)
	if err != nil {
		return nil, fmt.Errorf("oci-layout %s: %w", p, err)
	}
	if r := desc.Annotations["org.opencontainers.image.ref.name"]; r != "" {
		t.Image.RepoTags = []string{r}
	}
	t.closers = append(t.closers, f.Close)
	ok = true
	return t, nil
}

type ociTarImage struct {
	o    *ociTar
	desc v1.Descriptor
	man  []byte
}

func (i *ociTarImage) MediaType() (types.MediaType, error) { return i.desc.MediaType, nil }

func (i *ociTarImage) RawManifest() ([]byte, error) {
	if i.man == nil {
		b, err := i.o.read(i.o.blobPath(i.desc.Digest), 16<<20)
		if err != nil {
			return nil, err
		}
		if h, _, err := v1.SHA256(bytes.NewReader(b)); err != nil || h != i.desc.Digest {
			return nil, fmt.Errorf("manifest %s fails its digest", i.desc.Digest)
		}
		i.man = b
	}
	return i.man, nil
}

func (i *ociTarImage) RawConfigFile() ([]byte, error) {
	m, err := partial.Manifest(i)
	if err != nil {
		return nil, err
	}
	return i.o.read(i.o.blobPath(m.Config.Digest), 64<<20)
}

func (i *ociTarImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	m, err := partial.Manifest(i)
	if err != nil {
		return nil, err
	}
	for _, l := range m.Layers {
		if l.Digest == h {
			return &ociTarLayer{o: i.o, desc: l}, nil
		}
	}
	return nil, fmt.Errorf("layer %s not in the manifest", h)
}

type ociTarLayer struct {
	o    *ociTar
	desc v1.Descriptor
}

func (l *ociTarLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *ociTarLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *ociTarLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
func (l *ociTarLayer) Compressed() (io.ReadCloser, error) {
	r, err := l.o.open(l.o.blobPath(l.desc.Digest))
	if err != nil {
		return nil, err
	}
	return io.NopCloser(r), nil
}

// IsImageRef reports whether s names a registry image rather than a path
// that exists: host/repo[:tag|@digest], or a Docker Hub short name such as
// alpine:3.19.
func IsImageRef(s string) bool {
	if _, err := os.Stat(s); err == nil {
		return false
	}
	return isImageRef(s)
}

func isImageRef(s string) bool {
	if strings.HasPrefix(s, "/") || strings.HasPrefix(s, ".") || strings.ContainsAny(s, " \\") {
		return false
	}
	_, err := name.ParseReference(s)
	return err == nil && (strings.Contains(s, "/") || strings.Contains(s, ":") || strings.Contains(s, "@"))
}
