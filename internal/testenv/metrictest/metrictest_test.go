package metrictest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func TestFind(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"table", "op"})
	reg.MustRegister(c)
	c.WithLabelValues("alerts", "c").Add(3)
	c.WithLabelValues("alerts", "u").Add(1)
	require.InDelta(t, 3, Find(t, reg, "x_total", map[string]string{"op": "c"}).GetCounter().GetValue(), 0)
	require.InDelta(t, 1, Find(t, reg, "x_total", map[string]string{"table": "alerts", "op": "u"}).GetCounter().GetValue(), 0)
	require.Nil(t, Find(t, reg, "x_total", map[string]string{"op": "d"}))
	require.Nil(t, Find(t, reg, "y_total", nil))
}
