package nomis

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"time"

	"github.com/alertsync/alertsync/schemas"
)

// Ops of change records (the envelope's op).
const (
	opCreate = "c"
	opUpdate = "u"
	opDelete = "d"
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
	before, after map[string]any // row records; nil when the op has none
}

// outRecord is one record to produce: a change of table (or its tombstone,
// value nil) with its key, as Avro natives.
type outRecord struct {
	table *table
	op    string // c, u, d; "" for a tombstone
	key   map[string]any
	value map[string]any
}

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_$#]{0,127}$`)

// decode checks and converts a journal row. Errors are *RowError.
func (b *builder) decode(r *JournalRow) (*change, error) {
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

// alertKeys returns the keys of the alert rows a change publishes.
func (ch *change) alertKeys() []AlertKey {
	if ch.table.name != TableOffenderAlerts {
		return nil
	}
	var out []AlertKey
	for _, rec := range []map[string]any{ch.before, ch.after} {
		if rec != nil {
			out = append(out, alertKeyOf(ch.table.keyOf(rec)))
		}
	}
	return out
}

func alertKeyOf(key map[string]any) AlertKey {
	book, _ := key["offender_book_id"].(int64)
	seq, _ := key["alert_seq"].(int32)
	return AlertKey{BookID: book, Seq: seq}
}

// records returns the records of a change in order: an insert is one
// create; an update one update, or, when it changes the primary key, a
// delete and tombstone of the old key then a create of the new one (as
// Debezium does); a delete is a delete and its tombstone. contexts holds the
// alert contexts of the batch (AlertContexts); now is the capture time.
func (b *builder) records(ch *change, contexts map[AlertKey]AlertContext, now time.Time) []outRecord {
	t := ch.table
	src := b.source(t, ch.row)
	session := schemas.OptRecord(schemas.TypeNOMISSession, map[string]any{
		"module":          schemas.OptString(ch.row.Module),
		"additional_info": schemas.OptString(ch.row.AdditionalInfo),
		"user":            schemas.OptString(ch.row.User),
	})
	envelope := func(op string, before, after map[string]any, key map[string]any) map[string]any {
		v := map[string]any{
			"before":  schemas.OptRecord(t.rowType, before),
			"after":   schemas.OptRecord(t.rowType, after),
			"source":  src,
			"op":      op,
			"ts_ms":   now.UnixMilli(),
			"session": session,
		}
		if t.name == TableOffenderAlerts {
			c := contexts[alertKeyOf(key)]
			v["context"] = schemas.OptRecord(schemas.TypeNOMISAlertContext, map[string]any{
				"offender_no":  schemas.OptString(c.OffenderNo),
				"booking_seq":  schemas.OptInt(c.BookingSeq),
				"dps_alert_id": schemas.OptString(c.DPSAlertID),
			})
		}
		return v
	}
	deleteOf := func(before map[string]any) []outRecord {
		key := t.keyOf(before)
		return []outRecord{
			{table: t, op: opDelete, key: key, value: envelope(opDelete, before, nil, key)},
			{table: t, key: key},
		}
	}
	switch ch.op {
	case opCreate:
		key := t.keyOf(ch.after)
		return []outRecord{{table: t, op: opCreate, key: key, value: envelope(opCreate, nil, ch.after, key)}}
	case opDelete:
		return deleteOf(ch.before)
	}
	oldKey, newKey := t.keyOf(ch.before), t.keyOf(ch.after)
	if !reflect.DeepEqual(oldKey, newKey) {
		return append(deleteOf(ch.before),
			outRecord{table: t, op: opCreate, key: newKey, value: envelope(opCreate, nil, ch.after, newKey)})
	}
	return []outRecord{{table: t, op: opUpdate, key: newKey, value: envelope(opUpdate, ch.before, ch.after, newKey)}}
}

// source is the shared Source block of a journal row.
func (b *builder) source(t *table, r *JournalRow) map[string]any {
	var txID *string
	if r.TxID != "" {
		txID = &r.TxID
	}
	return map[string]any{
		"version":   b.version,
		"connector": "oracle", // NOMIS is Oracle; the stand-in models it
		"name":      "nomis",
		"ts_ms":     r.CommitTime.UnixMilli(),
		"snapshot":  "false",
		"db":        b.db,
		"schema":    "oms_owner",
		"table":     t.name,
		"txId":      schemas.OptString(txID),
		"position":  map[string]any{"commit": r.Commit, "change": r.ID},
		"lsn":       nil,
		"origin":    schemas.OptString(r.Module),
		"sync":      r.Module != nil && *r.Module == SyncModule,
	}
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
