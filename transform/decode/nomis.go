package decode

import (
	"strconv"
	"time"

	"github.com/alertsync/alertsync/transform/rules"
)

// NOMISAlert returns the change of a nomis.oms_owner.offender_alerts record
// from its decoded key and value. A nil value returns ErrTombstone; a record
// of another shape, or whose key names another alert than its image, an
// *Error. An unmappable op or a missing image is left for the rules.
func NOMISAlert(key, value any) (rules.NOMISAlertChange, error) {
	if err := tombstone(value, "offender_alerts"); err != nil {
		return rules.NOMISAlertChange{}, err
	}
	d := &reader{}
	k := d.root(key, "key")
	v := d.root(value, "value")
	v.path = ""
	ch := rules.NOMISAlertChange{
		Op:     d.op(v),
		Before: d.nomisImage(v, "before"),
		After:  d.nomisImage(v, "after"),
		Source: d.source(v),
	}
	if s, ok := d.optRecord(v, "session"); ok {
		ch.Session = &rules.NOMISSession{
			Module:         opt[string](d, s, "module"),
			AdditionalInfo: opt[string](d, s, "additional_info"),
			User:           opt[string](d, s, "user"),
		}
	}
	if c, ok := d.optRecord(v, "context"); ok {
		ch.Context = &rules.NOMISContext{
			OffenderNo: opt[string](d, c, "offender_no"),
			BookingSeq: opt[int32](d, c, "booking_seq"),
			DPSAlertID: opt[string](d, c, "dps_alert_id"),
		}
	}
	book, seq := get[int64](d, k, "offender_book_id"), get[int32](d, k, "alert_seq")
	if d.err != nil {
		return rules.NOMISAlertChange{}, d.err
	}
	for _, img := range []struct {
		name string
		row  *rules.NOMISAlertRow
	}{{"before", ch.Before}, {"after", ch.After}} {
		if img.row != nil && (img.row.OffenderBookID != book || img.row.AlertSeq != seq) {
			return rules.NOMISAlertChange{}, shapeErr("key", "names another alert than the %s image", img.name)
		}
	}
	return ch, nil
}

// NOMISSnapshot returns the snapshot of a nomis.alertsync.prisoner_alerts
// record from its decoded key and value. A nil value returns ErrTombstone; a
// record of another shape, or whose key names another prisoner, an *Error.
// Alerts is empty (not nil) for a snapshot without alerts.
func NOMISSnapshot(key, value any) (rules.NOMISSnapshot, error) {
	if err := tombstone(value, "prisoner_alerts"); err != nil {
		return rules.NOMISSnapshot{}, err
	}
	d := &reader{}
	k := d.root(key, "key")
	v := d.root(value, "value")
	v.path = ""
	s := rules.NOMISSnapshot{
		OffenderNo: get[string](d, v, "offender_no"),
		Reason:     get[string](d, v, "reason"),
		Source:     d.source(v),
	}
	alerts := get[[]any](d, v, "alerts")
	s.Alerts = make([]rules.NOMISSnapshotAlert, 0, len(alerts))
	for i, a := range alerts {
		r := d.root(a, "alerts["+strconv.Itoa(i)+"]")
		row := d.nomisRow(d.record(r, "row"))
		s.Alerts = append(s.Alerts, rules.NOMISSnapshotAlert{
			Position:   d.position(d.record(r, "position")),
			DPSAlertID: opt[string](d, r, "dps_alert_id"),
			Row:        row,
		})
	}
	keyNo := get[string](d, k, "offender_no")
	if d.err != nil {
		return rules.NOMISSnapshot{}, d.err
	}
	if keyNo != s.OffenderNo {
		return rules.NOMISSnapshot{}, shapeErr("key.offender_no", "does not match the value's offender_no")
	}
	return s, nil
}

func (d *reader) nomisImage(v rec, name string) *rules.NOMISAlertRow {
	r, ok := d.optRecord(v, name)
	if !ok {
		return nil
	}
	row := d.nomisRow(r)
	return &row
}

func (d *reader) nomisRow(r rec) rules.NOMISAlertRow {
	return rules.NOMISAlertRow{
		OffenderBookID:      get[int64](d, r, "offender_book_id"),
		AlertSeq:            get[int32](d, r, "alert_seq"),
		AlertDate:           get[time.Time](d, r, "alert_date").UTC(),
		ExpiryDate:          utc(opt[time.Time](d, r, "expiry_date")),
		AlertType:           get[string](d, r, "alert_type"),
		AlertCode:           get[string](d, r, "alert_code"),
		AlertStatus:         get[string](d, r, "alert_status"),
		AuthorizePersonText: opt[string](d, r, "authorize_person_text"),
		CommentText:         opt[string](d, r, "comment_text"),
		CaseloadID:          opt[string](d, r, "caseload_id"),
		CreateUserID:        get[string](d, r, "create_user_id"),
		CreateDatetime:      get[time.Time](d, r, "create_datetime").UTC(),
		ModifyUserID:        opt[string](d, r, "modify_user_id"),
		ModifyDatetime:      utc(opt[time.Time](d, r, "modify_datetime")),
	}
}
