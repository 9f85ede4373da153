package decode

import (
	"time"

	"github.com/alertsync/alertsync/transform/rules"
)

// DPSAlert returns the change of a dps.public.alert record from its decoded
// key and value. A nil value returns ErrTombstone; a record of another
// shape, or whose key names another alert than its image, an *Error. User
// is left nil (the record carries none); a t op or missing image is left for
// the rules.
func DPSAlert(key, value any) (rules.DPSAlertChange, error) {
	if err := tombstone(value, "alert"); err != nil {
		return rules.DPSAlertChange{}, err
	}
	d := &reader{}
	k := d.root(key, "key")
	v := d.root(value, "value")
	v.path = ""
	ch := rules.DPSAlertChange{
		Op:     d.op(v),
		Before: d.dpsImage(v, "before"),
		After:  d.dpsImage(v, "after"),
		Source: d.source(v),
	}
	id := get[string](d, k, "id")
	if d.err != nil {
		return rules.DPSAlertChange{}, d.err
	}
	if (ch.Before != nil && ch.Before.ID != id) || (ch.After != nil && ch.After.ID != id) {
		return rules.DPSAlertChange{}, shapeErr("key.id", "does not match the image's id")
	}
	return ch, nil
}

func (d *reader) dpsImage(v rec, name string) *rules.DPSAlertRow {
	r, ok := d.optRecord(v, name)
	if !ok {
		return nil
	}
	return &rules.DPSAlertRow{
		ID:                    get[string](d, r, "id"),
		AlertCodeID:           get[int64](d, r, "alert_code_id"),
		PrisonNumber:          get[string](d, r, "prison_number"),
		Description:           opt[string](d, r, "description"),
		AuthorisedBy:          opt[string](d, r, "authorised_by"),
		ActiveFrom:            d.date(r, "active_from"),
		ActiveTo:              d.optDate(r, "active_to"),
		CreatedAt:             get[time.Time](d, r, "created_at").UTC(),
		LastModifiedAt:        utc(opt[time.Time](d, r, "last_modified_at")),
		DeletedAt:             utc(opt[time.Time](d, r, "deleted_at")),
		PrisonCodeWhenCreated: opt[string](d, r, "prison_code_when_created"),
		Version:               get[int32](d, r, "version"),
	}
}
