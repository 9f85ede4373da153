package reconcile

import (
	"errors"
	"fmt"
	"time"

	"github.com/alertsync/alertsync/internal/config"
)

// Config is the configuration of `alertsync reconcile`.
type Config struct {
	// DPS is read only: public.alert, alert_code, alert_type and
	// alertsync.alert_mapping.
	DPS config.DPS `key:"dps"`
	// NOMIS is read only: OFFENDERS, OFFENDER_BOOKINGS, OFFENDER_ALERTS and
	// the NOMIS-side mapping, on Oracle or the PostgreSQL stand-in
	// (nomis.dialect).
	NOMIS config.NOMIS `key:"nomis"`
	// Admin serves /metrics, /healthz and /readyz when reconcile runs as a
	// job (--every).
	Admin    config.Admin    `key:"admin"`
	Log      config.Log      `key:"log"`
	Shutdown config.Shutdown `key:"shutdown"`
	Own      Options         `key:"reconcile"`
}

// Options is the "reconcile" section.
type Options struct {
	Timezone       string        `key:"timezone" default:"Europe/London" doc:"Zone of the wall-clock columns of both databases (NOMIS DATE, DPS timestamp) and of 'today' when deciding whether a DPS alert is active."`
	PageSize       int           `key:"page_size" default:"2000" doc:"Prisoners read per query on each side (keyset pagination in prison-number order)."`
	RecheckDelay   time.Duration `key:"recheck_delay" default:"2s" doc:"Wait after the full pass before the prisoners with a difference are read again on both sides; only what still differs is reported. Give the sync time to carry changes in flight."`
	ConnectTimeout time.Duration `key:"connect_timeout" default:"10s" doc:"Longest wait for a connection to the DPS or NOMIS database."`
	Every          time.Duration `key:"every" default:"0s" doc:"Run as a job: reconcile again this long after each run starts, exporting the counts on /metrics (admin.listen). 0 runs once and exits 1 when the sides differ. The --every flag sets it too."`
}

// Validate checks the section.
func (o *Options) Validate() error {
	var errs []error
	if _, err := time.LoadLocation(o.Timezone); err != nil {
		errs = append(errs, &config.KeyError{Key: "timezone", Err: fmt.Errorf("unknown zone %q: %w", o.Timezone, err)})
	}
	if o.PageSize < 1 || o.PageSize > 100_000 {
		errs = append(errs, &config.KeyError{Key: "page_size", Err: fmt.Errorf("must be between 1 and 100000, got %d", o.PageSize)})
	}
	if o.RecheckDelay < 0 {
		errs = append(errs, &config.KeyError{Key: "recheck_delay", Err: fmt.Errorf("must not be negative, got %s", o.RecheckDelay)})
	}
	if o.ConnectTimeout <= 0 {
		errs = append(errs, &config.KeyError{Key: "connect_timeout", Err: fmt.Errorf("must be positive, got %s", o.ConnectTimeout)})
	}
	if o.Every < 0 {
		errs = append(errs, &config.KeyError{Key: "every", Err: fmt.Errorf("must not be negative, got %s", o.Every)})
	}
	return errors.Join(errs...)
}
