package nomis

import (
	"slices"
	"time"

	"github.com/alertsync/alertsync/internal/avrobin"
)

// Prisoner resyncs (ADR004). A change that makes NOMIS's current-booking
// view authoritative for a prisoner calls for a snapshot of the alerts on the
// prisoner's current booking, published to nomis.alertsync.prisoner_alerts.
// The snapshot is read by the poller, not in a trigger, once no such change
// has arrived for the prisoner for capture.resync_delay, so that the
// booking-copy inserts NOMIS makes right after a new booking are inside it.
// This file is the pure part: which changes call for which resyncs, and the
// snapshot record.

// Resync reasons, the symbols of the snapshot's reason enum.
const (
	ReasonInitialLoad     = "INITIAL_LOAD"
	ReasonNewBooking      = "NEW_BOOKING"
	ReasonBookingSwitched = "BOOKING_SWITCHED"
	ReasonBookingMoved    = "BOOKING_MOVED"
	ReasonBookingRemoved  = "BOOKING_REMOVED"
	ReasonMerge           = "MERGE"
	ReasonBookingCopy     = "BOOKING_COPY"
	// ReasonRedrive (request.go): asked for by dlq redrive.
)

// reasonSymbols are the symbols of the Reason enum of the snapshot schema,
// in schema order (TestSnapshotEncodingMatchesGoavro holds them to it).
var reasonSymbols = []string{"UNKNOWN", ReasonInitialLoad, ReasonNewBooking, ReasonBookingSwitched,
	ReasonBookingMoved, ReasonBookingRemoved, ReasonMerge, ReasonBookingCopy, ReasonRedrive}

// CopyBookingInfo is the AUDIT_ADDITIONAL_INFO of the alerts NOMIS copies
// onto a new booking.
const CopyBookingInfo = "OMKCOPY.COPY_BOOKING_DATA"

// resyncTrigger is a resync a change calls for: of the prisoner of an
// offender id (resolved to a prison number in the batch) or of a prison
// number.
type resyncTrigger struct {
	offenderID int64 // when offenderNo is ""
	offenderNo string
	reason     string
}

// integer returns the value of an int or long column of r.
func (t *table) integer(r row, name string) (int64, bool) {
	switch v := t.get(r, name).(type) {
	case int64:
		return v, true
	case int32:
		return int64(v), true
	}
	return 0, false
}

// text returns the value of a string column of r ("" when NULL).
func (t *table) text(r row, name string) string {
	s, _ := t.get(r, name).(string)
	return s
}

// resyncTriggers returns the prisoner resyncs a change calls for:
//   - OFFENDER_BOOKINGS: a booking inserted as BOOKING_SEQ 1 (new booking);
//     BOOKING_SEQ changed to or from 1 (recall switch: both offenders when it
//     moved too); OFFENDER_ID changed (booking moved: the old and the new
//     offender); ROOT_OFFENDER_ID changed (merge); a current booking deleted;
//   - OFFENDERS: OFFENDER_ID_DISPLAY or ROOT_OFFENDER_ID changed (merge, both
//     prison numbers), or the offender deleted (merged away);
//   - OFFENDER_ALERTS: an insert made by the booking copy
//     (OMKCOPY.COPY_BOOKING_DATA), which re-arms the prisoner's debounce;
//   - a resync request (request.go): the prisoner it names.
//
// contexts holds the batch's alert contexts (the copy's prison number).
func (ch *change) resyncTriggers(contexts map[AlertKey]AlertContext) []resyncTrigger {
	if ch.request != nil {
		if tr, ok := ch.request.requestTrigger(contexts); ok {
			return []resyncTrigger{tr}
		}
		return nil
	}
	t, before, after := ch.table, ch.before, ch.after
	var out []resyncTrigger
	byID := func(r row, reason string) {
		if id, ok := t.integer(r, "offender_id"); ok {
			out = append(out, resyncTrigger{offenderID: id, reason: reason})
		}
	}
	byNo := func(no, reason string) {
		if no != "" {
			out = append(out, resyncTrigger{offenderNo: no, reason: reason})
		}
	}
	switch t.name {
	case TableOffenderBookings:
		seq := func(r row) int64 { n, _ := t.integer(r, "booking_seq"); return n }
		switch ch.op {
		case opCreate:
			if seq(after) == 1 {
				byID(after, ReasonNewBooking)
			}
		case opDelete:
			if seq(before) == 1 {
				byID(before, ReasonBookingRemoved)
			}
		case opUpdate:
			oldOff, _ := t.integer(before, "offender_id")
			newOff, _ := t.integer(after, "offender_id")
			oldRoot, _ := t.integer(before, "root_offender_id")
			newRoot, _ := t.integer(after, "root_offender_id")
			reason := ""
			switch {
			case oldOff != newOff:
				reason = ReasonBookingMoved
			case oldRoot != newRoot:
				reason = ReasonMerge
			case seq(before) != seq(after) && (seq(before) == 1 || seq(after) == 1):
				reason = ReasonBookingSwitched
			}
			if reason != "" {
				byID(before, reason)
				if newOff != oldOff {
					byID(after, reason)
				}
			}
		}
	case TableOffenders:
		switch ch.op {
		case opDelete:
			byNo(t.text(before, "offender_id_display"), ReasonMerge)
		case opUpdate:
			oldNo, newNo := t.text(before, "offender_id_display"), t.text(after, "offender_id_display")
			oldRoot, _ := t.integer(before, "root_offender_id")
			newRoot, _ := t.integer(after, "root_offender_id")
			if oldNo != newNo || oldRoot != newRoot {
				byNo(oldNo, ReasonMerge)
				if newNo != oldNo {
					byNo(newNo, ReasonMerge)
				}
			}
		}
	case TableOffenderAlerts:
		info := ch.row.AdditionalInfo
		if ch.op == opCreate && info != nil && *info == CopyBookingInfo {
			if c := contexts[t.alertKey(after)]; c.OffenderNo != nil {
				byNo(*c.OffenderNo, ReasonBookingCopy)
			}
		}
	}
	return out
}

// needsOffenderIDs reports whether any trigger names an offender id.
func needsOffenderIDs(ts []resyncTrigger) []int64 {
	var ids []int64
	for _, tr := range ts {
		if tr.offenderNo == "" && !slices.Contains(ids, tr.offenderID) {
			ids = append(ids, tr.offenderID)
		}
	}
	return ids
}

// resolveResyncs turns triggers into resyncs due at due, resolving offender
// ids by numbers; an offender id with no prison number (the offender is
// gone) is left out: its deletion calls for the resync by number.
func resolveResyncs(ts []resyncTrigger, numbers map[int64]string, due time.Time) []Resync {
	var out []Resync
	for _, tr := range ts {
		no := tr.offenderNo
		if no == "" {
			no = numbers[tr.offenderID]
		}
		if no != "" {
			out = append(out, Resync{OffenderNo: no, Due: due, Reason: tr.reason})
		}
	}
	return out
}

// snapshotAlert is one alert of a prisoner snapshot.
type snapshotAlert struct {
	row   row
	dpsID *string
}

// prisonerSnapshot is the state of one prisoner's current booking.
type prisonerSnapshot struct {
	offenderNo string
	reason     string
	bookings   []int64
	alerts     []snapshotAlert
}

// appendSource appends the Source record of a record of schema.table.
func (b *builder) appendSource(dst []byte, schema, table string, src *origin) []byte {
	dst = avrobin.AppendString(dst, b.version)
	dst = avrobin.AppendString(dst, "oracle") // NOMIS is Oracle; the stand-in models it
	dst = avrobin.AppendString(dst, "nomis")
	dst = avrobin.AppendLong(dst, src.pos.CommitTime.UnixMilli())
	snapshot := "false"
	if src.snapshot {
		snapshot = "true"
	}
	dst = avrobin.AppendString(dst, snapshot)
	dst = avrobin.AppendString(dst, b.db)
	dst = avrobin.AppendString(dst, schema)
	dst = avrobin.AppendString(dst, table)
	if src.txID != "" {
		dst = avrobin.AppendString(append(dst, avrobin.NotNull), src.txID)
	} else {
		dst = append(dst, avrobin.Null)
	}
	dst = avrobin.AppendLong(dst, src.pos.Commit)
	dst = avrobin.AppendLong(dst, src.pos.ID)
	dst = append(dst, avrobin.Null) // lsn: DPS only
	dst = avrobin.AppendOptString(dst, src.module)
	return avrobin.AppendBool(dst, src.module != nil && *src.module == SyncModule)
}

// appendSnapshot appends the Avro binary encoding of a prisoner snapshot
// read at src (a snapshot origin) under the prisoner_alerts value schema.
func (b *builder) appendSnapshot(dst []byte, s *prisonerSnapshot, src *origin, now time.Time) ([]byte, error) {
	alerts := b.tables[TableOffenderAlerts]
	dst = avrobin.AppendString(dst, s.offenderNo)
	reason := slices.Index(reasonSymbols, s.reason)
	dst = avrobin.AppendLong(dst, int64(max(reason, 0)))
	dst = b.appendSource(dst, "alertsync", "prisoner_alerts", src)
	dst = avrobin.AppendLong(dst, now.UnixMilli())
	if len(s.bookings) > 0 {
		dst = avrobin.AppendLong(dst, int64(len(s.bookings)))
		for _, id := range s.bookings {
			dst = avrobin.AppendLong(dst, id)
		}
	}
	dst = append(dst, 0) // end of array
	if len(s.alerts) > 0 {
		dst = avrobin.AppendLong(dst, int64(len(s.alerts)))
		var err error
		for _, a := range s.alerts {
			dst = avrobin.AppendLong(dst, src.pos.Commit)
			dst = avrobin.AppendLong(dst, src.pos.ID)
			dst = avrobin.AppendOptString(dst, a.dpsID)
			if dst, err = alerts.appendRow(dst, a.row); err != nil {
				return dst, err
			}
		}
	}
	return append(dst, 0), nil // end of array
}
