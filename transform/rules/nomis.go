package rules

import (
	"fmt"
	"unicode/utf8"
)

// NOMISAlert maps a change of OFFENDER_ALERTS to a command for DPS. It
// returns the command, or the Drop reason it produces none, or an *Error
// for the DLQ.
func (r *Rules) NOMISAlert(ch *NOMISAlertChange) (Command, Drop, error) {
	if ch.Source.Sync {
		return Command{}, DropSync, nil
	}
	kind := KindUpsert
	switch ch.Op {
	case OpCreate, OpRead:
		if ch.After == nil {
			return Command{}, DropNone, mapErr(ReasonMissingImage, "after", "missing for op "+ch.Op.String())
		}
	case OpUpdate:
		if ch.After == nil || ch.Before == nil {
			return Command{}, DropNone, mapErr(ReasonMissingImage, "before/after", "missing for op u")
		}
	case OpDelete:
		if ch.Before == nil {
			return Command{}, DropNone, mapErr(ReasonMissingImage, "before", "missing for op d")
		}
		kind = KindDelete
	default:
		return Command{}, DropNone, mapErr(ReasonUnsupportedOp, "op", "op "+ch.Op.String()+" is not c, u, d or r")
	}
	if ch.Op == OpCreate && ch.Session != nil && ch.Session.AdditionalInfo != nil && *ch.Session.AdditionalInfo == BookingCopyInfo {
		return Command{}, DropBookingCopy, nil
	}
	ctx := ch.Context
	if ctx == nil || ctx.BookingSeq == nil || *ctx.BookingSeq != 1 {
		return Command{}, DropNotCurrentBooking, nil
	}
	if !nonEmpty(ctx.OffenderNo) {
		return Command{}, DropNone, mapErr(ReasonMissingPrisonNumber, "context.offender_no", "the alert's booking has no prison number")
	}
	if ch.Source.CommitTime.IsZero() {
		return Command{}, DropNone, mapErr(ReasonMalformedDate, "source.ts_ms", "missing")
	}
	img := ch.After
	if img == nil {
		img = ch.Before
	}
	book, seq := img.OffenderBookID, img.AlertSeq
	cmd := Command{
		ID:               commandIDNOMIS(ch.Source.Position, kind, book, seq),
		Kind:             kind,
		PrisonNumber:     *ctx.OffenderNo,
		Origin:           SideNOMIS,
		Target:           SideDPS,
		SourcePosition:   ch.Source.Position,
		SourceCommitTime: ch.Source.CommitTime,
		DPSAlertID:       ctx.DPSAlertID,
		NOMISBookingID:   &book,
		NOMISAlertSeq:    &seq,
	}
	var user *string
	if ch.Session != nil {
		user = ch.Session.User
	}
	if ch.Before != nil {
		st, err := r.nomisState(ch.Before, false, nil, nil, "before")
		if err != nil {
			return Command{}, DropNone, err
		}
		cmd.Before = &st
	}
	if ch.After != nil {
		// INACTIVE without expiry gets the commit date only from the change
		// that made it so; see doc.go.
		var endedOn *Date
		if ch.Op == OpCreate || (ch.Op == OpUpdate && !inactiveOpenEnded(ch.Before)) {
			d := DateIn(ch.Source.CommitTime, r.loc)
			endedOn = &d
		}
		st, err := r.nomisState(ch.After, true, endedOn, user, "after")
		if err != nil {
			return Command{}, DropNone, err
		}
		if ch.Op == OpUpdate {
			if sameData(cmd.Before, &st) {
				return Command{}, DropUnchanged, nil
			}
			// The update's NOMIS user and time, when the row lacks them.
			if st.ModifiedBy == nil && nonEmpty(user) {
				st.ModifiedBy = user
			}
			if st.ModifiedAt == nil {
				t := ch.Source.CommitTime
				st.ModifiedAt = &t
			}
		}
		cmd.After = &st
	}
	return cmd, DropNone, nil
}

// NOMISSnapshot maps a prisoner snapshot to one REPLACE_PRISONER command
// for DPS (ADR004), carrying every alert of the prisoner's current booking;
// an empty snapshot (a merged-away prison number) yields a command with no
// alerts.
func (r *Rules) NOMISSnapshot(s *NOMISSnapshot) (Command, Drop, error) {
	if s.Source.Sync {
		return Command{}, DropSync, nil
	}
	if s.OffenderNo == "" {
		return Command{}, DropNone, mapErr(ReasonMissingPrisonNumber, "offender_no", "the snapshot has no prison number")
	}
	if s.Source.CommitTime.IsZero() {
		return Command{}, DropNone, mapErr(ReasonMalformedDate, "source.ts_ms", "missing")
	}
	cmd := Command{
		ID:               CommandID(SideNOMIS, s.Source.Position, KindReplacePrisoner, s.OffenderNo),
		Kind:             KindReplacePrisoner,
		PrisonNumber:     s.OffenderNo,
		Origin:           SideNOMIS,
		Target:           SideDPS,
		SourcePosition:   s.Source.Position,
		SourceCommitTime: s.Source.CommitTime,
		Alerts:           make([]SnapshotAlert, 0, len(s.Alerts)),
	}
	if s.Reason != "" {
		reason := s.Reason
		cmd.Reason = &reason
	}
	for i := range s.Alerts {
		a := &s.Alerts[i]
		st, err := r.nomisState(&a.Row, true, nil, nil, "alerts.row")
		if err != nil {
			return Command{}, DropNone, err
		}
		book, seq := a.Row.OffenderBookID, a.Row.AlertSeq
		cmd.Alerts = append(cmd.Alerts, SnapshotAlert{
			DPSAlertID: a.DPSAlertID, NOMISBookingID: &book, NOMISAlertSeq: &seq,
			Position: a.Position, State: st,
		})
	}
	return cmd, DropNone, nil
}

// inactiveOpenEnded reports whether row is INACTIVE without an expiry date.
func inactiveOpenEnded(row *NOMISAlertRow) bool {
	return row != nil && row.AlertStatus == "INACTIVE" && row.ExpiryDate == nil
}

// nomisState maps an OFFENDER_ALERTS row to an AlertState. after: the row
// is what an alert becomes (an after-image or a snapshot row), not a
// before-image, which only describes: its code must be known to the
// reference data unless the row names its type (then apply dps, which
// checks DPS's own table, refuses a code DPS lacks and holds the alert, to
// be redriven once the code exists), and its comment must fit DPS. The
// type of a known code fills a missing ALERT_TYPE. endedOn: active_to of an INACTIVE row
// without expiry (nil: left open, see doc.go). user: the session's user,
// the fallback for missing audit users. field names the image in errors.
func (r *Rules) nomisState(row *NOMISAlertRow, after bool, endedOn *Date, user *string, field string) (AlertState, error) {
	st := AlertState{
		Code:         row.AlertCode,
		TypeCode:     row.AlertType,
		Description:  row.CommentText,
		AuthorisedBy: row.AuthorizePersonText,
		CreatedBy:    row.CreateUserID,
		CreatedAt:    row.CreateDatetime,
		ModifiedBy:   row.ModifyUserID,
		ModifiedAt:   row.ModifyDatetime,
		PrisonCode:   row.CaseloadID,
	}
	if st.Code == "" {
		return st, mapErr(ReasonMissingField, field+".alert_code", "empty")
	}
	if after && st.Description != nil {
		// Not a before-image: the change that shortens an over-long
		// comment must get through.
		if n := utf8.RuneCountInString(*st.Description); n > MaxDescriptionChars {
			return st, mapErr(ReasonTextTooLong, field+".comment_text",
				fmt.Sprintf("%d characters, DPS holds at most %d", n, MaxDescriptionChars))
		}
	}
	if after {
		c, ok := r.codes.Lookup(st.Code)
		switch {
		case !ok && st.TypeCode == "":
			return st, mapErr(ReasonUnknownCode, field+".alert_code", "code "+st.Code+" is not in the reference data")
		case ok && st.TypeCode == "":
			st.TypeCode = c.Type
		}
	}
	var err error
	if st.ActiveFrom, err = r.dateIn(row.AlertDate, field+".alert_date"); err != nil {
		return st, err
	}
	if row.ExpiryDate != nil {
		d, err := r.dateIn(*row.ExpiryDate, field+".expiry_date")
		if err != nil {
			return st, err
		}
		st.ActiveTo = &d
	}
	switch row.AlertStatus {
	case "ACTIVE":
		st.Status = StatusActive
	case "INACTIVE":
		st.Status = StatusInactive
		if st.ActiveTo == nil {
			st.ActiveTo = endedOn
		}
	default:
		return st, mapErr(ReasonMalformedStatus, field+".alert_status", "neither ACTIVE nor INACTIVE")
	}
	if st.CreatedAt.IsZero() {
		return st, mapErr(ReasonMalformedDate, field+".create_datetime", "missing")
	}
	if st.CreatedBy == "" {
		if !nonEmpty(user) {
			return st, mapErr(ReasonMissingField, field+".create_user_id", "empty, and no session user")
		}
		st.CreatedBy = *user
	}
	return st, nil
}
