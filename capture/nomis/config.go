package nomis

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/db"
	"github.com/alertsync/alertsync/internal/pipeline"
)

// Config is the configuration of `alertsync capture nomis`.
type Config struct {
	Pipeline pipeline.Config `key:""`
	NOMIS    Database        `key:"nomis"`
	Capture  Options         `key:"capture"`
}

// Database is the "nomis" section (config.NOMIS), checked against the
// dialect it names.
type Database struct {
	config.NOMIS `key:""`
}

// Validate checks that nomis.dsn is a connect string of the dialect: an
// Oracle one (not a PostgreSQL URL) for oracle; the PostgreSQL URL is
// parsed when connecting. That the DSN is set is checked by config.NOMIS;
// values outside the dialect key's enum are refused by the enum check.
func (d *Database) Validate() error {
	if d.Dialect == "oracle" && strings.TrimSpace(d.DSN) != "" {
		if _, err := db.OracleParams(d.DSN, d.Password); err != nil {
			return &config.KeyError{Key: "dsn", Err: err}
		}
	}
	return nil
}

func dialectError(name string) error {
	have := make([]string, 0, len(dialects))
	for n := range dialects {
		have = append(have, n)
	}
	sort.Strings(have)
	return fmt.Errorf("%w: %q (this build has: %s)", ErrDialect, name, strings.Join(have, ", "))
}

// Options is the "capture" section.
type Options struct {
	BatchSize      int           `key:"batch_size" default:"5000" doc:"Most journal rows read, published and deleted in one batch. The next batch is read at once when a batch was full."`
	PollMin        time.Duration `key:"poll_min" default:"50ms" doc:"Shortest wait between journal reads once a batch was not full; a wake-up (LISTEN/NOTIFY on the postgres dialect) ends the wait early."`
	PollMax        time.Duration `key:"poll_max" default:"2s" doc:"Longest wait between journal reads: while the journal stays empty the wait doubles from capture.poll_min up to this."`
	Settle         time.Duration `key:"settle" default:"20ms" doc:"postgres dialect: how far behind the reading transaction's start the commit horizon of a journal read stays (alertsync_journal_read's p_settle), covering a commit caught between taking its commit time and recording it (the insertion of its commit WAL record, normally microseconds); also the interval of journal checks while writers are busy. It adds about twice its value to the capture's latency. Raise it on a server whose WAL insertion can stall for longer; a commit it misses is published after later ones (never lost)."`
	Migrate        bool          `key:"migrate" default:"true" doc:"Apply the sync-owned migrations (journal, its triggers, mapping: alertsync migrate nomis) at start. The NOMIS tables must exist. With false, a missing journal is an error that says to run alertsync migrate nomis."`
	LockWait       bool          `key:"lock_wait" default:"false" doc:"When another capture nomis holds the journal's lock, wait for it instead of exiting."`
	Timezone       string        `key:"timezone" default:"Europe/London" doc:"Zone of the NOMIS DATE and TIMESTAMP columns; values are published in UTC."`
	ConnectTimeout time.Duration `key:"connect_timeout" default:"30s" doc:"Timeout of one connection attempt to the NOMIS database."`
	MaxBackoff     time.Duration `key:"max_backoff" default:"30s" doc:"Longest wait between reconnection attempts to NOMIS, Kafka or the registry."`
	ResyncDelay    time.Duration `key:"resync_delay" default:"5s" doc:"How long a prisoner resync waits after the last change that calls for it (new booking, recall switch, booking moved, merge, booking copy) before its snapshot is read: the booking-copy inserts NOMIS makes after a new booking, possibly in later transactions, then fall inside the snapshot."`
	InitialLoad    string        `key:"initial_load" default:"auto" enum:"auto,never" doc:"auto: on a start with no recorded initial load, publish every alert on current bookings as op r and one prisoner snapshot per prisoner before capturing changes (alertsync capture nomis --snapshot forces one). never: start capturing changes only."`
}

// maxBatchSize bounds capture.batch_size: a batch is held in memory and its
// records in the Kafka client's buffer.
const maxBatchSize = 100_000

// Validate checks the section.
func (o *Options) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, &config.KeyError{Key: key, Err: fmt.Errorf(format, a...)})
	}
	if o.BatchSize < 1 || o.BatchSize > maxBatchSize {
		bad("batch_size", "must be between 1 and %d, got %d", maxBatchSize, o.BatchSize)
	}
	for _, d := range []struct {
		key string
		d   time.Duration
	}{{"poll_min", o.PollMin}, {"poll_max", o.PollMax}, {"connect_timeout", o.ConnectTimeout}, {"max_backoff", o.MaxBackoff}, {"resync_delay", o.ResyncDelay}} {
		if d.d <= 0 {
			bad(d.key, "must be positive, got %s", d.d)
		}
	}
	if o.PollMax < o.PollMin {
		bad("poll_max", "must be at least capture.poll_min (%s), got %s", o.PollMin, o.PollMax)
	}
	if o.Settle < 0 {
		bad("settle", "must not be negative, got %s", o.Settle)
	}
	if _, err := time.LoadLocation(o.Timezone); err != nil {
		bad("timezone", "unknown zone %q", o.Timezone)
	}
	return errors.Join(errs...)
}

// BufferedRecords is the Kafka client buffer (kgo.MaxBufferedRecords) a
// capture with these options needs: a batch publishes up to three records a
// row (a key change: delete, tombstone, create) and is produced whole before
// its acknowledgements are awaited.
func (o Options) BufferedRecords() int { return 3*o.BatchSize + 1024 }
