package apply

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/alertsync/alertsync/transform/rules"
)

// The outbox holds one row per apply transaction: every outcome (and DLQ
// entry) of the batch in one payload, written by EncodeOutbox in the same
// transaction as the writes and the fenced offsets, published by the relay
// and then deleted. One row per batch instead of one per command halves
// the apply's own writes (measured by `make bench`, apply.dps): the
// outcomes are bookkeeping for the relay, not a table to query; their
// record of history is the alertsync.outcomes topic.
//
// Payload format, version 1: the byte 1, the number of rows (uvarint), then
// per row its fields in the order of encodeRow. Strings and byte strings
// are a uvarint length and the bytes; an optional field is a presence
// byte (0 absent, 1 present) and the value; integers are zig-zag varints; a
// time is its Unix microseconds. A reader refuses any other version, so a
// format change adds a version rather than reinterpreting old payloads.

// outboxVersion is the payload format EncodeOutbox writes.
const outboxVersion = 1

// maxOutboxRows bounds the row count a payload may claim (a corrupt count
// must not make DecodeOutbox allocate without limit).
const maxOutboxRows = 1 << 20

// OutboxBatch is one outbox row: the outcomes of one apply transaction.
type OutboxBatch struct {
	ID        int64
	CreatedAt time.Time // the transaction's time: AppliedAt of its rows
	Rows      []OutboxRow
}

// DLQReason is why a command goes to the DLQ: its error kind ("decode",
// "refused", "held"), the error text (keys and codes only, never an alert's
// description), and for a held command the command it waits behind.
type DLQReason struct {
	Kind, Error string
	HeldBehind  *string
}

// UndecodableID names the outcome of a record that could not be decoded,
// and so has no command id, by its place in the topic.
func UndecodableID(c *Cmd) string {
	return "undecodable:" + c.Record.Topic + "/" + strconv.Itoa(int(c.Record.Partition)) + "/" + strconv.FormatInt(c.Record.Offset, 10)
}

// OutboxRowOf is the outbox row of command c with outcome o: with its DLQ
// entry (the record as consumed, and alertKey, its hold key, when not
// empty) when d is not nil. The DPS alert id is the outcome's, else the
// command's.
func OutboxRowOf(c *Cmd, o Outcome, d *DLQReason, alertKey string) OutboxRow {
	r := OutboxRow{CommandID: c.ID, Result: o.Result, PrisonNumber: c.PrisonNumber, Origin: c.Origin,
		NOMISBookingID: c.NOMISBookingID, NOMISAlertSeq: c.NOMISAlertSeq,
		SourcePosition: c.SourcePosition, SourceCommitTime: c.SourceCommitTime}
	if r.CommandID == "" {
		r.CommandID = UndecodableID(c)
	}
	if o.Reason != "" {
		reason := o.Reason
		r.Reason = &reason
	}
	switch {
	case o.DPSAlertID != "":
		id := o.DPSAlertID
		r.DPSAlertID = &id
	case c.Err == nil && c.DPSAlertID != nil:
		r.DPSAlertID = c.DPSAlertID
	}
	if d != nil {
		r.DLQ = &DLQEntry{Topic: c.Record.Topic, Partition: c.Record.Partition, Offset: c.Record.Offset,
			Key: c.Record.Key, Value: c.Record.Value, ErrorKind: d.Kind, Error: d.Error, HeldBehind: d.HeldBehind}
		if alertKey != "" {
			k := alertKey
			r.DLQ.AlertKey = &k
		}
	}
	return r
}

// EncodeOutbox returns the payload of an outbox row holding rows (their ID
// and AppliedAt are not kept: the outbox row has its own).
func EncodeOutbox(rows []OutboxRow) []byte {
	b := make([]byte, 0, 64+len(rows)*160)
	b = append(b, outboxVersion)
	b = binary.AppendUvarint(b, uint64(len(rows)))
	for i := range rows {
		b = encodeRow(b, &rows[i])
	}
	return b
}

func encodeRow(b []byte, r *OutboxRow) []byte {
	b = appendString(b, r.CommandID)
	b = appendString(b, string(r.Result))
	b = appendOptString(b, r.Reason)
	b = appendString(b, r.PrisonNumber)
	b = appendOptString(b, r.DPSAlertID)
	if b = appendPresent(b, r.NOMISBookingID != nil); r.NOMISBookingID != nil {
		b = binary.AppendVarint(b, *r.NOMISBookingID)
	}
	if b = appendPresent(b, r.NOMISAlertSeq != nil); r.NOMISAlertSeq != nil {
		b = binary.AppendVarint(b, int64(*r.NOMISAlertSeq))
	}
	b = binary.AppendVarint(b, int64(r.Origin))
	b = binary.AppendVarint(b, r.SourcePosition.Commit)
	b = binary.AppendVarint(b, r.SourcePosition.Change)
	if b = appendPresent(b, !r.SourceCommitTime.IsZero()); !r.SourceCommitTime.IsZero() {
		b = binary.AppendVarint(b, r.SourceCommitTime.UnixMicro())
	}
	d := r.DLQ
	if b = appendPresent(b, d != nil); d == nil {
		return b
	}
	b = appendString(b, d.Topic)
	b = binary.AppendVarint(b, int64(d.Partition))
	b = binary.AppendVarint(b, d.Offset)
	b = appendOptBytes(b, d.Key)
	b = appendOptBytes(b, d.Value)
	b = appendString(b, d.ErrorKind)
	b = appendString(b, d.Error)
	b = appendOptString(b, d.HeldBehind)
	return appendOptString(b, d.AlertKey)
}

func appendPresent(b []byte, ok bool) []byte {
	if ok {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendOptString(b []byte, s *string) []byte {
	if b = appendPresent(b, s != nil); s != nil {
		b = appendString(b, *s)
	}
	return b
}

func appendOptBytes(b []byte, p []byte) []byte {
	if b = appendPresent(b, p != nil); p != nil {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	return b
}

// ErrOutboxPayload is wrapped by DecodeOutbox's errors: the payload is not
// one EncodeOutbox wrote.
var ErrOutboxPayload = errors.New("malformed outbox payload")

// DecodeOutbox returns the rows of an outbox payload.
func DecodeOutbox(payload []byte) ([]OutboxRow, error) {
	d := outboxReader{b: payload}
	if v := d.byte(); d.err == nil && v != outboxVersion {
		return nil, fmt.Errorf("%w: version %d, this build reads %d", ErrOutboxPayload, v, outboxVersion)
	}
	n := d.uvarint()
	if d.err == nil && (n > maxOutboxRows || n > uint64(len(d.b))) {
		return nil, fmt.Errorf("%w: %d rows in %d bytes", ErrOutboxPayload, n, len(payload))
	}
	rows := make([]OutboxRow, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		rows = append(rows, d.row())
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%d bytes after the last row", len(d.b))
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOutboxPayload, d.err)
	}
	return rows, nil
}

// outboxReader reads a payload; the first problem sticks in err and every
// later read returns a zero value.
type outboxReader struct {
	b   []byte
	err error
}

func (d *outboxReader) fail(what string) {
	if d.err == nil {
		d.err = errors.New("truncated or invalid " + what)
	}
	d.b = nil
}

func (d *outboxReader) byte() byte {
	if len(d.b) == 0 {
		d.fail("byte")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *outboxReader) present() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail("presence byte")
	return false
}

func (d *outboxReader) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("length")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *outboxReader) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("integer")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *outboxReader) int32() int32 {
	v := d.varint()
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.fail("32-bit integer")
		return 0
	}
	return int32(v)
}

func (d *outboxReader) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("byte string")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *outboxReader) string() string {
	p := d.bytes()
	if !utf8.Valid(p) {
		d.fail("string")
		return ""
	}
	return string(p)
}

func (d *outboxReader) optString() *string {
	if !d.present() {
		return nil
	}
	s := d.string()
	return &s
}

func (d *outboxReader) optBytes() []byte {
	if !d.present() {
		return nil
	}
	return append([]byte{}, d.bytes()...)
}

func (d *outboxReader) row() OutboxRow {
	var r OutboxRow
	r.CommandID = d.string()
	r.Result = Result(d.string())
	r.Reason = d.optString()
	r.PrisonNumber = d.string()
	r.DPSAlertID = d.optString()
	if d.present() {
		v := d.varint()
		r.NOMISBookingID = &v
	}
	if d.present() {
		v := d.int32()
		r.NOMISAlertSeq = &v
	}
	if origin := d.varint(); origin >= math.MinInt8 && origin <= math.MaxInt8 {
		r.Origin = rules.Side(origin)
	} else {
		d.fail("origin")
	}
	r.SourcePosition.Commit = d.varint()
	r.SourcePosition.Change = d.varint()
	if d.present() {
		r.SourceCommitTime = time.UnixMicro(d.varint()).UTC()
	}
	if !d.present() {
		return r
	}
	e := DLQEntry{Topic: d.string(), Partition: d.int32(), Offset: d.varint(), Key: d.optBytes(), Value: d.optBytes(),
		ErrorKind: d.string(), Error: d.string(), HeldBehind: d.optString(), AlertKey: d.optString()}
	r.DLQ = &e
	return r
}
