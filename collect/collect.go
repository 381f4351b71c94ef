// Package collect turns an opened target into an Inventory. The engine owns
// the walk: it streams each layer once, asks every collector whether it
// wants a file from its path and metadata alone, reads only the files some
// collector wants, honours whiteouts and opaque directories, attributes
// each package to the layer that introduced it, and links language
// packages to the OS package that installed their files.
package collect

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"runtime/debug"
	"strings"
	"time"

	"github.com/google/osv-scalibr/extractor"
	"github.com/google/osv-scalibr/extractor/filesystem"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/source"
)

// Options configures a collection.
type Options struct {
	// Version is the scanner's version, recorded in the inventory.
	Version string
	// Progress, if set, is told how far the walk is.
	Progress func(Progress)
	Now      func() time.Time
	// KeepBytes bounds the content of small wanted files kept for
	// collectors that read beside the file they are handed.
	KeepBytes int64
}

// Progress reports the walk.
type Progress struct {
	Layer, Layers int
	Files, Bytes  int64
}

// Files up to keepSize are kept in memory and handed to their collectors
// at the end of their layer, when every file of the layer is known; larger
// ones (binaries, archives) are handed over as they stream past.
const (
	keepSize  = 8 << 20
	keepAfter = 256 << 10
	// Memory grows with the number of files and packages too: bound them.
	maxKeptFiles = 250_000
	maxPackages  = 1_000_000
	memoryRead   = 64 << 20
	maxWarn      = 100
)

type engine struct {
	exts     []filesystem.Extractor
	opts     Options
	v        *vfs
	results  map[string]*result
	resBelow prefixCount
	pending  []pending
	kept     int64
	warns    []string
	nwarn    int
	stats    vigil.InventoryStats
	layer    int
	layers   int
	tmpDir   string
	// overFiles and packages track the bounds on files and packages.
	overFiles bool
	packages  int
}

// result is what the collectors found in one file.
type result struct {
	layer  int
	pkgs   []*extractor.Package
	layers []int // per package: the layer that introduced it
}

type pending struct {
	path string
	exts []filesystem.Extractor
	prev *result
	info fs.FileInfo
}

// Collect reads the target's inventory.
func Collect(ctx context.Context, t *source.Target, opts Options) (*vigil.Inventory, error) {
	start := time.Now()
	quiet()
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.KeepBytes <= 0 {
		opts.KeepBytes = 256 << 20
	}
	exts, err := Extractors()
	if err != nil {
		return nil, err
	}
	e := &engine{exts: exts, opts: opts, v: newVFS(), results: map[string]*result{}, resBelow: prefixCount{}, layers: len(t.Layers)}
	defer func() {
		if e.tmpDir != "" {
			os.RemoveAll(e.tmpDir)
		}
	}()
	for _, w := range t.Warnings {
		e.warn(w)
	}
	for i, l := range t.Layers {
		e.layer = i
		if err := l.Walk(ctx, e.warn, e.entry(ctx)); err != nil {
			return nil, fmt.Errorf("collect: %w", err)
		}
		e.flush(ctx)
	}
	inv := e.inventory(t)
	inv.Scanner = vigil.ScannerInfo{Name: "vigil", Version: opts.Version}
	for _, x := range exts {
		inv.Scanner.Collectors = append(inv.Scanner.Collectors, vigil.CollectorInfo{Name: x.Name(), Version: x.Version()})
	}
	inv.Collected = opts.Now().UTC()
	e.stats.DurationMS = time.Since(start).Milliseconds()
	inv.Stats = e.stats
	if e.nwarn > len(e.warns) {
		e.warns = append(e.warns, fmt.Sprintf("… and %d more warnings", e.nwarn-len(e.warns)))
	}
	inv.Warnings = e.warns
	if inv.Warnings == nil {
		inv.Warnings = []string{}
	}
	return inv, nil
}

func (e *engine) warn(s string) {
	if len(s) > 500 {
		// A collector may quote a whole corrupt file.
		s = s[:497] + "..."
	}
	e.nwarn++
	if len(e.warns) < maxWarn {
		e.warns = append(e.warns, s)
	}
}

// removeResults forgets what was found at p (unless below is set) and
// below it, in layers before olderThan.
func (e *engine) removeResults(p string, below bool, olderThan int) {
	if !below {
		e.delResult(p)
	}
	if !e.resBelow.has(p) {
		return
	}
	prefix := p + "/"
	if p == "." {
		prefix = ""
	}
	for k, r := range e.results {
		if strings.HasPrefix(k, prefix) && r.layer < olderThan {
			e.delResult(k)
		}
	}
}

func (e *engine) delResult(p string) {
	if _, ok := e.results[p]; ok {
		delete(e.results, p)
		e.resBelow.add(p, -1)
	}
}

func (e *engine) putResult(p string, r *result) {
	e.delResult(p)
	e.results[p] = r
	e.resBelow.add(p, 1)
}

// keepPath reports files the engine itself reads: the OS identity and the
// file lists of OS packages (for ownership).
func keepPath(p string) bool {
	switch p {
	case "etc/os-release", "usr/lib/os-release", "etc/debian_version", "etc/alpine-release", "lib/apk/db/installed":
		return true
	}
	return strings.HasPrefix(p, "var/lib/dpkg/info/") && strings.HasSuffix(p, ".list")
}

type fileAPI struct {
	p    string
	info fs.FileInfo
}

func (f fileAPI) Path() string               { return f.p }
func (f fileAPI) Stat() (fs.FileInfo, error) { return f.info, nil }

func (e *engine) entry(ctx context.Context) source.WalkFunc {
	return func(en *source.Entry, open source.Opener) error {
		p := en.Path
		switch en.Type {
		case source.TypeWhiteout:
			e.v.remove(p, false)
			e.removeResults(p, false, e.layer+1)
			return nil
		case source.TypeOpaque:
			e.v.removeBelowFrom(p, e.layer)
			e.removeResults(p, true, e.layer)
			return nil
		case source.TypeDir:
			// A directory replaces a file or link of that name, not what is
			// below it.
			e.v.del(p)
			e.delResult(p)
			return nil
		case source.TypeSymlink:
			e.v.remove(p, false)
			e.removeResults(p, false, e.layer+1)
			e.v.putLink(p, en.Link)
			return nil
		case source.TypeHardlink:
			// The same content as a file already seen: found there, not
			// again; what was at p before is gone.
			e.v.remove(p, false)
			e.removeResults(p, false, e.layer+1)
			if f, ok := e.v.files[en.Link]; ok && f.data != nil {
				e.v.putFile(p, &vfile{data: f.data, size: f.size, mode: f.mode, modTime: f.modTime, layer: e.layer})
			}
			return nil
		case source.TypeFile:
		default:
			// A device, FIFO or socket replaces what was at p.
			e.v.remove(p, false)
			e.removeResults(p, false, e.layer+1)
			return nil
		}
		e.stats.Files++
		if e.opts.Progress != nil && e.stats.Files%2048 == 0 {
			e.opts.Progress(Progress{Layer: e.layer, Layers: e.layers, Files: e.stats.Files, Bytes: e.stats.Bytes})
		}
		prev := e.results[p]
		// A file replaces what was at p, and a directory's content if p was
		// one in a lower layer.
		e.v.remove(p, false)
		e.removeResults(p, false, e.layer+1)
		info := fileInfo{name: path.Base(p), size: en.Size, mode: en.Mode, modTime: en.ModTime}
		api := fileAPI{p: p, info: info}
		var wanted []filesystem.Extractor
		for _, x := range e.exts {
			if required(x, api) {
				wanted = append(wanted, x)
			}
		}
		keep := keepPath(p)
		if len(wanted) == 0 && !keep {
			return nil
		}
		if open == nil {
			return nil
		}
		rc, err := open()
		if err != nil {
			e.warn(fmt.Sprintf("%s: %v", p, err))
			return nil
		}
		defer rc.Close()
		// Over a limit, the whole target is refused: reading on would only
		// feed a decompression bomb.
		fatal := func(err error) error {
			if errors.Is(err, source.ErrLimit) {
				return err
			}
			e.warn(fmt.Sprintf("%s: %v", p, err))
			return nil
		}
		if len(e.v.files) >= maxKeptFiles {
			if !e.overFiles {
				e.overFiles = true
				e.warn(fmt.Sprintf("more than %d files to read: the rest are skipped", maxKeptFiles))
			}
			return nil
		}
		if en.Size <= keepSize && e.kept+en.Size <= e.opts.KeepBytes && (keep || needsContext(wanted)) {
			data, err := io.ReadAll(io.LimitReader(rc, keepSize+1))
			if err != nil {
				return fatal(err)
			}
			e.stats.Bytes += int64(len(data))
			e.kept += int64(len(data))
			e.v.putFile(p, &vfile{data: data, size: int64(len(data)), mode: en.Mode, modTime: en.ModTime, layer: e.layer})
			if len(wanted) > 0 {
				e.pending = append(e.pending, pending{path: p, exts: wanted, prev: prev, info: info})
			}
			return nil
		}
		if len(wanted) == 0 {
			return nil
		}
		// A large file: hand it over now, from memory or a temporary file.
		e.v.putFile(p, &vfile{size: en.Size, mode: en.Mode, modTime: en.ModTime, layer: e.layer})
		r, size, cleanup, err := e.buffer(rc, en.Size)
		if err != nil {
			return fatal(err)
		}
		defer cleanup()
		e.stats.Bytes += size
		e.extract(ctx, p, info, r, wanted, prev)
		return nil
	}
}

// buffer makes a streamed file readable at random: in memory when it is
// small enough, else in a private temporary file.
func (e *engine) buffer(r io.Reader, size int64) (readerAtSeeker, int64, func(), error) {
	if f, ok := r.(*os.File); ok {
		// A file on disk (a root filesystem's) is read in place.
		return f, size, func() {}, nil
	}
	if size <= memoryRead {
		data, err := io.ReadAll(r)
		if err != nil {
			return nil, 0, nil, err
		}
		return newMemFile(data), int64(len(data)), func() {}, nil
	}
	if e.tmpDir == "" {
		dir, err := os.MkdirTemp("", "vigil-collect-")
		if err != nil {
			return nil, 0, nil, err
		}
		e.tmpDir = dir
	}
	f, err := os.CreateTemp(e.tmpDir, "file-")
	if err != nil {
		return nil, 0, nil, err
	}
	n, err := io.Copy(f, r)
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, 0, nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, 0, nil, err
	}
	return f, n, func() { f.Close(); os.Remove(f.Name()) }, nil
}

type readerAtSeeker interface {
	io.Reader
	io.ReaderAt
	io.Seeker
}

// flush hands the kept files of the layer just walked to their collectors.
func (e *engine) flush(ctx context.Context) {
	for _, pd := range e.pending {
		f, ok := e.v.files[pd.path]
		if !ok || f.layer != e.layer || f.data == nil {
			continue // removed or replaced later in the same layer
		}
		e.extract(ctx, pd.path, pd.info, newMemFile(f.data), pd.exts, pd.prev)
		if len(f.data) > keepAfter && !keepPath(pd.path) {
			// Handed over; too large to be worth keeping for collectors that
			// read beside their file.
			e.kept -= int64(len(f.data))
			f.data = nil
		}
	}
	e.pending = e.pending[:0]
	if e.opts.Progress != nil {
		e.opts.Progress(Progress{Layer: e.layer + 1, Layers: e.layers, Files: e.stats.Files, Bytes: e.stats.Bytes})
	}
}

// Collectors that read only the file they are handed (binaries and
// archives) get it as it streams past; the others get it at the end of its
// layer, when the files beside it are known.
var selfContained = map[string]bool{"go/binary": true, "rust/cargoauditable": true, "java/archive": true}

func needsContext(exts []filesystem.Extractor) bool {
	for _, x := range exts {
		if !selfContained[x.Name()] {
			return true
		}
	}
	return false
}

// Content checks that spare collectors files they would reject anyway:
// only Go binaries carry Go build info, only cargo-auditable ones a
// .dep-v0 section.
var prefilter = map[string][]byte{
	"go/binary":           []byte("\xff Go buildinf:"),
	"rust/cargoauditable": []byte(".dep-v0"),
}

func (e *engine) extract(ctx context.Context, p string, info fs.FileInfo, r readerAtSeeker, exts []filesystem.Extractor, prev *result) {
	res := &result{layer: e.layer}
	for _, x := range exts {
		if magic, ok := prefilter[x.Name()]; ok && !contains(r, magic) {
			continue
		}
		if _, err := r.Seek(0, io.SeekStart); err != nil {
			e.warn(fmt.Sprintf("%s: %v", p, err))
			return
		}
		inv, err := safeExtract(ctx, x, &filesystem.ScanInput{FS: e.v, Path: p, Info: info, Reader: r})
		if err != nil {
			e.warn(fmt.Sprintf("%s: %s: %v", p, x.Name(), err))
		}
		for _, pkg := range inv.Packages {
			if len(pkg.Plugins) == 0 {
				pkg.Plugins = []string{x.Name()}
			}
			res.pkgs = append(res.pkgs, pkg)
		}
	}
	e.stats.Extracted++
	if len(res.pkgs) == 0 {
		return
	}
	if e.packages+len(res.pkgs) > maxPackages {
		e.warn(fmt.Sprintf("%s: more than %d packages in all: not recorded", p, maxPackages))
		return
	}
	e.packages += len(res.pkgs)
	// A package that was in the previous version of the file keeps the
	// layer that introduced it.
	for _, pkg := range res.pkgs {
		l := e.layer
		if prev != nil {
			for i, old := range prev.pkgs {
				if old.Name == pkg.Name && old.Version == pkg.Version && old.PURLType == pkg.PURLType {
					l = prev.layers[i]
					break
				}
			}
		}
		res.layers = append(res.layers, l)
	}
	e.putResult(p, res)
}

// safeExtract runs a collector, turning its panic into an error.
func safeExtract(ctx context.Context, x filesystem.Extractor, in *filesystem.ScanInput) (inv inventoryResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("collector panicked: %v\n%s", r, firstLines(string(debug.Stack()), 8))
		}
	}()
	got, err := x.Extract(ctx, in)
	return inventoryResult{Packages: got.Packages}, err
}

type inventoryResult struct{ Packages []*extractor.Package }

func required(x filesystem.Extractor, api fileAPI) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return x.FileRequired(api)
}

// memFile is file content in memory.
type memFile struct {
	*bytes.Reader
	data []byte
}

func newMemFile(data []byte) *memFile { return &memFile{Reader: bytes.NewReader(data), data: data} }

func contains(r io.ReaderAt, magic []byte) bool {
	if m, ok := r.(*memFile); ok {
		return bytes.Contains(m.data, magic)
	}
	buf := make([]byte, 1<<20)
	var off int64
	for {
		n, err := r.ReadAt(buf, off)
		if bytes.Contains(buf[:n], magic) {
			return true
		}
		if err != nil || n == 0 {
			return false
		}
		off += int64(n - len(magic))
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// digest identifies an inventory's content.
func digest(inv *vigil.Inventory) string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	_ = enc.Encode(inv.Target.Type)
	_ = enc.Encode(inv.OS)
	if inv.Image != nil {
		_ = enc.Encode(inv.Image.ID)
	}
	for _, p := range inv.Packages {
		_ = enc.Encode([]string{p.Ecosystem, p.Name, p.Version, p.SourceName, p.SourceVersion, p.Path, p.Layer, p.OwnedBy, p.PURL})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
