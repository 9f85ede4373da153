package rules

import (
	"errors"
	"time"
)

// BookingCopyInfo is the session additional info of the alerts NOMIS copies
// onto a new booking.
const BookingCopyInfo = "OMKCOPY.COPY_BOOKING_DATA"

// UnknownDPSUser is the NOMIS audit user of a DPS change whose user the
// caller does not know (DPSAlertChange.User nil).
const UnknownDPSUser = "DPS_SYNCHRONISATION"

// Rules maps source records to commands. It holds no state between calls
// and is safe for concurrent use when its Codes is.
type Rules struct {
	codes Codes
	loc   *time.Location
}

// New returns Rules that look codes up in codes and read dates in loc, the
// zone of both systems' wall clocks (Europe/London).
func New(codes Codes, loc *time.Location) (*Rules, error) {
	if codes == nil {
		return nil, errors.New("creating transform rules: no reference data (Codes is nil)")
	}
	if loc == nil {
		return nil, errors.New("creating transform rules: no time zone (use Europe/London)")
	}
	return &Rules{codes: codes, loc: loc}, nil
}

// validDate reports whether d is a date both databases hold (years 1-9999).
func validDate(d Date) bool {
	return d >= minDate && d <= maxDate
}

var (
	minDate = DateOf(1, time.January, 1)
	maxDate = DateOf(9999, time.December, 31)
)

// dateIn returns the date of t in r's zone, or a malformed-date error
// naming field.
func (r *Rules) dateIn(t time.Time, field string) (Date, error) {
	if t.IsZero() {
		return 0, mapErr(ReasonMalformedDate, field, "missing")
	}
	d := DateIn(t, r.loc)
	if !validDate(d) {
		return 0, mapErr(ReasonMalformedDate, field, "outside years 1-9999")
	}
	return d, nil
}

// sameData reports whether a and b agree on everything but who modified
// them and when.
func sameData(a, b *AlertState) bool {
	return a.Code == b.Code && a.TypeCode == b.TypeCode && a.ActiveFrom == b.ActiveFrom &&
		eqPtr(a.ActiveTo, b.ActiveTo) && a.Status == b.Status && eqPtr(a.Description, b.Description) &&
		eqPtr(a.AuthorisedBy, b.AuthorisedBy) && a.CreatedBy == b.CreatedBy &&
		a.CreatedAt.Equal(b.CreatedAt) && eqPtr(a.PrisonCode, b.PrisonCode)
}

func eqPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func nonEmpty(s *string) bool { return s != nil && *s != "" }
