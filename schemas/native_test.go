package schemas

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDate(t *testing.T) {
	t.Parallel()
	london, err := time.LoadLocation("Europe/London")
	require.NoError(t, err, "install tzdata (apt-get install tzdata)")
	tests := []struct {
		name string
		in   time.Time
		want int32
	}{
		{"epoch", time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), 0},
		{"day after", time.Date(1970, 1, 2, 23, 59, 59, 0, time.UTC), 1},
		{"before the epoch", time.Date(1969, 12, 31, 12, 0, 0, 0, time.UTC), -1},
		{"moon landing", time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC), -165},
		{"calendar date in its own zone", time.Date(2024, 6, 1, 0, 30, 0, 0, london), 19875}, // 2024-05-31T23:30Z
		{"leap day", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), 19782},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Date(tt.in))
		})
	}
}

func TestTimestamps(t *testing.T) {
	t.Parallel()
	london, err := time.LoadLocation("Europe/London")
	require.NoError(t, err, "install tzdata (apt-get install tzdata)")
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)

	at := time.Date(2024, 7, 1, 12, 0, 0, 123456789, time.UTC)
	assert.Equal(t, int64(1719835200123456), Timestamp(at), "micros, sub-micro digits dropped")
	assert.Equal(t, Timestamp(at), Timestamp(at.In(paris)), "zone does not matter")
	assert.Equal(t, int64(-1), Timestamp(time.Unix(0, -1000)))

	tests := []struct {
		name string
		wall time.Time // wall-clock reading; its zone is ignored
		want time.Time
	}{
		{"winter is GMT", time.Date(2024, 1, 15, 9, 30, 0, 0, time.UTC), time.Date(2024, 1, 15, 9, 30, 0, 0, time.UTC)},
		{"summer is BST", time.Date(2024, 7, 15, 9, 30, 0, 500000000, time.UTC), time.Date(2024, 7, 15, 8, 30, 0, 500000000, time.UTC)},
		{"zone of the reading ignored", time.Date(2024, 7, 15, 9, 30, 0, 0, paris), time.Date(2024, 7, 15, 8, 30, 0, 0, time.UTC)},
		{"clocks go back: the earlier of two", time.Date(2024, 10, 27, 1, 30, 0, 0, time.UTC), time.Date(2024, 10, 27, 0, 30, 0, 0, time.UTC)},
		{"clocks go forward: the gap moves on", time.Date(2024, 3, 31, 1, 30, 0, 0, time.UTC), time.Date(2024, 3, 31, 1, 30, 0, 0, time.UTC)},
		{"just after the change back", time.Date(2024, 10, 27, 2, 0, 0, 0, time.UTC), time.Date(2024, 10, 27, 2, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want.UnixMicro(), LocalTimestamp(tt.wall, london),
				"got %s", time.UnixMicro(LocalTimestamp(tt.wall, london)).UTC())
		})
	}
}

func TestOptionalValues(t *testing.T) {
	t.Parallel()
	day := time.Date(2024, 3, 14, 15, 9, 26, 0, time.UTC)
	id := uuid.MustParse("0190a3c1-7b2e-7c3d-9f10-5a1b2c3d4e5f")
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"string", OptString(ptr("x")), map[string]any{"string": "x"}},
		{"null string", OptString(nil), nil},
		{"long", OptLong(ptr(int64(5))), map[string]any{"long": int64(5)}},
		{"null long", OptLong(nil), nil},
		{"int", OptInt(ptr(int32(5))), map[string]any{"int": int32(5)}},
		{"null int", OptInt(nil), nil},
		{"bool", OptBool(ptr(false)), map[string]any{"boolean": false}},
		{"null bool", OptBool(nil), nil},
		{"bytes", OptBytes([]byte{1}), map[string]any{"bytes": []byte{1}}},
		{"empty bytes are not null", OptBytes([]byte{}), map[string]any{"bytes": []byte{}}},
		{"null bytes", OptBytes(nil), nil},
		{"uuid", OptUUID(&id), map[string]any{"string": id.String()}},
		{"null uuid", OptUUID(nil), nil},
		{"date", OptDate(&day), map[string]any{"int.date": int32(19796)}},
		{"null date", OptDate(nil), nil},
		{"timestamp", OptTimestamp(&day), map[string]any{"long.timestamp-micros": day.UnixMicro()}},
		{"null timestamp", OptTimestamp(nil), nil},
		{"record", OptRecord(TypeAlertState, map[string]any{"code": "X"}), map[string]any{TypeAlertState: map[string]any{"code": "X"}}},
		{"null record", OptRecord(TypeAlertState, nil), nil},
		{"union", Union(BranchLong, int64(1)), map[string]any{"long": int64(1)}},
		{"null union", Union(BranchLong, nil), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.got)
		})
	}
}

func TestGet(t *testing.T) {
	t.Parallel()
	rec := map[string]any{
		"s":        "x",
		"n":        int64(3),
		"opt":      map[string]any{"string": "y"},
		"null":     nil,
		"optstate": map[string]any{TypeAlertState: map[string]any{"code": "X"}},
	}
	s, ok := Get[string](rec, "s")
	assert.True(t, ok)
	assert.Equal(t, "x", s)
	_, ok = Get[string](rec, "n")
	assert.False(t, ok, "wrong type")
	_, ok = Get[string](rec, "missing")
	assert.False(t, ok, "absent field")

	o, ok := GetOpt[string](rec, "opt")
	assert.True(t, ok)
	assert.Equal(t, "y", o)
	_, ok = GetOpt[string](rec, "null")
	assert.False(t, ok, "null")
	_, ok = GetOpt[string](rec, "missing")
	assert.False(t, ok, "absent")
	_, ok = GetOpt[int64](rec, "opt")
	assert.False(t, ok, "wrong type")
	st, ok := GetOpt[map[string]any](rec, "optstate")
	assert.True(t, ok)
	assert.Equal(t, "X", st["code"])
}
