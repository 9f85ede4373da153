// Package crashtest kills a real process at named failure points
// (internal/failpoint) in crash tests.
package crashtest

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/alertsync/alertsync/internal/failpoint"
	"github.com/alertsync/alertsync/internal/testenv/proctest"
)

// KillAtPoints starts the process again and again (start with the value of
// failpoint.Env to arm and the run number), each time with one failure
// point armed at a random hit (1st to 6th), the point with fewest kills
// first, until each of points has killed it perPoint times. It fails the
// test when a run ends otherwise than by SIGKILL, does not reach its point
// in 90 s, or when more reports that the work ran out first. It returns the
// kills by point and how long they took.
func KillAtPoints(t *testing.T, points []string, perPoint int, start func(armed string, run int) *proctest.Proc, more func() bool) (map[string]int, time.Duration) {
	t.Helper()
	kills := map[string]int{}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11)) //nolint:gosec // test timing
	began := time.Now()
	for run := 1; ; run++ {
		point := points[0]
		for _, p := range points {
			if kills[p] < kills[point] {
				point = p
			}
		}
		if kills[point] >= perPoint {
			return kills, time.Since(began)
		}
		if !more() {
			t.Fatalf("the work ran out after kills %v: make the workload larger", kills)
		}
		armed := fmt.Sprintf("%s=%d", point, 1+rng.IntN(6))
		p := start(armed, run)
		select {
		case <-p.Done():
		case <-time.After(90 * time.Second):
			t.Fatalf("run %d (%s=%s) did not reach its failure point in 90s\n%s", run, failpoint.Env, armed, p.LogTail())
		}
		err := p.Wait()
		if err == nil || err.Error() != "signal: killed" {
			t.Fatalf("run %d (%s) ended with %v, not by SIGKILL\n%s", run, armed, err, p.LogTail())
		}
		kills[point]++
	}
}

// Points are the failure points of the applies.
var Points = []string{"apply.before_commit", "apply.after_commit", "apply.after_kafka_commit"}
