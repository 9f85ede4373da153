package transform

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// lagRefresh is how often a transformer lists its source topics' last
// stable offsets for the lag of the partitions it owns.
const lagRefresh = 5 * time.Second

// lagTracker keeps alertsync_transform_lag_records: per partition this
// replica owns and has fetched from, the last stable offset minus the
// offset after the last record fetched (transaction markers included, so
// that a caught-up partition is 0). Fetches update both; lagRefresh
// updates the last stable offsets too, since a transformer that is stuck
// (a transaction waiting for reference data, a broker refusing it) fetches
// nothing that would show its lag growing. A partition revoked or lost
// loses its series: the replica that owns it now reports it.
type lagTracker struct {
	gauge *prometheus.GaugeVec
	mu    sync.Mutex
	parts map[string]map[int32]*partitionLag
}

type partitionLag struct {
	next   int64 // offset after the last record fetched
	stable int64 // last stable offset last seen
}

func newLagTracker(g *prometheus.GaugeVec) *lagTracker {
	return &lagTracker{gauge: g, parts: map[string]map[int32]*partitionLag{}}
}

// fetched updates the partitions of fs that brought records (markers
// included).
func (l *lagTracker) fetched(fs kgo.Fetches) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if p.Err != nil || len(p.Records) == 0 {
			return
		}
		if l.parts[p.Topic] == nil {
			l.parts[p.Topic] = map[int32]*partitionLag{}
		}
		pl := l.parts[p.Topic][p.Partition]
		if pl == nil {
			pl = &partitionLag{}
			l.parts[p.Topic][p.Partition] = pl
		}
		pl.next = p.Records[len(p.Records)-1].Offset + 1
		pl.stable = max(pl.stable, p.LastStableOffset)
		l.set(p.Topic, p.Partition, pl)
	})
}

// listed raises the last stable offsets of the partitions tracked.
func (l *lagTracker) listed(offsets kadm.ListedOffsets) {
	l.mu.Lock()
	defer l.mu.Unlock()
	offsets.Each(func(o kadm.ListedOffset) {
		pl := l.parts[o.Topic][o.Partition]
		if o.Err != nil || pl == nil || o.Offset <= pl.stable {
			return
		}
		pl.stable = o.Offset
		l.set(o.Topic, o.Partition, pl)
	})
}

func (l *lagTracker) set(topic string, part int32, pl *partitionLag) {
	l.gauge.WithLabelValues(topic, strconv.Itoa(int(part))).Set(float64(max(0, pl.stable-pl.next)))
}

// forget drops the partitions of m (revoked or lost) and their series.
func (l *lagTracker) forget(m map[string][]int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for topic, parts := range m {
		for _, p := range parts {
			delete(l.parts[topic], p)
			l.gauge.DeleteLabelValues(topic, strconv.Itoa(int(p)))
		}
	}
}

// forgetAll drops every partition and its series.
func (l *lagTracker) forgetAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for topic, parts := range l.parts {
		for p := range parts {
			l.gauge.DeleteLabelValues(topic, strconv.Itoa(int(p)))
		}
	}
	l.parts = map[string]map[int32]*partitionLag{}
}

// refresh lists the last stable offsets of topics every lagRefresh until
// ctx ends.
func (l *lagTracker) refresh(ctx context.Context, adm *kadm.Client, topics []string, log *slog.Logger) {
	t := time.NewTicker(lagRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		offsets, err := adm.ListCommittedOffsets(ctx, topics...)
		if err != nil {
			log.Debug("listing last stable offsets (for the lag)", "err", err)
			continue
		}
		l.listed(offsets)
	}
}
