package rules

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func TestTruncateUTF8(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		n        int
		want     string
	}{
		{name: "fits unchanged", in: "abc", n: 3, want: "abc"},
		{name: "ascii cut", in: "abcdef", n: 4, want: "abcd"},
		{name: "two-byte rune not split", in: "aé", n: 2, want: "a"},
		{name: "four-byte rune not split", in: "x🙂y", n: 4, want: "x"},
		{name: "rune ending on the limit kept", in: "x🙂y", n: 5, want: "x🙂"},
		{name: "empty", in: "", n: 0, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := TruncateUTF8(tc.in, tc.n)
			require.Equal(t, tc.want, got)
			require.True(t, utf8.ValidString(got))
		})
	}
}

func TestShortenUser(t *testing.T) {
	t.Parallel()
	long1 := "firstname.lastname@justice.gov.uk-1"
	long2 := "firstname.lastname@justice.gov.uk-2"
	tests := []struct {
		name, in string
		check    func(*testing.T, string)
	}{
		{name: "user of 32 bytes kept", in: strings.Repeat("U", 32), check: func(t *testing.T, s string) { require.Equal(t, strings.Repeat("U", 32), s) }},
		{name: "short user kept", in: "DPS.USER", check: func(t *testing.T, s string) { require.Equal(t, "DPS.USER", s) }},
		{name: "long user cut to 23 bytes, tilde and 8 hex digits", in: long1, check: func(t *testing.T, s string) {
			require.Len(t, s, 32)
			require.Equal(t, long1[:23]+"~", s[:24])
			require.Regexp(t, `^[0-9a-f]{8}$`, s[24:])
		}},
		{name: "long users with one prefix differ", in: long2, check: func(t *testing.T, s string) {
			require.NotEqual(t, ShortenUser(long1), s)
			require.Equal(t, s, ShortenUser(long2), "deterministic")
		}},
		{name: "multibyte long user cut on a rune boundary", in: strings.Repeat("é", 30), check: func(t *testing.T, s string) {
			require.True(t, utf8.ValidString(s))
			require.LessOrEqual(t, len(s), 32)
			require.True(t, strings.HasPrefix(s, strings.Repeat("é", 11)+"~"))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.check(t, ShortenUser(tc.in))
		})
	}
}

func TestCommandID(t *testing.T) {
	t.Parallel()
	base := CommandID(SideNOMIS, Position{Commit: 1, Change: 2}, KindUpsert, "1001/3")
	require.Equal(t, uuid.Version(5), uuid.MustParse(base).Version())
	require.Equal(t, base, CommandID(SideNOMIS, Position{Commit: 1, Change: 2}, KindUpsert, "1001/3"))
	tests := []struct {
		name string
		id   string
	}{
		{name: "other side", id: CommandID(SideDPS, Position{Commit: 1, Change: 2}, KindUpsert, "1001/3")},
		{name: "other commit", id: CommandID(SideNOMIS, Position{Commit: 2, Change: 2}, KindUpsert, "1001/3")},
		{name: "other change", id: CommandID(SideNOMIS, Position{Commit: 1, Change: 3}, KindUpsert, "1001/3")},
		{name: "other kind", id: CommandID(SideNOMIS, Position{Commit: 1, Change: 2}, KindDelete, "1001/3")},
		{name: "other key", id: CommandID(SideNOMIS, Position{Commit: 1, Change: 2}, KindUpsert, "1001/4")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.NotEqual(t, base, tc.id)
		})
	}
}

func TestNewRefusesMissingDependencies(t *testing.T) {
	t.Parallel()
	_, err := New(nil, london(t))
	require.Error(t, err)
	_, err = New(testCodes, nil)
	require.Error(t, err)
}

func TestDateOf(t *testing.T) {
	t.Parallel()
	require.Equal(t, Date(0), DateOf(1970, 1, 1))
	require.Equal(t, Date(-1), DateOf(1969, 12, 31))
	require.Equal(t, "2024-07-01", DateOf(2024, 7, 1).String())
	require.Equal(t, DateOf(2024, 7, 1), DateIn(DateOf(2024, 7, 1).Time(), london(t)))
}
