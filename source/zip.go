package source

import (
	"archive/zip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/vigil-project/vigil"
)

// walkZip walks a zip's members, each mounted below prefix.
func walkZip(ctx context.Context, p, prefix string, lim Limits, total *int64, warn func(string), fn WalkFunc) error {
	zr, err := zip.OpenReader(p)
	if err != nil {
		return fmt.Errorf("zip %s: %w", p, err)
	}
	defer zr.Close()
	// The whole archive may expand at most MaxRatio-fold (past
	// MinRatioBytes), whatever each member claims.
	var size int64
	if st, err := os.Stat(p); err == nil {
		size = st.Size()
	}
	budget := lim.MaxTotalBytes - *total
	if lim.MaxRatio > 0 {
		budget = min(budget, max(size*lim.MaxRatio, lim.MinRatioBytes))
	}
	var read int64
	defer func() { *total += read }()
	for _, f := range zr.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		name, ok := cleanPath(f.Name)
		if !ok {
			warn(fmt.Sprintf("%s: zip member %q escapes the root: skipped", p, clip(f.Name)))
			continue
		}
		if name == "." {
			continue
		}
		full := path.Join(prefix, name)
		mode := f.Mode()
		e := &Entry{Path: full, Size: int64(f.UncompressedSize64), Mode: mode, ModTime: f.Modified}
		var open Opener
		switch {
		case mode.IsDir() || strings.HasSuffix(f.Name, "/"):
			e.Type = TypeDir
		case mode&fs.ModeSymlink != 0:
			// A zip symlink's content is its target.
			rc, err := f.Open()
			if err != nil {
				warn(fmt.Sprintf("%s: %s: %v", p, name, err))
				continue
			}
			target, err := io.ReadAll(io.LimitReader(rc, 4096))
			rc.Close()
			if err != nil {
				warn(fmt.Sprintf("%s: %s: %v", p, name, err))
				continue
			}
			e.Type, e.Link = TypeSymlink, string(target)
		case mode.IsRegular():
			e.Type = TypeFile
			size := int64(f.UncompressedSize64)
			if size > lim.MaxFileBytes {
				warn(fmt.Sprintf("%s: %s: %d bytes, over the %d byte file limit: skipped", p, name, size, lim.MaxFileBytes))
				continue
			}
			if lim.MaxRatio > 0 && size > lim.MinRatioBytes && int64(f.CompressedSize64)*lim.MaxRatio < size {
				warn(fmt.Sprintf("%s: %s: expands %d bytes to %d, a decompression bomb: skipped", p, name, f.CompressedSize64, size))
				continue
			}
			member := f
			open = func() (io.ReadCloser, error) {
				rc, err := member.Open()
				if err != nil {
					return nil, err
				}
				// The declared size bounds what is read, whatever the stream
				// holds; the budget bounds the whole archive.
				cr := &countingReader{r: io.LimitReader(rc, size), n: &read, limit: budget, what: p}
				return struct {
					io.Reader
					io.Closer
				}{cr, rc}, nil
			}
		default:
			e.Type = TypeOther
		}
		if err := fn(e, open); err != nil {
			return err
		}
	}
	return nil
}

// Function runtimes' mount points: the deployment package is at
// /var/task, layers are at /opt.
const (
	functionRoot = "var/task"
	layerRoot    = "opt"
)

func openFunction(p string, layers []string, runtime string, lim Limits) (*Target, error) {
	zips := append([]string{p}, layers...)
	for _, z := range zips {
		r, err := zip.OpenReader(z)
		if err != nil {
			return nil, fmt.Errorf("function package %s: %w", z, err)
		}
		r.Close()
	}
	t := &Target{
		Info:     vigil.TargetInfo{Type: vigil.TargetFunction, Name: p, Format: "zip"},
		Function: &vigil.FunctionInfo{Runtime: runtime, Layers: layers},
	}
	var total int64
	for i, z := range zips {
		prefix := functionRoot
		if i > 0 {
			prefix = layerRoot
		}
		z, prefix := z, prefix
		t.Layers = append(t.Layers, Layer{
			DiffID: "",
			Walk: func(ctx context.Context, warn func(string), fn WalkFunc) error {
				return walkZip(ctx, z, prefix, lim, &total, warn, fn)
			},
		})
	}
	return t, nil
}

// isZip reports whether the file starts like a zip.
func isZip(f *os.File) bool {
	var b [4]byte
	n, _ := f.ReadAt(b[:], 0)
	return n == 4 && string(b[:]) == "PK\x03\x04"
}
