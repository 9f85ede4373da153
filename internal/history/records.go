package history

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/alertsync/alertsync/apply"
	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform"
	"github.com/alertsync/alertsync/transform/decode"
	"github.com/alertsync/alertsync/transform/rules"
)

// This file turns decoded records (goavro natives) into events. It is pure:
// no Kafka, no registry, no clock. Personal text (descriptions, comments,
// authorised-by) and user names are read only to be compared; no value of
// theirs is ever put into an Event.

// errTombstone marks a record with a nil value: not an event.
var errTombstone = errors.New("tombstone")

// refData resolves the DPS alert_code ids of alert rows to codes and type
// codes, from dps.public.alert_code and dps.public.alert_type.
type refData struct {
	codes map[int64]codeRef // alert_code.id
	types map[int64]string  // alert_type.id → code
}

type codeRef struct {
	code   string
	typeID int64
}

func newRefData() *refData {
	return &refData{codes: map[int64]codeRef{}, types: map[int64]string{}}
}

// add records the row of a dps.public.alert_code or dps.public.alert_type
// change (its after image; a delete keeps what was known).
func (r *refData) add(base string, value any) {
	after, ok := schemas.GetOpt[map[string]any](asRecord(value), "after")
	if !ok {
		return
	}
	id, ok := schemas.Get[int64](after, "id")
	code, ok2 := schemas.Get[string](after, "code")
	if !ok || !ok2 {
		return
	}
	switch base {
	case schemas.TopicDPSAlertCode:
		t, _ := schemas.Get[int64](after, "alert_type_id")
		r.codes[id] = codeRef{code: code, typeID: t}
	case schemas.TopicDPSAlertType:
		r.types[id] = code
	}
}

// code returns the code and type code of alert_code id; the code is
// "alert_code_id=<id>" when the reference topics do not have it.
func (r *refData) code(id int64) (code, typ string) {
	c, ok := r.codes[id]
	if !ok {
		return "alert_code_id=" + strconv.FormatInt(id, 10), ""
	}
	return c.code, r.types[c.typeID]
}

// converter turns the decoded records of one topic into events.
type converter struct {
	loc  *time.Location // zone of NOMIS DATE columns
	refs *refData
}

// event returns the event of a record of topic base (its name without the
// prefix) decoded into key and value, read at at, with the record's
// headers. A tombstone returns errTombstone; a record without the shape of
// its schema returns an error naming fields, never values.
func (c *converter) event(base string, at RecordRef, headers map[string]string, key, value any) (Event, error) {
	if v, ok := value.(map[string]any); value == nil || (ok && v == nil) {
		return Event{}, errTombstone
	}
	ev := Event{Record: at, Time: at.Timestamp, TimeOf: TimeRecord}
	var err error
	switch base {
	case schemas.TopicNOMISOffenderAlerts:
		err = c.nomisChange(&ev, key, value)
	case schemas.TopicNOMISPrisonerAlerts:
		err = c.snapshot(&ev, key, value)
	case schemas.TopicDPSAlert:
		err = c.dpsChange(&ev, key, value)
	case schemas.TopicCommandsDPS:
		err = c.command(&ev, KindCommandDPS, "DPS", key, value)
	case schemas.TopicCommandsNOMIS:
		err = c.command(&ev, KindCommandNOMIS, "NOMIS", key, value)
	case schemas.TopicOutcomes:
		err = outcome(&ev, value)
	case schemas.TopicDLQ:
		err = dlqEntry(&ev, headers, value)
	default:
		err = fmt.Errorf("topic %s is not one history reads", base)
	}
	if err != nil {
		return Event{}, err
	}
	ev.ident = identOf(base, key, value)
	return ev, nil
}

// undecodable returns the event of a record that could not be decoded:
// why (a class of error, never its text), and what its key names when the
// key could be decoded (key is nil otherwise).
func undecodable(base string, at RecordRef, why string, key any) Event {
	ev := Event{Record: at, Time: at.Timestamp, TimeOf: TimeRecord, Kind: KindUndecodable, Undecodable: why}
	ev.ident = identOf(base, key, nil)
	ev.Unattributed = ev.ident.empty()
	ev.PrisonNumber = ev.ident.prison()
	if len(ev.ident.alerts) == 1 {
		for _, k := range ev.ident.alerts[0] {
			ev.setKey(k)
		}
	}
	return ev
}

// fillKey fills the id field of k when it is empty.
func (e *Event) fillKey(k alertKey) {
	if _, ok := k.booking(); ok && e.NOMISAlert == "" || !ok && e.DPSAlertID == "" {
		e.setKey(k)
	}
}

// setKey fills the id field of k.
func (e *Event) setKey(k alertKey) {
	if _, ok := k.booking(); ok {
		e.NOMISAlert = string(k[len("nomis:"):])
	} else if len(k) > len("dps:") {
		e.DPSAlertID = string(k[len("dps:"):])
	}
}

func (c *converter) nomisChange(ev *Event, key, value any) error {
	ch, err := decode.NOMISAlert(key, value)
	if err != nil {
		return err
	}
	ev.Kind = KindNOMISChange
	ev.Op = opName(ch.Op)
	ev.setSource(ch.Source, value)
	if img := cmp.Or(ch.After, ch.Before); img != nil {
		ev.NOMISAlert = strconv.FormatInt(img.OffenderBookID, 10) + ":" + strconv.Itoa(int(img.AlertSeq))
	}
	if ctx := ch.Context; ctx != nil {
		ev.PrisonNumber = deref(ctx.OffenderNo)
		ev.DPSAlertID = deref(ctx.DPSAlertID)
	}
	ev.Changes, ev.image = diff(c.nomisFields(ch.Before), c.nomisFields(ch.After)), imagesOf(ch.Before != nil, ch.After != nil)
	return nil
}

func (c *converter) nomisFields(r *rules.NOMISAlertRow) []fieldValue {
	if r == nil {
		return nil
	}
	return []fieldValue{
		safe("alert_code", &r.AlertCode),
		safe("alert_type", &r.AlertType),
		safe("alert_date", ptr(c.date(r.AlertDate))),
		safe("expiry_date", c.optDate(r.ExpiryDate)),
		safe("alert_status", &r.AlertStatus),
		safe("caseload_id", r.CaseloadID),
		personal("comment_text", r.CommentText),
		personal("authorize_person_text", r.AuthorizePersonText),
	}
}

func (c *converter) snapshot(ev *Event, key, value any) error {
	s, err := decode.NOMISSnapshot(key, value)
	if err != nil {
		return err
	}
	ev.Kind = KindNOMISSnapshot
	ev.Op = s.Reason
	ev.PrisonNumber = s.OffenderNo
	ev.setSource(s.Source, value)
	ev.Sync = nil // a read of NOMIS, not a change by anyone
	books, _ := schemas.Get[[]any](asRecord(value), "booking_ids")
	for _, b := range books {
		if n, ok := b.(int64); ok {
			ev.Bookings = append(ev.Bookings, n)
		}
	}
	ev.Alerts = make([]AlertRef, 0, len(s.Alerts))
	for _, a := range s.Alerts {
		r := a.Row
		ref := AlertRef{
			NOMISAlert: strconv.FormatInt(r.OffenderBookID, 10) + ":" + strconv.Itoa(int(r.AlertSeq)),
			DPSAlertID: deref(a.DPSAlertID), Code: r.AlertCode, Status: r.AlertStatus, ActiveFrom: c.date(r.AlertDate),
		}
		if d := c.optDate(r.ExpiryDate); d != nil {
			ref.ActiveTo = *d
		}
		ev.Alerts = append(ev.Alerts, ref)
	}
	return nil
}

func (c *converter) dpsChange(ev *Event, key, value any) error {
	ch, err := decode.DPSAlert(key, value)
	if err != nil {
		return err
	}
	ev.Kind = KindDPSChange
	ev.Op = opName(ch.Op)
	ev.setSource(ch.Source, value)
	if img := cmp.Or(ch.After, ch.Before); img != nil {
		ev.DPSAlertID = img.ID
		ev.PrisonNumber = img.PrisonNumber
	}
	ev.Changes, ev.image = diff(c.dpsFields(ch.Before), c.dpsFields(ch.After)), imagesOf(ch.Before != nil, ch.After != nil)
	return nil
}

func (c *converter) dpsFields(r *rules.DPSAlertRow) []fieldValue {
	if r == nil {
		return nil
	}
	code, typ := c.refs.code(r.AlertCodeID)
	fs := []fieldValue{safe("alert_code", &code)}
	if typ != "" {
		fs = append(fs, safe("alert_type", &typ))
	}
	var deleted *string
	if r.DeletedAt != nil {
		deleted = ptr(r.DeletedAt.UTC().Format(timeFormat))
	}
	return append(fs,
		safe("active_from", ptr(r.ActiveFrom.String())),
		safe("active_to", optRulesDate(r.ActiveTo)),
		safe("deleted_at", deleted),
		safe("prison_number", &r.PrisonNumber),
		safe("prison_code_when_created", r.PrisonCodeWhenCreated),
		personal("description", r.Description),
		personal("authorised_by", r.AuthorisedBy),
	)
}

func (c *converter) command(ev *Event, kind Kind, target string, key, value any) error {
	cmd, err := apply.DecodeCommand(key, value)
	if err != nil {
		return err
	}
	ev.Kind = kind
	ev.Target = target
	ev.Op = cmd.Kind.String()
	ev.CommandID = cmd.ID
	ev.PrisonNumber = cmd.PrisonNumber
	ev.Origin = cmd.Origin.String()
	ev.Position = &Position{Commit: cmd.SourcePosition.Commit, Change: cmd.SourcePosition.Change}
	ev.DPSAlertID = deref(cmd.DPSAlertID)
	if cmd.NOMISBookingID != nil && cmd.NOMISAlertSeq != nil {
		ev.NOMISAlert = strconv.FormatInt(*cmd.NOMISBookingID, 10) + ":" + strconv.Itoa(int(*cmd.NOMISAlertSeq))
	}
	ev.Reason = deref(cmd.Reason)
	ev.Changes, ev.image = diff(stateFields(cmd.Before), stateFields(cmd.After)), imagesOf(cmd.Before != nil, cmd.After != nil)
	if cmd.Kind == rules.KindReplacePrisoner {
		ev.Alerts = make([]AlertRef, 0, len(cmd.Alerts))
		for _, a := range cmd.Alerts {
			ref := AlertRef{DPSAlertID: deref(a.DPSAlertID), Code: a.State.Code, Status: a.State.Status.String(), ActiveFrom: a.State.ActiveFrom.String()}
			if a.NOMISBookingID != nil && a.NOMISAlertSeq != nil {
				ref.NOMISAlert = strconv.FormatInt(*a.NOMISBookingID, 10) + ":" + strconv.Itoa(int(*a.NOMISAlertSeq))
			}
			if a.State.ActiveTo != nil {
				ref.ActiveTo = a.State.ActiveTo.String()
			}
			ev.Alerts = append(ev.Alerts, ref)
		}
	}
	return nil
}

func stateFields(s *rules.AlertState) []fieldValue {
	if s == nil {
		return nil
	}
	return []fieldValue{
		safe("code", &s.Code),
		safe("type_code", &s.TypeCode),
		safe("active_from", ptr(s.ActiveFrom.String())),
		safe("active_to", optRulesDate(s.ActiveTo)),
		safe("status", ptr(s.Status.String())),
		safe("prison_code", s.PrisonCode),
		personal("description", s.Description),
		personal("authorised_by", s.AuthorisedBy),
	}
}

func outcome(ev *Event, value any) error {
	v := asRecord(value)
	r := fieldReader{m: v}
	ev.Kind = KindOutcome
	ev.CommandID = r.str("command_id")
	ev.Target = r.str("target")
	ev.Op = r.str("outcome")
	ev.PrisonNumber = r.str("prison_number")
	ev.Reason, _ = schemas.GetOpt[string](v, "reason")
	ev.DPSAlertID, _ = schemas.GetOpt[string](v, "dps_alert_id")
	book, okB := schemas.GetOpt[int64](v, "nomis_booking_id")
	seq, okS := schemas.GetOpt[int32](v, "nomis_alert_seq")
	if okB && okS {
		ev.NOMISAlert = strconv.FormatInt(book, 10) + ":" + strconv.Itoa(int(seq))
	}
	if p, ok := schemas.Get[map[string]any](v, "source_position"); ok {
		pr := fieldReader{m: p, path: "source_position."}
		ev.Position = &Position{Commit: pr.long("commit"), Change: pr.long("change")}
		r.err = cmp.Or(r.err, pr.err)
	} else {
		r.fail("source_position")
	}
	return r.err
}

func dlqEntry(ev *Event, headers map[string]string, value any) error {
	v := asRecord(value)
	r := fieldReader{m: v}
	ev.Kind = KindDLQ
	ev.Stage = r.str("stage")
	ev.ErrorKind = r.str("error_kind")
	ev.Op = ev.ErrorKind
	ev.Original = r.str("topic") + "/" + strconv.Itoa(int(r.int("partition"))) + "/" + strconv.FormatInt(r.long("offset"), 10)
	// The error text may quote what a database said about the record: it is
	// never read.
	ev.Attempt, _ = schemas.Get[int32](v, "attempt")
	ev.Held, _ = schemas.Get[bool](v, "held")
	ev.HeldBehind, _ = schemas.GetOpt[string](v, "held_behind")
	ev.AlertKey, _ = schemas.GetOpt[string](v, "alert_key")
	ev.Reason = headers[transform.HeaderReason]
	k, prison := parseAlertKey(ev.AlertKey)
	ev.PrisonNumber = prison
	ev.setKey(k)
	return r.err
}

// setSource fills the commit time, sync flag, origin and position of a
// change from its source block.
func (e *Event) setSource(src rules.Source, value any) {
	e.Time, e.TimeOf = Time{src.CommitTime.UTC()}, TimeCommit
	sync := src.Sync
	e.Sync = &sync
	e.Position = &Position{Commit: src.Position.Commit, Change: src.Position.Change}
	if s, ok := schemas.Get[map[string]any](asRecord(value), "source"); ok {
		e.Origin, _ = schemas.GetOpt[string](s, "origin")
	}
}

// identOf returns what a record of topic base names, reading its decoded
// key and value leniently (either may be nil or of another shape): it only
// links events, and serves records that could not be fully read.
func identOf(base string, key, value any) ident {
	k, v := asRecord(key), asRecord(value)
	var id ident
	switch base {
	case schemas.TopicNOMISOffenderAlerts:
		var group []alertKey
		if b, ok := schemas.Get[int64](k, "offender_book_id"); ok {
			if s, ok := schemas.Get[int32](k, "alert_seq"); ok {
				group = append(group, nomisKey(b, s))
				id.bookings = append(id.bookings, b)
			}
		}
		for _, img := range []string{"after", "before"} {
			if row, ok := schemas.GetOpt[map[string]any](v, img); ok {
				b, ok1 := schemas.Get[int64](row, "offender_book_id")
				s, ok2 := schemas.Get[int32](row, "alert_seq")
				if ok1 && ok2 {
					group = append(group, nomisKey(b, s))
					id.bookings = append(id.bookings, b)
				}
			}
		}
		if ctx, ok := schemas.GetOpt[map[string]any](v, "context"); ok {
			p, _ := schemas.GetOpt[string](ctx, "offender_no")
			id.addPrison(p)
			if d, ok := schemas.GetOpt[string](ctx, "dps_alert_id"); ok {
				group = append(group, dpsKey(d))
			}
		}
		id.addAlert(group)
	case schemas.TopicDPSAlert:
		var group []alertKey
		if i, ok := schemas.Get[string](k, "id"); ok {
			group = append(group, dpsKey(i))
		}
		for _, img := range []string{"after", "before"} {
			if row, ok := schemas.GetOpt[map[string]any](v, img); ok {
				if i, ok := schemas.Get[string](row, "id"); ok {
					group = append(group, dpsKey(i))
				}
				// Both images: an update can move the alert to
				// another prisoner, whose history it belongs to too.
				if p, ok := schemas.Get[string](row, "prison_number"); ok {
					id.addPrison(p)
				}
			}
		}
		id.addAlert(group)
	case schemas.TopicNOMISPrisonerAlerts:
		if p, ok := schemas.Get[string](v, "offender_no"); ok {
			id.addPrison(p)
		}
		if p, ok := schemas.Get[string](k, "offender_no"); ok {
			id.addPrison(p)
		}
		books, _ := schemas.Get[[]any](v, "booking_ids")
		for _, b := range books {
			if n, ok := b.(int64); ok {
				id.bookings = append(id.bookings, n)
			}
		}
		alerts, _ := schemas.Get[[]any](v, "alerts")
		for _, a := range alerts {
			am := asRecord(a)
			var group []alertKey
			if row, ok := schemas.Get[map[string]any](am, "row"); ok {
				b, ok1 := schemas.Get[int64](row, "offender_book_id")
				s, ok2 := schemas.Get[int32](row, "alert_seq")
				if ok1 && ok2 {
					group = append(group, nomisKey(b, s))
				}
			}
			if d, ok := schemas.GetOpt[string](am, "dps_alert_id"); ok {
				group = append(group, dpsKey(d))
			}
			id.addAlert(group)
		}
	case schemas.TopicCommandsDPS, schemas.TopicCommandsNOMIS, schemas.TopicOutcomes:
		if p, ok := schemas.Get[string](v, "prison_number"); ok {
			id.addPrison(p)
		}
		if p, ok := schemas.Get[string](k, "prison_number"); ok {
			id.addPrison(p)
		}
		id.commandID, _ = schemas.Get[string](v, "command_id")
		id.addAlert(idsGroup(v))
		alerts, _ := schemas.Get[[]any](v, "alerts")
		for _, a := range alerts {
			id.addAlert(idsGroup(asRecord(a)))
		}
	case schemas.TopicDLQ:
		rk, _ := schemas.Get[string](k, "routing_key")
		ak, _ := schemas.GetOpt[string](v, "alert_key")
		for _, s := range []string{rk, ak} {
			key, prison := parseAlertKey(s)
			if key != "" {
				id.addAlert([]alertKey{key})
			}
			id.addPrison(prison)
		}
	}
	for _, g := range id.alerts {
		for _, k := range g {
			if b, ok := k.booking(); ok {
				id.bookings = append(id.bookings, b)
			}
		}
	}
	slices.Sort(id.bookings)
	id.bookings = slices.Compact(id.bookings)
	return id
}

// idsGroup returns the alert keys of a record with the fields dps_alert_id,
// nomis_booking_id and nomis_alert_seq (commands, their snapshot alerts,
// outcomes).
func idsGroup(m map[string]any) []alertKey {
	var group []alertKey
	if d, ok := schemas.GetOpt[string](m, "dps_alert_id"); ok {
		group = append(group, dpsKey(d))
	}
	b, ok1 := schemas.GetOpt[int64](m, "nomis_booking_id")
	s, ok2 := schemas.GetOpt[int32](m, "nomis_alert_seq")
	if ok1 && ok2 {
		group = append(group, nomisKey(b, s))
	}
	return group
}

func (id *ident) addAlert(group []alertKey) {
	slices.Sort(group)
	group = slices.Compact(group)
	if len(group) > 0 {
		id.alerts = append(id.alerts, group)
	}
}

// merge adds what o names to id (a DLQ entry and its original record).
func (id *ident) merge(o ident) {
	for _, p := range o.prisons {
		id.addPrison(p)
	}
	if id.commandID == "" {
		id.commandID = o.commandID
	}
	id.alerts = append(id.alerts, o.alerts...)
	id.bookings = slices.Compact(slices.Sorted(slices.Values(append(id.bookings, o.bookings...))))
}

func (id *ident) empty() bool {
	return len(id.prisons) == 0 && len(id.alerts) == 0 && len(id.bookings) == 0 && id.commandID == ""
}

// fieldValue is a field of an alert image. The value of a personal field is
// only compared, never copied into a Change.
type fieldValue struct {
	name     string
	v        *string
	personal bool
}

func safe(name string, v *string) fieldValue     { return fieldValue{name: name, v: v} }
func personal(name string, v *string) fieldValue { return fieldValue{name: name, v: v, personal: true} }

// diff returns the changes from the fields of the before image to those of
// the after image (either nil): for a create, the fields set; for an
// update, the fields that differ; for a delete, the safe fields it had
// (From). A personal field is named, without its value, when a create sets
// it or an update changes it; a delete does not name it.
func diff(before, after []fieldValue) []Change {
	var out []Change
	switch {
	case before == nil && after == nil:
		return nil
	case before == nil:
		for _, f := range after {
			if f.v == nil {
				continue
			}
			if f.personal {
				out = append(out, Change{Field: f.name, Personal: true})
			} else {
				out = append(out, Change{Field: f.name, To: ptr(*f.v)})
			}
		}
	case after == nil:
		for _, f := range before {
			if f.v != nil && !f.personal {
				out = append(out, Change{Field: f.name, From: ptr(*f.v)})
			}
		}
	default:
		for _, a := range after {
			i := slices.IndexFunc(before, func(b fieldValue) bool { return b.name == a.name })
			var b *string
			if i >= 0 {
				b = before[i].v
			}
			if equalOpt(b, a.v) {
				continue
			}
			if a.personal {
				out = append(out, Change{Field: a.name, Personal: true})
			} else {
				out = append(out, Change{Field: a.name, From: copyOpt(b), To: copyOpt(a.v)})
			}
		}
	}
	return out
}

// timeFormat is RFC 3339 in UTC with milliseconds, the time format of the
// output.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// date returns the calendar date of a NOMIS DATE (an instant of its wall
// clock in c.loc).
func (c *converter) date(t time.Time) string { return t.In(c.loc).Format(time.DateOnly) }

func (c *converter) optDate(t *time.Time) *string {
	if t == nil {
		return nil
	}
	return ptr(c.date(*t))
}

func optRulesDate(d *rules.Date) *string {
	if d == nil {
		return nil
	}
	return ptr(d.String())
}

func opName(op rules.Op) string {
	switch op {
	case rules.OpCreate:
		return "create"
	case rules.OpUpdate:
		return "update"
	case rules.OpDelete:
		return "delete"
	case rules.OpRead:
		return "read"
	case rules.OpTruncate:
		return "truncate"
	}
	return "op " + strconv.Quote(op.String())
}

// fieldReader reads required fields of a decoded record and keeps the
// first error, which names the field and never its value.
type fieldReader struct {
	m    map[string]any
	path string
	err  error
}

func (r *fieldReader) fail(name string) {
	if r.err == nil {
		r.err = fmt.Errorf("field %s%s is missing or of another type", r.path, name)
	}
}

func (r *fieldReader) str(name string) string {
	v, ok := schemas.Get[string](r.m, name)
	if !ok {
		r.fail(name)
	}
	return v
}

func (r *fieldReader) long(name string) int64 {
	v, ok := schemas.Get[int64](r.m, name)
	if !ok {
		r.fail(name)
	}
	return v
}

func (r *fieldReader) int(name string) int32 {
	v, ok := schemas.Get[int32](r.m, name)
	if !ok {
		r.fail(name)
	}
	return v
}

func asRecord(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func ptr[T any](v T) *T { return &v }

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func copyOpt(p *string) *string {
	if p == nil {
		return nil
	}
	return ptr(*p)
}

func equalOpt(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
