package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// insertRows runs one INSERT for many rows, each of width values in args:
// query is the statement with %v where its VALUES tuples go, and tuple
// one row's placeholders. On PostgreSQL the rows go as statements of up
// to perStatement rows each, one round trip each. On SQLite they go one
// row per execution of one prepared statement: inside a transaction, a
// statement that writes several rows keeps a statement journal (a copy
// of every page it touches, to undo that statement alone), and that was
// an eighth of a re-evaluation; a call into SQLite costs no round trip.
func (s *Store) insertRows(ctx context.Context, tx *sql.Tx, query, tuple string, width, perStatement int, args []any) error {
	if width <= 0 || perStatement <= 0 || len(args)%width != 0 {
		return fmt.Errorf("sqlstore: %d values are not rows of %d", len(args), width)
	}
	if len(args) == 0 {
		return nil
	}
	if !s.postgres {
		st, err := tx.PrepareContext(ctx, strings.Replace(query, "%v", tuple, 1))
		if err != nil {
			return err
		}
		defer st.Close()
		for start := 0; start < len(args); start += width {
			if _, err := st.ExecContext(ctx, args[start:start+width]...); err != nil {
				return err
			}
		}
		return nil
	}
	for len(args) > 0 {
		n := min(len(args)/width, perStatement)
		tuples := strings.TrimSuffix(strings.Repeat(tuple+", ", n), ", ")
		if _, err := tx.ExecContext(ctx, s.q(strings.Replace(query, "%v", tuples, 1)), args[:n*width]...); err != nil {
			return err
		}
		args = args[n*width:]
	}
	return nil
}
