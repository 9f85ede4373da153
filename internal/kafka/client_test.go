package kafka

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
	"github.com/alertsync/alertsync/internal/testenv/metrictest"
	"github.com/alertsync/alertsync/internal/testenv/syncbuf"
)

// metricValues sums the samples of each metric family in reg by name.
func metricValues(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				out[mf.GetName()] += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[mf.GetName()] += m.GetGauge().GetValue()
			default:
				out[mf.GetName()] += 0
			}
		}
	}
	return out
}

// requests returns alertsync_kafka_requests_total of one client and API.
func requests(t *testing.T, reg *prometheus.Registry, client, api string) float64 {
	t.Helper()
	return metrictest.Value(t, reg, "alertsync_kafka_requests_total", map[string]string{"client_id": client, "request": api})
}

func TestNewClient(t *testing.T) {
	t.Logf("kafka: %s", kafkatest.Kind())
	brokers := kafkatest.Brokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := Config{Brokers: brokers, ClientID: "alertsync-test"}
	reg := prometheus.NewRegistry()
	logs := &syncbuf.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	topic := kafkatest.Topic(t, "client")
	cl, err := NewClient(cfg, logger, reg, kgo.DefaultProduceTopic(topic))
	require.NoError(t, err)
	defer cl.Close()
	require.NoError(t, EnsureTopics(ctx, kadm.NewClient(cl), TopicSpec{Name: topic, Partitions: 1, ReplicationFactor: 1}))

	t.Run("producer defaults", func(t *testing.T) {
		require.Equal(t, kgo.AllISRAcks(), cl.OptValue(kgo.RequiredAcks))
		require.Equal(t, false, cl.OptValue(kgo.DisableIdempotentWrite))
		require.Equal(t, "alertsync-test", cl.OptValue(kgo.ClientID))
		// Not franz-go's 5s: a produce retried for CONCURRENT_TRANSACTIONS
		// waits for the next metadata request.
		require.Equal(t, 250*time.Millisecond, cl.OptValue(kgo.MetadataMinAge))
		require.NoError(t, cl.ProduceSync(ctx, kgo.StringRecord("v")).FirstErr())
		set := cfg
		set.MetadataMinAge = time.Second
		c, err := NewClient(set, nil, nil, kgo.ClientID("alertsync-test-min-age"))
		require.NoError(t, err)
		defer c.Close()
		require.Equal(t, time.Second, c.OptValue(kgo.MetadataMinAge))
		// Not franz-go's 5s: a partition assigned while a fetch waits on
		// caught-up ones waits for it.
		require.Equal(t, 500*time.Millisecond, cl.OptValue(kgo.FetchMaxWait))
		set.FetchMaxWait = 2 * time.Second
		c2, err := NewClient(set, nil, nil, kgo.ClientID("alertsync-test-fetch-wait"))
		require.NoError(t, err)
		defer c2.Close()
		require.Equal(t, 2*time.Second, c2.OptValue(kgo.FetchMaxWait))
	})

	t.Run("metrics on the given registry", func(t *testing.T) {
		// kprom counts a written batch from a hook that may run just after
		// ProduceSync has returned.
		var got map[string]float64
		require.Eventually(t, func() bool {
			got = metricValues(t, reg)
			return got["alertsync_produce_bytes_total"] > 0
		}, 10*time.Second, 10*time.Millisecond, "produce bytes never counted: %v", got)
		require.Contains(t, got, "alertsync_connects_total")
		// Requests by API, labelled with the client id.
		require.Positive(t, requests(t, reg, "alertsync-test", "Produce"))
		require.Positive(t, requests(t, reg, "alertsync-test", "Metadata"))
		require.Zero(t, requests(t, reg, "alertsync-test", "EndTxn"))
	})

	t.Run("logs through the given logger", func(t *testing.T) {
		require.Contains(t, logs.String(), "client_id=alertsync-test")
	})

	t.Run("clashing client id is an error, not a panic", func(t *testing.T) {
		_, err := NewClient(cfg, logger, reg)
		require.ErrorContains(t, err, `registering metrics of Kafka client "alertsync-test"`)
		var are prometheus.AlreadyRegisteredError
		require.True(t, errors.As(err, &are), "want AlreadyRegisteredError, got %v", err)
		// The failed client must not have removed the first client's metrics.
		require.Contains(t, metricValues(t, reg), "alertsync_produce_bytes_total")

		other, err := NewClient(cfg, logger, reg, kgo.ClientID("alertsync-test-2"))
		require.NoError(t, err)
		other.Close()
	})

	t.Run("closing unregisters", func(t *testing.T) {
		cl.Close()
		require.NotContains(t, metricValues(t, reg), "alertsync_produce_bytes_total")
		require.NotContains(t, metricValues(t, reg), "alertsync_kafka_requests_total")
	})

	t.Run("nil registerer", func(t *testing.T) {
		c, err := NewClient(cfg, nil, nil)
		require.NoError(t, err)
		c.Close()
	})
}

func TestNewClientRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate"), 0o600))
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"invalid", Config{Brokers: []string{"k:9092"}, SASL: SASL{Mechanism: "X"}}, `kafka.sasl.mechanism: unknown value "X"`},
		{"negative metadata min age", Config{Brokers: []string{"k:9092"}, MetadataMinAge: -time.Second}, `kafka.metadata_min_age: must be between 0 and 1m`},
		{"fetch max wait too long", Config{Brokers: []string{"k:9092"}, FetchMaxWait: 2 * time.Minute}, `kafka.fetch_max_wait: must be between 0 and 1m`},
		{"ca file without certificate", Config{Brokers: []string{"k:9092"}, TLS: TLS{Enabled: true, CAFile: notPEM}},
			"kafka.tls.ca_file: no PEM certificate in " + notPEM},
		{"unreadable key pair", Config{Brokers: []string{"k:9092"}, TLS: TLS{Enabled: true, CertFile: notPEM, KeyFile: notPEM}},
			"kafka.tls.cert_file: loading client certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewClient(tc.cfg, nil, nil)
			require.ErrorContains(t, err, tc.want)
			var ke *config.KeyError
			require.True(t, errors.As(err, &ke), "want a *config.KeyError, got %T", err)
		})
	}
}
