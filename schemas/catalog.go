package schemas

import (
	"embed"
	"fmt"
	"io/fs"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/sr"
)

//go:embed avro
var avroFiles embed.FS

// HeaderActionedBy is the header of a dps.public.alert record naming the
// DPS user who made the change (audit_event.actioned_by of the same
// transaction), when the capture saw one. The alert row itself has no user.
const HeaderActionedBy = "alertsync-actioned-by"

// Topic names of the records this package describes.
const (
	TopicDPSAlert      = "dps.public.alert"
	TopicDPSAlertCode  = "dps.public.alert_code"
	TopicDPSAlertType  = "dps.public.alert_type"
	TopicDPSAuditEvent = "dps.public.audit_event"

	TopicNOMISOffenderAlerts   = "nomis.oms_owner.offender_alerts"
	TopicNOMISOffenderBookings = "nomis.oms_owner.offender_bookings"
	TopicNOMISOffenders        = "nomis.oms_owner.offenders"
	// TopicNOMISPrisonerAlerts carries prisoner resync snapshots.
	TopicNOMISPrisonerAlerts = "nomis.alertsync.prisoner_alerts"

	TopicCommandsDPS   = "alertsync.commands.dps"
	TopicCommandsNOMIS = "alertsync.commands.nomis"
	TopicDLQ           = "alertsync.dlq"
	TopicOutcomes      = "alertsync.outcomes"
	// TopicTransformHolds is the transformer's open holds (compacted).
	TopicTransformHolds = "alertsync.transform.holds"
)

// Full names of record types: the branch names [OptRecord] takes for union
// fields of these types, and the root types of subjects.
const (
	TypePosition      = "alertsync.Position"
	TypeSource        = "alertsync.Source"
	TypeAlertState    = "alertsync.command.AlertState"
	TypeSnapshot      = "alertsync.command.SnapshotAlert"
	TypeDLQHeader     = "alertsync.dlq.Header"
	TypeCommand       = "alertsync.command.Command"
	TypeOutcome       = "alertsync.outcome.Outcome"
	TypeDLQEntry      = "alertsync.dlq.Entry"
	TypeCommandKey    = "alertsync.command.Key"
	TypeOutcomeKey    = "alertsync.outcome.Key"
	TypeDLQKey        = "alertsync.dlq.Key"
	TypeHoldKey       = "alertsync.hold.Key"
	TypeTransformHold = "alertsync.hold.TransformHold"

	// TypeNOMISSession is the session block of every NOMIS change record.
	TypeNOMISSession = "alertsync.nomis.Session"
	// TypeNOMISAlertContext is the context block of NOMIS alert change records.
	TypeNOMISAlertContext = "alertsync.nomis.AlertContext"
)

// TopicKind groups topics by the part they play.
type TopicKind int

// Topic kinds.
const (
	// KindChange is a Debezium-compatible change topic of one captured table.
	KindChange TopicKind = iota + 1
	// KindSnapshot is a topic of snapshots (whole state of a key), not of
	// row changes: nomis.alertsync.prisoner_alerts.
	KindSnapshot
	// KindCommand is a command topic read by one apply.
	KindCommand
	// KindDLQ is the dead-letter topic.
	KindDLQ
	// KindOutcome is the outcome topic.
	KindOutcome
	// KindState is a compacted topic of a stage's state, one record per
	// key: alertsync.transform.holds.
	KindState
)

// String returns the kind in lower case.
func (k TopicKind) String() string {
	switch k {
	case KindChange:
		return "change"
	case KindSnapshot:
		return "snapshot"
	case KindCommand:
		return "command"
	case KindDLQ:
		return "dlq"
	case KindOutcome:
		return "outcome"
	case KindState:
		return "state"
	}
	return fmt.Sprintf("TopicKind(%d)", int(k))
}

// Subject is one registry subject with its resolved schema.
type Subject struct {
	// Name is the subject name: "<topic>-key" or "<topic>-value"
	// (TopicNameStrategy).
	Name string
	// Type is the full name of the subject's root record.
	Type string
	// Schema is the resolved, self-contained schema text (compact JSON):
	// every named type it uses is defined in it.
	Schema string
	// Compatibility is the registry compatibility level of the subject.
	Compatibility sr.CompatibilityLevel
}

// Topic describes the records of one topic.
type Topic struct {
	// Name is the topic name.
	Name string
	// Kind is the part the topic plays.
	Kind TopicKind
	// Key and Value are the subjects of the record key and value.
	Key, Value Subject
	// Compatibility is the registry compatibility level of both subjects:
	// BACKWARD for change topics (consumers upgrade first; a new schema reads
	// every retained record), FULL for command, DLQ, outcome and state topics, whose
	// writers and readers are separate processes upgraded in any order and
	// whose records are read long after they were written (DLQ redrive).
	Compatibility sr.CompatibilityLevel
	// RowType is, for a change topic, the full name of the row record that
	// fills the envelope's before and after unions; empty otherwise.
	RowType string
}

// KeySubject returns the key subject of topic under TopicNameStrategy.
func KeySubject(topic string) string { return topic + "-key" }

// ValueSubject returns the value subject of topic under TopicNameStrategy.
func ValueSubject(topic string) string { return topic + "-value" }

type topicDef struct {
	name       string
	kind       TopicKind
	key, value string // root types
	compat     sr.CompatibilityLevel
}

// topicTable is the one place that says which schema each topic carries.
var topicTable = []topicDef{
	{TopicDPSAlert, KindChange, "alertsync.dps.public.alert.Key", "alertsync.dps.public.alert.Envelope", sr.CompatBackward},
	{TopicDPSAlertCode, KindChange, "alertsync.dps.public.alert_code.Key", "alertsync.dps.public.alert_code.Envelope", sr.CompatBackward},
	{TopicDPSAlertType, KindChange, "alertsync.dps.public.alert_type.Key", "alertsync.dps.public.alert_type.Envelope", sr.CompatBackward},
	{TopicDPSAuditEvent, KindChange, "alertsync.dps.public.audit_event.Key", "alertsync.dps.public.audit_event.Envelope", sr.CompatBackward},
	{TopicNOMISOffenderAlerts, KindChange, "alertsync.nomis.oms_owner.offender_alerts.Key", "alertsync.nomis.oms_owner.offender_alerts.Envelope", sr.CompatBackward},
	{TopicNOMISOffenderBookings, KindChange, "alertsync.nomis.oms_owner.offender_bookings.Key", "alertsync.nomis.oms_owner.offender_bookings.Envelope", sr.CompatBackward},
	{TopicNOMISOffenders, KindChange, "alertsync.nomis.oms_owner.offenders.Key", "alertsync.nomis.oms_owner.offenders.Envelope", sr.CompatBackward},
	{TopicNOMISPrisonerAlerts, KindSnapshot, "alertsync.nomis.alertsync.prisoner_alerts.Key", "alertsync.nomis.alertsync.prisoner_alerts.Snapshot", sr.CompatBackward},
	{TopicCommandsDPS, KindCommand, TypeCommandKey, TypeCommand, sr.CompatFull},
	{TopicCommandsNOMIS, KindCommand, TypeCommandKey, TypeCommand, sr.CompatFull},
	{TopicDLQ, KindDLQ, TypeDLQKey, TypeDLQEntry, sr.CompatFull},
	{TopicOutcomes, KindOutcome, TypeOutcomeKey, TypeOutcome, sr.CompatFull},
	{TopicTransformHolds, KindState, TypeHoldKey, TypeTransformHold, sr.CompatFull},
}

type catalog struct {
	lib      *library
	topics   []Topic
	byTopic  map[string]int
	subjects map[string]Subject
}

var embedded = sync.OnceValue(func() *catalog {
	sub, err := fs.Sub(avroFiles, "avro")
	if err != nil {
		panic(err)
	}
	c, err := buildCatalog(sub, topicTable)
	if err != nil {
		// The files are embedded: only a broken commit gets here, and
		// TestCatalog fails on it first.
		panic(fmt.Sprintf("schemas: embedded schema files are invalid: %v", err))
	}
	return c
})

func buildCatalog(fsys fs.FS, table []topicDef) (*catalog, error) {
	lib, err := loadLibrary(fsys)
	if err != nil {
		return nil, err
	}
	c := &catalog{lib: lib, byTopic: make(map[string]int), subjects: make(map[string]Subject)}
	for _, d := range table {
		key, err := lib.resolve(d.key)
		if err != nil {
			return nil, fmt.Errorf("resolving key schema of %s: %w", d.name, err)
		}
		value, err := lib.resolve(d.value)
		if err != nil {
			return nil, fmt.Errorf("resolving value schema of %s: %w", d.name, err)
		}
		t := Topic{
			Name:          d.name,
			Kind:          d.kind,
			Key:           Subject{Name: KeySubject(d.name), Type: d.key, Schema: key, Compatibility: d.compat},
			Value:         Subject{Name: ValueSubject(d.name), Type: d.value, Schema: value, Compatibility: d.compat},
			Compatibility: d.compat,
		}
		if d.kind == KindChange {
			t.RowType = strings.TrimSuffix(d.value, "Envelope") + "Value"
		}
		c.byTopic[d.name] = len(c.topics)
		c.topics = append(c.topics, t)
		c.subjects[t.Key.Name] = t.Key
		c.subjects[t.Value.Name] = t.Value
	}
	return c, nil
}

// ResolvedType returns the self-contained schema (compact JSON) of one named
// type of this package, e.g. TypeSource, for schemas built at run time (the
// DPS capture derives its row records from the table catalog and embeds the
// shared Source record through this).
func ResolvedType(fullName string) (string, error) {
	return embedded().lib.resolve(fullName)
}

// Topics returns every topic this package has schemas for, in a fixed order.
// The returned slice is a copy.
func Topics() []Topic {
	return append([]Topic(nil), embedded().topics...)
}

// LookupTopic returns the schemas of topic.
func LookupTopic(topic string) (Topic, bool) {
	c := embedded()
	i, ok := c.byTopic[topic]
	if !ok {
		return Topic{}, false
	}
	return c.topics[i], true
}

// LookupSubject returns a subject by name ("<topic>-key" or "<topic>-value").
func LookupSubject(subject string) (Subject, bool) {
	s, ok := embedded().subjects[subject]
	return s, ok
}
