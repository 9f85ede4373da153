package cli

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCaptureSources: capture wants a known source, and capture nomis
// refuses, before connecting anywhere, a configuration it cannot use.
func TestCaptureSources(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		args  []string
		usage bool
		want  string
	}{
		{"no source", []string{"capture"}, true, "want a source: dps or nomis"},
		{"unknown source", []string{"capture", "oracle"}, true, `unknown source "oracle" (want dps or nomis)`},
		{"nomis on oracle with a PostgreSQL DSN", []string{"capture", "nomis", "--nomis.dialect=oracle"}, false, "nomis.dsn: parsing Oracle DSN \"postgres://alertsync@localhost:5433/nomis?sslmode=prefer\": a PostgreSQL URL"},
		{"nomis with a bad batch size", []string{"capture", "nomis", "--capture.batch_size=0"}, false, "capture.batch_size: must be between 1 and 100000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := run(t, tt.args...)
			require.ErrorContains(t, err, tt.want)
			var ue *UsageError
			require.Equal(t, tt.usage, errors.As(err, &ue))
		})
	}
}
