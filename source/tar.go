package source

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// walkTar streams a tar (an image layer) and calls fn for each entry. The
// content of an entry can be read only during its callback.
func walkTar(ctx context.Context, r io.Reader, lim Limits, warn func(string), fn WalkFunc) error {
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		p, ok := cleanPath(hdr.Name)
		if !ok {
			warn(fmt.Sprintf("tar entry %q escapes the root: skipped", clip(hdr.Name)))
			continue
		}
		if p == "." {
			continue
		}
		e := &Entry{Path: p, Size: hdr.Size, Mode: hdr.FileInfo().Mode(), ModTime: hdr.ModTime}
		if t, target, ok := whiteout(p); ok {
			e.Type, e.Path = t, target
			if err := fn(e, nil); err != nil {
				return err
			}
			continue
		}
		var open Opener
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
			e.Type = TypeFile
			if hdr.Size > lim.MaxFileBytes {
				warn(fmt.Sprintf("%s: %d bytes, over the %d byte file limit: skipped", p, hdr.Size, lim.MaxFileBytes))
				continue
			}
			used := false
			open = func() (io.ReadCloser, error) {
				if used {
					return nil, errors.New("tar entry opened twice")
				}
				used = true
				return io.NopCloser(io.LimitReader(tr, lim.MaxFileBytes)), nil
			}
		case tar.TypeDir:
			e.Type = TypeDir
		case tar.TypeSymlink:
			e.Type, e.Link = TypeSymlink, hdr.Linkname
			e.Mode |= fs.ModeSymlink
		case tar.TypeLink:
			target, ok := cleanPath(hdr.Linkname)
			if !ok {
				warn(fmt.Sprintf("hard link %s -> %q escapes the root: skipped", p, clip(hdr.Linkname)))
				continue
			}
			e.Type, e.Link = TypeHardlink, target
		default:
			e.Type = TypeOther
		}
		if err := fn(e, open); err != nil {
			return err
		}
	}
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}
