package dlq

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// entry is a DLQ entry of stage apply-dps for alert k at DLQ offset off,
// for the original record at offset orig: failed (command id) or held
// behind a command.
func entry(off int64, k string, orig int64, id string, heldBehind string) Entry {
	return Entry{
		DLQPartition: 0, DLQOffset: off, Topic: "alertsync.commands.dps", Partition: 1, Offset: orig,
		Stage: StageApplyDPS, AlertKey: k, CommandID: id, Held: heldBehind != "", HeldBehind: heldBehind,
	}
}

func TestEpisode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		es    []Entry
		first string
		want  []int64 // DLQ offsets
	}{
		{"failed then held", []Entry{entry(0, key, 10, "F", ""), entry(1, key, 11, "H", "F")}, "F", []int64{0, 1}},
		{"other alerts and stages ignored", []Entry{
			entry(0, key, 10, "F", ""), entry(1, "nomis:10:2", 11, "G", ""), entry(2, "nomis:10:2", 12, "H2", "G"),
			{DLQOffset: 3, Stage: StageApplyNOMIS, AlertKey: key, Held: true, HeldBehind: "F", Topic: "alertsync.commands.nomis"},
			entry(4, key, 13, "H", "F"),
		}, "F", []int64{0, 4}},
		{"failed entry not published yet", []Entry{entry(0, key, 11, "H", "F")}, "F", nil},
		{"redriven and failed again: the new episode", []Entry{
			entry(0, key, 10, "F", ""), entry(1, key, 11, "H", "F"),
			entry(2, key, 20, "F", ""), entry(3, key, 21, "H", "F"),
		}, "F", []int64{2, 3}},
		{"redriven, the held one failed: its own episode", []Entry{
			entry(0, key, 10, "F", ""), entry(1, key, 11, "H", "F"), entry(2, key, 21, "H", ""), entry(3, key, 22, "J", "H"),
		}, "H", []int64{2, 3}},
		{"relay published twice after a crash", []Entry{
			entry(0, key, 10, "F", ""), entry(1, key, 11, "H", "F"), entry(2, key, 10, "F", ""), entry(3, key, 11, "H", "F"), entry(4, key, 12, "J", "F"),
		}, "F", []int64{2, 3, 4}},
		{"held behind another command", []Entry{entry(0, key, 10, "F", ""), entry(1, key, 11, "H", "E")}, "F", []int64{0}},
		{"a failure that started no hold is not part of it", []Entry{entry(0, key, 10, "F", ""), entry(1, key, 11, "M", ""), entry(2, key, 12, "H", "F")}, "F", []int64{0, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []int64
			for _, e := range episode(tt.es, StageApplyDPS, key, tt.first) {
				got = append(got, e.DLQOffset)
			}
			require.Equal(t, tt.want, got)
		})
	}
}
