package demo

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	applydps "github.com/alertsync/alertsync/apply/dps"
	applynomis "github.com/alertsync/alertsync/apply/nomis"
	capdps "github.com/alertsync/alertsync/capture/dps"
	capnomis "github.com/alertsync/alertsync/capture/nomis"
	"github.com/alertsync/alertsync/internal/admin"
	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/kafka"
	"github.com/alertsync/alertsync/internal/pipeline"
	"github.com/alertsync/alertsync/transform"
)

// Component names, as reported to the admin server, in start order.
const (
	CompCaptureDPS   = "capture-dps"
	CompTransform    = "transform"
	CompApplyDPS     = "apply-dps"
	CompApplyNOMIS   = "apply-nomis"
	CompCaptureNOMIS = "capture-nomis"
)

// Components lists the pipeline components the demo runs, in start order.
func Components() []string {
	return []string{CompCaptureDPS, CompTransform, CompApplyDPS, CompApplyNOMIS, CompCaptureNOMIS}
}

// wiring is what every component is built from.
type wiring struct {
	pc       pipeline.Config
	dpsDSN   string
	nomisDSN string
	reg      *sr.Client
	srv      *admin.Server
	log      *slog.Logger
	version  string
}

// runner is one component ready to run until its context ends.
type runner struct {
	name string
	run  func(ctx context.Context) error
}

// defaults loads cfg with its defaults only.
func defaults(cfg any) error {
	if err := config.Load(cfg, config.Sources{LookupEnv: func(string) (string, bool) { return "", false }}); err != nil {
		return fmt.Errorf("loading defaults: %w", err)
	}
	return nil
}

// build creates the component called name.
func (w *wiring) build(name string) (runner, error) {
	log := w.log.With("component", name)
	switch name {
	case CompCaptureDPS:
		var cfg capdps.Config
		if err := defaults(&cfg); err != nil {
			return runner{}, err
		}
		cfg.Pipeline, cfg.DPS.DSN = w.pc, w.dpsDSN
		return runner{name: name, run: func(ctx context.Context) error {
			kcl, err := kafka.NewClient(cfg.Pipeline.Kafka, log, w.srv.Registry(),
				kgo.ClientID(cfg.Pipeline.Kafka.ClientID+"-capture-dps"),
				kgo.MaxBufferedRecords(cfg.Capture.MaxInFlight+1024))
			if err != nil {
				return err
			}
			defer kcl.Close()
			c, err := capdps.New(cfg, capdps.Deps{Kafka: kcl, Registry: w.reg, Admin: w.srv, Logger: log, Version: w.version})
			if err != nil {
				return fmt.Errorf("capture dps: %w", err)
			}
			return c.Run(ctx)
		}}, nil
	case CompCaptureNOMIS:
		var cfg capnomis.Config
		if err := defaults(&cfg); err != nil {
			return runner{}, err
		}
		cfg.Pipeline, cfg.NOMIS.DSN, cfg.NOMIS.Dialect = w.pc, w.nomisDSN, "postgres"
		cfg.Capture.InitialLoad = "auto"
		return runner{name: name, run: func(ctx context.Context) error {
			kcl, err := kafka.NewClient(cfg.Pipeline.Kafka, log, w.srv.Registry(),
				kgo.ClientID(cfg.Pipeline.Kafka.ClientID+"-capture-nomis"),
				kgo.MaxBufferedRecords(cfg.Capture.BufferedRecords()))
			if err != nil {
				return err
			}
			defer kcl.Close()
			c, err := capnomis.New(cfg, capnomis.Deps{Kafka: kcl, Registry: w.reg, Admin: w.srv, Logger: log, Version: w.version})
			if err != nil {
				return fmt.Errorf("capture nomis: %w", err)
			}
			return c.Run(ctx)
		}}, nil
	case CompTransform:
		var cfg transform.Config
		if err := defaults(&cfg); err != nil {
			return runner{}, err
		}
		cfg.Pipeline, cfg.Transform.ReplicaID = w.pc, "demo"
		return runner{name: name, run: func(ctx context.Context) error {
			t, err := transform.New(cfg, transform.Deps{Registry: w.reg, Admin: w.srv, Logger: log})
			if err != nil {
				return fmt.Errorf("transform: %w", err)
			}
			return t.Run(ctx)
		}}, nil
	case CompApplyDPS:
		var cfg applydps.Config
		if err := defaults(&cfg); err != nil {
			return runner{}, err
		}
		cfg.Pipeline, cfg.DPS.DSN, cfg.Apply.Owner = w.pc, w.dpsDSN, "demo-apply-dps"
		return runner{name: name, run: func(ctx context.Context) error {
			a, err := applydps.New(cfg, applydps.Deps{Registry: w.reg, Admin: w.srv, Logger: log})
			if err != nil {
				return fmt.Errorf("apply dps: %w", err)
			}
			return a.Run(ctx)
		}}, nil
	case CompApplyNOMIS:
		var cfg applynomis.Config
		if err := defaults(&cfg); err != nil {
			return runner{}, err
		}
		cfg.Pipeline, cfg.NOMIS.DSN, cfg.NOMIS.Dialect, cfg.DPS.DSN, cfg.Apply.Owner = w.pc, w.nomisDSN, "postgres", w.dpsDSN, "demo-apply-nomis"
		return runner{name: name, run: func(ctx context.Context) error {
			a, err := applynomis.New(cfg, applynomis.Deps{Registry: w.reg, Admin: w.srv, Logger: log})
			if err != nil {
				return fmt.Errorf("apply nomis: %w", err)
			}
			return a.Run(ctx)
		}}, nil
	}
	return runner{}, fmt.Errorf("unknown component %q", name)
}
