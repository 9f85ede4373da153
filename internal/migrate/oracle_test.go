package migrate_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/deploy"
	"github.com/alertsync/alertsync/internal/migrate"
)

func TestSplitOracle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"plain statements", "CREATE TABLE A (X NUMBER);\nGRANT SELECT ON A TO B;\n",
			[]string{"CREATE TABLE A (X NUMBER)", "GRANT SELECT ON A TO B"}},
		{"semicolon in string", "INSERT INTO A VALUES ('x;y');\nSELECT 1 FROM DUAL;",
			[]string{"INSERT INTO A VALUES ('x;y')", "SELECT 1 FROM DUAL"}},
		{"doubled quote", "INSERT INTO A VALUES ('it''s; here');",
			[]string{"INSERT INTO A VALUES ('it''s; here')"}},
		{"comments dropped before, kept inside", "-- head; with semicolon\n/* block; */\nSELECT 1 -- tail;\n FROM DUAL;",
			[]string{"SELECT 1 -- tail;\n FROM DUAL"}},
		{"quoted identifier", `SELECT "a;b" FROM DUAL;`, []string{`SELECT "a;b" FROM DUAL`}},
		{"slash line ends SQL", "SELECT 1 FROM DUAL\n/\nSELECT 2 FROM DUAL;",
			[]string{"SELECT 1 FROM DUAL", "SELECT 2 FROM DUAL"}},
		{"anonymous block keeps semicolons",
			"BEGIN\n  X := 1;\n  Y := 'a;b';\nEND;\n/\nSELECT 1 FROM DUAL;",
			[]string{"BEGIN\n  X := 1;\n  Y := 'a;b';\nEND;", "SELECT 1 FROM DUAL"}},
		{"division and slash inside code",
			"CREATE OR REPLACE FUNCTION F RETURN NUMBER IS\nBEGIN\n  RETURN 4 / 2; -- a / here\n  /* and\n/\n here */\nEND;\n/\n",
			[]string{"CREATE OR REPLACE FUNCTION F RETURN NUMBER IS\nBEGIN\n  RETURN 4 / 2; -- a / here\n  /* and\n/\n here */\nEND;"}},
		{"slash line inside q-quote",
			"BEGIN\n  EXECUTE IMMEDIATE q'[\nCREATE TABLE T (X NUMBER);\n/\n]';\nEND;\n  /  \nSELECT 1 FROM DUAL;",
			[]string{"BEGIN\n  EXECUTE IMMEDIATE q'[\nCREATE TABLE T (X NUMBER);\n/\n]';\nEND;", "SELECT 1 FROM DUAL"}},
		{"q-quote with other delimiters", "SELECT q'{a;}' || q'!b;!' FROM DUAL;",
			[]string{"SELECT q'{a;}' || q'!b;!' FROM DUAL"}},
		{"trigger with declare", "create or replace editionable trigger T\n  after insert on X for each row\ndeclare\n  v number;\nbegin\n  null;\nend;\n/",
			[]string{"create or replace editionable trigger T\n  after insert on X for each row\ndeclare\n  v number;\nbegin\n  null;\nend;"}},
		{"package body", "CREATE OR REPLACE PACKAGE BODY P AS\n PROCEDURE A IS BEGIN NULL; END;\nEND P;\n/\n",
			[]string{"CREATE OR REPLACE PACKAGE BODY P AS\n PROCEDURE A IS BEGIN NULL; END;\nEND P;"}},
		{"create table is not PL/SQL", "CREATE TABLE TRIGGERS (X NUMBER);", []string{"CREATE TABLE TRIGGERS (X NUMBER)"}},
		{"only comments", "-- nothing\n/* here */\n", nil},
		{"stray slash after statement", "GRANT X TO Y;\n/\n", []string{"GRANT X TO Y"}},
		{"unterminated block returned", "BEGIN\n NULL;\nEND;", []string{"BEGIN\n NULL;\nEND;"}},
		{"windows line ends", "BEGIN\r\n NULL;\r\nEND;\r\n/\r\nSELECT 1 FROM DUAL;\r\n",
			[]string{"BEGIN\r\n NULL;\r\nEND;", "SELECT 1 FROM DUAL"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, migrate.SplitOracle(tc.in))
			require.Equal(t, tc.want, migrate.Oracle{}.Statements(tc.in))
		})
	}
}

func TestOracleQuery(t *testing.T) {
	t.Parallel()
	d := migrate.Oracle{}
	require.Equal(t, "oracle", d.Name())
	for _, tc := range []struct{ in, want string }{
		// The engine's own queries (migrate.go).
		{"INSERT INTO {table} (set_name, version, name, checksum) VALUES (?, ?, ?, ?)",
			"INSERT INTO ALERTSYNC_SCHEMA_MIGRATIONS (set_name, version, name, checksum) VALUES (:1, :2, :3, :4)"},
		{"SELECT version, name, checksum, applied_at FROM {table} WHERE set_name = ?",
			"SELECT version, name, checksum, applied_at FROM ALERTSYNC_SCHEMA_MIGRATIONS WHERE set_name = :1"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, d.Query(tc.in))
		})
	}
}

// TestOracleUpOnRecorder runs the engine with the Oracle dialect over the
// Oracle migrations against the recording driver: the version table is
// created, every statement of every migration is executed one by one in
// order, each migration is recorded after its last statement, every bind
// matches its arguments, and a second run applies nothing.
func TestOracleUpOnRecorder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	set, err := migrate.Load("nomis", deploy.OracleMigrations())
	require.NoError(t, err)
	rec := &recorder{}
	db := sql.OpenDB(rec)
	t.Cleanup(func() { require.NoError(t, db.Close()) })

	res, err := migrate.Up(ctx, db, set, migrate.Latest, migrate.WithDialect(migrate.Oracle{}))
	require.NoError(t, err)
	require.Equal(t, seq(set.Latest()), res.Applied)
	require.Equal(t, set.Latest(), res.Version)

	var want []string
	for _, m := range set.Migrations {
		want = append(want, migrate.SplitOracle(m.SQL)...)
		want = append(want, "INSERT INTO "+migrate.OracleVersionTable+" (set_name, version, name, checksum) VALUES (:1, :2, :3, :4)")
	}
	var got []string
	for _, c := range rec.recorded() {
		require.Equal(t, seq(len(c.args)), binds(c.query), "binds of %q vs %d arguments", c.query, len(c.args))
		if strings.HasPrefix(c.query, "SELECT") || strings.Contains(c.query, "DBMS_LOCK") ||
			strings.HasPrefix(c.query, "CREATE TABLE "+migrate.OracleVersionTable) {
			continue
		}
		got = append(got, c.query)
	}
	require.Equal(t, want, got)

	again, err := migrate.Up(ctx, db, set, migrate.Latest, migrate.WithDialect(migrate.Oracle{}))
	require.NoError(t, err)
	require.Empty(t, again.Applied)
	require.Equal(t, set.Latest(), again.Version)

	states, err := migrate.Status(ctx, db, set, migrate.WithDialect(migrate.Oracle{}))
	require.NoError(t, err)
	for _, s := range states {
		require.True(t, s.Applied, s.File)
		require.False(t, s.Changed, s.File)
	}
}

// TestOracleDialectBinds runs every method of the Oracle dialect against a
// recording database/sql driver and checks each statement's :n binds
// against the arguments of its Go call.
func TestOracleDialectBinds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name     string
		count    int64 // what the USER_TABLES lookup returns
		status   int64 // what DBMS_LOCK returns through the out bind
		call     func(context.Context, *sql.Conn) error
		wantStmt int
		wantErr  string
	}{
		{name: "version table exists", count: 1, call: func(ctx context.Context, c *sql.Conn) error {
			ok, err := migrate.Oracle{}.VersionTableExists(ctx, c)
			if err == nil && !ok {
				err = errors.New("want exists")
			}
			return err
		}, wantStmt: 1},
		{name: "create version table when missing", count: 0, call: inTx(func(ctx context.Context, _ *sql.Conn, tx *sql.Tx) error {
			return migrate.Oracle{}.CreateVersionTable(ctx, tx)
		}), wantStmt: 2},
		{name: "version table kept when present", count: 1, call: inTx(func(ctx context.Context, _ *sql.Conn, tx *sql.Tx) error {
			return migrate.Oracle{}.CreateVersionTable(ctx, tx)
		}), wantStmt: 1},
		{name: "lock and unlock", status: 0, call: inTx(func(ctx context.Context, c *sql.Conn, tx *sql.Tx) error {
			if err := (migrate.Oracle{}).Lock(ctx, c, tx); err != nil {
				return err
			}
			if err := tx.Commit(); err != nil {
				return err
			}
			return migrate.Oracle{}.Unlock(ctx, c)
		}), wantStmt: 2},
		{name: "lock deadlock reported", status: 2, call: inTx(func(ctx context.Context, c *sql.Conn, tx *sql.Tx) error {
			return migrate.Oracle{}.Lock(ctx, c, tx)
		}), wantStmt: 1, wantErr: "DBMS_LOCK.REQUEST returned 2 (deadlock)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{count: tc.count, status: tc.status}
			db := sql.OpenDB(rec)
			t.Cleanup(func() { require.NoError(t, db.Close()) })
			conn, err := db.Conn(ctx)
			require.NoError(t, err)
			t.Cleanup(func() { _ = conn.Close() })

			err = tc.call(ctx, conn)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
			} else {
				require.NoError(t, err)
			}
			calls := rec.recorded()
			require.Len(t, calls, tc.wantStmt)
			for _, c := range calls {
				require.Equal(t, seq(len(c.args)), binds(c.query), "binds of %q vs %d arguments", c.query, len(c.args))
				for _, a := range c.args {
					require.Empty(t, a.Name, "positional binds only")
				}
			}
		})
	}
}

func inTx(fn func(context.Context, *sql.Conn, *sql.Tx) error) func(context.Context, *sql.Conn) error {
	return func(ctx context.Context, c *sql.Conn) error {
		tx, err := c.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback() }() // no-op after Commit
		if err := fn(ctx, c, tx); err != nil {
			return err
		}
		if err := tx.Commit(); err != nil && !errors.Is(err, sql.ErrTxDone) {
			return err
		}
		return nil
	}
}

var bindRE = regexp.MustCompile(`:(\d+)`)

// binds returns the distinct :n binds of q, sorted. The dialect's statements
// hold no string literal with a colon and a digit.
func binds(q string) []int {
	seen := map[int]bool{}
	for _, m := range bindRE.FindAllStringSubmatch(q, -1) {
		n, _ := strconv.Atoi(m[1]) // digits
		seen[n] = true
	}
	out := []int{}
	for n := range seen {
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

func seq(n int) []int {
	out := []int{}
	for i := 1; i <= n; i++ {
		out = append(out, i)
	}
	return out
}

// recorder is a database/sql driver that records statements and their
// arguments, answers any query with one row holding count, and sets every
// sql.Out argument to status, as godror does for a PL/SQL out bind.
type recorder struct {
	count, status int64

	mu      sync.Mutex
	calls   []call
	created bool    // the version table was created
	applied [][]any // rows inserted into the version table
}

type call struct {
	query string
	args  []driver.NamedValue
}

func (r *recorder) recorded() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls...)
}

func (r *recorder) record(q string, args []driver.NamedValue) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call{q, append([]driver.NamedValue(nil), args...)})
}

func (r *recorder) Connect(context.Context) (driver.Conn, error) { return &recConn{r: r}, nil }
func (r *recorder) Driver() driver.Driver                        { return nil }

type recConn struct{ r *recorder }

func (c *recConn) Prepare(string) (driver.Stmt, error) {
	return nil, errors.New("prepare not supported")
}
func (c *recConn) Close() error              { return nil }
func (c *recConn) Begin() (driver.Tx, error) { return recTx{}, nil }
func (c *recConn) BeginTx(context.Context, driver.TxOptions) (driver.Tx, error) {
	return recTx{}, nil
}

// CheckNamedValue accepts every argument, sql.Out included.
func (c *recConn) CheckNamedValue(*driver.NamedValue) error { return nil }

func (c *recConn) ExecContext(_ context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	c.r.record(q, args)
	c.r.mu.Lock()
	switch {
	case strings.HasPrefix(q, "CREATE TABLE "+migrate.OracleVersionTable+" "):
		c.r.created = true
	case strings.HasPrefix(q, "INSERT INTO "+migrate.OracleVersionTable+" "):
		// set_name, version, name, checksum
		c.r.applied = append(c.r.applied, []any{args[1].Value, args[2].Value, args[3].Value, time.Now()})
	}
	c.r.mu.Unlock()
	for _, a := range args {
		if out, ok := a.Value.(sql.Out); ok {
			p, ok := out.Dest.(*int64)
			if !ok {
				return nil, fmt.Errorf("out bind of type %T, want *int64", out.Dest)
			}
			*p = c.r.status
		}
	}
	return driver.RowsAffected(0), nil
}

func (c *recConn) QueryContext(_ context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	c.r.record(q, args)
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	if strings.Contains(q, "FROM "+migrate.OracleVersionTable) {
		return &tableRows{cols: []string{"VERSION", "NAME", "CHECKSUM", "APPLIED_AT"}, rows: append([][]any(nil), c.r.applied...)}, nil
	}
	n := c.r.count
	if c.r.created {
		n = 1
	}
	return &tableRows{cols: []string{"N"}, rows: [][]any{{n}}}, nil
}

type recTx struct{}

func (recTx) Commit() error   { return nil }
func (recTx) Rollback() error { return nil }

type tableRows struct {
	cols []string
	rows [][]any
}

func (r *tableRows) Columns() []string { return r.cols }
func (r *tableRows) Close() error      { return nil }
func (r *tableRows) Next(dest []driver.Value) error {
	if len(r.rows) == 0 {
		return io.EOF
	}
	for i, v := range r.rows[0] {
		dest[i] = v
	}
	r.rows = r.rows[1:]
	return nil
}
