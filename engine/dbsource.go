package engine

import (
	"os"
	"sync"
	"time"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/vulndb"
)

// DBSource is the vulnerability database a process matches with,
// reopened when its file changes (an update installs a new file by
// rename, so readers of the old one finish undisturbed).
type DBSource struct {
	Path string

	mu    sync.Mutex
	db    *vulndb.DB
	stamp fileStamp
}

type fileStamp struct {
	mod  time.Time
	size int64
}

func stat(path string) (fileStamp, error) {
	st, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{st.ModTime(), st.Size()}, nil
}

func (a fileStamp) equal(b fileStamp) bool {
	return a.mod.Equal(b.mod) && a.size == b.size
}

// Get returns the database, reopened if its file changed since the last
// call.
func (d *DBSource) Get() (*vulndb.DB, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, err := stat(d.Path)
	if err != nil {
		return nil, vigil.Errorf(vigil.EUNAVAILABLE, "no vulnerability database at %s: run `vigil db update`", d.Path)
	}
	if d.db == nil || !st.equal(d.stamp) {
		db, err := vulndb.Open(d.Path)
		if err != nil {
			return nil, err
		}
		// Matches in flight keep using the old handle: it is closed after
		// a grace period far longer than one job's matching, not now.
		if old := d.db; old != nil {
			time.AfterFunc(10*time.Minute, func() { old.Close() })
		}
		d.db, d.stamp = db, st
	}
	return d.db, nil
}

// Close closes the open database.
func (d *DBSource) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.db == nil {
		return nil
	}
	err := d.db.Close()
	d.db = nil
	return err
}
