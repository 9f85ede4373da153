package kafka

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/alertsync/alertsync/internal/config"
)

// Kind is the role of a topic in the pipeline; retention is set per kind.
type Kind string

// Topic kinds.
const (
	// KindChange: Debezium-compatible change records of one captured table.
	KindChange Kind = "change"
	// KindCommand: target-model operations for one apply.
	KindCommand Kind = "command"
	// KindOutcome: the result of each command (applied, skipped, conflict, failed).
	KindOutcome Kind = "outcome"
	// KindDLQ: records that could not be decoded, mapped or applied.
	KindDLQ Kind = "dlq"
	// KindState: the latest state per key of a stage (compacted, kept
	// forever): the transformer's holds.
	KindState Kind = "state"
)

// Topic is a topic of the pipeline by its unprefixed name.
type Topic struct {
	Base string // name without topics.prefix
	Kind Kind
}

// The pipeline's topics (DESIGN.md, "Topics and records").
var (
	DPSAlert              = Topic{"dps.public.alert", KindChange}
	DPSAlertCode          = Topic{"dps.public.alert_code", KindChange}
	DPSAlertType          = Topic{"dps.public.alert_type", KindChange}
	DPSAuditEvent         = Topic{"dps.public.audit_event", KindChange}
	NOMISOffenderAlerts   = Topic{"nomis.oms_owner.offender_alerts", KindChange}
	NOMISOffenderBookings = Topic{"nomis.oms_owner.offender_bookings", KindChange}
	NOMISOffenders        = Topic{"nomis.oms_owner.offenders", KindChange}
	NOMISPrisonerAlerts   = Topic{"nomis.alertsync.prisoner_alerts", KindChange} // prisoner resync snapshots
	CommandsDPS           = Topic{"alertsync.commands.dps", KindCommand}
	CommandsNOMIS         = Topic{"alertsync.commands.nomis", KindCommand}
	DLQ                   = Topic{"alertsync.dlq", KindDLQ}
	Outcomes              = Topic{"alertsync.outcomes", KindOutcome}
	// TransformHolds is the transformer's open holds, one record per held
	// alert (a tombstone when released), written in its transactions.
	TransformHolds = Topic{"alertsync.transform.holds", KindState}
)

// Catalogue returns every topic of the pipeline, change topics first, in a
// fixed order.
func Catalogue() []Topic {
	return []Topic{
		DPSAlert, DPSAlertCode, DPSAlertType, DPSAuditEvent,
		NOMISOffenderAlerts, NOMISOffenderBookings, NOMISOffenders, NOMISPrisonerAlerts,
		CommandsDPS, CommandsNOMIS, DLQ, Outcomes, TransformHolds,
	}
}

// TopicsConfig is the "topics" section: names and creation settings of the
// pipeline's topics. The config loader fills the defaults from the tags.
type TopicsConfig struct {
	Prefix            string         `key:"prefix" doc:"Prepended to every topic name, separator included (e.g. \"staging.\" gives staging.alertsync.dlq). Empty by default."`
	Partitions        int            `key:"partitions" default:"12" doc:"Partitions of each topic the pipeline creates. Records keep their order per key only while the count is fixed, so a topic that exists with another count is refused, never changed."`
	ReplicationFactor int            `key:"replication_factor" default:"3" doc:"Replicas of each topic the pipeline creates. Single-broker setups (local runs, tests, the demo) set 1."`
	Retention         TopicRetention `key:"retention"`
}

// TopicRetention is the "topics.retention" section: retention.ms of the
// topics the pipeline creates, by kind. 0 keeps records forever.
type TopicRetention struct {
	Change   time.Duration `key:"change" default:"0s" doc:"Retention of the change topics (dps.*, nomis.*); 0 (the default) keeps them forever."`
	Commands time.Duration `key:"commands" default:"168h" doc:"Retention of the command topics; 7 days by default, 0 keeps them forever."`
	Outcomes time.Duration `key:"outcomes" default:"0s" doc:"Retention of alertsync.outcomes; 0 (the default) keeps it forever."`
	DLQ      time.Duration `key:"dlq" default:"0s" doc:"Retention of alertsync.dlq; 0 (the default) keeps it forever, so that nothing is dropped before it is redriven."`
}

// TopicSpec says how to create one topic.
type TopicSpec struct {
	Name              string // full name, prefix included
	Kind              Kind
	Partitions        int32
	ReplicationFactor int16
	Retention         time.Duration // 0: unlimited (retention.ms=-1)
	Compact           bool          // cleanup.policy=compact (KindState)
}

// maxTopicName is Kafka's limit on topic names.
const maxTopicName = 249

var legalTopicName = regexp.MustCompile(`^[a-zA-Z0-9._-]*$`)

// Validate checks the section; every error is a *config.KeyError naming the
// full key (topics.…).
func (c *TopicsConfig) Validate() error {
	var errs []error
	bad := func(key string, format string, args ...any) {
		errs = append(errs, &config.KeyError{Key: "topics." + key, Err: fmt.Errorf(format, args...)})
	}
	if !legalTopicName.MatchString(c.Prefix) {
		bad("prefix", "%q has characters Kafka refuses in topic names (allowed: letters, digits, '.', '_', '-')", c.Prefix)
	}
	longest := 0
	for _, t := range Catalogue() {
		longest = max(longest, len(t.Base))
	}
	if len(c.Prefix)+longest > maxTopicName {
		bad("prefix", "too long: topic names would exceed Kafka's %d characters (at most %d characters)", maxTopicName, maxTopicName-longest)
	}
	if c.Partitions < 1 || c.Partitions > 1<<20 {
		bad("partitions", "must be between 1 and %d, got %d", 1<<20, c.Partitions)
	}
	if c.ReplicationFactor < 1 || c.ReplicationFactor > 1<<15-1 {
		bad("replication_factor", "must be between 1 and %d (1 on a single broker), got %d", 1<<15-1, c.ReplicationFactor)
	}
	for _, r := range []struct {
		key string
		d   time.Duration
	}{
		{"retention.change", c.Retention.Change}, {"retention.commands", c.Retention.Commands},
		{"retention.outcomes", c.Retention.Outcomes}, {"retention.dlq", c.Retention.DLQ},
	} {
		if r.d < 0 || (r.d > 0 && r.d < time.Millisecond) {
			bad(r.key, "must be 0 (keep forever) or at least 1ms, got %s", r.d)
		}
	}
	return errors.Join(errs...)
}

// Name returns the full name of t: topics.prefix followed by its base name.
func (c TopicsConfig) Name(t Topic) string { return c.Prefix + t.Base }

// RetentionOf returns the configured retention of topics of kind k (0:
// unlimited).
func (c TopicsConfig) RetentionOf(k Kind) time.Duration {
	switch k {
	case KindChange:
		return c.Retention.Change
	case KindCommand:
		return c.Retention.Commands
	case KindOutcome:
		return c.Retention.Outcomes
	case KindDLQ:
		return c.Retention.DLQ
	}
	return 0
}

// Spec returns how to create t under this configuration.
func (c TopicsConfig) Spec(t Topic) TopicSpec {
	return TopicSpec{
		Name:              c.Name(t),
		Kind:              t.Kind,
		Partitions:        int32(c.Partitions),        //nolint:gosec // Validate bounds it to 1..2^20
		ReplicationFactor: int16(c.ReplicationFactor), //nolint:gosec // Validate bounds it to 1..2^15-1
		Retention:         c.RetentionOf(t.Kind),
		Compact:           t.Kind == KindState,
	}
}

// Specs returns the specs of ts, or of the whole Catalogue when ts is empty.
func (c TopicsConfig) Specs(ts ...Topic) []TopicSpec {
	if len(ts) == 0 {
		ts = Catalogue()
	}
	out := make([]TopicSpec, 0, len(ts))
	for _, t := range ts {
		out = append(out, c.Spec(t))
	}
	return out
}
