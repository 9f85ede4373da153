// Package metricsdoc is the reference of the metrics each alertsync
// component serves on /metrics, built from the components' own
// registrations: docs/metrics.md is generated from it, and the checks of
// the Prometheus rules and Grafana dashboard in deploy/ look their metric
// names and labels up in it.
package metricsdoc

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	applydps "github.com/alertsync/alertsync/apply/dps"
	applynomis "github.com/alertsync/alertsync/apply/nomis"
	capturedps "github.com/alertsync/alertsync/capture/dps"
	capturenomis "github.com/alertsync/alertsync/capture/nomis"
	"github.com/alertsync/alertsync/internal/admin"
	"github.com/alertsync/alertsync/internal/kafka"
	"github.com/alertsync/alertsync/internal/reconcile"
	"github.com/alertsync/alertsync/transform"
)

// A Metric is one metric family.
type Metric struct {
	Name       string   `json:"name"`
	Type       string   `json:"type"` // counter, gauge, histogram, summary or untyped
	Help       string   `json:"help"`
	Labels     []string `json:"labels"`     // sorted
	Components []string `json:"components"` // the components that serve it, in Components order
}

// Components are the long-running components, in pipeline order.
var Components = []string{"capture-dps", "capture-nomis", "transform", "apply-dps", "apply-nomis", "reconcile"}

// registrations register each component's own metrics; kafka says whether
// it also has Kafka clients (whose metrics every client registers).
var registrations = map[string]struct {
	register func(prometheus.Registerer)
	kafka    bool
}{
	"capture-dps":   {capturedps.RegisterMetrics, true},
	"capture-nomis": {capturenomis.RegisterMetrics, true},
	"transform":     {transform.RegisterMetrics, true},
	"apply-dps":     {applydps.RegisterMetrics, true},
	"apply-nomis":   {applynomis.RegisterMetrics, true},
	"reconcile":     {func(r prometheus.Registerer) { reconcile.NewMetrics(r) }, false},
}

// Catalog returns every metric family the components serve, sorted by
// name. It builds each component's registry the way the component does
// (the admin server's, the component's own metrics, its Kafka client's)
// without connecting to anything, and gives each labelled family one
// child so that the registry reports its type and labels.
func Catalog() ([]Metric, error) {
	byName := map[string]*Metric{}
	for _, comp := range Components {
		families, err := componentFamilies(comp)
		if err != nil {
			return nil, fmt.Errorf("metrics of %s: %w", comp, err)
		}
		for _, f := range families {
			m := metricOf(f)
			if have, ok := byName[m.Name]; ok {
				if have.Type != m.Type || !slices.Equal(have.Labels, m.Labels) {
					return nil, fmt.Errorf("metric %s is a %s with labels %v in %s but a %s with labels %v in %s",
						m.Name, have.Type, have.Labels, have.Components, m.Type, m.Labels, comp)
				}
				have.Components = append(have.Components, comp)
				continue
			}
			m.Components = []string{comp}
			byName[m.Name] = &m
		}
	}
	out := make([]Metric, 0, len(byName))
	for _, m := range byName {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// componentFamilies gathers the registry of component comp.
func componentFamilies(comp string) ([]*dto.MetricFamily, error) {
	r, ok := registrations[comp]
	if !ok {
		return nil, fmt.Errorf("unknown component %q", comp)
	}
	srv := admin.New("127.0.0.1:0", 0, slog.New(slog.DiscardHandler))
	srv.Component(comp) // its component_ready child
	rec := &recorder{reg: srv.Registry()}
	r.register(rec)
	if r.kafka {
		// A client registers its metrics when it is built and removes them
		// when it closes; it dials nothing until it is used.
		cl, err := kafka.NewClient(kafka.Config{Brokers: []string{"127.0.0.1:9"}, ClientID: "metricsdoc", RetryTimeout: time.Second},
			nil, rec)
		if err != nil {
			return nil, err
		}
		defer cl.Close()
	}
	if err := rec.instantiate(); err != nil {
		return nil, err
	}
	return srv.Registry().Gather()
}

// recorder is a Registerer that remembers what it registered.
type recorder struct {
	reg        prometheus.Registerer
	collectors []prometheus.Collector
}

func (r *recorder) Register(c prometheus.Collector) error {
	if err := r.reg.Register(c); err != nil {
		return err
	}
	r.collectors = append(r.collectors, c)
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

func (r *recorder) Unregister(c prometheus.Collector) bool { return r.reg.Unregister(c) }

// variableLabels reads a descriptor's variable labels from its String
// form, the only place client_golang shows them.
var variableLabels = regexp.MustCompile(`variableLabels: \{([^}]*)\}\}$`)

// instantiate gives every labelled family registered one child, with
// placeholder label values: a vector without children is absent from a
// gather.
func (r *recorder) instantiate() error {
	for _, c := range r.collectors {
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		var descs []*prometheus.Desc
		for d := range ch {
			descs = append(descs, d)
		}
		n := -1 // labels of the collector's family
		for _, d := range descs {
			m := variableLabels.FindStringSubmatch(d.String())
			if m == nil {
				return fmt.Errorf("unexpected descriptor form %s", d)
			}
			labels := 0
			if m[1] != "" {
				labels = len(strings.Split(m[1], ","))
			}
			if n >= 0 && labels != n {
				return fmt.Errorf("collector %T describes families with different labels: teach metricsdoc to give each a child", c)
			}
			n = labels
		}
		n = max(n, 0)
		values := make([]string, n)
		for i := range values {
			values[i] = "x"
		}
		switch v := c.(type) {
		case *prometheus.CounterVec:
			v.WithLabelValues(values...)
		case *prometheus.GaugeVec:
			v.WithLabelValues(values...)
		case *prometheus.HistogramVec:
			v.WithLabelValues(values...)
		case *prometheus.SummaryVec:
			v.WithLabelValues(values...)
		default:
			if n > 0 {
				return fmt.Errorf("a collector of type %T with labels: teach metricsdoc to give it a child", c)
			}
		}
	}
	return nil
}

// metricOf describes a gathered family.
func metricOf(f *dto.MetricFamily) Metric {
	m := Metric{Name: f.GetName(), Help: f.GetHelp(), Type: strings.ToLower(f.GetType().String()), Labels: []string{}}
	if len(f.GetMetric()) > 0 {
		for _, l := range f.GetMetric()[0].GetLabel() {
			m.Labels = append(m.Labels, l.GetName())
		}
		sort.Strings(m.Labels)
	}
	return m
}

// ErrUnknown is returned by Lookup for a name no component serves.
var ErrUnknown = errors.New("no component serves this metric")

// Lookup finds the family of a series name: a family's own name, or a
// histogram's or summary's _bucket, _sum or _count series.
func Lookup(catalog []Metric, series string) (Metric, error) {
	for _, m := range catalog {
		if m.Name == series {
			return m, nil
		}
		if m.Type != "histogram" && m.Type != "summary" {
			continue
		}
		if rest, ok := strings.CutPrefix(series, m.Name); ok && (rest == "_sum" || rest == "_count" || (rest == "_bucket" && m.Type == "histogram")) {
			if rest == "_bucket" {
				m.Labels = append(slices.Clone(m.Labels), "le")
				sort.Strings(m.Labels)
			}
			return m, nil
		}
	}
	return Metric{}, fmt.Errorf("%s: %w", series, ErrUnknown)
}

// Markdown writes the metrics reference: the metrics several components
// share first, then each component's own.
func Markdown(w io.Writer, catalog []Metric) error {
	var b strings.Builder
	b.WriteString("# Metrics reference\n\n")
	b.WriteString("<!-- Generated by `make docs` (alertsync metrics); a test fails when this file is stale. -->\n\n")
	b.WriteString("Every long-running component serves these on `/metrics` of its admin server (`admin.listen`,\n")
	b.WriteString("`127.0.0.1:9464` by default), beside the Go runtime's and the process's own (`go_*`, `process_*`).\n")
	b.WriteString("The Kafka client metrics (franz-go's kprom) carry a `client_id` label, one value per client of a\n")
	b.WriteString("component. Alert rules and a Grafana dashboard built on them are in `deploy/prometheus` and\n")
	b.WriteString("`deploy/grafana` (see docs/operations.md).\n")
	var sections []string
	rows := map[string][]Metric{}
	for _, m := range catalog {
		if !strings.HasPrefix(m.Name, "alertsync_") {
			continue
		}
		title := m.Components[0]
		switch {
		case len(m.Components) == len(Components):
			title = "Every component"
		case len(m.Components) > 1:
			title = "Shared by " + strings.Join(m.Components, ", ")
		}
		if _, ok := rows[title]; !ok {
			sections = append(sections, title)
		}
		rows[title] = append(rows[title], m)
	}
	order := func(title string) int {
		if i := slices.Index(Components, title); i >= 0 {
			return i + 2
		}
		if title == "Every component" {
			return 0
		}
		return 1
	}
	sort.SliceStable(sections, func(i, j int) bool { return order(sections[i]) < order(sections[j]) })
	for _, title := range sections {
		fmt.Fprintf(&b, "\n## %s\n\n| metric | type | labels | description |\n|---|---|---|---|\n", title)
		for _, m := range rows[title] {
			labels := make([]string, len(m.Labels))
			for i, l := range m.Labels {
				labels[i] = "`" + l + "`"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", m.Name, m.Type, strings.Join(labels, ", "), strings.ReplaceAll(m.Help, "|", `\|`))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
