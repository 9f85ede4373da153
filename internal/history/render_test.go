package history

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWriteTextQuotesUntrustedStrings: a value of a record holding a tab,
// a line break, a terminal escape or bytes that are not UTF-8 is printed
// quoted, so that it neither breaks the columns nor reaches the terminal;
// a printable value (spaces included) is printed as it is.
func TestWriteTextQuotesUntrustedStrings(t *testing.T) {
	t.Parallel()
	code := "H\tA"
	e := ev(KindNOMISChange, 1, "n", 0, ident{prisons: []string{"P"}})
	e.Op = "update"
	e.PrisonNumber = "A1234BC"
	e.Origin = "OIDALERT\x1b]0;owned\x07\n2024-01-01 forged line"
	e.Changes = []Change{{Field: "alert_code", From: &code, To: ptr("XA")}}
	e.image = bothImages
	d := ev(KindDLQ, 2, "q", 0, ident{prisons: []string{"P"}})
	d.Stage, d.Reason, d.AlertKey, d.Original = "apply-dps", "unknown\r\ncode", "nomis:1:\xff", "t/0/1"
	s := Selection{Events: []Event{e, d}, Matched: 2, Alerts: [][]string{{"nomis 1:1", "dps \x1b[2J"}}}
	var b strings.Builder
	require.NoError(t, WriteText(&b, Selector{PrisonNumber: "A1234BC"}, s))
	out := b.String()
	t.Log("\n" + out)
	require.NotContains(t, out, "\x1b")
	require.NotContains(t, out, "\x07")
	require.NotContains(t, out, "\t")
	require.NotContains(t, out, "\r")
	require.NotContains(t, out, "\xff")
	require.Len(t, strings.Split(strings.TrimSuffix(out, "\n"), "\n"), 4, "header, two events, summary: no forged line")
	for _, want := range []string{
		` "OIDALERT\x1b]0;owned\a\n2024-01-01 forged line" `,
		`alert_code "H\tA"→XA`,
		`reason="unknown\r\ncode" alert_key="nomis:1:\xff"`,
		`= "dps \x1b[2J"`,
		" A1234BC ", " update ", "stage=apply-dps",
	} {
		require.Contains(t, out, want)
	}
	require.Equal(t, "a b-c:1/2", shown("a b-c:1/2"))
	require.Equal(t, "Zoë", shown("Zoë"))
}
