package osv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/vigil-project/vigil/feed"
)

// Known lists the ecosystems of the osv.dev export bucket, used when a
// mirror served over HTTP has no ecosystems.txt to say which it holds.
var Known = []string{
	"AlmaLinux", "Alpaquita", "Alpine", "Android", "BellSoft Hardened Containers", "Bioconductor",
	"Bitnami", "Chainguard", "ConanCenter", "CRAN", "crates.io", "Debian", "GHC", "GIT",
	"GitHub Actions", "Go", "Hackage", "Hex", "Julia", "Linux", "Mageia", "Maven", "MinimOS",
	"npm", "NuGet", "openEuler", "openSUSE", "OSS-Fuzz", "Packagist", "Photon OS", "Pub",
	"PyPI", "Red Hat", "Rocky Linux", "RubyGems", "SUSE", "SwiftURL", "Ubuntu", "Wolfi",
}

// ZipPath is the location of an ecosystem's export below an OSV base.
func ZipPath(base, eco string) string { return feed.Join(base, eco, "all.zip") }

// Ecosystems lists the ecosystems an OSV base holds: the directories that
// have an all.zip for a local base; ecosystems.txt (as osv.dev publishes
// it) for a URL, else the Known list (absent ones are then reported as not
// found). Per-release folders ("Debian:12") are left out where the combined
// one ("Debian") is there, since it holds the same records.
func Ecosystems(ctx context.Context, f *feed.Fetcher, base string) ([]string, error) {
	var ecos []string
	if feed.IsURL(base) {
		data, err := f.ReadSmall(ctx, feed.Join(base, "ecosystems.txt"))
		switch {
		case errors.Is(err, feed.ErrNotFound):
			ecos = slices.Clone(Known)
		case err != nil:
			return nil, fmt.Errorf("osv: list ecosystems: %w", err)
		default:
			for _, line := range strings.Split(string(data), "\n") {
				if line = strings.TrimSpace(line); line != "" && !strings.ContainsAny(line, "/\\") && line != ".." {
					ecos = append(ecos, line)
				}
			}
		}
	} else {
		entries, err := os.ReadDir(base)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("osv: %s: %w", base, feed.ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("osv: list ecosystems: %w", err)
		}
		for _, e := range entries {
			if st, err := os.Stat(ZipPath(base, e.Name())); err == nil && st.Mode().IsRegular() {
				ecos = append(ecos, e.Name())
			}
		}
	}
	out := ecos[:0]
	for _, e := range ecos {
		if i := strings.IndexByte(e, ':'); i > 0 && slices.Contains(ecos, e[:i]) {
			continue
		}
		out = append(out, e)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
