package nomis

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAlertContextsPlanOnFreshMapping: the alert-context lookup of a batch
// reads the mapping rows of its keys, not the whole mapping, however large
// it has grown since it was last analyzed (here never: a new install filling
// up faster than autovacuum's analyze). With the deleted filter in the join
// the planner misjudged the mapping and read all of it for every batch
// (here 17,143 of 20,000 rows; in the end-to-end benchmark a nested loop
// over it per journal row, 100-300 ms per batch).
func TestAlertContextsPlanOnFreshMapping(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.fixture(t)
	const mappings, keys = 20_000, 50
	h.db.Exec(t, `INSERT INTO alertsync.alertsync_alert_mapping (dps_alert_id, offender_book_id, alert_seq, offender_no, mapping_type, deleted_at)
		SELECT gen_random_uuid(), 1000 + i / 100, i % 100, 'A1234BC', 'DPS_CREATED', CASE WHEN i % 7 = 0 THEN now() END
		  FROM generate_series(1, $1::int) AS i`, mappings)
	books := make([]int64, keys)
	seqs := make([]int32, keys)
	for i := range keys {
		books[i], seqs[i] = int64(1000+i*3), int32(i%100) //nolint:gosec // small
	}
	var plan string
	require.NoError(t, h.db.Pool.QueryRow(context.Background(), "EXPLAIN (ANALYZE, FORMAT JSON) "+pgAlertContexts, books, seqs).Scan(&plan))
	var nodes []struct{ Plan map[string]any }
	require.NoError(t, json.Unmarshal([]byte(plan), &nodes))
	require.Len(t, nodes, 1)
	// Rows read from the mapping and rows thrown away by join filters,
	// over every node and loop of the plan.
	var scanned, removed float64
	var walk func(n map[string]any)
	walk = func(n map[string]any) {
		loops, _ := n["Actual Loops"].(float64)
		if rel, _ := n["Relation Name"].(string); rel == "alertsync_alert_mapping" {
			rows, _ := n["Actual Rows"].(float64)
			scanned += rows * loops
		}
		if r, ok := n["Rows Removed by Join Filter"].(float64); ok {
			removed += r * loops
		}
		if kids, ok := n["Plans"].([]any); ok {
			for _, k := range kids {
				walk(k.(map[string]any))
			}
		}
	}
	walk(nodes[0].Plan)
	t.Logf("mapping rows read %.0f, rows removed by join filters %.0f (%d mappings, %d keys)", scanned, removed, mappings, keys)
	require.LessOrEqual(t, removed, float64(10*keys), "the lookup filters rows by the thousand: plan %s", plan)
	require.LessOrEqual(t, scanned, float64(10*keys), "the lookup reads the mapping beyond the batch's keys: plan %s", plan)
}
