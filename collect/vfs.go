package collect

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"
)

// vfs is the part of a target's file system that collection keeps: the
// files some collector wants (their content, when small) and every
// symbolic link, as they stand after the layers seen so far. It serves
// collectors that read files beside the one they were handed (os-release,
// npm-shrinkwrap.json, go.sum). Links resolve inside the target, never out
// of it.
type vfs struct {
	files map[string]*vfile
	links map[string]string
	// below counts the entries under each directory, so that removing a
	// path sweeps only when something lies below it.
	below prefixCount
	// dirs is derived from files and links, rebuilt when they change.
	dirs  map[string][]string
	dirty bool
}

type vfile struct {
	data    []byte
	size    int64
	mode    fs.FileMode
	modTime time.Time
	layer   int
}

func newVFS() *vfs {
	return &vfs{files: map[string]*vfile{}, links: map[string]string{}, below: prefixCount{}, dirty: true}
}

// putFile records a file at p, replacing what was there.
func (v *vfs) putFile(p string, f *vfile) {
	v.del(p)
	v.files[p] = f
	v.below.add(p, 1)
	v.dirty = true
}

// putLink records a symbolic link at p, replacing what was there.
func (v *vfs) putLink(p, target string) {
	v.del(p)
	v.links[p] = target
	v.below.add(p, 1)
	v.dirty = true
}

// del forgets p itself.
func (v *vfs) del(p string) {
	_, f := v.files[p]
	_, l := v.links[p]
	if f || l {
		delete(v.files, p)
		delete(v.links, p)
		v.below.add(p, -1)
		v.dirty = true
	}
}

// prefixCount counts paths under each directory.
type prefixCount map[string]int

func (c prefixCount) add(p string, n int) {
	for {
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			c["."] += n
			return
		}
		p = p[:i]
		c[p] += n
		if c[p] == 0 {
			delete(c, p)
		}
	}
}

// has reports whether anything lies under dir.
func (c prefixCount) has(dir string) bool { return c[dir] > 0 }

const maxLinkDepth = 40

// remove deletes p (unless below is set) and everything below it.
func (v *vfs) remove(p string, below bool) {
	if !below {
		v.del(p)
	}
	if !v.below.has(p) {
		return
	}
	prefix := p + "/"
	if p == "." {
		prefix = ""
	}
	for k := range v.files {
		if strings.HasPrefix(k, prefix) {
			v.del(k)
		}
	}
	for k := range v.links {
		if strings.HasPrefix(k, prefix) {
			v.del(k)
		}
	}
}

// removeBelowFrom deletes entries below dir that lower layers added: an
// opaque directory.
func (v *vfs) removeBelowFrom(dir string, layer int) {
	if !v.below.has(dir) {
		return
	}
	prefix := dir + "/"
	if dir == "." {
		prefix = ""
	}
	for k, f := range v.files {
		if strings.HasPrefix(k, prefix) && f.layer < layer {
			v.del(k)
		}
	}
}

// resolve follows links in every element of p, within the root. It
// returns the final path, or false for a loop, a dangling link or a
// missing parent.
func (v *vfs) resolve(p string, followLast bool) (string, bool) {
	depth := 0
	parts := strings.Split(p, "/")
	cur := ""
	for i := 0; i < len(parts); i++ {
		part := parts[i]
		if part == "" || part == "." {
			continue
		}
		next := part
		if cur != "" {
			next = cur + "/" + part
		}
		if part == ".." {
			cur = path.Dir(cur)
			if cur == "." {
				cur = ""
			}
			continue
		}
		target, isLink := v.links[next]
		last := i == len(parts)-1
		if !isLink || (last && !followLast) {
			cur = next
			continue
		}
		depth++
		if depth > maxLinkDepth {
			return "", false
		}
		// An absolute target is relative to the target's root; ".." never
		// climbs above it.
		var base string
		if strings.HasPrefix(target, "/") {
			base = ""
		} else {
			base = cur
		}
		rest := append(strings.Split(strings.TrimPrefix(target, "/"), "/"), parts[i+1:]...)
		parts = rest
		i = -1
		cur = base
	}
	if cur == "" {
		return ".", true
	}
	return cur, true
}

func (v *vfs) index() {
	if !v.dirty {
		return
	}
	v.dirs = map[string][]string{".": nil}
	add := func(p string) {
		for p != "." && p != "" {
			dir, base := path.Split(p)
			dir = strings.TrimSuffix(dir, "/")
			if dir == "" {
				dir = "."
			}
			children, seen := v.dirs[dir]
			if !slices.Contains(children, base) {
				v.dirs[dir] = append(children, base)
			}
			if seen {
				return
			}
			p = dir
		}
	}
	for p := range v.files {
		add(p)
	}
	for p := range v.links {
		add(p)
	}
	for d := range v.dirs {
		slices.Sort(v.dirs[d])
	}
	v.dirty = false
}

// Open opens a file or directory.
func (v *vfs) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	p, ok := v.resolve(name, true)
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	if f, ok := v.files[p]; ok {
		if f.data == nil && f.size > 0 {
			// Known but not kept (too large): not readable here.
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
		}
		return &openFile{info: fileInfo{name: path.Base(p), size: int64(len(f.data)), mode: f.mode, modTime: f.modTime}, r: bytes.NewReader(f.data)}, nil
	}
	v.index()
	if _, ok := v.dirs[p]; ok {
		return &openDir{v: v, p: p}, nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

// Stat describes a file or directory.
func (v *vfs) Stat(name string) (fs.FileInfo, error) {
	f, err := v.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Stat()
}

// ReadDir lists a directory.
func (v *vfs) ReadDir(name string) ([]fs.DirEntry, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
	}
	p, ok := v.resolve(name, true)
	if !ok {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	v.index()
	children, ok := v.dirs[p]
	if !ok {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	out := make([]fs.DirEntry, 0, len(children))
	for _, c := range children {
		full := path.Join(p, c)
		var info fileInfo
		switch {
		case v.files[full] != nil:
			f := v.files[full]
			info = fileInfo{name: c, size: f.size, mode: f.mode, modTime: f.modTime}
		case v.links[full] != "":
			info = fileInfo{name: c, mode: fs.ModeSymlink | 0o777}
		default:
			info = fileInfo{name: c, mode: fs.ModeDir | 0o755}
		}
		out = append(out, fs.FileInfoToDirEntry(info))
	}
	return out, nil
}

type fileInfo struct {
	name    string
	size    int64
	mode    fs.FileMode
	modTime time.Time
}

func (f fileInfo) Name() string       { return f.name }
func (f fileInfo) Size() int64        { return f.size }
func (f fileInfo) Mode() fs.FileMode  { return f.mode }
func (f fileInfo) ModTime() time.Time { return f.modTime }
func (f fileInfo) IsDir() bool        { return f.mode.IsDir() }
func (f fileInfo) Sys() any           { return nil }

type openFile struct {
	info fileInfo
	r    *bytes.Reader
}

func (f *openFile) Stat() (fs.FileInfo, error)                { return f.info, nil }
func (f *openFile) Read(p []byte) (int, error)                { return f.r.Read(p) }
func (f *openFile) ReadAt(p []byte, off int64) (int, error)   { return f.r.ReadAt(p, off) }
func (f *openFile) Seek(off int64, whence int) (int64, error) { return f.r.Seek(off, whence) }
func (f *openFile) Close() error                              { return nil }

type openDir struct {
	v   *vfs
	p   string
	pos int
}

func (d *openDir) Stat() (fs.FileInfo, error) {
	return fileInfo{name: path.Base(d.p), mode: fs.ModeDir | 0o755}, nil
}
func (d *openDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.p, Err: errors.New("is a directory")}
}
func (d *openDir) Close() error { return nil }
func (d *openDir) ReadDir(n int) ([]fs.DirEntry, error) {
	all, err := d.v.ReadDir(d.p)
	if err != nil {
		return nil, err
	}
	rest := all[d.pos:]
	if n <= 0 {
		d.pos = len(all)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	if n > len(rest) {
		n = len(rest)
	}
	d.pos += n
	return rest[:n], nil
}
