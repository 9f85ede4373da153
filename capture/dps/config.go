package dps

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/pipeline"
)

// Config is the configuration of `alertsync capture dps`.
type Config struct {
	Pipeline pipeline.Config `key:""`
	DPS      config.DPS      `key:"dps"`
	Capture  Options         `key:"capture"`
}

// Options is the "capture" section.
type Options struct {
	Slot           string        `key:"slot" default:"alertsync_dps" doc:"Logical replication slot of the DPS capture."`
	Publication    string        `key:"publication" default:"alertsync_dps" doc:"Publication of the captured tables."`
	Schema         string        `key:"schema" default:"public" doc:"Schema of the captured tables."`
	Tables         []string      `key:"tables" default:"alert,alert_code,alert_type,audit_event" doc:"Captured tables, comma-separated; one topic each (dps.<schema>.<table>)."`
	Create         bool          `key:"create" default:"true" doc:"Create the publication when missing, or add missing tables to it (needs ownership of the tables). With false, that is an error that says what a DBA must run. The capture always creates its replication slot itself (with the REPLICATION attribute it needs to stream), since its initial snapshot is the one exported at the slot's creation."`
	Migrate        bool          `key:"migrate" default:"true" doc:"Apply the sync-owned migrations (schema alertsync) at start."`
	LockWait       bool          `key:"lock_wait" default:"false" doc:"When another capture holds the slot's lock, wait for it instead of exiting."`
	Timezone       string        `key:"timezone" default:"Europe/London" doc:"Zone of the DPS timestamp (without time zone) columns; values are published in UTC."`
	StatusInterval time.Duration `key:"status_interval" default:"1s" doc:"Interval of standby status updates (the confirmed flush LSN) to the server."`
	Heartbeat      time.Duration `key:"heartbeat" default:"10s" doc:"Interval of heartbeat messages that let an idle database's slot advance, and of the slot WAL metric."`
	MaxInFlight    int           `key:"max_in_flight" default:"20000" doc:"Most records produced but not yet acknowledged by Kafka; reading the change stream pauses above it."`
	ConnectTimeout time.Duration `key:"connect_timeout" default:"30s" doc:"Timeout of one connection attempt to PostgreSQL."`
	MaxBackoff     time.Duration `key:"max_backoff" default:"30s" doc:"Longest wait between reconnection attempts to PostgreSQL."`
}

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Validate checks the section.
func (o *Options) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, &config.KeyError{Key: key, Err: fmt.Errorf(format, a...)})
	}
	for key, v := range map[string]string{"slot": o.Slot, "publication": o.Publication, "schema": o.Schema} {
		if !identifier.MatchString(v) {
			bad(key, "%q is not a lower-case PostgreSQL identifier", v)
		}
	}
	if len(o.Tables) == 0 {
		bad("tables", "at least one table is required")
	}
	for _, t := range o.Tables {
		if !identifier.MatchString(t) {
			bad("tables", "%q is not a lower-case PostgreSQL identifier", t)
		}
	}
	if _, err := time.LoadLocation(o.Timezone); err != nil {
		bad("timezone", "unknown zone %q", o.Timezone)
	}
	for key, d := range map[string]time.Duration{"status_interval": o.StatusInterval, "heartbeat": o.Heartbeat, "connect_timeout": o.ConnectTimeout, "max_backoff": o.MaxBackoff} {
		if d <= 0 {
			bad(key, "must be positive, got %s", d)
		}
	}
	if o.MaxInFlight < 1 {
		bad("max_in_flight", "must be at least 1, got %d", o.MaxInFlight)
	}
	return errors.Join(errs...)
}
