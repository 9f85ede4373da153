package demo

import (
	"html/template"
	"math"
	"net/http"
	"strconv"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/alertsync/alertsync/internal/admin"
)

// counterSpec names the metrics a component's page row is computed from.
type counterSpec struct {
	in, out   []metricSel // summed
	freshness metricSel   // a gauge (seconds), or a histogram whose mean is shown
}

// metricSel selects the samples of one metric family, optionally with one
// label value.
type metricSel struct {
	name, label, value string
}

var pageMetrics = map[string]counterSpec{
	CompCaptureDPS: {
		out:       []metricSel{{name: "alertsync_capture_dps_records_total"}},
		freshness: metricSel{name: "alertsync_capture_dps_lag_seconds"},
	},
	CompCaptureNOMIS: {
		out:       []metricSel{{name: "alertsync_capture_nomis_records_total"}, {name: "alertsync_capture_nomis_initial_load_alerts_total"}},
		freshness: metricSel{name: "alertsync_capture_nomis_lag_seconds"},
	},
	CompTransform: {
		in:        []metricSel{{name: "alertsync_transform_records_total"}},
		out:       []metricSel{{name: "alertsync_transform_commands_total"}},
		freshness: metricSel{name: "alertsync_transform_freshness_seconds"},
	},
	CompApplyDPS: {
		in:        []metricSel{{name: "alertsync_apply_dps_commands_total"}},
		out:       []metricSel{{name: "alertsync_apply_dps_commands_total", label: "outcome", value: "APPLIED"}},
		freshness: metricSel{name: "alertsync_apply_dps_freshness_seconds"},
	},
	CompApplyNOMIS: {
		in:        []metricSel{{name: "alertsync_apply_nomis_commands_total"}},
		out:       []metricSel{{name: "alertsync_apply_nomis_commands_total", label: "outcome", value: "APPLIED"}},
		freshness: metricSel{name: "alertsync_apply_nomis_freshness_seconds"},
	},
}

// row is one component's line on the page.
type row struct {
	admin.Status
	In, Out, Freshness string
	Age                string
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="2">
<title>alertsync demo</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4}.running{color:#060;font-weight:bold}.failed{color:#b00;font-weight:bold}
.degraded,.starting,.stopping{color:#a60;font-weight:bold}.num{text-align:right}.err{color:#b00;max-width:40em}
</style></head><body>
<h1>alertsync demo</h1>
<p id="ready">{{if .Ready}}All components are running.{{else}}Not every component is running yet.{{end}}
Refreshed {{.Now}} (every 2 s). Also: <a href="/status">/status</a> <a href="/readyz">/readyz</a> <a href="/metrics">/metrics</a></p>
<table id="components"><thead><tr><th>Component</th><th>State</th><th>Position</th><th>Records in</th><th>Records out</th><th>Freshness</th><th>Last error</th></tr></thead><tbody>
{{range .Rows}}<tr data-component="{{.Name}}"><td>{{.Name}}</td><td class="{{.State}}">{{.State}}{{if .Detail}} – {{.Detail}}{{end}} <small>for {{.Age}}</small></td>
<td>{{.Position}}</td><td class="num">{{.In}}</td><td class="num">{{.Out}}</td><td class="num">{{.Freshness}}</td>
<td class="err">{{.LastError}}{{if .LastError}} <small>({{.ErrorAt.Format "15:04:05"}})</small>{{end}}</td></tr>
{{end}}</tbody></table>
</body></html>
`))

// newPage returns the status page handler of srv.
func newPage(srv *admin.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		families, _ := srv.Registry().Gather() // a partial gather still shows what it has
		byName := make(map[string]*dto.MetricFamily, len(families))
		for _, f := range families {
			byName[f.GetName()] = f
		}
		var data struct {
			Ready bool
			Now   string
			Rows  []row
		}
		data.Now = time.Now().Format("15:04:05")
		data.Ready = true
		for _, st := range srv.Statuses() {
			data.Ready = data.Ready && st.State == admin.Running
			r := row{Status: st, In: "–", Out: "–", Freshness: "–", Age: time.Since(st.Since).Round(time.Second).String()}
			if spec, ok := pageMetrics[st.Name]; ok {
				if len(spec.in) > 0 {
					r.In = strconv.FormatFloat(sum(byName, spec.in), 'f', 0, 64)
				}
				r.Out = strconv.FormatFloat(sum(byName, spec.out), 'f', 0, 64)
				r.Freshness = freshness(byName, spec.freshness)
			}
			data.Rows = append(data.Rows, r)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = pageTemplate.Execute(w, data) // the client's connection is its own concern
	})
}

func selected(m *dto.Metric, s metricSel) bool {
	if s.label == "" {
		return true
	}
	for _, l := range m.GetLabel() {
		if l.GetName() == s.label {
			return l.GetValue() == s.value
		}
	}
	return false
}

func sum(byName map[string]*dto.MetricFamily, sels []metricSel) float64 {
	var total float64
	for _, s := range sels {
		f := byName[s.name]
		if f == nil {
			continue
		}
		for _, m := range f.GetMetric() {
			if !selected(m, s) {
				continue
			}
			switch {
			case m.Counter != nil:
				total += m.GetCounter().GetValue()
			case m.Gauge != nil:
				total += m.GetGauge().GetValue()
			}
		}
	}
	return total
}

// freshness renders a gauge in seconds, or a histogram's mean.
func freshness(byName map[string]*dto.MetricFamily, s metricSel) string {
	f := byName[s.name]
	if f == nil {
		return "–"
	}
	var v, sumS float64
	var n uint64
	gauge := false
	for _, m := range f.GetMetric() {
		switch {
		case m.Gauge != nil:
			gauge = true
			v = math.Max(v, m.GetGauge().GetValue())
		case m.Histogram != nil:
			sumS += m.GetHistogram().GetSampleSum()
			n += m.GetHistogram().GetSampleCount()
		}
	}
	switch {
	case gauge:
		return "lag " + (time.Duration(v * float64(time.Second))).Round(time.Millisecond).String()
	case n > 0:
		return "mean " + (time.Duration(sumS / float64(n) * float64(time.Second))).Round(time.Millisecond).String()
	}
	return "–"
}
