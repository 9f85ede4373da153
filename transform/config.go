package transform

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"time"

	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/pipeline"
)

// Config is the configuration of `alertsync transform`.
type Config struct {
	Pipeline  pipeline.Config `key:""`
	Transform Options         `key:"transform"`
	Sync      Switches        `key:"sync"`
}

// Options is the "transform" section.
type Options struct {
	Group              string        `key:"group" default:"alertsync-transform" doc:"Kafka consumer group of the transformers; replicas in one group share the source partitions."`
	ReplicaID          string        `key:"replica_id" doc:"Stable name of this replica, unique in the group: its transactional id is <transactional_id_prefix><replica_id> and its static group member id the same, so that a restarted replica fences its predecessor's transaction and takes over its partitions at once. Empty: the host name (a StatefulSet pod name is stable)."`
	TransactionalID    string        `key:"transactional_id_prefix" default:"alertsync-transform-" doc:"Prefix of the replica's Kafka transactional id."`
	TransactionTimeout time.Duration `key:"transaction_timeout" default:"10s" doc:"Kafka transaction timeout: the broker aborts a transaction left open this long by a replica that died, so that read-committed consumers of the command topics are held up at most this long."`
	SessionTimeout     time.Duration `key:"session_timeout" default:"10s" doc:"Consumer group session timeout: how long a replica that stopped heartbeating keeps its partitions before the group hands them to another replica. A restarted replica with the same replica_id takes them back without waiting. Must lie within the brokers' group.min.session.timeout.ms (default 6s) and group.max.session.timeout.ms."`
	BatchRecords       int           `key:"batch_records" default:"10000" doc:"Most source records consumed into one Kafka transaction (the source topics' transaction markers count among them)."`
	ReferenceWait      time.Duration `key:"reference_wait" default:"5s" doc:"How long a DPS alert whose alert code is not (yet) in the reference data waits for the reference topics (dps.public.alert_code, alert_type) to catch up before it goes to the DLQ as unknown_code (NOMIS alerts and snapshots pass on with their NOMIS type: apply dps decides). A code the transformer has just waited for in vain is not waited for again until the reference data changes."`
	Timezone           string        `key:"timezone" default:"Europe/London" doc:"Zone of both systems' wall clocks: dates of alerts and the commit date that ends an INACTIVE NOMIS alert without an expiry date."`
	MaxBackoff         time.Duration `key:"max_backoff" default:"30s" doc:"Longest wait between attempts after a Kafka or registry failure."`
	WatchInterval      time.Duration `key:"watch_interval" default:"2s" doc:"How often the configuration file (--config) is checked for a change of the sync.* switches; a change is loaded once two checks in a row read the same content (a file being written is never loaded half-way). 0 turns watching off (SIGHUP still reloads)."`
}

// Switches is the "sync" section: the two directions of ADR002, each of
// which can be turned off and on while the transformer runs (SIGHUP, or a
// change of the configuration file).
type Switches struct {
	NOMISToDPS bool `key:"nomis_to_dps" default:"true" doc:"Turn NOMIS changes into commands for DPS. While false, NOMIS records are consumed and counted (alertsync_transform_skipped_total) but produce no command; turning it back on does not replay them (see alertsync transform replay)."`
	DPSToNOMIS bool `key:"dps_to_nomis" default:"true" doc:"Turn DPS changes into commands for NOMIS. While false, DPS records are consumed and counted but produce no command; turning it back on does not replay them."`
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,200}$`)

// Validate checks the section.
func (o *Options) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, &config.KeyError{Key: key, Err: fmt.Errorf(format, a...)})
	}
	if !idPattern.MatchString(o.Group) {
		bad("group", "must be 1-200 letters, digits, '.', '_' or '-', got %q", o.Group)
	}
	if o.ReplicaID != "" && !idPattern.MatchString(o.ReplicaID) {
		bad("replica_id", "must be 1-200 letters, digits, '.', '_' or '-', got %q", o.ReplicaID)
	}
	if o.TransactionalID != "" && !idPattern.MatchString(o.TransactionalID) {
		bad("transactional_id_prefix", "must be letters, digits, '.', '_' or '-', got %q", o.TransactionalID)
	}
	if o.TransactionTimeout < time.Second || o.TransactionTimeout > 15*time.Minute {
		bad("transaction_timeout", "must be between 1s and 15m (the broker's default transaction.max.timeout.ms), got %s", o.TransactionTimeout)
	}
	if o.SessionTimeout < time.Second || o.SessionTimeout > 5*time.Minute {
		bad("session_timeout", "must be between 1s and 5m, got %s", o.SessionTimeout)
	}
	if o.BatchRecords < 1 || o.BatchRecords > 1_000_000 {
		bad("batch_records", "must be between 1 and 1000000, got %d", o.BatchRecords)
	}
	if o.ReferenceWait < 0 {
		bad("reference_wait", "must not be negative, got %s", o.ReferenceWait)
	}
	if o.MaxBackoff <= 0 {
		bad("max_backoff", "must be positive, got %s", o.MaxBackoff)
	}
	if o.WatchInterval < 0 {
		bad("watch_interval", "must not be negative, got %s", o.WatchInterval)
	}
	if _, err := time.LoadLocation(o.Timezone); err != nil {
		bad("timezone", "%w", err)
	}
	return errors.Join(errs...)
}

// Replica returns the replica id: ReplicaID, or the host name.
func (o *Options) Replica() (string, error) {
	if o.ReplicaID != "" {
		return o.ReplicaID, nil
	}
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("transform.replica_id is empty and the host name is unknown: %w", err)
	}
	if !idPattern.MatchString(h) {
		return "", fmt.Errorf("transform.replica_id is empty and the host name %q is not a valid id: set transform.replica_id", h)
	}
	return h, nil
}
