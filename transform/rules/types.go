package rules

import (
	"math"
	"time"
)

// Op is the op of a change record's envelope.
type Op byte

// Ops of change records.
const (
	OpCreate   Op = 'c' // insert
	OpUpdate   Op = 'u' // update
	OpDelete   Op = 'd' // delete (hard)
	OpRead     Op = 'r' // a row of an initial snapshot
	OpTruncate Op = 't' // truncate (DPS only); never mapped
)

// String returns the op as the envelope writes it.
func (o Op) String() string { return string(rune(o)) }

// Position is a commit-ordered source position (alertsync.Position): commit,
// then change.
type Position struct {
	Commit int64 // DPS commit LSN; NOMIS commit SCN or commit time in µs
	Change int64 // DPS change LSN; NOMIS journal sequence
}

// Source is what the rules use of a change record's source block.
type Source struct {
	Position   Position
	CommitTime time.Time // source.ts_ms: the source transaction's commit time
	Sync       bool      // source.sync: alertsync itself wrote the change
}

// Date is a calendar date as Avro's date logical type holds it: days since
// 1970-01-01.
type Date int32

// DateOf returns the date of y-m-d (normalised as time.Date does). A date
// beyond the range of Date becomes math.MinInt32, which no rule accepts.
func DateOf(y int, m time.Month, d int) Date {
	days := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
	if days < math.MinInt32 || days > math.MaxInt32 {
		return math.MinInt32
	}
	return Date(days)
}

// DateIn returns the calendar date of t in loc: the wall-clock date, with
// the time of day dropped.
func DateIn(t time.Time, loc *time.Location) Date {
	y, m, d := t.In(loc).Date()
	return DateOf(y, m, d)
}

// Time returns midnight UTC of d.
func (d Date) Time() time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// String returns d as YYYY-MM-DD.
func (d Date) String() string { return d.Time().Format(time.DateOnly) }

// NOMISAlertRow is the part of an OMS_OWNER.OFFENDER_ALERTS row (the
// offender_alerts envelope's Value) the mapping reads. Timestamps are the
// instants the capture publishes: the Europe/London wall clock converted to
// UTC.
type NOMISAlertRow struct {
	OffenderBookID      int64
	AlertSeq            int32
	AlertDate           time.Time  // ALERT_DATE, NOT NULL: only its date counts
	ExpiryDate          *time.Time // EXPIRY_DATE: only its date counts
	AlertType           string     // ALERT_TYPE: the code's parent type
	AlertCode           string     // ALERT_CODE
	AlertStatus         string     // ALERT_STATUS: ACTIVE or INACTIVE
	AuthorizePersonText *string    // AUTHORIZE_PERSON_TEXT, VARCHAR2(40)
	CommentText         *string    // COMMENT_TEXT, ≤ 4000 bytes; personal data
	CaseloadID          *string    // CASELOAD_ID: the prison
	CreateUserID        string     // CREATE_USER_ID, ≤ 32
	CreateDatetime      time.Time  // CREATE_DATETIME
	ModifyUserID        *string    // MODIFY_USER_ID, ≤ 32
	ModifyDatetime      *time.Time // MODIFY_DATETIME
}

// NOMISSession is the NOMIS session that wrote a change (alertsync.nomis.Session).
type NOMISSession struct {
	Module         *string // module name; DPS_SYNCHRONISATION for the sync
	AdditionalInfo *string // e.g. OMKCOPY.COPY_BOOKING_DATA for booking copies
	User           *string // the NOMIS user
}

// NOMISContext is what the capture knew about an alert's booking and DPS
// twin when it published the change (alertsync.nomis.AlertContext).
type NOMISContext struct {
	OffenderNo *string // prison number; nil when the booking no longer exists
	BookingSeq *int32  // 1 = current booking; nil when the booking no longer exists
	DPSAlertID *string // DPS alert id from the NOMIS-side mapping, when mapped
}

// NOMISAlertChange is one record of nomis.oms_owner.offender_alerts.
type NOMISAlertChange struct {
	Op      Op
	Before  *NOMISAlertRow // u, d
	After   *NOMISAlertRow // c, u, r
	Source  Source
	Session *NOMISSession // nil for snapshot (r) records
	Context *NOMISContext
}

// NOMISSnapshotAlert is one alert of a prisoner snapshot.
type NOMISSnapshotAlert struct {
	Position   Position
	DPSAlertID *string
	Row        NOMISAlertRow
}

// NOMISSnapshot is one record of nomis.alertsync.prisoner_alerts: every
// alert on a prisoner's current booking at one consistent read.
type NOMISSnapshot struct {
	OffenderNo string
	Reason     string // the Reason enum's symbol, e.g. MERGE
	Source     Source // position and time of the read
	Alerts     []NOMISSnapshotAlert
}

// DPSAlertRow is the part of a public.alert row (the alert envelope's
// Value) the mapping reads. Timestamps are instants (the DPS Europe/London
// wall clock converted to UTC by the capture).
type DPSAlertRow struct {
	ID                    string // uuid
	AlertCodeID           int64
	PrisonNumber          string
	Description           *string // ≤ 4000 characters; personal data
	AuthorisedBy          *string // ≤ 40 characters
	ActiveFrom            Date
	ActiveTo              *Date
	CreatedAt             time.Time
	LastModifiedAt        *time.Time
	DeletedAt             *time.Time // soft delete
	PrisonCodeWhenCreated *string
	Version               int32
}

// DPSAlertChange is one record of dps.public.alert.
type DPSAlertChange struct {
	Op     Op
	Before *DPSAlertRow // u, d (REPLICA IDENTITY FULL)
	After  *DPSAlertRow // c, u, r
	Source Source
	// User is the DPS user who made the change, when the caller knows it
	// (from dps.public.audit_event: the alert record carries no user). Nil:
	// the NOMIS audit user is UnknownDPSUser.
	User *string
}

// Side is one of the two synchronised systems (alertsync.Side).
type Side int8

// Sides. SideUnknown is never produced.
const (
	SideUnknown Side = iota
	SideNOMIS
	SideDPS
)

// String returns the Avro symbol of s.
func (s Side) String() string {
	switch s {
	case SideNOMIS:
		return "NOMIS"
	case SideDPS:
		return "DPS"
	}
	return "UNKNOWN"
}

// Kind is the operation of a command (alertsync.command.Kind).
type Kind int8

// Kinds. KindUnknown is never produced.
const (
	KindUnknown Kind = iota
	KindUpsert
	KindDelete
	KindReplacePrisoner
)

// String returns the Avro symbol of k.
func (k Kind) String() string {
	switch k {
	case KindUpsert:
		return "UPSERT"
	case KindDelete:
		return "DELETE"
	case KindReplacePrisoner:
		return "REPLACE_PRISONER"
	}
	return "UNKNOWN"
}

// Status is NOMIS's ALERT_STATUS (alertsync.command.AlertStatus).
type Status int8

// Statuses. StatusUnknown is never produced.
const (
	StatusUnknown Status = iota
	StatusActive
	StatusInactive
)

// String returns the Avro symbol (and NOMIS value) of s.
func (s Status) String() string {
	switch s {
	case StatusActive:
		return "ACTIVE"
	case StatusInactive:
		return "INACTIVE"
	}
	return "UNKNOWN"
}

// AlertState is an alert in the target-neutral model both applies write
// from (alertsync.command.AlertState).
type AlertState struct {
	Code       string
	TypeCode   string
	ActiveFrom Date
	// ActiveTo is the first day the alert is no longer active: it is active
	// while ActiveTo is nil or after the current date (DPS's rule). Nil with Status INACTIVE (from NOMIS
	// only) means "ended on a date the source does not hold": see doc.go.
	ActiveTo     *Date
	Status       Status
	Description  *string // personal data: never logged
	AuthorisedBy *string
	CreatedBy    string
	CreatedAt    time.Time
	ModifiedBy   *string
	ModifiedAt   *time.Time
	PrisonCode   *string
}

// SnapshotAlert is one alert of a REPLACE_PRISONER command.
type SnapshotAlert struct {
	DPSAlertID     *string
	NOMISBookingID *int64
	NOMISAlertSeq  *int32
	Position       Position
	State          AlertState
}

// Command is one target-model operation for an apply
// (alertsync.command.Command).
type Command struct {
	ID               string // deterministic uuid (CommandID)
	Kind             Kind
	PrisonNumber     string // also the record key
	Origin           Side   // system whose change produced the command
	Target           Side   // apply it is for: picks the command topic (not in the record)
	SourcePosition   Position
	SourceCommitTime time.Time
	DPSAlertID       *string
	NOMISBookingID   *int64
	NOMISAlertSeq    *int32
	Before           *AlertState // the source's alert before the change; nil for a create
	After            *AlertState // nil for DELETE and REPLACE_PRISONER
	Alerts           []SnapshotAlert
	Reason           *string
}
