package dps

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
	"github.com/alertsync/alertsync/schemas"
)

// TestSnapshotThenStream: rows present at the first start arrive as op r,
// later changes stream as c/u/d with a tombstone after the delete, in commit
// order per key, with positions that grow.
func TestSnapshotThenStream(t *testing.T) {
	t.Parallel()
	t.Logf("kafka: %s", kafkatest.Kind())
	h := newHarness(t)
	insertAlert(t, h.db, "0190a3f4-0000-7000-8000-000000000001", "A1234BC", "XA")
	r := h.start(t)
	h.waitRunning(t, r)

	insertAlert(t, h.db, "0190a3f4-0000-7000-8000-000000000002", "A1234BC", "HA")
	h.db.Exec(t, "UPDATE alert SET description = 'changed', version = 2 WHERE id = '0190a3f4-0000-7000-8000-000000000002'")
	h.db.Exec(t, "DELETE FROM alert WHERE id = '0190a3f4-0000-7000-8000-000000000001'")

	recs := h.consume(t, 5, 30*time.Second, h.topic("alert"))
	require.Len(t, recs, 5)
	byKey := map[string][]rec{}
	for _, x := range recs {
		id, _ := schemas.Get[string](x.Key, "id")
		byKey[id] = append(byKey[id], x)
	}
	one := byKey["0190a3f4-0000-7000-8000-000000000001"]
	require.Len(t, one, 3)
	require.Equal(t, "r", one[0].op())
	require.Equal(t, "true", one[0].source()["snapshot"])
	require.Equal(t, "d", one[1].op())
	require.Nil(t, one[2].Value, "tombstone after delete")
	require.Equal(t, "A1234BC", one[1].row("before")["prison_number"])

	two := byKey["0190a3f4-0000-7000-8000-000000000002"]
	require.Len(t, two, 2)
	require.Equal(t, "c", two[0].op())
	require.Equal(t, "u", two[1].op())
	require.NotNil(t, two[1].row("before"), "REPLICA IDENTITY FULL gives the before image")
	p0 := two[0].source()["position"].(map[string]any)
	p1 := two[1].source()["position"].(map[string]any)
	require.Greater(t, p1["commit"].(int64), p0["commit"].(int64))
	require.Equal(t, "false", two[0].source()["snapshot"])
	require.Equal(t, false, two[0].source()["sync"])
	created := two[0].row("after")["created_at"].(time.Time)
	require.Equal(t, time.Date(2024, 6, 1, 11, 0, 0, 0, time.UTC), created.UTC(), "Europe/London BST wall clock to UTC")

	require.NoError(t, r.stop(t))
	require.True(t, pgtest.QueryValue[bool](t, h.db, "SELECT snapshot_done FROM alertsync.capture_state WHERE slot_name = $1", h.cfg.Capture.Slot))
}

// TestSyncMarker: a transaction that starts with the alertsync logical
// message is published with sync = true and the marker text as origin.
func TestSyncMarker(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.start(t)
	h.waitRunning(t, r)
	h.db.Exec(t, `BEGIN;
		SELECT pg_logical_emit_message(true, 'alertsync', 'apply-dps cmd=42');
		INSERT INTO alert (id, alert_code_id, prison_number, active_from, created_at, version)
		  SELECT '0190a3f4-0000-7000-8000-0000000000aa', id, 'B2345CD', '2024-02-03', now(), 1 FROM alert_code WHERE code = 'XA';
		COMMIT`)
	insertAlert(t, h.db, "0190a3f4-0000-7000-8000-0000000000bb", "B2345CD", "XA")
	recs := h.consume(t, 2, 30*time.Second, h.topic("alert"))
	require.Len(t, recs, 2)
	got := map[string]map[string]any{}
	for _, x := range recs {
		id, _ := schemas.Get[string](x.Key, "id")
		got[id] = x.source()
	}
	require.Equal(t, true, got["0190a3f4-0000-7000-8000-0000000000aa"]["sync"])
	require.Equal(t, map[string]any{"string": "apply-dps cmd=42"}, got["0190a3f4-0000-7000-8000-0000000000aa"]["origin"])
	require.Equal(t, false, got["0190a3f4-0000-7000-8000-0000000000bb"]["sync"])
	require.Nil(t, got["0190a3f4-0000-7000-8000-0000000000bb"]["origin"])
}

// TestSecondCaptureRefused: the slot's advisory lock keeps a second capture
// of the same slot from running; it exits at once with ErrLocked.
func TestSecondCaptureRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.start(t)
	h.waitRunning(t, r)
	second := h.start(t)
	select {
	case err := <-second.done:
		second.done <- err
		require.ErrorIs(t, err, ErrLocked)
		require.ErrorContains(t, err, h.cfg.Capture.Slot)
	case <-time.After(30 * time.Second):
		t.Fatal("second capture did not exit")
	}
}

// TestResumeAfterRestart: a restarted capture resumes from the confirmed LSN
// without taking the snapshot again.
func TestResumeAfterRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	insertAlert(t, h.db, "0190a3f4-0000-7000-8000-000000000101", "C3456DE", "XA")
	r := h.start(t)
	h.waitRunning(t, r)
	insertAlert(t, h.db, "0190a3f4-0000-7000-8000-000000000102", "C3456DE", "XA")
	require.Len(t, h.consume(t, 2, 30*time.Second, h.topic("alert")), 2)
	require.NoError(t, r.stop(t))

	insertAlert(t, h.db, "0190a3f4-0000-7000-8000-000000000103", "C3456DE", "XA")
	r2 := h.start(t)
	h.waitRunning(t, r2)
	insertAlert(t, h.db, "0190a3f4-0000-7000-8000-000000000104", "C3456DE", "XA")
	recs := h.consume(t, 4, 30*time.Second, h.topic("alert"))
	require.Len(t, recs, 4)
	ops := map[string]string{}
	for _, x := range recs {
		id, _ := schemas.Get[string](x.Key, "id")
		require.NotContains(t, ops, id, "no record twice")
		ops[id] = x.op()
	}
	require.Equal(t, map[string]string{
		"0190a3f4-0000-7000-8000-000000000101": "r",
		"0190a3f4-0000-7000-8000-000000000102": "c",
		"0190a3f4-0000-7000-8000-000000000103": "c",
		"0190a3f4-0000-7000-8000-000000000104": "c",
	}, ops)
	// Nothing more arrives: once the slot has confirmed all WAL, the topic
	// holds exactly the four records (read up to its end offsets, which does
	// not depend on how fast a consumer polls).
	h.waitCaughtUp(t, 30*time.Second)
	require.Len(t, h.consumeAll(t, h.topic("alert")), 4)
}
