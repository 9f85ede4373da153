package reconcile

// Tests of the Oracle reader without an Oracle server (none can run here):
// the reader runs over orafake, a database/sql driver that records each
// statement and answers with canned rows, and every recorded statement is
// checked against the ora…SQL constants of oracle.go (binds, select list).
// What this cannot show is that Oracle accepts the SQL.

import (
	"database/sql/driver"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/internal/testenv/orafake"
)

// oraRow is one row of oraPageSQL/oraPrisonerSQL's select list.
func oraRow(pn string, book, seq any, alertDate, expiry, typ, code, status, auth, comment, created, user, dpsID any, mapDeleted int64) []driver.Value {
	return []driver.Value{pn, book, seq, alertDate, expiry, typ, code, status, auth, comment, created, user, dpsID, mapDeleted}
}

func oraColumns() []string {
	cols := make([]string, 14)
	for i := range cols {
		cols[i] = fmt.Sprintf("C%d", i+1)
	}
	return cols
}

// oraFixtureRows are the NOMIS fixture's current-booking alerts of
// A1111AA as Oracle returns them, and D4444DD's.
func oraFixtureRows() [][]driver.Value {
	return [][]driver.Value{
		oraRow("A1111AA", int64(10), int64(1), "2024-03-01", nil, "X", "XA", "ACTIVE", "Governor", "Risk to staff", "2024-03-01 10:00:00", "U", u1, 0),
		oraRow("A1111AA", int64(10), int64(2), "2024-01-01", "2024-02-01", "H", "HA", "INACTIVE", nil, nil, "2024-01-01 09:00:00", "U", nil, 0),
		oraRow("A1111AA", int64(10), int64(3), "2024-04-01", nil, "X", "XCA", "INACTIVE", nil, strings.Repeat("é", 2000), "2024-04-01 00:30:00", "U", nil, 0),
		oraRow("D4444DD", int64(40), int64(1), "2023-06-01", nil, "X", "XA", "ACTIVE", nil, "Note", "2023-06-01 00:00:00", "U", u5, 0),
	}
}

func TestOracleReader(t *testing.T) {
	t.Parallel()
	stmts, err := orafake.Statements("oracle.go", "ora", "SQL")
	require.NoError(t, err)
	require.Len(t, stmts, 2)
	loc, err := time.LoadLocation("Europe/London")
	require.NoError(t, err)

	f := orafake.New()
	h := f.DB()
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	r := NewOracleReader(h, loc)
	withEmpty := append(oraFixtureRows(), oraRow("E5555EE", nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, 0))
	f.Answer(oraPageSQL, orafake.Answer{Cols: oraColumns(), Rows: withEmpty}, orafake.Answer{Cols: oraColumns()})
	f.Answer(oraPrisonerSQL, orafake.Answer{Cols: oraColumns(), Rows: oraFixtureRows()[3:]})

	ps, err := r.Page(t.Context(), "", 3)
	require.NoError(t, err)
	require.Len(t, ps, 3)
	require.Equal(t, "A1111AA", ps[0].PrisonNumber)
	require.Len(t, ps[0].Alerts, 3)
	a := ps[0].Alerts[0]
	require.Equal(t, u1, a.DPSAlertID)
	require.Equal(t, time.Date(2024, 3, 1, 0, 0, 0, 0, loc), a.Row.AlertDate)
	require.Equal(t, time.Date(2024, 3, 1, 10, 0, 0, 0, loc), a.Row.CreateDatetime)
	require.Nil(t, a.Row.ExpiryDate)
	require.Equal(t, time.Date(2024, 2, 1, 0, 0, 0, 0, loc), *ps[0].Alerts[1].Row.ExpiryDate)
	require.Equal(t, "E5555EE", ps[2].PrisonNumber)
	require.Empty(t, ps[2].Alerts, "a prisoner without alerts is listed")
	_, err = r.Page(t.Context(), "E5555EE", 3)
	require.NoError(t, err)
	p, err := r.Prisoner(t.Context(), "D4444DD")
	require.NoError(t, err)
	require.Len(t, p.Alerts, 1)

	calls := f.Calls()
	require.Len(t, calls, 3)
	ran := map[string]bool{}
	for _, c := range calls {
		ran[c.Query] = true
		require.Empty(t, orafake.Check(c, stmts, false), "%s", c.Query)
	}
	for name, q := range stmts {
		require.True(t, ran[q], "%s never ran", name)
	}
	require.Equal(t, oraFirstKey, calls[0].Args[0].Value, "the first page starts after ' ' (Oracle reads '' as NULL)")
	require.Equal(t, "E5555EE", calls[1].Args[0].Value)
}

// TestOracleReaderMatchesDPS: the Oracle reader's rows of the fixture
// compare clean against the DPS fixture, and a changed one does not.
func TestOracleReaderMatchesDPS(t *testing.T) {
	t.Parallel()
	w := newFixtureWorld(t)
	loc, err := time.LoadLocation("Europe/London")
	require.NoError(t, err)
	cases := []struct {
		name string
		rows func() [][]driver.Value
		want []string
	}{
		{name: "identical", rows: oraFixtureRows, want: []string{}},
		{name: "authorised_by differs", rows: func() [][]driver.Value {
			rows := oraFixtureRows()
			rows[0][8] = "Deputy"
			return rows
		}, want: []string{"A1111AA field side= match=false fields=authorised_by"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := orafake.New()
			h := f.DB()
			t.Cleanup(func() { require.NoError(t, h.Close()) })
			f.Answer(oraPageSQL, orafake.Answer{Cols: oraColumns(), Rows: tc.rows()})
			f.Answer(oraPrisonerSQL, orafake.Answer{Cols: oraColumns(), Rows: tc.rows()[:3]})
			r, err := New(NewOracleReader(h, loc), w.dpsDB, options(1000), Deps{})
			require.NoError(t, err)
			res, err := r.Run(t.Context(), RunOptions{})
			require.NoError(t, err)
			require.Equal(t, tc.want, summary(res.Differences))
		})
	}
}
