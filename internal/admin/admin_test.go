package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func start(t *testing.T) (*Server, string, context.CancelFunc, <-chan error) {
	t.Helper()
	s := New("127.0.0.1:0", 2*time.Second, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	addr, err := s.Addr(t.Context())
	require.NoError(t, err)
	return s, "http://" + addr, cancel, done
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestProbesFollowComponentState(t *testing.T) {
	t.Parallel()
	s, base, cancel, done := start(t)
	defer cancel()

	code, _ := get(t, base+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code, "no component yet: not ready")

	a, b := s.Component("capture"), s.Component("apply")
	require.Same(t, a, s.Component("capture"))
	code, _ = get(t, base+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code, "starting: not ready")
	code, _ = get(t, base+"/healthz")
	require.Equal(t, http.StatusOK, code, "starting is alive")

	a.Set(Running, "streaming")
	code, _ = get(t, base+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code, "one of two running: not ready")
	b.Set(Running, "")
	code, body := get(t, base+"/readyz")
	require.Equal(t, http.StatusOK, code, body)

	b.Set(Degraded, "waiting for kafka")
	b.Error(errors.New("dial tcp 127.0.0.1:1: connection refused"))
	a.Position("0/16B3748")
	code, body = get(t, base+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	var p probe
	require.NoError(t, json.Unmarshal([]byte(body), &p))
	require.False(t, p.OK)
	require.Len(t, p.Components, 2)
	require.Equal(t, "apply", p.Components[0].Name)
	require.Equal(t, Degraded, p.Components[0].State)
	require.Contains(t, p.Components[0].LastError, "connection refused")
	require.Equal(t, "0/16B3748", p.Components[1].Position)
	code, _ = get(t, base+"/healthz")
	require.Equal(t, http.StatusOK, code, "degraded is alive")

	b.Set(Failed, "replication slot dropped")
	code, _ = get(t, base+"/healthz")
	require.Equal(t, http.StatusServiceUnavailable, code, "failed is not healthy")

	code, body = get(t, base+"/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `alertsync_component_ready{component="capture"} 1`)
	require.Contains(t, body, `alertsync_component_ready{component="apply"} 0`)
	require.Contains(t, body, "go_goroutines")

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}

func TestListenErrorNamesTheKey(t *testing.T) {
	t.Parallel()
	s, base, cancel, _ := start(t)
	defer cancel()
	addr, err := s.Addr(t.Context())
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(base, addr))

	other := New(addr, time.Second, slog.New(slog.DiscardHandler))
	err = other.Serve(t.Context())
	require.ErrorContains(t, err, "admin.listen")
	require.ErrorContains(t, err, addr)
}

func TestPprofOnlyWhenEnabled(t *testing.T) {
	t.Parallel()
	_, base, cancel, _ := start(t)
	defer cancel()
	code, _ := get(t, base+"/debug/pprof/")
	require.Equal(t, http.StatusNotFound, code, "off by default")

	s, base, cancel2, _ := start(t)
	defer cancel2()
	s.EnablePprof()
	code, body := get(t, base+"/debug/pprof/")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "goroutine")
}
