package cli

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/internal/admin"
	"github.com/alertsync/alertsync/internal/monitor"
	"github.com/alertsync/alertsync/internal/testenv/admintest"
	"github.com/alertsync/alertsync/internal/testenv/syncbuf"
)

// adminWith serves an admin server with one component in state st.
func adminWith(t *testing.T, name string, st admin.State, detail string) (*admin.Component, string) {
	t.Helper()
	c, url, _ := adminServer(t, name, st, detail)
	return c, url
}

func adminServer(t *testing.T, name string, st admin.State, detail string) (*admin.Component, string, *admin.Server) {
	t.Helper()
	srv, url := admintest.Start(t)
	c := srv.Component(name)
	c.Set(st, detail)
	return c, url, srv
}

func TestMonitorOnce(t *testing.T) {
	t.Parallel()
	_, transform, srv := adminServer(t, "transform", admin.Running, "")
	records := prometheus.NewCounter(prometheus.CounterOpts{Name: "alertsync_transform_records_total", Help: "h"})
	srv.Registry().MustRegister(records)
	records.Add(7)
	counting, stop := context.WithCancel(t.Context())
	counted := make(chan struct{})
	go func() { // records go on being counted while monitor scrapes
		defer close(counted)
		for counting.Err() == nil {
			records.Inc()
			time.Sleep(time.Millisecond)
		}
	}()
	_, apply := adminWith(t, "apply-dps", admin.Running, "")

	out, _, err := run(t, "monitor", "--once", "--json", "--monitor.every=50ms", "transform="+transform, "apply-dps="+apply)
	require.NoError(t, err)
	require.Zero(t, ExitCode(err))
	var round monitor.Round
	require.NoError(t, json.Unmarshal([]byte(out), &round), "one JSON line: %s", out)
	require.Len(t, round.Rows, 2)
	require.Equal(t, "transform", round.Rows[0].Component)
	require.Equal(t, "apply-dps", round.Rows[1].Component)
	require.Positive(t, round.Interval, "two scrapes, monitor.every apart")
	stop()
	<-counted
	require.NotNil(t, round.Rows[0].Rate, "a rate over the interval")
	require.Positive(t, *round.Rows[0].Rate)
	require.Zero(t, *round.Rows[1].Rate, "nothing counted: 0")
	require.True(t, round.AllReady())

	out, _, err = run(t, "monitor", "--once", "--monitor.every=50ms", "transform="+transform)
	require.NoError(t, err)
	require.Contains(t, out, "alertsync monitor")
	require.Contains(t, out, "rates over")
	require.Contains(t, out, "TARGET")
	require.NotContains(t, out, "\x1b[", "no screen control when the output is no terminal")
}

func TestMonitorOnceNotReady(t *testing.T) {
	t.Parallel()
	_, ok := adminWith(t, "transform", admin.Running, "")
	_, degraded := adminWith(t, "apply-nomis", admin.Degraded, "waiting for NOMIS: connection refused")
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gone := ln.Addr().String()
	require.NoError(t, ln.Close())

	out, _, err := run(t, "monitor", "--once", "--monitor.every=50ms", "transform="+ok, "apply-nomis="+degraded, "capture="+gone)
	require.ErrorIs(t, err, ErrNotReady)
	require.Equal(t, 1, ExitCode(err))
	require.ErrorContains(t, err, "2 of 3 components are not running: apply-nomis (degraded), capture (unreachable)")
	require.Contains(t, out, "waiting for NOMIS")
	require.Contains(t, out, "connection refused")

	// A signal before --once has its second scrape: no verdict, exit 2.
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	err = Run(ctx, []string{"monitor", "--once", "--monitor.every=1h", "transform=" + ok}, io.Discard, io.Discard)
	require.ErrorContains(t, err, "interrupted")
	require.Equal(t, 2, ExitCode(err))
}

func TestMonitorUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ftp://h:21"}, "want an http or https address"},
		{[]string{"a=http://h:1", "a=http://h:2"}, `two targets are named "a"`},
		{[]string{"--monitor.every=0s", "http://h:1"}, "monitor.every"},
		{[]string{"--monitor.targets="}, "no target"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, _, err := run(t, append([]string{"monitor", "--once"}, tc.args...)...)
			require.ErrorContains(t, err, tc.want)
			require.Equal(t, 2, ExitCode(err))
		})
	}
	_, _, err := run(t, "monitor", "-h")
	require.NoError(t, err, "-h is a success")
}

// TestMonitorLive: without --once, a round is printed every monitor.every
// until the context ends, which is a clean stop.
func TestMonitorLive(t *testing.T) {
	t.Parallel()
	comp, url := adminWith(t, "capture-dps", admin.Starting, "")
	ctx, cancel := context.WithCancel(t.Context())
	var out, errOut syncbuf.Buffer
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"monitor", "--json", "--monitor.every=30ms", "capture-dps=" + url}, &out, &errOut)
	}()
	require.Eventually(t, func() bool { return strings.Count(out.String(), "\n") >= 2 }, 10*time.Second, 10*time.Millisecond)
	comp.Set(admin.Running, "")
	require.Eventually(t, func() bool { return strings.Contains(out.String(), `"state":"running"`) }, 10*time.Second, 10*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("monitor did not stop")
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var first monitor.Round
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
	require.Zero(t, first.Interval, "the first round has no interval")
	require.Nil(t, first.Rows[0].Rate)
	require.Equal(t, "starting", first.Rows[0].State)
	var second monitor.Round
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &second))
	require.Positive(t, second.Interval)
}
