package apply

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/internal/testenv/srtest"
	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/rules"
)

// outcomeNative is the outcome of o as goavro natives: the reference the
// direct encoding (outcome.go) is tested against.
func outcomeNative(o *OutboxRow, target string) (key, value map[string]any) {
	return map[string]any{"prison_number": o.PrisonNumber}, map[string]any{
		"command_id":         o.CommandID,
		"target":             target,
		"outcome":            string(o.Result),
		"reason":             schemas.OptString(o.Reason),
		"prison_number":      o.PrisonNumber,
		"dps_alert_id":       optUUID(o.DPSAlertID),
		"nomis_booking_id":   schemas.OptLong(o.NOMISBookingID),
		"nomis_alert_seq":    schemas.OptInt(o.NOMISAlertSeq),
		"source_position":    map[string]any{"commit": o.SourcePosition.Commit, "change": o.SourcePosition.Change},
		"source_commit_time": schemas.Timestamp(o.SourceCommitTime),
		"applied_at":         schemas.Timestamp(o.AppliedAt),
	}
}

func optUUID(s *string) any {
	if s == nil {
		return nil
	}
	return schemas.Union(schemas.BranchUUID, *s)
}

// TestOutcomeEncodingMatchesGoavro: the relay's direct encoding of outcome
// keys and values is byte for byte goavro's, for every result and target
// and every optional field set and unset.
func TestOutcomeEncodingMatchesGoavro(t *testing.T) {
	t.Parallel()
	_, cl := srtest.New(t)
	tc, err := schemas.New(cl).Bind(context.Background(), schemas.TopicOutcomes)
	require.NoError(t, err)
	str := func(s string) *string { return &s }
	book, seq := int64(-42), int32(2147483647)
	rows := []OutboxRow{
		{CommandID: "0190a3c4-1b2c-7d8e-9f00-0000000000c1", Result: Applied, PrisonNumber: "A1234BC"},
		{CommandID: "undecodable:t/2/9", Result: Failed, Reason: str(ReasonUndecodable), PrisonNumber: "",
			SourcePosition: rules.Position{Commit: -1, Change: 1 << 40}},
		{CommandID: "c-3", Result: Skipped, Reason: str("stale_position — é"), PrisonNumber: "Z9999ZZ",
			DPSAlertID: str("0190a3c4-1b2c-7d8e-9f00-0000000000c2"), NOMISBookingID: &book, NOMISAlertSeq: &seq,
			SourcePosition:   rules.Position{Commit: 1795799783344055, Change: 3},
			SourceCommitTime: time.Date(2026, 3, 29, 1, 30, 0, 123456789, time.UTC), AppliedAt: time.Date(2026, 11, 27, 18, 0, 0, 1000, time.UTC)},
		{CommandID: "c-4", Result: Conflict, Reason: str(ReasonLost), PrisonNumber: "A1234BC", NOMISBookingID: &book},
	}
	for _, target := range []string{"DPS", "NOMIS"} {
		for i := range rows {
			k, v := outcomeNative(&rows[i], target)
			want, err := tc.Record(k, v)
			require.NoError(t, err)
			require.Equal(t, want.Key, appendOutcomeKey(nil, tc.Key.ID(), rows[i].PrisonNumber), "key of row %d", i)
			require.Equal(t, want.Value, appendOutcomeValue(nil, tc.Value.ID(), &rows[i], target), "value of row %d to %s", i, target)
		}
	}
}
