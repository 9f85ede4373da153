package nomis

// Tests of the Oracle dialect without an Oracle server (none can run here):
// every method runs against orafake (internal/testenv/orafake), a
// database/sql driver that records each statement with its arguments and
// answers with canned rows, and orafake.Check checks each recorded
// statement against the dialect's constants, its binds against the Go
// call's arguments, and its select list against the columns the method
// scans. What this cannot show is that Oracle accepts the SQL: see
// deploy/oracle/README.md.

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sort"
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
	"github.com/alertsync/alertsync/internal/testenv/orafake"
)

// oraAppliedSQL is the migration engine's read of the applied migrations.
var oraAppliedSQL = migrate.Oracle{}.Query("SELECT version, name, checksum, applied_at FROM {table} WHERE set_name = ?")

// oraAppliedCols are the columns of oraAppliedSQL.
var oraAppliedCols = []string{"VERSION", "NAME", "CHECKSUM", "APPLIED_AT"}

// newOraFake returns a fake Oracle that answers the migration engine's own
// statements (internal/migrate) as a database where no migration has run
// yet, and answers its read of the applied migrations with those it
// recorded since.
func newOraFake() *orafake.Fake {
	f := orafake.New()
	f.Answer(migrate.Oracle{}.Query("SELECT COUNT(*) FROM USER_TABLES WHERE TABLE_NAME = ?"),
		orafake.Answer{Cols: []string{"N"}, Rows: [][]driver.Value{{int64(0)}}})
	f.Answer(oraAppliedSQL, orafake.Answer{Cols: oraAppliedCols})
	var (
		mu      sync.Mutex
		applied [][]driver.Value
	)
	f.OnCall(func(c orafake.Call) {
		if c.Kind != "exec" || !strings.HasPrefix(c.Query, "INSERT INTO "+migrate.OracleVersionTable+" ") {
			return
		}
		// The engine records a migration (set_name, version, name,
		// checksum): answer its next read with it.
		mu.Lock()
		defer mu.Unlock()
		applied = append(applied, []driver.Value{c.Args[1].Value, c.Args[2].Value, c.Args[3].Value, time.Now()})
		f.Answer(oraAppliedSQL, orafake.Answer{Cols: oraAppliedCols, Rows: slices.Clone(applied)})
	})
	return f
}

// oraStatements returns the dialect's statements: every constant of
// oracle.go named ora…SQL.
func oraStatements(t *testing.T) map[string]string {
	t.Helper()
	out, err := orafake.Statements("oracle.go", "ora", "SQL")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(out), 20, "the dialect's statements")
	return out
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

// oraRun is a dialect and a fake database with one connection.
type oraRun struct {
	d    *oracle
	f    *orafake.Fake
	h    *sql.DB
	conn *sql.Conn
}

func newOraRun(t *testing.T) *oraRun {
	t.Helper()
	f := newOraFake()
	h := f.DB()
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	conn, err := h.Conn(context.Background())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return &oraRun{d: newOracle(Options{}), f: f, h: h, conn: conn}
}

// recorded returns the statements run so far (no transaction events).
func (r *oraRun) recorded() []orafake.Call {
	var out []orafake.Call
	for _, c := range r.f.Calls() {
		if c.Kind == "query" || c.Kind == "exec" {
			out = append(out, c)
		}
	}
	return out
}

// txs returns the options of the transactions begun so far.
func (r *oraRun) txs() []driver.TxOptions {
	var out []driver.TxOptions
	for _, c := range r.f.Calls() {
		if c.Kind == "begin" {
			out = append(out, c.TxOptions)
		}
	}
	return out
}

// ended counts the transactions ended by kind ("commit" or "rollback").
func (r *oraRun) ended(kind string) int {
	n := 0
	for _, c := range r.f.Calls() {
		if c.Kind == kind {
			n++
		}
	}
	return n
}

// oraOuts is the answer of a PL/SQL call whose out binds get vs.
func oraOuts(vs ...int64) orafake.Answer {
	outs := make([]any, len(vs))
	for i, v := range vs {
		outs[i] = v
	}
	return orafake.Answer{Outs: outs}
}

func oraLob(t *testing.T, c orafake.Call, v any) {
	t.Helper()
	require.Len(t, c.Lobs, 1, "one collection bind")
	require.NoError(t, json.Unmarshal(c.Lobs[0], v), "collection bind %s", c.Lobs[0])
}

func cols(names ...string) []string { return names }

// TestOracleDialectStatements runs every method of the Oracle dialect with
// representative inputs against the recording driver and checks every
// statement it ran (orafake.Check), what it bound and what it made of the
// canned rows; at the end, that every statement constant was run.
func TestOracleDialectStatements(t *testing.T) {
	ctx := context.Background()
	stmts := oraStatements(t)
	t1 := time.Date(2024, 2, 1, 10, 11, 12, 123456789, time.UTC)
	t2 := t1.Add(time.Minute)

	var (
		mu    sync.Mutex
		calls []orafake.Call
	)
	tests := []struct {
		name  string
		setup func(f *orafake.Fake)
		run   func(t *testing.T, r *oraRun)
	}{
		{"try lock granted", func(f *orafake.Fake) { f.Answer(oraTryLockSQL, oraOuts(0)) },
			func(t *testing.T, r *oraRun) {
				ok, holder, err := r.d.TryLock(ctx, r.conn)
				require.NoError(t, err)
				require.True(t, ok)
				require.Empty(t, holder)
				c := r.recorded()
				require.Len(t, c, 1)
				require.Equal(t, oraLockName, c[0].Args[0].Value)
			}},
		{"try lock held by another session", func(f *orafake.Fake) {
			f.Answer(oraTryLockSQL, oraOuts(1))
			f.Answer(oraLockHolderSQL, orafake.Answer{Cols: cols("INST_ID", "SID", "SERIAL#", "USERNAME", "MACHINE", "PROGRAM"),
				Rows: [][]driver.Value{{int64(1), godror.Number("123"), int64(4567), "ALERTSYNC_CAPTURE", "host1", "alertsync"}}})
		}, func(t *testing.T, r *oraRun) {
			ok, holder, err := r.d.TryLock(ctx, r.conn)
			require.NoError(t, err)
			require.False(t, ok)
			require.Equal(t, "session 123,4567 on instance 1 (user ALERTSYNC_CAPTURE, program alertsync on host1)", holder)
		}},
		{"try lock held, holder gone meanwhile", func(f *orafake.Fake) {
			f.Answer(oraTryLockSQL, oraOuts(1))
			f.Answer(oraLockHolderSQL, orafake.Answer{Cols: cols("INST_ID", "SID", "SERIAL#", "USERNAME", "MACHINE", "PROGRAM")})
		}, func(t *testing.T, r *oraRun) {
			ok, holder, err := r.d.TryLock(ctx, r.conn)
			require.NoError(t, err)
			require.False(t, ok)
			require.Empty(t, holder)
			require.Len(t, r.recorded(), 12, "six attempts, each request and holder lookup")
		}},
		{"try lock held, holder not visible", func(f *orafake.Fake) {
			f.Answer(oraTryLockSQL, oraOuts(1))
			f.Answer(oraLockHolderSQL, orafake.Answer{Err: orafake.OraErr(942)})
		}, func(t *testing.T, r *oraRun) {
			ok, holder, err := r.d.TryLock(ctx, r.conn)
			require.NoError(t, err)
			require.False(t, ok)
			require.Contains(t, holder, "grant SELECT on SYS.GV_$LOCK")
		}},
		{"try lock deadlock", func(f *orafake.Fake) { f.Answer(oraTryLockSQL, oraOuts(2)) },
			func(t *testing.T, r *oraRun) {
				_, _, err := r.d.TryLock(ctx, r.conn)
				require.ErrorContains(t, err, "DBMS_LOCK.REQUEST returned 2")
			}},
		{"unlock", func(f *orafake.Fake) { f.Answer(oraUnlockSQL, oraOuts(0)) },
			func(t *testing.T, r *oraRun) {
				require.NoError(t, r.d.Unlock(ctx, r.conn))
				r.f.Answer(oraUnlockSQL, oraOuts(4))
				require.NoError(t, r.d.Unlock(ctx, r.conn), "not held is no error")
				r.f.Answer(oraUnlockSQL, oraOuts(3))
				require.ErrorContains(t, r.d.Unlock(ctx, r.conn), "DBMS_LOCK.RELEASE returned 3")
			}},
		{"migrate", func(f *orafake.Fake) {
			f.Answer(oraMigrateCheckSQL, orafake.Answer{Cols: cols("SCHEMA", "TABLES"),
				Rows: [][]driver.Value{{"OMS_OWNER", "OFFENDERS,OFFENDER_ALERTS,OFFENDER_BOOKINGS"}}})
		}, func(t *testing.T, r *oraRun) {
			require.NoError(t, r.d.Migrate(ctx, r.h, slog.New(slog.DiscardHandler)))
			set, err := migrate.Load("nomis", deploy.OracleMigrations())
			require.NoError(t, err)
			var want []string
			for _, m := range set.Migrations {
				want = append(want, migrate.SplitOracle(m.SQL)...)
			}
			var got []string
			for _, c := range r.recorded() {
				if slices.Contains(want, c.Query) {
					got = append(got, c.Query)
				}
			}
			require.Equal(t, want, got, "every statement of every Oracle migration, in order")
			require.Contains(t, want, migrate.SplitOracle(mustMigration(t, set, "resync_and_state"))[0])
		}},
		{"migrate in the wrong schema", func(f *orafake.Fake) {
			f.Answer(oraMigrateCheckSQL, orafake.Answer{Cols: cols("SCHEMA", "TABLES"),
				Rows: [][]driver.Value{{"ALERTSYNC_CAPTURE", "OFFENDERS,OFFENDER_ALERTS,OFFENDER_BOOKINGS"}}})
		}, func(t *testing.T, r *oraRun) {
			err := r.d.Migrate(ctx, r.h, slog.New(slog.DiscardHandler))
			require.ErrorIs(t, err, errOracleSchema)
			require.ErrorContains(t, err, "current schema ALERTSYNC_CAPTURE")
			require.True(t, r.d.Permanent(err))
			require.Len(t, r.recorded(), 1, "nothing applied")
		}},
		{"migrate without the NOMIS tables", func(f *orafake.Fake) {
			f.Answer(oraMigrateCheckSQL, orafake.Answer{Cols: cols("SCHEMA", "TABLES"), Rows: [][]driver.Value{{"OMS_OWNER", "OFFENDERS"}}})
		}, func(t *testing.T, r *oraRun) {
			err := r.d.Migrate(ctx, r.h, slog.New(slog.DiscardHandler))
			require.ErrorIs(t, err, ErrNoNOMISTables)
			require.ErrorContains(t, err, "OMS_OWNER.OFFENDER_BOOKINGS, OMS_OWNER.OFFENDER_ALERTS")
		}},
		{"check", func(f *orafake.Fake) {
			f.Answer(oraCheckSQL, orafake.Answer{Cols: cols("DB", "DEPENDENCIES", "OTHERS"),
				Rows: [][]driver.Value{{"NOMIS", "ENABLED", godror.Number("3")}}})
		}, func(t *testing.T, r *oraRun) {
			name, err := r.d.Check(ctx, r.conn)
			require.NoError(t, err)
			require.Equal(t, "NOMIS", name)
			r.f.Answer(oraCheckSQL, orafake.Answer{Cols: cols("DB", "DEPENDENCIES", "OTHERS"), Rows: [][]driver.Value{{"NOMIS", nil, int64(0)}}})
			_, err = r.d.Check(ctx, r.conn)
			require.ErrorIs(t, err, ErrNoJournal)
			r.f.Answer(oraCheckSQL, orafake.Answer{Cols: cols("DB", "DEPENDENCIES", "OTHERS"), Rows: [][]driver.Value{{"NOMIS", "ENABLED", int64(2)}}})
			_, err = r.d.Check(ctx, r.conn)
			require.ErrorIs(t, err, ErrNoJournal, "resync tables missing")
			r.f.Answer(oraCheckSQL, orafake.Answer{Cols: cols("DB", "DEPENDENCIES", "OTHERS"), Rows: [][]driver.Value{{"NOMIS", "DISABLED", int64(3)}}})
			_, err = r.d.Check(ctx, r.conn)
			require.ErrorIs(t, err, ErrCommitOrder)
			require.ErrorContains(t, err, "ROWDEPENDENCIES")
		}},
		{"listen polls", nil, func(t *testing.T, r *oraRun) {
			w, err := r.d.Listen(ctx, r.conn)
			require.NoError(t, err)
			require.Nil(t, w)
			require.Empty(t, r.recorded())
			require.Equal(t, "oracle", r.d.Name())
			require.Equal(t, "OMS_OWNER.ALERTSYNC_JOURNAL", r.d.JournalTable())
		}},
		{"keys", func(f *orafake.Fake) {
			f.Answer(oraKeysSQL, orafake.Answer{Cols: cols("JOURNAL_ID", "COMMIT_SCN", "COMMIT_TIME"), Rows: [][]driver.Value{
				{int64(11), godror.Number("9000000001"), t1}, {int64(10), godror.Number("9000000001"), t1}, {int64(12), godror.Number("9000000007"), t2}}})
		}, func(t *testing.T, r *oraRun) {
			keys, err := r.d.Keys(ctx, r.conn, 500)
			require.NoError(t, err)
			require.Equal(t, []JournalKey{{ID: 11, Commit: 9000000001, CommitTime: t1}, {ID: 10, Commit: 9000000001, CommitTime: t1},
				{ID: 12, Commit: 9000000007, CommitTime: t2}}, keys, "in the order read")
			require.Equal(t, 500, r.recorded()[0].Args[0].Value)
		}},
		{"rows", func(f *orafake.Fake) {
			f.Answer(oraRowsSQL, orafake.Answer{Cols: cols("JOURNAL_ID", "TABLE_NAME", "OPERATION", "OLD_ROW", "NEW_ROW", "MODULE_NAME",
				"ADDITIONAL_INFO", "USER_ID", "TXID"), Rows: [][]driver.Value{
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
			oraLob(t, r.recorded()[0], &ids)
			require.Equal(t, []int64{10, 11, 99}, ids)
			none, err := r.d.Rows(ctx, r.conn, nil)
			require.NoError(t, err)
			require.Empty(t, none)
			require.Len(t, r.recorded(), 1, "no statement for no ids")
		}},
		{"alert contexts", func(f *orafake.Fake) {
			f.Answer(oraAlertContextsSQL, orafake.Answer{Cols: cols("BOOK", "SEQ", "OFFENDER_ID_DISPLAY", "BOOKING_SEQ", "DPS_ALERT_ID"),
				Rows: [][]driver.Value{{int64(100), int64(1), "A1234BC", godror.Number("1"), "3f2c1a5e-0000-4000-8000-000000000001"},
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
			oraLob(t, r.recorded()[0], &pairs)
			require.Equal(t, [][2]int64{{100, 1}, {200, 3}, {300, 2}}, pairs)
		}},
		{"delete with resyncs", nil, func(t *testing.T, r *oraRun) {
			require.NoError(t, r.d.Delete(ctx, r.conn, []int64{10, 11}, []Resync{
				{OffenderNo: "B2", Due: t1, Reason: ReasonNewBooking},
				{OffenderNo: "A1", Due: t1, Reason: ReasonMerge},
				{OffenderNo: "B2", Due: t2, Reason: ReasonBookingCopy},
			}))
			c := r.recorded()
			require.Len(t, c, 2)
			require.Equal(t, oraDeleteSQL, c[0].Query)
			require.Equal(t, oraMergeResyncsSQL, c[1].Query)
			var ids []int64
			oraLob(t, c[0], &ids)
			require.Equal(t, []int64{10, 11}, ids)
			var rs []oraResync
			oraLob(t, c[1], &rs)
			require.Equal(t, []oraResync{
				{OffenderNo: "A1", Due: "2024-02-01T10:11:12.123456+00:00", Reason: ReasonMerge},
				{OffenderNo: "B2", Due: "2024-02-01T10:12:12.123456+00:00", Reason: ReasonNewBooking},
			}, rs, "one per prisoner: the later due, the first reason")
			require.Len(t, r.txs(), 1)
			require.False(t, r.txs()[0].ReadOnly)
			require.Equal(t, 1, r.ended("commit"))

			require.NoError(t, r.d.Delete(ctx, r.conn, []int64{12}, nil))
			require.Len(t, r.recorded(), 3, "no MERGE without resyncs")
			require.NoError(t, r.d.Delete(ctx, r.conn, nil, nil))
			require.Len(t, r.recorded(), 3, "nothing to do")
			require.Equal(t, 2, r.ended("commit"))

			r.f.Answer(oraMergeResyncsSQL, orafake.Answer{Err: orafake.OraErr(1)})
			err := r.d.Delete(ctx, r.conn, []int64{13}, []Resync{{OffenderNo: "A1", Due: t1, Reason: ReasonMerge}})
			require.ErrorContains(t, err, "recording 1 prisoner resyncs")
			require.Equal(t, 1, r.ended("rollback"), "the delete is rolled back with the failed MERGE")
			require.Equal(t, 2, r.ended("commit"))
		}},
		{"resync requests", nil, func(t *testing.T, r *oraRun) {
			require.NoError(t, r.d.RequestResyncs(ctx, r.conn, []ResyncRequest{
				{BookID: 70, Reason: ReasonRedrive}, {OffenderNo: "A1234BC", Reason: ReasonRedrive},
			}))
			c := r.recorded()
			require.Len(t, c, 1)
			require.Equal(t, oraRequestResyncsSQL, c[0].Query)
			require.Equal(t, RequestModule, c[0].Args[1].Value)
			require.EqualValues(t, 2, c[0].Args[2].Value, "the count the procedure checks")
			var reqs []ResyncRequest
			oraLob(t, c[0], &reqs)
			require.Equal(t, []ResyncRequest{{BookID: 70, Reason: ReasonRedrive}, {OffenderNo: "A1234BC", Reason: ReasonRedrive}}, reqs, "in order")
			require.Len(t, r.txs(), 1)
			require.Equal(t, 1, r.ended("commit"))

			require.NoError(t, r.d.RequestResyncs(ctx, r.conn, nil))
			require.ErrorContains(t, r.d.RequestResyncs(ctx, r.conn, []ResyncRequest{{Reason: ReasonRedrive}}), "names no prisoner")
			require.Len(t, r.recorded(), 1, "nothing run for none, nor for a bad request")

			r.f.Answer(oraRequestResyncsSQL, orafake.Answer{Err: orafake.OraErr(942)})
			require.ErrorContains(t, r.d.RequestResyncs(ctx, r.conn, []ResyncRequest{{BookID: 70, Reason: ReasonRedrive}}), "journaling 1 resync requests")
			require.Equal(t, 1, r.ended("rollback"))
		}},
		{"pending resyncs", func(f *orafake.Fake) {
			f.Answer(oraPendingResyncsSQL, orafake.Answer{Cols: cols("OFFENDER_NO", "DUE_AT", "REASON"),
				Rows: [][]driver.Value{{"A1", t1, ReasonNewBooking}, {"B2", t2, ReasonMerge}}})
		}, func(t *testing.T, r *oraRun) {
			got, err := r.d.PendingResyncs(ctx, r.conn)
			require.NoError(t, err)
			require.Equal(t, []Resync{{"A1", t1, ReasonNewBooking}, {"B2", t2, ReasonMerge}}, got)
		}},
		{"done resyncs", nil, func(t *testing.T, r *oraRun) {
			require.NoError(t, r.d.DoneResyncs(ctx, r.conn, []Resync{{"A1", t1, ReasonNewBooking}}))
			require.NoError(t, r.d.DoneResyncs(ctx, r.conn, nil))
			c := r.recorded()
			require.Len(t, c, 1)
			var rs []oraResync
			oraLob(t, c[0], &rs)
			require.Equal(t, []oraResync{{OffenderNo: "A1", Due: "2024-02-01T10:11:12.123456+00:00", Reason: ReasonNewBooking}}, rs)
		}},
		{"prison numbers", func(f *orafake.Fake) {
			f.Answer(oraPrisonNumbersSQL, orafake.Answer{Cols: cols("OFFENDER_ID", "OFFENDER_ID_DISPLAY"),
				Rows: [][]driver.Value{{godror.Number("5"), "A1234BC"}}})
		}, func(t *testing.T, r *oraRun) {
			got, err := r.d.PrisonNumbers(ctx, r.conn, []int64{5, 6})
			require.NoError(t, err)
			require.Equal(t, map[int64]string{5: "A1234BC"}, got)
			var ids []int64
			oraLob(t, r.recorded()[0], &ids)
			require.Equal(t, []int64{5, 6}, ids)
		}},
		{"snapshot", func(f *orafake.Fake) {
			f.Answer(oraCurrentSCNSQL, orafake.Answer{Cols: cols("SCN"), Rows: [][]driver.Value{{godror.Number("9000000100")}}})
			f.Answer(oraSnapshotPositionSQL, orafake.Answer{Cols: cols("SCN", "JOURNAL_ID", "NOW"),
				Rows: [][]driver.Value{{godror.Number("9000000099"), int64(42), t2}}})
			f.Answer(oraSnapshotJournalSQL, orafake.Answer{Cols: cols("JOURNAL_ID"), Rows: [][]driver.Value{{int64(41)}, {int64(42)}}})
			img := `{"alert_date":"2024-02-01T00:00:00","offender_book_id":100,"alert_seq":1}`
			f.Answer(oraCurrentAlertsSQL, orafake.Answer{Cols: cols("OFFENDER_ID_DISPLAY", "OFFENDER_BOOK_ID", "ALERT_ROW", "DPS_ALERT_ID"),
				Rows: [][]driver.Value{{"A1", int64(100), img, "3f2c1a5e-0000-4000-8000-000000000001"}, {"B2", int64(200), nil, nil}}})
			f.Answer(oraCurrentAlertsOfSQL, orafake.Answer{Cols: cols("OFFENDER_ID_DISPLAY", "OFFENDER_BOOK_ID", "ALERT_ROW", "DPS_ALERT_ID"),
				Rows: [][]driver.Value{{"B2", int64(200), nil, nil}}})
		}, func(t *testing.T, r *oraRun) {
			tx, pos, err := r.d.BeginSnapshot(ctx, r.conn)
			require.NoError(t, err)
			require.Equal(t, JournalKey{ID: 42, Commit: 9000000099, CommitTime: t2}, pos)
			require.Len(t, r.txs(), 1)
			require.True(t, r.txs()[0].ReadOnly, "a read-only transaction")
			c := r.recorded()
			require.Equal(t, oraCurrentSCNSQL, c[0].Query, "the SCN is read before the transaction starts")
			require.Equal(t, int64(9000000100), c[1].Args[0].Value)

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
			oraLob(t, r.recorded()[len(r.recorded())-1], &nos)
			require.Equal(t, []string{"B2", "C3"}, nos)
			n := len(r.recorded())
			require.NoError(t, r.d.CurrentAlerts(ctx, tx, []string{}, collect))
			require.Len(t, r.recorded(), n, "no prisoners, no statement")
			stop := errors.New("stop")
			require.ErrorIs(t, r.d.CurrentAlerts(ctx, tx, nil, func(*PrisonerRow) error { return stop }), stop)
			require.NoError(t, tx.Rollback())
		}},
		{"initial load", func(f *orafake.Fake) {
			f.Answer(oraInitialLoadSQL, orafake.Answer{Cols: cols("POSITION_COMMIT", "POSITION_CHANGE", "ALERTS", "PRISONERS", "COMPLETED_AT")})
		}, func(t *testing.T, r *oraRun) {
			_, ok, err := r.d.InitialLoad(ctx, r.conn)
			require.NoError(t, err)
			require.False(t, ok)
			require.Equal(t, oraInitialLoadName, r.recorded()[0].Args[0].Value)
			done := InitialLoadState{Position: JournalKey{Commit: 9000000099, ID: 42}, Alerts: 7, Prisoners: 3, CompletedAt: t2}
			require.NoError(t, r.d.RecordInitialLoad(ctx, r.conn, done))
			args := r.recorded()[1].Args
			got := make([]any, len(args))
			for i, a := range args {
				got[i] = a.Value
			}
			require.Equal(t, []any{oraInitialLoadName, int64(9000000099), int64(42), int64(7), int64(3), t2}, got)
			r.f.Answer(oraInitialLoadSQL, orafake.Answer{Cols: cols("POSITION_COMMIT", "POSITION_CHANGE", "ALERTS", "PRISONERS", "COMPLETED_AT"),
				Rows: [][]driver.Value{{godror.Number("9000000099"), int64(42), int64(7), int64(3), t2}}})
			back, ok, err := r.d.InitialLoad(ctx, r.conn)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, done, back)
		}},
		{"backlog", func(f *orafake.Fake) {
			f.Answer(oraBacklogSQL, orafake.Answer{Cols: cols("N", "OLDEST"), Rows: [][]driver.Value{{godror.Number("5"), t1}}})
		}, func(t *testing.T, r *oraRun) {
			n, oldest, err := r.d.Backlog(ctx, r.conn)
			require.NoError(t, err)
			require.Equal(t, int64(5), n)
			require.Equal(t, t1, oldest)
			r.f.Answer(oraBacklogSQL, orafake.Answer{Cols: cols("N", "OLDEST"), Rows: [][]driver.Value{{int64(0), nil}}})
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
			got := r.recorded()
			for _, c := range got {
				require.Empty(t, orafake.Check(c, stmts, oraEngineStatement(t, c.Query)), "statement %.80q", c.Query)
			}
			mu.Lock()
			calls = append(calls, got...)
			mu.Unlock()
		})
	}

	ran := map[string]bool{}
	for _, c := range calls {
		ran[c.Query] = true
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

// TestOracleStatementChecker runs orafake.Check on this dialect's own
// statements (the checker's general cases are tested in orafake): the
// shapes only this dialect has (WITH, JSON_OBJECT, JSON_TABLE literals with
// colons, PL/SQL out binds) are read right, and a wrong bind count or scan
// width is still caught on them.
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
		call orafake.Call
		want string // "" = no problem
	}{
		{"right", orafake.Call{Query: oraKeysSQL, Args: arg(500), Kind: "query", Cols: 3}, ""},
		{"right exec", orafake.Call{Query: oraDeleteSQL, Args: arg(lob), Kind: "exec"}, ""},
		{"right out bind", orafake.Call{Query: oraTryLockSQL, Args: arg(oraLockName, sql.Out{}), Kind: "exec"}, ""},
		{"argument missing", orafake.Call{Query: oraKeysSQL, Kind: "query", Cols: 3}, "1 placeholders [1] for 0 arguments"},
		{"argument too many", orafake.Call{Query: oraRecordInitialLoadSQL, Args: arg(1, 2, 3, 4, 5, 6, 7), Kind: "exec"}, "for 7 arguments"},
		{"select list wider than the scan", orafake.Call{Query: oraBacklogSQL, Kind: "query", Cols: 1}, "select list of 2 items, canned answer of 1 columns"},
		{"literal colons are no placeholders", orafake.Call{Query: oraMergeResyncsSQL, Args: arg(lob), Kind: "exec"}, ""},
		{"a migration statement is not the dialect's", orafake.Call{Query: migrate.Oracle{}.Query("SELECT COUNT(*) FROM USER_TABLES WHERE TABLE_NAME = ?"),
			Args: arg("X"), Kind: "query", Cols: 1}, "not one of the dialect's statement constants"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			problems := orafake.Check(tt.call, stmts, false)
			if tt.want == "" {
				require.Empty(t, problems)
				return
			}
			require.NotEmpty(t, problems)
			require.Contains(t, strings.Join(problems, "; "), tt.want)
		})
	}
	require.Equal(t, 3, orafake.SelectListLen(oraKeysSQL), "WITH … SELECT: the main select list")
	require.Equal(t, 4, orafake.SelectListLen(oraCurrentAlertsSQL), "a JSON_OBJECT of 25 keys is one item")
	require.Equal(t, 0, orafake.SelectListLen(oraDeleteSQL))
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
		{"bad credentials", orafake.OraErr(1017), true},
		{"missing table or grant", fmt.Errorf("reading the journal: %w", orafake.OraErr(942)), true},
		{"insufficient privileges", orafake.OraErr(1031), true},
		{"missing object", orafake.OraErr(4043), true},
		{"DBMS_LOCK not granted", orafake.OraErr(6550), true},
		{"account locked", orafake.OraErr(28000), true},
		{"end of file on channel", orafake.OraErr(3113), false},
		{"snapshot too old", orafake.OraErr(1555), false},
		{"listener does not know the service yet", orafake.OraErr(12514), false},
		{"no ORA code", orafake.OraErr(0), false},
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
