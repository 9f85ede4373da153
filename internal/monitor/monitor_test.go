package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/internal/admin"
	"github.com/alertsync/alertsync/internal/metricsdoc"
	"github.com/alertsync/alertsync/internal/testenv/admintest"
)

func TestParseTarget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, name, url, err string
	}{
		{in: "transform=http://10.0.0.5:9464", name: "transform", url: "http://10.0.0.5:9464"},
		{in: "transform=10.0.0.5:9464", name: "transform", url: "http://10.0.0.5:9464"},
		{in: "127.0.0.1:9466", name: "127.0.0.1:9466", url: "http://127.0.0.1:9466"},
		{in: "https://apply.example/", name: "apply.example", url: "https://apply.example"},
		{in: "x=https://h:1/admin/", name: "x", url: "https://h:1/admin"},
		{in: "transform=", err: "no address"},
		{in: "ftp://h:21", err: "want an http or https address"},
		{in: "x=http://", err: "want an http or https address"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseTarget(tc.in)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, Target{Name: tc.name, URL: tc.url}, got)
		})
	}
}

// TestSpecsNameServedMetrics: every metric the monitor shows for a
// component is one that component serves, of the type the monitor reads it
// as (a renamed metric would otherwise show as "-" for good).
func TestSpecsNameServedMetrics(t *testing.T) {
	t.Parallel()
	catalog, err := metricsdoc.Catalog()
	require.NoError(t, err)
	served := func(comp, name, typ string) {
		t.Helper()
		m, err := metricsdoc.Lookup(catalog, name)
		require.NoError(t, err, "%s: %s", comp, name)
		require.Contains(t, m.Components, comp, "%s does not serve %s", comp, name)
		require.Equal(t, typ, m.Type, "%s: %s", comp, name)
	}
	require.ElementsMatch(t, metricsdoc.Components, keys(specs), "a spec per component")
	for comp, sp := range specs {
		for _, c := range append([]string{sp.rate, sp.errors}, sp.dlq...) {
			if c != "" {
				served(comp, c, "counter")
			}
		}
		if sp.lag != "" {
			served(comp, sp.lag, "gauge")
		}
		if sp.freshness != "" {
			served(comp, sp.freshness, "histogram")
		}
		for _, n := range sp.notes {
			served(comp, n.metric, "gauge")
		}
		if sp.reconcileNote {
			for _, g := range []string{"alertsync_reconcile_last_run_timestamp_seconds", "alertsync_reconcile_differences", "alertsync_reconcile_prisoners_checked"} {
				served(comp, g, "gauge")
			}
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// transformLike is an admin server that serves the transformer's metrics
// the monitor reads, with values the test sets.
type transformLike struct {
	srv       *admin.Server
	url       string
	comp      *admin.Component
	records   *prometheus.CounterVec
	lag       *prometheus.GaugeVec
	freshness *prometheus.HistogramVec
	dlq       *prometheus.CounterVec
	errors    *prometheus.CounterVec
	holds     prometheus.Gauge
}

func newTransformLike(t *testing.T) *transformLike {
	t.Helper()
	srv, url := admintest.Start(t)
	f := promauto{srv.Registry()}
	x := &transformLike{srv: srv, url: url, comp: srv.Component("transform"),
		records:   f.counter("alertsync_transform_records_total", "topic", "result"),
		lag:       f.gauge("alertsync_transform_lag_records", "topic", "partition"),
		freshness: f.histogram("alertsync_transform_freshness_seconds", []float64{0.1, 0.5, 1, 5}, "direction"),
		dlq:       f.counter("alertsync_transform_dlq_total", "topic", "error_kind", "reason"),
		errors:    f.counter("alertsync_transform_errors_total", "kind"),
	}
	x.holds = prometheus.NewGauge(prometheus.GaugeOpts{Name: "alertsync_transform_holds_open", Help: "h"})
	srv.Registry().MustRegister(x.holds)
	return x
}

type promauto struct{ reg *prometheus.Registry }

func (p promauto) counter(name string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: "h"}, labels)
	p.reg.MustRegister(c)
	return c
}

func (p promauto) gauge(name string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: "h"}, labels)
	p.reg.MustRegister(g)
	return g
}

func (p promauto) histogram(name string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: "h", Buckets: buckets}, labels)
	p.reg.MustRegister(h)
	return h
}

// TestRowsOverRealAdminServers scrapes real admin servers over HTTP: a
// transformer whose figures move between two scrapes, one that has not
// started a component, an address nothing listens on, and a web server
// that is not alertsync's.
func TestRowsOverRealAdminServers(t *testing.T) {
	t.Parallel()
	x := newTransformLike(t)
	x.comp.Set(admin.Running, "")
	x.records.WithLabelValues("a", "ok").Add(100)
	x.records.WithLabelValues("b", "ok").Add(20)
	x.dlq.WithLabelValues("a", "mapping", "unknown_code").Add(2)
	x.freshness.WithLabelValues("nomis_to_dps").Observe(0.05) // before the first scrape: not in the round

	_, emptyURL := admintest.Start(t)
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := ln.Addr().String()
	require.NoError(t, ln.Close())
	other := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(other.Close)
	// A server that answers 200 to everything, with a page and then with
	// a status list but garbage for metrics.
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("<html>hello</html>")) }))
	t.Cleanup(page.Close)
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/status" {
			_, _ = w.Write([]byte(`[{"name":"transform","state":"running"}]`))
			return
		}
		_, _ = w.Write([]byte("this is { not metrics\n"))
	}))
	t.Cleanup(garbage.Close)
	// A component whose /metrics fails (the Prometheus handler answers
	// 500 on a gather error), and one that names its state with terminal
	// controls.
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/status" {
			_, _ = w.Write([]byte(`[{"name":"apply-dps","state":"running\u001b]0;pwned\u0007\u001b[2J"}]`))
			return
		}
		http.Error(w, "gather failed", http.StatusInternalServerError)
	}))
	t.Cleanup(failing.Close)
	hostile := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/status" {
			_, _ = w.Write([]byte(`[{"name":"apply-dps","state":"running\u001b[2J"}]`))
			return
		}
		_, _ = w.Write([]byte("# TYPE x counter\nx 1\n"))
	}))
	t.Cleanup(hostile.Close)

	targets := []Target{{"transform", x.url}, {"idle", emptyURL}, {"gone", "http://" + closed}, {"web", other.URL}, {"page", page.URL}, {"garbage", garbage.URL}, {"failing", failing.URL}, {"hostile", hostile.URL}}
	cl := &http.Client{}
	first := Scrape(context.Background(), cl, targets, 2*time.Second)
	require.NoError(t, first[0].Err)

	x.records.WithLabelValues("a", "ok").Add(30)
	x.records.WithLabelValues("b", "ok").Add(10)
	x.lag.WithLabelValues("a", "0").Set(4)
	x.lag.WithLabelValues("a", "1").Set(3)
	for range 98 {
		x.freshness.WithLabelValues("nomis_to_dps").Observe(0.2) // (0.1, 0.5]
	}
	x.freshness.WithLabelValues("dps_to_nomis").Observe(3) // (1, 5]
	x.freshness.WithLabelValues("dps_to_nomis").Observe(4)
	x.dlq.WithLabelValues("b", "mapping", "text_too_long").Inc()
	x.errors.WithLabelValues("kafka").Add(5)
	x.holds.Set(2)
	time.Sleep(20 * time.Millisecond)
	second := Scrape(context.Background(), cl, targets, 2*time.Second)

	rows := Rows(targets, first, second)
	require.Len(t, rows, 8)
	tr := rows[0]
	dt := second[0].At.Sub(first[0].At).Seconds()
	require.Equal(t, "transform", tr.Target)
	require.Equal(t, "transform", tr.Component)
	require.Equal(t, "running", tr.State)
	require.True(t, tr.Ready)
	require.InDelta(t, 40/dt, *tr.Rate, 1e-9, "(30+10) records over the interval")
	require.Equal(t, "records", tr.RateOf)
	require.InDelta(t, 7, *tr.Lag, 0, "summed over partitions")
	require.Equal(t, "records", tr.LagUnit)
	// 100 observations: rank 99 lies in (1, 5], which holds the 99th and
	// the 100th: 1 + 4 * (99-98)/(100-98) = 3.
	require.InDelta(t, 3, *tr.FreshnessP99, 1e-9)
	require.InDelta(t, 3, *tr.DLQTotal, 0)
	require.InDelta(t, 1, *tr.DLQNew, 0)
	require.InDelta(t, 5/dt, *tr.ErrorRate, 1e-9)
	require.Equal(t, []string{"holds open 2"}, tr.Notes)
	require.NotNil(t, tr.UptimeSeconds, "process collector")
	require.Positive(t, *tr.RSSBytes)

	require.Equal(t, Row{Target: "idle", State: "starting", Detail: "no component has started yet"}, rows[1])
	require.Equal(t, StateUnreachable, rows[2].State)
	require.False(t, rows[2].Ready)
	require.Contains(t, rows[2].Detail, "connection refused")
	require.Equal(t, StateUnreachable, rows[3].State)
	require.Contains(t, rows[3].Detail, "404")
	require.Contains(t, rows[3].Detail, ErrNotAlertsync.Error())
	for _, r := range rows[4:6] {
		require.Equal(t, StateUnreachable, r.State, r.Target)
		require.ErrorIs(t, second[slices.IndexFunc(targets, func(x Target) bool { return x.Name == r.Target })].Err, ErrNotAlertsync, r.Target)
	}
	require.Contains(t, rows[4].Detail, "/status")
	require.Contains(t, rows[5].Detail, "/metrics")
	require.Equal(t, StateUnreachable, rows[6].State)
	require.Contains(t, rows[6].Detail, "/metrics: 500 Internal Server Error")
	require.NotErrorIs(t, second[6].Err, ErrNotAlertsync, "an alertsync component whose metrics fail is not something else")
	require.Equal(t, "running\x1b[2J", rows[7].State, "as the target said it (JSON escapes it)")
	require.False(t, rows[7].Ready)
	var hostileTable bytes.Buffer
	require.NoError(t, Round{Rows: rows[7:]}.WriteTable(&hostileTable))
	require.NotContains(t, hostileTable.String(), "\x1b", "no terminal control reaches the screen")
	require.Contains(t, hostileTable.String(), `"running\x1b[2J"`)

	// The first round has states and levels, not rates.
	firstRows := Rows(targets, nil, first)
	require.Nil(t, firstRows[0].Rate)
	require.Nil(t, firstRows[0].FreshnessP99)
	require.Nil(t, firstRows[0].DLQNew)
	require.InDelta(t, 2, *firstRows[0].DLQTotal, 0)

	// A degraded component shows what it waits for.
	x.comp.Set(admin.Degraded, "waiting for Kafka: dial tcp 10.0.0.9:9092: i/o timeout")
	third := Scrape(context.Background(), cl, targets, 2*time.Second)
	r := Rows(targets, second, third)[0]
	require.False(t, r.Ready)
	require.Equal(t, "degraded", r.State)
	require.Contains(t, r.Detail, "waiting for Kafka")
	require.NotNil(t, r.Rate)
	require.Zero(t, *r.Rate)
	require.Nil(t, r.FreshnessP99, "nothing observed over the interval")

	var table bytes.Buffer
	require.NoError(t, Round{Rows: append(slices.Clone(rows[:4]), r)}.WriteTable(&table))
	out := table.String()
	t.Log("\n" + out)
	for _, want := range []string{"TARGET", "FRESH p99", "transform", "degraded", "waiting for Kafka", "7 rec", "3 (+1)", "3.0s", "holds open 2", "gone", "unreachable", "connection refused"} {
		require.Contains(t, out, want)
	}
	var js bytes.Buffer
	require.NoError(t, Round{Rows: rows}.WriteJSON(&js))
	var back Round
	require.NoError(t, json.Unmarshal(js.Bytes(), &back))
	require.Equal(t, rows, back.Rows)
}

// TestCounterReset: a component that restarted between two scrapes counts
// from zero, as Prometheus does: whether its counters went down, or grew
// past their old values (a new process_start_time_seconds tells).
func TestCounterReset(t *testing.T) {
	t.Parallel()
	at := time.Unix(1_800_000_000, 0)
	sample := func(at time.Time, started, records float64, fresh []uint64) Sample {
		return Sample{At: at, Statuses: []admin.Status{{Name: "apply-dps", State: admin.Running}},
			Families: map[string]*dto.MetricFamily{
				"process_start_time_seconds":            gaugeFamily(started),
				"alertsync_apply_dps_commands_total":    counterFamily(records),
				"alertsync_apply_dps_freshness_seconds": histogramFamily([]float64{1, 2}, fresh),
			}}
	}
	tg := []Target{{"a", "http://x"}}
	later := at.Add(10 * time.Second)
	started := float64(at.Unix() - 3600)
	for _, tc := range []struct {
		name           string
		startedAgain   float64
		records        float64
		fresh          []uint64
		rate, p99, age float64
	}{
		// 4 observations since the restart, 1 ≤ 1s, 2 in (1,2], 1 above
		// 2s: rank 3.96 lies in +Inf: the highest finite bound.
		{"counters went down", started + 3605, 20, []uint64{1, 3, 4}, 2, 2, 5},
		// More than before the restart: only the new start time tells. 11
		// observations, all ≤ 1s: rank 10.89 of 11 in (0,1].
		{"counters grew past their old values", started + 3605, 600, []uint64{11, 11, 11}, 60, 10.89 / 11, 5},
		{"no restart", started, 600, []uint64{5, 15, 15}, 10, 0.99, 3610}, // 5 observations, all ≤ 1s
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows := Rows(tg, []Sample{sample(at, started, 500, []uint64{0, 10, 10})}, []Sample{sample(later, tc.startedAgain, tc.records, tc.fresh)})
			require.InDelta(t, tc.rate, *rows[0].Rate, 1e-9)
			require.InDelta(t, tc.p99, *rows[0].FreshnessP99, 1e-9)
			require.InDelta(t, tc.age, *rows[0].UptimeSeconds, 1e-6)
			require.Equal(t, "commands", rows[0].RateOf)
			require.Nil(t, rows[0].Lag, "a metric the target does not serve")
		})
	}
}

// TestSharedProcess: a target that serves several components (alertsync
// demo) gives each its row, with its own figures, and the process's uptime
// and memory once.
func TestSharedProcess(t *testing.T) {
	t.Parallel()
	at := time.Unix(1_800_000_000, 0)
	sample := func(at time.Time, records, commands float64) Sample {
		return Sample{At: at, Statuses: []admin.Status{{Name: "apply-dps", State: admin.Running}, {Name: "transform", State: admin.Running}},
			Families: map[string]*dto.MetricFamily{
				"process_resident_memory_bytes":      gaugeFamily(1 << 26),
				"alertsync_transform_records_total":  counterFamily(records),
				"alertsync_apply_dps_commands_total": counterFamily(commands),
			}}
	}
	rows := Rows([]Target{{"demo", "http://x"}}, []Sample{sample(at, 0, 0)}, []Sample{sample(at.Add(2*time.Second), 10, 4)})
	require.Len(t, rows, 2)
	require.Equal(t, "transform", rows[0].Component, "pipeline order")
	require.InDelta(t, 5, *rows[0].Rate, 1e-9)
	require.InDelta(t, 1<<26, *rows[0].RSSBytes, 0)
	require.Equal(t, "apply-dps", rows[1].Component)
	require.InDelta(t, 2, *rows[1].Rate, 1e-9)
	require.Nil(t, rows[1].RSSBytes, "the process's memory once per target")
}

func TestQuantile(t *testing.T) {
	t.Parallel()
	bounds := []float64{0.1, 0.5, 1}
	for _, tc := range []struct {
		name        string
		before, now []uint64 // cumulative, with the +Inf bucket last
		want        float64  // NaN: nil
	}{
		{"nothing observed", []uint64{1, 2, 3, 3}, []uint64{1, 2, 3, 3}, math.NaN()},
		{"all in the first bucket", nil, []uint64{10, 10, 10, 10}, 0.099},
		{"interpolated", []uint64{0, 0, 0, 0}, []uint64{0, 50, 100, 100}, 0.5 + 0.5*(99-50)/50.0},
		{"in +Inf", nil, []uint64{0, 0, 0, 100}, 1},
		{"only the delta counts", []uint64{100, 100, 100, 100}, []uint64{100, 100, 200, 200}, 0.5 + 0.5*0.99},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var prev *dto.MetricFamily
			if tc.before != nil {
				prev = histogramFamily(bounds, tc.before)
			}
			got := quantile(0.99, prev, histogramFamily(bounds, tc.now))
			if math.IsNaN(tc.want) {
				require.Nil(t, got)
				return
			}
			require.NotNil(t, got)
			require.InDelta(t, tc.want, *got, 1e-9)
		})
	}
}

func gaugeFamily(v float64) *dto.MetricFamily {
	return &dto.MetricFamily{Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: &v}}}}
}

func counterFamily(v float64) *dto.MetricFamily {
	return &dto.MetricFamily{Type: dto.MetricType_COUNTER.Enum(), Metric: []*dto.Metric{{Counter: &dto.Counter{Value: &v}}}}
}

// histogramFamily has one series with the given finite bounds; cumulative
// holds one count per bound and then the total (+Inf).
func histogramFamily(bounds []float64, cumulative []uint64) *dto.MetricFamily {
	h := &dto.Histogram{SampleCount: &cumulative[len(cumulative)-1]}
	for i, b := range append(append([]float64(nil), bounds...), math.Inf(1)) {
		h.Bucket = append(h.Bucket, &dto.Bucket{UpperBound: &b, CumulativeCount: &cumulative[i]})
	}
	return &dto.MetricFamily{Type: dto.MetricType_HISTOGRAM.Enum(), Metric: []*dto.Metric{{Histogram: h}}}
}

func TestFormat(t *testing.T) {
	t.Parallel()
	for in, want := range map[float64]string{0: "0s", 0.35: "350ms", 12.34: "12.3s", 250: "4m10s", 7380: "2h03m", 273600: "3d4h"} {
		require.Equal(t, want, FormatDuration(in))
	}
	for in, want := range map[float64]string{512: "512B", 44040192: "42.0MiB", 1.5 * 1024: "1.5KiB"} {
		require.Equal(t, want, formatBytes(in))
	}
	require.Equal(t, `"waiting\x1b[2J"`, quote("waiting\x1b[2J"), "terminal controls from the network are quoted")
	require.Equal(t, "plain text", quote("plain text"))
	require.True(t, strings.HasPrefix(formatRate(0.5), "0.50"))
}
