package apply_test

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/apply"
	"github.com/alertsync/alertsync/transform/rules"
)

// outboxSamples are rows covering every optional field set and unset.
func outboxSamples() []apply.OutboxRow {
	return []apply.OutboxRow{
		{CommandID: "c-1", Result: apply.Applied, PrisonNumber: "A1234BC", Origin: rules.SideNOMIS,
			SourcePosition: rules.Position{Commit: 1795799783344055, Change: 3}},
		{CommandID: "c-2", Result: apply.Conflict, Reason: ptr(apply.ReasonLost), PrisonNumber: "A1234BC",
			DPSAlertID: ptr("0190a3c4-1b2c-7d8e-9f00-0000000000c1"), NOMISBookingID: ptr(int64(-7)), NOMISAlertSeq: ptr(int32(2147483647)),
			Origin: rules.SideDPS, SourcePosition: rules.Position{Commit: -1, Change: 0},
			SourceCommitTime: time.Date(2026, 3, 29, 1, 30, 0, 123456000, time.UTC)},
		{CommandID: "undecodable:t/2/9", Result: apply.Failed, Reason: ptr(apply.ReasonUndecodable), PrisonNumber: "",
			DLQ: &apply.DLQEntry{Topic: "alertsync.commands.dps", Partition: 2, Offset: 9, Key: []byte{}, Value: []byte{0, 0xff, 'x'},
				ErrorKind: "decode", Error: "unknown magic byte"}},
		{CommandID: "c-4", Result: apply.Skipped, Reason: ptr(apply.ReasonHeld), PrisonNumber: "Z9999ZZ",
			DLQ: &apply.DLQEntry{Topic: "alertsync.commands.nomis", Partition: 0, Offset: 1 << 40, Value: []byte("v"),
				ErrorKind: "held", Error: "held behind command c-3 — é", HeldBehind: ptr("c-3"), AlertKey: ptr("dps:0190a3c4")}},
	}
}

func TestOutboxRoundTrip(t *testing.T) {
	t.Parallel()
	for _, rows := range [][]apply.OutboxRow{nil, outboxSamples()[:1], outboxSamples()} {
		got, err := apply.DecodeOutbox(apply.EncodeOutbox(rows))
		require.NoError(t, err)
		require.Len(t, got, len(rows))
		for i := range rows {
			require.Equal(t, rows[i], got[i], "row %d", i)
		}
	}
}

// TestOutboxDecodeRefuses: every truncation, a trailing byte, another
// version, an impossible count and a bad presence byte are errors wrapping
// ErrOutboxPayload, never a panic or a short read taken for a row.
func TestOutboxDecodeRefuses(t *testing.T) {
	t.Parallel()
	full := apply.EncodeOutbox(outboxSamples())
	for n := range len(full) {
		_, err := apply.DecodeOutbox(full[:n])
		require.ErrorIs(t, err, apply.ErrOutboxPayload, "cut at %d of %d bytes", n, len(full))
	}
	tests := []struct {
		name    string
		payload []byte
		want    string
	}{
		{"trailing byte", append(append([]byte{}, full...), 0), "after the last row"},
		{"version 2", append([]byte{2}, full[1:]...), "version 2"},
		{"count beyond the payload", []byte{1, 0xff, 0xff, 0x03}, "rows in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := apply.DecodeOutbox(tt.payload)
			require.ErrorIs(t, err, apply.ErrOutboxPayload)
			require.ErrorContains(t, err, tt.want)
		})
	}
	bad := apply.EncodeOutbox(outboxSamples()[:1])
	bad[len(bad)-1] = 2 // the DLQ presence byte of the only row
	_, err := apply.DecodeOutbox(bad)
	require.ErrorContains(t, err, "presence byte")
}

// TestOutboxRowOf: the row of a command keeps the command's keys and
// position; a DLQ entry carries the record as consumed and the hold key;
// an undecodable record is named by its place in the topic.
func TestOutboxRowOf(t *testing.T) {
	t.Parallel()
	rec := &kgo.Record{Topic: "alertsync.commands.dps", Partition: 1, Offset: 42, Key: []byte("k"), Value: []byte("v")}
	c := apply.Cmd{Command: rules.Command{ID: "c-1", PrisonNumber: "A1234BC", DPSAlertID: ptr("d-1"),
		NOMISBookingID: ptr(int64(10)), NOMISAlertSeq: ptr(int32(1)), Origin: rules.SideNOMIS,
		SourcePosition: rules.Position{Commit: 5, Change: 6}}, Record: rec}
	r := apply.OutboxRowOf(&c, apply.Outcome{Result: apply.Applied, DPSAlertID: "d-2"}, nil, "ignored")
	require.Equal(t, "d-2", *r.DPSAlertID, "the outcome's alert id wins")
	require.Nil(t, r.Reason)
	require.Nil(t, r.DLQ)
	require.Equal(t, rules.Position{Commit: 5, Change: 6}, r.SourcePosition)

	r = apply.OutboxRowOf(&c, apply.Outcome{Result: apply.Failed, Reason: "unknown_code"}, &apply.DLQReason{Kind: "refused", Error: "code ZZ"}, "nomis:10:1")
	require.Equal(t, "d-1", *r.DPSAlertID)
	require.Equal(t, "unknown_code", *r.Reason)
	require.Equal(t, apply.DLQEntry{Topic: rec.Topic, Partition: 1, Offset: 42, Key: rec.Key, Value: rec.Value,
		ErrorKind: "refused", Error: "code ZZ", AlertKey: ptr("nomis:10:1")}, *r.DLQ)

	bad := apply.Cmd{Record: rec, Err: errors.New("bad magic"), Command: rules.Command{DPSAlertID: ptr("not trusted")}}
	r = apply.OutboxRowOf(&bad, apply.Outcome{Result: apply.Failed, Reason: apply.ReasonUndecodable}, &apply.DLQReason{Kind: "decode", Error: "bad magic"}, "")
	require.Equal(t, "undecodable:alertsync.commands.dps/1/42", r.CommandID)
	require.Nil(t, r.DPSAlertID, "nothing of an undecodable command is trusted")
	require.Nil(t, r.DLQ.AlertKey)
}

func FuzzDecodeOutbox(f *testing.F) {
	f.Add(apply.EncodeOutbox(outboxSamples()))
	f.Add(apply.EncodeOutbox(nil))
	f.Add([]byte{1, 1})
	f.Fuzz(func(t *testing.T, payload []byte) {
		rows, err := apply.DecodeOutbox(payload)
		if err != nil {
			require.ErrorIs(t, err, apply.ErrOutboxPayload)
			return
		}
		again, err := apply.DecodeOutbox(apply.EncodeOutbox(rows))
		require.NoError(t, err)
		require.Equal(t, len(rows), len(again))
		for i := range rows {
			require.Equal(t, rows[i], again[i])
		}
	})
}

type markedTransient bool

func (m markedTransient) Error() string   { return "marked" }
func (m markedTransient) Transient() bool { return bool(m) }

// TestTransient: PostgreSQL's retryable codes, network errors and errors
// that mark themselves are retried; refusals and other errors are not.
func TestTransient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"serialization failure", &pgconn.PgError{Code: "40001"}, true},
		{"deadlock", fmt.Errorf("batch: %w", &pgconn.PgError{Code: "40P01"}), true},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"check violation", &pgconn.PgError{Code: "23514"}, false},
		{"refused connection", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{"marked transient", fmt.Errorf("oracle: %w", markedTransient(true)), true},
		{"marked permanent", markedTransient(false), false},
		{"anything else", errors.New("boom"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, apply.Transient(tt.err))
		})
	}
}
