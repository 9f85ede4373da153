package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	applydlq "github.com/alertsync/alertsync/apply/dlq"
	"github.com/alertsync/alertsync/internal/pipeline"
	"github.com/alertsync/alertsync/internal/service"
)

func runDLQ(ctx context.Context, args []string, out, errOut io.Writer) error {
	if len(args) == 0 {
		return usagef("dlq: want list or redrive")
	}
	switch args[0] {
	case "list":
		return runDLQList(ctx, args[1:], out, errOut)
	case "redrive":
		return runDLQRedrive(ctx, args[1:], out, errOut)
	}
	return usagef("dlq: unknown action %q (want list or redrive)", args[0])
}

func runDLQList(ctx context.Context, args []string, out, errOut io.Writer) error {
	var cfg applydlq.Config
	fs := newFlagSet("dlq list", errOut)
	stage := fs.String("stage", "", "list the entries of one stage only: "+strings.Join(applydlq.Stages(), ", "))
	key := fs.String("alert-key", "", "list the entries of one alert only, e.g. nomis:10:1 or dps:<uuid>")
	asJSON := fs.Bool("json", false, "print one JSON object per entry instead of a table")
	rest, err := loadConfig(fs, &cfg, args, os.LookupEnv)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("dlq list: unexpected arguments %q", rest)
	}
	if err := applydlq.CheckStage(*stage); err != nil {
		return usagef("dlq list: --stage: %v", err)
	}
	log := service.NewLogger(cfg.Log, errOut)
	reg, err := pipeline.NewRegistry(cfg.Registry)
	if err != nil {
		return err
	}
	return applydlq.List(ctx, cfg, applydlq.Deps{Registry: reg, Logger: log},
		applydlq.ListOptions{Stage: *stage, AlertKey: *key, JSON: *asJSON}, out, errOut)
}

func runDLQRedrive(ctx context.Context, args []string, out, errOut io.Writer) error {
	var cfg applydlq.Config
	fs := newFlagSet("dlq redrive", errOut)
	stage := fs.String("stage", "", "stage whose held records are redriven: apply-dps, apply-nomis or transform; capture.nomis asks the NOMIS capture for a resync of each entry's prisoner (required)")
	key := fs.String("alert-key", "", "redrive the hold on this alert, e.g. nomis:10:1 or dps:<uuid> (capture.nomis: the entries of this alert)")
	all := fs.Bool("all", false, "redrive every open hold of the stage (capture.nomis: every entry)")
	dryRun := fs.Bool("dry-run", false, "print what would be redriven and change nothing")
	since := fs.String("since", "", "capture.nomis only: leave out the entries that failed before this time (RFC 3339, e.g. 2026-11-28T09:00:00Z) or this long ago (a duration, e.g. 24h)")
	discard := fs.Bool("discard-failed", false, "transform only: release each hold's failed record without transforming it again (a later change of the alert, which carries its whole state, replaces it) and redrive the records held behind it")
	rest, err := loadConfig(fs, &cfg, args, os.LookupEnv)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("dlq redrive: unexpected arguments %q", rest)
	}
	if err := applydlq.CheckStage(*stage); err != nil {
		return usagef("dlq redrive: --stage: %v", err)
	}
	if *stage == "" {
		return usagef("dlq redrive: --stage is required (apply-dps, apply-nomis, transform or capture.nomis)")
	}
	if *all == (*key != "") {
		return usagef("dlq redrive: give either --alert-key K or --all")
	}
	if *discard && *stage != applydlq.StageTransform {
		return usagef("dlq redrive: --discard-failed is for --stage transform only")
	}
	var sinceT time.Time
	if *since != "" {
		if *stage != applydlq.StageCaptureNOMIS {
			return usagef("dlq redrive: --since is for --stage capture.nomis only")
		}
		if sinceT, err = parseSince(*since, time.Now()); err != nil {
			return usagef("dlq redrive: --since: %v", err)
		}
	}
	log := service.NewLogger(cfg.Log, errOut)
	reg, err := pipeline.NewRegistry(cfg.Registry)
	if err != nil {
		return err
	}
	err = applydlq.Redrive(ctx, cfg, applydlq.Deps{Registry: reg, Logger: log},
		applydlq.RedriveOptions{Stage: *stage, AlertKey: *key, All: *all, DryRun: *dryRun, DiscardFailed: *discard, Since: sinceT}, out)
	if errors.Is(err, applydlq.ErrRedriveUnsupported) {
		return usagef("dlq redrive: %v", err)
	}
	if err != nil {
		return fmt.Errorf("dlq redrive: %w", err)
	}
	return nil
}

// parseSince reads --since: an RFC 3339 time, or a positive duration
// before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a positive duration", s)
	}
	return now.Add(-d), nil
}
