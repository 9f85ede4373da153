package nomis

// Tests of the Oracle dialect without an Oracle server (none can run here):
// every method runs against oraFake, a database/sql driver that records
// each statement with its arguments and answers with canned rows, and
// oraCheckCall checks each recorded statement against the dialect's
// constants, its binds against the Go call's arguments, and its select
// list against the columns the method scans. What this cannot show is
// that Oracle accepts the SQL: see deploy/oracle/README.md.

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godror/godror"
	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/deploy"
	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/db"
	"github.com/alertsync/alertsync/internal/migrate"
)

// oraCall is one statement the dialect ran.
type oraCall struct {
	query string
	args  []driver.NamedValue
	lobs  [][]byte // the text of each godror.Lob argument, in order
	kind  string   // "query" or "exec"
	cols  int      // columns of the canned answer (queries)
	fails bool     // answered with an error (no columns to compare)
}

// oraAnswer is the canned answer to one statement.
type oraAnswer struct {
	cols []string
	rows [][]driver.Value
	outs []int64 // values of the sql.Out arguments, in order
	err  error
}

// oraFake is a database/sql driver.Connector recording every statement.
type oraFake struct {
	mu        sync.Mutex
	answers   map[string]oraAnswer
	calls     []oraCall
	txs       []driver.TxOptions
	commits   int
	rollbacks int
}

// oraAppliedSQL is the migration engine's read of the applied migrations.
var oraAppliedSQL = migrate.Oracle{}.Query("SELECT version, name, checksum, applied_at FROM {table} WHERE set_name = ?")

func newOraFake() *oraFake {
	f := &oraFake{answers: map[string]oraAnswer{}}
	// The migration engine's own statements (internal/migrate): no version
	// table yet, no migration applied.
	f.answers[migrate.Oracle{}.Query("SELECT COUNT(*) FROM USER_TABLES WHERE TABLE_NAME = ?")] = oraAnswer{
		cols: []string{"N"}, rows: [][]driver.Value{{int64(0)}}}
	f.answers[oraAppliedSQL] = oraAnswer{
		cols: []string{"VERSION", "NAME", "CHECKSUM", "APPLIED_AT"}}
	return f
}

func (f *oraFake) answer(q string, a oraAnswer) { f.mu.Lock(); f.answers[q] = a; f.mu.Unlock() }

func (f *oraFake) recorded() []oraCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]oraCall(nil), f.calls...)
}

func (f *oraFake) Connect(context.Context) (driver.Conn, error) { return &oraFakeConn{f: f}, nil }
func (f *oraFake) Driver() driver.Driver                        { return nil }

type oraFakeConn struct{ f *oraFake }

func (c *oraFakeConn) Prepare(string) (driver.Stmt, error) {
	return nil, errors.New("prepare not supported: the dialect must use ExecContext/QueryContext")
}
func (c *oraFakeConn) Close() error { return nil }
func (c *oraFakeConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}
func (c *oraFakeConn) BeginTx(_ context.Context, o driver.TxOptions) (driver.Tx, error) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	c.f.txs = append(c.f.txs, o)
	return oraFakeTx{c.f}, nil
}

// CheckNamedValue accepts every argument as it is (sql.Out, godror.Lob), as
// godror does.
func (c *oraFakeConn) CheckNamedValue(*driver.NamedValue) error { return nil }

func (c *oraFakeConn) record(kind, q string, args []driver.NamedValue) (oraAnswer, error) {
	call := oraCall{query: q, args: append([]driver.NamedValue(nil), args...), kind: kind}
	for _, a := range args {
		if l, ok := a.Value.(godror.Lob); ok {
			b, err := io.ReadAll(l.Reader)
			if err != nil {
				return oraAnswer{}, err
			}
			call.lobs = append(call.lobs, b)
		}
	}
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	a, ok := c.f.answers[q]
	call.cols, call.fails = len(a.cols), a.err != nil
	c.f.calls = append(c.f.calls, call)
	if strings.HasPrefix(q, "INSERT INTO "+migrate.OracleVersionTable+" ") {
		// The engine records a migration (set_name, version, name,
		// checksum): answer its next read with it.
		applied := c.f.answers[oraAppliedSQL]
		applied.rows = append(applied.rows, []driver.Value{args[1].Value, args[2].Value, args[3].Value, time.Now()})
		c.f.answers[oraAppliedSQL] = applied
	}
	if !ok && kind == "query" {
		return oraAnswer{}, fmt.Errorf("oraFake: no canned answer for %.60q", q)
	}
	if a.err != nil {
		return oraAnswer{}, a.err
	}
	outs := a.outs
	for _, arg := range args {
		out, ok := arg.Value.(sql.Out)
		if !ok {
			continue
		}
		p, ok := out.Dest.(*int64)
		if !ok {
			return oraAnswer{}, fmt.Errorf("oraFake: out bind of type %T, want *int64", out.Dest)
		}
		*p = 0
		if len(outs) > 0 {
			*p, outs = outs[0], outs[1:]
		}
	}
	return a, nil
}

func (c *oraFakeConn) ExecContext(_ context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	if _, err := c.record("exec", q, args); err != nil {
		return nil, err
	}
	return driver.RowsAffected(1), nil
}

func (c *oraFakeConn) QueryContext(_ context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	a, err := c.record("query", q, args)
	if err != nil {
		return nil, err
	}
	return &oraFakeRows{cols: a.cols, rows: a.rows}, nil
}

type oraFakeTx struct{ f *oraFake }

func (t oraFakeTx) Commit() error   { t.f.mu.Lock(); t.f.commits++; t.f.mu.Unlock(); return nil }
func (t oraFakeTx) Rollback() error { t.f.mu.Lock(); t.f.rollbacks++; t.f.mu.Unlock(); return nil }

type oraFakeRows struct {
	cols []string
	rows [][]driver.Value
}

func (r *oraFakeRows) Columns() []string { return r.cols }
func (r *oraFakeRows) Close() error      { return nil }
func (r *oraFakeRows) Next(dest []driver.Value) error {
	if len(r.rows) == 0 {
		return io.EOF
	}
	copy(dest, r.rows[0])
	r.rows = r.rows[1:]
	return nil
}

// fakeOraErr stands in for *godror.OraErr (which has no exported
// constructor) through the same Code method.
type fakeOraErr struct{ code int }

func (e fakeOraErr) Error() string { return fmt.Sprintf("ORA-%05d: fake", e.code) }
func (e fakeOraErr) Code() int     { return e.code }

// oraStatements parses oracle.go and returns the value of every constant
// named ora…SQL: the statements of the dialect, by name.
func oraStatements(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "oracle.go", nil, 0)
	require.NoError(t, err)
	exprs := map[string]ast.Expr{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if i < len(vs.Values) {
					exprs[n.Name] = vs.Values[i]
				}
			}
		}
	}
	var eval func(e ast.Expr) string
	eval = func(e ast.Expr) string {
		switch e := e.(type) {
		case *ast.BasicLit:
			s, err := strconv.Unquote(e.Value)
			require.NoError(t, err)
			return s
		case *ast.BinaryExpr:
			require.Equal(t, token.ADD, e.Op)
			return eval(e.X) + eval(e.Y)
		case *ast.Ident:
			x, ok := exprs[e.Name]
			require.True(t, ok, "constant %s", e.Name)
			return eval(x)
		case *ast.ParenExpr:
			return eval(e.X)
		}
		t.Fatalf("unexpected constant expression %T", e)
		return ""
	}
	out := map[string]string{}
	for name, e := range exprs {
		if strings.HasPrefix(name, "ora") && strings.HasSuffix(name, "SQL") {
			out[name] = eval(e)
		}
	}
	require.GreaterOrEqual(t, len(out), 20, "the dialect's statements")
	return out
}

var (
	oraLiteralRE     = regexp.MustCompile(`(?s)'(?:[^']|'')*'|"[^"]*"|--[^\n]*|/\*.*?\*/`)
	oraPlaceholderRE = regexp.MustCompile(`(?:^|[^A-Za-z0-9_$#:]):([A-Za-z0-9_]+)`)
	pgPlaceholderRE  = regexp.MustCompile(`\$\d`)
	oraWordRE        = regexp.MustCompile(`(?i)\b(SELECT|FROM)\b`)
)

// oraStrip blanks out literals, quoted identifiers and comments.
func oraStrip(q string) string { return oraLiteralRE.ReplaceAllString(q, "''") }

// oraPlaceholders returns the placeholders of q in order of occurrence.
func oraPlaceholders(q string) []string {
	var out []string
	for _, m := range oraPlaceholderRE.FindAllStringSubmatch(oraStrip(q), -1) {
		out = append(out, m[1])
	}
	return out
}

// oraSelectListLen counts the items of the top-level SELECT list of q
// (after any WITH clause), 0 when q has none.
func oraSelectListLen(q string) int {
	s := oraStrip(q)
	depth, start := 0, -1
	items := 1
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
			continue
		case ')':
			depth--
			continue
		case ',':
			if depth == 0 && start >= 0 {
				items++
			}
			continue
		}
		if depth != 0 {
			continue
		}
		loc := oraWordRE.FindStringIndex(s[i:])
		if loc == nil || loc[0] != 0 || (i > 0 && isWordByte(s[i-1])) {
			continue
		}
		word := strings.ToUpper(s[i : i+loc[1]])
		switch {
		case word == "SELECT" && start < 0:
			start = i
		case word == "FROM" && start >= 0:
			return items
		}
		i += loc[1] - 1
	}
	return 0
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c == '#' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// oraEngineStatement reports whether q is run by internal/migrate (the
// migration files and the engine's bookkeeping), checked there.
func oraEngineStatement(t *testing.T, q string) bool {
	t.Helper()
	if strings.Contains(q, migrate.OracleVersionTable) || strings.Contains(q, "FROM USER_TABLES") ||
		strings.Contains(q, "DBMS_LOCK.REQUEST(id =>") || strings.Contains(q, "DBMS_LOCK.RELEASE(id =>") {
		return true
	}
	set, err := migrate.Load("nomis", deploy.OracleMigrations())
	require.NoError(t, err)
	for _, m := range set.Migrations {
		for _, s := range migrate.SplitOracle(m.SQL) {
			if s == q {
				return true
			}
		}
	}
	return false
}

// oraCheckCall returns what is wrong with one recorded statement: not a
// constant of oracle.go (unless the migration engine's), a PostgreSQL $n
// placeholder, placeholders that do not match the arguments (positional
// :1..:n each once and in order, or :name matching sql.Named arguments),
// or a query whose select list does not have the canned answer's columns.
func oraCheckCall(c oraCall, stmts map[string]string, engine bool) []string {
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	known := false
	for _, s := range stmts {
		known = known || s == c.query
	}
	if !known && !engine {
		bad("not one of the ora…SQL constants (built ad hoc?)")
	}
	if pgPlaceholderRE.MatchString(oraStrip(c.query)) {
		bad("PostgreSQL $n placeholder")
	}
	ph := oraPlaceholders(c.query)
	if strings.HasPrefix(c.query, "CREATE OR REPLACE TRIGGER") {
		// :OLD and :NEW are a trigger's correlation names, not binds.
		ph = slices.DeleteFunc(ph, func(p string) bool { return p == "OLD" || p == "NEW" })
	}
	var named []string
	for _, a := range c.args {
		if a.Name != "" {
			named = append(named, a.Name)
		}
	}
	positional := 0
	for _, p := range ph {
		if _, err := strconv.Atoi(p); err == nil {
			positional++
		}
	}
	switch {
	case positional > 0 && positional != len(ph):
		bad("mixes positional and named placeholders: %v", ph)
	case positional > 0:
		for i, p := range ph {
			if p != strconv.Itoa(i+1) {
				bad("positional placeholders %v: want :1..:%d, each once, in order", ph, len(ph))
				break
			}
		}
		if len(ph) != len(c.args) {
			bad("%d placeholders %v for %d arguments", len(ph), ph, len(c.args))
		}
		if len(named) > 0 {
			bad("named arguments %v for positional placeholders", named)
		}
	default:
		distinct := map[string]bool{}
		for _, p := range ph {
			distinct[strings.ToUpper(p)] = true
		}
		args := map[string]bool{}
		for _, n := range named {
			args[strings.ToUpper(n)] = true
		}
		if len(c.args) != len(named) || len(distinct) != len(args) {
			bad("placeholders %v for arguments %v (%d in all)", ph, named, len(c.args))
		}
		for p := range distinct {
			if !args[p] {
				bad("placeholder :%s has no argument", p)
			}
		}
	}
	if c.kind == "query" && !engine && !c.fails {
		if n := oraSelectListLen(c.query); n != c.cols {
			bad("select list of %d items, canned answer of %d columns", n, c.cols)
		}
	}
	return problems
}

// oraRun is a dialect and a fake database with one connection.
type oraRun struct {
	d    *oracle
	f    *oraFake
	h    *sql.DB
	conn *sql.Conn
}

func newOraRun(t *testing.T) *oraRun {
	t.Helper()
	f := newOraFake()
	h := sql.OpenDB(f)
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	conn, err := h.Conn(context.Background())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return &oraRun{d: newOracle(Options{}), f: f, h: h, conn: conn}
}

func oraLob(t *testing.T, c oraCall, v any) {
	t.Helper()
	require.Len(t, c.lobs, 1, "one collection bind")
	require.NoError(t, json.Unmarshal(c.lobs[0], v), "collection bind %s", c.lobs[0])
}

func cols(names ...string) []string { return names }

// TestOracleDialectStatements runs every method of the Oracle dialect with
// representative inputs against the recording driver and checks every
// statement it ran (oraCheckCall), what it bound and what it made of the
// canned rows; at the end, that every statement constant was run.
func TestOracleDialectStatements(t *testing.T) {
	ctx := context.Background()
	stmts := oraStatements(t)
	t1 := time.Date(2024, 2, 1, 10, 11, 12, 123456789, time.UTC)
	t2 := t1.Add(time.Minute)

	var (
		mu    sync.Mutex
		calls []oraCall
	)
	tests := []struct {
		name  string
		setup func(f *oraFake)
		run   func(t *testing.T, r *oraRun)
	}{
		{"try lock granted", func(f *oraFake) { f.answer(oraTryLockSQL, oraAnswer{outs: []int64{0}}) },
			func(t *testing.T, r *oraRun) {
				ok, holder, err := r.d.TryLock(ctx, r.conn)
				require.NoError(t, err)
				require.True(t, ok)
				require.Empty(t, holder)
				c := r.f.recorded()
				require.Len(t, c, 1)
				require.Equal(t, oraLockName, c[0].args[0].Value)
			}},
		{"try lock held by another session", func(f *oraFake) {
			f.answer(oraTryLockSQL, oraAnswer{outs: []int64{1}})
			f.answer(oraLockHolderSQL, oraAnswer{cols: cols("INST_ID", "SID", "SERIAL#", "USERNAME", "MACHINE", "PROGRAM"),
				rows: [][]driver.Value{{int64(1), godror.Number("123"), int64(4567), "ALERTSYNC_CAPTURE", "host1", "alertsync"}}})
		}, func(t *testing.T, r *oraRun) {
			ok, holder, err := r.d.TryLock(ctx, r.conn)
			require.NoError(t, err)
			require.False(t, ok)
			require.Equal(t, "session 123,4567 on instance 1 (user ALERTSYNC_CAPTURE, program alertsync on host1)", holder)
		}},
		{"try lock held, holder gone meanwhile", func(f *oraFake) {
			f.answer(oraTryLockSQL, oraAnswer{outs: []int64{1}})
			f.answer(oraLockHolderSQL, oraAnswer{cols: cols("INST_ID", "SID", "SERIAL#", "USERNAME", "MACHINE", "PROGRAM")})
		}, func(t *testing.T, r *oraRun) {
			ok, holder, err := r.d.TryLock(ctx, r.conn)
			require.NoError(t, err)
			require.False(t, ok)
			require.Empty(t, holder)
			require.Len(t, r.f.recorded(), 12, "six attempts, each request and holder lookup")
		}},
		{"try lock held, holder not visible", func(f *oraFake) {
			f.answer(oraTryLockSQL, oraAnswer{outs: []int64{1}})
			f.answer(oraLockHolderSQL, oraAnswer{err: fakeOraErr{942}})
		}, func(t *testing.T, r *oraRun) {
			ok, holder, err := r.d.TryLock(ctx, r.conn)
			require.NoError(t, err)
			require.False(t, ok)
			require.Contains(t, holder, "grant SELECT on SYS.GV_$LOCK")
		}},
		{"try lock deadlock", func(f *oraFake) { f.answer(oraTryLockSQL, oraAnswer{outs: []int64{2}}) },
			func(t *testing.T, r *oraRun) {
				_, _, err := r.d.TryLock(ctx, r.conn)
				require.ErrorContains(t, err, "DBMS_LOCK.REQUEST returned 2")
			}},
		{"unlock", func(f *oraFake) { f.answer(oraUnlockSQL, oraAnswer{outs: []int64{0}}) },
			func(t *testing.T, r *oraRun) {
				require.NoError(t, r.d.Unlock(ctx, r.conn))
				r.f.answer(oraUnlockSQL, oraAnswer{outs: []int64{4}})
				require.NoError(t, r.d.Unlock(ctx, r.conn), "not held is no error")
				r.f.answer(oraUnlockSQL, oraAnswer{outs: []int64{3}})
				require.ErrorContains(t, r.d.Unlock(ctx, r.conn), "DBMS_LOCK.RELEASE returned 3")
			}},
		{"migrate", func(f *oraFake) {
			f.answer(oraMigrateCheckSQL, oraAnswer{cols: cols("SCHEMA", "TABLES"),
				rows: [][]driver.Value{{"OMS_OWNER", "OFFENDERS,OFFENDER_ALERTS,OFFENDER_BOOKINGS"}}})
		}, func(t *testing.T, r *oraRun) {
			require.NoError(t, r.d.Migrate(ctx, r.h, slog.New(slog.DiscardHandler)))
			set, err := migrate.Load("nomis", deploy.OracleMigrations())
			require.NoError(t, err)
			var want []string
			for _, m := range set.Migrations {
				want = append(want, migrate.SplitOracle(m.SQL)...)
			}
			var got []string
			for _, c := range r.f.recorded() {
				if slices.Contains(want, c.query) {
					got = append(got, c.query)
				}
			}
			require.Equal(t, want, got, "every statement of every Oracle migration, in order")
			require.Contains(t, want, migrate.SplitOracle(mustMigration(t, set, "resync_and_state"))[0])
		}},
		{"migrate in the wrong schema", func(f *oraFake) {
			f.answer(oraMigrateCheckSQL, oraAnswer{cols: cols("SCHEMA", "TABLES"),
				rows: [][]driver.Value{{"ALERTSYNC_CAPTURE", "OFFENDERS,OFFENDER_ALERTS,OFFENDER_BOOKINGS"}}})
		}, func(t *testing.T, r *oraRun) {
			err := r.d.Migrate(ctx, r.h, slog.New(slog.DiscardHandler))
			require.ErrorIs(t, err, errOracleSchema)
			require.ErrorContains(t, err, "current schema ALERTSYNC_CAPTURE")
			require.True(t, r.d.Permanent(err))
			require.Len(t, r.f.recorded(), 1, "nothing applied")
		}},
		{"migrate without the NOMIS tables", func(f *oraFake) {
			f.answer(oraMigrateCheckSQL, oraAnswer{cols: cols("SCHEMA", "TABLES"), rows: [][]driver.Value{{"OMS_OWNER", "OFFENDERS"}}})
		}, func(t *testing.T, r *oraRun) {
			err := r.d.Migrate(ctx, r.h, slog.New(slog.DiscardHandler))
			require.ErrorIs(t, err, ErrNoNOMISTables)
			require.ErrorContains(t, err, "OMS_OWNER.OFFENDER_BOOKINGS, OMS_OWNER.OFFENDER_ALERTS")
		}},
		{"check", func(f *oraFake) {
			f.answer(oraCheckSQL, oraAnswer{cols: cols("DB", "DEPENDENCIES", "OTHERS"),
				rows: [][]driver.Value{{"NOMIS", "ENABLED", godror.Number("3")}}})
		}, func(t *testing.T, r *oraRun) {
			name, err := r.d.Check(ctx, r.conn)
			require.NoError(t, err)
			require.Equal(t, "NOMIS", name)
			r.f.answer(oraCheckSQL, oraAnswer{cols: cols("DB", "DEPENDENCIES", "OTHERS"), rows: [][]driver.Value{{"NOMIS", nil, int64(0)}}})
			_, err = r.d.Check(ctx, r.conn)
			require.ErrorIs(t, err, ErrNoJournal)
			r.f.answer(oraCheckSQL, oraAnswer{cols: cols("DB", "DEPENDENCIES", "OTHERS"), rows: [][]driver.Value{{"NOMIS", "ENABLED", int64(2)}}})
			_, err = r.d.Check(ctx, r.conn)
			require.ErrorIs(t, err, ErrNoJournal, "resync tables missing")
			r.f.answer(oraCheckSQL, oraAnswer{cols: cols("DB", "DEPENDENCIES", "OTHERS"), rows: [][]driver.Value{{"NOMIS", "DISABLED", int64(3)}}})
			_, err = r.d.Check(ctx, r.conn)
			require.ErrorIs(t, err, ErrCommitOrder)
			require.ErrorContains(t, err, "ROWDEPENDENCIES")
		}},
		{"listen polls", nil, func(t *testing.T, r *oraRun) {
			w, err := r.d.Listen(ctx, r.conn)
			require.NoError(t, err)
			require.Nil(t, w)
			require.Empty(t, r.f.recorded())
			require.Equal(t, "oracle", r.d.Name())
			require.Equal(t, "OMS_OWNER.ALERTSYNC_JOURNAL", r.d.JournalTable())
		}},
		{"keys", func(f *oraFake) {
			f.answer(oraKeysSQL, oraAnswer{cols: cols("JOURNAL_ID", "COMMIT_SCN", "COMMIT_TIME"), rows: [][]driver.Value{
				{int64(11), godror.Number("9000000001"), t1}, {int64(10), godror.Number("9000000001"), t1}, {int64(12), godror.Number("9000000007"), t2}}})
		}, func(t *testing.T, r *oraRun) {
			keys, err := r.d.Keys(ctx, r.conn, 500)
			require.NoError(t, err)
			require.Equal(t, []JournalKey{{ID: 11, Commit: 9000000001, CommitTime: t1}, {ID: 10, Commit: 9000000001, CommitTime: t1},
				{ID: 12, Commit: 9000000007, CommitTime: t2}}, keys, "in the order read")
			require.Equal(t, 500, r.f.recorded()[0].args[0].Value)
		}},
		{"rows", func(f *oraFake) {
			f.answer(oraRowsSQL, oraAnswer{cols: cols("JOURNAL_ID", "TABLE_NAME", "OPERATION", "OLD_ROW", "NEW_ROW", "MODULE_NAME",
				"ADDITIONAL_INFO", "USER_ID", "TXID"), rows: [][]driver.Value{
				{int64(10), "offender_alerts", "I", nil, `{"alert_seq":1}`, "OIDALERT", nil, "CLERK1", "7.12.3345"},
				{int64(11), "offenders", "D", `{"offender_id":5}`, nil, nil, nil, nil, "7.12.3346"}}})
		}, func(t *testing.T, r *oraRun) {
			got, err := r.d.Rows(ctx, r.conn, []int64{10, 11, 99})
			require.NoError(t, err)
			require.Len(t, got, 2)
			require.Equal(t, []byte(`{"alert_seq":1}`), got[0].New)
			require.Nil(t, got[0].Old)
			require.Equal(t, "OIDALERT", *got[0].Module)
			require.Nil(t, got[0].AdditionalInfo)
			require.Equal(t, "7.12.3345", got[0].TxID)
			require.Equal(t, []byte(`{"offender_id":5}`), got[1].Old)
			var ids []int64
			oraLob(t, r.f.recorded()[0], &ids)
			require.Equal(t, []int64{10, 11, 99}, ids)
			none, err := r.d.Rows(ctx, r.conn, nil)
			require.NoError(t, err)
			require.Empty(t, none)
			require.Len(t, r.f.recorded(), 1, "no statement for no ids")
		}},
		{"alert contexts", func(f *oraFake) {
			f.answer(oraAlertContextsSQL, oraAnswer{cols: cols("BOOK", "SEQ", "OFFENDER_ID_DISPLAY", "BOOKING_SEQ", "DPS_ALERT_ID"),
				rows: [][]driver.Value{{int64(100), int64(1), "A1234BC", godror.Number("1"), "3f2c1a5e-0000-4000-8000-000000000001"},
					{int64(200), int64(3), nil, nil, nil}}})
		}, func(t *testing.T, r *oraRun) {
			got, err := r.d.AlertContexts(ctx, r.conn, []AlertKey{{100, 1}, {200, 3}, {300, 2}})
			require.NoError(t, err)
			require.Len(t, got, 3, "every key")
			c := got[AlertKey{100, 1}]
			require.Equal(t, "A1234BC", *c.OffenderNo)
			require.Equal(t, int32(1), *c.BookingSeq)
			require.Equal(t, "3f2c1a5e-0000-4000-8000-000000000001", *c.DPSAlertID)
			require.Equal(t, AlertContext{}, got[AlertKey{200, 3}])
			require.Equal(t, AlertContext{}, got[AlertKey{300, 2}])
			var pairs [][2]int64
			oraLob(t, r.f.recorded()[0], &pairs)
			require.Equal(t, [][2]int64{{100, 1}, {200, 3}, {300, 2}}, pairs)
		}},
		{"delete with resyncs", nil, func(t *testing.T, r *oraRun) {
			require.NoError(t, r.d.Delete(ctx, r.conn, []int64{10, 11}, []Resync{
				{OffenderNo: "B2", Due: t1, Reason: ReasonNewBooking},
				{OffenderNo: "A1", Due: t1, Reason: ReasonMerge},
				{OffenderNo: "B2", Due: t2, Reason: ReasonBookingCopy},
			}))
			c := r.f.recorded()
			require.Len(t, c, 2)
			require.Equal(t, oraDeleteSQL, c[0].query)
			require.Equal(t, oraMergeResyncsSQL, c[1].query)
			var ids []int64
			oraLob(t, c[0], &ids)
			require.Equal(t, []int64{10, 11}, ids)
			var rs []oraResync
			oraLob(t, c[1], &rs)
			require.Equal(t, []oraResync{
				{OffenderNo: "A1", Due: "2024-02-01T10:11:12.123456+00:00", Reason: ReasonMerge},
				{OffenderNo: "B2", Due: "2024-02-01T10:12:12.123456+00:00", Reason: ReasonNewBooking},
			}, rs, "one per prisoner: the later due, the first reason")
			require.Len(t, r.f.txs, 1)
			require.False(t, r.f.txs[0].ReadOnly)
			require.Equal(t, 1, r.f.commits)

			require.NoError(t, r.d.Delete(ctx, r.conn, []int64{12}, nil))
			require.Len(t, r.f.recorded(), 3, "no MERGE without resyncs")
			require.NoError(t, r.d.Delete(ctx, r.conn, nil, nil))
			require.Len(t, r.f.recorded(), 3, "nothing to do")
			require.Equal(t, 2, r.f.commits)

			r.f.answer(oraMergeResyncsSQL, oraAnswer{err: fakeOraErr{1}})
			err := r.d.Delete(ctx, r.conn, []int64{13}, []Resync{{OffenderNo: "A1", Due: t1, Reason: ReasonMerge}})
			require.ErrorContains(t, err, "recording 1 prisoner resyncs")
			require.Equal(t, 1, r.f.rollbacks, "the delete is rolled back with the failed MERGE")
			require.Equal(t, 2, r.f.commits)
		}},
		{"pending resyncs", func(f *oraFake) {
			f.answer(oraPendingResyncsSQL, oraAnswer{cols: cols("OFFENDER_NO", "DUE_AT", "REASON"),
				rows: [][]driver.Value{{"A1", t1, ReasonNewBooking}, {"B2", t2, ReasonMerge}}})
		}, func(t *testing.T, r *oraRun) {
			got, err := r.d.PendingResyncs(ctx, r.conn)
			require.NoError(t, err)
			require.Equal(t, []Resync{{"A1", t1, ReasonNewBooking}, {"B2", t2, ReasonMerge}}, got)
		}},
		{"done resyncs", nil, func(t *testing.T, r *oraRun) {
			require.NoError(t, r.d.DoneResyncs(ctx, r.conn, []Resync{{"A1", t1, ReasonNewBooking}}))
			require.NoError(t, r.d.DoneResyncs(ctx, r.conn, nil))
			c := r.f.recorded()
			require.Len(t, c, 1)
			var rs []oraResync
			oraLob(t, c[0], &rs)
			require.Equal(t, []oraResync{{OffenderNo: "A1", Due: "2024-02-01T10:11:12.123456+00:00", Reason: ReasonNewBooking}}, rs)
		}},
		{"prison numbers", func(f *oraFake) {
			f.answer(oraPrisonNumbersSQL, oraAnswer{cols: cols("OFFENDER_ID", "OFFENDER_ID_DISPLAY"),
				rows: [][]driver.Value{{godror.Number("5"), "A1234BC"}}})
		}, func(t *testing.T, r *oraRun) {
			got, err := r.d.PrisonNumbers(ctx, r.conn, []int64{5, 6})
			require.NoError(t, err)
			require.Equal(t, map[int64]string{5: "A1234BC"}, got)
			var ids []int64
			oraLob(t, r.f.recorded()[0], &ids)
			require.Equal(t, []int64{5, 6}, ids)
		}},
		{"snapshot", func(f *oraFake) {
			f.answer(oraCurrentSCNSQL, oraAnswer{cols: cols("SCN"), rows: [][]driver.Value{{godror.Number("9000000100")}}})
			f.answer(oraSnapshotPositionSQL, oraAnswer{cols: cols("SCN", "JOURNAL_ID", "NOW"),
				rows: [][]driver.Value{{godror.Number("9000000099"), int64(42), t2}}})
			f.answer(oraSnapshotJournalSQL, oraAnswer{cols: cols("JOURNAL_ID"), rows: [][]driver.Value{{int64(41)}, {int64(42)}}})
			img := `{"alert_date":"2024-02-01T00:00:00","offender_book_id":100,"alert_seq":1}`
			f.answer(oraCurrentAlertsSQL, oraAnswer{cols: cols("OFFENDER_ID_DISPLAY", "OFFENDER_BOOK_ID", "ALERT_ROW", "DPS_ALERT_ID"),
				rows: [][]driver.Value{{"A1", int64(100), img, "3f2c1a5e-0000-4000-8000-000000000001"}, {"B2", int64(200), nil, nil}}})
			f.answer(oraCurrentAlertsOfSQL, oraAnswer{cols: cols("OFFENDER_ID_DISPLAY", "OFFENDER_BOOK_ID", "ALERT_ROW", "DPS_ALERT_ID"),
				rows: [][]driver.Value{{"B2", int64(200), nil, nil}}})
		}, func(t *testing.T, r *oraRun) {
			tx, pos, err := r.d.BeginSnapshot(ctx, r.conn)
			require.NoError(t, err)
			require.Equal(t, JournalKey{ID: 42, Commit: 9000000099, CommitTime: t2}, pos)
			require.Len(t, r.f.txs, 1)
			require.True(t, r.f.txs[0].ReadOnly, "a read-only transaction")
			c := r.f.recorded()
			require.Equal(t, oraCurrentSCNSQL, c[0].query, "the SCN is read before the transaction starts")
			require.Equal(t, int64(9000000100), c[1].args[0].Value)

			ids, err := r.d.SnapshotJournal(ctx, tx)
			require.NoError(t, err)
			require.Equal(t, []int64{41, 42}, ids)

			type seen struct {
				no    string
				book  int64
				alert string
				dps   string
			}
			var all []seen
			collect := func(p *PrisonerRow) error {
				s := seen{no: p.OffenderNo, book: p.BookID, alert: string(p.Alert)}
				if p.DPSAlertID != nil {
					s.dps = *p.DPSAlertID
				}
				all = append(all, s)
				return nil
			}
			require.NoError(t, r.d.CurrentAlerts(ctx, tx, nil, collect))
			require.Equal(t, []seen{{"A1", 100, `{"alert_date":"2024-02-01T00:00:00","offender_book_id":100,"alert_seq":1}`,
				"3f2c1a5e-0000-4000-8000-000000000001"}, {"B2", 200, "", ""}}, all, "a booking without alerts: one row, nil alert")
			all = nil
			require.NoError(t, r.d.CurrentAlerts(ctx, tx, []string{"B2", "C3"}, collect))
			require.Equal(t, []seen{{"B2", 200, "", ""}}, all)
			var nos []string
			oraLob(t, r.f.recorded()[len(r.f.recorded())-1], &nos)
			require.Equal(t, []string{"B2", "C3"}, nos)
			n := len(r.f.recorded())
			require.NoError(t, r.d.CurrentAlerts(ctx, tx, []string{}, collect))
			require.Len(t, r.f.recorded(), n, "no prisoners, no statement")
			stop := errors.New("stop")
			require.ErrorIs(t, r.d.CurrentAlerts(ctx, tx, nil, func(*PrisonerRow) error { return stop }), stop)
			require.NoError(t, tx.Rollback())
		}},
		{"initial load", func(f *oraFake) {
			f.answer(oraInitialLoadSQL, oraAnswer{cols: cols("POSITION_COMMIT", "POSITION_CHANGE", "ALERTS", "PRISONERS", "COMPLETED_AT")})
		}, func(t *testing.T, r *oraRun) {
			_, ok, err := r.d.InitialLoad(ctx, r.conn)
			require.NoError(t, err)
			require.False(t, ok)
			require.Equal(t, oraInitialLoadName, r.f.recorded()[0].args[0].Value)
			done := InitialLoadState{Position: JournalKey{Commit: 9000000099, ID: 42}, Alerts: 7, Prisoners: 3, CompletedAt: t2}
			require.NoError(t, r.d.RecordInitialLoad(ctx, r.conn, done))
			args := r.f.recorded()[1].args
			got := make([]any, len(args))
			for i, a := range args {
				got[i] = a.Value
			}
			require.Equal(t, []any{oraInitialLoadName, int64(9000000099), int64(42), int64(7), int64(3), t2}, got)
			r.f.answer(oraInitialLoadSQL, oraAnswer{cols: cols("POSITION_COMMIT", "POSITION_CHANGE", "ALERTS", "PRISONERS", "COMPLETED_AT"),
				rows: [][]driver.Value{{godror.Number("9000000099"), int64(42), int64(7), int64(3), t2}}})
			back, ok, err := r.d.InitialLoad(ctx, r.conn)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, done, back)
		}},
		{"backlog", func(f *oraFake) {
			f.answer(oraBacklogSQL, oraAnswer{cols: cols("N", "OLDEST"), rows: [][]driver.Value{{godror.Number("5"), t1}}})
		}, func(t *testing.T, r *oraRun) {
			n, oldest, err := r.d.Backlog(ctx, r.conn)
			require.NoError(t, err)
			require.Equal(t, int64(5), n)
			require.Equal(t, t1, oldest)
			r.f.answer(oraBacklogSQL, oraAnswer{cols: cols("N", "OLDEST"), rows: [][]driver.Value{{int64(0), nil}}})
			n, oldest, err = r.d.Backlog(ctx, r.conn)
			require.NoError(t, err)
			require.Zero(t, n)
			require.True(t, oldest.IsZero())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newOraRun(t)
			if tt.setup != nil {
				tt.setup(r.f)
			}
			tt.run(t, r)
			got := r.f.recorded()
			for _, c := range got {
				require.Empty(t, oraCheckCall(c, stmts, oraEngineStatement(t, c.query)), "statement %.80q", c.query)
			}
			mu.Lock()
			calls = append(calls, got...)
			mu.Unlock()
		})
	}

	ran := map[string]bool{}
	for _, c := range calls {
		ran[c.query] = true
	}
	var unused []string
	for name, q := range stmts {
		if !ran[q] {
			unused = append(unused, name)
		}
	}
	sort.Strings(unused)
	require.Empty(t, unused, "statement constants no method ran")
}

// TestOracleStatementChecker proves oraCheckCall catches what it is there
// to catch.
func TestOracleStatementChecker(t *testing.T) {
	t.Parallel()
	stmts := oraStatements(t)
	lob := godror.Lob{IsClob: true}
	arg := func(vs ...any) []driver.NamedValue {
		out := make([]driver.NamedValue, len(vs))
		for i, v := range vs {
			out[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
		}
		return out
	}
	tests := []struct {
		name string
		call oraCall
		want string // "" = no problem
	}{
		{"right", oraCall{query: oraKeysSQL, args: arg(500), kind: "query", cols: 3}, ""},
		{"right exec", oraCall{query: oraDeleteSQL, args: arg(lob), kind: "exec"}, ""},
		{"right out bind", oraCall{query: oraTryLockSQL, args: arg(oraLockName, sql.Out{}), kind: "exec"}, ""},
		{"argument missing", oraCall{query: oraKeysSQL, kind: "query", cols: 3}, "1 placeholders [1] for 0 arguments"},
		{"argument too many", oraCall{query: oraRecordInitialLoadSQL, args: arg(1, 2, 3, 4, 5, 6, 7), kind: "exec"}, "for 7 arguments"},
		{"placeholder out of order", oraCall{query: "SELECT :2, :1 FROM DUAL", args: arg(1, 2), kind: "query", cols: 2}, "want :1..:2"},
		{"placeholder twice", oraCall{query: "SELECT :1, :1 FROM DUAL", args: arg(1), kind: "query", cols: 2}, "want :1..:2"},
		{"postgres placeholder", oraCall{query: "DELETE FROM T WHERE ID = $1", args: arg(1), kind: "exec"}, "PostgreSQL $n placeholder"},
		{"ad hoc statement", oraCall{query: "SELECT 1 FROM DUAL", kind: "query", cols: 1}, "not one of the ora…SQL constants"},
		{"named without argument", oraCall{query: "SELECT :name FROM DUAL", kind: "query", cols: 1}, "placeholder :NAME has no argument"},
		{"named matching", oraCall{query: "SELECT :name FROM DUAL", kind: "query", cols: 1,
			args: []driver.NamedValue{{Name: "name", Value: 1}}}, "not one of the ora…SQL constants"},
		{"select list wider than the scan", oraCall{query: oraBacklogSQL, kind: "query", cols: 1}, "select list of 2 items, canned answer of 1 columns"},
		{"literal colons are no placeholders", oraCall{query: oraMergeResyncsSQL, args: arg(lob), kind: "exec"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			problems := oraCheckCall(tt.call, stmts, false)
			if tt.want == "" {
				require.Empty(t, problems)
				return
			}
			require.NotEmpty(t, problems)
			require.Contains(t, strings.Join(problems, "; "), tt.want)
		})
	}
	require.Equal(t, 3, oraSelectListLen(oraKeysSQL), "WITH … SELECT: the main select list")
	require.Equal(t, 4, oraSelectListLen(oraCurrentAlertsSQL), "a JSON_OBJECT of 25 keys is one item")
	require.Equal(t, 0, oraSelectListLen(oraDeleteSQL))
}

// TestOracleSnapshotImageMatchesTrigger keeps CurrentAlerts' alert image
// equal to the journal trigger's: the same keys, columns and order.
func TestOracleSnapshotImageMatchesTrigger(t *testing.T) {
	t.Parallel()
	set, err := migrate.Load("nomis", deploy.OracleMigrations())
	require.NoError(t, err)
	var trigger string
	for _, s := range migrate.SplitOracle(mustMigration(t, set, "journal_triggers")) {
		if strings.HasPrefix(s, "CREATE OR REPLACE TRIGGER ALERTSYNC_ALERTS_JNL") {
			trigger = s
		}
	}
	require.NotEmpty(t, trigger)
	pairs := func(re, s string) []string {
		var out []string
		for _, m := range regexp.MustCompile(re).FindAllStringSubmatch(s, -1) {
			out = append(out, m[1]+"="+m[2])
		}
		return out
	}
	want := pairs(`'(\w+)' VALUE :NEW\.(\w+)`, trigger)
	require.Len(t, want, 25)
	require.Equal(t, want, pairs(`'(\w+)' VALUE a\.(\w+)`, oraCurrentAlertsSQL))
	require.Equal(t, want, pairs(`'(\w+)' VALUE a\.(\w+)`, oraCurrentAlertsOfSQL))
	for _, q := range []string{oraCurrentAlertsSQL, oraCurrentAlertsOfSQL} {
		require.Contains(t, q, "NULL ON NULL RETURNING CLOB")
		require.Contains(t, q, "b.BOOKING_SEQ = 1")
		require.Contains(t, q, "LEFT JOIN OMS_OWNER.OFFENDER_ALERTS a", "a booking without alerts still yields a row")
		require.True(t, strings.HasSuffix(q, "ORDER BY o.OFFENDER_ID_DISPLAY, b.OFFENDER_BOOK_ID, a.ALERT_SEQ"))
	}
	// Keys and the snapshot position use the horizon of journal_read.sql.
	read := deploy.OracleJournalReadSQL()
	horizon := read[strings.Index(read, "journal_writer_start AS ("):strings.Index(read, "\nSELECT j.JOURNAL_ID")]
	require.Equal(t, strings.Join(strings.Fields(horizon), ""), strings.Join(strings.Fields(oraWriterStart), ""))
}

func TestOraclePermanent(t *testing.T) {
	t.Parallel()
	d := newOracle(Options{})
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"bad credentials", fakeOraErr{1017}, true},
		{"missing table or grant", fmt.Errorf("reading the journal: %w", fakeOraErr{942}), true},
		{"insufficient privileges", fakeOraErr{1031}, true},
		{"missing object", fakeOraErr{4043}, true},
		{"DBMS_LOCK not granted", fakeOraErr{6550}, true},
		{"account locked", fakeOraErr{28000}, true},
		{"end of file on channel", fakeOraErr{3113}, false},
		{"snapshot too old", fakeOraErr{1555}, false},
		{"listener does not know the service yet", fakeOraErr{12514}, false},
		{"no ORA code", fakeOraErr{0}, false},
		{"client library missing", fmt.Errorf("connecting: %w", db.ErrOracleClient), true},
		{"wrong schema", errOracleSchema, true},
		{"plain error", errors.New("ORA-01017 in a string is not a code"), false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, d.Permanent(tt.err))
		})
	}
}

// TestOracleOpenWithoutClientLibrary opens the dialect's handle where the
// Oracle client library cannot be loaded (libDir names an empty directory,
// so the result is the same whether or not Instant Client is installed;
// this machine has none) and checks that connecting fails permanently with
// the library's name and how to install it.
func TestOracleOpenWithoutClientLibrary(t *testing.T) {
	t.Parallel()
	d, err := NewDialect("oracle", Options{})
	require.NoError(t, err)
	require.Equal(t, "oracle", d.Name())
	dsn := fmt.Sprintf(`user="alertsync_capture" connectString="127.0.0.1:1/NOMIS" libDir=%q`, t.TempDir())
	h, err := d.Open(config.NOMIS{DSN: dsn, Dialect: "oracle", Password: config.NewSecret("hidden-pw")})
	require.NoError(t, err, "Open does not connect")
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	conn, err := h.Conn(context.Background())
	if err == nil {
		_ = conn.Close()
	}
	require.ErrorIs(t, err, db.ErrOracleClient)
	require.ErrorContains(t, err, db.OracleClientLibrary())
	require.ErrorContains(t, err, "Oracle Instant Client")
	require.NotContains(t, err.Error(), "hidden-pw")
	require.True(t, d.Permanent(err), "a missing client library needs a human")

	_, err = d.Open(config.NOMIS{DSN: "postgres://alertsync@localhost:5433/nomis", Dialect: "oracle"})
	require.ErrorContains(t, err, "nomis.dsn: parsing Oracle DSN")
}

func mustMigration(t *testing.T, set *migrate.Set, name string) string {
	t.Helper()
	for _, m := range set.Migrations {
		if m.Name == name {
			return m.SQL
		}
	}
	t.Fatalf("no migration %q in %s", name, set.Name)
	return ""
}
