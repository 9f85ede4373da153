package metricsdoc

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// targetLabels are the labels Prometheus adds to every scraped series
// (and the Kubernetes service discovery of deploy/kubernetes).
var targetLabels = []string{"job", "instance", "namespace", "pod", "container", "service", "endpoint"}

type ruleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []struct {
			Record      string            `yaml:"record"`
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readRules(t *testing.T) ruleFile {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "deploy/prometheus/alertsync.rules.yml"))
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	var rf ruleFile
	require.NoError(t, dec.Decode(&rf))
	return rf
}

var (
	stringLit = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	// a series name: ours, the process and Go collectors', up, or a
	// recording rule's (level:metric:operations).
	seriesName = regexp.MustCompile(`\b(alertsync_[a-z0-9_]+|alertsync:[a-z0-9_:]+|process_[a-z_]+|go_[a-z_]+|up)\b(\s*\{([^}]*)\})?`)
	matcherKey = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)`)
	grouping   = regexp.MustCompile(`\b(by|without|on|ignoring)\s*\(([^)]*)\)`)
)

// checkExpr checks that every series expr selects is served by a
// component (or recorded by a rule of recorded), that its label matchers
// name labels the series has, and that its by/without/on/ignoring clauses
// name labels of some series in expr.
func checkExpr(catalog []Metric, recorded map[string][]string, expr string) error {
	// Dashboard variables, then the label values in strings, which may
	// hold anything.
	e := strings.NewReplacer("$__rate_interval", "5m", "$job", "x").Replace(expr)
	e = stringLit.ReplaceAllString(e, `""`)
	var known []string
	found := 0
	for _, m := range seriesName.FindAllStringSubmatch(e, -1) {
		name := m[1]
		// A scraped series has the target's labels besides its own; a
		// recorded one only those its rule keeps.
		var labels []string
		switch rec, ok := recorded[name]; {
		case name == "up": // Prometheus's own, per target
			labels = targetLabels
		case ok:
			labels = rec
		case strings.Contains(name, ":"):
			return fmt.Errorf("%s: no rule records %s", expr, name)
		default:
			metric, err := Lookup(catalog, name)
			if err != nil {
				return fmt.Errorf("%s: %w", expr, err)
			}
			labels = append(slices.Clone(metric.Labels), targetLabels...)
		}
		found++
		known = append(known, labels...)
		for _, k := range matcherKey.FindAllStringSubmatch(m[3], -1) {
			if !slices.Contains(labels, k[1]) {
				return fmt.Errorf("%s: %s has no label %s (it has %v)", expr, name, k[1], labels)
			}
		}
	}
	if found == 0 {
		return fmt.Errorf("%s: selects no alertsync series", expr)
	}
	for _, g := range grouping.FindAllStringSubmatch(e, -1) {
		for l := range strings.SplitSeq(g[2], ",") {
			if l = strings.TrimSpace(l); l != "" && !slices.Contains(known, l) {
				return fmt.Errorf("%s: %s (%s) names label %s, which none of its series has", expr, g[1], g[2], l)
			}
		}
	}
	return nil
}

// recordedLabels gives each recording rule's labels: its own and those
// its expression keeps, which the rules here name in their first by clause
// (the outermost aggregation, or histogram_quantile's, which keeps all but
// le).
func recordedLabels(rf ruleFile) map[string][]string {
	out := map[string][]string{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Record == "" {
				continue
			}
			for k := range r.Labels {
				out[r.Record] = append(out[r.Record], k)
			}
			if m := grouping.FindStringSubmatch(r.Expr); m != nil && m[1] == "by" {
				for l := range strings.SplitSeq(m[2], ",") {
					if l = strings.TrimSpace(l); l != "le" {
						out[r.Record] = append(out[r.Record], l)
					}
				}
			}
		}
	}
	return out
}

// TestRulesUseServedMetrics: every series the rules select is served by a
// component, with the labels they match and group on; every alert has a
// severity and a summary and description.
func TestRulesUseServedMetrics(t *testing.T) {
	t.Parallel()
	c := catalog(t)
	rf := readRules(t)
	recorded := recordedLabels(rf)
	require.NotEmpty(t, recorded)
	alerts := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			require.NoError(t, checkExpr(c, recorded, r.Expr), "rule %s%s", r.Record, r.Alert)
			if r.Alert == "" {
				require.Regexp(t, `^alertsync:[a-z0-9_]+:[a-z0-9_]+$`, r.Record)
				continue
			}
			alerts++
			require.Regexp(t, `^Alertsync[A-Z][A-Za-z]+$`, r.Alert)
			require.Contains(t, []string{"critical", "warning", "info"}, r.Labels["severity"], "alert %s", r.Alert)
			require.NotEmpty(t, r.Annotations["summary"], "alert %s", r.Alert)
			require.NotEmpty(t, r.Annotations["description"], "alert %s", r.Alert)
		}
	}
	require.GreaterOrEqual(t, alerts, 10)

	// The check itself: names, labels and groupings that are wrong.
	for _, bad := range []string{
		`rate(alertsync_apply_dps_comands_total[5m])`,
		`alertsync_apply_dps_commands_total{result="APPLIED"}`,
		`sum by (topic) (alertsync_apply_dps_commands_total)`,
		`alertsync:no_such:rule`,
		`histogram_quantile(0.99, rate(alertsync_capture_dps_lag_seconds_bucket[5m]))`,
		`vector(1)`,
	} {
		require.Error(t, checkExpr(c, recorded, bad), bad)
	}
	require.Error(t, checkExpr(c, recorded, `alertsync:consumer_lag_records:sum{job="x"}`), "a recorded series has no target labels")
	require.Error(t, checkExpr(c, recorded, `sum by (job) (alertsync:consumer_lag_records:sum)`))
	require.NoError(t, checkExpr(c, recorded, `sum by (le, job) (rate(alertsync_apply_dps_freshness_seconds_bucket{instance!="x", le="{a,b}"}[5m]))`))
	require.NoError(t, checkExpr(c, recorded, `alertsync:consumer_lag_records:sum{namespace="x", consumer="apply-dps"}`))
}

// TestRulesPromtool: promtool accepts the rules and their unit tests pass
// (deploy/prometheus/alertsync.rules.test.yml). scripts/deps.sh installs
// promtool (Debian's prometheus package).
func TestRulesPromtool(t *testing.T) {
	t.Parallel()
	promtool, err := exec.LookPath("promtool")
	require.NoError(t, err, "promtool is needed: make deps installs it (Debian package prometheus)")
	dir := filepath.Join(root, "deploy/prometheus")
	for _, args := range [][]string{{"check", "rules", "alertsync.rules.yml"}, {"test", "rules", "alertsync.rules.test.yml", "alertsync.rules.daily.test.yml"}} {
		cmd := exec.CommandContext(t.Context(), promtool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
		require.Contains(t, string(out), "SUCCESS")
	}
}

type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID         int    `json:"id"`
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		GridPos struct{ H, W, X, Y int } `json:"gridPos"`
		Targets []struct {
			Expr  string `json:"expr"`
			RefID string `json:"refId"`
		} `json:"targets"`
	} `json:"panels"`
}

// TestDashboard: the Grafana dashboard parses, its panels fit the grid
// without overlapping, use the datasource variable, and query only served
// metrics and recorded rules, with their labels.
func TestDashboard(t *testing.T) {
	t.Parallel()
	c := catalog(t)
	recorded := recordedLabels(readRules(t))
	b, err := os.ReadFile(filepath.Join(root, "deploy/grafana/alertsync.json"))
	require.NoError(t, err)
	var d dashboard
	require.NoError(t, json.Unmarshal(b, &d))
	require.NotEmpty(t, d.UID)
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	require.True(t, vars["datasource"] && vars["job"], "the datasource and job variables")

	ids := map[int]bool{}
	type cell struct{ x, y int }
	used := map[cell]string{}
	queries := 0
	for _, p := range d.Panels {
		require.False(t, ids[p.ID], "panel id %d repeated", p.ID)
		ids[p.ID] = true
		g := p.GridPos
		require.True(t, g.W > 0 && g.H > 0 && g.X >= 0 && g.X+g.W <= 24, "panel %q at %+v leaves the 24-column grid", p.Title, g)
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				require.Empty(t, used[cell{x, y}], "panels %q and %q overlap", p.Title, used[cell{x, y}])
				used[cell{x, y}] = p.Title
			}
		}
		if p.Type == "row" {
			continue
		}
		require.NotNil(t, p.Datasource, "panel %q", p.Title)
		require.Equal(t, "${datasource}", p.Datasource.UID, "panel %q", p.Title)
		require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
		refs := map[string]bool{}
		for _, q := range p.Targets {
			require.False(t, refs[q.RefID], "panel %q repeats refId %s", p.Title, q.RefID)
			refs[q.RefID] = true
			require.NoError(t, checkExpr(c, recorded, q.Expr), "panel %q", p.Title)
			queries++
		}
	}
	require.GreaterOrEqual(t, queries, 20)
}
