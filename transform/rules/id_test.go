package rules

import (
	"strconv"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// TestCommandIDIsUUIDv5: CommandID computes exactly uuid.NewSHA1 of the
// command namespace and the name, and the NOMIS shortcut equals CommandID
// of the booking/sequence key.
func TestCommandIDIsUUIDv5(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		side Side
		pos  Position
		kind Kind
		key  string
	}{
		{SideNOMIS, Position{Commit: 1712000000123456, Change: 3}, KindUpsert, "12345/7"},
		{SideDPS, Position{Commit: 0x16B3748, Change: 0x16B3700}, KindDelete, "0190a3c4-1b2c-7d8e-9f00-112233445566"},
		{SideNOMIS, Position{Commit: -1, Change: 0}, KindReplacePrisoner, "A1234BC"},
		{SideUnknown, Position{}, KindUnknown, ""},
	} {
		name := c.side.String() + "|" + strconv.FormatInt(c.pos.Commit, 10) + "|" + strconv.FormatInt(c.pos.Change, 10) + "|" + c.kind.String() + "|" + c.key
		want := uuid.NewSHA1(commandNamespace, []byte(name)).String()
		require.Equal(t, want, CommandID(c.side, c.pos, c.kind, c.key), name)
	}
	for _, k := range []struct {
		book int64
		seq  int32
	}{{1, 1}, {9_999_999_999, 999_999}, {-5, 0}} {
		key := strconv.FormatInt(k.book, 10) + "/" + strconv.FormatInt(int64(k.seq), 10)
		pos := Position{Commit: 5_000_001, Change: 9}
		require.Equal(t, CommandID(SideNOMIS, pos, KindUpsert, key), commandIDNOMIS(pos, KindUpsert, k.book, k.seq))
	}
}

// TestCommandIDAllocs: a command id costs one allocation, its string (it is
// computed for every command on the transformer's hot path).
func TestCommandIDAllocs(t *testing.T) { //nolint:paralleltest // AllocsPerRun refuses parallel tests
	pos := Position{Commit: 1712000000123456, Change: 3}
	require.LessOrEqual(t, testing.AllocsPerRun(200, func() { _ = CommandID(SideDPS, pos, KindUpsert, "0190a3c4-1b2c-7d8e-9f00-112233445566") }), 1.0)
	require.LessOrEqual(t, testing.AllocsPerRun(200, func() { _ = commandIDNOMIS(pos, KindUpsert, 12345, 7) }), 1.0)
}
