package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// secret is the alert text of every test record: no error may quote it.
const secret = "SECRET-COMMENT-TEXT"

var testCodes = NewCodeTable(
	Code{ID: 1, Code: "XA", Type: "X", Active: true},
	Code{ID: 2, Code: "HA", Type: "H", Active: true},
	Code{ID: 3, Code: "XOLD", Type: "X", Active: false},
)

func london(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/London")
	require.NoError(t, err, "loading Europe/London: install tzdata (apt-get install tzdata)")
	return loc
}

func newRules(t testing.TB) *Rules {
	t.Helper()
	r, err := New(testCodes, london(t))
	require.NoError(t, err)
	return r
}

func ptr[T any](v T) *T { return &v }

// at returns the instant of a Europe/London wall-clock time.
func at(t testing.TB, y int, m time.Month, d, hh, mm int) time.Time {
	return time.Date(y, m, d, hh, mm, 0, 0, london(t)).UTC()
}

// wantErr checks that err is an *Error of reason that quotes no alert text.
func wantErr(t *testing.T, err error, reason Reason) {
	t.Helper()
	require.Error(t, err)
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, reason, e.Reason, "error: %v", err)
	require.Equal(t, StageTransform, e.Stage)
	require.ErrorIs(t, err, &Error{Reason: reason})
	require.False(t, strings.Contains(err.Error(), secret), "error quotes alert text: %v", err)
	require.False(t, strings.Contains(err.Error(), "AUTH-PERSON"), "error quotes alert text: %v", err)
}
