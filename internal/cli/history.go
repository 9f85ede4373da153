package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/alertsync/alertsync/internal/history"
	"github.com/alertsync/alertsync/internal/pipeline"
	"github.com/alertsync/alertsync/internal/service"
)

// runHistory is `alertsync history`: the timeline of a prisoner or an alert
// across the pipeline's topics. It exits 0 when events were found, 1 when
// none matched, 2 on a usage error or any other error.
func runHistory(ctx context.Context, args []string, out, errOut io.Writer) error {
	err := historyCmd(ctx, args, out, errOut)
	var ue *UsageError
	switch {
	case err == nil || errors.As(err, &ue) || errors.Is(err, flag.ErrHelp):
		return err
	case errors.Is(err, history.ErrNoEvents):
		return &ExitError{Code: 1, Err: fmt.Errorf("history: %w", err)}
	}
	return &ExitError{Code: 2, Err: fmt.Errorf("history: %w", err)}
}

func historyCmd(ctx context.Context, args []string, out, errOut io.Writer) error {
	var cfg history.Config
	fs := newFlagSet("history", errOut)
	prisoner := fs.String("prisoner", "", "show the history of this prisoner (prison number, e.g. A1234BC)")
	dpsAlert := fs.String("dps-alert", "", "show the history of this DPS alert (its UUID) and of its NOMIS twin")
	nomisAlert := fs.String("nomis-alert", "", "show the history of this NOMIS alert (BOOKING_ID:ALERT_SEQ, e.g. 1234567:3) and of its DPS twin")
	since := fs.String("since", "", "show the events from this time on: RFC 3339 (e.g. 2026-11-28T09:00:00Z) or a duration before now (e.g. 24h); reading starts at the records written history.since_lookback (24h) before")
	until := fs.String("until", "", "show the events up to this time: RFC 3339 or a duration before now")
	asJSON := fs.Bool("json", false, "print one JSON array of events instead of the timeline")
	rest, err := loadConfig(fs, &cfg, args, os.LookupEnv)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("history: unexpected arguments %q", rest)
	}
	var sel history.Selector
	given := 0
	if *prisoner != "" {
		given++
		if sel.PrisonNumber, err = history.ParsePrisonNumber(*prisoner); err != nil {
			return usagef("history: --prisoner: %v", err)
		}
	}
	if *dpsAlert != "" {
		given++
		if sel.DPSAlertID, err = history.ParseDPSAlertID(*dpsAlert); err != nil {
			return usagef("history: --dps-alert: %v", err)
		}
	}
	if *nomisAlert != "" {
		given++
		sel.NOMIS = true
		if sel.NOMISBookingID, sel.NOMISAlertSeq, err = history.ParseNOMISAlert(*nomisAlert); err != nil {
			return usagef("history: --nomis-alert: %v", err)
		}
	}
	if given != 1 {
		return usagef("history: give exactly one of --prisoner PRISON_NUMBER, --dps-alert UUID or --nomis-alert BOOKING_ID:ALERT_SEQ")
	}
	var w history.Window
	now := time.Now()
	if *since != "" {
		if w.Since, err = parseSince(*since, now); err != nil {
			return usagef("history: --since: %v", err)
		}
	}
	if *until != "" {
		if w.Until, err = parseSince(*until, now); err != nil {
			return usagef("history: --until: %v", err)
		}
	}
	if !w.Since.IsZero() && !w.Until.IsZero() && w.Until.Before(w.Since) {
		return usagef("history: --until %s is before --since %s", *until, *since)
	}
	reg, err := pipeline.NewRegistry(cfg.Registry)
	if err != nil {
		return err
	}
	deps := history.Deps{Registry: reg, Logger: service.NewLogger(cfg.Log, errOut)}
	return history.Run(ctx, cfg, deps, history.Query{Selector: sel, Window: w, JSON: *asJSON}, out, errOut)
}
