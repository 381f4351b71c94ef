package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"

	"github.com/vigil-project/vigil"
)

// Pseudo and volatile file systems of a live host, never read.
var skipTop = []string{"proc", "sys", "dev", "run"}

// openDir opens a root filesystem directory. Files are read through an
// os.Root, so no symlink, however crafted, leads out of the directory.
func openDir(dir string, lim Limits) (*Target, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("rootfs %s: %w", dir, err)
	}
	t := &Target{Info: vigil.TargetInfo{Type: vigil.TargetRootFS, Name: dir, Format: "directory"}}
	t.closers = append(t.closers, root.Close)
	t.Layers = []Layer{{Walk: func(ctx context.Context, warn func(string), fn WalkFunc) error {
		return walkDir(ctx, root, lim, warn, fn)
	}}}
	return t, nil
}

func walkDir(ctx context.Context, root *os.Root, lim Limits, warn func(string), fn WalkFunc) error {
	fsys := root.FS()
	return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == "." {
				return err
			}
			warn(fmt.Sprintf("%s: %v", p, err))
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		if d.IsDir() && path.Dir(p) == "." && slices.Contains(skipTop, p) {
			return fs.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			warn(fmt.Sprintf("%s: %v", p, err))
			return nil
		}
		e := &Entry{Path: p, Size: info.Size(), Mode: info.Mode(), ModTime: info.ModTime()}
		var open Opener
		switch {
		case d.IsDir():
			e.Type = TypeDir
		case info.Mode()&fs.ModeSymlink != 0:
			e.Type = TypeSymlink
			if target, err := root.Readlink(filepath.FromSlash(p)); err == nil {
				e.Link = target
			}
		case info.Mode().IsRegular():
			e.Type = TypeFile
			if info.Size() > lim.MaxFileBytes {
				warn(fmt.Sprintf("%s: %d bytes, over the %d byte file limit: skipped", p, info.Size(), lim.MaxFileBytes))
				return nil
			}
			open = func() (io.ReadCloser, error) {
				// The file itself: a collector that needs random access reads
				// it in place instead of a copy.
				return root.Open(filepath.FromSlash(p))
			}
		default:
			e.Type = TypeOther
		}
		if err := fn(e, open); err != nil {
			if errors.Is(err, fs.SkipDir) && !d.IsDir() {
				return nil
			}
			return err
		}
		return nil
	})
}

// openFile opens a single file (a lockfile, a binary, an archive) as a
// one-entry target, named by its base name so that collectors recognise it.
func openFile(p string, st os.FileInfo) *Target {
	base := filepath.Base(p)
	t := &Target{Info: vigil.TargetInfo{Type: vigil.TargetFile, Name: p, Format: "file"}}
	t.Layers = []Layer{{Walk: func(ctx context.Context, warn func(string), fn WalkFunc) error {
		e := &Entry{Path: base, Type: TypeFile, Size: st.Size(), Mode: st.Mode(), ModTime: st.ModTime()}
		return fn(e, func() (io.ReadCloser, error) { return os.Open(p) })
	}}}
	return t
}
