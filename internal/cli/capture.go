package cli

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/capture/dps"
	"github.com/alertsync/alertsync/capture/nomis"
	"github.com/alertsync/alertsync/internal/admin"
	"github.com/alertsync/alertsync/internal/kafka"
	"github.com/alertsync/alertsync/internal/pipeline"
	"github.com/alertsync/alertsync/internal/service"
)

func runCapture(ctx context.Context, args []string, out, errOut io.Writer) error {
	if len(args) == 0 {
		return usagef("capture: want a source: dps or nomis")
	}
	switch args[0] {
	case "dps":
		return runCaptureDPS(ctx, args, out, errOut)
	case "nomis":
		return runCaptureNOMIS(ctx, args, out, errOut)
	}
	return usagef("capture: unknown source %q (want dps or nomis)", args[0])
}

func runCaptureDPS(ctx context.Context, args []string, _, errOut io.Writer) error {
	var cfg dps.Config
	fs := newFlagSet("capture dps", errOut)
	resnapshot := fs.Bool("resnapshot", false, "drop the replication slot and publish every row again (the way out of a lost slot)")
	if _, err := loadConfig(fs, &cfg, args[1:], os.LookupEnv); err != nil {
		return err
	}
	log := service.NewLogger(cfg.Pipeline.Log, errOut)
	return service.Run(ctx, service.Options{Name: "capture-dps", Admin: cfg.Pipeline.Admin, Drain: cfg.Pipeline.Shutdown.Timeout, Logger: log},
		func(ctx context.Context, srv *admin.Server) error {
			kcl, err := kafka.NewClient(cfg.Pipeline.Kafka, log, srv.Registry(),
				kgo.ClientID(cfg.Pipeline.Kafka.ClientID+"-capture-dps"),
				kgo.MaxBufferedRecords(cfg.Capture.MaxInFlight+1024),
			)
			if err != nil {
				return err
			}
			defer kcl.Close()
			reg, err := pipeline.NewRegistry(cfg.Pipeline.Registry)
			if err != nil {
				return err
			}
			c, err := dps.New(cfg, dps.Deps{Kafka: kcl, Registry: reg, Admin: srv, Logger: log, Version: versionString()})
			if err != nil {
				return fmt.Errorf("capture dps: %w", err)
			}
			c.Resnapshot = *resnapshot
			return c.Run(ctx)
		})
}

func runCaptureNOMIS(ctx context.Context, args []string, _, errOut io.Writer) error {
	var cfg nomis.Config
	fs := newFlagSet("capture nomis", errOut)
	snapshot := fs.Bool("snapshot", false, "start with an initial load: publish every alert on current bookings (op r) and one prisoner snapshot per prisoner, then capture changes")
	if _, err := loadConfig(fs, &cfg, args[1:], os.LookupEnv); err != nil {
		return err
	}
	log := service.NewLogger(cfg.Pipeline.Log, errOut)
	return service.Run(ctx, service.Options{Name: "capture-nomis", Admin: cfg.Pipeline.Admin, Drain: cfg.Pipeline.Shutdown.Timeout, Logger: log},
		func(ctx context.Context, srv *admin.Server) error {
			kcl, err := kafka.NewClient(cfg.Pipeline.Kafka, log, srv.Registry(),
				kgo.ClientID(cfg.Pipeline.Kafka.ClientID+"-capture-nomis"),
				kgo.MaxBufferedRecords(cfg.Capture.BufferedRecords()),
			)
			if err != nil {
				return err
			}
			defer kcl.Close()
			reg, err := pipeline.NewRegistry(cfg.Pipeline.Registry)
			if err != nil {
				return err
			}
			c, err := nomis.New(cfg, nomis.Deps{Kafka: kcl, Registry: reg, Admin: srv, Logger: log, Version: versionString()})
			if err != nil {
				return fmt.Errorf("capture nomis: %w", err)
			}
			c.Snapshot = *snapshot
			return c.Run(ctx)
		})
}
