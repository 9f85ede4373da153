package decode

import (
	"strconv"
	"time"

	"github.com/alertsync/alertsync/internal/avrobin"
	"github.com/alertsync/alertsync/transform/rules"
)

// The Fast decoders read the Avro binary body of a record (the payload
// without its 5-byte wire-format header) straight into the rules types,
// without goavro's native maps. They know one writer schema per topic: the
// current one of package schemas, with its field order hard-coded below
// (TestFastLayout fails when the .avsc files change). The caller uses them
// only for records whose schema id is the id registered for that schema;
// records of other writer schemas go through schemas.Codec and NOMISAlert,
// DPSAlert or NOMISSnapshot.
//
// For every body goavro decodes, a Fast decoder returns what the map-based
// function returns for goavro's decoding: the same value, ErrTombstone or
// *Error. A body goavro refuses (truncated, a bad union or enum index, a
// boolean byte other than 0 or 1, bytes after the record, an array block of
// more than 65536 items) is an *Error naming the field path where reading
// stopped, e.g. "after.comment_text", "key" or "value" (bytes left over).
// One difference is deliberate: goavro silently wraps a varint longer than
// 10 bytes, or an int beyond 32 bits, where these decoders refuse it
// (avrobin.ErrOverflow), as the Avro specification and Java's decoder do;
// no Avro writer produces one.
//
// Only a nil value is a tombstone: schemas.Codec.Decode also treats an empty
// payload as one, so the caller maps an empty Kafka value to nil before
// calling; an empty non-nil body is malformed, as for goavro.
//
// Strings of the result are substrings of one copy of value, made once per
// record; optional values live in one allocation per change record. The
// inputs are not retained.

// maxBlockCount is the largest array block the Fast decoders accept: the
// value package schemas gives goavro.MaxBlockCount, so that both paths
// refuse the same records.
const maxBlockCount = 1 << 16

// minAlertBytes is the fewest bytes a prisoner_alerts Alert item takes (two
// longs, a union index and a row of 25 one-byte fields): it bounds the
// capacity reserved for a block's count.
const minAlertBytes = 28

// reasonSymbols are the symbols of alertsync.nomis.alertsync.prisoner_alerts.Reason,
// by index.
var reasonSymbols = [...]string{"UNKNOWN", "INITIAL_LOAD", "NEW_BOOKING", "BOOKING_SWITCHED", "BOOKING_MOVED", "BOOKING_REMOVED", "MERGE", "BOOKING_COPY", "REDRIVE"}

// FastNOMISAlert returns the change of a nomis.oms_owner.offender_alerts
// record from the Avro binary bodies of its key and value, written with the
// current schemas. A nil value (a tombstone; the key is not read) returns
// ErrTombstone; a malformed body, a key naming another alert than an image,
// or an op other than one letter, an *Error. See NOMISAlert.
func FastNOMISAlert(key, value []byte) (rules.NOMISAlertChange, error) {
	var d fastDecoder
	return d.nomisAlert(key, value)
}

// FastDPSAlert returns the change of a dps.public.alert record from the Avro
// binary bodies of its key and value, written with the current schemas. A
// nil value (a tombstone; the key is not read) returns ErrTombstone; a
// malformed body, a key naming another alert than an image, or an op other
// than one letter, an *Error. User is left nil. See DPSAlert.
func FastDPSAlert(key, value []byte) (rules.DPSAlertChange, error) {
	var d fastDecoder
	return d.dpsAlert(key, value)
}

// FastNOMISSnapshot returns the snapshot of a nomis.alertsync.prisoner_alerts
// record from the Avro binary bodies of its key and value, written with the
// current schemas. A nil value (a tombstone; the key is not read) returns
// ErrTombstone; a malformed body or a key naming another prisoner, an
// *Error. Alerts is empty (not nil) for a snapshot without alerts. See
// NOMISSnapshot.
func FastNOMISSnapshot(key, value []byte) (rules.NOMISSnapshot, error) {
	var d fastDecoder
	return d.nomisSnapshot(key, value)
}

// nomisArena holds the pointed-to parts of one NOMIS change: one allocation.
type nomisArena struct {
	rows    [2]rules.NOMISAlertRow
	session rules.NOMISSession
	context rules.NOMISContext
	seq     int32
	strs    [2*5 + 3 + 2]string // 5 optional strings per row, session, context
	times   [2 * 2]time.Time    // 2 optional timestamps per row
}

// dpsArena holds the pointed-to parts of one DPS change: one allocation.
type dpsArena struct {
	rows  [2]dpsRowArena
	strs  [2 * 3]string    // 3 optional strings per row
	times [2 * 2]time.Time // 2 optional timestamps per row
}

type dpsRowArena struct {
	row      rules.DPSAlertRow
	activeTo rules.Date
}

// slab hands out pointers to values of T from a block, so that a record's
// optional values share allocations. Pointers handed out stay valid.
type slab[T any] struct{ free []T }

// slabChunk is the block size a slab allocates when its block runs out.
const slabChunk = 16

func (s *slab[T]) put(v T) *T {
	if len(s.free) == 0 {
		s.free = make([]T, slabChunk)
	}
	p := &s.free[0]
	*p = v
	s.free = s.free[1:]
	return p
}

// scope is the path of the record being read, rendered only for errors:
// outer[item-1].inner, e.g. "after", "source.position", "alerts[3].row".
type scope struct {
	outer string // field of the root: "", "key", "after", "source", "alerts"
	item  int    // index+1 of the array item of outer; 0 for none
	inner string // record field inside outer (or its item): "", "position", "row"
}

// child returns the scope of record field name. Records nest at most two
// deep under the root.
func (s scope) child(name string) scope {
	switch {
	case s.outer == "":
		s.outer = name
	case s.inner == "":
		s.inner = name
	default:
		s.inner += "." + name
	}
	return s
}

// field returns the path of field name (or of the scope itself for "").
func (s scope) field(name string) string {
	p := s.outer
	if s.item > 0 {
		p += "[" + strconv.Itoa(s.item-1) + "]"
	}
	if s.inner != "" {
		p += "." + s.inner
	}
	switch {
	case name == "":
		return p
	case p == "":
		return name
	}
	return p + "." + name
}

// fastDecoder reads one record. It keeps the first error, so that a mapping
// reads as a list of fields and checks once; after an error every read
// returns a zero value.
type fastDecoder struct {
	r     avrobin.Reader
	body  string // value as a string: kept strings are substrings of it
	scope scope
	err   *Error
	cause error // the avrobin error behind err
	strs  slab[string]
	times slab[time.Time]
	// trace, when set (by tests), is called with the path of each field as
	// it is read, skipped fields included.
	trace func(path string)
}

func (d *fastDecoder) fail(name string, err error) {
	if d.err == nil {
		d.err = &Error{Stage: rules.StageTransform, Field: d.scope.field(name), Msg: err.Error()}
		d.cause = err
	}
}

// field starts reading field name; false after an error.
func (d *fastDecoder) field(name string) bool {
	if d.err == nil && d.trace == nil {
		return true
	}
	return d.fieldSlow(name)
}

func (d *fastDecoder) fieldSlow(name string) bool {
	if d.err != nil {
		return false
	}
	d.trace(d.scope.field(name))
	return true
}

// startKey and startValue point the decoder at the key or value body.
func (d *fastDecoder) startKey(key []byte) {
	d.r.Reset(key)
	d.scope = scope{outer: "key"}
}

func (d *fastDecoder) startValue(value []byte) {
	d.body = string(value)
	d.r.Reset(value)
	d.scope = scope{}
}

// end checks that the key or value (name) was read to its last byte.
func (d *fastDecoder) end(name string) {
	if d.err != nil {
		return
	}
	if err := d.r.Done(); err != nil {
		d.scope = scope{}
		d.fail(name, err)
	}
}

func (d *fastDecoder) long(name string) int64 {
	if !d.field(name) {
		return 0
	}
	v, err := d.r.Long()
	if err != nil {
		d.fail(name, err)
	}
	return v
}

func (d *fastDecoder) int(name string) int32 {
	if !d.field(name) {
		return 0
	}
	v, err := d.r.Int()
	if err != nil {
		d.fail(name, err)
	}
	return v
}

func (d *fastDecoder) boolean(name string) bool {
	if !d.field(name) {
		return false
	}
	v, err := d.r.Bool()
	if err != nil {
		d.fail(name, err)
	}
	return v
}

// timestamp reads a timestamp-micros as goavro does: time.Unix of the
// seconds and the rest, in UTC.
func (d *fastDecoder) timestamp(name string) time.Time {
	return time.UnixMicro(d.long(name)).UTC()
}

// str reads a string of the value as a substring of d.body.
func (d *fastDecoder) str(name string) string {
	if !d.field(name) {
		return ""
	}
	return d.rawStr(name)
}

func (d *fastDecoder) rawStr(name string) string {
	start, end, err := d.r.Span()
	if err != nil {
		d.fail(name, err)
		return ""
	}
	return d.body[start:end]
}

// bytes reads a string as a slice of the input, for values only compared.
func (d *fastDecoder) bytes(name string) []byte {
	if !d.field(name) {
		return nil
	}
	b, err := d.r.Bytes()
	if err != nil {
		d.fail(name, err)
	}
	return b
}

func (d *fastDecoder) enum(name string, symbols []string) string {
	if !d.field(name) {
		return ""
	}
	i, err := d.r.Index(len(symbols))
	if err != nil {
		d.fail(name, err)
		return ""
	}
	return symbols[i]
}

func (d *fastDecoder) skipLong(name string) {
	if d.field(name) {
		if err := d.r.SkipLong(); err != nil {
			d.fail(name, err)
		}
	}
}

func (d *fastDecoder) skipStr(name string) {
	if d.field(name) {
		if err := d.r.SkipBytes(); err != nil {
			d.fail(name, err)
		}
	}
}

// opt reads the branch of a ["null", T] union field: true for T.
func (d *fastDecoder) opt(name string) bool {
	if !d.field(name) {
		return false
	}
	i, err := d.r.Index(2)
	if err != nil {
		d.fail(name, err)
		return false
	}
	return i == 1
}

func (d *fastDecoder) optStr(name string) *string {
	if !d.opt(name) {
		return nil
	}
	s := d.rawStr(name)
	if d.err != nil {
		return nil
	}
	return d.strs.put(s)
}

func (d *fastDecoder) optTime(name string) *time.Time {
	if !d.opt(name) {
		return nil
	}
	v, err := d.r.Long()
	if err != nil {
		d.fail(name, err)
		return nil
	}
	return d.times.put(time.UnixMicro(v).UTC())
}

// optInt reads a ["null", "int"] field into *dst.
func (d *fastDecoder) optInt(name string, dst *int32) *int32 {
	if !d.opt(name) {
		return nil
	}
	v, err := d.r.Int()
	if err != nil {
		d.fail(name, err)
		return nil
	}
	*dst = v
	return dst
}

// optDate reads a ["null", date] field into *dst.
func (d *fastDecoder) optDate(name string, dst *rules.Date) *rules.Date {
	if !d.opt(name) {
		return nil
	}
	v, err := d.r.Int()
	if err != nil {
		d.fail(name, err)
		return nil
	}
	*dst = rules.Date(v)
	return dst
}

func (d *fastDecoder) skipOptLong(name string) {
	if d.opt(name) {
		if err := d.r.SkipLong(); err != nil {
			d.fail(name, err)
		}
	}
}

func (d *fastDecoder) skipOptStr(name string) {
	if d.opt(name) {
		if err := d.r.SkipBytes(); err != nil {
			d.fail(name, err)
		}
	}
}

// skipLongs reads and drops an array of longs.
func (d *fastDecoder) skipLongs(name string) {
	if !d.field(name) {
		return
	}
	for {
		n, err := d.r.BlockCount(maxBlockCount)
		if err != nil {
			d.fail(name, err)
			return
		}
		if n == 0 {
			return
		}
		for range n {
			if err := d.r.SkipLong(); err != nil {
				d.fail(name, err)
				return
			}
		}
	}
}

// enter makes s the current scope and returns the one to restore.
func (d *fastDecoder) enter(s scope) scope {
	prev := d.scope
	d.scope = s
	return prev
}

// position reads field name, an alertsync.Position record.
func (d *fastDecoder) position(name string) rules.Position {
	if !d.field(name) {
		return rules.Position{}
	}
	prev := d.enter(d.scope.child(name))
	p := rules.Position{Commit: d.long("commit"), Change: d.long("change")}
	d.scope = prev
	return p
}

// source reads the value's alertsync.Source record.
func (d *fastDecoder) source() rules.Source {
	if !d.field("source") {
		return rules.Source{}
	}
	prev := d.enter(d.scope.child("source"))
	d.skipStr("version")
	d.skipStr("connector")
	d.skipStr("name")
	ms := d.long("ts_ms")
	d.skipStr("snapshot")
	d.skipStr("db")
	d.skipStr("schema")
	d.skipStr("table")
	d.skipOptStr("txId")
	pos := d.position("position")
	d.skipOptLong("lsn")
	d.skipOptStr("origin")
	sync := d.boolean("sync")
	d.scope = prev
	return rules.Source{Position: pos, CommitTime: time.UnixMilli(ms).UTC(), Sync: sync}
}

// op checks the op read as the map-based decoders do, after the record
// decoded.
func op(b []byte) (rules.Op, *Error) {
	if len(b) != 1 {
		return 0, shapeErr("op", "has %d bytes, want one letter", len(b))
	}
	return rules.Op(b[0]), nil
}

func (d *fastDecoder) nomisAlert(key, value []byte) (rules.NOMISAlertChange, error) {
	if value == nil {
		return rules.NOMISAlertChange{}, tombstone(nil, "offender_alerts")
	}
	a := new(nomisArena)
	d.strs.free, d.times.free = a.strs[:], a.times[:]

	d.startKey(key)
	book, seq := d.long("offender_book_id"), d.int("alert_seq")
	d.end("key")

	d.startValue(value)
	var ch rules.NOMISAlertChange
	if d.opt("before") {
		ch.Before = d.nomisImage("before", &a.rows[0])
	}
	if d.opt("after") {
		ch.After = d.nomisImage("after", &a.rows[1])
	}
	ch.Source = d.source()
	opBytes := d.bytes("op")
	d.skipLong("ts_ms")
	if d.opt("session") {
		prev := d.enter(d.scope.child("session"))
		a.session = rules.NOMISSession{
			Module:         d.optStr("module"),
			AdditionalInfo: d.optStr("additional_info"),
			User:           d.optStr("user"),
		}
		d.scope = prev
		ch.Session = &a.session
	}
	if d.opt("context") {
		prev := d.enter(d.scope.child("context"))
		a.context = rules.NOMISContext{
			OffenderNo: d.optStr("offender_no"),
			BookingSeq: d.optInt("booking_seq", &a.seq),
			DPSAlertID: d.optStr("dps_alert_id"),
		}
		d.scope = prev
		ch.Context = &a.context
	}
	d.end("value")
	if d.err != nil {
		return rules.NOMISAlertChange{}, d.err
	}

	var err *Error
	if ch.Op, err = op(opBytes); err != nil {
		return rules.NOMISAlertChange{}, err
	}
	other := func(row *rules.NOMISAlertRow) bool {
		return row != nil && (row.OffenderBookID != book || row.AlertSeq != seq)
	}
	switch {
	case other(ch.Before):
		return rules.NOMISAlertChange{}, shapeErr("key", "names another alert than the before image")
	case other(ch.After):
		return rules.NOMISAlertChange{}, shapeErr("key", "names another alert than the after image")
	}
	return ch, nil
}

// nomisImage reads the before or after row (name) into row.
func (d *fastDecoder) nomisImage(name string, row *rules.NOMISAlertRow) *rules.NOMISAlertRow {
	prev := d.enter(d.scope.child(name))
	d.nomisRow(row)
	d.scope = prev
	return row
}

// nomisRow reads an alertsync.nomis.oms_owner.offender_alerts.Value record.
func (d *fastDecoder) nomisRow(row *rules.NOMISAlertRow) {
	row.AlertDate = d.timestamp("alert_date")
	row.OffenderBookID = d.long("offender_book_id")
	d.skipOptLong("root_offender_id")
	row.AlertSeq = d.int("alert_seq")
	row.AlertType = d.str("alert_type")
	row.AlertCode = d.str("alert_code")
	row.AuthorizePersonText = d.optStr("authorize_person_text")
	d.skipOptLong("create_date")
	row.AlertStatus = d.str("alert_status")
	d.skipStr("verified_flag")
	row.ExpiryDate = d.optTime("expiry_date")
	row.CommentText = d.optStr("comment_text")
	row.CaseloadID = d.optStr("caseload_id")
	row.ModifyUserID = d.optStr("modify_user_id")
	row.ModifyDatetime = d.optTime("modify_datetime")
	d.skipOptStr("caseload_type")
	row.CreateDatetime = d.timestamp("create_datetime")
	row.CreateUserID = d.str("create_user_id")
	d.skipOptLong("audit_timestamp")
	d.skipOptStr("audit_user_id")
	d.skipOptStr("audit_module_name")
	d.skipOptStr("audit_client_user_id")
	d.skipOptStr("audit_client_ip_address")
	d.skipOptStr("audit_client_workstation_name")
	d.skipOptStr("audit_additional_info")
}

func (d *fastDecoder) dpsAlert(key, value []byte) (rules.DPSAlertChange, error) {
	if value == nil {
		return rules.DPSAlertChange{}, tombstone(nil, "alert")
	}
	a := new(dpsArena)
	d.strs.free, d.times.free = a.strs[:], a.times[:]

	d.startKey(key)
	id := d.bytes("id")
	d.end("key")

	d.startValue(value)
	var ch rules.DPSAlertChange
	if d.opt("before") {
		ch.Before = d.dpsImage("before", &a.rows[0])
	}
	if d.opt("after") {
		ch.After = d.dpsImage("after", &a.rows[1])
	}
	ch.Source = d.source()
	opBytes := d.bytes("op")
	d.skipLong("ts_ms")
	d.end("value")
	if d.err != nil {
		return rules.DPSAlertChange{}, d.err
	}

	var err *Error
	if ch.Op, err = op(opBytes); err != nil {
		return rules.DPSAlertChange{}, err
	}
	if (ch.Before != nil && ch.Before.ID != string(id)) || (ch.After != nil && ch.After.ID != string(id)) {
		return rules.DPSAlertChange{}, shapeErr("key.id", "does not match the image's id")
	}
	return ch, nil
}

// dpsImage reads the before or after alertsync.dps.public.alert.Value
// record (name) into a.
func (d *fastDecoder) dpsImage(name string, a *dpsRowArena) *rules.DPSAlertRow {
	prev := d.enter(d.scope.child(name))
	a.row = rules.DPSAlertRow{
		ID:                    d.str("id"),
		AlertCodeID:           d.long("alert_code_id"),
		PrisonNumber:          d.str("prison_number"),
		Description:           d.optStr("description"),
		AuthorisedBy:          d.optStr("authorised_by"),
		ActiveFrom:            rules.Date(d.int("active_from")),
		ActiveTo:              d.optDate("active_to", &a.activeTo),
		CreatedAt:             d.timestamp("created_at"),
		LastModifiedAt:        d.optTime("last_modified_at"),
		DeletedAt:             d.optTime("deleted_at"),
		PrisonCodeWhenCreated: d.optStr("prison_code_when_created"),
		Version:               d.int("version"),
	}
	d.scope = prev
	return &a.row
}

func (d *fastDecoder) nomisSnapshot(key, value []byte) (rules.NOMISSnapshot, error) {
	if value == nil {
		return rules.NOMISSnapshot{}, tombstone(nil, "prisoner_alerts")
	}
	d.startKey(key)
	keyNo := d.bytes("offender_no")
	d.end("key")

	d.startValue(value)
	s := rules.NOMISSnapshot{
		OffenderNo: d.str("offender_no"),
		Reason:     d.enum("reason", reasonSymbols[:]),
		Source:     d.source(),
	}
	d.skipLong("ts_ms")
	d.skipLongs("booking_ids")
	s.Alerts = d.snapshotAlerts("alerts")
	d.end("value")
	if d.err != nil {
		return rules.NOMISSnapshot{}, d.err
	}
	if string(keyNo) != s.OffenderNo {
		return rules.NOMISSnapshot{}, shapeErr("key.offender_no", "does not match the value's offender_no")
	}
	return s, nil
}

// snapshotAlerts reads the array of Alert records (name): never nil.
func (d *fastDecoder) snapshotAlerts(name string) []rules.NOMISSnapshotAlert {
	if !d.field(name) {
		return nil
	}
	var alerts []rules.NOMISSnapshotAlert
	for {
		n, err := d.r.BlockCount(maxBlockCount)
		if err != nil {
			d.fail(name, err)
			return nil
		}
		if alerts == nil {
			alerts = make([]rules.NOMISSnapshotAlert, 0, min(n, d.r.Len()/minAlertBytes))
		}
		if n == 0 {
			return alerts
		}
		for range n {
			prev := d.enter(scope{outer: name, item: len(alerts) + 1})
			var al rules.NOMISSnapshotAlert
			al.Position = d.position("position")
			al.DPSAlertID = d.optStr("dps_alert_id")
			if d.field("row") {
				d.scope = d.scope.child("row")
				d.nomisRow(&al.Row)
			}
			d.scope = prev
			if d.err != nil {
				return nil
			}
			alerts = append(alerts, al)
		}
	}
}
