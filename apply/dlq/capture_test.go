package dlq

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/capture/nomis"
	"github.com/alertsync/alertsync/deploy"
	"github.com/alertsync/alertsync/internal/kafka"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
	"github.com/alertsync/alertsync/schemas"
)

// capturedValue is the value of a capture.nomis entry: the journal row as
// the capture writes it (nil images are JSON null).
func capturedValue(t *testing.T, table string, old, new *string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"journal_id": 1, "table_name": table, "operation": "U", "old_row": old, "new_row": new,
		"module_name": "OIDALERT", "txid": "1", "commit": 1, "commit_time": time.Now().UTC()})
	require.NoError(t, err)
	return b
}

func ptr(s string) *string { return &s }

func TestRequestsOf(t *testing.T) {
	t.Parallel()
	req := func(no string, off, book int64) nomis.ResyncRequest {
		return nomis.ResyncRequest{OffenderNo: no, OffenderID: off, BookID: book, Reason: nomis.ReasonRedrive}
	}
	for _, tt := range []struct {
		name     string
		table    string
		old, new *string
		alertKey string
		want     []nomis.ResyncRequest
	}{
		{"an alert: its booking", "offender_alerts", nil, ptr(`{"offender_book_id": 10, "alert_seq": 1, "root_offender_id": 3, "alert_date": "SECRET"}`), "nomis:10:1",
			[]nomis.ResyncRequest{req("", 0, 10)}},
		{"a moved booking: both offenders", "offender_bookings", ptr(`{"offender_book_id": 10, "offender_id": 1}`), ptr(`{"offender_book_id": 10, "offender_id": 2}`), "",
			[]nomis.ResyncRequest{req("", 1, 0), req("", 2, 0)}},
		{"an updated booking: one offender", "offender_bookings", ptr(`{"offender_book_id": 10, "offender_id": 1, "booking_seq": 1}`), ptr(`{"offender_book_id": 10, "offender_id": 1, "booking_seq": "SECRET"}`), "",
			[]nomis.ResyncRequest{req("", 1, 0)}},
		{"a renumbered offender: both numbers", "offenders", ptr(`{"offender_id": 1, "offender_id_display": "A1234BC"}`), ptr(`{"offender_id": 1, "offender_id_display": "A9999ZZ"}`), "",
			[]nomis.ResyncRequest{req("A1234BC", 0, 0), req("A9999ZZ", 0, 0)}},
		{"a prison number that is not one: the offender id", "offenders", nil, ptr(`{"offender_id": 7, "offender_id_display": "SECRET; --"}`), "",
			[]nomis.ResyncRequest{req("", 7, 0)}},
		{"ids that do not read: the alert key", "offender_alerts", nil, ptr(`{"offender_book_id": "10", "alert_seq": 1.5}`), "nomis:10:1",
			[]nomis.ResyncRequest{req("", 0, 10)}},
		{"an image that is not JSON: the alert key", "offender_alerts", nil, ptr(`SECRET`), "nomis:12:3",
			[]nomis.ResyncRequest{req("", 0, 12)}},
		{"ids too big or not positive", "offender_bookings", ptr(`{"offender_id": 99999999999999999999}`), ptr(`{"offender_id": 0, "offender_book_id": -4}`), "", nil},
		{"nothing to go by", "offender_notes", nil, ptr(`"SECRET"`), "", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := Entry{Stage: StageCaptureNOMIS, AlertKey: tt.alertKey, Value: capturedValue(t, tt.table, tt.old, tt.new)}
			require.Equal(t, tt.want, requestsOf(&e))
		})
	}
	require.Nil(t, requestsOf(&Entry{Value: []byte("SECRET")}), "a value that is not a journal row, no alert key")
}

// TestRedriveCapture: dlq redrive --stage capture.nomis writes one resync
// request per prisoner its entries name to the NOMIS journal (here the
// stand-in), prints what it asked for by ids only, leaves alone an entry
// naming no prisoner (and says so in its error), and writes nothing on a
// dry run.
func TestRedriveCapture(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ndb := pgtest.NewDB(t)
	migrated(t, ndb, "nomis", deploy.NOMISSchemaSQL())
	w.cfg.NOMIS.DSN, w.cfg.NOMIS.Dialect = ndb.DSN, "postgres"

	dlqc, err := schemas.New(w.srcl, schemas.WithTopicPrefix(w.cfg.Topics.Prefix)).Bind(t.Context(), schemas.TopicDLQ)
	require.NoError(t, err)
	put := func(stage, kind, alertKey string, value []byte) {
		var ak *string
		routing := "alertsync.alertsync_journal"
		if alertKey != "" {
			ak, routing = &alertKey, alertKey
		}
		rec, err := dlqc.Record(map[string]any{"routing_key": routing}, map[string]any{
			"topic": "alertsync.alertsync_journal", "partition": int32(-1), "offset": int64(41), "key": nil,
			"value": schemas.OptBytes(value), "headers": []any{}, "stage": stage, "error": "new_row column x: bad", "error_kind": kind,
			"attempt": int32(1), "failed_at": schemas.Timestamp(time.Now()), "held": false, "held_behind": nil, "alert_key": schemas.OptString(ak),
		})
		require.NoError(t, err)
		require.NoError(t, w.prod.ProduceSync(t.Context(), rec).FirstErr())
	}
	put(StageCaptureNOMIS, "bad_value", "nomis:10:1", capturedValue(t, "offender_alerts", nil, ptr(`{"offender_book_id": 10, "alert_seq": 1, "comment_text": "SECRET"}`)))
	put(StageCaptureNOMIS, "bad_value", "", capturedValue(t, "offender_bookings", ptr(`{"offender_book_id": 20, "offender_id": 1}`), ptr(`{"offender_book_id": 20, "offender_id": 2}`)))
	put(StageCaptureNOMIS, "malformed_row", "", capturedValue(t, "offender_alerts", nil, ptr(`"SECRET"`)))
	put(StageCaptureNOMIS, "bad_value", "nomis:10:2", capturedValue(t, "offender_alerts", nil, ptr(`{"offender_book_id": 10, "alert_seq": 2}`)))
	put(StageApplyDPS, "refused", "nomis:30:1", capturedValue(t, "offender_alerts", nil, ptr(`{"offender_book_id": 30}`)))

	requests := func() []string {
		rows, err := ndb.Pool.Query(t.Context(), `SELECT new_row::text || ' ' || module_name FROM alertsync.alertsync_journal
			WHERE table_name = $1 AND operation = 'I' ORDER BY journal_id`, nomis.TableResyncRequest)
		require.NoError(t, err)
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return out
	}

	out, err := w.redrive(t, RedriveOptions{Stage: StageCaptureNOMIS, All: true, DryRun: true})
	require.ErrorIs(t, err, ErrEntriesLeftAlone)
	require.Contains(t, out, "capture.nomis: would request 3 prisoner resyncs for 3 entries (nothing written)")
	require.Empty(t, requests(), "a dry run writes nothing")

	out, err = w.redrive(t, RedriveOptions{Stage: StageCaptureNOMIS, All: true})
	t.Logf("redrive:\n%s", out)
	require.ErrorIs(t, err, ErrEntriesLeftAlone)
	require.ErrorContains(t, err, "reconcile shows")
	require.NotContains(t, out, "SECRET")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 5)
	require.Regexp(t, `^capture.nomis: entry \S+/\d+/\d+ \(journal row 41, bad_value\): resync of booking 10$`, lines[0])
	require.Regexp(t, `: resync of offender 1, resync of offender 2$`, lines[1])
	require.Regexp(t, `\(journal row 41, malformed_row\): left alone: its journal row names no prisoner`, lines[2])
	require.Regexp(t, `: resync of booking 10$`, lines[3], "asked for once")
	require.Equal(t, "capture.nomis: requested 3 prisoner resyncs (REDRIVE) for 3 entries; the capture publishes each prisoner's snapshot capture.resync_delay after reading its request", lines[4])
	m := nomis.RequestModule
	require.Equal(t, []string{
		`{"offender_book_id":10,"reason":"REDRIVE"} ` + m,
		`{"offender_id":1,"reason":"REDRIVE"} ` + m,
		`{"offender_id":2,"reason":"REDRIVE"} ` + m,
	}, requests(), "the requests, in order, in the journal")

	out, err = w.redrive(t, RedriveOptions{Stage: StageCaptureNOMIS, AlertKey: "nomis:10:2"})
	require.NoError(t, err)
	require.Contains(t, out, "requested 1 prisoner resync (REDRIVE) for 1 entry")
	require.Len(t, requests(), 4)

	later := time.Now().Add(time.Hour)
	out, err = w.redrive(t, RedriveOptions{Stage: StageCaptureNOMIS, All: true, Since: later})
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("capture.nomis: no entries since %s in %s: nothing to redrive\n", later.UTC().Format(time.RFC3339), w.cfg.Topics.Name(kafka.DLQ)), out)
	out, err = w.redrive(t, RedriveOptions{Stage: StageCaptureNOMIS, AlertKey: "nomis:10:2", Since: time.Now().Add(-time.Hour)})
	require.NoError(t, err)
	require.Contains(t, out, "for 1 entry")
	require.Len(t, requests(), 5)

	out, err = w.redrive(t, RedriveOptions{Stage: StageCaptureNOMIS, AlertKey: "nomis:30:1"})
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("capture.nomis: no entries on nomis:30:1 in %s: nothing to redrive\n", w.cfg.Topics.Name(kafka.DLQ)), out,
		"another stage's entry is not the capture's")

	w.cfg.NOMIS.DSN = "postgres://nobody@127.0.0.1:1/none?connect_timeout=2"
	_, err = w.redrive(t, RedriveOptions{Stage: StageCaptureNOMIS, AlertKey: "nomis:10:2"})
	require.ErrorContains(t, err, "connecting to NOMIS (nomis.dsn, postgres dialect)")
}
