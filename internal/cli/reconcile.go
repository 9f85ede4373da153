package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/alertsync/alertsync/internal/admin"
	"github.com/alertsync/alertsync/internal/reconcile"
	"github.com/alertsync/alertsync/internal/service"
)

// runReconcile is `alertsync reconcile`: compare NOMIS with DPS once
// (exit 1 when they differ), or as a job with --every.
func runReconcile(ctx context.Context, args []string, out, errOut io.Writer) error {
	var cfg reconcile.Config
	fs := newFlagSet("reconcile", errOut)
	pn := fs.String("prison-number", "", "compare one prisoner only, e.g. A1234BC")
	asJSON := fs.Bool("json", false, "print the report as one JSON document instead of a table")
	showValues := fs.Bool("show-values", false, "include the differing values in the report (personal data: alert descriptions); by default only the fields are named")
	every := fs.Duration("every", 0, "run as a job: reconcile again this often, serving the counts on /metrics (admin.listen); overrides reconcile.every")
	rest, err := loadConfig(fs, &cfg, args, os.LookupEnv)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("reconcile: unexpected arguments %q", rest)
	}
	if *every < 0 {
		return usagef("reconcile: --every must not be negative, got %s", *every)
	}
	if *every > 0 {
		cfg.Own.Every = *every
	}
	log := service.NewLogger(cfg.Log, errOut)
	ro := reconcile.RunOptions{PrisonNumber: *pn, ShowValues: *showValues}
	write := func(res *reconcile.Result) error {
		if *asJSON {
			return reconcile.WriteJSON(out, res)
		}
		return reconcile.WriteTable(out, res)
	}
	if cfg.Own.Every == 0 {
		r, closeDBs, err := reconcile.Open(ctx, cfg, reconcile.Deps{Logger: log})
		if err != nil {
			return fmt.Errorf("reconcile: %w", err)
		}
		defer closeDBs()
		res, err := r.Run(ctx, ro)
		if err != nil {
			return fmt.Errorf("reconcile: %w", err)
		}
		if err := write(res); err != nil {
			return err
		}
		if n := len(res.Differences); n > 0 {
			return fmt.Errorf("reconcile: %d differences: %w", n, reconcile.ErrDifferences)
		}
		return nil
	}
	return service.Run(ctx, service.Options{Name: "reconcile", Admin: cfg.Admin, Drain: cfg.Shutdown.Timeout, Logger: log},
		func(ctx context.Context, srv *admin.Server) error {
			comp := srv.Component("reconcile")
			r, closeDBs, err := reconcile.Open(ctx, cfg, reconcile.Deps{Logger: log, Metrics: reconcile.NewMetrics(srv.Registry())})
			if err != nil {
				return fmt.Errorf("reconcile: %w", err)
			}
			defer closeDBs()
			comp.Set(admin.Running, "")
			for {
				start := time.Now()
				res, err := r.Run(ctx, ro)
				switch {
				case errors.Is(err, context.Canceled) && ctx.Err() != nil:
					return err
				case err != nil:
					// A failed run is retried at the next tick; the metrics count it.
					log.Error("reconcile run failed", "error", err)
					comp.Error(err)
				default:
					comp.Set(admin.Running, fmt.Sprintf("%d differences", len(res.Differences)))
					if err := write(res); err != nil {
						return err
					}
				}
				t := time.NewTimer(time.Until(start.Add(cfg.Own.Every)))
				select {
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				case <-t.C:
				}
			}
		})
}
