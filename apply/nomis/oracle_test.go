package nomis

// Tests of the Oracle dialect without an Oracle server (none can run
// here): the store runs on the Oracle dialect over orafake, a database/sql
// driver that records each statement and answers with canned rows, and
// every recorded statement is checked against the ora…SQL constants of
// oracle.go (binds, select list). What this cannot show is that Oracle
// accepts the SQL: see deploy/oracle/README.md.

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/apply"
	"github.com/alertsync/alertsync/internal/testenv/orafake"
	"github.com/alertsync/alertsync/transform/rules"
)

// oraWorld is the store on the Oracle dialect over a fake database.
type oraWorld struct {
	f  *orafake.Fake
	d  *oracle
	st *store
}

func newOraWorld(t *testing.T) *oraWorld {
	t.Helper()
	f := orafake.New()
	h := f.DB()
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	d := newOracle(h, "Europe/London", "alertsync apply nomis")
	w := &oraWorld{f: f, d: d, st: newStore(d)}
	// An unmapped alert of a prisoner with current booking 10: the
	// answers a create needs; cases override them.
	f.Answer(oraBumpHoldSQL, orafake.Answer{Affected: orafake.Rows(0)})
	f.Answer(oraMappingSQL, orafake.Answer{Cols: oraCols(5)})
	f.Answer(oraKeyMappedSQL, orafake.Answer{Cols: oraCols(1), Rows: [][]driver.Value{{int64(0)}}})
	f.Answer(oraAlertParentSQL, orafake.Answer{Cols: oraCols(1), Rows: [][]driver.Value{{"X"}}})
	f.Answer(oraCurrentBookingSQL, orafake.Answer{Cols: oraCols(2), Rows: [][]driver.Value{{int64(10), int64(1)}}})
	f.Answer(oraInsertAlertSQL, orafake.Answer{Outs: []any{int64(7)}})
	return w
}

func oraCols(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("C%d", i+1)
	}
	return out
}

var oraFence = apply.Fence{Group: "alertsync-apply-nomis", Topic: "alertsync.commands.nomis", Partition: 2, Epoch: 3}

const oraDPSID = "0190f5b2-8a4e-7c3d-9f10-2b3c4d5e6f70"

// oraCmd is a command of prisoner A1234BC for DPS alert oraDPSID.
func oraCmd(kind rules.Kind, before, after *rules.AlertState) apply.Cmd {
	id := oraDPSID
	return apply.Cmd{Command: rules.Command{ID: "cmd-1", Kind: kind, PrisonNumber: "A1234BC", Origin: rules.SideDPS,
		SourcePosition: rules.Position{Commit: 100, Change: 1}, SourceCommitTime: time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC),
		DPSAlertID: &id, Before: before, After: after},
		Record: &kgo.Record{Topic: "alertsync.commands.nomis", Partition: 2, Offset: 41, Key: []byte("k"), Value: []byte("v")}}
}

// oraMapped answers the lookup of a mapped alert at 10/2 whose row holds
// comment text.
func oraMapped(f *orafake.Fake, text string, changed string) {
	f.Answer(oraMappingSQL, orafake.Answer{Cols: oraCols(5), Rows: [][]driver.Value{{int64(10), int64(2), int64(5), int64(1), int64(0)}}})
	f.Answer(oraReadRowSQL, orafake.Answer{Cols: oraCols(7), Rows: [][]driver.Value{{"XA", "ACTIVE", "2024-03-01", nil, text, nil, changed}}})
}

// oraNames returns the constant names of the calls' statements, with
// begin/commit/rollback as they are.
func oraNames(stmts map[string]string, calls []orafake.Call) []string {
	byText := map[string]string{}
	for name, q := range stmts {
		byText[q] = name
	}
	out := make([]string, 0, len(calls))
	for _, c := range calls {
		if c.Kind == "query" || c.Kind == "exec" {
			out = append(out, byText[c.Query])
			continue
		}
		out = append(out, c.Kind)
	}
	return out
}

// oraCall returns the only call of statement q.
func oraCall(t *testing.T, calls []orafake.Call, q string) orafake.Call {
	t.Helper()
	var found []orafake.Call
	for _, c := range calls {
		if c.Query == q {
			found = append(found, c)
		}
	}
	require.Len(t, found, 1)
	return found[0]
}

// oraArgs returns the call's arguments normalised for comparison: out
// binds as "OUT", pointers dereferenced (nil as nil), integers as int64.
func oraArgs(c orafake.Call) []any {
	out := make([]any, 0, len(c.Args))
	for _, a := range c.Args {
		if _, ok := a.Value.(sql.Out); ok {
			out = append(out, "OUT")
			continue
		}
		v := reflect.ValueOf(a.Value)
		if v.Kind() == reflect.Pointer {
			if v.IsNil() {
				out = append(out, nil)
				continue
			}
			v = v.Elem()
		}
		switch v.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			out = append(out, v.Int())
		case reflect.Invalid:
			out = append(out, nil)
		default:
			out = append(out, v.Interface())
		}
	}
	return out
}

// oraOutbox decodes the batch's outbox row.
func oraOutbox(t *testing.T, calls []orafake.Call) []apply.OutboxRow {
	t.Helper()
	c := oraCall(t, calls, oraWriteOutboxSQL)
	require.Len(t, c.Lobs, 1, "the payload is a BLOB bind")
	require.Equal(t, int64(len(c.Lobs)), int64(1))
	rows, err := apply.DecodeOutbox(c.Lobs[0])
	require.NoError(t, err)
	require.EqualValues(t, len(rows), c.Args[0].Value, "COMMANDS")
	return rows
}

// TestOracleStatements runs the store and every other method of the
// Oracle dialect against the recording driver: what each command runs, in
// which order, with which binds, and what it makes of the canned answers.
// Every recorded statement must be one of oracle.go's constants with
// matching binds and select list; each transaction must be marked as the
// sync before anything else; and every constant must have run.
func TestOracleStatements(t *testing.T) {
	ctx := context.Background()
	stmts, err := orafake.Statements("oracle.go", "ora", "SQL")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(stmts), 20)
	ran := map[string]bool{}
	seen := func(t *testing.T, calls []orafake.Call) {
		t.Helper()
		for _, c := range calls {
			if c.Kind != "query" && c.Kind != "exec" {
				continue
			}
			ran[c.Query] = true
			require.Empty(t, orafake.Check(c, stmts, false), "%s", oraNames(stmts, []orafake.Call{c}))
		}
		oraMarkedFirst(t, calls)
	}
	desc := "Risk to staff"
	after := dpsState("XA", march1, desc)
	apply1 := func(t *testing.T, w *oraWorld, cmds ...apply.Cmd) []apply.Outcome {
		t.Helper()
		outs, err := w.st.Apply(ctx, oraFence, cmds, 42)
		require.NoError(t, err)
		return outs
	}

	commandCases := []struct {
		name   string
		dpsKey *nomisKey // the DPS-side mapping's key of the alert (nil: none)
		setup  func(f *orafake.Fake)
		cmd    apply.Cmd
		want   apply.Outcome
		seq    []string
		check  func(t *testing.T, calls []orafake.Call, rows []apply.OutboxRow)
	}{
		{
			name: "create on the current booking", cmd: oraCmd(rules.KindUpsert, nil, after),
			want: apply.Outcome{CommandID: "cmd-1", Result: apply.Applied, DPSAlertID: oraDPSID},
			seq: []string{"begin", "oraMarkSQL", "oraBumpHoldSQL", "oraSavepointSQL", "oraSetUserSQL", "oraMappingSQL",
				"oraAlertParentSQL", "oraCurrentBookingSQL", "oraInsertAlertSQL", "oraSetMappingSQL", "oraWriteOutboxSQL", "oraCommitOffsetSQL", "commit"},
			check: func(t *testing.T, calls []orafake.Call, rows []apply.OutboxRow) {
				require.Equal(t, []any{SyncModule, "alertsync apply nomis", SyncModule, SyncModule}, oraArgs(oraCall(t, calls, oraMarkSQL)))
				require.Equal(t, []any{"dps:" + oraDPSID, "OUT"}, oraArgs(oraCall(t, calls, oraBumpHoldSQL)))
				require.Equal(t, []any{"DPSUSER1"}, oraArgs(oraCall(t, calls, oraSetUserSQL)))
				require.Equal(t, []any{oraDPSID}, oraArgs(oraCall(t, calls, oraMappingSQL)))
				require.Equal(t, []any{"A1234BC"}, oraArgs(oraCall(t, calls, oraCurrentBookingSQL)))
				require.Equal(t, []any{int64(10), "2024-03-01T10:30:00.000000", "Europe/London", int64(1), "X", "XA", "ACTIVE",
					"2024-03-01", nil, desc, nil, "MDI", "DPSUSER1", "OUT"}, oraArgs(oraCall(t, calls, oraInsertAlertSQL)))
				require.Equal(t, []any{oraDPSID, int64(10), int64(7), "A1234BC", mappingDPSCreated, int64(100), int64(1), int64(0)},
					oraArgs(oraCall(t, calls, oraSetMappingSQL)))
				require.Equal(t, []any{int64(42), oraFence.Group, oraFence.Topic, int64(2), int64(3)}, oraArgs(oraCall(t, calls, oraCommitOffsetSQL)))
				require.Len(t, rows, 1)
				require.Equal(t, apply.Applied, rows[0].Result)
				require.Equal(t, int64(10), *rows[0].NOMISBookingID)
				require.Equal(t, int32(7), *rows[0].NOMISAlertSeq)
				require.Nil(t, rows[0].DLQ)
			},
		},
		{
			name: "a sequence taken meanwhile: the next one",
			setup: func(f *orafake.Fake) {
				f.Answer(oraInsertAlertSQL, orafake.Answer{Err: orafake.OraErr(1)}, orafake.Answer{Outs: []any{int64(8)}})
			},
			cmd:  oraCmd(rules.KindUpsert, nil, after),
			want: apply.Outcome{CommandID: "cmd-1", Result: apply.Applied, DPSAlertID: oraDPSID},
			seq: []string{"begin", "oraMarkSQL", "oraBumpHoldSQL", "oraSavepointSQL", "oraSetUserSQL", "oraMappingSQL",
				"oraAlertParentSQL", "oraCurrentBookingSQL", "oraInsertAlertSQL", "oraInsertAlertSQL", "oraSetMappingSQL",
				"oraWriteOutboxSQL", "oraCommitOffsetSQL", "commit"},
			check: func(t *testing.T, _ []orafake.Call, rows []apply.OutboxRow) {
				require.Equal(t, int32(8), *rows[0].NOMISAlertSeq, "the statement-level rollback kept the transaction: seq 8 in the same savepoint")
			},
		},
		{
			name:  "no current booking: refused alone, held",
			setup: func(f *orafake.Fake) { f.Answer(oraCurrentBookingSQL, orafake.Answer{Cols: oraCols(2)}) },
			cmd:   oraCmd(rules.KindUpsert, nil, after),
			want:  apply.Outcome{CommandID: "cmd-1", Result: apply.Failed, Reason: ReasonNoCurrentBooking},
			seq: []string{"begin", "oraMarkSQL", "oraBumpHoldSQL", "oraSavepointSQL", "oraSetUserSQL", "oraMappingSQL",
				"oraAlertParentSQL", "oraCurrentBookingSQL", "oraRollbackToSQL", "oraStartHoldSQL", "oraWriteOutboxSQL", "oraCommitOffsetSQL", "commit"},
			check: func(t *testing.T, calls []orafake.Call, rows []apply.OutboxRow) {
				require.Equal(t, []any{"dps:" + oraDPSID, "A1234BC", "cmd-1", ReasonNoCurrentBooking}, oraArgs(oraCall(t, calls, oraStartHoldSQL)))
				require.NotNil(t, rows[0].DLQ)
				require.Equal(t, "refused", rows[0].DLQ.ErrorKind)
				require.Equal(t, int64(41), rows[0].DLQ.Offset)
			},
		},
		{
			name: "no current booking while another session starts the same hold: the hold stands",
			setup: func(f *orafake.Fake) {
				f.Answer(oraCurrentBookingSQL, orafake.Answer{Cols: oraCols(2)})
				f.Answer(oraStartHoldSQL, orafake.Answer{Err: orafake.OraErr(1)})
			},
			cmd:  oraCmd(rules.KindUpsert, nil, after),
			want: apply.Outcome{CommandID: "cmd-1", Result: apply.Failed, Reason: ReasonNoCurrentBooking},
			seq: []string{"begin", "oraMarkSQL", "oraBumpHoldSQL", "oraSavepointSQL", "oraSetUserSQL", "oraMappingSQL",
				"oraAlertParentSQL", "oraCurrentBookingSQL", "oraRollbackToSQL", "oraStartHoldSQL", "oraWriteOutboxSQL", "oraCommitOffsetSQL", "commit"},
		},
		{
			name:  "a value Oracle refuses: the stand-in's reason",
			setup: func(f *orafake.Fake) { f.Answer(oraInsertAlertSQL, orafake.Answer{Err: orafake.OraErr(12899)}) },
			cmd:   oraCmd(rules.KindUpsert, nil, after),
			want:  apply.Outcome{CommandID: "cmd-1", Result: apply.Failed, Reason: "refused_22001"},
			seq: []string{"begin", "oraMarkSQL", "oraBumpHoldSQL", "oraSavepointSQL", "oraSetUserSQL", "oraMappingSQL",
				"oraAlertParentSQL", "oraCurrentBookingSQL", "oraInsertAlertSQL", "oraRollbackToSQL", "oraStartHoldSQL",
				"oraWriteOutboxSQL", "oraCommitOffsetSQL", "commit"},
			check: func(t *testing.T, _ []orafake.Call, rows []apply.OutboxRow) {
				require.Contains(t, rows[0].DLQ.Error, "ORA-12899")
				require.NotContains(t, rows[0].DLQ.Error, desc, "no alert text")
			},
		},
		{
			name: "held behind an earlier failure",
			setup: func(f *orafake.Fake) {
				f.Answer(oraBumpHoldSQL, orafake.Answer{Outs: []any{"cmd-0"}, Affected: orafake.Rows(1)})
			},
			cmd:  oraCmd(rules.KindUpsert, nil, after),
			want: apply.Outcome{CommandID: "cmd-1", Result: apply.Skipped, Reason: apply.ReasonHeld},
			seq:  []string{"begin", "oraMarkSQL", "oraBumpHoldSQL", "oraWriteOutboxSQL", "oraCommitOffsetSQL", "commit"},
			check: func(t *testing.T, _ []orafake.Call, rows []apply.OutboxRow) {
				require.Equal(t, "cmd-0", *rows[0].DLQ.HeldBehind)
			},
		},
		{
			name:  "update of a mapped alert",
			setup: func(f *orafake.Fake) { oraMapped(f, "old", "2024-04-01T08:00:00.000000") },
			cmd:   oraCmd(rules.KindUpsert, dpsState("XA", march1, "old"), modified(dpsState("XA", march1, "new"), "DPSUSER2")),
			want:  apply.Outcome{CommandID: "cmd-1", Result: apply.Applied, DPSAlertID: oraDPSID},
			seq: []string{"begin", "oraMarkSQL", "oraBumpHoldSQL", "oraSavepointSQL", "oraSetUserSQL", "oraMappingSQL", "oraReadRowSQL",
				"oraAlertParentSQL", "oraUpdateAlertSQL", "oraSetMappingSQL", "oraWriteOutboxSQL", "oraCommitOffsetSQL", "commit"},
			check: func(t *testing.T, calls []orafake.Call, _ []apply.OutboxRow) {
				require.Equal(t, []any{"Europe/London", int64(10), int64(2)}, oraArgs(oraCall(t, calls, oraReadRowSQL)))
				require.Equal(t, []any{"X", "XA", "ACTIVE", "2024-03-01", nil, "new", nil, "DPSUSER2", "Europe/London", int64(10), int64(2)},
					oraArgs(oraCall(t, calls, oraUpdateAlertSQL)))
			},
		},
		{
			name: "conflict: NOMIS changed the row later",
			setup: func(f *orafake.Fake) {
				oraMapped(f, "edited in NOMIS", "2024-06-01T12:00:00.000000")
				f.Answer(oraAlertParentSQL, orafake.Answer{Cols: oraCols(1), Rows: [][]driver.Value{{nil}}})
			},
			cmd:  oraCmd(rules.KindUpsert, dpsState("XA", march1, "old"), dpsState("XA", march1, "new")),
			want: apply.Outcome{CommandID: "cmd-1", Result: apply.Conflict, Reason: apply.ReasonLost, DPSAlertID: oraDPSID},
			seq: []string{"begin", "oraMarkSQL", "oraBumpHoldSQL", "oraSavepointSQL", "oraSetUserSQL", "oraMappingSQL", "oraReadRowSQL",
				"oraConflictSQL", "oraSetMappingSQL", "oraWriteOutboxSQL", "oraCommitOffsetSQL", "commit"},
			check: func(t *testing.T, calls []orafake.Call, _ []apply.OutboxRow) {
				require.Equal(t, []any{"cmd-1", oraDPSID, int64(10), int64(2), "NOMIS", "2024-05-01T09:00:00.000000+00:00",
					"2024-06-01T12:00:00.000000+00:00"}, oraArgs(oraCall(t, calls, oraConflictSQL)))
			},
		},
		{
			name: "a NOMIS alert the command names, unmapped here",
			setup: func(f *orafake.Fake) {
				f.Answer(oraReadRowSQL, orafake.Answer{Cols: oraCols(7), Rows: [][]driver.Value{{"XA", "ACTIVE", "2024-03-01", nil, desc, nil, nil}}})
			},
			cmd: func() apply.Cmd {
				c := oraCmd(rules.KindUpsert, nil, after)
				book, seq := int64(10), int32(2)
				c.NOMISBookingID, c.NOMISAlertSeq = &book, &seq
				return c
			}(),
			want: apply.Outcome{CommandID: "cmd-1", Result: apply.Skipped, Reason: apply.ReasonUnchanged, DPSAlertID: oraDPSID},
			seq: []string{"begin", "oraMarkSQL", "oraBumpHoldSQL", "oraSavepointSQL", "oraSetUserSQL", "oraMappingSQL", "oraKeyMappedSQL",
				"oraReadRowSQL", "oraSetMappingSQL", "oraWriteOutboxSQL", "oraCommitOffsetSQL", "commit"},
			check: func(t *testing.T, calls []orafake.Call, _ []apply.OutboxRow) {
				require.Equal(t, []any{int64(10), int64(2)}, oraArgs(oraCall(t, calls, oraKeyMappedSQL)))
				require.Equal(t, mappingNOMISCreated, oraArgs(oraCall(t, calls, oraSetMappingSQL))[4])
			},
		},
		{
			name:   "a prisoner replace moved the alert in DPS: the DPS-side key wins",
			dpsKey: &nomisKey{book: 20, seq: 5},
			setup:  func(f *orafake.Fake) { oraMapped(f, "new", "2024-04-01T08:00:00.000000") },
			cmd:    oraCmd(rules.KindUpsert, nil, dpsState("XA", march1, "new")),
			want:   apply.Outcome{CommandID: "cmd-1", Result: apply.Skipped, Reason: apply.ReasonUnchanged, DPSAlertID: oraDPSID},
			seq: []string{"begin", "oraMarkSQL", "oraBumpHoldSQL", "oraSavepointSQL", "oraSetUserSQL", "oraMappingSQL", "oraReadRowSQL",
				"oraReleaseKeySQL", "oraReadRowSQL", "oraSetMappingSQL", "oraWriteOutboxSQL", "oraCommitOffsetSQL", "commit"},
			check: func(t *testing.T, calls []orafake.Call, _ []apply.OutboxRow) {
				require.Equal(t, []any{int64(20), int64(5), oraDPSID}, oraArgs(oraCall(t, calls, oraReleaseKeySQL)))
				m := oraArgs(oraCall(t, calls, oraSetMappingSQL))
				require.Equal(t, []any{int64(20), int64(5)}, m[1:3], "this side's mapping re-pointed")
			},
		},
		{
			name:  "hard delete",
			setup: func(f *orafake.Fake) { oraMapped(f, desc, "2024-04-01T08:00:00.000000") },
			cmd:   oraCmd(rules.KindDelete, nil, nil),
			want:  apply.Outcome{CommandID: "cmd-1", Result: apply.Applied, DPSAlertID: oraDPSID},
			seq: []string{"begin", "oraMarkSQL", "oraBumpHoldSQL", "oraSavepointSQL", "oraMappingSQL", "oraReadRowSQL",
				"oraDeleteAlertSQL", "oraSetMappingSQL", "oraWriteOutboxSQL", "oraCommitOffsetSQL", "commit"},
			check: func(t *testing.T, calls []orafake.Call, _ []apply.OutboxRow) {
				require.Equal(t, []any{int64(10), int64(2)}, oraArgs(oraCall(t, calls, oraDeleteAlertSQL)))
				require.Equal(t, int64(1), oraArgs(oraCall(t, calls, oraSetMappingSQL))[7], "mapped deleted")
			},
		},
	}
	for _, tt := range commandCases {
		t.Run(tt.name, func(t *testing.T) {
			w := newOraWorld(t)
			if tt.dpsKey != nil {
				w.st.dpsViews = func(_ context.Context, ids []string) (map[string]dpsView, error) {
					out := map[string]dpsView{}
					for _, id := range ids {
						out[id] = dpsView{key: tt.dpsKey}
					}
					return out, nil
				}
			}
			if tt.setup != nil {
				tt.setup(w.f)
			}
			outs := apply1(t, w, tt.cmd)
			require.Equal(t, []apply.Outcome{tt.want}, outs)
			calls := w.f.Calls()
			require.Equal(t, tt.seq, oraNames(stmts, calls))
			rows := oraOutbox(t, calls)
			require.Len(t, rows, 1)
			require.Equal(t, tt.want.Result, rows[0].Result)
			if tt.check != nil {
				tt.check(t, calls, rows)
			}
			seen(t, calls)
		})
	}

	t.Run("two commands of one user: the audit user set once", func(t *testing.T) {
		w := newOraWorld(t)
		c2 := oraCmd(rules.KindUpsert, nil, after)
		other := "0190f5b2-8a4e-7c3d-9f10-2b3c4d5e6f71"
		c2.ID, c2.DPSAlertID = "cmd-2", &other
		outs := apply1(t, w, oraCmd(rules.KindUpsert, nil, after), c2)
		require.Len(t, outs, 2)
		calls := w.f.Calls()
		n := 0
		for _, c := range calls {
			if c.Query == oraSetUserSQL {
				n++
			}
		}
		require.Equal(t, 1, n)
		require.Len(t, oraOutbox(t, calls), 2, "one outbox row for the batch")
		seen(t, calls)
	})

	t.Run("fenced: a stale epoch commits nothing", func(t *testing.T) {
		w := newOraWorld(t)
		w.f.Answer(oraCommitOffsetSQL, orafake.Answer{Affected: orafake.Rows(0)})
		_, err := w.st.Apply(ctx, oraFence, []apply.Cmd{oraCmd(rules.KindUpsert, nil, after)}, 42)
		require.ErrorIs(t, err, apply.ErrFenced)
		names := oraNames(stmts, w.f.Calls())
		require.Equal(t, "rollback", names[len(names)-1])
		require.NotContains(t, names, "commit")
		seen(t, w.f.Calls())
	})

	t.Run("a deadlock is transient", func(t *testing.T) {
		w := newOraWorld(t)
		w.f.Answer(oraInsertAlertSQL, orafake.Answer{Err: orafake.OraErr(60)})
		_, err := w.st.Apply(ctx, oraFence, []apply.Cmd{oraCmd(rules.KindUpsert, nil, after)}, 42)
		require.Error(t, err)
		require.True(t, apply.Transient(err), "the runner retries the batch: %v", err)
		require.NotContains(t, oraNames(stmts, w.f.Calls()), "commit")
		seen(t, w.f.Calls())
	})

	t.Run("claim", func(t *testing.T) {
		w := newOraWorld(t)
		w.f.Answer(oraClaimSQL, orafake.Answer{Err: orafake.OraErr(1)}, orafake.Answer{})
		w.f.Answer(oraClaimedSQL, orafake.Answer{Cols: oraCols(3), Rows: [][]driver.Value{{int64(0), int64(0), int64(1)}, {int64(1), int64(57), int64(4)}}})
		fences, err := w.d.Claim(ctx, "g", "t", []int32{0, 1}, "apply-nomis-0")
		require.NoError(t, err)
		require.Equal(t, map[int32]apply.Fence{
			0: {Group: "g", Topic: "t", Partition: 0, Epoch: 1, Next: -1},
			1: {Group: "g", Topic: "t", Partition: 1, Epoch: 4, Next: 57},
		}, fences)
		calls := w.f.Calls()
		require.Equal(t, []string{"begin", "oraClaimSQL", "rollback", "begin", "oraClaimSQL", "oraClaimedSQL", "commit"}, oraNames(stmts, calls),
			"two applies creating the row at once: the loser claims again")
		require.Equal(t, [][]byte{[]byte("[0,1]")}, calls[4].Lobs)
		require.Equal(t, []any{"g", "t", "apply-nomis-0"}, oraArgs(calls[4])[:3])
		seen(t, calls)
	})

	t.Run("outbox", func(t *testing.T) {
		w := newOraWorld(t)
		reason := "held"
		payload := apply.EncodeOutbox([]apply.OutboxRow{{CommandID: "c", Result: apply.Skipped, Reason: &reason, PrisonNumber: "A1234BC"}})
		w.f.Answer(oraPendingSQL, orafake.Answer{Cols: oraCols(3), Rows: [][]driver.Value{{int64(5), "2024-05-01T09:00:00.123456", payload}}})
		batches, err := w.d.Pending(ctx, 8)
		require.NoError(t, err)
		require.Len(t, batches, 1)
		require.Equal(t, int64(5), batches[0].ID)
		require.Equal(t, time.Date(2024, 5, 1, 9, 0, 0, 123456000, time.UTC), batches[0].CreatedAt)
		require.Equal(t, "c", batches[0].Rows[0].CommandID)
		require.NoError(t, w.d.Published(ctx, []int64{5, 6}))
		calls := w.f.Calls()
		require.Equal(t, []any{int64(8)}, oraArgs(calls[0]))
		require.Equal(t, [][]byte{[]byte("[5,6]")}, calls[1].Lobs)
		seen(t, calls)
	})

	t.Run("expiry sweep", func(t *testing.T) {
		w := newOraWorld(t)
		w.f.Answer(oraSweepSQL, orafake.Answer{Affected: orafake.Rows(2)})
		book, seq := int64(20), int32(3)
		n, err := w.d.inactivate(ctx, rules.DateOf(2024, time.June, 1), []dueAlert{
			{id: oraDPSID, activeTo: "2024-05-31"}, {id: "0190F5B2-8A4E-7C3D-9F10-2B3C4D5E6F71", activeTo: "2024-06-01", book: &book, seq: &seq}})
		require.NoError(t, err)
		require.Equal(t, 2, n)
		calls := w.f.Calls()
		require.Equal(t, []string{"begin", "oraMarkSQL", "oraSweepSQL", "commit"}, oraNames(stmts, calls))
		require.Equal(t, []any{SyncModule, "alertsync apply nomis", SyncModule, SweepUser}, oraArgs(calls[1]))
		var due []map[string]any
		require.NoError(t, json.Unmarshal(calls[2].Lobs[0], &due))
		require.Equal(t, []map[string]any{
			{"id": oraDPSID, "active_to": "2024-05-31", "book": nil, "seq": nil},
			{"id": "0190f5b2-8a4e-7c3d-9f10-2b3c4d5e6f71", "active_to": "2024-06-01", "book": 20.0, "seq": 3.0},
		}, due)
		require.Equal(t, []any{SweepUser, "Europe/London", "2024-06-01"}, oraArgs(calls[2])[1:])
		seen(t, calls)
	})

	t.Run("prepare", func(t *testing.T) {
		w := newOraWorld(t)
		w.f.Answer(oraPrepareSQL, orafake.Answer{Cols: oraCols(2), Rows: [][]driver.Value{{"ALERTSYNC_APPLY", strings.Join(oraTables, ",")}}},
			orafake.Answer{Cols: oraCols(2), Rows: [][]driver.Value{{"ALERTSYNC_APPLY", "OFFENDERS,OFFENDER_ALERTS"}}})
		require.NoError(t, w.d.prepare(ctx))
		err := w.d.prepare(ctx)
		var fatal *apply.FatalError
		require.ErrorAs(t, err, &fatal)
		require.ErrorContains(t, err, "OMS_OWNER.ALERTSYNC_OUTCOME_BATCHES")
		require.ErrorContains(t, err, "alertsync migrate nomis --nomis.dialect=oracle")
		seen(t, w.f.Calls())
	})

	var unused []string
	for name, q := range stmts {
		if !ran[q] {
			unused = append(unused, name)
		}
	}
	sort.Strings(unused)
	require.Empty(t, unused, "statement constants nothing ran")
}

// oraMarkedFirst checks that every transaction runs oraMarkSQL before
// anything else.
func oraMarkedFirst(t *testing.T, calls []orafake.Call) {
	t.Helper()
	first := map[int]string{}
	for _, c := range calls {
		if c.Tx == 0 || c.Kind == "begin" {
			continue
		}
		if _, ok := first[c.Tx]; !ok {
			first[c.Tx] = c.Query
		}
	}
	for tx, q := range first {
		if q == oraClaimSQL {
			continue // the claim writes only the offsets: no NOMIS row
		}
		require.Equal(t, oraMarkSQL, q, "transaction %d is marked as the sync first", tx)
	}
}

// TestOracleErrors checks the mapping of ORA codes to refusals (the
// stand-in's reasons) and to retries.
func TestOracleErrors(t *testing.T) {
	t.Parallel()
	d := newOracle(nil, "Europe/London", "t")
	tests := []struct {
		name      string
		err       error
		reason    string // "" = not a refusal
		transient bool
	}{
		{"unique", orafake.OraErr(1), "refused_23505", false},
		{"check", fmt.Errorf("inserting: %w", orafake.OraErr(2290)), "refused_23514", false},
		{"parent key", orafake.OraErr(2291), "refused_23503", false},
		{"value too large", orafake.OraErr(12899), "refused_22001", false},
		{"null", orafake.OraErr(1400), "refused_23502", false},
		{"refusal", &apply.Refusal{Reason: ReasonNoCurrentBooking}, ReasonNoCurrentBooking, false},
		{"deadlock", orafake.OraErr(60), "", true},
		{"serialization", orafake.OraErr(8177), "", true},
		{"end of file on channel", orafake.OraErr(3113), "", true},
		{"not connected", orafake.OraErr(3114), "", true},
		{"no listener", orafake.OraErr(12541), "", true},
		{"bad connection", fmt.Errorf("querying: %w", driver.ErrBadConn), "", true},
		{"missing table", orafake.OraErr(942), "", false},
		{"plain", errors.New("ORA-00060 in a string is not a code"), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ref, ok := d.refusal(tt.err)
			require.Equal(t, tt.reason != "", ok)
			if ok {
				require.Equal(t, tt.reason, ref.Reason)
			}
			require.Equal(t, tt.transient, d.transient(tt.err))
		})
	}
}
