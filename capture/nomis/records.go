package nomis

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/alertsync/alertsync/internal/avrobin"
	"github.com/alertsync/alertsync/schemas"
)

// Ops of change records (the envelope's op).
const (
	opCreate = "c"
	opUpdate = "u"
	opDelete = "d"
	opRead   = "r" // a row of the initial load's snapshot
)

// builder turns journal rows into change records: pure, no I/O.
type builder struct {
	tables  map[string]*table
	loc     *time.Location
	version string // alertsync version, in source.version
	db      string // database name, in source.db
}

// change is a journal row decoded against its table.
type change struct {
	row           *JournalRow
	table         *table
	op            string
	before, after row // nil when the op has none
	// request is set for a resync request (table requestTable), which
	// publishes nothing.
	request *ResyncRequest
}

// origin is the source of a record: a journal row, or a snapshot read.
type origin struct {
	pos        JournalKey // source.position (Commit, ID) and commit time
	txID       string
	session    bool // a writing session is known (journal rows): the record carries it
	module     *string
	additional *string
	user       *string
	snapshot   bool // read from a snapshot: source.snapshot "true"
}

// originOf is the origin of the records of a journal row.
func originOf(r *JournalRow) *origin {
	return &origin{pos: JournalKey{ID: r.ID, Commit: r.Commit, CommitTime: r.CommitTime}, txID: r.TxID,
		session: true, module: r.Module, additional: r.AdditionalInfo, user: r.User}
}

// outRecord is one record to produce: a change of table, or its tombstone
// (op "").
type outRecord struct {
	table         *table
	op            string // c, u, d, r; "" for a tombstone
	key           row    // key values (table.keyOf)
	before, after row
	src           *origin
	context       AlertContext // offender_alerts only
}

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_$#]{0,127}$`)

// decode checks and converts a journal row. Errors are *RowError.
func (b *builder) decode(r *JournalRow) (*change, error) {
	if r.Table == TableResyncRequest {
		return decodeRequest(r)
	}
	t, ok := b.tables[r.Table]
	if !ok {
		name := r.Table
		if !identifier.MatchString(name) {
			name = "(not an identifier)"
		}
		return nil, &RowError{Kind: KindUnknownTable, Reason: fmt.Sprintf("journal row of table %s, which is not captured", name)}
	}
	ch := &change{row: r, table: t}
	needOld, needNew := false, false
	switch r.Operation {
	case "I":
		ch.op, needNew = opCreate, true
	case "U":
		ch.op, needOld, needNew = opUpdate, true, true
	case "D":
		ch.op, needOld = opDelete, true
	default:
		op := r.Operation
		if len(op) != 1 || op[0] < 'A' || op[0] > 'Z' {
			op = "(not a letter)"
		}
		return nil, &RowError{Kind: KindOperation, Reason: fmt.Sprintf("operation %s is not I, U or D", op)}
	}
	var err error
	if needOld {
		if r.Old == nil {
			return nil, &RowError{Kind: KindOperation, Image: "old_row", Reason: "missing for operation " + r.Operation}
		}
		if ch.before, err = t.image("old_row", r.Old, b.loc); err != nil {
			return nil, err
		}
	}
	if needNew {
		if r.New == nil {
			return nil, &RowError{Kind: KindOperation, Image: "new_row", Reason: "missing for operation " + r.Operation}
		}
		if ch.after, err = t.image("new_row", r.New, b.loc); err != nil {
			return nil, err
		}
	}
	return ch, nil
}

// alertKeys returns the keys of the alert rows a change publishes, or,
// for a resync request by booking, the key that resolves its prisoner.
func (ch *change) alertKeys() []AlertKey {
	if ch.request != nil {
		if k, ok := ch.request.requestKey(); ok {
			return []AlertKey{k}
		}
		return nil
	}
	if ch.table.name != TableOffenderAlerts {
		return nil
	}
	var out []AlertKey
	for _, r := range []row{ch.before, ch.after} {
		if r != nil {
			out = append(out, ch.table.alertKey(r))
		}
	}
	return out
}

// alertKey returns the key of an OFFENDER_ALERTS row.
func (t *table) alertKey(r row) AlertKey {
	book, _ := t.get(r, "offender_book_id").(int64)
	seq, _ := t.get(r, "alert_seq").(int32)
	return AlertKey{BookID: book, Seq: seq}
}

// records returns the records of a change in order: an insert is one
// create; an update one update, or, when it changes the primary key, a
// delete and tombstone of the old key then a create of the new one (as
// Debezium does); a delete is a delete and its tombstone. contexts holds the
// alert contexts of the batch (AlertContexts). A resync request has none.
func (b *builder) records(ch *change, contexts map[AlertKey]AlertContext) []outRecord {
	if ch.request != nil {
		return nil
	}
	t := ch.table
	src := originOf(ch.row)
	rec := func(op string, before, after row) outRecord {
		o := outRecord{table: t, op: op, before: before, after: after, src: src}
		img := after
		if img == nil {
			img = before
		}
		o.key = t.keyOf(img)
		if t.context {
			o.context = contexts[t.alertKey(img)]
		}
		return o
	}
	deleteOf := func(before row) []outRecord {
		d := rec(opDelete, before, nil)
		return []outRecord{d, {table: t, key: d.key}}
	}
	switch ch.op {
	case opCreate:
		return []outRecord{rec(opCreate, nil, ch.after)}
	case opDelete:
		return deleteOf(ch.before)
	}
	if !slices.Equal(t.keyOf(ch.before), t.keyOf(ch.after)) {
		return append(deleteOf(ch.before), rec(opCreate, nil, ch.after))
	}
	return []outRecord{rec(opUpdate, ch.before, ch.after)}
}

// appendEnvelope appends the Avro binary encoding of o's value (not a
// tombstone) under its topic's envelope schema (the field layout is checked
// against the schema by tableFromSchema); now is the capture time, ts_ms.
func (b *builder) appendEnvelope(dst []byte, o *outRecord, now time.Time) ([]byte, error) {
	t, src := o.table, o.src
	var err error
	for _, r := range []row{o.before, o.after} {
		if r == nil {
			dst = append(dst, avrobin.Null)
			continue
		}
		if dst, err = t.appendRow(append(dst, avrobin.NotNull), r); err != nil {
			return dst, err
		}
	}
	dst = b.appendSource(dst, "oms_owner", t.name, src)
	// op, ts_ms, session.
	dst = avrobin.AppendString(dst, o.op)
	dst = avrobin.AppendLong(dst, now.UnixMilli())
	if src.session {
		dst = append(dst, avrobin.NotNull)
		dst = avrobin.AppendOptString(dst, src.module)
		dst = avrobin.AppendOptString(dst, src.additional)
		dst = avrobin.AppendOptString(dst, src.user)
	} else {
		dst = append(dst, avrobin.Null)
	}
	if t.context {
		c := o.context
		dst = append(dst, avrobin.NotNull)
		dst = avrobin.AppendOptString(dst, c.OffenderNo)
		if c.BookingSeq != nil {
			dst = avrobin.AppendLong(append(dst, avrobin.NotNull), int64(*c.BookingSeq))
		} else {
			dst = append(dst, avrobin.Null)
		}
		dst = avrobin.AppendOptString(dst, c.DPSAlertID)
	}
	return dst, nil
}

// StageCapture is the DLQ stage of the NOMIS capture.
const StageCapture = "capture.nomis"

// rawRow is the journal row as the DLQ entry's value: every column, the
// images as the text the journal holds (valid JSON or not).
type rawRow struct {
	JournalID      int64     `json:"journal_id"`
	TableName      string    `json:"table_name"`
	Operation      string    `json:"operation"`
	OldRow         *string   `json:"old_row"`
	NewRow         *string   `json:"new_row"`
	ModuleName     *string   `json:"module_name"`
	AdditionalInfo *string   `json:"additional_info"`
	UserID         *string   `json:"user_id"`
	TxID           string    `json:"txid"`
	Commit         int64     `json:"commit"`
	CommitTime     time.Time `json:"commit_time"`
}

func textOf(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}

// dlqEntry returns the key and value of the DLQ entry of a journal row that
// could not be turned into records. The entry's original topic is the
// journal table, its partition -1 (not from Kafka), its offset the journal
// id, and its value the whole journal row as JSON (rawRow).
func dlqEntry(journal string, r *JournalRow, rerr *RowError, alertKey string, now time.Time) (key, value map[string]any, err error) {
	raw, err := json.Marshal(rawRow{
		JournalID: r.ID, TableName: r.Table, Operation: r.Operation, OldRow: textOf(r.Old), NewRow: textOf(r.New),
		ModuleName: r.Module, AdditionalInfo: r.AdditionalInfo, UserID: r.User, TxID: r.TxID,
		Commit: r.Commit, CommitTime: r.CommitTime.UTC(),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("encoding journal row %d for the DLQ: %w", r.ID, err)
	}
	routing := journal
	var ak *string
	if alertKey != "" {
		routing, ak = alertKey, &alertKey
	}
	return map[string]any{"routing_key": routing}, map[string]any{
		"topic":       journal,
		"partition":   int32(-1),
		"offset":      r.ID,
		"key":         nil,
		"value":       schemas.OptBytes(raw),
		"headers":     []any{},
		"stage":       StageCapture,
		"error":       rerr.Error(),
		"error_kind":  rerr.Kind,
		"attempt":     int32(1),
		"failed_at":   schemas.Timestamp(now),
		"held":        false,
		"held_behind": nil,
		"alert_key":   schemas.OptString(ak),
	}, nil
}

// alertKeyHint returns "nomis:<book>:<seq>" for a journal row of
// offender_alerts whose key columns can be read from either image, else "".
// It reads nothing but the two key columns.
func alertKeyHint(r *JournalRow) string {
	if r.Table != TableOffenderAlerts {
		return ""
	}
	for _, img := range [][]byte{r.New, r.Old} {
		var k struct {
			Book *int64 `json:"offender_book_id"`
			Seq  *int32 `json:"alert_seq"`
		}
		if img != nil && json.Unmarshal(img, &k) == nil && k.Book != nil && k.Seq != nil {
			return fmt.Sprintf("nomis:%d:%d", *k.Book, *k.Seq)
		}
	}
	return ""
}
