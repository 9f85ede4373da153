package nomis

import (
	"cmp"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/internal/admin"
	"github.com/alertsync/alertsync/schemas"
)

// TestCorruptJournalRowsGoToDLQ: journal rows that cannot be turned into
// records – an unknown table, an image that is not a JSON object, a value
// that does not fit its column, a NOT NULL column missing, an operation
// without the image it needs, a resync request that is not one – each land in alertsync.dlq with the reason
// (never a value), the whole journal row, and the capture goes on: the
// changes after them are published and the journal empties.
func TestCorruptJournalRowsGoToDLQ(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.fixture(t)
	h.db.Exec(t, `INSERT INTO oms_owner.offender_alerts (offender_book_id, alert_seq, alert_type, alert_code, alert_status, comment_text)
		VALUES (10, 1, 'X', 'XA', 'ACTIVE', 'SECRET-COMMENT')`)
	// Rows a broken trigger or a hand edit could leave, built from the good
	// alert row.
	h.db.Exec(t, `
INSERT INTO alertsync.alertsync_journal (table_name, operation, old_row, new_row, module_name, txid)
SELECT v.t, v.op, v.old_row, v.new_row, 'OIDALERT', txid_current()
  FROM (SELECT to_jsonb(a) AS j FROM oms_owner.offender_alerts a WHERE offender_book_id = 10 AND alert_seq = 1) a,
       LATERAL (VALUES
         (1, 'offender_notes', 'I', NULL::json, a.j::json),
         (2, 'offender_alerts', 'I', NULL, '"SECRET-STRING"'::json),
         (3, 'offender_alerts', 'I', NULL, jsonb_set(a.j, '{alert_date}', '"SECRET-DATE"')::json),
         (4, 'offender_alerts', 'U', a.j::json, jsonb_set(a.j, '{alert_seq}', '1234567890123')::json),
         (5, 'offender_alerts', 'I', NULL, (a.j - 'alert_code')::json),
         (6, 'offender_alerts', 'U', NULL, a.j::json),
         (7, 'alertsync_resync_request', 'I', NULL, '{"reason": "REDRIVE", "comment": "SECRET-NOTE"}'::json)
       ) AS v(n, t, op, old_row, new_row)
 ORDER BY v.n`)
	wantKinds := []string{KindUnknownTable, KindMalformed, KindBadValue, KindBadValue, KindMissingValue, KindOperation, KindMalformed}
	wantErrs := []string{
		"journal row of table offender_notes, which is not captured",
		"new_row is not a JSON object",
		"new_row column alert_date: not an ISO 8601 timestamp",
		"new_row column alert_seq: not a whole number of at most 32 bits",
		"new_row column alert_code: null or absent in a NOT NULL column",
		"old_row missing for operation U",
		"new_row is not a resync request object",
	}
	wantAlertKeys := []any{nil, nil, "nomis:10:1", "nomis:10:1", "nomis:10:1", "nomis:10:1", nil}
	ids := pgtestInts(t, h, "SELECT journal_id FROM alertsync.alertsync_journal WHERE module_name = 'OIDALERT' ORDER BY journal_id")
	require.Len(t, ids, len(wantKinds))

	r := h.start(t)
	r.waitRunning(t)
	h.inSession(t, nil, insertAlert(10, 2))
	h.waitCaughtUp(t, 30*time.Second)
	require.Equal(t, admin.Running, r.c.comp.Status().State, "the capture goes on")

	alerts := byKey(h.consumeAll(t, h.topic(TableOffenderAlerts)))
	require.Equal(t, []string{"c"}, ops(alerts["10/1"]), "the good row, before the bad ones")
	require.Equal(t, []string{"c"}, ops(alerts["10/2"]), "a change after the bad rows")

	entries := h.consumeAll(t, h.dlqTopic())
	require.Len(t, entries, len(wantKinds))
	// Entries of different routing keys may sit on different partitions.
	slices.SortFunc(entries, func(a, b rec) int { return cmp.Compare(a.Value["offset"].(int64), b.Value["offset"].(int64)) })
	for i, e := range entries {
		t.Run(wantKinds[i], func(t *testing.T) {
			v := e.Value
			require.Equal(t, StageCapture, v["stage"])
			require.Equal(t, wantKinds[i], v["error_kind"])
			require.Contains(t, v["error"], wantErrs[i])
			require.NotContains(t, v["error"], "SECRET")
			require.Equal(t, "alertsync.alertsync_journal", v["topic"])
			require.Equal(t, int32(-1), v["partition"])
			require.Equal(t, ids[i], v["offset"], "offset is the journal id")
			require.Equal(t, int32(1), v["attempt"])
			require.Equal(t, false, v["held"])
			require.Equal(t, wantAlertKeys[i], unwrapUnion(v["alert_key"]))
			routing := "alertsync.alertsync_journal"
			if k, ok := wantAlertKeys[i].(string); ok {
				routing = k
			}
			require.Equal(t, map[string]any{"routing_key": routing}, e.Key)
			raw, ok := unwrapUnion(v["value"]).([]byte)
			require.True(t, ok, "the journal row as the value")
			var row map[string]any
			require.NoError(t, json.Unmarshal(raw, &row))
			require.InDelta(t, float64(ids[i]), row["journal_id"], 0)
			require.Equal(t, "OIDALERT", row["module_name"])
			require.Contains(t, []string{"offender_notes", "offender_alerts", TableResyncRequest}, row["table_name"])
			failedAt, _ := schemas.Get[time.Time](v, "failed_at")
			require.WithinDuration(t, time.Now(), failedAt, time.Minute)
		})
	}
	raw := unwrapUnion(entries[1].Value["value"]).([]byte)
	require.Contains(t, string(raw), `"new_row":"\"SECRET-STRING\""`, "images kept as the journal holds them")

	for kind, n := range map[string]float64{KindUnknownTable: 1, KindMalformed: 2, KindBadValue: 2, KindMissingValue: 1, KindOperation: 1} {
		require.InDelta(t, n, h.metric(t, "alertsync_capture_nomis_dlq_total", map[string]string{"kind": kind}).GetCounter().GetValue(), 0, kind)
	}
	logs := h.logs.String()
	require.Equal(t, len(wantKinds), strings.Count(logs, "journal row sent to the DLQ"), logs)
	require.NotContains(t, logs, "SECRET", "no value is logged")
	require.Nil(t, h.metric(t, "alertsync_capture_nomis_errors_total", nil), "bad rows are not errors of the capture")
}

func pgtestInts(t *testing.T, h *harness, sql string) []int64 {
	t.Helper()
	rows, err := h.db.Pool.Query(t.Context(), sql)
	require.NoError(t, err)
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var n int64
		require.NoError(t, rows.Scan(&n))
		out = append(out, n)
	}
	require.NoError(t, rows.Err())
	return out
}
