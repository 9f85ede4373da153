package monitor

import (
	"errors"
	"fmt"
	"time"

	"github.com/alertsync/alertsync/internal/config"
)

// Config is the configuration of `alertsync monitor`.
type Config struct {
	Own Options `key:"monitor"`
}

// Options is the "monitor" section.
type Options struct {
	Targets []string      `key:"targets" default:"capture-dps=http://127.0.0.1:9464,capture-nomis=http://127.0.0.1:9465,transform=http://127.0.0.1:9466,apply-dps=http://127.0.0.1:9467,apply-nomis=http://127.0.0.1:9468,reconcile=http://127.0.0.1:9469" doc:"Admin servers to watch, NAME=URL or URL (http://host:port; the scheme may be left out), comma-separated; arguments on the command line replace them. The default is the ports docker-compose.yml publishes."`
	Every   time.Duration `key:"every" default:"5s" doc:"How often alertsync monitor scrapes and refreshes; rates, freshness and new DLQ entries are over this interval. With --once, the wait between its two scrapes."`
	Timeout time.Duration `key:"timeout" default:"2s" doc:"Longest one scrape of one target (its /status and /metrics) may take; a target slower than that shows as unreachable for the round."`
}

// Validate checks the section.
func (o *Options) Validate() error {
	var errs []error
	if o.Every <= 0 {
		errs = append(errs, &config.KeyError{Key: "every", Err: fmt.Errorf("must be positive, got %s", o.Every)})
	}
	if o.Timeout <= 0 {
		errs = append(errs, &config.KeyError{Key: "timeout", Err: fmt.Errorf("must be positive, got %s", o.Timeout)})
	}
	for _, t := range o.Targets {
		if _, err := ParseTarget(t); err != nil {
			errs = append(errs, &config.KeyError{Key: "targets", Err: err})
		}
	}
	return errors.Join(errs...)
}
