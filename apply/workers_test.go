package apply

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
)

// offsets returns the offsets of recs.
func offsets(recs []*kgo.Record) []int64 {
	out := make([]int64, len(recs))
	for i, r := range recs {
		out[i] = r.Offset
	}
	return out
}

// TestCoalesce: a partition's queued batches go into one transaction, in
// order, up to apply.batch_commands; the batch that would go over comes
// next; the poll's records are never overwritten.
func TestCoalesce(t *testing.T) {
	poll := make([]*kgo.Record, 12)
	for i := range poll {
		poll[i] = &kgo.Record{Offset: int64(i)}
	}
	ws := &workers{r: &Runner{Opts: Options{BatchCommands: 5}}, ctx: context.Background()}
	w := &worker{queue: make(chan []*kgo.Record, partitionQueue), stop: make(chan struct{})}
	// Batches as dispatch makes them: slices of one poll's records.
	w.queue <- poll[1:3]
	w.queue <- poll[3:5]
	w.queue <- poll[5:8]

	first := ws.coalesce(w, poll[0:1])
	require.Equal(t, []int64{0, 1, 2, 3, 4}, offsets(first))
	require.Nil(t, w.carry)
	require.Len(t, w.queue, 1, "a full transaction leaves the rest queued")
	for i, r := range poll {
		require.Equal(t, int64(i), r.Offset, "the poll's records are untouched")
	}

	w.queue <- poll[8:10]
	w.queue <- poll[10:12]
	require.Equal(t, []int64{5, 6, 7, 8, 9}, offsets(ws.coalesce(w, ws.next(w))))

	later := []*kgo.Record{{Offset: 20}, {Offset: 21}, {Offset: 22}, {Offset: 23}}
	w.queue <- later
	require.Equal(t, []int64{10, 11}, offsets(ws.coalesce(w, ws.next(w))), "the next batch would go over")
	require.Equal(t, []int64{20, 21, 22, 23}, offsets(w.carry), "it is carried")
	w.queue <- []*kgo.Record{{Offset: 24}}
	require.Equal(t, []int64{20, 21, 22, 23, 24}, offsets(ws.coalesce(w, ws.next(w))), "the carried batch first, then the queue")
	require.Nil(t, w.carry)

	w.queue <- []*kgo.Record{{Offset: 30}} // from another poll
	require.Equal(t, []int64{0, 30}, offsets(ws.coalesce(w, poll[0:1])))
	require.Equal(t, []int64{0}, offsets(ws.coalesce(w, poll[0:1])), "nothing queued")
	for i, r := range poll {
		require.Equal(t, int64(i), r.Offset, "the poll's records are untouched")
	}

	close(w.stop)
	require.Nil(t, ws.next(w), "stopped")
}

// TestLagKeepsNewestStableOffset: a poll can hand out records kgo fetched
// a while ago, with the last stable offset of then; the lag must not fall
// back to it (a caught-up 0 shown while more is waiting).
func TestLagKeepsNewestStableOffset(t *testing.T) {
	ws := &workers{}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "lag"})
	w := &worker{lag: partitionLag{last: -1, applied: -1}, gauge: g}
	part := func(stable int64, offsets ...int64) kgo.FetchTopicPartition {
		p := kgo.FetchTopicPartition{Topic: "c", FetchPartition: kgo.FetchPartition{Partition: 0, LastStableOffset: stable}}
		for _, o := range offsets {
			p.Records = append(p.Records, &kgo.Record{Offset: o})
		}
		return p
	}
	value := func() float64 {
		var m dto.Metric
		require.NoError(t, g.Write(&m))
		return m.GetGauge().GetValue()
	}
	ws.fetched(w, part(10, 0, 1, 2))
	require.InDelta(t, 10, value(), 0)
	// Newer: the lag loop, or a later fetch, saw 300.
	ws.fetched(w, part(300, 3, 4))
	require.InDelta(t, 300, value(), 0)
	// Records buffered from the first fetch's time, applied: the last
	// stable offset stays 300.
	ws.fetched(w, part(10, 5, 6, 7, 8))
	w.lag.applied = 9
	require.Equal(t, int64(300-9), w.lag.behind())
}
