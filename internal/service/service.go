// Package service runs a long-running alertsync component: structured logging,
// the admin HTTP server, and a graceful, bounded shutdown.
//
// Run starts the admin server and the component's body under one errgroup.
// When the parent context is cancelled (SIGINT/SIGTERM), the body's context is
// cancelled too and the body has at most the drain timeout to return; the
// admin server keeps answering (with /readyz at 503) until the body is done,
// and stops last, within the same drain timeout: Run returns at most
// shutdown.timeout after the cancellation. context.Canceled from the body is
// a clean exit.
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/alertsync/alertsync/internal/admin"
	"github.com/alertsync/alertsync/internal/config"
)

// ErrDrainTimeout is returned when the body did not stop within the drain timeout.
var ErrDrainTimeout = errors.New("shutdown drain timed out")

// NewLogger builds the process logger from the log section.
func NewLogger(cfg config.Log, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.SlogLevel()}
	if cfg.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// Options configures Run.
type Options struct {
	Name   string // component name, for logs
	Admin  config.Admin
	Drain  time.Duration // longest wait for the body after cancellation
	Logger *slog.Logger
}

// Body is a component's main loop. It must return when ctx is cancelled.
type Body func(ctx context.Context, srv *admin.Server) error

// Run serves the admin endpoints and runs body until ctx is cancelled or body
// returns. It returns body's error (nil for a clean stop).
func Run(ctx context.Context, opts Options, body Body) error {
	log := opts.Logger.With("component", opts.Name)
	srv := admin.New(opts.Admin.Listen, opts.Drain, log)
	if opts.Admin.Pprof {
		srv.EnablePprof()
	}

	adminCtx, stopAdmin := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAdmin()
	var adminErr error
	adminDone := make(chan struct{})
	go func() { adminErr = srv.Serve(adminCtx); close(adminDone) }()
	if _, err := srv.Addr(ctx); err != nil {
		return err
	}

	g, gctx := errgroup.WithContext(ctx)
	bodyDone := make(chan struct{})
	g.Go(func() error {
		defer close(bodyDone)
		err := body(gctx, srv)
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return nil
		}
		return err
	})
	g.Go(func() error {
		select {
		case <-adminDone:
			return adminErr
		case <-bodyDone:
			return nil
		}
	})

	waitErr := make(chan error, 1)
	go func() { waitErr <- g.Wait() }()
	var err error
	adminWait := opts.Drain
	select {
	case err = <-waitErr:
	case <-ctx.Done():
		// One deadline for the whole shutdown, body and admin server
		// together: an orchestrator's grace period need only exceed
		// shutdown.timeout, not twice it.
		deadline := time.Now().Add(opts.Drain)
		log.Info("shutting down", "drain", opts.Drain.String())
		select {
		case err = <-waitErr:
		case <-time.After(opts.Drain):
			err = fmt.Errorf("%s: %w after %s (shutdown.timeout)", opts.Name, ErrDrainTimeout, opts.Drain)
		}
		adminWait = time.Until(deadline)
	}
	// The admin server stops last, so that /readyz says 503 while the body
	// drains. It is given what is left of the drain: a scrape or a
	// profile still in flight then does not hold the process up.
	stopAdmin()
	if adminWait > 0 {
		t := time.NewTimer(adminWait)
		select {
		case <-adminDone:
		case <-t.C:
			log.Warn("admin server still answering a request at the end of shutdown.timeout; stopping without it")
		}
		t.Stop()
	}
	if err != nil {
		log.Error("stopped with error", "err", err)
		return err
	}
	log.Info("stopped")
	return nil
}
