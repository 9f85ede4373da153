package dps

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"
)

// london loads Europe/London from the system's zone database.
func london(tb testing.TB) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation("Europe/London")
	require.NoError(tb, err, "the tests need the IANA zone database: apt-get install tzdata")
	return loc
}

func utc(y int, m time.Month, d, h, mi, s, ns int) time.Time {
	return time.Date(y, m, d, h, mi, s, ns, time.UTC)
}

func TestDecodeText(t *testing.T) {
	t.Parallel()
	loc := london(t)
	long := strings.Repeat("Ab ", 1333) + "x" // 4000 characters
	tests := []struct {
		name string
		oid  uint32
		text string
		want any
	}{
		{"bool true", pgtype.BoolOID, "t", true},
		{"bool false", pgtype.BoolOID, "f", false},
		{"int2", pgtype.Int2OID, "-32768", int32(-32768)},
		{"int4", pgtype.Int4OID, "2147483647", int32(math.MaxInt32)},
		{"int4 negative", pgtype.Int4OID, "-7", int32(-7)},
		{"int8", pgtype.Int8OID, "-9223372036854775808", int64(math.MinInt64)},
		{"oid", pgtype.OIDOID, "4294967295", int64(math.MaxUint32)},
		{"float4", pgtype.Float4OID, "1.1", 1.1},
		{"float8", pgtype.Float8OID, "-2.5e-300", -2.5e-300},
		{"float8 infinity", pgtype.Float8OID, "-Infinity", math.Inf(-1)},
		{"numeric keeps every digit", pgtype.NumericOID, "12345678901234567890.000000000000000001", "12345678901234567890.000000000000000001"},
		{"numeric negative", pgtype.NumericOID, "-0.5", "-0.5"},
		{"numeric NaN", pgtype.NumericOID, "NaN", "NaN"},
		{"text", pgtype.TextOID, "Risk to staff", "Risk to staff"},
		{"text 4000 characters", pgtype.TextOID, long, long},
		{"text empty", pgtype.TextOID, "", ""},
		{"text unicode", pgtype.TextOID, "Ní dhéanfaidh ✓", "Ní dhéanfaidh ✓"},
		{"varchar", pgtype.VarcharOID, "A1234BC", "A1234BC"},
		{"bpchar keeps padding", pgtype.BPCharOID, "MDI   ", "MDI   "},
		{"name", pgtype.NameOID, "alert", "alert"},
		{"json", pgtype.JSONOID, `{"a": 1}`, `{"a": 1}`},
		{"jsonb", pgtype.JSONBOID, `{"a": 1}`, `{"a": 1}`},
		{"char", pgtype.QCharOID, "f", "f"},
		{"uuid", pgtype.UUIDOID, "0190f3c1-7f5a-7c3e-9b1a-2f6d8e4c5a10", "0190f3c1-7f5a-7c3e-9b1a-2f6d8e4c5a10"},
		{"uuid upper case made canonical", pgtype.UUIDOID, "0190F3C1-7F5A-7C3E-9B1A-2F6D8E4C5A10", "0190f3c1-7f5a-7c3e-9b1a-2f6d8e4c5a10"},
		{"date", pgtype.DateOID, "2024-02-29", utc(2024, 2, 29, 0, 0, 0, 0)},
		{"date first year", pgtype.DateOID, "0001-01-01", utc(1, 1, 1, 0, 0, 0, 0)},
		{"date five-digit year", pgtype.DateOID, "10000-12-31", utc(10000, 12, 31, 0, 0, 0, 0)},
		{"date on the spring-forward day is not shifted", pgtype.DateOID, "2024-03-31", utc(2024, 3, 31, 0, 0, 0, 0)},
		{"timestamptz whole-hour offset", pgtype.TimestamptzOID, "2024-03-31 01:30:00+01", utc(2024, 3, 31, 0, 30, 0, 0)},
		{"timestamptz half-hour offset", pgtype.TimestamptzOID, "2024-06-01 12:00:00+05:30", utc(2024, 6, 1, 6, 30, 0, 0)},
		{"timestamptz negative offset with seconds", pgtype.TimestamptzOID, "1847-11-30 23:58:45-00:01:15", utc(1847, 12, 1, 0, 0, 0, 0)},
		{"timestamptz microseconds", pgtype.TimestamptzOID, "2024-01-01 00:00:00.123456+00", utc(2024, 1, 1, 0, 0, 0, 123456000)},
		{"timestamptz one fractional digit", pgtype.TimestamptzOID, "2024-01-01 00:00:00.5-01", utc(2024, 1, 1, 1, 0, 0, 500000000)},
		{"timestamp in winter", pgtype.TimestampOID, "2024-01-15 09:30:00", utc(2024, 1, 15, 9, 30, 0, 0)},
		{"timestamp in summer", pgtype.TimestampOID, "2024-07-01 12:00:00.25", utc(2024, 7, 1, 11, 0, 0, 250000000)},
		{"bytea", pgtype.ByteaOID, `\x00ff10`, []byte{0, 0xff, 0x10}},
		{"bytea empty", pgtype.ByteaOID, `\x`, []byte{}},
		{"unknown type kept as text", 1186, "1 day 02:00:00", "1 day 02:00:00"},
		{"enum kept as text", 90000, "ACTIVE", "ACTIVE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeText(tt.oid, -1, []byte(tt.text), loc)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			if tm, ok := got.(time.Time); ok {
				require.Equal(t, time.UTC, tm.Location(), "times are returned in UTC")
			}
		})
	}
}

// TestDecodeTextLondonTransitions reads `timestamp without time zone`
// values around the 2024 British Summer Time transitions: clocks went
// forward at 01:00 UTC on 31 March (01:00–01:59 local does not exist) and
// back at 01:00 UTC on 27 October (01:00–01:59 local happens twice).
func TestDecodeTextLondonTransitions(t *testing.T) {
	t.Parallel()
	loc := london(t)
	tests := []struct {
		name string
		wall string
		want time.Time
	}{
		{"last second of GMT before spring forward", "2024-03-31 00:59:59", utc(2024, 3, 31, 0, 59, 59, 0)},
		{"nonexistent 01:00 normalised to 02:00 BST", "2024-03-31 01:00:00", utc(2024, 3, 31, 1, 0, 0, 0)},
		{"nonexistent 01:30 normalised to 02:30 BST", "2024-03-31 01:30:00", utc(2024, 3, 31, 1, 30, 0, 0)},
		{"first BST wall clock", "2024-03-31 02:00:00", utc(2024, 3, 31, 1, 0, 0, 0)},
		{"after spring forward", "2024-03-31 03:00:00", utc(2024, 3, 31, 2, 0, 0, 0)},
		{"last second before the repeated hour", "2024-10-27 00:59:59", utc(2024, 10, 26, 23, 59, 59, 0)},
		{"ambiguous 01:00 takes BST", "2024-10-27 01:00:00", utc(2024, 10, 27, 0, 0, 0, 0)},
		{"ambiguous 01:30 takes BST, the earlier instant", "2024-10-27 01:30:00", utc(2024, 10, 27, 0, 30, 0, 0)},
		{"ambiguous last microsecond takes BST", "2024-10-27 01:59:59.999999", utc(2024, 10, 27, 0, 59, 59, 999999000)},
		{"02:00 after fall back is GMT only", "2024-10-27 02:00:00", utc(2024, 10, 27, 2, 0, 0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeText(pgtype.TimestampOID, -1, []byte(tt.wall), loc)
			require.NoError(t, err)
			require.Equal(t, tt.want, got, "got %v", got)
		})
	}

	t.Run("nil location is UTC", func(t *testing.T) {
		t.Parallel()
		got, err := DecodeText(pgtype.TimestampOID, -1, []byte("2024-10-27 01:30:00"), nil)
		require.NoError(t, err)
		require.Equal(t, utc(2024, 10, 27, 1, 30, 0, 0), got)
	})
}

func TestDecodeTextErrors(t *testing.T) {
	t.Parallel()
	loc := london(t)
	tests := []struct {
		name   string
		oid    uint32
		text   string
		reason string
	}{
		{"bool word", pgtype.BoolOID, "true", reasonBool},
		{"bool empty", pgtype.BoolOID, "", reasonBool},
		{"int2 overflow", pgtype.Int2OID, "32768", reasonInt},
		{"int4 overflow", pgtype.Int4OID, "2147483648", reasonInt},
		{"int4 letters", pgtype.Int4OID, "Smith", reasonInt},
		{"int8 decimal", pgtype.Int8OID, "1.5", reasonInt},
		{"oid negative", pgtype.OIDOID, "-1", reasonInt},
		{"float word", pgtype.Float8OID, "Jones", reasonFloat},
		{"numeric two points", pgtype.NumericOID, "1.2.3", reasonNumeric},
		{"numeric no digits", pgtype.NumericOID, "-.", reasonNumeric},
		{"numeric exponent", pgtype.NumericOID, "1e5", reasonNumeric},
		{"uuid short", pgtype.UUIDOID, "0190f3c1-7f5a", reasonUUID},
		{"bytea escape format", pgtype.ByteaOID, `Private\000data`, reasonBytea},
		{"bytea odd digits", pgtype.ByteaOID, `\x0ff`, reasonBytea},
		{"bytea bad digit", pgtype.ByteaOID, `\xSecret`, reasonBytea},
		{"date infinity", pgtype.DateOID, "infinity", reasonInfinite},
		{"date minus infinity", pgtype.DateOID, "-infinity", reasonInfinite},
		{"date BC", pgtype.DateOID, "0044-03-15 BC", reasonBC},
		{"date 30 February", pgtype.DateOID, "2024-02-30", reasonDate},
		{"date 29 February of a common year", pgtype.DateOID, "2023-02-29", reasonDate},
		{"date month 13", pgtype.DateOID, "2024-13-01", reasonDate},
		{"date year zero", pgtype.DateOID, "0000-01-01", reasonDate},
		{"date DMY style", pgtype.DateOID, "31/03/2024", reasonDate},
		{"date trailing text", pgtype.DateOID, "2024-03-31x", reasonDate},
		{"timestamp infinity", pgtype.TimestampOID, "infinity", reasonInfinite},
		{"timestamp BC", pgtype.TimestampOID, "0044-03-15 12:00:00 BC", reasonBC},
		{"timestamp hour 24", pgtype.TimestampOID, "2024-03-31 24:00:00", reasonTimestamp},
		{"timestamp minute 60", pgtype.TimestampOID, "2024-03-31 12:60:00", reasonTimestamp},
		{"timestamp seven fractional digits", pgtype.TimestampOID, "2024-03-31 12:00:00.1234567", reasonTimestamp},
		{"timestamp empty fraction", pgtype.TimestampOID, "2024-03-31 12:00:00.", reasonTimestamp},
		{"timestamp with an offset", pgtype.TimestampOID, "2024-03-31 12:00:00+01", reasonTimestamp},
		{"timestamp Postgres style", pgtype.TimestampOID, "Sun Mar 31 12:00:00 2024", reasonTimestamp},
		{"timestamp no seconds", pgtype.TimestampOID, "2024-03-31 12:00", reasonTimestamp},
		{"timestamptz no offset", pgtype.TimestamptzOID, "2024-03-31 12:00:00", reasonTimestamptz},
		{"timestamptz offset 16 hours", pgtype.TimestamptzOID, "2024-03-31 12:00:00+16", reasonTimestamptz},
		{"timestamptz offset one digit", pgtype.TimestamptzOID, "2024-03-31 12:00:00+1", reasonTimestamptz},
		{"timestamptz zone name", pgtype.TimestamptzOID, "2024-03-31 12:00:00 BST", reasonTimestamptz},
		{"timestamptz infinity", pgtype.TimestamptzOID, "-infinity", reasonInfinite},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeText(tt.oid, -1, []byte(tt.text), loc)
			require.Error(t, err)
			require.Nil(t, got)
			var ve *ValueError
			require.True(t, errors.As(err, &ve), "error %T is not a *ValueError", err)
			require.Equal(t, tt.oid, ve.OID)
			require.Equal(t, tt.reason, ve.Reason)
			require.Contains(t, err.Error(), typeName(tt.oid))
			if len(tt.text) > 3 {
				require.NotContains(t, err.Error(), tt.text, "errors must not quote values")
			}
		})
	}
}
