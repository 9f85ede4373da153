package orafake

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godror/godror"
	"github.com/stretchr/testify/require"
)

// TestCheck proves Check catches what it is there to catch.
func TestCheck(t *testing.T) {
	t.Parallel()
	stmts := map[string]string{
		"oraOneSQL":   "SELECT a.X, a.Y FROM T a WHERE a.ID = :1",
		"oraPLSQLSQL": "BEGIN\n    :2 := F(:1, 'A:B', 'it''s :3');\nEND;",
		"oraOutSQL":   "BEGIN :1 := F(:2); END;",
	}
	arg := func(vs ...any) []driver.NamedValue {
		out := make([]driver.NamedValue, len(vs))
		for i, v := range vs {
			out[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
		}
		return out
	}
	tests := []struct {
		name string
		call Call
		want string // "" = no problem
	}{
		{"right", Call{Kind: "query", Query: stmts["oraOneSQL"], Args: arg(1), Cols: 2}, ""},
		{"literal colons are no placeholders", Call{Kind: "exec", Query: "BEGIN\n    :2 := F(:1, 'A:B', 'it''s :3');\nEND;", Args: arg(1, 2)},
			"want :1..:2, each once, in order"},
		{"argument missing", Call{Kind: "query", Query: stmts["oraOneSQL"], Cols: 2}, "1 placeholders [1] for 0 arguments"},
		{"select list narrower than the answer", Call{Kind: "query", Query: stmts["oraOneSQL"], Args: arg(1), Cols: 3}, "select list of 2 items, canned answer of 3"},
		{"ad hoc", Call{Kind: "query", Query: "SELECT 1 FROM DUAL", Cols: 1}, "not one of the dialect's statement constants"},
		{"postgres placeholder", Call{Kind: "exec", Query: "DELETE FROM T WHERE ID = $1", Args: arg(1)}, "PostgreSQL $n placeholder"},
		{"placeholder twice", Call{Kind: "query", Query: "SELECT :1, :1 FROM DUAL", Args: arg(1), Cols: 2}, "want :1..:2"},
		{"named without argument", Call{Kind: "query", Query: "SELECT :name FROM DUAL", Cols: 1}, "placeholder :NAME has no argument"},
		{"named matching", Call{Kind: "query", Query: "SELECT :name FROM DUAL", Cols: 1,
			Args: []driver.NamedValue{{Name: "name", Value: 1}}}, "not one of the dialect's statement constants"},
		{"named for positional", Call{Kind: "query", Query: stmts["oraOneSQL"], Cols: 2,
			Args: []driver.NamedValue{{Name: "id", Value: 1}}}, "named arguments [id] for positional placeholders"},
		{"placeholder out of order", Call{Kind: "query", Query: "SELECT :2, :1 FROM DUAL", Args: arg(1, 2), Cols: 2}, "want :1..:2"},
		{"argument too many", Call{Kind: "query", Query: stmts["oraOneSQL"], Args: arg(1, 2), Cols: 2}, "1 placeholders [1] for 2 arguments"},
		{"right out bind", Call{Kind: "exec", Query: stmts["oraOutSQL"], Args: arg(sql.Out{}, 1)}, ""},
		{"a failed query has no columns to compare", Call{Kind: "query", Query: stmts["oraOneSQL"], Args: arg(1), Fails: true}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			problems := Check(tt.call, stmts, false)
			if tt.want == "" {
				require.Empty(t, problems)
				return
			}
			require.Contains(t, strings.Join(problems, "; "), tt.want)
		})
	}
	require.Equal(t, []string{"2", "1"}, Placeholders(stmts["oraPLSQLSQL"]), "none inside literals")
	require.Equal(t, 2, SelectListLen("WITH w AS (SELECT 1 AS A, 2 AS B FROM DUAL) SELECT F(w.A, w.B), w.B FROM w"))
	require.Equal(t, 0, SelectListLen("DELETE FROM T WHERE ID = :1"))
	require.Equal(t, 0, SelectListLen("MERGE INTO T USING (SELECT :1 AS A, :2 AS B FROM DUAL) s ON (T.A = s.A)"), "a nested select is no select list")
	require.Empty(t, Check(Call{Kind: "exec", Query: "CREATE OR REPLACE TRIGGER X BEFORE INSERT ON T FOR EACH ROW BEGIN :NEW.A := :OLD.A; END;"},
		nil, true), "a trigger's :NEW and :OLD are no binds; foreign statements are not in stmts")
}

// TestStatements reads the statement constants of a source file: literals,
// concatenations and other constants, of the prefix and suffix only.
func TestStatements(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "dialect.go")
	src := "package x\n\nconst table = \"T\"\n\nconst (\n\toraReadSQL = `SELECT A FROM ` + table + ` WHERE ID = :1`\n" +
		"\toraOtherSQL, oraThirdSQL = (\"DELETE FROM \" + table), \"X\"\n\tpgReadSQL = \"SELECT 1\"\n)\n"
	require.NoError(t, os.WriteFile(path, []byte(src), 0o600))
	got, err := Statements(path, "ora", "SQL")
	require.NoError(t, err)
	require.Equal(t, map[string]string{"oraReadSQL": "SELECT A FROM T WHERE ID = :1", "oraOtherSQL": "DELETE FROM T", "oraThirdSQL": "X"}, got)

	require.NoError(t, os.WriteFile(path, []byte("package x\n\nconst oraBadSQL = missing + \"X\"\n"), 0o600))
	_, err = Statements(path, "ora", "SQL")
	require.ErrorContains(t, err, "oraBadSQL: constant missing is not in")
	_, err = Statements(filepath.Join(t.TempDir(), "none.go"), "ora", "SQL")
	require.Error(t, err)
}

// TestFake checks the answers, out binds, lobs and transaction numbers the
// fake records.
func TestFake(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := New()
	h := f.DB()
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	f.Answer("Q", Answer{Cols: []string{"N"}, Rows: [][]driver.Value{{int64(1)}}}, Answer{Cols: []string{"N"}, Rows: [][]driver.Value{{int64(2)}}})
	f.Answer("E", Answer{Err: OraErr(60)}, Answer{Outs: []any{int64(7)}, Affected: Rows(0)})

	var n int64
	require.NoError(t, h.QueryRowContext(ctx, "Q").Scan(&n))
	require.Equal(t, int64(1), n)
	require.NoError(t, h.QueryRowContext(ctx, "Q").Scan(&n))
	require.Equal(t, int64(2), n)
	require.NoError(t, h.QueryRowContext(ctx, "Q").Scan(&n), "the last answer repeats")
	require.Equal(t, int64(2), n)
	require.Error(t, h.QueryRowContext(ctx, "not canned").Scan(&n))

	var seen []string
	f.OnCall(func(c Call) {
		seen = append(seen, c.Kind+" "+c.Query)
		if c.Query == "E" && !c.Fails {
			f.Answer("Q", Answer{Cols: []string{"N"}, Rows: [][]driver.Value{{int64(3)}}})
		}
	})
	tx, err := h.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, "E", sql.Out{Dest: &n})
	require.ErrorIs(t, err, OraErr(60))
	var out int32
	res, err := tx.ExecContext(ctx, "E", sql.Out{Dest: &out}, godror.Lob{IsClob: true, Reader: bytes.NewReader([]byte("[1,2]"))})
	require.NoError(t, err)
	require.Equal(t, int32(7), out)
	affected, err := res.RowsAffected()
	require.NoError(t, err)
	require.Zero(t, affected)
	require.NoError(t, tx.Commit())
	require.NoError(t, h.QueryRowContext(ctx, "Q").Scan(&n))
	require.Equal(t, int64(3), n, "answered by OnCall after the exec")
	require.Equal(t, []string{"exec E", "exec E", "query Q"}, seen, "OnCall sees statements, not transaction events")

	calls := f.Calls()
	kinds := make([]string, 0, len(calls))
	for _, c := range calls {
		kinds = append(kinds, c.Kind)
	}
	require.Equal(t, []string{"query", "query", "query", "query", "begin", "exec", "exec", "commit", "query"}, kinds)
	require.True(t, calls[4].TxOptions.ReadOnly)
	require.Equal(t, 1, calls[5].Tx)
	require.True(t, calls[5].Fails)
	require.Equal(t, [][]byte{[]byte("[1,2]")}, calls[6].Lobs)
	require.Zero(t, calls[0].Tx)
}
