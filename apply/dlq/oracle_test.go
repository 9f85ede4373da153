package dlq

// Tests of the holds on Oracle without an Oracle server (none can run
// here): oraHolds runs against orafake, a database/sql driver that records
// each statement and answers with canned rows, and every recorded
// statement is checked against the ora…SQL constants of oracle.go (binds,
// select list). What this cannot show is that Oracle accepts the SQL.

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/godror/godror"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/db"
	"github.com/alertsync/alertsync/internal/testenv/orafake"
)

// oraHoldCols are the columns oraHolds.open scans.
var oraHoldCols = []string{"HOLD_KEY", "PRISON_NUMBER", "FIRST_COMMAND_ID", "REASON", "HELD_COMMANDS", "CREATED_AT", "UPDATED_AT"}

// oraStatements returns the statement constants of oracle.go.
func oraStatements(t *testing.T) map[string]string {
	t.Helper()
	stmts, err := orafake.Statements("oracle.go", "ora", "SQL")
	require.NoError(t, err)
	require.Len(t, stmts, 3, "open, remove, restore")
	return stmts
}

// newOraStore returns the holds on Oracle over a fake database.
func newOraStore(t *testing.T) (*oraHolds, *orafake.Fake) {
	t.Helper()
	f := orafake.New()
	s := newOraHolds(f.DB())
	t.Cleanup(func() { s.close(context.Background()) })
	return s, f
}

// oraValues returns the values the call bound, in order.
func oraValues(c orafake.Call) []any {
	out := make([]any, len(c.Args))
	for i, a := range c.Args {
		out[i] = a.Value
	}
	return out
}

// TestOracleHolds runs each method of the holds on Oracle against the
// recording driver: what it runs and binds, what it makes of the canned
// answers, and how it reads Oracle's errors. Every recorded statement must
// be one of oracle.go's constants with matching binds and select list, and
// every constant must have run.
func TestOracleHolds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	stmts := oraStatements(t)
	t1 := time.Date(2024, 5, 1, 9, 0, 0, 123456000, time.UTC)
	t2 := t1.Add(time.Minute)
	h := Hold{Key: "dps:0190f5b2-8a4e-7c3d-9f10-2b3c4d5e6f70", PrisonNumber: "A1234BC", FirstCommandID: "cmd-1",
		Reason: "refused_23505", HeldCommands: 2, CreatedAt: t1, UpdatedAt: t2}

	tests := []struct {
		name   string
		answer map[string]orafake.Answer
		run    func(t *testing.T, s *oraHolds) error
		want   string   // "" = no error; else a part of the error
		is     error    // a sentinel the error must be, else not errHoldChanged
		ora    int      // ORA- code the error must carry, 0 for none
		runs   []string // constants run, in order
		binds  []any    // of the last statement
	}{
		{
			name: "open",
			answer: map[string]orafake.Answer{oraOpenHoldsSQL: {Cols: oraHoldCols, Rows: [][]driver.Value{
				{h.Key, h.PrisonNumber, h.FirstCommandID, h.Reason, godror.Number("2"), t1, t2},
				{"nomis:10:1", "B2345CD", "cmd-9", "refused_22001", int64(1), t2, t2},
			}}},
			run: func(t *testing.T, s *oraHolds) error {
				got, err := s.open(ctx)
				if err != nil {
					return err
				}
				require.Equal(t, map[string]Hold{h.Key: h, "nomis:10:1": {Key: "nomis:10:1", PrisonNumber: "B2345CD",
					FirstCommandID: "cmd-9", Reason: "refused_22001", HeldCommands: 1, CreatedAt: t2, UpdatedAt: t2}}, got)
				return nil
			},
			runs: []string{"oraOpenHoldsSQL"}, binds: []any{},
		},
		{
			name:   "open: no holds",
			answer: map[string]orafake.Answer{oraOpenHoldsSQL: {Cols: oraHoldCols}},
			run: func(t *testing.T, s *oraHolds) error {
				got, err := s.open(ctx)
				require.Empty(t, got)
				return err
			},
			runs: []string{"oraOpenHoldsSQL"}, binds: []any{},
		},
		{
			name:   "open: the table cannot be seen",
			answer: map[string]orafake.Answer{oraOpenHoldsSQL: {Err: orafake.OraErr(942)}},
			run: func(_ *testing.T, s *oraHolds) error {
				_, err := s.open(ctx)
				return err
			},
			want: "OMS_OWNER.ALERTSYNC_DLQ_HOLDS cannot be seen by the nomis.dsn user: connect as the apply's user", ora: 942,
			runs: []string{"oraOpenHoldsSQL"}, binds: []any{},
		},
		{
			name:   "open: a row that does not scan",
			answer: map[string]orafake.Answer{oraOpenHoldsSQL: {Cols: oraHoldCols, Rows: [][]driver.Value{{h.Key, "A1234BC", "cmd-1", "r", "many", t1, t1}}}},
			run: func(_ *testing.T, s *oraHolds) error {
				_, err := s.open(ctx)
				return err
			},
			want: "reading the holds in NOMIS", runs: []string{"oraOpenHoldsSQL"}, binds: []any{},
		},
		{
			name: "remove an unchanged hold",
			run:  func(_ *testing.T, s *oraHolds) error { return s.remove(ctx, h) },
			runs: []string{"oraRemoveHoldSQL"}, binds: []any{h.Key, "cmd-1", int64(2)},
		},
		{
			name:   "remove a hold that held one more command meanwhile",
			answer: map[string]orafake.Answer{oraRemoveHoldSQL: {Affected: orafake.Rows(0)}},
			run:    func(_ *testing.T, s *oraHolds) error { return s.remove(ctx, h) },
			want:   errHoldChanged.Error(), is: errHoldChanged,
			runs: []string{"oraRemoveHoldSQL"}, binds: []any{h.Key, "cmd-1", int64(2)},
		},
		{
			name:   "remove: connection lost",
			answer: map[string]orafake.Answer{oraRemoveHoldSQL: {Err: orafake.OraErr(3113)}},
			run:    func(_ *testing.T, s *oraHolds) error { return s.remove(ctx, h) },
			want:   "deleting the hold on " + h.Key + " in NOMIS", ora: 3113,
			runs: []string{"oraRemoveHoldSQL"}, binds: []any{h.Key, "cmd-1", int64(2)},
		},
		{
			name: "restore",
			run:  func(_ *testing.T, s *oraHolds) error { return s.restore(ctx, h) },
			runs: []string{"oraRestoreHoldSQL"}, binds: []any{h.Key, "A1234BC", "cmd-1", "refused_23505", int64(2), t1},
		},
		{
			name:   "restore when the apply started a new hold at the same time",
			answer: map[string]orafake.Answer{oraRestoreHoldSQL: {Err: orafake.OraErr(1)}},
			run:    func(_ *testing.T, s *oraHolds) error { return s.restore(ctx, h) },
			runs:   []string{"oraRestoreHoldSQL"}, binds: []any{h.Key, "A1234BC", "cmd-1", "refused_23505", int64(2), t1},
		},
		{
			name:   "restore: no privilege",
			answer: map[string]orafake.Answer{oraRestoreHoldSQL: {Err: orafake.OraErr(1031)}},
			run:    func(_ *testing.T, s *oraHolds) error { return s.restore(ctx, h) },
			want:   "restoring the hold on " + h.Key + " in NOMIS", ora: 1031,
			runs: []string{"oraRestoreHoldSQL"}, binds: []any{h.Key, "A1234BC", "cmd-1", "refused_23505", int64(2), t1},
		},
	}
	names := map[string]string{}
	for name, q := range stmts {
		names[q] = name
	}
	ran := make(chan string, 64)
	t.Run("cases", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s, f := newOraStore(t)
				for q, a := range tt.answer {
					f.Answer(q, a)
				}
				err := tt.run(t, s)
				if tt.want == "" {
					require.NoError(t, err)
				} else {
					require.ErrorContains(t, err, tt.want)
				}
				if tt.is != nil {
					require.ErrorIs(t, err, tt.is)
				} else if err != nil {
					require.NotErrorIs(t, err, errHoldChanged)
				}
				if tt.ora != 0 {
					require.ErrorIs(t, err, orafake.OraErr(tt.ora))
				}
				calls := f.Calls()
				var got []string
				for _, c := range calls {
					require.Contains(t, []string{"query", "exec"}, c.Kind, "no transaction: one statement, committed on its own")
					require.Empty(t, orafake.Check(c, stmts, false), "%s", names[c.Query])
					got = append(got, names[c.Query])
					ran <- c.Query
				}
				require.Equal(t, tt.runs, got)
				require.Equal(t, tt.binds, oraValues(calls[len(calls)-1]))
			})
		}
	})
	close(ran)
	seen := map[string]bool{}
	for q := range ran {
		seen[q] = true
	}
	for name, q := range stmts {
		require.True(t, seen[q], "statement constant %s never ran", name)
	}
}

// TestOracleRedriveOfOneHold runs the redrive of one hold on the holds on
// Oracle: a hold that held one more command after it was read is left
// alone, with nothing produced and nothing put back; a hold whose commands
// cannot be produced is put back.
func TestOracleRedriveOfOneHold(t *testing.T) {
	t.Parallel()
	h := Hold{Key: "nomis:10:1", PrisonNumber: "A1234BC", FirstCommandID: "cmd-1", Reason: "refused_23505", HeldCommands: 2,
		CreatedAt: time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)}
	ep := []Entry{
		{DLQTopic: "alertsync.dlq", DLQOffset: 4, Topic: "alertsync.commands.nomis", Partition: 1, Offset: 40, CommandID: "cmd-1"},
		{DLQTopic: "alertsync.dlq", DLQOffset: 5, Topic: "alertsync.commands.nomis", Partition: 1, Offset: 41, CommandID: "cmd-2",
			Held: true, HeldBehind: "cmd-1"},
	}
	stmts := oraStatements(t)
	tests := []struct {
		name     string
		affected int64 // rows the DELETE deletes
		want     string
		skipped  bool
		runs     []string
	}{
		{"held one more command meanwhile", 0, "the hold changed while redriving it", true, []string{oraRemoveHoldSQL}},
		{"producing fails", 1, "the hold on nomis:10:1 was put back after 0 of its 2 commands", false,
			[]string{oraRemoveHoldSQL, oraRestoreHoldSQL}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, f := newOraStore(t)
			f.Answer(oraRemoveHoldSQL, orafake.Answer{Affected: orafake.Rows(tt.affected)})
			// A client of a broker that is not there: producing fails
			// when ctx ends.
			cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			require.NoError(t, err)
			t.Cleanup(cl.Close)
			var out strings.Builder
			r := &redriver{s: &session{cl: cl, rd: &reader{topic: "alertsync.dlq"}}, hs: s, out: &out}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			n, err := r.one(ctx, h, ep, StageApplyNOMIS)
			require.Zero(t, n, "nothing produced")
			require.ErrorContains(t, err, tt.want)
			var sk *skip
			require.Equal(t, tt.skipped, errors.As(err, &sk))
			var runs []string
			for _, c := range f.Calls() {
				require.Empty(t, orafake.Check(c, stmts, false))
				runs = append(runs, c.Query)
			}
			require.Equal(t, tt.runs, runs)
			require.Contains(t, out.String(), "apply-nomis: hold on nomis:10:1 (prisoner A1234BC")
		})
	}
}

// TestOracleOpenHolds opens the holds of apply nomis with nomis.dialect =
// oracle through Redrive (before it reaches Kafka): where the Oracle
// client library cannot be loaded (libDir names an empty directory, so the
// result is the same whether or not Instant Client is installed; this
// machine has none) connecting fails with the library's name and how to
// install it, naming nomis.dsn and never the password; a PostgreSQL URL is
// refused as an Oracle DSN.
func TestOracleOpenHolds(t *testing.T) {
	t.Parallel()
	libless := fmt.Sprintf(`user="alertsync_apply" connectString="127.0.0.1:1/NOMIS" libDir=%q`, t.TempDir())
	tests := []struct {
		name string
		dsn  string
		is   error
		want []string
	}{
		{"no client library", libless, db.ErrOracleClient,
			[]string{"connecting to NOMIS on Oracle at \"127.0.0.1:1/NOMIS\" as \"alertsync_apply\" (nomis.dsn)", db.OracleClientLibrary(), "Oracle Instant Client"}},
		{"a PostgreSQL URL", "postgres://alertsync@localhost:5433/nomis", nil, []string{"nomis.dsn: parsing Oracle DSN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var cfg Config
			cfg.NOMIS = config.NOMIS{DSN: tt.dsn, Dialect: "oracle", Password: config.NewSecret("hidden-pw")}
			cfg.Own.ConnectTimeout = 10 * time.Second
			var out strings.Builder
			err := Redrive(context.Background(), cfg, Deps{}, RedriveOptions{Stage: StageApplyNOMIS, All: true}, &out)
			require.Error(t, err)
			if tt.is != nil {
				require.ErrorIs(t, err, tt.is)
			}
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
			require.NotContains(t, err.Error(), "hidden-pw")
			require.Empty(t, out.String())
		})
	}
}
