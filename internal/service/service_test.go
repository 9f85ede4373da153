package service

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/internal/admin"
	"github.com/alertsync/alertsync/internal/config"
)

func opts(listen string, drain time.Duration) Options {
	return Options{Name: "test", Admin: config.Admin{Listen: listen}, Drain: drain, Logger: slog.New(slog.DiscardHandler)}
}

func TestCleanStopOnCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, opts("127.0.0.1:0", 5*time.Second), func(ctx context.Context, srv *admin.Server) error {
			srv.Component("body").Set(admin.Running, "")
			close(started)
			<-ctx.Done()
			time.Sleep(50 * time.Millisecond) // a short drain
			return ctx.Err()
		})
	}()
	<-started
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
}

func TestDrainIsBounded(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	release := make(chan struct{})
	defer close(release)
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		done <- Run(ctx, opts("127.0.0.1:0", 200*time.Millisecond), func(context.Context, *admin.Server) error {
			close(started)
			<-release // ignores cancellation
			return nil
		})
	}()
	<-started
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrDrainTimeout)
		require.ErrorContains(t, err, "shutdown.timeout")
	case <-time.After(5 * time.Second):
		t.Fatal("drain not bounded")
	}
}

// TestShutdownWithinOneDrain: the drain timeout bounds the whole shutdown.
// A body that takes most of it, and an admin request that never finishes
// (a hung scrape, a long profile), stop within the drain, not within
// twice it.
func TestShutdownWithinOneDrain(t *testing.T) {
	t.Parallel()
	const drain = 3 * time.Second
	ctx, cancel := context.WithCancel(t.Context())
	hung := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, opts("127.0.0.1:0", drain), func(ctx context.Context, srv *admin.Server) error {
			srv.Handle("/hang", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
				close(hung)
				<-release
			}))
			a, err := srv.Addr(ctx)
			if err != nil {
				return err
			}
			addr <- a
			<-ctx.Done()
			time.Sleep(drain - 500*time.Millisecond) // most of the drain
			return ctx.Err()
		})
	}()
	go func() {
		resp, err := http.Get("http://" + <-addr + "/hang") //nolint:noctx // the request outlives the test's contexts on purpose
		if err == nil {
			_ = resp.Body.Close()
		}
	}()
	<-hung
	began := time.Now()
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
		require.Less(t, time.Since(began), drain+time.Second, "Run returns within the drain timeout (and some slack), not twice it")
	case <-time.After(3 * drain):
		t.Fatal("Run did not return")
	}
}

func TestBodyErrorReturned(t *testing.T) {
	t.Parallel()
	boom := errors.New("slot dropped")
	err := Run(t.Context(), opts("127.0.0.1:0", time.Second), func(context.Context, *admin.Server) error { return boom })
	require.ErrorIs(t, err, boom)
}

func TestAdminPortInUse(t *testing.T) {
	t.Parallel()
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = ln.Close() }()
	ran := false
	err = Run(t.Context(), opts(ln.Addr().String(), time.Second), func(context.Context, *admin.Server) error { ran = true; return nil })
	require.ErrorContains(t, err, "admin.listen")
	require.False(t, ran, "body must not run without the admin server")
}
