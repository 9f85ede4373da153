// Package admintest serves an admin server for a test.
package admintest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/alertsync/alertsync/internal/admin"
)

// Start serves a new admin server on a free loopback port until the test
// ends, and returns it with its base URL (http://127.0.0.1:PORT).
func Start(tb testing.TB) (*admin.Server, string) {
	tb.Helper()
	srv := admin.New("127.0.0.1:0", time.Second, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx); close(done) }()
	tb.Cleanup(func() { cancel(); <-done })
	addr, err := srv.Addr(ctx)
	if err != nil {
		tb.Fatalf("admin server: %v", err)
	}
	return srv, "http://" + addr
}
