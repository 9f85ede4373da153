package history

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kind is what an event is: where in the pipeline it was recorded.
type Kind string

// Kinds of event, in the order the summary counts them.
const (
	KindNOMISChange   Kind = "nomis_change"   // nomis.oms_owner.offender_alerts
	KindNOMISSnapshot Kind = "nomis_snapshot" // nomis.alertsync.prisoner_alerts
	KindDPSChange     Kind = "dps_change"     // dps.public.alert
	KindCommandDPS    Kind = "command_dps"    // alertsync.commands.dps
	KindCommandNOMIS  Kind = "command_nomis"  // alertsync.commands.nomis
	KindOutcome       Kind = "outcome"        // alertsync.outcomes
	KindDLQ           Kind = "dlq"            // alertsync.dlq
	KindUndecodable   Kind = "undecodable"    // a record of any of them that cannot be read
)

// Kinds returns every kind, in the order the summary counts them.
func Kinds() []Kind {
	return []Kind{KindNOMISChange, KindNOMISSnapshot, KindDPSChange, KindCommandDPS, KindCommandNOMIS, KindOutcome, KindDLQ, KindUndecodable}
}

// Label is the kind as the text output shows it.
func (k Kind) Label() string {
	switch k {
	case KindNOMISChange:
		return "NOMIS change"
	case KindNOMISSnapshot:
		return "NOMIS snapshot"
	case KindDPSChange:
		return "DPS change"
	case KindCommandDPS:
		return "command→DPS"
	case KindCommandNOMIS:
		return "command→NOMIS"
	case KindOutcome:
		return "outcome"
	case KindDLQ:
		return "DLQ"
	case KindUndecodable:
		return "undecodable"
	}
	return string(k)
}

// Time sources of an event's time.
const (
	TimeCommit = "commit" // the source transaction's commit time (source.ts_ms)
	TimeRecord = "record" // the Kafka record's timestamp
)

// Event is one line of the history. It holds ids, codes, dates, statuses,
// flags and positions, and the names of the fields a change touched; it has
// no field that could hold alert text (description, comment, authorised
// by) or a user's name: those are read only to compare them.
type Event struct {
	// Time is when the event happened, in UTC: the source commit time for
	// change and snapshot records, the record timestamp otherwise.
	Time Time `json:"time"`
	// TimeOf says which: TimeCommit or TimeRecord.
	TimeOf string `json:"time_of"`
	Kind   Kind   `json:"kind"`
	// Op is the change's op (create, update, delete, read, truncate), the
	// command's kind (UPSERT, DELETE, REPLACE_PRISONER), the outcome's
	// result (APPLIED, SKIPPED, CONFLICT, FAILED), the DLQ entry's error
	// kind, or the snapshot's reason.
	Op           string `json:"op,omitempty"`
	PrisonNumber string `json:"prison_number,omitempty"`
	DPSAlertID   string `json:"dps_alert_id,omitempty"`
	// NOMISAlert is the NOMIS key, OFFENDER_BOOK_ID:ALERT_SEQ.
	NOMISAlert string `json:"nomis_alert,omitempty"`
	CommandID  string `json:"command_id,omitempty"`
	// Sync is, for a change, whether alertsync itself wrote it (source.sync).
	Sync *bool `json:"sync,omitempty"`
	// Origin is a change's raw origin marker (the DPS logical message text
	// or the NOMIS session module); for a command, the side whose change
	// produced it.
	Origin string `json:"origin,omitempty"`
	// Target is the side a command or outcome is for.
	Target string `json:"target,omitempty"`
	// Position is the source position of the change (for commands and
	// outcomes: of the source change behind them).
	Position *Position `json:"position,omitempty"`
	// Changes are the fields a change or command sets: values for the safe
	// fields, only the name for personal ones.
	Changes []Change `json:"changes,omitempty"`
	// Alerts are the alerts of a snapshot or a REPLACE_PRISONER command.
	Alerts []AlertRef `json:"alerts,omitempty"`
	// Bookings are a snapshot's current booking ids.
	Bookings []int64 `json:"bookings,omitempty"`
	// Reason is an outcome's reason, a snapshot's or command's reason, or
	// a DLQ entry's reason word (the transformer's alertsync-reason header).
	Reason string `json:"reason,omitempty"`
	// DLQ entries.
	Stage      string `json:"stage,omitempty"`
	ErrorKind  string `json:"error_kind,omitempty"`
	Attempt    int32  `json:"attempt,omitempty"`
	Held       bool   `json:"held,omitempty"`
	HeldBehind string `json:"held_behind,omitempty"`
	AlertKey   string `json:"alert_key,omitempty"`
	// Original is where a DLQ entry's original record was read:
	// topic/partition/offset.
	Original string `json:"original,omitempty"`
	// Outcomes are, on a command, the outcomes read for its command id.
	Outcomes []OutcomeRef `json:"outcomes,omitempty"`
	// Command is, on an outcome or a DLQ entry of an apply, the command of
	// its command id when it was read.
	Command *CommandRef `json:"command,omitempty"`
	// Undecodable says why a record could not be read (a class of error,
	// never its text).
	Undecodable string `json:"undecodable,omitempty"`
	// Unattributed marks an undecodable record whose key names no prisoner
	// or alert either: it is shown whatever is asked for, since it may
	// concern it.
	Unattributed bool `json:"unattributed,omitempty"`
	// Record is where the event was read.
	Record RecordRef `json:"record"`

	ident ident  // what the event names, for selecting and linking
	image images // which images Changes were computed from
}

// images says which images of an alert a change or command carried.
type images uint8

const (
	noImage    images = iota
	afterOnly         // a create, a snapshot read, an UPSERT without a before-image
	beforeOnly        // a delete
	bothImages        // an update
)

func imagesOf(before, after bool) images {
	switch {
	case before && after:
		return bothImages
	case after:
		return afterOnly
	case before:
		return beforeOnly
	}
	return noImage
}

// Time is a time that JSON-encodes as RFC 3339 in UTC with milliseconds,
// as the text output shows it.
type Time struct{ time.Time }

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	return []byte(`"` + t.UTC().Format(timeFormat) + `"`), nil
}

// Position is a source position: commit, then change.
type Position struct {
	Commit int64 `json:"commit"`
	Change int64 `json:"change"`
}

func (p *Position) String() string {
	if p == nil {
		return "-"
	}
	return strconv.FormatInt(p.Commit, 10) + "/" + strconv.FormatInt(p.Change, 10)
}

// Change is one field a change or command sets. A personal field (alert
// text, authorised by) is named with Personal set and never has a value.
type Change struct {
	Field    string  `json:"field"`
	From     *string `json:"from,omitempty"`
	To       *string `json:"to,omitempty"`
	Personal bool    `json:"personal,omitempty"`
}

// AlertRef is one alert of a snapshot or a REPLACE_PRISONER command, by
// its keys and safe fields.
type AlertRef struct {
	NOMISAlert string `json:"nomis_alert,omitempty"`
	DPSAlertID string `json:"dps_alert_id,omitempty"`
	Code       string `json:"code"`
	Status     string `json:"status,omitempty"`
	ActiveFrom string `json:"active_from,omitempty"`
	ActiveTo   string `json:"active_to,omitempty"`
}

// OutcomeRef names an outcome of a command.
type OutcomeRef struct {
	Result string    `json:"result"`
	Reason string    `json:"reason,omitempty"`
	Record RecordRef `json:"record"`
}

// CommandRef names the command of an outcome or DLQ entry.
type CommandRef struct {
	Kind   string    `json:"kind"`
	Target string    `json:"target"`
	Record RecordRef `json:"record"`
}

// RecordRef is where a record was read, and its timestamp.
type RecordRef struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Timestamp Time   `json:"timestamp"`
}

// compare orders records by topic, partition and offset.
func (r RecordRef) compare(o RecordRef) int {
	return cmp.Or(cmp.Compare(r.Topic, o.Topic), cmp.Compare(r.Partition, o.Partition), cmp.Compare(r.Offset, o.Offset))
}

func (r RecordRef) String() string {
	return r.Topic + "/" + strconv.Itoa(int(r.Partition)) + "/" + strconv.FormatInt(r.Offset, 10)
}

// ident is what an event names: its prisoners, the alerts it names (each
// group of keys is one alert: a NOMIS key and a DPS id that name the same
// alert), bookings, and the command id it carries or reports on.
type ident struct {
	// prisons are the prison numbers it names, usually one: a DPS update
	// that moves an alert to another prisoner names both, by its before
	// and after images.
	prisons   []string
	alerts    [][]alertKey
	bookings  []int64
	commandID string
}

// addPrison adds the prison number p ("" adds nothing).
func (id *ident) addPrison(p string) {
	if p != "" && !slices.Contains(id.prisons, p) {
		id.prisons = append(id.prisons, p)
	}
}

// prison returns the first prison number id names, "" when none.
func (id *ident) prison() string {
	if len(id.prisons) == 0 {
		return ""
	}
	return id.prisons[0]
}

// alertKey names an alert: "nomis:<book>:<seq>" or "dps:<uuid>", as the DLQ
// entries' alert_key does.
type alertKey string

func nomisKey(book int64, seq int32) alertKey {
	return alertKey("nomis:" + strconv.FormatInt(book, 10) + ":" + strconv.Itoa(int(seq)))
}

func dpsKey(id string) alertKey { return alertKey("dps:" + strings.ToLower(id)) }

// booking returns the booking of a NOMIS key.
func (k alertKey) booking() (int64, bool) {
	rest, ok := strings.CutPrefix(string(k), "nomis:")
	if !ok {
		return 0, false
	}
	b, _, ok := strings.Cut(rest, ":")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(b, 10, 64)
	return n, err == nil
}

// parseAlertKey reads a DLQ alert_key: an alert key, or "prisoner:<number>"
// (returned as prison).
func parseAlertKey(s string) (k alertKey, prison string) {
	switch {
	case strings.HasPrefix(s, "nomis:"):
		var book int64
		var seq int32
		rest := strings.TrimPrefix(s, "nomis:")
		b, q, ok := strings.Cut(rest, ":")
		if !ok {
			return "", ""
		}
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil {
			return "", ""
		}
		m, err := strconv.ParseInt(q, 10, 32)
		if err != nil {
			return "", ""
		}
		book, seq = n, int32(m)
		return nomisKey(book, seq), ""
	case strings.HasPrefix(s, "dps:"):
		return dpsKey(strings.TrimPrefix(s, "dps:")), ""
	case strings.HasPrefix(s, "prisoner:"):
		return "", strings.TrimPrefix(s, "prisoner:")
	}
	return "", ""
}
