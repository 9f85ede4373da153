package dps

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/alertsync/alertsync/internal/testenv/pgtest"
)

// TestSnapshotWithConcurrentWrites: with rows inserted and updated while the
// capture creates its slot and takes its snapshot, every row arrives exactly
// once as op r (in the snapshot) or op c (streamed), its updates follow as
// op u with versions that go up one at a time from the version the r or c
// record carried (no update both in the snapshot and in the stream, none in
// neither), and the last record of each row is its final state.
func TestSnapshotWithConcurrentWrites(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const preload = 5000
	xa := alertCodeID(t, h.db, "XA")
	idOf := func(n int) string { return fmt.Sprintf("0190a3f4-0000-7000-8000-%012d", n) }
	h.db.Exec(t, fmt.Sprintf(`INSERT INTO alert (id, alert_code_id, prison_number, description, active_from, created_at, version)
		SELECT ('0190a3f4-0000-7000-8000-' || lpad(g::text, 12, '0'))::uuid, %d, 'E5555EE', 'v1', '2024-01-02', '2024-06-01 12:00:00', 1
		  FROM generate_series(1, %d) g`, xa, preload))

	var (
		mu       sync.Mutex
		known    []string // rows the updater may pick
		inserted = map[string]bool{}
		writes   atomic.Int64
	)
	for n := 1; n <= preload; n++ {
		known = append(known, idOf(n))
	}
	ctx, stopWriters := context.WithCancel(context.Background())
	defer stopWriters()
	var g errgroup.Group
	g.Go(func() error { // single-row insert transactions
		for n := 1_000_000; ctx.Err() == nil; n++ {
			id := idOf(n)
			if _, err := h.db.Pool.Exec(context.Background(), `INSERT INTO alert (id, alert_code_id, prison_number, description, active_from, created_at, version)
				VALUES ($1, $2, 'E5555EE', 'v1', '2024-01-02', '2024-06-01 12:00:00', 1)`, id, xa); err != nil {
				return fmt.Errorf("inserting: %w", err)
			}
			mu.Lock()
			known = append(known, id)
			inserted[id] = true
			mu.Unlock()
			writes.Add(1)
		}
		return nil
	})
	g.Go(func() error { // update transactions of one to three rows
		rng := rand.New(rand.NewPCG(7, 8)) //nolint:gosec // test data
		for ctx.Err() == nil {
			mu.Lock()
			batch := make([]string, 1+rng.IntN(3))
			for i := range batch {
				// Favour recent rows, so that rows inserted around the
				// snapshot get updates too.
				if rng.IntN(2) == 0 {
					batch[i] = known[len(known)-1-rng.IntN(min(len(known), 50))]
				} else {
					batch[i] = known[rng.IntN(len(known))]
				}
			}
			mu.Unlock()
			if _, err := h.db.Pool.Exec(context.Background(),
				"UPDATE alert SET version = version + 1, description = 'v' || (version + 1) WHERE id = ANY($1::uuid[])", batch); err != nil {
				return fmt.Errorf("updating: %w", err)
			}
			writes.Add(1)
		}
		return nil
	})
	for writes.Load() < 200 {
		time.Sleep(10 * time.Millisecond)
	}
	r := h.start(t)
	h.waitRunning(t, r)
	time.Sleep(time.Second)
	stopWriters()
	require.NoError(t, g.Wait())
	t.Logf("%d write transactions, %d rows inserted while the capture started", writes.Load(), len(inserted))

	h.waitCaughtUp(t, 60*time.Second)
	recs := h.consumeAll(t, h.topic("alert"))
	final := map[string]int32{}
	rows, err := h.db.Pool.Query(context.Background(), "SELECT id::text, version FROM alert")
	require.NoError(t, err)
	for rows.Next() {
		var id string
		var v int32
		require.NoError(t, rows.Scan(&id, &v))
		final[id] = v
	}
	require.NoError(t, rows.Err())
	require.Len(t, final, preload+len(inserted))

	groups := byKey(recs)
	var snapshotted, streamed, insertedAsR, insertedAsC, updatedAfterR int
	for id, want := range final {
		got := groups[id]
		require.NotEmpty(t, got, "row %s never published", id)
		first := got[0]
		switch first.op() {
		case "r":
			snapshotted++
			if inserted[id] {
				insertedAsR++
			}
			if len(got) > 1 {
				updatedAfterR++
			}
		case "c":
			streamed++
			if inserted[id] {
				insertedAsC++
			}
		default:
			t.Fatalf("row %s: first record is op %q, want r or c", id, first.op())
		}
		v, _ := first.field("after", "version").(int32)
		for i, x := range got[1:] {
			require.Equal(t, "u", x.op(), "row %s record %d: only the first record is r or c", id, i+1)
			require.Equal(t, v, x.field("before", "version"), "row %s record %d: before image is the previous record's after image", id, i+1)
			require.Equal(t, v+1, x.field("after", "version"), "row %s record %d: no update missing or repeated", id, i+1)
			v++
		}
		require.Equal(t, want, v, "row %s: last record is the final state", id)
		require.Equal(t, fmt.Sprintf("v%d", want), got[len(got)-1].field("after", "description"))
	}
	require.Len(t, groups, len(final), "no record of a row that does not exist")
	t.Logf("rows: %d from the snapshot, %d streamed; inserted while starting: %d as r, %d as c; %d snapshot rows updated after",
		snapshotted, streamed, insertedAsR, insertedAsC, updatedAfterR)
	require.Equal(t, preload, snapshotted-insertedAsR, "every preloaded row in the snapshot")
	require.Positive(t, insertedAsR, "rows inserted while starting are in the snapshot")
	require.Positive(t, insertedAsC, "rows inserted while starting are streamed")
	require.Positive(t, updatedAfterR, "rows of the snapshot updated in the stream")

	m := h.metric(t, "alertsync_capture_dps_snapshot_rows_total", map[string]string{"table": "alert"})
	require.NotNil(t, m)
	require.InDelta(t, float64(snapshotted), m.GetCounter().GetValue(), 0)
	require.True(t, pgtest.QueryValue[bool](t, h.db, "SELECT snapshot_done FROM alertsync.capture_state WHERE slot_name = $1", h.cfg.Capture.Slot))
}
