package cli

import (
	"context"
	"fmt"
	"io"
	"os"

	applydps "github.com/alertsync/alertsync/apply/dps"
	applynomis "github.com/alertsync/alertsync/apply/nomis"
	"github.com/alertsync/alertsync/internal/admin"
	"github.com/alertsync/alertsync/internal/pipeline"
	"github.com/alertsync/alertsync/internal/service"
)

func runApply(ctx context.Context, args []string, out, errOut io.Writer) error {
	if len(args) == 0 {
		return usagef("apply: want a target: dps or nomis")
	}
	switch args[0] {
	case "dps":
		return runApplyDPS(ctx, args[1:], out, errOut)
	case "nomis":
		return runApplyNOMIS(ctx, args[1:], out, errOut)
	}
	return usagef("apply: unknown target %q (want dps or nomis)", args[0])
}

func runApplyDPS(ctx context.Context, args []string, _, errOut io.Writer) error {
	var cfg applydps.Config
	fs := newFlagSet("apply dps", errOut)
	if _, err := loadConfig(fs, &cfg, args, os.LookupEnv); err != nil {
		return err
	}
	log := service.NewLogger(cfg.Pipeline.Log, errOut)
	return service.Run(ctx, service.Options{Name: "apply-dps", Admin: cfg.Pipeline.Admin, Drain: cfg.Pipeline.Shutdown.Timeout, Logger: log},
		func(ctx context.Context, srv *admin.Server) error {
			reg, err := pipeline.NewRegistry(cfg.Pipeline.Registry)
			if err != nil {
				return err
			}
			a, err := applydps.New(cfg, applydps.Deps{Registry: reg, Admin: srv, Logger: log})
			if err != nil {
				return fmt.Errorf("apply dps: %w", err)
			}
			return a.Run(ctx)
		})
}

func runApplyNOMIS(ctx context.Context, args []string, out, errOut io.Writer) error {
	var cfg applynomis.Config
	fs := newFlagSet("apply nomis", errOut)
	sweepNow := fs.Bool("sweep-now", false, "run one expiry sweep (lapsed DPS alerts set INACTIVE in NOMIS) with this configuration, print the count and exit")
	if _, err := loadConfig(fs, &cfg, args, os.LookupEnv); err != nil {
		return err
	}
	log := service.NewLogger(cfg.Pipeline.Log, errOut)
	if *sweepNow {
		a, err := applynomis.New(cfg, applynomis.Deps{Logger: log})
		if err != nil {
			return fmt.Errorf("apply nomis: %w", err)
		}
		res, err := a.SweepNow(ctx)
		if err != nil {
			return fmt.Errorf("apply nomis: expiry sweep: %w", err)
		}
		_, err = fmt.Fprintf(out, "expiry sweep of %s: %d lapsed DPS alerts, %d NOMIS alerts set INACTIVE\n", res.Date, res.Due, res.Inactivated)
		return err
	}
	return service.Run(ctx, service.Options{Name: "apply-nomis", Admin: cfg.Pipeline.Admin, Drain: cfg.Pipeline.Shutdown.Timeout, Logger: log},
		func(ctx context.Context, srv *admin.Server) error {
			reg, err := pipeline.NewRegistry(cfg.Pipeline.Registry)
			if err != nil {
				return err
			}
			a, err := applynomis.New(cfg, applynomis.Deps{Registry: reg, Admin: srv, Logger: log})
			if err != nil {
				return fmt.Errorf("apply nomis: %w", err)
			}
			return a.Run(ctx)
		})
}
