package rules

import "fmt"

// Drop is why a source record produces no command. DropNone: it produces one.
type Drop int8

// Drop reasons.
const (
	DropNone Drop = iota
	// DropSync: alertsync itself wrote the change (source.sync); sending it
	// back would loop (DESIGN.md guarantee 3).
	DropSync
	// DropNotCurrentBooking: a NOMIS alert on a booking other than the
	// current one (BOOKING_SEQ ≠ 1, or the booking no longer exists); only
	// the current booking syncs.
	DropNotCurrentBooking
	// DropBookingCopy: an alert NOMIS copied onto a new booking
	// (OMKCOPY.COPY_BOOKING_DATA); the prisoner snapshot that follows carries it.
	DropBookingCopy
	// DropUnchanged: an update that changes nothing the mapping carries
	// (e.g. only VERIFIED_FLAG, audit columns or the DPS version).
	DropUnchanged
)

// String returns a stable name of d, fit for a metric label.
func (d Drop) String() string {
	switch d {
	case DropNone:
		return "none"
	case DropSync:
		return "sync"
	case DropNotCurrentBooking:
		return "not_current_booking"
	case DropBookingCopy:
		return "booking_copy"
	case DropUnchanged:
		return "unchanged"
	}
	return "unknown"
}

// StageTransform is the DLQ stage of the transformer.
const StageTransform = "transform"

// ErrorKindMapping is the DLQ error_kind of every *Error.
const ErrorKindMapping = "mapping"

// Reason classifies a record the rules cannot map.
type Reason int8

// Reasons a record cannot be mapped.
const (
	ReasonUnknownCode         Reason = iota + 1 // the alert code (or DPS alert_code_id) is not in the reference data
	ReasonMissingPrisonNumber                   // no prison number for the alert
	ReasonMalformedDate                         // a date or timestamp missing or outside years 1-9999
	ReasonMalformedStatus                       // ALERT_STATUS neither ACTIVE nor INACTIVE
	ReasonMissingImage                          // the op's before or after image is missing
	ReasonUnsupportedOp                         // an op the rules do not map (t, or unknown)
	ReasonMissingField                          // a required field is empty
	ReasonTextTooLong                           // a text longer than the target holds, where the mapping does not cut it
)

// String returns a stable name of r, fit for a metric label.
func (r Reason) String() string {
	switch r {
	case ReasonUnknownCode:
		return "unknown_code"
	case ReasonMissingPrisonNumber:
		return "missing_prison_number"
	case ReasonMalformedDate:
		return "malformed_date"
	case ReasonMalformedStatus:
		return "malformed_status"
	case ReasonMissingImage:
		return "missing_image"
	case ReasonUnsupportedOp:
		return "unsupported_op"
	case ReasonMissingField:
		return "missing_field"
	case ReasonTextTooLong:
		return "text_too_long"
	}
	return "unknown"
}

// Error is a record the rules cannot map: the record goes to alertsync.dlq
// with Stage, ErrorKindMapping and Error(). Messages name fields, ops, codes
// and keys, never alert text (comments, authorised-by).
type Error struct {
	Stage  string // StageTransform
	Reason Reason
	Field  string // the offending field, when one is
	Msg    string // what is wrong, without values of the alert
}

// Error implements error.
func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s: %s", e.Stage, e.Reason, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.Stage, e.Reason, e.Msg)
}

// Is reports whether target is an *Error of the same Reason, so that
// errors.Is(err, &rules.Error{Reason: rules.ReasonUnknownCode}) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason == e.Reason
}

func mapErr(r Reason, field, msg string) *Error {
	return &Error{Stage: StageTransform, Reason: r, Field: field, Msg: msg}
}
