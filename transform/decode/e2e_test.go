package decode

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/transform/rules"
)

// TestIntoRules feeds decoded records into the rules: the types line up and
// the markers the decoder carries (sync, booking copy, booking_seq, soft
// delete) reach the rules.
func TestIntoRules(t *testing.T) {
	t.Parallel()
	r := newRules(t)
	type result struct {
		kind   rules.Kind
		target rules.Side
		drop   rules.Drop
		alerts int
	}
	nomis := nomisChanges()
	dps := dpsChanges()
	snaps := snapshots()
	tests := []struct {
		name string
		run  func(t *testing.T) (rules.Command, rules.Drop, error)
		want result
	}{
		{"NOMIS create", nomisRun(nomis["create with DPS id"], r), result{kind: rules.KindUpsert, target: rules.SideDPS}},
		{"NOMIS delete", nomisRun(nomis["delete, booking gone"], r), result{drop: rules.DropNotCurrentBooking}},
		{"NOMIS sync", nomisRun(nomis["sync write"], r), result{drop: rules.DropSync}},
		{"NOMIS booking copy", nomisRun(nomis["booking copy"], r), result{drop: rules.DropBookingCopy}},
		{"NOMIS snapshot", func(t *testing.T) (rules.Command, rules.Drop, error) {
			s, err := NOMISSnapshot(snapshotNatives(t, snaps["two alerts"]))
			require.NoError(t, err)
			return r.NOMISSnapshot(&s)
		}, result{kind: rules.KindReplacePrisoner, target: rules.SideDPS, alerts: 2}},
		{"DPS create", dpsRun(dps["create"], r), result{kind: rules.KindUpsert, target: rules.SideNOMIS}},
		{"DPS soft delete", dpsRun(dps["soft delete"], r), result{kind: rules.KindDelete, target: rules.SideNOMIS}},
		{"DPS sync", dpsRun(dps["sync write"], r), result{drop: rules.DropSync}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd, drop, err := tt.run(t)
			require.NoError(t, err)
			require.Equal(t, tt.want, result{kind: cmd.Kind, target: cmd.Target, drop: drop, alerts: len(cmd.Alerts)})
			if drop == rules.DropNone {
				require.Equal(t, "A1234BC", cmd.PrisonNumber)
				require.NotEmpty(t, cmd.ID)
			}
		})
	}
	t.Run("DPS truncate reaches the rules", func(t *testing.T) {
		t.Parallel()
		_, _, err := dpsRun(dps["truncate, left for rules"], r)(t)
		require.ErrorIs(t, err, &rules.Error{Reason: rules.ReasonUnsupportedOp})
	})
	t.Run("NOMIS create keeps the mapped DPS id", func(t *testing.T) {
		t.Parallel()
		cmd, _, err := nomisRun(nomis["create with DPS id"], r)(t)
		require.NoError(t, err)
		require.Equal(t, ptr("0190a3c4-1b2c-7d8e-9f00-112233445566"), cmd.DPSAlertID)
		require.Equal(t, rules.DateOf(2024, 3, 30), cmd.After.ActiveFrom, "ALERT_DATE 2024-03-30 23:00 UTC is 30 March in London (GMT until 31 March)")
	})
}

func nomisRun(ch rules.NOMISAlertChange, r *rules.Rules) func(t *testing.T) (rules.Command, rules.Drop, error) {
	return func(t *testing.T) (rules.Command, rules.Drop, error) {
		c, err := NOMISAlert(nomisNatives(t, ch))
		require.NoError(t, err)
		return r.NOMISAlert(&c)
	}
}

func dpsRun(ch rules.DPSAlertChange, r *rules.Rules) func(t *testing.T) (rules.Command, rules.Drop, error) {
	return func(t *testing.T) (rules.Command, rules.Drop, error) {
		c, err := DPSAlert(dpsNatives(t, ch))
		require.NoError(t, err)
		return r.DPSAlert(&c)
	}
}
