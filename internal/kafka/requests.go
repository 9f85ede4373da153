package kafka

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// requestCounter counts the requests a client sends, by Kafka API
// (alertsync_kafka_requests_total{client_id, request}). A broker's CPU goes
// mostly on the number of requests, not their size; this is how to see
// which client and which kind of request a broker is busy with. kprom's
// metrics count bytes, batches and records, not requests.
type requestCounter struct {
	reg   prometheus.Registerer
	count *prometheus.CounterVec
	byKey [kmsg.MaxKey + 1]prometheus.Counter // by API key
}

var (
	_ kgo.HookNewClient    = (*requestCounter)(nil)
	_ kgo.HookBrokerWrite  = (*requestCounter)(nil)
	_ kgo.HookClientClosed = (*requestCounter)(nil)
)

func (r *requestCounter) OnNewClient(cl *kgo.Client) {
	id, _ := cl.OptValue(kgo.ClientID).(string)
	r.count = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace:   MetricsNamespace,
		Name:        "kafka_requests_total",
		Help:        "Requests the Kafka client sent, by API (Produce, Fetch, EndTxn, ...), failed writes included.",
		ConstLabels: prometheus.Labels{"client_id": id},
	}, []string{"request"})
	_ = r.reg.Register(r.count) // a clash is reported by NewClient through safeRegisterer
	for key := range r.byKey {
		if name := kmsg.NameForKey(int16(key)); name != "Unknown" && name != "" { //nolint:gosec // key ≤ kmsg.MaxKey
			r.byKey[key] = r.count.WithLabelValues(name)
		}
	}
}

// OnBrokerWrite is called by the client for every request written (it
// runs once per request, on the connection's goroutine, so it stays cheap).
func (r *requestCounter) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, _ error) {
	if key >= 0 && int(key) < len(r.byKey) && r.byKey[key] != nil {
		r.byKey[key].Inc()
	}
}

func (r *requestCounter) OnClientClosed(*kgo.Client) {
	if r.count != nil {
		r.reg.Unregister(r.count)
	}
}
