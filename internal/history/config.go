package history

import (
	"errors"
	"fmt"
	"time"

	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/kafka"
)

// Config is the configuration of `alertsync history`: how to reach Kafka and
// the schema registry, the topic prefix, and the history section.
type Config struct {
	Kafka    kafka.Config       `key:"kafka"`
	Topics   kafka.TopicsConfig `key:"topics"`
	Registry config.Registry    `key:"registry"`
	Log      config.Log         `key:"log"`
	Own      Options            `key:"history"`
}

// Options is the "history" section.
type Options struct {
	Timeout       time.Duration `key:"timeout" default:"10m" doc:"Longest alertsync history takes to read the topics up to the end offsets they had when it started (and to wait for the transactions open then to end); with --dps-alert or --nomis-alert it reads them twice within it."`
	SinceLookback time.Duration `key:"since_lookback" default:"24h" doc:"With --since, how much earlier alertsync history starts reading: at the first record stamped since_lookback before --since. The read starts by record timestamp (the clock of the host that wrote the record) but --since filters on the event time (for a change, its commit time by the database clock), so a change committed after --since can lie in a record stamped before it when the clocks differ; the records read early also link alerts and commands. 0 starts at --since."`
	Timezone      string        `key:"timezone" default:"Europe/London" doc:"Zone of the NOMIS wall-clock DATE columns (ALERT_DATE, EXPIRY_DATE): the calendar dates history prints for them. Must be the capture.timezone of the NOMIS capture that published them."`
}

// Validate checks the section.
func (o *Options) Validate() error {
	var errs []error
	if o.Timeout <= 0 {
		errs = append(errs, &config.KeyError{Key: "timeout", Err: fmt.Errorf("must be positive, got %s", o.Timeout)})
	}
	if o.SinceLookback < 0 {
		errs = append(errs, &config.KeyError{Key: "since_lookback", Err: fmt.Errorf("must not be negative, got %s", o.SinceLookback)})
	}
	if _, err := time.LoadLocation(o.Timezone); err != nil {
		errs = append(errs, &config.KeyError{Key: "timezone", Err: fmt.Errorf("unknown zone %q: %w", o.Timezone, err)})
	}
	return errors.Join(errs...)
}
