// Package source opens scan targets as layered file systems that can each
// be walked once, in order: a root filesystem directory (one layer), a
// container image (its layers, from a docker-archive tarball, an OCI image
// layout directory or tar, or a registry), a function package (its zip and
// layer zips), a single file, or an SBOM. Nothing is unpacked to disk:
// layers are streamed, and the collector decides which files to read.
package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/vigil-project/vigil"
)

// EntryType says what a layer entry is.
type EntryType int

// Entry types.
const (
	TypeFile EntryType = iota
	TypeDir
	TypeSymlink
	// TypeHardlink: Link is the path of the file it shares content with.
	TypeHardlink
	// TypeWhiteout deletes Path and everything under it from lower layers.
	TypeWhiteout
	// TypeOpaque deletes everything under the directory Path from lower
	// layers.
	TypeOpaque
	TypeOther
)

// Entry is one entry of a layer.
type Entry struct {
	// Path is clean, relative to the root, slash-separated.
	Path    string
	Type    EntryType
	Link    string
	Size    int64
	Mode    fs.FileMode
	ModTime time.Time
}

// Opener opens an entry's content. For streamed layers it is valid only
// during the callback that received it, and may be called once.
type Opener func() (io.ReadCloser, error)

// WalkFunc is called for each entry of a layer, in layer order.
type WalkFunc func(e *Entry, open Opener) error

// Layer is one file system layer of a target.
type Layer struct {
	// DiffID is the digest of the uncompressed layer, for images.
	DiffID    string
	CreatedBy string
	// Walk calls fn for each entry. Problems with single entries (an entry
	// escaping the root, one too large) are reported through warn and
	// skipped; an error ends the walk.
	Walk func(ctx context.Context, warn func(string), fn WalkFunc) error
}

// Target is an opened scan target.
type Target struct {
	Info     vigil.TargetInfo
	Image    *vigil.ImageInfo
	Function *vigil.FunctionInfo
	Layers   []Layer
	Warnings []string
	closers  []func() error
}

// Close releases what the target holds open.
func (t *Target) Close() error {
	var errs []error
	for i := len(t.closers) - 1; i >= 0; i-- {
		errs = append(errs, t.closers[i]())
	}
	return errors.Join(errs...)
}

// Limits bound what reading a target may cost, against hostile archives.
type Limits struct {
	// MaxFileBytes bounds one file's content as read.
	MaxFileBytes int64
	// MaxTotalBytes bounds the uncompressed bytes of a whole target.
	MaxTotalBytes int64
	// MaxRatio bounds the expansion of compressed content (zip members,
	// compressed layers), once past MinRatioBytes.
	MaxRatio      int64
	MinRatioBytes int64
}

// DefaultLimits are generous enough for real images and function
// packages and stop decompression bombs.
var DefaultLimits = Limits{
	MaxFileBytes:  1 << 30,
	MaxTotalBytes: 64 << 30,
	MaxRatio:      200,
	MinRatioBytes: 64 << 20,
}

// ErrLimit reports a target or entry over a limit.
var ErrLimit = errors.New("over the limit")

// cleanPath turns an archive member name into a clean relative path, or
// reports that it escapes the root.
func cleanPath(name string) (string, bool) {
	name = strings.ReplaceAll(name, "\\", "/")
	if strings.HasPrefix(name, "/") {
		// Absolute names are taken relative to the root, never the host's.
		name = strings.TrimLeft(name, "/")
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", false
		}
	}
	p := path.Clean(name)
	if p == "." || p == "" {
		return ".", true
	}
	return p, true
}

// whiteout classifies an OCI whiteout marker.
func whiteout(p string) (EntryType, string, bool) {
	dir, base := path.Split(p)
	if !strings.HasPrefix(base, ".wh.") {
		return 0, "", false
	}
	dir = strings.TrimSuffix(dir, "/")
	if base == ".wh..wh..opq" {
		if dir == "" {
			dir = "."
		}
		return TypeOpaque, dir, true
	}
	return TypeWhiteout, path.Join(dir, strings.TrimPrefix(base, ".wh.")), true
}

// countingReader counts bytes and enforces a cap.
type countingReader struct {
	r     io.Reader
	n     *int64
	limit int64
	what  string
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	if c.limit > 0 && *c.n > c.limit {
		return n, fmt.Errorf("%s: more than %d bytes uncompressed: %w", c.what, c.limit, ErrLimit)
	}
	return n, err
}
