package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-project/vigil/engine"
	"github.com/vigil-project/vigil/internal/testutil"
	"github.com/vigil-project/vigil/sqlstore"
)

func TestProfRematch(t *testing.T) {
	cache := os.Getenv("PROF_CACHE")
	if cache == "" {
		t.Skip()
	}
	dir := t.TempDir()
	testutil.CopyFile(t, filepath.Join(cache, "store-template.db"), filepath.Join(dir, "s.db"))
	ctx := context.Background()
	store, _ := sqlstore.Open(ctx, filepath.Join(dir, "s.db"))
	eng := &engine.Engine{Store: store, DB: &engine.DBSource{Path: filepath.Join(cache, "vulndb-rev2.db")}}
	ids, _ := store.RematchSet(ctx, nil, nil, true)
	ids = ids[:400]
	start := time.Now()
	total := 0
	for i := 0; i < len(ids); i += 100 {
		n, err := eng.Rematch(ctx, engine.RematchArgs{Revision: 2, Resources: ids[i : i+100]})
		if err != nil {
			t.Fatal(err)
		}
		total += n
		t.Logf("batch %d: %v", i/100, time.Since(start))
	}
	t.Logf("%d resources, %d events, %v", len(ids), total, time.Since(start))
}
