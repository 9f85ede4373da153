package metricsdoc

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const root = "../.."

func catalog(t *testing.T) []Metric {
	t.Helper()
	c, err := Catalog()
	require.NoError(t, err)
	return c
}

// TestCatalog: each component's families, with their types and labels, and
// which component serves what.
func TestCatalog(t *testing.T) {
	t.Parallel()
	c := catalog(t)
	get := func(name string) Metric {
		t.Helper()
		m, err := Lookup(c, name)
		require.NoError(t, err)
		return m
	}
	m := get("alertsync_apply_dps_commands_total")
	require.Equal(t, "counter", m.Type)
	require.Equal(t, []string{"outcome", "reason"}, m.Labels)
	require.Equal(t, []string{"apply-dps"}, m.Components)

	m = get("alertsync_component_ready")
	require.Equal(t, "gauge", m.Type)
	require.Equal(t, Components, m.Components, "every component serves its readiness")

	m = get("alertsync_kafka_requests_total")
	require.Equal(t, []string{"client_id", "request"}, m.Labels)
	require.NotContains(t, m.Components, "reconcile", "reconcile has no Kafka client")
	require.Contains(t, m.Components, "transform")

	require.Equal(t, []string{"apply-nomis"}, get("alertsync_apply_nomis_sweep_last_success_timestamp_seconds").Components)
	require.Equal(t, []string{"apply-nomis"}, get("alertsync_apply_nomis_committed_batches_total").Components)
	require.Equal(t, []string{"reconcile"}, get("alertsync_reconcile_differences").Components)
	require.Equal(t, "histogram", get("alertsync_transform_freshness_seconds").Type)
	require.Contains(t, get("process_cpu_seconds_total").Components, "capture-dps", "the process collector is in every registry")

	// A histogram's series.
	b := get("alertsync_apply_nomis_freshness_seconds_bucket")
	require.Equal(t, "alertsync_apply_nomis_freshness_seconds", b.Name)
	require.Equal(t, []string{"le"}, b.Labels)
	require.Empty(t, get("alertsync_apply_nomis_freshness_seconds_count").Labels)
	for _, bad := range []string{"alertsync_apply_dps_commands_total_bucket", "alertsync_no_such_metric", "alertsync_capture_dps_lag_seconds_sum"} {
		_, err := Lookup(c, bad)
		require.ErrorIs(t, err, ErrUnknown, bad)
	}
	require.True(t, slices.IsSortedFunc(c, func(a, b Metric) int { return cmpString(a.Name, b.Name) }))
}

func line(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return "<end of file>"
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestReferenceCurrent: docs/metrics.md is what `make docs` generates now.
func TestReferenceCurrent(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	require.NoError(t, Markdown(&b, catalog(t)))
	have, err := os.ReadFile(filepath.Join(root, "docs/metrics.md"))
	require.NoError(t, err)
	want, got := strings.Split(b.String(), "\n"), strings.Split(string(have), "\n")
	for i := range max(len(want), len(got)) {
		w, g := line(want, i), line(got, i)
		require.Equal(t, w, g, "docs/metrics.md is stale at line %d: run make docs", i+1)
	}
	require.Contains(t, b.String(), "`alertsync_transform_lag_records` | gauge | `partition`, `topic` |")
}
