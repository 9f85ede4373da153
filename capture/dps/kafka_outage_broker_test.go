//go:build broker

package dps

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/internal/admin"
	"github.com/alertsync/alertsync/internal/testenv/broker"
	"github.com/alertsync/alertsync/schemas"
)

// TestKafkaOutage kills the (own, real) Kafka broker while the capture
// streams and rows keep being written, then starts it again: the capture
// reports that it waits for Kafka, does not exit, confirms nothing Kafka has
// not acknowledged, and after the restart every row is in the topic.
func TestKafkaOutage(t *testing.T) {
	ctx := context.Background()
	b, err := broker.Start(ctx, broker.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Stop() })

	h := newHarness(t)
	h.brokers = []string{b.Addr()}
	h.cfg.Pipeline.Kafka.Brokers = h.brokers
	r := h.start(t)
	h.waitRunning(t, r)

	ids := func(from, to int) {
		for i := from; i < to; i++ {
			insertAlert(t, h.db, fmt.Sprintf("0190a3f4-0000-7000-8000-%012d", i), "D4567EF", "XA")
		}
	}
	ids(0, 50)
	require.Len(t, h.consume(t, 50, 30*time.Second, h.topic("alert")), 50)
	// The slot confirms on its status interval, not on each acknowledgement:
	// wait until it has confirmed the first rows, so that what the outage
	// holds back is only the rows written during it.
	h.waitCaughtUp(t, 30*time.Second)

	require.NoError(t, b.Kill()) // the broker dies; Restart brings it back on the same port and storage
	ids(50, 100)
	r.waitState(t, admin.Degraded, 60*time.Second)
	require.Contains(t, r.c.comp.Status().Detail, "Kafka")
	time.Sleep(3 * h.cfg.Capture.StatusInterval) // status updates go on during the outage
	during, _ := h.slotLSNs(t)
	select {
	case err := <-r.done:
		t.Fatalf("capture exited during the outage: %v", err)
	default:
	}

	require.NoError(t, b.Restart(ctx))
	r.waitState(t, admin.Running, 120*time.Second)
	recs := h.consume(t, 100, 60*time.Second, h.topic("alert"))
	seen := map[string]bool{}
	firstOutage := int64(math.MaxInt64) // the commit position of the first row written during the outage
	for _, x := range recs {
		id, _ := schemas.Get[string](x.Key, "id")
		seen[id] = true
		if n, _ := strconv.Atoi(id[len(id)-12:]); n >= 50 {
			commit, _ := x.position()
			firstOutage = min(firstOutage, commit)
		}
	}
	require.Len(t, seen, 100, "every row is in the topic after the outage")
	require.Less(t, int64(during), firstOutage,
		"nothing written during the outage was confirmed while Kafka was away (slot at %s, first outage commit at %s)", during, pglogrepl.LSN(firstOutage))
}
