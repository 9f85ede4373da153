package rules

// DPSAlert maps a change of public.alert to a command for NOMIS. It returns
// the command, or the Drop reason it produces none, or an *Error for the
// DLQ.
func (r *Rules) DPSAlert(ch *DPSAlertChange) (Command, Drop, error) {
	if ch.Source.Sync {
		return Command{}, DropSync, nil
	}
	kind := KindUpsert
	switch ch.Op {
	case OpCreate, OpRead, OpUpdate:
		if ch.After == nil {
			return Command{}, DropNone, mapErr(ReasonMissingImage, "after", "missing for op "+ch.Op.String())
		}
		if ch.After.DeletedAt != nil {
			if ch.Op == OpUpdate && ch.Before != nil && ch.Before.DeletedAt != nil {
				return Command{}, DropUnchanged, nil // already deleted
			}
			kind = KindDelete // soft delete
		}
	case OpDelete:
		if ch.Before == nil {
			return Command{}, DropNone, mapErr(ReasonMissingImage, "before", "missing for op d (REPLICA IDENTITY FULL on alert?)")
		}
		kind = KindDelete // hard delete
	default:
		return Command{}, DropNone, mapErr(ReasonUnsupportedOp, "op", "op "+ch.Op.String()+" is not c, u, d or r")
	}
	img := ch.After
	if img == nil {
		img = ch.Before
	}
	if img.PrisonNumber == "" {
		return Command{}, DropNone, mapErr(ReasonMissingPrisonNumber, "prison_number", "empty")
	}
	if img.ID == "" {
		return Command{}, DropNone, mapErr(ReasonMissingField, "id", "empty")
	}
	if ch.Source.CommitTime.IsZero() {
		return Command{}, DropNone, mapErr(ReasonMalformedDate, "source.ts_ms", "missing")
	}
	today := DateIn(ch.Source.CommitTime, r.loc)
	id := img.ID
	cmd := Command{
		ID:               CommandID(SideDPS, ch.Source.Position, kind, id),
		Kind:             kind,
		PrisonNumber:     img.PrisonNumber,
		Origin:           SideDPS,
		Target:           SideNOMIS,
		SourcePosition:   ch.Source.Position,
		SourceCommitTime: ch.Source.CommitTime,
		DPSAlertID:       &id,
	}
	if ch.Before != nil && ch.Before.DeletedAt == nil {
		st, err := r.dpsState(ch.Before, today, "", "before")
		if err != nil {
			return Command{}, DropNone, err
		}
		cmd.Before = &st
	}
	if kind == KindUpsert {
		user := UnknownDPSUser
		if nonEmpty(ch.User) {
			user = ShortenUser(*ch.User)
		}
		st, err := r.dpsState(ch.After, today, user, "after")
		if err != nil {
			return Command{}, DropNone, err
		}
		if ch.Op == OpUpdate {
			probe := st
			probe.CreatedBy = "" // before-images carry no user
			if cmd.Before != nil && sameData(cmd.Before, &probe) && ch.Before.PrisonNumber == ch.After.PrisonNumber {
				return Command{}, DropUnchanged, nil
			}
			st.ModifiedBy = &user
		}
		cmd.After = &st
	}
	return cmd, DropNone, nil
}

// dpsState maps a public.alert row to an AlertState as NOMIS will hold it:
// status as of today, type from the code, text cut to NOMIS's columns,
// empty text as NULL (Oracle has no empty string). user: the NOMIS audit
// user, "" for a before-image (DPS rows hold no users).
func (r *Rules) dpsState(row *DPSAlertRow, today Date, user, field string) (AlertState, error) {
	c, ok := r.codes.CodeByID(row.AlertCodeID)
	if !ok {
		return AlertState{}, mapErr(ReasonUnknownCode, field+".alert_code_id", "alert_code_id is not in the reference data")
	}
	if !validDate(row.ActiveFrom) {
		return AlertState{}, mapErr(ReasonMalformedDate, field+".active_from", "outside years 1-9999")
	}
	if row.ActiveTo != nil && !validDate(*row.ActiveTo) {
		return AlertState{}, mapErr(ReasonMalformedDate, field+".active_to", "outside years 1-9999")
	}
	if row.CreatedAt.IsZero() {
		return AlertState{}, mapErr(ReasonMalformedDate, field+".created_at", "missing")
	}
	st := AlertState{
		Code:         c.Code,
		TypeCode:     c.Type,
		ActiveFrom:   row.ActiveFrom,
		ActiveTo:     row.ActiveTo,
		Status:       StatusActive,
		Description:  cut(row.Description, MaxCommentBytes),
		AuthorisedBy: cut(row.AuthorisedBy, MaxAuthorisedBytes),
		CreatedBy:    user,
		CreatedAt:    row.CreatedAt,
		ModifiedAt:   row.LastModifiedAt,
		PrisonCode:   row.PrisonCodeWhenCreated,
	}
	if row.ActiveTo != nil && *row.ActiveTo <= today {
		st.Status = StatusInactive
	}
	return st, nil
}

// cut returns s truncated to n bytes on a rune boundary, nil for nil or
// empty.
func cut(s *string, n int) *string {
	if s == nil || *s == "" {
		return nil
	}
	if len(*s) <= n {
		return s
	}
	t := TruncateUTF8(*s, n)
	return &t
}
